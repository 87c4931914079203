"""How often the learned success detector is right, judged by the simulator, on recorded bags.

A reward model that fits held-out demonstrations well can still call a failed policy episode
"done": demonstrations never show it what failure looks like. Practice then optimises that
error. This audit replays the detector's rule (d <= s for k evaluations in a row, at every
aligned tick) over bags whose simulator recorded its own verdict (on a robot: a person's,
`selfimprove bag verdict`), and counts how often the two agree. Run it on the current policy's
rollouts before practising with a reward model.

A bag ends where its episode ended, often at a success the live detector reported; a detection
the audited model would have made later is not seen, so false-positive counts are lower bounds.
"""

from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np

from selfimprove_ros.core.success_detection import SuccessConfig, SuccessDetector
from selfimprove_ros.training.version_history import wilson_interval


@dataclass
class DetectorVerdict:
    """What the detector and the simulator said about one episode (ticks are aligned ticks)."""

    bag_path: str
    policy_version: str
    ticks: int
    sim_success: bool
    sim_tick: Optional[int]        # first tick the simulator reported success
    detected_tick: Optional[int]   # first tick the detector would have fired
    closest_d: float               # smallest d(o, g) of the episode [ticks]
    final_d: float                 # d at its last tick [ticks]

    @property
    def detected(self) -> bool:
        """Return whether the detector would have fired in this episode."""
        return self.detected_tick is not None


def first_detection(steps_to_go, config: SuccessConfig) -> Optional[int]:
    """Return the first tick at which the detector fires on the d sequence, or None."""
    detector = SuccessDetector(config)
    for tick, d in enumerate(np.asarray(steps_to_go, dtype=np.float64)):
        if detector.update(float(d)):
            return tick
    return None


def audit_episode(episode, steps_to_go, config: SuccessConfig) -> DetectorVerdict:
    """Compare the detector on `steps_to_go` [T] with the simulator's verdict of `episode`."""
    truth = episode.verified_success
    if truth is None:
        raise ValueError(f'{episode.bag_path} has no ground truth: no sim/success stream and no '
                         'verdict; record one with `selfimprove bag verdict --failed` or '
                         '`--succeeded`')
    d = np.asarray(steps_to_go, dtype=np.float64)
    if len(d) != episode.length or len(d) == 0:
        raise ValueError(f'{episode.bag_path}: {len(d)} steps-to-go values for '
                         f'{episode.length} ticks')
    return DetectorVerdict(
        bag_path=episode.bag_path, policy_version=episode.policy_version,
        ticks=episode.length, sim_success=truth,
        sim_tick=episode.success_tick if truth else None,
        detected_tick=first_detection(d, config), closest_d=float(d.min()),
        final_d=float(d[-1]))


def summarise(verdicts) -> dict:
    """Return counts, rates with 95 % Wilson intervals and typical d, for a list of verdicts."""
    verdicts = list(verdicts)
    failures = [v for v in verdicts if not v.sim_success]
    successes = [v for v in verdicts if v.sim_success]
    false_alarms = sum(v.detected for v in failures)
    hits = sum(v.detected for v in successes)
    detected = false_alarms + hits

    def rate(count, total):
        low, high = wilson_interval(count, total) if total else (float('nan'),) * 2
        return {'count': count, 'of': total, 'rate': count / total if total else float('nan'),
                'interval95': [low, high]}

    def median(values):
        return float(np.median(values)) if values else float('nan')

    return {
        'episodes': len(verdicts), 'sim_successes': len(successes),
        'false_positive': rate(false_alarms, len(failures)),
        'recall': rate(hits, len(successes)),
        'precision': rate(hits, detected),
        'median_closest_d': {'sim_failure': median([v.closest_d for v in failures]),
                             'sim_success': median([v.closest_d for v in successes])},
        'median_detection_lead_ticks': median(
            [v.sim_tick - v.detected_tick for v in successes if v.detected]),
    }


def audit_table(verdicts) -> str:
    """Return a text table of the audit by policy version, then over all episodes."""
    verdicts = list(verdicts)
    groups = {}
    for verdict in verdicts:
        groups.setdefault(verdict.policy_version or '?', []).append(verdict)
    if len(groups) > 1:
        groups['all'] = verdicts
    lines = [f'{"policy version":<36} {"episodes":>8} {"sim ok":>6} {"false pos.":>14} '
             f'{"recall":>10} {"closest d fail/ok":>18}']
    for name, group in groups.items():
        s = summarise(group)
        fp, recall = s['false_positive'], s['recall']
        closest = s['median_closest_d']
        lines.append(
            f'{name[-36:]:<36} {s["episodes"]:>8} {s["sim_successes"]:>6} '
            f'{fp["count"]:>4}/{fp["of"]:<3} {_percent(fp["rate"]):>5} '
            f'{recall["count"]:>3}/{recall["of"]:<3} {_percent(recall["rate"]):>4} '
            f'{closest["sim_failure"]:>8.1f} / {closest["sim_success"]:<7.1f}')
    return '\n'.join(lines)


def _percent(value: float) -> str:
    return '-' if value != value else f'{100 * value:.0f}%'


def verdict_rows(verdicts) -> list:
    """Return the verdicts as JSON-ready dicts."""
    return [{**asdict(v), 'detected': v.detected} for v in verdicts]
