"""The followers of a robot that Trossen's ALOHA bringup already drives: the `bringup` backend.

Subscribes each follower's xs_sdk joint states and publishes its joint group and gripper
commands; it starts no driver, calls no xs_sdk service and changes no operating mode (the
bringup's mode configs own those). Names and units live in `robot/bringup.py`.
"""

from dataclasses import dataclass
import json
import time
from typing import Callable

from sensor_msgs.msg import JointState
from std_msgs.msg import String

from selfimprove_ros.nodes.ros_io import RELIABLE_QOS, SENSOR_QOS
from selfimprove_ros.robot.bringup import arm_command, BringupConfig, FollowerStates

BRINGUP_HELP = (
    'backend=bringup sends interbotix_xs_msgs/JointGroupCommand and JointSingleCommand, which '
    'come with the Interbotix ROS workspace that runs Trossen\'s bringup: source '
    '~/interbotix_ws/install/setup.bash before launching (or set '
    'robot_node.bringup.command_messages: std_msgs_string for a dry run that xs_sdk ignores)')


@dataclass
class CommandMessages:
    """How to build the two command messages; injectable, so tests need no Interbotix."""

    group_type: type
    single_type: type
    group: Callable   # (group name, [rad]) -> message
    single: Callable  # (joint name, rad) -> message


def interbotix_messages() -> CommandMessages:
    """Return the real interbotix_xs_msgs commands; RuntimeError says how to get them."""
    try:
        from interbotix_xs_msgs.msg import JointGroupCommand, JointSingleCommand
    except ImportError as error:
        raise RuntimeError(f'{BRINGUP_HELP} ({error})') from error
    return CommandMessages(
        JointGroupCommand, JointSingleCommand,
        lambda name, cmd: JointGroupCommand(name=name, cmd=[float(value) for value in cmd]),
        lambda name, cmd: JointSingleCommand(name=name, cmd=float(cmd)))


def string_messages() -> CommandMessages:
    """Return the std_msgs stand-in: the same fields as JSON in a std_msgs/String."""
    return CommandMessages(
        String, String,
        lambda name, cmd: String(data=json.dumps({'name': name, 'cmd': [float(v) for v in cmd]})),
        lambda name, cmd: String(data=json.dumps({'name': name, 'cmd': float(cmd)})))


MESSAGES = {'interbotix_xs_msgs': interbotix_messages, 'std_msgs_string': string_messages}


class BringupArms:
    """RobotBackend over a running bringup: `read`, `command`, `close`, and `problem`."""

    def __init__(self, node, arm_names, config: BringupConfig, messages: CommandMessages = None,
                 clock=time.monotonic):
        self.config = config
        self.arm_names = tuple(arm_names)
        self.messages = messages or MESSAGES[config.command_messages]()
        # Ages are measured on this machine's monotonic clock at arrival, so a bringup on
        # another computer with a skewed clock is judged by when its messages get here.
        self.clock = clock
        self.states = FollowerStates(config, self.arm_names)
        self.publishers = {}
        for arm in self.arm_names:
            state_topic, group_topic, single_topic = config.topics(arm)
            # Best effort takes xs_sdk's reliable publisher and a best-effort one alike; only the
            # newest state matters.
            node.create_subscription(JointState, state_topic,
                                     lambda msg, arm=arm: self.on_state(arm, msg), SENSOR_QOS)
            self.publishers[arm] = (
                node.create_publisher(self.messages.group_type, group_topic, RELIABLE_QOS),
                node.create_publisher(self.messages.single_type, single_topic, RELIABLE_QOS))

    def on_state(self, arm: str, msg: JointState):
        """Keep a follower's newest joint state."""
        self.states.update(arm, msg.name, msg.position, msg.velocity, self.clock())

    def problem(self) -> str:
        """Return '' when both followers are heard and fresh, else what keeps them unused."""
        return self.states.problem(self.clock())

    def read(self):
        """Return (positions[14], velocities[14]) in contract order and units."""
        return self.states.read()

    def command(self, target):
        """Publish each follower's arm group and gripper command."""
        for arm_index, arm in enumerate(self.arm_names):
            arm_rad, gripper_rad = arm_command(self.config,
                                               target[arm_index * 7:arm_index * 7 + 7])
            group_pub, single_pub = self.publishers[arm]
            group_pub.publish(self.messages.group(self.config.group_name, arm_rad))
            single_pub.publish(self.messages.single(self.config.gripper_joint, gripper_rad))

    def close(self):
        """Nothing to release: the bringup owns the arms and keeps them torqued."""
