"""The fleet model: the latest status of every robot, and the rows an operator reads."""

from dataclasses import dataclass
from typing import Optional

from selfimprove_ros.console.status import (parse_status, RobotStatus, StatusError,
                                            wilson_interval)


@dataclass(frozen=True)
class SuccessRate:
    """Outcomes of one policy version with a 95% Wilson interval."""

    version: str
    successes: int
    episodes: int
    low: float
    high: float

    @property
    def rate(self) -> Optional[float]:
        """Return the success fraction, None before the first episode."""
        return self.successes / self.episodes if self.episodes else None


@dataclass(frozen=True)
class Row:
    """What the console shows for one robot."""

    robot: str
    status: Optional[RobotStatus]  # None: nothing valid received yet, or the last one is bad
    error: str = ''                # why the last status was rejected
    age_s: Optional[float] = None  # since the last status arrived [s]
    stale: bool = False            # no status for longer than the fleet's stale_after_s

    @property
    def phase(self) -> str:
        """Return the robot's phase, or '' without a valid status."""
        return self.status.phase if self.status else ''

    @property
    def cause(self) -> str:
        """Return why the robot is in its phase (or why its status was rejected)."""
        return self.error or (self.status.cause if self.status else '')

    @property
    def steps_to_go(self) -> Optional[float]:
        """Return the latest learned steps-to-go [control ticks]."""
        return self.status.steps_to_go if self.status else None

    @property
    def episodes(self) -> int:
        """Return the ended episodes since the manager started."""
        return self.status.episodes if self.status else 0

    @property
    def needs_operator(self) -> bool:
        """Return whether the (fresh) status asks a human to reset the scene."""
        return bool(self.status and self.status.needs_operator and not self.stale)

    @property
    def running(self) -> bool:
        """Return whether a fresh status says an episode is running."""
        return bool(self.status and self.status.phase == 'running' and not self.stale)

    @property
    def attention(self) -> str:
        """Return a short flag for the operator: RESET, ERROR, STALE, NO DATA or ''."""
        if self.error:
            return 'ERROR'
        if self.status is None:
            return 'NO DATA'
        if self.stale:
            return f'STALE {self.age_s:.0f}s'
        return 'RESET' if self.status.needs_operator else ''

    @property
    def success(self) -> Optional[SuccessRate]:
        """Return the success rate of the robot's current policy version."""
        if self.status is None:
            return None
        version = self.status.policy_version
        counts = self.status.by_version.get(version, {'episodes': 0, 'successes': 0})
        low, high = wilson_interval(counts['successes'], counts['episodes'])
        return SuccessRate(version, counts['successes'], counts['episodes'], low, high)

    def order(self) -> tuple:
        """Sort key: needs the operator, then broken (error, stale, no data, fault), then name."""
        if self.needs_operator:
            group = 0
        elif self.attention or self.phase == 'fault':
            group = 1
        else:
            group = 2
        return group, self.robot


class Fleet:
    """Latest status per robot, keyed by robot name; times are monotonic seconds."""

    def __init__(self, stale_after_s: float = 3.0):
        if stale_after_s <= 0:
            raise ValueError(f'stale_after_s must be > 0, got {stale_after_s!r}')
        self.stale_after_s = stale_after_s
        self._latest = {}  # robot -> (status or None, error, received_s or None)

    @property
    def robots(self) -> list:
        """Return the names of every robot known so far, sorted."""
        return sorted(self._latest)

    def expect(self, robot: str):
        """Show `robot` even before its first status arrives."""
        self._latest.setdefault(robot, (None, '', None))

    def ingest(self, robot: str, data, now: float) -> Optional[RobotStatus]:
        """Take one status (JSON text or dict) received at `now`; a bad one becomes an error."""
        try:
            status = parse_status(data)
        except StatusError as error:
            self._latest[robot] = (None, f'bad status: {error}', now)
            return None
        self._latest[robot] = (status, '', now)
        return status

    def row(self, robot: str, now: float) -> Row:
        """Return the row of one robot as of `now`."""
        status, error, received = self._latest[robot]
        if received is None:
            return Row(robot, None)
        age = max(0.0, now - received)
        return Row(robot, status, error, age, age > self.stale_after_s)

    def rows(self, now: float) -> list:
        """Return every robot's row, robots that need the operator first."""
        return sorted((self.row(robot, now) for robot in self._latest), key=Row.order)
