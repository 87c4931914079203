"""Train/validation split by whole episodes, so no episode's ticks leak across the split."""

import hashlib


def split_by_episode(episodes, val_fraction: float, seed: int = 0):
    """Return (train, val) lists of episodes, each in input order.

    The validation set is the round(val_fraction * n) episodes (at least one when the fraction
    is > 0 and there are two or more episodes, never all of them) whose hash of (seed,
    episode_id) is smallest: deterministic, independent of load order, and an episode keeps
    its side when more episodes are added later as long as the set size allows it.
    """
    if not 0 <= val_fraction < 1:
        raise ValueError(f'val_fraction must be in [0, 1), got {val_fraction!r}')
    episodes = list(episodes)
    ids = [e.episode_id for e in episodes]
    if len(set(ids)) != len(ids):
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f'episode ids repeat ({repeated}); the same bag loaded twice?')
    count = len(episodes)
    n_val = round(val_fraction * count)
    if val_fraction > 0 and count >= 2:
        n_val = min(max(n_val, 1), count - 1)
    else:
        n_val = 0
    rank = sorted(range(count), key=lambda i: hashlib.sha256(
        f'{seed}:{ids[i]}'.encode()).hexdigest())
    val = set(rank[:n_val])
    return ([e for i, e in enumerate(episodes) if i not in val],
            [e for i, e in enumerate(episodes) if i in val])
