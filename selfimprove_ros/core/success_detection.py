"""Learned success detection: d(o, g) <= s for k consecutive evaluations (the paper's rule).

Debouncing over k evaluations keeps one noisy frame from ending an episode; the detector latches
until reset because an episode ends at its first detected success. One addition: a success must
be approached. A streak that starts within `recovery_ticks` evaluations of a d that says "not
within the horizon" does not count, because no task here is recovered and finished that fast:
d falling from "failed" straight to "done" is the model fooled by a pose it has seen only at
the goal (measured in sim: every false detection of the shipped model looked like that, and no
true one did; docs/notebook/2026-11-30.md).

How long that check must look back depends on the reward model (10 evaluations kept the K = 100
model's false detections at 1 in 71 and silenced every true one of the K = 60 model), so
`selfimprove models` audits candidate rules on the model's own rollouts and records the chosen
one in its manifest (`success_rule`); `audited_rule` reads it back.
"""

from dataclasses import dataclass, fields
import math
from typing import Optional

from selfimprove_ros.core.config import require, setting


@dataclass
class SuccessConfig:
    """Threshold and debouncing of the learned success detector."""

    # 1 tick for 3 ticks, not 2 for 2: a seeing transfer_cube policy's d falls to 1-2 ticks a
    # tick or two before the hand-over completes and to 0.1-0.4 once it has, so the looser rule
    # ended near-successes early and fired on brief dips of failing episodes
    # (docs/notebook/2026-11-30.md).
    threshold_steps: float = setting(
        1.0, 'Success when d(o, g) <= this many control ticks (the paper: a very small number)')
    consecutive: int = setting(3, 'Evaluations in a row that must be at or under the threshold')
    failure_steps: float = setting(
        100.0, 'd(o, g) [control ticks] at or above which the model says "not within the '
        'horizon" (the task failed from here)')
    recovery_ticks: int = setting(
        10, 'A streak under the threshold counts only if none of the this many evaluations '
        'before it reached failure_steps; 0 turns the check off')

    def __post_init__(self):
        require(self.threshold_steps >= 0,
                f'threshold_steps must be >= 0 ticks, got {self.threshold_steps!r}')
        require(self.consecutive >= 1, f'consecutive must be >= 1, got {self.consecutive!r}')
        require(self.failure_steps > self.threshold_steps,
                f'failure_steps must be above threshold_steps ({self.threshold_steps!r}), got '
                f'{self.failure_steps!r}')
        require(self.recovery_ticks >= 0,
                f'recovery_ticks must be >= 0, got {self.recovery_ticks!r}')


RULE_KEY = 'success_rule'  # manifest key of the audited rule (training/rule_choice.py)


def audited_rule(manifest: dict) -> Optional[SuccessConfig]:
    """Return the rule a reward model's manifest records from its audit, or None if it has none."""
    rule = manifest.get(RULE_KEY)
    if rule is None:
        return None
    if not isinstance(rule, dict):
        raise ValueError(f'manifest {RULE_KEY!r} must be a mapping, got {rule!r}; re-export '
                         'the model with `selfimprove models`')
    names = {item.name for item in fields(SuccessConfig)}
    return SuccessConfig(**{key: value for key, value in rule.items() if key in names})


class SuccessDetector:
    """Count consecutive approached evaluations under the threshold; latch success once reached."""

    def __init__(self, config: SuccessConfig):
        self.config = config
        self.reset()

    def reset(self):
        """Forget the running count and the latched verdict (a new episode)."""
        self.streak, self.succeeded = 0, False
        self.approached = False
        self.since_failure = math.inf  # evaluations since d last reached failure_steps

    def update(self, steps_to_go: float) -> bool:
        """Feed one evaluation of d(o, g) [ticks]; return whether success is (now) detected."""
        if steps_to_go != steps_to_go:  # NaN never counts as success, and breaks the streak
            self.streak = 0
        elif steps_to_go <= self.config.threshold_steps:
            if self.streak == 0:
                self.approached = self.since_failure >= self.config.recovery_ticks
            self.streak += 1
        else:
            self.streak = 0
        self.since_failure = 0 if steps_to_go >= self.config.failure_steps \
            else self.since_failure + 1
        self.succeeded = self.succeeded or (self.streak >= self.config.consecutive
                                            and self.approached)
        return self.succeeded


class EpisodeSuccessMonitor:
    """Per-episode bookkeeping around `SuccessDetector`: which episode, sim flag, fire once."""

    def __init__(self, success: SuccessConfig, use_sim_success: bool = False,
                 learned: bool = True):
        self.detector = SuccessDetector(success)
        self.use_sim_success = use_sim_success
        self.learned = learned  # False: the rule runs, but never ends an episode
        self.episode_id = None
        self.sim_success = False
        self.fired = False
        self.last_d = None

    def start(self, episode_id: str):
        """Begin a new episode (a repeated `start` of the running one changes nothing)."""
        if episode_id == self.episode_id:
            return
        self.episode_id, self.sim_success, self.fired, self.last_d = episode_id, False, False, None
        self.detector.reset()

    def end(self, episode_id: str):
        """Stop listening to an episode that ended."""
        if episode_id == self.episode_id:
            self.episode_id = None

    def steps_to_go(self, doc: dict):
        """Feed one live evaluation; return the detection to publish, or None."""
        if self.episode_id is None or doc.get('episode_id') != self.episode_id:
            return None
        d = float(doc['steps_to_go'])
        self.last_d = d
        if not self.detector.update(d) or self.fired or not self.learned:
            return None
        return self._fire(int(doc['stamp_ns']), d, 'learned')

    def sim_flag(self, value: bool, stamp_ns: int):
        """Record the simulator's success flag; return a detection only with use_sim_success."""
        if self.episode_id is None or not value:
            return None
        self.sim_success = True
        if not self.use_sim_success or self.fired:
            return None
        return self._fire(stamp_ns, self.last_d, 'sim')

    def _fire(self, stamp_ns: int, d, source: str) -> dict:
        self.fired = True
        return {'episode_id': self.episode_id, 'stamp_ns': stamp_ns,
                'steps_to_go': None if d is None or math.isnan(d) else d,
                'sim_success': self.sim_success, 'source': source}
