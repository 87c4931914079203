"""The statistics of a LeRobot export: per feature, per episode and of the whole dataset."""

import numpy as np

from selfimprove_ros.data.lerobot_format import IMAGE_PREFIX, QUANTILES


def array_stats(values: np.ndarray) -> dict:
    """Return LeRobot's stats of values [N, D] (NaN ignored): min, max, mean, std, count, q.."""
    values = np.asarray(values, dtype=np.float64)
    values = values.reshape(len(values), -1)
    finite = np.isfinite(values)
    count = int(finite.all(axis=1).sum())
    if not finite.any():
        zeros = np.zeros(values.shape[1])
        stats = {'min': zeros, 'max': zeros, 'mean': zeros, 'std': zeros}
        stats.update({f'q{int(q * 100):02d}': zeros for q in QUANTILES})
    else:
        stats = {'min': np.nanmin(values, axis=0), 'max': np.nanmax(values, axis=0),
                 'mean': np.nanmean(values, axis=0), 'std': np.nanstd(values, axis=0)}
        stats.update({f'q{int(q * 100):02d}': np.nanquantile(values, q, axis=0)
                      for q in QUANTILES})
    stats = {key: np.nan_to_num(value) for key, value in stats.items()}
    stats['count'] = np.array([count])
    return stats


def image_histogram(frames: np.ndarray) -> np.ndarray:
    """Return per-channel counts of the 256 levels [3, 256] of a sample of frames.

    Like LeRobot's sample_images: at most ~100 frames and ~150 px a side are looked at.
    """
    frames = frames[::max(1, len(frames) // 100)]
    step = max(1, max(frames.shape[1:3]) // 150)
    sample = frames[:, ::step, ::step]
    return np.stack([np.bincount(sample[..., c].reshape(-1), minlength=256)
                     for c in range(3)]).astype(np.int64)


def histogram_stats(histogram: np.ndarray, frames: int) -> dict:
    """Return image stats [3, 1, 1] in [0, 1] from per-channel level counts [3, 256]."""
    levels = np.arange(256) / 255.0
    total = histogram.sum(axis=1)
    safe = np.maximum(total, 1)
    mean = histogram @ levels / safe
    std = np.sqrt(np.maximum(histogram @ levels ** 2 / safe - mean ** 2, 0.0))
    cumulative = np.cumsum(histogram, axis=1) / safe[:, None]

    def per_channel(values):
        return np.asarray(values, dtype=np.float64).reshape(3, 1, 1)

    stats = {
        'min': per_channel([levels[np.flatnonzero(h)[0]] if h.any() else 0 for h in histogram]),
        'max': per_channel([levels[np.flatnonzero(h)[-1]] if h.any() else 0 for h in histogram]),
        'mean': per_channel(mean), 'std': per_channel(std), 'count': np.array([frames])}
    for q in QUANTILES:
        stats[f'q{int(q * 100):02d}'] = per_channel(
            [levels[min(np.searchsorted(c, q), 255)] for c in cumulative])
    return stats


def add_episode_stats(episodes, rows, numeric):
    """Put stats/<feature>/<stat> into each episode's metadata row (its `_histograms` out).

    `episodes` are the metadata rows, `rows` the matching (chunk, file, frames dict) and
    `numeric` the keys of the frames' numeric features.
    """
    for row, (_, _, frames) in zip(episodes, rows):
        for key in numeric:
            for name, value in array_stats(frames[key]).items():
                row[f'stats/{key}/{name}'] = value.tolist()
        for cam, histogram in row.pop('_histograms').items():
            stats = histogram_stats(histogram, row['length'])
            for name, value in stats.items():
                row[f'stats/{IMAGE_PREFIX + cam}/{name}'] = value.tolist()


def dataset_stats(rows, histograms, numeric, total) -> dict:
    """Return the stats of every numeric feature and camera over all `total` frames."""
    stats = {key: array_stats(np.concatenate([np.asarray(f[key]).reshape(len(f[key]), -1)
                                              for _, _, f in rows]))
             for key in numeric}
    stats.update({IMAGE_PREFIX + cam: histogram_stats(h, total)
                  for cam, h in histograms.items()})
    return stats


def jsonable(stats: dict) -> dict:
    """Return {feature: {stat: nested lists}} of stats holding arrays, for stats.json."""
    return {key: {name: np.asarray(value).tolist() for name, value in entry.items()}
            for key, entry in stats.items()}
