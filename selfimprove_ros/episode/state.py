"""The per-robot episode state machine of the episode manager, free of ROS.

    waiting_for_reset --reset_done--> ready --start--> running
    running --success | timeout | abort | fault--> success | timeout | aborted | fault
    success | timeout | aborted | fault --finished--> waiting_for_reset

A fault or abort while `ready` sends the robot back to waiting_for_reset (the scene may have been
disturbed). Illegal requests raise TransitionError with a message an operator can act on; the
node turns it into a failed service response, never a crash.
"""

from dataclasses import dataclass
from enum import Enum


class Phase(str, Enum):
    """Where a robot is in its episode cycle."""

    WAITING_FOR_RESET = 'waiting_for_reset'
    READY = 'ready'
    RUNNING = 'running'
    SUCCESS = 'success'
    TIMEOUT = 'timeout'
    ABORTED = 'aborted'
    FAULT = 'fault'


ENDED = (Phase.SUCCESS, Phase.TIMEOUT, Phase.ABORTED, Phase.FAULT)


class TransitionError(ValueError):
    """A request that the current phase does not allow."""


@dataclass
class Transition:
    """A change of phase and why it happened."""

    previous: Phase
    phase: Phase
    cause: str


class EpisodeStateMachine:
    """One robot's episode cycle; counts ticks and decides timeouts."""

    def __init__(self, max_ticks: int):
        if max_ticks < 1:
            raise ValueError(f'max_ticks must be >= 1, got {max_ticks!r}')
        self.max_ticks = max_ticks
        self.phase = Phase.WAITING_FOR_RESET
        self.episode_id, self.ticks, self.cause = '', 0, 'waiting for the first reset'

    def _move(self, phase: Phase, cause: str) -> Transition:
        transition = Transition(self.phase, phase, cause)
        self.phase, self.cause = phase, cause
        return transition

    def _require(self, action: str, *allowed: Phase):
        if self.phase not in allowed:
            hint = {Phase.WAITING_FOR_RESET: 'reset the scene and confirm it first',
                    Phase.RUNNING: 'abort or wait for the episode to end',
                    Phase.READY: 'start an episode first'}.get(self.phase, 'wait for the bag')
            raise TransitionError(f'cannot {action} while {self.phase.value}; {hint}')

    def reset_done(self, cause: str = 'scene reset confirmed') -> Transition:
        """Accept that the scene is reset (operator confirmed, or the simulator re-seeded)."""
        self._require('confirm a reset', Phase.WAITING_FOR_RESET)
        return self._move(Phase.READY, cause)

    def start(self, episode_id: str) -> Transition:
        """Begin episode `episode_id`."""
        self._require('start an episode', Phase.READY)
        self.episode_id, self.ticks = episode_id, 0
        return self._move(Phase.RUNNING, f'episode {episode_id} started')

    def tick(self):
        """Count one control tick; return the timeout transition when max_ticks is reached."""
        if self.phase is not Phase.RUNNING:
            return None
        self.ticks += 1
        if self.ticks >= self.max_ticks:
            return self._move(Phase.TIMEOUT, f'no success within {self.max_ticks} ticks')
        return None

    def success(self, cause: str):
        """End the running episode as succeeded (ignored in any other phase)."""
        if self.phase is not Phase.RUNNING:
            return None
        return self._move(Phase.SUCCESS, cause)

    def abort(self, cause: str = 'operator abort') -> Transition:
        """Abort the running episode, or cancel a ready one."""
        self._require('abort', Phase.RUNNING, Phase.READY)
        if self.phase is Phase.READY:
            return self._move(Phase.WAITING_FOR_RESET, f'{cause} before the start')
        return self._move(Phase.ABORTED, cause)

    def fault(self, cause: str):
        """End the episode on a fault such as a stale camera, a safety hold or the e-stop."""
        if self.phase is Phase.RUNNING:
            return self._move(Phase.FAULT, cause)
        if self.phase is Phase.READY:
            return self._move(Phase.WAITING_FOR_RESET, f'{cause} while ready')
        return None

    def finished(self, cause: str = 'episode saved') -> Transition:
        """Leave an ended episode: the bag is closed, the scene needs a reset."""
        self._require('finish', *ENDED)
        return self._move(Phase.WAITING_FOR_RESET, cause)

    @property
    def outcome(self) -> str:
        """Return the outcome of the ended episode ('' while none has ended)."""
        return self.phase.value if self.phase in ENDED else ''
