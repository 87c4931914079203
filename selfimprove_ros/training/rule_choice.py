"""Choose one reward model's success rule from an audit of its own rollouts.

The approach check's look-back (`SuccessConfig.recovery_ticks`) that keeps one reward model
honest silences another: on the K = 100 model 10 evaluations left 1 false detection in 71
failures where 3 left 4, and on the K = 60 model 10 rejected all 58 true successes where 3 kept
46 with none false (docs/notebook/2026-11-30.md). So each reward model gets the look-back that
finds the most successes while calling at most `max_false_positive` of the failed rollouts
successes, judged by the simulator on whole episodes. Ties go to the longer look-back, the
stricter rule.
"""

from dataclasses import asdict, dataclass, replace

from selfimprove_ros.core.config import require
from selfimprove_ros.core.success_detection import SuccessConfig
from selfimprove_ros.training.detector_audit import audit_episode, summarise

RECOVERY_CANDIDATES = (0, 1, 2, 3, 5, 10)  # [evaluations]
MAX_FALSE_POSITIVE = 0.05  # the issue's target: at most 5 % of failed rollouts called successes


@dataclass
class RuleChoice:
    """The chosen rule and every candidate's audit."""

    config: SuccessConfig
    candidates: list       # per candidate: recovery_ticks, false_positive, recall (summaries)
    meets_target: bool     # False: no candidate kept false positives at the target
    max_false_positive: float

    def manifest_entry(self, rollouts: dict) -> dict:
        """Return the manifest's `success_rule`: the rule, and the audit that chose it."""
        return {**asdict(self.config), 'audit': {
            'rollouts': rollouts, 'max_false_positive': self.max_false_positive,
            'meets_target': self.meets_target, 'candidates': self.candidates}}

    def describe(self) -> str:
        """One line per candidate, the chosen one marked."""
        lines = []
        for row in self.candidates:
            fp, recall = row['false_positive'], row['recall']
            mark = '*' if row['recovery_ticks'] == self.config.recovery_ticks else ' '
            lines.append(f'{mark} recovery_ticks {row["recovery_ticks"]:>2}: false positives '
                         f'{fp["count"]}/{fp["of"]}, recall {recall["count"]}/{recall["of"]}')
        if not self.meets_target:
            lines.append(f'no rule kept false positives at or under '
                         f'{100 * self.max_false_positive:.0f} %: chose the fewest; do not '
                         'practise with this reward model before it is retrained')
        return '\n'.join(lines)


def choose_rule(scored, base: SuccessConfig = None, candidates=RECOVERY_CANDIDATES,
                max_false_positive: float = MAX_FALSE_POSITIVE) -> RuleChoice:
    """Pick `recovery_ticks` for `base` from `scored`: (episode, d per aligned tick) pairs."""
    base = base or SuccessConfig()
    scored = list(scored)
    require(bool(candidates), 'choose_rule needs at least one recovery_ticks candidate')
    require(0 <= max_false_positive < 1,
            f'max_false_positive must be in [0, 1), got {max_false_positive!r}')
    failures = sum(not episode.verified_success for episode, _ in scored)
    require(failures > 0 and failures < len(scored),
            f'the audit needs failed and successful rollouts, got {failures} failures in '
            f'{len(scored)}; roll out more episodes')
    rows = []
    for ticks in sorted(set(candidates)):
        config = replace(base, recovery_ticks=ticks)
        summary = summarise(audit_episode(episode, d, config) for episode, d in scored)
        rows.append({'recovery_ticks': ticks, 'false_positive': summary['false_positive'],
                     'recall': summary['recall']})
    honest = [row for row in rows if row['false_positive']['rate'] <= max_false_positive]
    if honest:
        best = max(honest, key=lambda row: (row['recall']['count'], row['recovery_ticks']))
    else:
        best = min(rows, key=lambda row: (row['false_positive']['count'],
                                          -row['recall']['count'], -row['recovery_ticks']))
    return RuleChoice(replace(base, recovery_ticks=best['recovery_ticks']), rows, bool(honest),
                      max_false_positive)
