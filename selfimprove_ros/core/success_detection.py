"""Learned success detection: d(o, g) <= s for k consecutive evaluations (the paper's rule).

Debouncing over k evaluations keeps one noisy frame from ending an episode; the detector latches
until reset because an episode ends at its first detected success.
"""

from dataclasses import dataclass

from selfimprove_ros.core.config import require, setting


@dataclass
class SuccessConfig:
    """Threshold and debouncing of the learned success detector."""

    threshold_steps: float = setting(
        2.0, 'Success when d(o, g) <= this many control ticks (the paper: a very small number)')
    consecutive: int = setting(2, 'Evaluations in a row that must be at or under the threshold')

    def __post_init__(self):
        require(self.threshold_steps >= 0,
                f'threshold_steps must be >= 0 ticks, got {self.threshold_steps!r}')
        require(self.consecutive >= 1, f'consecutive must be >= 1, got {self.consecutive!r}')


class SuccessDetector:
    """Count consecutive evaluations under the threshold; latch success once reached."""

    def __init__(self, config: SuccessConfig):
        self.config = config
        self.reset()

    def reset(self):
        """Forget the running count and the latched verdict (a new episode)."""
        self.streak, self.succeeded = 0, False

    def update(self, steps_to_go: float) -> bool:
        """Feed one evaluation of d(o, g) [ticks]; return whether success is (now) detected."""
        if steps_to_go != steps_to_go:  # NaN never counts as success, and breaks the streak
            self.streak = 0
        elif steps_to_go <= self.config.threshold_steps:
            self.streak += 1
        else:
            self.streak = 0
        self.succeeded = self.succeeded or self.streak >= self.config.consecutive
        return self.succeeded
