"""The value landscape: predicted vs true steps-to-go over held-out successful episodes.

The paper's check before any practice: if d(o, g) does not fall steadily towards the goal on
episodes it has not trained on, its rewards will teach the policy nothing. Numbers: Spearman rank
correlation (does d order the ticks of an episode correctly?) and mean absolute error [ticks].
"""

import json
import os

import numpy as np
import torch


@torch.no_grad()
def predict_steps_to_go(model, codec, episode, batch_size: int = 64) -> np.ndarray:
    """Return d(o_t, g) [control ticks] for every tick of `episode` with a torch model."""
    model.eval()
    images = np.stack([episode.images[cam] for cam in codec.config.cameras], axis=1)
    instruction = torch.from_numpy(codec.encode_instructions([episode.instruction]))
    values = torch.from_numpy(codec.steps.values)
    out = []
    for start in range(0, episode.length, batch_size):
        stop = min(start + batch_size, episode.length)
        logits = model(torch.from_numpy(images[start:stop]),
                       torch.from_numpy(episode.joints[start:stop]),
                       instruction.expand(stop - start, -1))[1]
        out.append((logits.float().softmax(-1) @ values).numpy())
    return np.concatenate(out)


def true_steps_to_go(episode, max_steps: int) -> np.ndarray:
    """Return the label: ticks until the first success tick, clipped to [0, max_steps]."""
    ticks = np.arange(episode.length)
    return np.clip(episode.success_tick - ticks, 0, max_steps).astype(np.float32)


def value_landscape(model, codec, episodes, out_dir: str, name: str = 'value_landscape') -> dict:
    """Score successful `episodes`, write `<name>.json` and `<name>.png` into out_dir."""
    from scipy.stats import spearmanr
    episodes = [ep for ep in episodes if ep.succeeded]
    if not episodes:
        raise ValueError('the value landscape needs held-out successful episodes; none given')
    rows, curves = [], []
    for ep in episodes:
        predicted = predict_steps_to_go(model, codec, ep)
        truth = true_steps_to_go(ep, codec.steps.max_steps)
        rho = spearmanr(predicted, truth).statistic if np.ptp(truth) > 0 else float('nan')
        rows.append({'episode_id': ep.episode_id, 'ticks': ep.length,
                     'spearman': float(rho), 'mae_ticks': float(np.abs(predicted - truth).mean())})
        curves.append((ep.episode_id, truth, predicted))
    all_pred = np.concatenate([c[2] for c in curves])
    all_true = np.concatenate([c[1] for c in curves])
    report = {
        'episodes': len(rows),
        'spearman': float(spearmanr(all_pred, all_true).statistic),
        'mean_episode_spearman': float(np.nanmean([r['spearman'] for r in rows])),
        'mae_ticks': float(np.abs(all_pred - all_true).mean()),
        'per_episode': rows,
    }
    os.makedirs(out_dir, exist_ok=True)
    report['plot'] = plot_landscape(curves, os.path.join(out_dir, f'{name}.png'), report)
    with open(os.path.join(out_dir, f'{name}.json'), 'w') as handle:
        json.dump(report, handle, indent=1)
    return report


def plot_landscape(curves, path: str, report: dict) -> str:
    """Plot predicted (solid) and true (dashed) steps-to-go per episode; return the path."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt
    figure, axis = plt.subplots(figsize=(8, 4.5))
    for index, (episode_id, truth, predicted) in enumerate(curves[:12]):
        color = f'C{index % 10}'
        axis.plot(predicted, color=color, label=episode_id)
        axis.plot(truth, color=color, linestyle='--', linewidth=0.8)
    axis.set_xlabel('control tick')
    axis.set_ylabel('steps-to-go [ticks]')
    axis.set_title(f'value landscape: Spearman {report["spearman"]:.2f}, '
                   f'MAE {report["mae_ticks"]:.1f} ticks (dashed = truth)')
    axis.legend(fontsize=6, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
