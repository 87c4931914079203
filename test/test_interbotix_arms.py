"""The real followers' backend up to the Interbotix boundary, with the SDK faked."""

import sys
import types

import numpy as np
import pytest


class FakeBot:
    def __init__(self, **kwargs):
        # xs_sdk order: waist .. wrist_rotate, gripper motor [rad], left_finger, right_finger [m]
        state = types.SimpleNamespace(
            position=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 1.4910, 0.01844, -0.01844],
            velocity=[0.0] * 9)
        self.core = types.SimpleNamespace(joint_states=state,
                                          robot_set_operating_modes=lambda *a: None)


@pytest.fixture
def interbotix(monkeypatch):
    arm = types.ModuleType('interbotix_xs_modules.xs_robot.arm')
    arm.InterbotixManipulatorXS = FakeBot
    msg = types.ModuleType('interbotix_xs_msgs.msg')
    msg.JointSingleCommand = dict
    for name, module in {'interbotix_xs_modules': types.ModuleType('x'),
                         'interbotix_xs_modules.xs_robot': types.ModuleType('x'),
                         'interbotix_xs_modules.xs_robot.arm': arm,
                         'interbotix_xs_msgs': types.ModuleType('x'),
                         'interbotix_xs_msgs.msg': msg}.items():
        monkeypatch.setitem(sys.modules, name, module)


def test_the_gripper_opening_comes_from_the_finger_not_the_motor_angle(interbotix):
    from selfimprove_ros.nodes.interbotix_arms import InterbotixBackend
    positions, _ = InterbotixBackend(node=None).read()
    np.testing.assert_allclose(positions[:6], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    # The finger is closed (0.01844 m) while the motor angle reads 'open' (1.491 rad).
    assert positions[6] == pytest.approx(0.0) and positions[13] == pytest.approx(0.0)


def test_without_the_interbotix_workspace_the_error_says_what_to_source(monkeypatch):
    from selfimprove_ros.nodes.interbotix_arms import InterbotixBackend
    monkeypatch.setitem(sys.modules, 'interbotix_xs_modules', None)
    with pytest.raises(RuntimeError, match='interbotix_xs_modules'):
        InterbotixBackend(node=None)
