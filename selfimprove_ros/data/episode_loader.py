"""Directories of episode bags -> aligned Episodes for training, each bad bag named and skipped.

Stage 1 of the paper (supervised fine-tuning) learns from successful demonstrations only: the
behaviour-cloning head should imitate behaviour that achieves the task, and steps-to-go is the
number of ticks until the goal, which a failed episode never reached, so it has no defined
label. By default only episodes whose outcome is 'success' are returned; every other episode
is listed in `skipped` with its outcome. `include_failed=True` returns them too: the samples
(`SftSamples`) give them no behaviour-cloning label, and steps-to-go only for ticks up to a
moment the simulator reported the task achieved (see `labels`), so they add observations
with true distances without teaching the policy to fail.
"""

import os

from .assembly import build_episode
from .bag_streams import BadBag, read_bag
from .episode_cache import entry_path, load_entry, save_entry

BAG_FILES = ('metadata.yaml', 'episode.yaml')
BAG_SUFFIXES = ('.mcap', '.db3', '.mcap.damaged')


def is_bag_dir(path) -> bool:
    """Return whether `path` looks like a bag directory (metadata, episode or storage file)."""
    try:
        names = os.listdir(path)
    except OSError:
        return False
    return any(n in BAG_FILES or n.endswith(BAG_SUFFIXES) for n in names)


def find_bags(paths_or_root) -> list:
    """Return the bag directories in `paths_or_root` (a path or a list), searched recursively.

    A path that is itself a bag (or a file in one) is taken as is; otherwise every bag below
    it, sorted.
    """
    roots = [paths_or_root] if isinstance(paths_or_root, (str, os.PathLike)) else paths_or_root
    bags = []
    for root in roots:
        root = os.path.abspath(os.fspath(root))
        if not os.path.exists(root):
            raise FileNotFoundError(f'{root} does not exist; pass bag directories or a '
                                    f'directory that holds them')
        if os.path.isfile(root):
            root = os.path.dirname(root)
        if is_bag_dir(root):
            bags.append(root)
            continue
        for parent, dirs, _ in os.walk(root):
            dirs.sort()
            for name in list(dirs):
                if is_bag_dir(os.path.join(parent, name)):
                    bags.append(os.path.join(parent, name))
                    dirs.remove(name)  # a bag holds no further bags
    return bags


def load_episode(bag_dir, config):
    """Return the Episode of one bag (from the cache when possible); raise BadBag."""
    entry = entry_path(config.cache_dir, bag_dir, config) if config.cache_dir else None
    cached = load_entry(entry, bag_dir) if entry else None
    if isinstance(cached, str):
        raise BadBag(cached)
    if cached is not None:
        return cached
    try:
        episode = build_episode(read_bag(bag_dir, config), config)
    except BadBag as error:
        if entry:
            _store(entry, skipped_reason=str(error))
        raise
    if entry:
        _store(entry, episode=episode)
    return episode


def _store(entry, **content):
    os.makedirs(os.path.dirname(entry), exist_ok=True)
    save_entry(entry, **content)


def load_episodes(paths_or_root, config, log=print):
    """Load every bag in `paths_or_root` with `config` (DatasetConfig).

    Returns (episodes, skipped): the Episodes in path order, and (bag path, reason) for each
    bag that is unusable or, without `config.include_failed`, did not succeed. Every skip and
    every note (dropped ticks, truncated file, missing actions) goes to `log` with the path.
    """
    episodes, skipped = [], []
    for bag in find_bags(paths_or_root):
        try:
            episode = load_episode(bag, config)
        except BadBag as error:
            skipped.append((bag, str(error)))
            log(f'skipping {bag}: {error}')
            continue
        for note in episode.extra.get('notes', []):
            log(f'{bag}: {note}')
        if episode.outcome != 'success' and not config.include_failed:
            reason = (f'excluded: outcome {episode.outcome!r}; Stage 1 trains on successful '
                      f'episodes (include_failed=True keeps it)')
            skipped.append((bag, reason))
            log(f'skipping {bag}: {reason}')
            continue
        episodes.append(episode)
    log(f'loaded {len(episodes)} episodes ({sum(e.length for e in episodes)} ticks) from '
        f'{len(episodes) + len(skipped)} bags; skipped {len(skipped)}')
    return episodes, skipped
