"""Resampling of asynchronous streams onto control ticks: pure functions of stamp arrays.

A tick uses, per stream, the latest sample stamped at or before it, if that sample is young
enough; a tick that some stream cannot fill is dropped and reported, never interpolated or
invented. Stamps are int64 [ns] and need not arrive sorted.
"""

from dataclasses import dataclass, field

import numpy as np


def tick_grid(joint_stamps_ns, period_ns: int, start_ns=None, end_ns=None) -> np.ndarray:
    """Return the tick times [ns]: every `period_ns` from the first joint state at/after start.

    `start_ns` (the episode's `start` event) defaults to the first joint state, `end_ns` (the
    `end` event) to the last one; ticks run up to and including `end_ns`.
    """
    stamps = np.sort(np.asarray(joint_stamps_ns, dtype=np.int64))
    if start_ns is not None:
        stamps = stamps[stamps >= start_ns]
    if stamps.size == 0:
        return np.zeros(0, dtype=np.int64)
    first = int(stamps[0])
    last = int(stamps[-1]) if end_ns is None else int(end_ns)
    if last < first:
        return np.zeros(0, dtype=np.int64)
    return first + np.arange((last - first) // period_ns + 1, dtype=np.int64) * period_ns


def latest_at(stamps_ns, ticks_ns, max_age_ns: int) -> np.ndarray:
    """Return, per tick, the index of the latest sample stamped <= the tick; -1 if none is.

    Samples older than `max_age_ns` at the tick count as none. Indices refer to `stamps_ns` as
    given; of samples sharing a stamp the last one wins.
    """
    stamps = np.asarray(stamps_ns, dtype=np.int64)
    ticks = np.asarray(ticks_ns, dtype=np.int64)
    if stamps.size == 0:
        return np.full(ticks.shape, -1, dtype=np.int64)
    order = np.argsort(stamps, kind='stable')
    position = np.searchsorted(stamps[order], ticks, side='right') - 1
    found = position >= 0
    index = np.where(found, order[np.maximum(position, 0)], -1)
    too_old = found & (ticks - stamps[np.maximum(index, 0)] > max_age_ns)
    return np.where(too_old, -1, index)


@dataclass
class Alignment:
    """Which ticks could be filled and, for those, which sample of each stream fills them."""

    tick_ns: np.ndarray                 # [T] kept tick times [ns]
    indices: dict                       # stream -> [T] sample index for each kept tick
    dropped_ticks: list                 # grid indices of ticks some stream could not fill
    missing: dict = field(default_factory=dict)  # stream -> number of ticks it left empty

    def describe(self, grid_size: int) -> str:
        """Return a one-line account of the dropped ticks, e.g. for a log."""
        causes = ', '.join(f'{name} missing or too old at {n}' for name, n in
                           self.missing.items() if n)
        return f'dropped {len(self.dropped_ticks)} of {grid_size} ticks ({causes})'


def align(ticks_ns, streams: dict, max_age_ns: dict) -> Alignment:
    """Fill ticks from `streams` (name -> sample stamps [ns]) within `max_age_ns[name]`."""
    ticks = np.asarray(ticks_ns, dtype=np.int64)
    found = {name: latest_at(stamps, ticks, max_age_ns[name])
             for name, stamps in streams.items()}
    keep = np.ones(ticks.shape, dtype=bool)
    for index in found.values():
        keep &= index >= 0
    return Alignment(ticks[keep], {name: index[keep] for name, index in found.items()},
                     np.flatnonzero(~keep).tolist(),
                     {name: int(np.sum(index < 0)) for name, index in found.items()})
