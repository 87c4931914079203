"""REINFORCE on recorded practice: decisions, returns, the loss, and one iteration of updates.

A decision is one sampled action chunk: the observation o_t at the tick the policy was queried,
the tokens a_t it sampled, and the reward of executing the chunk, r_t = d(o_t, g) - d(o_t', g)
with t' the next decision (or the episode's last tick): the per-tick rewards of the labels
summed over the chunk, which telescope to exactly that. R_t = sum_i gamma^(i-t) r_i over
decisions; loss = -c * R_t * log pi(a_t | o_t, g), where log pi of a chunk is the sum of its
token log-probabilities. No baseline by default, as the paper: the potential-based shaping
carries one implicitly when the policy makes progress. `baseline: mean` subtracts the
iteration's mean return instead, for a policy whose practice mostly fails (see run_iteration).
"""

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from selfimprove_ros.core.rewards import discounted_returns


@dataclass
class Decisions:
    """On-policy decisions of one or more episodes, as arrays."""

    images: np.ndarray       # uint8 [N, N_cam, H, W, 3]
    joints: np.ndarray       # float32 [N, 14]
    instructions: list       # [N] str
    tokens: np.ndarray       # int64 [N, chunk*14]
    returns: np.ndarray      # float32 [N] R_t [control ticks]
    rewards: np.ndarray      # float32 [N] r_t [control ticks]
    episode_ids: list        # [N] str

    def __len__(self):
        """Return the number of decisions."""
        return len(self.returns)

    @staticmethod
    def concatenate(parts):
        """Join several Decisions into one."""
        parts = [p for p in parts if len(p)]
        if not parts:
            raise ValueError('no decisions to concatenate')
        return Decisions(*(np.concatenate([getattr(p, f) for p in parts])
                           if f not in ('instructions', 'episode_ids')
                           else sum((getattr(p, f) for p in parts), [])
                           for f in ('images', 'joints', 'instructions', 'tokens', 'returns',
                                     'rewards', 'episode_ids')))


def episode_decisions(episode, labels, version: str, gamma: float, cameras) -> Decisions:
    """Return the decisions of `episode` that policy `version` sampled, with their returns.

    `labels` (runtime.episode_labelling.TickLabels) must belong to the same bag; ticks are
    matched by stamp, so a tick the episode lacks is never paired with another's picture.
    """
    if labels.action_tokens is None or labels.token_versions is None:
        raise ValueError(f'{labels.path}: no sampled action tokens; the episode was not driven '
                         'by policy_node, so it cannot train the policy')
    index = {int(stamp): i for i, stamp in enumerate(episode.tick_ns)}
    decided = np.flatnonzero(labels.decision)
    if len(decided) == 0:
        return _empty(episode, cameras, labels)
    # r of a decision: the labels' per-tick rewards summed until the next decision.
    bounds = list(decided) + [len(labels.rewards)]
    rewards = np.array([labels.rewards[a:b].sum() for a, b in zip(bounds[:-1], bounds[1:])])
    returns = discounted_returns(rewards, gamma)
    keep = [k for k, t in enumerate(decided)
            if labels.token_versions[t] == version and int(labels.tick_ns[t]) in index]
    if not keep:
        return _empty(episode, cameras, labels)
    ticks = [index[int(labels.tick_ns[decided[k]])] for k in keep]
    images = np.stack([np.stack([episode.images[cam][t] for cam in cameras]) for t in ticks])
    return Decisions(images=images, joints=episode.joints[ticks].astype(np.float32),
                     instructions=[episode.instruction] * len(keep),
                     tokens=labels.action_tokens[decided[keep]].astype(np.int64),
                     returns=returns[keep].astype(np.float32),
                     rewards=rewards[keep].astype(np.float32),
                     episode_ids=[episode.episode_id] * len(keep))


def _empty(episode, cameras, labels) -> Decisions:
    width = labels.action_tokens.shape[1] if labels.action_tokens is not None else 0
    first = episode.images[cameras[0]]
    return Decisions(np.zeros((0, len(cameras), *first.shape[1:]), np.uint8),
                     np.zeros((0, 14), np.float32), [], np.zeros((0, width), np.int64),
                     np.zeros(0, np.float32), np.zeros(0, np.float32), [])


def chunk_log_prob(action_logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Return log pi(a | o) [B]: the sum over a chunk's tokens of their log-probabilities."""
    logp = F.log_softmax(action_logits.float(), dim=-1)
    return logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1).sum(-1)


def reinforce_loss(action_logits, tokens, returns, loss_scale: float) -> torch.Tensor:
    """Return mean over the batch of -c * R_t * log pi(a_t | o_t, g)."""
    return -(loss_scale * returns * chunk_log_prob(action_logits, tokens)).mean()


def minibatches(count: int, updates: int, batch_size: int, rng: np.random.Generator):
    """Split a shuffled buffer of `count` decisions into `updates` minibatches, no replacement.

    With fewer than updates x batch decisions the minibatches shrink rather than reuse data: the
    paper samples without replacement and clears the buffer after the iteration.
    """
    order = rng.permutation(count)
    size = min(batch_size, max(1, count // updates))
    return [order[i * size:(i + 1) * size] for i in range(updates) if i * size < count]


def run_iteration(model, optimizer, decisions: Decisions, codec, config, device, step_seed: int):
    """Run one iteration of REINFORCE updates on `decisions`; return mean metrics."""
    rng = np.random.default_rng([config.seed, step_seed])
    model.train()
    if not any(p.requires_grad for p in model.encoder.parameters()):
        # A frozen encoder (Stage 2) keeps its BatchNorm statistics too: in train mode a
        # ResNet would normalise with batch statistics and drift its running ones.
        model.encoder.eval()
    metrics = {'loss': 0.0, 'log_prob': 0.0, 'grad_norm': 0.0}
    # A mean baseline leaves the expected gradient unchanged and removes the push every sampled
    # chunk gets from returns that share one sign: measured in sim, a 10 % policy whose practice
    # returns were mostly negative lost its successes in one iteration without it.
    offset = float(decisions.returns.mean()) if config.baseline == 'mean' else 0.0
    batches = minibatches(len(decisions), config.updates_per_iteration, config.batch_size, rng)
    for rows in batches:
        images = torch.from_numpy(decisions.images[rows]).to(device)
        joints = torch.from_numpy(decisions.joints[rows]).to(device)
        words = torch.from_numpy(codec.encode_instructions(
            [decisions.instructions[i] for i in rows])).to(device)
        tokens = torch.from_numpy(decisions.tokens[rows]).to(device)
        returns = torch.from_numpy(decisions.returns[rows] - offset).to(device)
        logits = model(images, joints, words)[0]
        loss = reinforce_loss(logits, tokens, returns, config.loss_scale)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(
            [p for p in model.parameters() if p.requires_grad],
            config.grad_clip if config.grad_clip > 0 else float('inf'))
        optimizer.step()
        metrics['loss'] += loss.item() / len(batches)
        metrics['log_prob'] += chunk_log_prob(logits.detach(), tokens).mean().item() / len(batches)
        metrics['grad_norm'] += float(norm) / len(batches)
    metrics.update(updates=len(batches), decisions=len(decisions),
                   mean_return=float(decisions.returns.mean()), baseline=offset,
                   mean_reward=float(decisions.rewards.mean()))
    return metrics
