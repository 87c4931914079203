"""The per-version history of Stage-2 practice: episodes and successes of every policy version.

Each policy version is counted in the order it was first deployed, with the version it was trained
from (its parent). Two success signals are kept apart:

- detected: the learned success detector's verdict, d(o, g) <= s, which ends the episode and is the
  episode's outcome. It is all a real robot has, and it can drift as the policy learns what the
  detector accepts.
- sim: the simulator's ground truth, when the episode ran in simulation (None on a real robot).

Rates carry a 95% Wilson interval, which stays inside [0, 1] and keeps its coverage at the 20-50
episodes a version gets. The history round-trips through JSON so the trainer can persist it
atomically beside its checkpoints; `history_table` and `plot_history` are the operator's report.
"""

import json
import math
from dataclasses import asdict, dataclass, fields
from typing import Optional

from selfimprove_ros.core.atomic_file import write_json_atomic

KINDS = ('detected', 'sim')
FORMAT = 1


def wilson_interval(successes: int, trials: int, z: float = 1.96):
    """Return the Wilson score interval (low, high) of a success rate; (0, 1) without trials."""
    if trials <= 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1.0 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    # The interval contains p exactly; rounding left 6/6's upper bound at 1 - 1e-16 once, and
    # a plot's error bar (p - low, high - p) must not be negative.
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))


@dataclass(frozen=True)
class Rate:
    """Successes of one version under one signal, with a 95% Wilson interval."""

    version: str
    kind: str
    successes: int
    trials: int
    low: float
    high: float

    @property
    def rate(self) -> Optional[float]:
        """Return the success fraction, None without trials."""
        return self.successes / self.trials if self.trials else None

    def describe(self) -> str:
        """Return e.g. '9/30 (30%, 95% CI 17-48%)', or '0/0 (no episodes)'."""
        if not self.trials:
            return '0/0 (no episodes)'
        return (f'{self.successes}/{self.trials} ({self.rate:.0%}, 95% CI '
                f'{self.low * 100:.0f}-{self.high * 100:.0f}%)')


@dataclass
class VersionRecord:
    """Counts of one deployed policy version; `rolled_back_to` is set when it was abandoned."""

    version: str
    parent: Optional[str] = None
    episodes: int = 0
    detected_successes: int = 0
    sim_episodes: int = 0          # episodes with a simulator verdict
    sim_successes: int = 0
    rolled_back_to: Optional[str] = None

    def counts(self, kind: str):
        """Return (successes, trials) under the signal `kind` ('detected' or 'sim')."""
        if kind == 'detected':
            return self.detected_successes, self.episodes
        if kind == 'sim':
            return self.sim_successes, self.sim_episodes
        raise ValueError(f'kind must be one of {KINDS}, got {kind!r}')

    def check(self):
        """Raise ValueError naming the version and the field when counts are inconsistent."""
        if not isinstance(self.version, str) or not self.version:
            raise ValueError(f'version must be a non-empty string, got {self.version!r}')
        for name in ('episodes', 'detected_successes', 'sim_episodes', 'sim_successes'):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f'{self.version}: {name} must be an integer >= 0, got {value!r}')
        for successes, trials in (('detected_successes', 'episodes'),
                                  ('sim_successes', 'sim_episodes'), ('sim_episodes', 'episodes')):
            if getattr(self, successes) > getattr(self, trials):
                raise ValueError(f'{self.version}: {successes} ({getattr(self, successes)}) '
                                 f'exceeds {trials} ({getattr(self, trials)})')


class VersionHistory:
    """Policy versions in deployment order, their parents, outcomes and rollbacks."""

    def __init__(self):
        self._records = {}  # insertion order = deployment order

    def add_version(self, version: str, parent: Optional[str] = None) -> VersionRecord:
        """Register a deployed version (idempotent); a conflicting parent is an error."""
        record = self._records.get(version)
        if record is None:
            record = VersionRecord(str(version), parent)
            record.check()
            self._records[record.version] = record
        elif parent is not None and parent != record.parent:
            raise ValueError(f'{version} was deployed with parent {record.parent!r}, '
                             f'not {parent!r}')
        return record

    def add_episode(self, version: str, detected_success: bool,
                    sim_success: Optional[bool] = None, parent: Optional[str] = None):
        """Count one ended episode of `version`; sim_success is None off the simulator."""
        record = self.add_version(version, parent)
        record.episodes += 1
        record.detected_successes += bool(detected_success)
        if sim_success is not None:
            record.sim_episodes += 1
            record.sim_successes += bool(sim_success)

    def record_rollback(self, version: str, to_version: str):
        """Mark `version` as abandoned in favour of `to_version` (both must be known)."""
        self.record(to_version)
        self.record(version).rolled_back_to = to_version

    def record(self, version: str) -> VersionRecord:
        """Return the record of `version`; KeyError lists the known versions."""
        try:
            return self._records[version]
        except KeyError:
            raise KeyError(f'unknown policy version {version!r}; known: '
                           f'{self.versions()}') from None

    def versions(self) -> list:
        """Return the version names in the order they were first deployed."""
        return list(self._records)

    def has_sim(self) -> bool:
        """Return whether every episode so far has a simulator verdict (and there are some)."""
        records = self._records.values()
        return (any(r.episodes for r in records)
                and all(r.sim_episodes == r.episodes for r in records))

    def resolve_kind(self, kind: str = 'auto') -> str:
        """Turn 'auto' into 'sim' when every episode has ground truth, else 'detected'."""
        if kind == 'auto':
            return 'sim' if self.has_sim() else 'detected'
        if kind not in KINDS:
            raise ValueError(f"kind must be 'auto' or one of {KINDS}, got {kind!r}")
        return kind

    def rate(self, version: str, kind: str = 'auto') -> Rate:
        """Return the success rate of `version` under `kind` with its 95% Wilson interval."""
        kind = self.resolve_kind(kind)
        successes, trials = self.record(version).counts(kind)
        return Rate(version, kind, successes, trials, *wilson_interval(successes, trials))

    def best(self, kind: str = 'auto', min_episodes: int = 1) -> Optional[str]:
        """Return the version with the highest lower Wilson bound among those judged enough.

        Only versions with at least `min_episodes` trials under `kind` compete, and the lower
        bound (not the point estimate) ranks them, so 3/3 does not beat 40/50. Ties go to the
        earlier version. None when no version has enough trials.
        """
        rates = [self.rate(v, kind) for v in self._records]
        rates = [r for r in rates if r.trials >= max(1, min_episodes)]
        if not rates:
            return None
        return max(rates, key=lambda r: (r.low, -self.versions().index(r.version))).version

    def iterations(self) -> int:
        """Return how many versions came out of Stage-2 updates (those with a parent)."""
        return sum(r.parent is not None for r in self._records.values())

    def rollback_streak(self, before: str) -> int:
        """Return how many versions deployed just before `before` were all rolled back."""
        order = self.versions()
        streak = 0
        for version in reversed(order[:order.index(self.record(before).version)]):
            if self._records[version].rolled_back_to is None:
                break
            streak += 1
        return streak

    def to_dict(self) -> dict:
        """Return plain, JSON-ready data (the order of 'versions' is the deployment order)."""
        return {'format': FORMAT, 'versions': [asdict(r) for r in self._records.values()]}

    @classmethod
    def from_dict(cls, data: dict) -> 'VersionHistory':
        """Rebuild a history from `to_dict` data, naming what is malformed."""
        if not isinstance(data, dict) or data.get('format') != FORMAT:
            raise ValueError(f'version history must be a dict with format {FORMAT}, got '
                             f'{data if not isinstance(data, dict) else data.get("format")!r}')
        history, known = cls(), {f.name for f in fields(VersionRecord)}
        for entry in data.get('versions', []):
            unknown = sorted(set(entry) - known) if isinstance(entry, dict) else None
            if unknown is None or unknown:
                raise ValueError(f'bad version entry {entry!r}; fields are {sorted(known)}')
            record = VersionRecord(**entry)
            record.check()
            if record.version in history._records:
                raise ValueError(f'version {record.version!r} appears twice')
            history._records[record.version] = record
        for record in history._records.values():
            if record.rolled_back_to is not None:
                history.record(record.rolled_back_to)
        return history

    def save(self, path: str) -> str:
        """Write the history as JSON atomically; return path."""
        write_json_atomic(path, self.to_dict())
        return path

    @classmethod
    def load(cls, path: str) -> 'VersionHistory':
        """Read a history written by `save`."""
        with open(path, encoding='utf-8') as stream:
            return cls.from_dict(json.load(stream))
