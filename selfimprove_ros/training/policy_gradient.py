"""REINFORCE on recorded practice: decisions, returns, the loss, and one iteration of updates.

A decision is one sampled action chunk: the observation o_t at the tick the policy was queried,
the tokens a_t it sampled, and the reward of executing the chunk, r_t = d(o_t, g) - d(o_t', g)
with t' the next decision (or the episode's last tick): the per-tick rewards of the labels
summed over the chunk, which telescope to exactly that. R_t = sum_i gamma^(i-t) r_i over
decisions; loss = -c * R_t * log pi(a_t | o_t, g), where log pi of a chunk is the sum of its
token log-probabilities. No baseline by default, as the paper: the potential-based shaping
carries one implicitly when the policy makes progress. `baseline: mean` or `step` subtracts one
(see `baseline`); `returns_until: closest_approach` ends an episode at its smallest d.
"""

import copy
from dataclasses import dataclass, replace

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
    steps: np.ndarray        # int64 [N] index of the decision in its episode (0 = first)
    successes: np.ndarray    # bool [N] the decision's episode succeeded (episode_success)

    FIELDS = ('images', 'joints', 'instructions', 'tokens', 'returns', 'rewards', 'episode_ids',
              'steps', 'successes')  # in constructor order

    def __len__(self):
        """Return the number of decisions."""
        return len(self.returns)

    def take(self, rows) -> 'Decisions':
        """Return the decisions at `rows` (indices into this one)."""
        rows = np.asarray(rows, dtype=np.int64)
        return Decisions(*(getattr(self, f)[rows] if f not in ('instructions', 'episode_ids')
                           else [getattr(self, f)[i] for i in rows] for f in self.FIELDS))

    @staticmethod
    def concatenate(parts):
        """Join several Decisions into one (an empty one if every part is empty)."""
        if not parts:
            raise ValueError('no decisions to concatenate')
        parts = [p for p in parts if len(p)] or parts[:1]
        return Decisions(*(np.concatenate([getattr(p, f) for p in parts])
                           if f not in ('instructions', 'episode_ids')
                           else sum((getattr(p, f) for p in parts), [])
                           for f in Decisions.FIELDS))


def episode_decisions(episode, labels, version: str, gamma: float, cameras,
                      returns_until: str = 'end') -> Decisions:
    """Return the decisions of `episode` that policy `version` sampled, with their returns.

    `labels` (data.episode_labelling.TickLabels) must belong to the same bag; ticks are
    matched by stamp, so a tick the episode lacks is never paired with another's picture.
    `returns_until` 'closest_approach' ends the episode at `closest_approach(labels)`.
    """
    if labels.action_tokens is None or labels.token_versions is None:
        raise ValueError(f'{labels.path}: no sampled action tokens; the episode was not driven '
                         'by policy_node, so it cannot train the policy')
    index = {int(stamp): i for i, stamp in enumerate(episode.tick_ns)}
    end = len(labels.rewards)
    if returns_until == 'closest_approach':
        end = closest_approach(labels.steps_to_go)
    elif returns_until != 'end':
        raise ValueError(f"returns_until must be 'end' or 'closest_approach', got "
                         f'{returns_until!r}')
    decided = np.flatnonzero(labels.decision[:end])
    if len(decided) == 0:
        return _empty(episode, cameras, labels)
    # r of a decision: the labels' per-tick rewards summed until the next decision.
    bounds = list(decided) + [end]
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
                     episode_ids=[episode.episode_id] * len(keep),
                     steps=np.asarray(keep, dtype=np.int64),
                     successes=np.full(len(keep), episode_success(labels)))


def episode_success(labels) -> bool:
    """Return whether the episode counts as a success for learning.

    The detector's verdict, or the simulator's where the labels gave its success a bonus: a full
    insertion is invisible to the cameras, so there the paper rewards what the simulator knows
    (sim/aloha_sim.py SUCCESS_BONUS); where the bonus is 0 the simulator's verdict stays out.
    """
    return labels.outcome == 'success' or bool(labels.success_bonus > 0 and labels.sim_success)


def closest_approach(steps_to_go, tolerance_ticks: float = 1.0) -> int:
    """Return the tick of the episode's closest approach to the goal.

    That is the last tick whose d [ticks] is within `tolerance_ticks` of the smallest: the last,
    not the first, so a success that holds d near 0 for the detector's few ticks keeps them.
    Cut there, the episode's rewards telescope to d_0 - d_closest.
    """
    d = np.asarray(steps_to_go, dtype=np.float64)
    if len(d) == 0:
        return 0
    return int(np.flatnonzero(d <= d.min() + tolerance_ticks)[-1])


def _empty(episode, cameras, labels) -> Decisions:
    width = labels.action_tokens.shape[1] if labels.action_tokens is not None else 0
    first = episode.images[cameras[0]]
    return Decisions(np.zeros((0, len(cameras), *first.shape[1:]), np.uint8),
                     np.zeros((0, 14), np.float32), [], np.zeros((0, width), np.int64),
                     np.zeros(0, np.float32), np.zeros(0, np.float32), [],
                     np.zeros(0, np.int64), np.zeros(0, bool))


def chunk_log_prob(action_logits: torch.Tensor, tokens: torch.Tensor,
                   sampler: str = 'independent', temperature: float = 1.0,
                   joints: int = 14) -> torch.Tensor:
    """Return log pi(a | o) [B]: the log-probability with which the sampler drew each chunk.

    'independent': the sum over the chunk's tokens of their (tempered) log-probabilities.
    'chunk_quantile' (runtime/token_sampling.py): per joint, the log of the overlap of the
    ticks' bins [cdf(b - 1), cdf(b)) under the tempered distribution, summed over joints.
    """
    logp = F.log_softmax(action_logits.float() / temperature, dim=-1)
    if sampler == 'independent':
        return logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1).sum(-1)
    probs = logp.exp().reshape(len(logp), -1, joints, logp.shape[-1])
    chosen = tokens.reshape(len(tokens), -1, joints, 1)
    upper = probs.cumsum(-1).gather(-1, chosen).squeeze(-1)
    lower = upper - probs.gather(-1, chosen).squeeze(-1)
    overlap = upper.min(dim=1).values - lower.max(dim=1).values
    return overlap.clamp_min(1e-30).log().sum(-1)


def reinforce_loss(action_logits, tokens, returns, loss_scale: float, sampler='independent',
                   temperature: float = 1.0) -> torch.Tensor:
    """Return mean over the batch of -c * R_t * log pi(a_t | o_t, g)."""
    logp = chunk_log_prob(action_logits, tokens, sampler, temperature)
    return -(loss_scale * returns * logp).mean()


def minibatches(count: int, updates: int, batch_size: int, rng: np.random.Generator):
    """Split a shuffled buffer of `count` decisions into `updates` minibatches, no replacement.

    With fewer than updates x batch decisions the minibatches shrink rather than reuse data: the
    paper samples without replacement and clears the buffer after the iteration.
    """
    order = rng.permutation(count)
    size = min(batch_size, max(1, count // updates))
    return [order[i * size:(i + 1) * size] for i in range(updates) if i * size < count]


def baseline(decisions: Decisions, kind: str) -> np.ndarray:
    """Return b [N] float32, subtracted from each decision's return; none changes E[gradient].

    'mean': the iteration's mean return. It removes the push every sampled chunk gets from
    returns that share one sign: measured in sim, a 10 % policy whose practice returns were
    mostly negative lost its successes in one iteration without it.
    'step': the mean return of the iteration's decisions at the same step of their episodes.
    Returns shrink along an episode (d falls towards 0, so late decisions can gain little),
    so against one mean every early chunk looks good and every late one bad, whatever it did;
    per step, a chunk is compared with what the other episodes did at that point.
    """
    if kind == 'none':
        return np.zeros(len(decisions), np.float32)
    if kind == 'mean':
        return np.full(len(decisions), decisions.returns.mean(), np.float32)
    if kind != 'step':
        raise ValueError(f"baseline must be 'none', 'mean' or 'step', got {kind!r}")
    offsets = np.zeros(len(decisions), np.float32)
    for step in np.unique(decisions.steps):
        same = decisions.steps == step
        offsets[same] = decisions.returns[same].mean()
    return offsets


def sampling_surprise(model, decisions: Decisions, codec, device, batch: int = 128):
    """Return -log pi(a|o) - H(pi(.|o)) [N] in nats per chunk, under `model` (eval mode).

    For chunks that `model` sampled at temperature 1 from these very observations it is 0 in
    expectation (the mean log-probability of a distribution's own samples is minus its
    entropy). Chunks sampled by other weights, or from inputs other than these, score far
    higher: REINFORCE on them would be off-policy, with no correction.
    """
    was_training = model.training
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(decisions), batch):
            rows = slice(start, start + batch)
            words = codec.encode_instructions(decisions.instructions[rows])
            logits = model(torch.from_numpy(decisions.images[rows]).to(device),
                           torch.from_numpy(decisions.joints[rows]).to(device),
                           torch.from_numpy(words).to(device))[0]
            logp = F.log_softmax(logits.float(), dim=-1)
            entropy = -(logp.exp() * logp).sum(-1).sum(-1)
            tokens = torch.from_numpy(decisions.tokens[rows]).to(device)
            chosen = logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1).sum(-1)
            out.append((-chosen - entropy).cpu().numpy())
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def chunk_kl(old_logits: torch.Tensor, new_logits: torch.Tensor) -> torch.Tensor:
    """Return KL(old || new) [B] in nats per chunk: summed over its tokens."""
    old = F.log_softmax(old_logits.float(), dim=-1)
    new = F.log_softmax(new_logits.float(), dim=-1)
    return (old.exp() * (old - new)).sum(-1).sum(-1)


def model_inputs(decisions: Decisions, rows, codec, device):
    """Return (images, joints, instruction words, tokens) of decisions `rows` as tensors."""
    return (torch.from_numpy(decisions.images[rows]).to(device),
            torch.from_numpy(decisions.joints[rows]).to(device),
            torch.from_numpy(codec.encode_instructions(
                [decisions.instructions[i] for i in rows])).to(device),
            torch.from_numpy(decisions.tokens[rows]).to(device))


def train_mode(model):
    """Put `model` in training mode, keeping a frozen encoder's normalisation statistics."""
    model.train()
    if not any(p.requires_grad for p in model.encoder.parameters()):
        # A frozen encoder (Stage 2) keeps its BatchNorm statistics too: in train mode a
        # ResNet would normalise with batch statistics and drift its running ones.
        model.encoder.eval()


def run_iteration(model, optimizer, decisions: Decisions, codec, config, device, step_seed: int):
    """Run one iteration of REINFORCE updates on `decisions`; return mean metrics.

    Before each update the minibatch's KL from the policy that practised is measured; with
    `config.target_kl` the iteration stops once it is exceeded (the policy has moved as far as
    one iteration of evidence should take it).
    """
    rng = np.random.default_rng([config.seed, step_seed])
    if config.shuffle_returns:
        decisions = replace(decisions, returns=rng.permutation(decisions.returns))
    practised = copy.deepcopy(model).eval()
    train_mode(model)
    totals = {'loss': 0.0, 'log_prob': 0.0, 'grad_norm': 0.0}
    offsets = baseline(decisions, config.baseline)
    batches = minibatches(len(decisions), config.updates_per_iteration, config.batch_size, rng)
    done, kl = 0, 0.0
    for rows in batches:
        images, joints, words, tokens = model_inputs(decisions, rows, codec, device)
        returns = torch.from_numpy(decisions.returns[rows] - offsets[rows]).to(device)
        logits = model(images, joints, words)[0]
        with torch.no_grad():
            kl = chunk_kl(practised(images, joints, words)[0], logits).mean().item()
        if config.target_kl and kl > config.target_kl:
            break
        loss = reinforce_loss(logits, tokens, returns, config.loss_scale, config.sampler,
                              config.temperature)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(
            [p for p in model.parameters() if p.requires_grad],
            config.grad_clip if config.grad_clip > 0 else float('inf'))
        optimizer.step()
        done += 1
        totals['loss'] += loss.item()
        totals['log_prob'] += chunk_log_prob(logits.detach(), tokens, config.sampler,
                                             config.temperature).mean().item()
        totals['grad_norm'] += float(norm)
    metrics = {name: value / max(done, 1) for name, value in totals.items()}
    metrics.update(updates=done, decisions=len(decisions), kl=kl,
                   mean_return=float(decisions.returns.mean()),
                   baseline=float(offsets.mean()),
                   mean_reward=float(decisions.rewards.mean()))
    return metrics
