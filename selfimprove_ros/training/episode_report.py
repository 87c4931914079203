"""Success rates and the mean steps-to-go curve of a set of labelled episodes (one version)."""

import json
import os

import numpy as np

from selfimprove_ros.data.episode_labelling import read_labels
from selfimprove_ros.training.version_history import wilson_interval


def rate(successes: int, trials: int) -> dict:
    """Return a success rate with its 95% Wilson interval and a readable form."""
    low, high = wilson_interval(successes, trials)
    value = successes / trials if trials else float('nan')
    return {'successes': successes, 'trials': trials, 'rate': value, 'low': low, 'high': high,
            'describe': f'{successes}/{trials} ({value:.0%}, 95% CI {low:.0%}-{high:.0%})'}


def episode_report(bag_dirs, out_dir: str, version: str, name: str = 'eval') -> dict:
    """Read each bag's labels; write `<name>.json` and `<name>_steps_to_go.png` in out_dir."""
    labels = [read_labels(path) for path in bag_dirs]
    if not labels:
        raise ValueError('no labelled episodes to report on')
    sim = [lab.sim_success for lab in labels if lab.sim_success is not None]
    curves = [lab.steps_to_go for lab in labels]
    longest = max(len(c) for c in curves)
    padded = np.full((len(curves), longest), np.nan)
    for row, curve in enumerate(curves):
        padded[row, :len(curve)] = curve
    report = {
        'version': version,
        'sim_success': rate(sum(sim), len(sim)),
        'detected_success': rate(sum(lab.outcome == 'success' for lab in labels), len(labels)),
        'mean_steps_to_go': np.nanmean(padded, axis=0).round(2).tolist(),
        # How close episodes came and where they ended, by the frozen reward model [ticks]:
        # progress that has not (yet) turned into simulator successes shows here first.
        'mean_closest_steps_to_go': float(np.mean([np.min(c) for c in curves])),
        'mean_final_steps_to_go': float(np.mean([c[-1] for c in curves])),
        'episodes': [{'episode_id': lab.episode_id, 'outcome': lab.outcome,
                      'sim_success': lab.sim_success, 'ticks': len(lab.steps_to_go),
                      'final_steps_to_go': float(lab.steps_to_go[-1]),
                      'bag': os.path.dirname(lab.path)} for lab in labels],
    }
    os.makedirs(out_dir, exist_ok=True)
    report['plot'] = plot_curve(padded, os.path.join(out_dir, f'{name}_steps_to_go.png'),
                                report)
    with open(os.path.join(out_dir, f'{name}.json'), 'w') as handle:
        json.dump(report, handle, indent=1)
    return report


def plot_curve(padded: np.ndarray, path: str, report: dict) -> str:
    """Plot every episode's d(o_t, g) faintly and their mean boldly; return the path."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt
    figure, axis = plt.subplots(figsize=(7, 4))
    for curve in padded:
        axis.plot(curve, color='0.75', linewidth=0.8)
    axis.plot(np.nanmean(padded, axis=0), color='C0', linewidth=2, label='mean')
    axis.set_xlabel('control tick')
    axis.set_ylabel('predicted steps-to-go d(o, g) [ticks]')
    axis.set_title(f'{report["version"]}: sim success {report["sim_success"]["describe"]}',
                   fontsize=9)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
