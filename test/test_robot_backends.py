"""The real followers' gripper calibration in robot/backends.py: finger slide, opening, motor."""

import pytest

from selfimprove_ros.robot.backends import gripper_joint_from_opening, \
    gripper_opening_from_finger


def test_gripper_conversions_span_the_follower_range():
    assert gripper_opening_from_finger(0.01844) == pytest.approx(0.0)
    assert gripper_opening_from_finger(0.058) == pytest.approx(1.0)
    assert gripper_joint_from_opening(0.0) == pytest.approx(-0.6213)
    assert gripper_joint_from_opening(1.0) == pytest.approx(1.4910)
