"""When a driven episode ends: on success plus a margin of ticks, or at the maximum length."""

from dataclasses import dataclass


@dataclass
class RunningEpisode:
    """The episode in progress, updated by the subscriptions."""

    episode_id: str
    max_ticks: int
    post_success_ticks: int
    success: bool = False
    success_tick: int = None
    first_stamp_ns: int = None
    ticks: int = 0
    outcome: str = ''
    cause: str = ''

    def observe(self, stamp_ns: int, period_ns: int) -> bool:
        """Account one robot tick; True when the episode should end now."""
        if self.first_stamp_ns is None:
            self.first_stamp_ns = stamp_ns
        self.ticks = (stamp_ns - self.first_stamp_ns) // period_ns
        if self.success and self.success_tick is None:
            self.success_tick = self.ticks
        if self.success_tick is not None and \
                self.ticks >= self.success_tick + self.post_success_ticks:
            self.outcome, self.cause = 'success', f'simulator success at tick {self.success_tick}'
        elif self.ticks >= self.max_ticks and self.success_tick is not None:
            # The limit came before the margin after success ran out: still a success.
            self.outcome, self.cause = 'success', f'simulator success at tick {self.success_tick}'
        elif self.ticks >= self.max_ticks:
            self.outcome, self.cause = 'timeout', f'no success within {self.max_ticks} ticks'
        return bool(self.outcome)
