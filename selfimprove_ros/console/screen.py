"""Plain-text rendering of the fleet: the table, and the whole screen at a given size."""

from selfimprove_ros.console.controls import HELP

MIN_WIDTH, MIN_HEIGHT = 40, 7
MIN_CAUSE = 12  # columns are dropped before the cause gets narrower than this
# (title, width); the cause takes what is left. SUCCESS: the current policy version's.
COLUMNS = {'phase': ('PHASE', 17), 'attention': ('ATTN', 9), 'to_go': ('TO-GO', 5),
           'episodes': ('EPS', 4), 'success': ('SUCCESS [95%]', 20),
           'policy': ('POLICY', 8), 'ticks': ('TICKS', 9)}
DROP_ORDER = ('ticks', 'policy', 'episodes', 'to_go', 'success')


def _success(row) -> str:
    rate = row.success
    if rate is None or not rate.episodes:
        return '-'
    return (f'{rate.successes}/{rate.episodes} {rate.rate:.0%} '
            f'[{rate.low * 100:.0f}-{rate.high * 100:.0f}]')


def cells(row) -> dict:
    """Return the text of each column of one row."""
    status = row.status
    if status is None:
        return {'phase': '-', 'attention': row.attention}
    steps = status.steps_to_go
    return {'phase': status.phase, 'attention': row.attention,
            'to_go': '-' if steps is None else f'{steps:.1f}',
            'episodes': str(status.episodes), 'success': _success(row),
            'policy': status.policy_version or '-',
            'ticks': f'{status.ticks}/{status.max_ticks}'}


def _clean(text: str) -> str:
    return ' '.join(str(text).split())  # a newline in a cause must not break the table


def _fit(text: str, width: int) -> str:
    if len(text) <= width:
        return text.ljust(width)
    return text[:max(0, width - 1)] + '~' if width > 0 else ''


def _layout(width: int, robot_width: int) -> list:
    columns = list(COLUMNS)
    used = 2 + robot_width + sum(COLUMNS[name][1] + 1 for name in columns)
    for name in DROP_ORDER:
        if width - used >= MIN_CAUSE + 1:
            break
        columns.remove(name)
        used -= COLUMNS[name][1] + 1
    return columns


def table_lines(rows, width: int, selected=None) -> list:
    """Render the column header and one line per row, each exactly `width` characters."""
    robot_width = min(16, max([5] + [len(row.robot) for row in rows]))
    columns = _layout(width, robot_width)

    def line(marker, robot, texts, cause):
        parts = [marker, _fit(_clean(robot), robot_width)]
        # A row without status puts its error right after ATTN, where it is read.
        shown = columns if 'to_go' in texts else ['phase', 'attention']
        parts += [' ' + _fit(_clean(texts[name]), COLUMNS[name][1]) for name in shown]
        text = ''.join(parts) + ' ' + _clean(cause)
        return _fit(text, width)

    lines = [line('  ', 'ROBOT', {name: COLUMNS[name][0] for name in COLUMNS}, 'CAUSE')]
    for row in rows:
        lines.append(line('> ' if row.robot == selected else '  ', row.robot, cells(row),
                          row.cause))
    return lines


def detail(row) -> str:
    """Return the selected robot's full line: cause, episode, ticks and policy."""
    status = row.status
    if status is None:
        return f'{row.robot}: {_clean(row.cause) or "no status received yet"}'
    return (f'{row.robot}: {status.phase}: {_clean(status.cause)} | episode '
            f'{status.episode_id or "-"} tick {status.ticks}/{status.max_ticks} | policy '
            f'{status.policy_version or "-"}')


def summary(rows) -> str:
    """Return the title line: robot count, how many need a reset, run or are broken."""
    reset = sum(row.needs_operator for row in rows)
    running = sum(row.running for row in rows)
    broken = sum(row.attention not in ('', 'RESET') for row in rows)
    robots = f'{len(rows)} robot' + ('' if len(rows) == 1 else 's')
    text = f'selfimprove console: {robots}, {reset} need a reset, {running} running'
    return text + (f', {broken} without a fresh valid status' if broken else '')


def screen_lines(rows, controls, width: int, height: int) -> list:
    """Render the whole screen as (text, style) pairs; style: title|header|selected|alert|text.

    At most `height` lines of exactly `width` characters; a terminal below MIN_WIDTH x
    MIN_HEIGHT gets one line that says so instead.
    """
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        return [(_fit(f'too small: {width}x{height} < {MIN_WIDTH}x{MIN_HEIGHT}',
                      max(width, 0)), 'alert')]
    selected = controls.selection(rows)
    table = table_lines(rows, width, selected)
    room = height - 5  # title, column header, detail, message and help lines
    start = 0
    if len(rows) > room and selected is not None:
        index = [row.robot for row in rows].index(selected)
        start = min(max(0, index - room // 2), len(rows) - room)
    shown = rows[start:start + room]
    out = [(_fit(summary(rows), width), 'title'), (table[0], 'header')]
    for row, text in zip(shown, table[1 + start:1 + start + room]):
        style = 'selected' if row.robot == selected else (
            'alert' if row.attention or row.phase == 'fault' else 'text')
        out.append((text, style))
    if not rows:
        out.append((_fit('no robots yet: waiting for */episode/status topics', width), 'text'))
    out += [('', 'text')] * (height - 3 - len(out))
    chosen = [row for row in rows if row.robot == selected]
    out.append((_fit(detail(chosen[0]) if chosen else '', width), 'text'))
    out.append((_fit(controls.message, width), 'alert' if controls.message else 'text'))
    out.append((_fit(HELP, width), 'header'))
    return out[:height]


def text_report(rows, width: int) -> str:
    """Render the title and the table as plain text (for `--once`), trailing blanks stripped."""
    lines = [summary(rows)] + table_lines(rows, width)
    if not rows:
        lines.append('no robots found: no */episode/status topic on this ROS graph')
    return '\n'.join(line.rstrip() for line in lines)
