"""What every controller (policy_node, expert_node) decides alike, without ROS.

- `EpisodeFollower`: which episode the controller is in, and whether it may act in it (only
  once the recorder announced `recording`, so no commanded tick goes unrecorded).
- `RobotTicks`: when a controller answers the robot's newest tick (joint-state stamp): once
  every camera has a frame stamped at or after it, or after a wait (`sync_timeout_s` in a
  lockstep simulation, `decision_deadline_s` on a robot) with what arrived.
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


class RobotTicks:
    """Decide when a controller answers the robot's newest tick (its joint-state stamp).

    The robot applies a command at its next tick, so the controller has one period and should
    spend it waiting for the freshest frames rather than act on older ones: a tick is answered
    once, as soon as every input has a sample stamped at or after it (in lockstep simulation
    exactly that tick's frames; on a robot each camera's first frame after the joint state, or
    one captured at most `tolerance_ns` before it), or, from the periodic `overdue` check,
    after `wait_s` with the newest frames at hand. `sync` is the controller's ObservationSync.
    A joint state less than `min_interval_ns` after the last tick answered is not a new tick:
    a driver that publishes faster than the control rate still gets one command per period.
    """

    def __init__(self, sync, wait_s: float, tolerance_ns: int = 0, min_interval_ns: int = 0,
                 clock=time.monotonic):
        self.sync, self.wait_s, self.tolerance_ns = sync, wait_s, tolerance_ns
        self.min_interval_ns, self.clock = min_interval_ns, clock
        self.answered_ns = None
        self.waiting_since_s = None  # when the oldest unanswered tick was first seen

    def due(self, stamp_ns, force: bool = False):
        """Return `stamp_ns` if it should be answered now (and mark it answered), else None."""
        if stamp_ns is None or stamp_ns == self.answered_ns:
            return None
        if self.answered_ns is not None and stamp_ns - self.answered_ns < self.min_interval_ns:
            return None
        if self.waiting_since_s is None:
            self.waiting_since_s = self.clock()
        if not force and not self.sync.complete(stamp_ns, self.tolerance_ns):
            return None
        self.answered_ns, self.waiting_since_s = stamp_ns, None
        return stamp_ns

    def overdue(self, stamp_ns):
        """Return the newest tick `stamp_ns` once a tick waited `wait_s` in vain, else None.

        The wait counts from the oldest unanswered tick, so a driver publishing joint states
        faster than the wait cannot postpone the decision forever.
        """
        if self.waiting_since_s is None or self.clock() - self.waiting_since_s <= self.wait_s:
            return None
        return self.due(stamp_ns, force=True)


class TimingReport:
    """Build the timing document of each tick (policy/timing)."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.last_tick_ns = None

    def report(self, tick_ns: int, state: str, started_s: float, version: str = '',
               pending_version: str = '', cause: str = '', stamps: dict = None,
               inference_s: float = 0.0, arrivals_s=(), now_ns: int = None) -> dict:
        """Return the timing document of the tick at `tick_ns`.

        Its fields: stamp_ns, state, cause, version, pending_version, tick_period_s, inference_s,
        compute_s, and with a decision observation_age_s, latency_s and frame_latency_s.
        `stamps` are the inputs' stamps [ns] the decision used, `now_ns` the ROS time the tick
        started at (default the tick, as in lockstep where time stands still):
        observation_age_s is the oldest input's age when the command leaves, inference included.
        `arrivals_s` are when its frames arrived [s, monotonic]: latency_s runs from the oldest
        (the honest worst case image -> command), frame_latency_s from the newest, the frame
        that completed the observation (what waiting for fresh frames costs: inference alone).
        """
        period_s = (tick_ns - self.last_tick_ns) / 1e9 if self.last_tick_ns else 0.0
        self.last_tick_ns = tick_ns
        now = self.clock()
        timing = {'stamp_ns': tick_ns, 'state': state, 'cause': cause, 'version': version,
                  'pending_version': pending_version, 'tick_period_s': period_s,
                  'inference_s': inference_s, 'compute_s': now - started_s}
        if stamps:
            at_ns = tick_ns if now_ns is None else now_ns + int((now - started_s) * 1e9)
            timing['observation_age_s'] = max((at_ns - s) / 1e9 for s in stamps.values())
        if arrivals_s:
            timing['latency_s'] = now - min(arrivals_s)
            timing['frame_latency_s'] = now - max(arrivals_s)
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
