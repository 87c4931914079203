"""The curses screen of the console: draw, read keys, hand actions to the ROS side.

The loop runs in one thread: between redraws it lets ROS work through `spin_once`, so no second
thread competes for the GIL. curses.wrapper restores the terminal on exit, error or Ctrl-C.
"""

import curses
import time

from selfimprove_ros.console.screen import screen_lines

KEYS = {curses.KEY_UP: 'up', curses.KEY_DOWN: 'down'}


def key_name(code: int):
    """Map a curses key code to the Controls' key name; None for keys the console ignores."""
    if code in KEYS:
        return KEYS[code]
    if 32 <= code < 127:
        return chr(code)
    return None


def _styles() -> dict:
    styles = {'title': curses.A_BOLD, 'header': curses.A_DIM, 'selected': curses.A_REVERSE,
              'alert': curses.A_BOLD, 'text': curses.A_NORMAL}
    if curses.has_colors():
        curses.start_color()
        curses.use_default_colors()
        curses.init_pair(1, curses.COLOR_YELLOW, -1)
        styles['alert'] = curses.color_pair(1) | curses.A_BOLD
    return styles


def draw(window, lines, styles):
    """Draw (text, style) lines; the bottom-right cell cannot be written, so stop short of it."""
    height, width = window.getmaxyx()
    window.erase()
    for y, (text, style) in enumerate(lines[:height]):
        try:
            window.addnstr(y, 0, text, max(0, width - 1), styles.get(style, curses.A_NORMAL))
        except curses.error:  # a resize between getmaxyx and addnstr
            pass
    window.refresh()


def run_screen(window, fleet, controls, spin_once, send, refresh_hz: float,
               clock=time.monotonic):
    """Run the console until `q`: spin_once(timeout_s) lets ROS work, send(action) acts."""
    curses.curs_set(0)
    window.keypad(True)
    window.timeout(0)
    styles = _styles()
    period = 1.0 / refresh_hz
    next_draw = clock()
    while True:
        now = clock()
        if now >= next_draw:
            height, width = window.getmaxyx()
            draw(window, screen_lines(fleet.rows(now), controls, width, height), styles)
            next_draw = now + period
        spin_once(min(0.05, max(0.0, next_draw - clock())))
        code = window.getch()
        while code != -1:
            if code == curses.KEY_RESIZE:
                curses.update_lines_cols()
            name = key_name(code)
            action = name and controls.handle(name, fleet.rows(clock()), clock())
            if action and action.quit:
                return
            if action:
                send(action)
            next_draw = clock()  # redraw at once after a key or a resize
            code = window.getch()
