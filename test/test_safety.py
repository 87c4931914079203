"""SafetyGuard: clamps, speed limits, holds on bad input, watchdog and e-stop."""

import numpy as np
import pytest

from selfimprove_ros.core.joints import LOWER_LIMITS, START_POSE, UPPER_LIMITS
from selfimprove_ros.core.safety import GuardState, SafetyConfig, SafetyGuard

PERIOD_S = 0.1


def make_guard(**overrides):
    return SafetyGuard(SafetyConfig(**overrides), PERIOD_S)


def test_no_command_holds_measured_pose():
    guard = make_guard()
    decision = guard.next_target(START_POSE, now_s=0.0)
    assert decision.state is GuardState.HOLD_NO_COMMAND
    np.testing.assert_allclose(decision.target, START_POSE)


def test_small_command_passes_unchanged():
    guard = make_guard()
    command = START_POSE + 0.05
    assert guard.submit(command, now_s=0.0) == ''
    decision = guard.next_target(START_POSE, now_s=0.05)
    assert decision.state is GuardState.OK
    np.testing.assert_allclose(decision.target, command)


def test_large_step_is_speed_limited_per_tick():
    guard = make_guard(max_arm_speed_rad_s=1.0)
    command = START_POSE.copy()
    command[0] += 0.5  # waist: 0.5 rad in one tick, limit is 0.1 rad per tick
    guard.submit(command, now_s=0.0)
    first = guard.next_target(START_POSE, now_s=0.0)
    assert first.state is GuardState.CLAMPED
    assert first.target[0] == pytest.approx(START_POSE[0] + 0.1)
    second = guard.next_target(START_POSE, now_s=0.05)
    # Limited relative to the previous target, so repeated ticks converge on the command.
    assert second.target[0] == pytest.approx(START_POSE[0] + 0.2)


def test_slightly_out_of_range_is_clamped_to_limit():
    guard = make_guard(max_arm_speed_rad_s=100.0, max_gripper_speed_per_s=100.0)
    command = START_POSE.copy()
    command[6] = 1.03  # gripper past fully open, within tolerance
    assert guard.submit(command, now_s=0.0) == ''
    decision = guard.next_target(START_POSE, now_s=0.0)
    assert decision.target[6] == pytest.approx(UPPER_LIMITS[6])
    assert np.all(decision.target >= LOWER_LIMITS) and np.all(decision.target <= UPPER_LIMITS)


@pytest.mark.parametrize('bad', [np.nan, np.inf, 10.0])
def test_bad_input_holds_until_a_valid_command(bad):
    guard = make_guard()
    guard.submit(START_POSE + 0.05, now_s=0.0)
    guard.next_target(START_POSE, now_s=0.0)
    command = START_POSE.copy()
    command[2] = bad
    reason = guard.submit(command, now_s=0.1)
    assert 'joints [2]' in reason
    measured = START_POSE + 0.02
    decision = guard.next_target(measured, now_s=0.1)
    assert decision.state is GuardState.HOLD_INVALID
    np.testing.assert_allclose(decision.target, measured)
    guard.submit(START_POSE, now_s=0.2)
    assert guard.next_target(measured, now_s=0.2).state is not GuardState.HOLD_INVALID


def test_wrong_length_is_refused():
    guard = make_guard()
    assert 'expected 14' in guard.submit(np.zeros(7), now_s=0.0)


def test_watchdog_holds_when_commands_stop():
    guard = make_guard(watchdog_timeout_s=0.3)
    guard.submit(START_POSE, now_s=1.0)
    assert guard.next_target(START_POSE, now_s=1.29).state is GuardState.OK
    decision = guard.next_target(START_POSE + 0.01, now_s=1.31)
    assert decision.state is GuardState.HOLD_WATCHDOG
    # The hold pose is the measured pose when the hold began, and stays fixed.
    later = guard.next_target(START_POSE + 0.2, now_s=1.5)
    np.testing.assert_allclose(later.target, START_POSE + 0.01)


def test_estop_holds_and_release_needs_a_fresh_command():
    guard = make_guard()
    guard.submit(START_POSE + 0.05, now_s=0.0)
    guard.set_estop(True)
    assert guard.next_target(START_POSE, now_s=0.0).state is GuardState.HOLD_ESTOP
    guard.submit(START_POSE + 0.05, now_s=0.1)
    assert guard.next_target(START_POSE, now_s=0.1).state is GuardState.HOLD_ESTOP
    guard.set_estop(False)
    assert guard.next_target(START_POSE, now_s=0.15).state is GuardState.HOLD_NO_COMMAND
    guard.submit(START_POSE + 0.05, now_s=0.2)
    assert guard.next_target(START_POSE, now_s=0.2).state is GuardState.OK


def test_forget_command_keeps_estop():
    guard = make_guard()
    guard.set_estop(True)
    guard.forget_command()
    assert guard.estop_engaged


@pytest.mark.parametrize('overrides, word', [
    ({'watchdog_timeout_s': 0.0}, 'watchdog_timeout_s'),
    ({'max_arm_speed_rad_s': -1.0}, 'max_arm_speed_rad_s'),
    ({'lower_limits': [0.0] * 13}, 'lower_limits'),
    ({'lower_limits': UPPER_LIMITS.tolist()}, 'lower < upper'),
])
def test_config_errors_name_the_bad_setting(overrides, word):
    with pytest.raises(ValueError, match=word):
        SafetyConfig(**overrides)
