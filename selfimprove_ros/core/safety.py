"""The robot's own safety guard: what reaches the joints, whatever the controllers send.

The guard sits between incoming position commands and the hardware (or simulator). It clamps to
joint limits, limits how far any joint target may move per control tick, holds the arm on NaN or
out-of-range input, holds when commands stop arriving (watchdog) and holds while the e-stop is
engaged. "Hold" means: keep commanding the measured pose at the moment the hold began, so the
arm stops where it is rather than jumping to a stale target.
"""

from dataclasses import dataclass
import enum

import numpy as np

from selfimprove_ros.core.config import setting
from selfimprove_ros.core.joints import (GRIPPER_INDICES, LOWER_LIMITS, NUM_JOINTS,
                                         UPPER_LIMITS)


class GuardState(enum.Enum):
    """Why the guard produced the target it did."""

    OK = 'ok'
    CLAMPED = 'clamped'
    HOLD_NO_COMMAND = 'hold_no_command'
    HOLD_WATCHDOG = 'hold_watchdog'
    HOLD_INVALID = 'hold_invalid'
    HOLD_ESTOP = 'hold_estop'

    @property
    def holding(self) -> bool:
        """True for every hold state."""
        return self.value.startswith('hold')


@dataclass
class SafetyConfig:
    """Limits the guard enforces; defaults suit the vx300s arms of ALOHA."""

    lower_limits: list = setting(
        LOWER_LIMITS.tolist(), 'Lower joint limits in contract order [rad; gripper 0..1]')
    upper_limits: list = setting(
        UPPER_LIMITS.tolist(), 'Upper joint limits in contract order [rad; gripper 0..1]')
    max_arm_speed_rad_s: float = setting(
        2.5, 'Arm joint speed limit [rad/s]; vx300s servos reach about 3.1 rad/s unloaded')
    max_gripper_speed_per_s: float = setting(
        5.0, 'Gripper speed limit [opening/s]; a full close takes 1/this seconds')
    out_of_range_tolerance: float = setting(
        0.05, 'Commands at most this far past a limit are clamped; further is bad input (hold)')
    watchdog_timeout_s: float = setting(
        0.5, 'Hold when the newest command is older than this [s] (ROS time)')

    def __post_init__(self):
        lower = np.asarray(self.lower_limits, dtype=np.float64)
        upper = np.asarray(self.upper_limits, dtype=np.float64)
        if lower.shape != (NUM_JOINTS,) or upper.shape != (NUM_JOINTS,):
            raise ValueError(f'lower_limits/upper_limits need {NUM_JOINTS} values each, got '
                             f'{lower.shape[0]} and {upper.shape[0]}')
        bad = np.flatnonzero(~(lower < upper))
        if bad.size:
            raise ValueError(f'joint limits must satisfy lower < upper; joints {bad.tolist()} '
                             f'have lower={lower[bad].tolist()} upper={upper[bad].tolist()}')
        for name in ('max_arm_speed_rad_s', 'max_gripper_speed_per_s', 'watchdog_timeout_s'):
            if not getattr(self, name) > 0:
                raise ValueError(f'{name} must be > 0, got {getattr(self, name)!r}')
        if not self.out_of_range_tolerance >= 0:
            raise ValueError('out_of_range_tolerance must be >= 0, got '
                             f'{self.out_of_range_tolerance!r}')

    def max_step(self, control_period_s: float) -> np.ndarray:
        """Largest allowed change of each joint target in one control tick."""
        step = np.full(NUM_JOINTS, self.max_arm_speed_rad_s * control_period_s)
        step[list(GRIPPER_INDICES)] = self.max_gripper_speed_per_s * control_period_s
        return step


@dataclass
class GuardDecision:
    """The target to send this tick, and why."""

    target: np.ndarray
    state: GuardState
    reason: str = ''


class SafetyGuard:
    """Stateful command filter; call `submit` per command and `next_target` once per tick."""

    def __init__(self, config: SafetyConfig, control_period_s: float):
        if not control_period_s > 0:
            raise ValueError(f'control_period_s must be > 0, got {control_period_s!r}')
        self.config = config
        self._lower = np.asarray(config.lower_limits, dtype=np.float64)
        self._upper = np.asarray(config.upper_limits, dtype=np.float64)
        self._max_step = config.max_step(control_period_s)
        self._command = None
        self._command_time_s = None
        self._invalid_reason = ''
        self._estop = False
        self._last_target = None
        self._hold_pose = None

    @property
    def estop_engaged(self) -> bool:
        """Whether the e-stop currently holds the arm."""
        return self._estop

    def set_estop(self, engaged: bool):
        """Engage or release the e-stop; a release needs a fresh command before motion resumes."""
        if self._estop and not engaged:
            self._command = None
        self._estop = bool(engaged)

    def forget_command(self):
        """Drop the current command and motion history (after the scene was reset).

        The e-stop stays as it is: only an explicit release may clear it.
        """
        self._command = None
        self._invalid_reason = ''
        self._last_target = None
        self._hold_pose = None

    def reject(self, reason: str) -> str:
        """Treat a malformed command as bad input: hold until a valid one arrives."""
        self._invalid_reason = reason
        self._command = None
        return reason

    def submit(self, positions, now_s: float) -> str:
        """Take a new 14-joint command; return '' if accepted, else why it was refused."""
        positions = np.asarray(positions, dtype=np.float64)
        reason = self._validate(positions)
        if reason:
            return self.reject(reason)
        self._invalid_reason = ''
        self._command = positions.copy()
        self._command_time_s = now_s
        return ''

    def _validate(self, positions) -> str:
        if positions.shape != (NUM_JOINTS,):
            return f'command has {positions.size} values, expected {NUM_JOINTS}'
        if not np.all(np.isfinite(positions)):
            bad = np.flatnonzero(~np.isfinite(positions)).tolist()
            return f'command has non-finite values at joints {bad}'
        tol = self.config.out_of_range_tolerance
        outside = np.flatnonzero((positions < self._lower - tol) | (positions > self._upper + tol))
        if outside.size:
            return (f'command outside joint limits at joints {outside.tolist()}: '
                    f'{positions[outside].round(3).tolist()}')
        return ''

    def next_target(self, measured, now_s: float) -> GuardDecision:
        """Decide the joint target for this tick from the latest command and the measured pose."""
        measured = np.asarray(measured, dtype=np.float64)
        hold = self._hold_reason(now_s)
        if hold is not None:
            state, reason = hold
            if self._hold_pose is None:
                self._hold_pose = np.clip(measured, self._lower, self._upper)
            self._last_target = self._hold_pose
            return GuardDecision(self._hold_pose.copy(), state, reason)
        self._hold_pose = None
        start = self._last_target if self._last_target is not None else measured
        clamped = np.clip(self._command, self._lower, self._upper)
        target = np.clip(clamped, start - self._max_step, start + self._max_step)
        self._last_target = target
        if np.array_equal(target, self._command):
            return GuardDecision(target.copy(), GuardState.OK)
        moved = np.flatnonzero(target != self._command).tolist()
        return GuardDecision(target.copy(), GuardState.CLAMPED,
                             f'joints {moved} limited by position or speed limits')

    def _hold_reason(self, now_s):
        if self._estop:
            return GuardState.HOLD_ESTOP, 'e-stop engaged; publish false on estop to release'
        if self._invalid_reason:
            return GuardState.HOLD_INVALID, self._invalid_reason
        if self._command is None:
            return GuardState.HOLD_NO_COMMAND, 'no command received yet'
        age_s = now_s - self._command_time_s
        limit_s = self.config.watchdog_timeout_s
        if age_s > limit_s:
            return GuardState.HOLD_WATCHDOG, (
                f'newest command is {age_s:.3f} s old (watchdog {limit_s} s)')
        return None
