"""The newest sample of each input of a controller: complete for a tick, stale, or missing."""

from dataclasses import dataclass

from selfimprove_ros.core.config import require, setting
from selfimprove_ros.core.topics import CAMERA_NAMES


class ObservationSync:
    """Tracks the newest stamp [ns], value and arrival time [s] of each named input.

    A controller answers tick `t` once every input has a sample stamped at or after `t`; in
    lockstep simulation that is exactly the observation of tick `t`. A sample older than the
    controller's limit at the tick is stale: acting on it would be acting blind.
    """

    def __init__(self, sources):
        if not sources:
            raise ValueError('ObservationSync needs at least one source')
        self.sources = tuple(sources)
        self._stamp = {name: None for name in self.sources}
        self._value = {}
        self._arrived = {}

    def add(self, source: str, stamp_ns: int, value=None, arrived_s: float = None):
        """Record a sample (arriving at monotonic `arrived_s`); ignore one older than held."""
        if source not in self._stamp:
            raise KeyError(f'unknown source {source!r}; known: {list(self.sources)}')
        if self._stamp[source] is None or stamp_ns >= self._stamp[source]:
            self._stamp[source] = stamp_ns
            self._value[source] = value
            self._arrived[source] = arrived_s

    def complete(self, stamp_ns: int, tolerance_ns: int = 0) -> bool:
        """Tell whether every source has a sample stamped at or after `stamp_ns - tolerance_ns`."""
        return all(s is not None and s >= stamp_ns - tolerance_ns for s in self._stamp.values())

    def missing(self, stamp_ns: int) -> list:
        """List the sources still lacking a sample for `stamp_ns`."""
        return [name for name, s in self._stamp.items() if s is None or s < stamp_ns]

    def latest(self, source: str):
        """Return the newest value of `source` (None before any)."""
        return self._value.get(source)

    def stamp(self, source: str):
        """Return the newest stamp [ns] of `source` (None before any)."""
        return self._stamp[source]

    def arrived(self, source: str):
        """Return when the newest sample of `source` arrived [s, monotonic] (None before any)."""
        return self._arrived.get(source)

    def stale(self, tick_ns: int, max_age_ns: int, sources=None) -> list:
        """List the `sources` (default all) missing or older than `max_age_ns` at `tick_ns`."""
        return [name for name in (sources or self.sources) if self._stamp[name] is None
                or tick_ns - self._stamp[name] > max_age_ns]


@dataclass
class SyncConfig:
    """Which inputs a controller waits for before it answers a tick (every controller's)."""

    cameras: list = setting(list(CAMERA_NAMES), "Cameras whose frame of each tick is awaited "
                            "(a policy's model uses a subset, checked at load)")
    sync_timeout_s: float = setting(
        0.5, "Lockstep simulation: wall time [s] to wait for a tick's frames before acting on "
        'what arrived')
    wait_for_recording: bool = setting(
        True, "Act in an episode only after the recorder's `recording` for it, so the bag holds "
        'every commanded tick (false: a graph without a recorder)')

    def __post_init__(self):
        unknown = [cam for cam in self.cameras if cam not in CAMERA_NAMES]
        require(not unknown, f'unknown cameras {unknown}; choose from {list(CAMERA_NAMES)}')
        require(self.sync_timeout_s > 0,
                f'sync_timeout_s must be > 0, got {self.sync_timeout_s!r}')
