"""`selfimprove console`: the operator's terminal UI for the robots practising on one graph."""

import shutil
import sys
import time

from selfimprove_ros.console.controls import Controls
from selfimprove_ros.console.fleet import Fleet
from selfimprove_ros.console.screen import text_report

HELP = 'operator console: watch every robot, confirm resets, abort and start episodes'


def add_arguments(parser):
    """Arguments of `console`."""
    parser.add_argument('--robots', nargs='+', default=None, metavar='ROBOT',
                        help='robot namespaces to follow (default: every */episode/status)')
    parser.add_argument('--refresh-hz', type=float, default=4.0, help='screen redraws [1/s]')
    parser.add_argument('--once', action='store_true',
                        help='collect status for --wait-s, print the table as text and exit '
                             '(exit 1 unless every robot has a fresh, valid status)')
    parser.add_argument('--wait-s', type=float, default=2.0,
                        help='how long --once collects status [s]')
    parser.add_argument('--stale-s', type=float, default=3.0,
                        help='a robot without status for this long is marked stale [s]')


def print_once(fleet, spin_once, wait_s: float, expected=(), width=None) -> int:
    """Spin for `wait_s` (less once every expected robot reported), print the table."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        spin_once(0.05)
        rows = fleet.rows(time.monotonic())
        if expected and all(row.status or row.error for row in rows):
            break
    rows = fleet.rows(time.monotonic())
    print(text_report(rows, width or shutil.get_terminal_size((120, 24)).columns))
    healthy = rows and all(row.attention in ('', 'RESET') for row in rows)
    return 0 if healthy else 1


def run(args) -> int:
    """Start the console node, then the curses screen (or one text table with --once)."""
    if args.refresh_hz <= 0:
        raise ValueError(f'--refresh-hz must be > 0, got {args.refresh_hz}')
    if not args.once and not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise RuntimeError('the console needs a terminal; use --once for plain text')
    from selfimprove_ros.nodes.console_client import console_session
    fleet, controls = Fleet(stale_after_s=args.stale_s), Controls()
    try:
        with console_session(fleet, controls.post, args.robots) as (node, spin_once):
            if args.once:
                return print_once(fleet, spin_once, args.wait_s, expected=args.robots or ())
            import curses

            from selfimprove_ros.console.terminal import run_screen
            curses.wrapper(run_screen, fleet, controls, spin_once, node.send, args.refresh_hz)
            return 0
    except KeyboardInterrupt:
        return 0  # Ctrl-C is the other way to leave; curses.wrapper restored the terminal
