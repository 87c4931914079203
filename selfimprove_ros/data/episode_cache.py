"""Disk cache of aligned, resized episodes: one directory of .npy files per bag and config.

An entry is keyed on the names, sizes and modification times of the bag's files and on the
config fields that change alignment (DatasetConfig.alignment_key), so editing or re-recording
a bag, or asking for another image size, misses the cache; a hit never opens the bag. Frames
are memory-mapped on load, so many episodes cost page cache, not process memory, and
DataLoader workers share them. Bags that cannot be used are cached too, with their reason.
Entries are written under a temporary name and renamed, so readers never see half of one.
Stale entries are never deleted automatically; remove the directory to reclaim space.
"""

import hashlib
import json
import os
import shutil

import numpy as np

from .episode import Episode

# 2: an outcome `success` the simulator denies no longer gets a success tick.
# 3: grasp_target; intended commands are the default action labels. 4: grasp_ticks.
# 5: a cut MCAP's recorded success is outcome 'unknown'.
CACHE_VERSION = 5
META_FILE = 'meta.json'
_SCALARS = ('episode_id', 'robot', 'task', 'instruction', 'policy_version', 'outcome',
            'success_tick', 'sim_success', 'token_versions', 'dropped_ticks', 'extra')
_ARRAYS = ('tick_ns', 'joints', 'actions', 'action_tokens', 'grasp_target', 'grasp_ticks')


def bag_fingerprint(bag_dir) -> list:
    """Return [name, size, mtime_ns] of every file in the bag directory, sorted by name."""
    out = []
    for entry in sorted(os.scandir(bag_dir), key=lambda e: e.name):
        if entry.is_file() and not entry.name.endswith('.tmp'):
            stat = entry.stat()
            out.append([entry.name, stat.st_size, stat.st_mtime_ns])
    return out


def entry_path(cache_dir, bag_dir, config) -> str:
    """Return the cache directory of `bag_dir` read with `config`."""
    key = json.dumps({'version': CACHE_VERSION, 'files': bag_fingerprint(bag_dir),
                      'config': config.alignment_key()}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    return os.path.join(cache_dir, f'{os.path.basename(os.path.normpath(bag_dir))}-{digest}')


def save_entry(entry, episode=None, skipped_reason=None):
    """Write an Episode, or the reason its bag is unusable, as the cache entry `entry`."""
    tmp = f'{entry}.tmp-{os.getpid()}'
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    if episode is None:
        meta = {'skipped': skipped_reason}
    else:
        meta = {name: getattr(episode, name) for name in _SCALARS}
        meta['cameras'] = list(episode.images)
        for name in _ARRAYS:
            if getattr(episode, name) is not None:
                np.save(os.path.join(tmp, f'{name}.npy'), getattr(episode, name))
        for cam, frames in episode.images.items():
            np.save(os.path.join(tmp, f'image_{cam}.npy'), frames)
    with open(os.path.join(tmp, META_FILE), 'w', encoding='utf-8') as stream:
        json.dump(meta, stream)
    try:
        os.rename(tmp, entry)
    except OSError:  # another process stored the same entry first: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)


def load_entry(entry, bag_path):
    """Return the cached Episode, the cached skip reason (str), or None on a miss."""
    try:
        with open(os.path.join(entry, META_FILE), encoding='utf-8') as stream:
            meta = json.load(stream)
    except (OSError, ValueError):
        return None
    if 'skipped' in meta:
        return meta['skipped']

    def array(name, mmap=None):
        file = os.path.join(entry, f'{name}.npy')
        return np.load(file, mmap_mode=mmap) if os.path.exists(file) else None

    scalars = {name: meta[name] for name in _SCALARS}
    return Episode(bag_path=bag_path, images={cam: array(f'image_{cam}', 'r')
                                              for cam in meta['cameras']},
                   **{name: array(name) for name in _ARRAYS}, **scalars)
