"""What the episode manager observes about one episode, and the success counts per policy.

Free of ROS: the node hands in stamps, guard states and versions, and gets back tick counts and
fault causes. The fault rules live here because they decide which episodes the learner sees.
"""

from dataclasses import dataclass, field

# Guard states (core.safety.GuardState values) that end an episode at once: the e-stop, and a
# command the guard refused as bad input.
ALWAYS_FAULT = ('hold_estop', 'hold_invalid')
# The guard holds because commands stopped: a fault once the controller has acted in this
# episode, or after the grace ticks (before that the hold is left over from the previous one).
STOPPED = 'hold_watchdog'
# No command has reached the robot since the reset: a fault once the grace ticks are over (a
# controller that never heard the start, or whose commands never arrive, would otherwise run
# the episode to its timeout with the arms frozen, and the frozen episode would count).
NEVER_COMMANDED = 'hold_no_command'
ACTING = ('ok', 'clamped')
# Policy timing states: 'stale' = camera input too old, the controller holds.
POLICY_FAULT = 'stale'
# Policy timing states of a controller that is not (yet) acting in the episode.
POLICY_WAITING = ('idle', 'no_model', 'waiting_for_recorder')


@dataclass
class EpisodeWatch:
    """The running episode: its ticks, who acted in it, what the simulator said, its faults."""

    episode_id: str
    seed: int
    version: str               # policy version at the start; then the one seen acting
    period_ns: int             # control tick [ns]
    grace_ticks: int           # ticks before a watchdog hold or stale policy is a fault
    sim_success: bool = False  # the simulator reported success at some tick (evaluation)
    acting: bool = False       # the controller has acted (guard ok/clamped, policy ok)
    recording: str = ''        # bag path from the recorder's acknowledgement
    refused: str = ''          # why the recorder stopped recording it (a full disk)
    first_stamp_ns: int = None
    versions: list = field(default_factory=list)

    def elapsed_ticks(self, stamp_ns: int) -> int:
        """Return the ticks since the first joint state of the episode (robot time).

        Rounding absorbs the jitter of a real robot's timer; in lockstep simulation the stamps
        are exact multiples of the period.
        """
        if self.first_stamp_ns is None:
            self.first_stamp_ns = stamp_ns
        return max(0, round((stamp_ns - self.first_stamp_ns) / self.period_ns))

    def in_grace(self, ticks: int) -> bool:
        """Tell whether a stopped controller is still expected (start of the episode)."""
        return not self.acting and ticks < self.grace_ticks

    def observe_version(self, version: str):
        """Attribute the episode to the policy version that acts in it."""
        if version:
            self.version = version
            if version not in self.versions:
                self.versions.append(version)

    def safety_fault(self, state: str, message: str, ticks: int) -> str:
        """Return the fault cause of one safety guard state ('' when it is no fault)."""
        if state in ACTING:
            self.acting = True
            return ''
        if state in ALWAYS_FAULT or (state == STOPPED and not self.in_grace(ticks)):
            return f'safety guard {state}: {message}' if message else f'safety guard {state}'
        if state == NEVER_COMMANDED and not self.acting and not self.in_grace(ticks):
            return f'no command reached the robot in the first {self.grace_ticks} ticks'
        return ''

    def policy_fault(self, state: str, ticks: int) -> str:
        """Return the fault cause of one policy timing state ('' when it is no fault)."""
        if state == 'ok':
            self.acting = True
        if state == POLICY_FAULT and not self.in_grace(ticks):
            return 'policy stale: camera input too old, the controller holds'
        if state in POLICY_WAITING and not self.acting and not self.in_grace(ticks):
            return f'policy not acting after {self.grace_ticks} ticks: {state}'
        return ''


def success_cause(detection: dict, ticks: int) -> str:
    """Return why an episode ended at a success detection (a success_detector_node document).

    It names d(o, g) and whether the simulator agreed; a detection whose source is 'sim' (the
    detector's use_sim_success evaluation mode) says so.
    """
    steps = detection.get('steps_to_go')
    steps = f'{steps:.2f}' if isinstance(steps, (int, float)) else '?'
    if detection.get('source') == 'sim':
        cause = f'simulator success (detector use_sim_success), d={steps} ticks'
    else:
        cause = f'detected success: d={steps} ticks'
        if detection.get('sim_success') is not None:
            cause += ', simulator agreed' if detection['sim_success'] else \
                ', simulator disagreed'
    return f'{cause} (tick {ticks})'


@dataclass
class VersionCounts:
    """Ended episodes of one policy version."""

    episodes: int = 0
    successes: int = 0       # detected successes (what the robot itself knows)
    sim_successes: int = 0   # episodes in which the simulator reported success

    def as_dict(self) -> dict:
        """Return the status form of the counts."""
        return {'episodes': self.episodes, 'successes': self.successes,
                'sim_successes': self.sim_successes}


class EpisodeTally:
    """Counts of ended episodes, in total and per policy version."""

    def __init__(self):
        self.episodes = 0
        self.by_version = {}

    def record(self, version: str, outcome: str, sim_success: bool):
        """Count one ended episode."""
        counts = self.by_version.setdefault(version, VersionCounts())
        counts.episodes += 1
        counts.successes += outcome == 'success'
        counts.sim_successes += bool(sim_success)
        self.episodes += 1

    def as_dict(self) -> dict:
        """Return {version: {'episodes', 'successes', 'sim_successes'}} for the status."""
        return {version: counts.as_dict() for version, counts in self.by_version.items()}
