"""What every controller (policy_node, expert_node) decides alike, without ROS.

- `EpisodeFollower`: which episode the controller is in, and whether it may act in it (only
  once the recorder announced `recording`, so no commanded tick goes unrecorded).
- `LockstepTicks`: when a lockstep controller answers: the newest joint-state stamp, once every
  input of that tick has arrived, or after `sync_timeout_s` of waiting for the rest.
- `TimingReport`: the per-tick timing document controllers publish on policy/timing.
- `Throttle`: one log line per interval for a repeating condition.

Times are monotonic seconds from `clock`; stamps are ROS time [ns].
"""

import time


class EpisodeFollower:
    """Follow episode events (and the manager's status) for one controller."""

    def __init__(self, wait_for_recording: bool = True):
        self.wait_for_recording = wait_for_recording
        self.episode = None       # the `start` event of the current episode
        self.recorded = False     # the recorder announced it
        self.recorded_id = None   # the newest episode the recorder announced

    @property
    def episode_id(self):
        """Return the current episode's id (None between episodes)."""
        return self.episode['episode_id'] if self.episode else None

    @property
    def acting(self) -> bool:
        """Tell whether the controller may command now: in an episode that is being recorded."""
        return self.episode is not None and self.recorded

    def on_event(self, event: dict) -> str:
        """Take a parsed episode event; return what changed.

        'started' (a new episode), 'goal' (a start that completes one known only from the
        status), 'repeat' (the same start again), 'recorded', 'ended', or ''.
        """
        kind, episode_id = event['event'], event['episode_id']
        if kind == 'start':
            if episode_id == self.episode_id:
                if 'task' not in self.episode:
                    self.episode = event
                    return 'goal'
                return 'repeat'  # repeated until the recorder acknowledged
            self.episode = event
            # The recorder's answer to a repeated start can overtake that start (two
            # publishers on one topic), so an earlier `recording` for it counts.
            self.recorded = not self.wait_for_recording or self.recorded_id == episode_id
            return 'started'
        if kind == 'recording':
            self.recorded_id = episode_id
            if episode_id == self.episode_id and not self.recorded:
                self.recorded = True
                return 'recorded'
        elif kind == 'end' and episode_id == self.episode_id:
            self.episode = None
            return 'ended'
        return ''

    def on_status(self, phase: str, episode_id: str) -> str:
        """Follow the manager's latched status: a `start` or `end` missed during discovery.

        Returns 'started' (acting on the status alone), 'ended' or ''.
        """
        current = self.episode_id
        if phase == 'running' and episode_id and episode_id != current:
            self.episode = {'event': 'start', 'episode_id': episode_id}
            self.recorded = True  # its `recording` answer went by with the missed start
            return 'started'
        if phase != 'running' and current and current == episode_id:
            self.episode = None
            return 'ended'
        return ''


class LockstepTicks:
    """Decide when a lockstep controller answers the newest joint-state tick.

    `sync` is the controller's ObservationSync; a tick is answered once, when complete or, from
    the periodic `overdue` check, after `sync_timeout_s` without its missing inputs.
    """

    def __init__(self, sync, sync_timeout_s: float):
        self.sync, self.sync_timeout_s = sync, sync_timeout_s
        self.answered_ns = None

    def due(self, stamp_ns, force: bool = False):
        """Return `stamp_ns` if it should be answered now (and mark it answered), else None."""
        if stamp_ns is None or stamp_ns == self.answered_ns:
            return None
        if not force and not self.sync.complete(stamp_ns):
            return None
        self.answered_ns = stamp_ns
        return stamp_ns

    def overdue(self, stamp_ns, waited_s: float):
        """Return `stamp_ns` once its inputs were awaited `sync_timeout_s` in vain, else None."""
        return self.due(stamp_ns, force=True) if waited_s > self.sync_timeout_s else None


class TimingReport:
    """Build the timing document of each tick (policy/timing)."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.last_tick_ns = None

    def report(self, tick_ns: int, state: str, started_s: float, version: str = '',
               pending_version: str = '', cause: str = '', stamps: dict = None,
               inference_s: float = 0.0, oldest_arrival_s: float = None) -> dict:
        """Return the timing document of the tick at `tick_ns`.

        Its fields: stamp_ns, state, cause, version, pending_version, tick_period_s, inference_s,
        compute_s, and with a decision observation_age_s and latency_s. `stamps` are the
        inputs' stamps [ns] the decision used; `oldest_arrival_s` is when the oldest of its
        frames arrived, so latency_s is the honest worst case image -> command.
        """
        period_s = (tick_ns - self.last_tick_ns) / 1e9 if self.last_tick_ns else 0.0
        self.last_tick_ns = tick_ns
        now = self.clock()
        timing = {'stamp_ns': tick_ns, 'state': state, 'cause': cause, 'version': version,
                  'pending_version': pending_version, 'tick_period_s': period_s,
                  'inference_s': inference_s, 'compute_s': now - started_s}
        if stamps:
            timing['observation_age_s'] = max((tick_ns - s) / 1e9 for s in stamps.values())
        if oldest_arrival_s is not None:
            timing['latency_s'] = now - oldest_arrival_s
        return timing


class Throttle:
    """Let a repeating message through at most once per `interval_s` per key."""

    def __init__(self, interval_s: float, clock=time.monotonic):
        self.interval_s, self.clock = interval_s, clock
        self.last = {}

    def ready(self, key: str) -> bool:
        """Return whether the message `key` may be logged now (and note that it was)."""
        now = self.clock()
        if key in self.last and now - self.last[key] < self.interval_s:
            return False
        self.last[key] = now
        return True
