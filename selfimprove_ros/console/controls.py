"""Keys to actions: selection, confirmed resets, double-press aborts, and the message line."""

from collections import deque
from dataclasses import dataclass
from typing import Optional

from selfimprove_ros.console.status import (EPISODE_ABORT, EPISODE_MARK_FAILED, EPISODE_RESET_DONE,
                                            EPISODE_START)

CONFIRM_S = 2.0  # the second press of `a` / `A` must come within this [s]
HELP = ('up/down r:reset-done R:all-resets a:abort A:abort-all (twice) s:start '
        'f:last-episode-failed q:quit')


@dataclass(frozen=True)
class Action:
    """A request for the ROS side: call `service` on each of `robots`, or quit."""

    service: str = ''
    robots: tuple = ()
    quit: bool = False


QUIT = Action(quit=True)


@dataclass(frozen=True)
class _Pending:
    key: str
    robots: tuple
    until: float


class Controls:
    """The operator's side of the console: selected robot, pending confirmation, messages."""

    def __init__(self, confirm_s: float = CONFIRM_S, keep_messages: int = 5):
        self.confirm_s = confirm_s
        self.selected: Optional[str] = None
        self.messages = deque(maxlen=keep_messages)
        self._pending: Optional[_Pending] = None

    def post(self, message: str):
        """Put a line on the message line (action results, prompts)."""
        self.messages.append(message)

    @property
    def message(self) -> str:
        """Return the newest message, '' when there is none."""
        return self.messages[-1] if self.messages else ''

    def selection(self, rows) -> Optional[str]:
        """Return the selected robot, falling back to the first row when it has gone."""
        names = [row.robot for row in rows]
        if self.selected not in names:
            self.selected = names[0] if names else None
        return self.selected

    def _move(self, rows, step: int):
        names = [row.robot for row in rows]
        current = self.selection(rows)
        if current is not None:
            self.selected = names[(names.index(current) + step) % len(names)]

    def _confirmed(self, key: str, robots: tuple, verb: str, now: float) -> Optional[Action]:
        pending = self._pending
        self._pending = None
        if pending and pending.key == key and now <= pending.until:
            return Action(EPISODE_ABORT, pending.robots)
        self._pending = _Pending(key, robots, now + self.confirm_s)
        self.post(f'press {key} again within {self.confirm_s:g} s to {verb} '
                  + ', '.join(robots))
        return None

    def handle(self, key: str, rows, now: float) -> Optional[Action]:
        """Turn one key ('up', 'down' or a character) into an Action, or None."""
        if self._pending and key != self._pending.key:
            if now <= self._pending.until:
                self.post('abort not confirmed')
            self._pending = None
        selected = self.selection(rows)
        if key in ('up', 'k'):
            self._move(rows, -1)
        elif key in ('down', 'j'):
            self._move(rows, +1)
        elif key == 'q':
            return QUIT
        elif key in ('r', 's', 'a', 'f'):
            if selected is None:
                self.post('no robot to act on yet')
            elif key == 'a':
                return self._confirmed('a', (selected,), 'abort', now)
            else:
                # No confirmation for `f`: `selfimprove bag verdict --succeeded` undoes it.
                return Action({'r': EPISODE_RESET_DONE, 's': EPISODE_START,
                               'f': EPISODE_MARK_FAILED}[key], (selected,))
        elif key == 'R':
            robots = tuple(row.robot for row in rows if row.needs_operator)
            if robots:
                return Action(EPISODE_RESET_DONE, robots)
            self.post('no robot needs a reset')
        elif key == 'A':
            robots = tuple(row.robot for row in rows if row.running)
            if robots:
                return self._confirmed('A', robots, 'abort every running robot:', now)
            self._pending = None
            self.post('no robot is running')
        return None


def answer_message(robot: str, service: str, success: bool, message: str) -> str:
    """Return the message line for a manager's answer to `service` ('episode/abort')."""
    text = f'{robot} {service.rsplit("/", 1)[-1]}: {"ok" if success else "REFUSED"}'
    return text + (f': {message}' if message else '')


def missing_message(robot: str, service_name: str) -> str:
    """Return the message line for a service that never appeared."""
    return f'{robot}: service {service_name} is not available (is its episode manager running?)'


def timeout_message(robot: str, service_name: str, timeout_s: float) -> str:
    """Return the message line for a service that took the request but did not answer."""
    return f'{robot}: service {service_name} did not answer within {timeout_s:g} s'
