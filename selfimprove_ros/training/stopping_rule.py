"""When to stop Stage-2 practice: roll back to the best version on a significant drop.

App. H of the paper shows success falling again when practice goes on past its peak, and leaves
the stopping rule open. This rule reads the per-version history and answers, for the version now
deployed, 'continue', 'rollback' (to the best version so far) or 'stop' (keep the best version):

- Best version: the highest *lower* 95% Wilson bound among versions with at least `min_episodes`
  trials. The point estimate would crown a lucky 3/3; the lower bound rewards evidence, and the
  winner's curse of picking a maximum out of many noisy rates is smaller for it.
- Test: one-sided Fisher exact test of H0 'current is at least as good as best' against H1
  'current is worse'. One-sided, because only a drop calls for action; an improvement makes the
  current version the best by itself. Fisher, because it is exact at 20-50 episodes a version,
  where the normal approximation of the two-proportion z-test is poor, and it errs towards
  keeping the current version. A drop also has to be at least `min_drop` in absolute terms, so a
  tiny but 'significant' difference after thousands of episodes does not throw away training.
- Patience: a rollback is cheap (the best weights are kept, and the next update draws fresh
  on-policy data), while one bad update can be noise of the stochastic policy-gradient step.
  Only `patience` significant drops in a row from the best version say the peak has been passed.
- Caveats: the best version is the maximum over many comparisons and calling `decide` after every
  episode is repeated testing; both make false drops more likely than `alpha`. Judge a version
  once its evaluation episodes are in (`min_episodes` or an iteration's worth), and lean on
  `min_drop` and `patience`, which is what they are for. The detected signal is the learned
  detector's verdict, which the policy may learn to please; prefer 'sim' where it exists.
"""

import math
from dataclasses import dataclass
from typing import Optional

from selfimprove_ros.core.config import require, setting
from selfimprove_ros.training.version_history import VersionHistory

SIGNALS = ('auto', 'sim', 'detected')
ACTIONS = ('continue', 'rollback', 'stop')
SIGNAL_NAMES = {'sim': 'simulator ground truth', 'detected': 'success detector'}


@dataclass
class StoppingConfig:
    """Settings of the Stage-2 stopping rule."""

    signal: str = setting('auto', "Success signal judged: 'auto' (sim when every episode has "
                                  "ground truth, else detected), 'sim' or 'detected'")
    min_episodes: int = setting(20, 'Episodes a version needs before it is judged or can be best')
    alpha: float = setting(0.05, 'One-sided significance level of the drop test')
    min_drop: float = setting(0.05, 'Smallest absolute drop in success rate worth acting on')
    patience: int = setting(2, 'Significant drops in a row (rollbacks) before stopping')
    max_iterations: int = setting(0, 'Stop after this many Stage-2 versions; 0 = no limit')

    def __post_init__(self):
        require(self.signal in SIGNALS, f'signal must be one of {SIGNALS}, got {self.signal!r}')
        for name, low in (('min_episodes', 1), ('patience', 1), ('max_iterations', 0)):
            value = getattr(self, name)
            require(isinstance(value, int) and not isinstance(value, bool) and value >= low,
                    f'{name} must be an integer >= {low}, got {value!r}')
        require(0 < self.alpha < 1, f'alpha must be in (0, 1), got {self.alpha!r}')
        require(0 <= self.min_drop < 1, f'min_drop must be in [0, 1), got {self.min_drop!r}')


@dataclass(frozen=True)
class Decision:
    """What to do with the deployed version, and why, in words an operator can check."""

    action: str                    # one of ACTIONS
    current_version: str
    best_version: Optional[str]    # deploy this one on 'rollback' and keep it on 'stop'
    reason: str
    signal: str                    # the resolved signal: 'sim' or 'detected'
    p_value: Optional[float] = None
    drop: Optional[float] = None   # best rate - current rate
    rollbacks_in_a_row: int = 0    # including this drop on 'rollback' and 'stop'


def drop_p_value(best_successes: int, best_trials: int, successes: int, trials: int) -> float:
    """Return the one-sided Fisher exact p-value of 'the current version is worse than best'.

    Under H0 both versions share one success rate; given the total successes, best's count is
    hypergeometric, and p is the chance of best getting at least the successes it got. Exact
    integer arithmetic; equals scipy.stats.fisher_exact(..., alternative='greater').
    """
    total, total_successes = best_trials + trials, best_successes + successes
    low = max(best_successes, total_successes - trials)
    high = min(best_trials, total_successes)
    tail = sum(math.comb(total_successes, k) * math.comb(total - total_successes, best_trials - k)
               for k in range(low, high + 1))
    return min(1.0, tail / math.comb(total, best_trials))


def _p(p: float) -> str:
    return 'p<0.001' if p < 0.001 else f'p={p:.3f}'


def _judge(history: VersionHistory, current, best: Optional[str], config: StoppingConfig):
    """Return (action, why, numbers) of the comparison, before max_iterations applies."""
    if current.trials < config.min_episodes:
        return 'continue', (f'{current.trials} of {config.min_episodes} episodes needed before '
                            'judging'), {}
    if best == current.version:
        return 'continue', f'{best} is the best so far', {}
    top = history.rate(best, current.kind)
    p = drop_p_value(top.successes, top.trials, current.successes, current.trials)
    numbers = {'p_value': p, 'drop': top.rate - current.rate}
    if p >= config.alpha:
        return 'continue', f'{_p(p)} >= {config.alpha:g}, not significantly worse', numbers
    if numbers['drop'] < config.min_drop:
        return 'continue', (f'{_p(p)} but the drop {numbers["drop"]:.0%} is below min_drop '
                            f'{config.min_drop:.0%}'), numbers
    streak = history.rollback_streak(current.version) + 1
    numbers['rollbacks_in_a_row'] = streak
    why = f'{_p(p)} < {config.alpha:g}'
    if streak >= config.patience:
        return 'stop', (f'{why}, significant drop {streak} in a row (patience {config.patience}):'
                        ' practice is past its peak'), numbers
    return 'rollback', why, numbers


def decide(history: VersionHistory, current_version: str,
           config: Optional[StoppingConfig] = None) -> Decision:
    """Judge `current_version` against the best version so far; see the module docstring."""
    config = config or StoppingConfig()
    history.record(current_version)
    kind = history.resolve_kind(config.signal)
    best = history.best(kind, config.min_episodes)
    facts = f'{current_version} succeeded {history.rate(current_version, kind).describe()}'
    if best is not None and best != current_version:
        facts += f' vs best {best} {history.rate(best, kind).describe()}'
    facts += f' [{SIGNAL_NAMES[kind]}]'
    action, why, numbers = _judge(history, history.rate(current_version, kind), best, config)
    keep = best or current_version
    if (action != 'stop' and config.max_iterations
            and history.iterations() >= config.max_iterations):
        action, why = 'stop', (f'{why}; {history.iterations()} Stage-2 versions reach '
                               f'max_iterations {config.max_iterations}')
    then = {'continue': 'continuing', 'rollback': f'rolling back to {best}',
            'stop': f'stopping with {keep}'}[action]
    return Decision(action, current_version, keep if action == 'stop' else best,
                    f'{facts}: {why}, {then}', kind, **numbers)


def _cell(rate) -> str:
    if not rate.trials:
        return '-'
    return f'{rate.rate:.0%} [{rate.low * 100:.0f}-{rate.high * 100:.0f}]'


def _notes(history: VersionHistory, version: str, best: Optional[str], current: str) -> str:
    notes = (['best'] if version == best else []) + (['current'] if version == current else [])
    target = history.record(version).rolled_back_to
    return ', '.join(notes + ([f'rolled back to {target}'] if target else []))


def history_table(history: VersionHistory, current: Optional[str] = None,
                  config: Optional[StoppingConfig] = None) -> str:
    """Return a terminal table: version, parent, episodes, success % [95% CI] per signal, notes.

    `current` defaults to the last deployed version; 'best' follows the rule's signal and
    min_episodes from `config`.
    """
    config = config or StoppingConfig()
    versions = history.versions()
    current = current if current is not None else (versions[-1] if versions else None)
    best = history.best(history.resolve_kind(config.signal), config.min_episodes)
    rows = [('version', 'parent', 'episodes', 'detected % [CI]', 'sim % [CI]', 'notes')]
    for version in versions:
        record = history.record(version)
        rows.append((version, record.parent or '-', str(record.episodes),
                     _cell(history.rate(version, 'detected')), _cell(history.rate(version, 'sim')),
                     _notes(history, version, best, current)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ['  '.join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
             for row in rows]
    lines.insert(1, '  '.join('-' * width for width in widths))
    signal = SIGNAL_NAMES[history.resolve_kind(config.signal)]
    lines.append(f'best = highest lower 95% bound by {signal} with >= {config.min_episodes} '
                 'episodes' + ('' if best else ' (none yet)'))
    return '\n'.join(lines)


def plot_history(history: VersionHistory, path: str,
                 config: Optional[StoppingConfig] = None) -> str:
    """Plot success per version with 95% CI error bars for both signals; return the PNG path."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt
    config = config or StoppingConfig()
    versions = history.versions()
    best = history.best(history.resolve_kind(config.signal), config.min_episodes)
    labels = [f'{v}\n({history.record(v).parent or "-"})' for v in versions]
    # Version names are long ('<stage1>-it3'): give each tick room for its widest line [in].
    widest = max((len(line) for label in labels for line in label.split('\n')), default=8)
    figure, axis = plt.subplots(figsize=(max(5.0, 0.075 * widest * len(versions) + 1.5), 4.5))
    for offset, kind, color in ((-0.1, 'detected', 'C0'), (0.1, 'sim', 'C1')):
        points = [(i + offset, r) for i, r in enumerate(history.rate(v, kind) for v in versions)
                  if r.trials]
        if points:
            axis.errorbar([x for x, _ in points], [r.rate * 100 for _, r in points],
                          yerr=[[(r.rate - r.low) * 100 for _, r in points],
                                [(r.high - r.rate) * 100 for _, r in points]],
                          fmt='o', color=color, capsize=3, label=f'{SIGNAL_NAMES[kind]}')
    for index, version in enumerate(versions):
        if history.record(version).rolled_back_to:
            axis.axvspan(index - 0.4, index + 0.4, color='red', alpha=0.08)
        if version == best:
            axis.axvspan(index - 0.4, index + 0.4, color='gold', alpha=0.25, label='best')
    axis.set_xticks(range(len(versions)))
    axis.set_xticklabels(labels, fontsize=8)
    axis.set_xlim(-0.6, max(len(versions) - 0.4, 0.6))
    axis.set_ylim(0, 100)
    axis.set_xlabel('policy version (parent); red = rolled back')
    axis.set_ylabel('success [%], 95% Wilson CI')
    axis.set_title(f'Stage-2 success per version, best: {best or "none yet"}')
    if axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize=8, loc='best')
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
