"""Rewards and returns of Stage 2: r_t = d(o_t, g) - d(o_{t+1}, g), R_t = sum gamma^(i-t) r_i.

Steps are decision steps: the observations at which the policy sampled a new action chunk. With
chunks of 5 at 10 Hz a decision spans 5 control ticks, and the reward of a decision is how much
closer (in predicted ticks) the chunk brought the robot to the goal. The paper does not say how
chunking and rewards interact; treating a chunk as one action keeps log pi(a_t | o_t) and r_t about
the same thing.
"""

import numpy as np


def step_rewards(steps_to_go: np.ndarray, success_bonus: float = 0.0,
                 succeeded_at_end: bool = False) -> np.ndarray:
    """Return r_k = d_k - d_{k+1} [ticks] for the K decisions of an episode.

    `steps_to_go` [K + 1] holds d at each decision's observation followed by d at the episode's
    final observation. `success_bonus` is added to the last reward when `succeeded_at_end` (the
    paper adds a small constant when the simulator reports an insertion the cameras cannot see).
    """
    d = np.asarray(steps_to_go, dtype=np.float64)
    if d.ndim != 1 or len(d) < 2:
        raise ValueError(f'rewards need d at >= 2 observations (decisions + final), got shape '
                         f'{d.shape}')
    if not np.all(np.isfinite(d)):
        raise ValueError('steps-to-go contains NaN or inf; the reward model is broken')
    rewards = d[:-1] - d[1:]
    if succeeded_at_end:
        rewards[-1] += success_bonus
    return rewards


def discounted_returns(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """Return R_t = sum_{i >= t} gamma^(i-t) r_i for every t (episode ends after the last r)."""
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f'gamma must be in [0, 1], got {gamma!r}')
    returns = np.zeros(len(rewards), dtype=np.float64)
    running = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        running = rewards[t] + gamma * running
        returns[t] = running
    return returns
