"""Success-filtered behaviour cloning: an iteration fits the chunks of its successful episodes.

The reference every practice setting must beat (issue 21), and so far the only one that paid:
REINFORCE with a 0/1 return, trained to convergence. Practice samples wide distributions (an
arm token's is 2-10 bins wide), and a success bit says little about which of an episode's
~1,300 draws mattered, so a policy gradient of small steps moved nothing and larger ones did
harm. Fitting the successful chunks several times over, with the soft targets Stage 1 was
trained with, moves the policy towards what worked in the scenes where it worked, and the
greedy policy with it. A success is the detector's verdict, or on insertion the simulator's
(policy_gradient.episode_success). Its null control (`shuffle_returns`) fits as many episodes
chosen blind, which keeps everything but the verdicts.
"""

import copy

import numpy as np
import torch

from selfimprove_ros.training.losses import token_cross_entropy
from selfimprove_ros.training.policy_gradient import (chunk_kl, Decisions, model_inputs,
                                                      train_mode)


def chosen_rows(decisions: Decisions, shuffle: bool, rng: np.random.Generator) -> np.ndarray:
    """Return the rows of the decisions of successful episodes.

    With `shuffle` (the null control) the verdicts are permuted across episodes first: as many
    episodes are chosen, blind to which succeeded.
    """
    episodes, first = np.unique(np.asarray(decisions.episode_ids), return_index=True)
    verdicts = decisions.successes[first]
    if shuffle:
        verdicts = rng.permutation(verdicts)
    chosen = set(episodes[verdicts])
    return np.flatnonzero([episode in chosen for episode in decisions.episode_ids])


def fit_successes(model, optimizer, decisions: Decisions, codec, config, device,
                  step_seed: int) -> dict:
    """Fit the successful episodes' chunks for `config.updates_per_iteration` steps.

    Minibatches of `config.batch_size` are drawn with replacement; the learning rate falls from
    `config.lr` to 0 by cosine within the iteration (each iteration fits a new set). Returns
    mean metrics, as `policy_gradient.run_iteration` does.
    """
    rng = np.random.default_rng([config.seed, step_seed])
    rows = chosen_rows(decisions, config.shuffle_returns, rng)
    episodes = len(set(decisions.episode_ids))
    metrics = {'updates': 0, 'decisions': len(decisions), 'fitted_decisions': len(rows),
               'episodes': episodes, 'fitted_episodes': len({decisions.episode_ids[i]
                                                             for i in rows}),
               'loss': 0.0, 'first_loss': 0.0, 'grad_norm': 0.0, 'kl': 0.0,
               'mean_return': float(decisions.returns.mean()) if len(decisions) else 0.0}
    if len(rows) == 0:
        return metrics  # no success to learn from: the version stays as it was
    practised = copy.deepcopy(model).eval()
    train_mode(model)
    moving = [p for p in model.parameters() if p.requires_grad]
    steps = config.updates_per_iteration
    for step in range(steps):
        for group in optimizer.param_groups:
            group['lr'] = config.lr * 0.5 * (1.0 + np.cos(np.pi * step / steps))
        images, joints, words, tokens = model_inputs(
            decisions, rng.choice(rows, config.batch_size), codec, device)
        logits = model(images, joints, words)[0].float()
        loss = token_cross_entropy(logits.flatten(0, 1), tokens.flatten(),
                                   config.soft_target_sigma_bins).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(
            moving, config.grad_clip if config.grad_clip > 0 else float('inf'))
        optimizer.step()
        metrics['first_loss'] = metrics['first_loss'] or loss.item()
        metrics['loss'] += loss.item() / steps
        metrics['grad_norm'] += float(norm) / steps
    for group in optimizer.param_groups:
        group['lr'] = config.lr  # the next iteration's schedule starts from the top again
    metrics['updates'] = steps
    model.eval()
    with torch.no_grad():  # how far the iteration moved the policy, on its own successes
        images, joints, words, _ = model_inputs(decisions, rows[:config.batch_size], codec,
                                                device)
        metrics['kl'] = chunk_kl(practised(images, joints, words)[0],
                                 model(images, joints, words)[0]).mean().item()
    return metrics
