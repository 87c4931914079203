"""The real ALOHA followers through interbotix_xs_modules: the robot node's hardware backend.

Imported only with backend:=interbotix; the Interbotix workspace is needed then, never for sim.
"""

import numpy as np

from selfimprove_ros.core.joints import NUM_JOINTS
from selfimprove_ros.robot.backends import (FOLLOWER_FINGER_CLOSED_M, FOLLOWER_FINGER_OPEN_M,
                                            gripper_joint_from_opening,
                                            gripper_opening_from_finger)

FINGER = 7  # index of left_finger in an xs_sdk arm's joint_states

INTERBOTIX_HELP = (
    'the interbotix backend needs interbotix_xs_modules from the Interbotix ROS workspace '
    '(https://github.com/Interbotix/interbotix_ros_toolboxes, installed by the ALOHA setup '
    'script) and the xs_sdk nodes for follower_left and follower_right running; source that '
    'workspace before launching, or use backend:=sim')


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
            # xs_sdk's joint_states: six arm joints, the gripper motor [rad], then the finger
            # slides [m]; the opening is calibrated on the left finger (index 7), as ALOHA's
            # real_env reads it, not on the motor angle at index 6.
            positions[arm * 7 + 6] = gripper_opening_from_finger(state.position[FINGER])
            velocities[arm * 7:arm * 7 + 6] = state.velocity[:6]
            velocities[arm * 7 + 6] = state.velocity[FINGER] / (
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
