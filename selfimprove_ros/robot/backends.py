"""Robot backends behind one interface: the simulated ALOHA and the real one (Interbotix).

A backend only moves joints and reads them back; safety, timing and ROS live elsewhere.
"""

from typing import Protocol

import numpy as np

from selfimprove_ros.core.joints import NUM_JOINTS
from selfimprove_ros.sim.aloha_sim import AlohaSim, SimConfig

# ALOHA follower gripper calibration (aloha/constants.py): finger slide [m] and gripper motor
# angle [rad] at fully closed and fully open.
FOLLOWER_FINGER_CLOSED_M = 0.01844
FOLLOWER_FINGER_OPEN_M = 0.05800
FOLLOWER_GRIPPER_JOINT_CLOSED_RAD = -0.6213
FOLLOWER_GRIPPER_JOINT_OPEN_RAD = 1.4910
INTERBOTIX_HELP = (
    'the interbotix backend needs interbotix_xs_modules from the Interbotix ROS workspace '
    '(https://github.com/Interbotix/interbotix_ros_toolboxes, installed by the ALOHA setup '
    'script) and the xs_sdk nodes for follower_left and follower_right running; source that '
    'workspace before launching, or use backend:=sim')


class RobotBackend(Protocol):
    """What the robot node needs from a robot."""

    def read(self) -> tuple:
        """Return (positions[14], velocities[14]) in contract order and units."""

    def command(self, target) -> None:
        """Send a 14-joint position target (already checked by the safety guard)."""

    def close(self) -> None:
        """Release the hardware."""


class SimBackend:
    """The simulated ALOHA; `advance()` moves physics one control period."""

    def __init__(self, config: SimConfig):
        self.sim = AlohaSim(config)
        self._target = None

    def reset(self, seed: int):
        """Start a new scene from `seed`."""
        self.sim.reset(seed)
        self._target = self.sim.joint_positions()

    def read(self):
        """Return the simulated joint positions and velocities."""
        return self.sim.joint_positions(), self.sim.joint_velocities()

    def command(self, target):
        """Store the target that the next `advance()` holds."""
        self._target = np.asarray(target, dtype=np.float64)

    def advance(self):
        """Hold the current target for one control period."""
        self.sim.step(self._target)

    def close(self):
        """Nothing to release."""


def gripper_opening_from_finger(finger_m):
    """Follower finger slide [m] -> normalised opening [0 closed, 1 open]."""
    return ((finger_m - FOLLOWER_FINGER_CLOSED_M)
            / (FOLLOWER_FINGER_OPEN_M - FOLLOWER_FINGER_CLOSED_M))


def gripper_joint_from_opening(opening):
    """Normalised opening [0, 1] -> follower gripper motor angle [rad]."""
    return (FOLLOWER_GRIPPER_JOINT_CLOSED_RAD
            + opening * (FOLLOWER_GRIPPER_JOINT_OPEN_RAD - FOLLOWER_GRIPPER_JOINT_CLOSED_RAD))


class InterbotixBackend:
    """The real ALOHA followers through interbotix_xs_modules (imported only when used)."""

    def __init__(self, node, arm_names=('follower_left', 'follower_right'),
                 robot_model='vx300s'):
        try:
            from interbotix_xs_modules.xs_robot.arm import InterbotixManipulatorXS
            from interbotix_xs_msgs.msg import JointSingleCommand
        except ImportError as error:
            raise RuntimeError(f'{INTERBOTIX_HELP} ({error})') from error
        self._single = JointSingleCommand
        self._bots = [
            InterbotixManipulatorXS(robot_model=robot_model, group_name='arm',
                                    gripper_name='gripper', robot_name=name, node=node,
                                    iterative_update_fk=False)
            for name in arm_names]
        for bot in self._bots:
            # ALOHA drives the gripper in current-based position mode so it cannot crush.
            bot.core.robot_set_operating_modes('group', 'arm', 'position')
            bot.core.robot_set_operating_modes('single', 'gripper', 'current_based_position')

    def read(self):
        """Read both followers' joint states (arm [rad], finger slide -> opening)."""
        positions = np.empty(NUM_JOINTS)
        velocities = np.empty(NUM_JOINTS)
        for arm, bot in enumerate(self._bots):
            state = bot.core.joint_states
            positions[arm * 7:arm * 7 + 6] = state.position[:6]
            positions[arm * 7 + 6] = gripper_opening_from_finger(state.position[6])
            velocities[arm * 7:arm * 7 + 6] = state.velocity[:6]
            velocities[arm * 7 + 6] = state.velocity[6] / (
                FOLLOWER_FINGER_OPEN_M - FOLLOWER_FINGER_CLOSED_M)
        return positions, velocities

    def command(self, target):
        """Send arm group and gripper commands to both followers without blocking."""
        for arm, bot in enumerate(self._bots):
            bot.arm.set_joint_positions(list(target[arm * 7:arm * 7 + 6]), blocking=False)
            gripper = self._single(name='gripper',
                                   cmd=float(gripper_joint_from_opening(target[arm * 7 + 6])))
            bot.gripper.core.pub_single.publish(gripper)

    def close(self):
        """Leave the arms torqued where they are; the operator puts them to sleep."""
