"""Beside Trossen's ALOHA bringup: the `bringup` backend's names, units and bookkeeping, no ROS.

Trossen's `ros2 launch aloha aloha_bringup.launch.py` already runs one Interbotix xs_sdk node
per follower (and one realsense2_camera node per camera). A second driver on the same U2D2 or
camera would fail or fight the first, so the `bringup` backend starts none: it reads each
follower's `/<arm>/joint_states` and writes `/<arm>/commands/joint_group` (group `arm`, six arm
joints [rad]) and `/<arm>/commands/joint_single` (joint `gripper`, motor angle [rad]), the
topics InterbotixManipulatorXS itself uses. This module maps names and units between those
messages and the 14-joint contract; `nodes/bringup_arms.py` is its ROS shell.

xs_sdk names an arm's joints waist, shoulder, elbow, forearm_roll, wrist_angle, wrist_rotate,
gripper (motor angle), left_finger, right_finger (finger slides [m]); the contract's gripper is
the opening [0 closed .. 1 open] of the left finger's slide, as ALOHA's real_env records it.
"""

from dataclasses import dataclass

import numpy as np

from selfimprove_ros.core.config import require, setting
from selfimprove_ros.core.joints import ARM_JOINTS
from selfimprove_ros.robot.backends import (FOLLOWER_FINGER_CLOSED_M, FOLLOWER_FINGER_OPEN_M,
                                            FOLLOWER_GRIPPER_JOINT_CLOSED_RAD,
                                            FOLLOWER_GRIPPER_JOINT_OPEN_RAD)

# The six arm joints of one follower, in contract order (the seventh is the gripper).
ARM_JOINT_NAMES = ARM_JOINTS[:6]
# interbotix_xs_msgs is not a PyPI package: `std_msgs_string` is a stand-in with the same
# content as JSON ({"name", "cmd"}) for tests and dry runs without the Interbotix workspace.
COMMAND_MESSAGES = ('interbotix_xs_msgs', 'std_msgs_string')


@dataclass
class BringupConfig:
    """Where a running Trossen bringup publishes and listens, and its gripper calibration."""

    joint_state_topic: str = setting(
        '/{arm}/joint_states', 'Each follower\'s sensor_msgs/JointState from xs_sdk; {arm} '
        'becomes each name of arm_names')
    group_command_topic: str = setting(
        '/{arm}/commands/joint_group', 'Each follower\'s JointGroupCommand topic (six arm '
        'joints [rad])')
    single_command_topic: str = setting(
        '/{arm}/commands/joint_single', 'Each follower\'s JointSingleCommand topic (the gripper '
        'motor [rad])')
    group_name: str = setting('arm', 'xs_sdk joint group of the six arm joints')
    gripper_joint: str = setting('gripper', 'xs_sdk name of the gripper motor')
    finger_joint: str = setting(
        'left_finger', 'Joint whose slide [m] gives the gripper opening (ALOHA reads left_finger)')
    finger_closed_m: float = setting(
        FOLLOWER_FINGER_CLOSED_M, 'Finger slide [m] of a closed gripper (calibration)')
    finger_open_m: float = setting(
        FOLLOWER_FINGER_OPEN_M, 'Finger slide [m] of an open gripper (calibration)')
    gripper_closed_rad: float = setting(
        FOLLOWER_GRIPPER_JOINT_CLOSED_RAD, 'Gripper motor angle [rad] that closes it')
    gripper_open_rad: float = setting(
        FOLLOWER_GRIPPER_JOINT_OPEN_RAD, 'Gripper motor angle [rad] that opens it')
    max_state_age_s: float = setting(
        0.5, 'A follower whose newest joint state is older than this [s] is not commanded '
        '(and robot_node publishes no joint states) until it is heard again')
    command_messages: str = setting(
        'interbotix_xs_msgs', f'Command message types, one of {list(COMMAND_MESSAGES)}; '
        'std_msgs_string is a JSON stand-in for tests, xs_sdk ignores it')

    def __post_init__(self):
        for name in ('joint_state_topic', 'group_command_topic', 'single_command_topic'):
            value = getattr(self, name)
            require('{arm}' in value,
                    f'{name}={value!r} needs {{arm}}, or both followers share one topic; '
                    f'e.g. {BringupConfig.__dataclass_fields__[name].default!r}')
        for name in ('group_name', 'gripper_joint', 'finger_joint'):
            require(bool(getattr(self, name)), f'{name} must name an xs_sdk joint or group')
        require(self.finger_open_m != self.finger_closed_m,
                f'finger_open_m and finger_closed_m must differ, both are {self.finger_open_m!r}')
        require(self.gripper_open_rad != self.gripper_closed_rad,
                'gripper_open_rad and gripper_closed_rad must differ, both are '
                f'{self.gripper_open_rad!r}')
        require(self.max_state_age_s > 0,
                f'max_state_age_s must be > 0, got {self.max_state_age_s!r}')
        require(self.command_messages in COMMAND_MESSAGES,
                f'command_messages={self.command_messages!r}; choose one of '
                f'{list(COMMAND_MESSAGES)}')

    def topics(self, arm: str) -> tuple:
        """Return (joint state, group command, single command) topics of follower `arm`."""
        return tuple(template.format(arm=arm) for template in (
            self.joint_state_topic, self.group_command_topic, self.single_command_topic))

    def opening_from_finger(self, finger_m):
        """Finger slide [m] -> normalised gripper opening [0 closed, 1 open]."""
        return (finger_m - self.finger_closed_m) / (self.finger_open_m - self.finger_closed_m)

    def gripper_angle(self, opening):
        """Normalised opening -> gripper motor angle [rad] for JointSingleCommand."""
        return self.gripper_closed_rad + opening * (self.gripper_open_rad
                                                    - self.gripper_closed_rad)


def arm_state(config: BringupConfig, names, positions, velocities=()) -> tuple:
    """One follower's xs_sdk JointState -> (7 positions, 7 velocities) in contract units.

    Joints are found by name, so xs_sdk's order and extra joints do not matter. Velocities are
    zero when the message carries none (xs_sdk always fills them; a stand-in may not).
    ValueError names the joints that are missing.
    """
    wanted = ARM_JOINT_NAMES + (config.finger_joint,)
    index = {name: i for i, name in enumerate(names)}
    missing = [name for name in wanted if name not in index]
    if missing or len(positions) != len(names):
        raise ValueError(f'joint state lacks {missing} (has {list(names)}, '
                         f'{len(positions)} positions); is this an xs_sdk arm?')
    rows = [index[name] for name in wanted]
    position = np.asarray(positions, dtype=np.float64)[rows]
    position[6] = config.opening_from_finger(position[6])
    if len(velocities) != len(names):
        return position, np.zeros(7)
    velocity = np.asarray(velocities, dtype=np.float64)[rows]
    velocity[6] /= config.finger_open_m - config.finger_closed_m
    return position, velocity


def arm_command(config: BringupConfig, target) -> tuple:
    """One follower's 7 contract targets -> (six arm angles [rad], gripper motor angle [rad])."""
    target = np.asarray(target, dtype=np.float64)
    if target.shape != (7,):
        raise ValueError(f'one follower takes 7 targets, got {target.shape}')
    return target[:6].tolist(), float(config.gripper_angle(target[6]))


class FollowerStates:
    """The newest joint state of each follower, and what keeps the pair from being used."""

    def __init__(self, config: BringupConfig, arm_names):
        self.config = config
        self.arm_names = tuple(arm_names)
        self._latest = {}   # arm -> (positions[7], velocities[7], received_s)
        self._errors = {}   # arm -> why its last message was refused

    def update(self, arm: str, names, positions, velocities, received_s: float):
        """Take one follower's JointState; a malformed one is remembered as the arm's problem."""
        try:
            position, velocity = arm_state(self.config, names, positions, velocities)
        except ValueError as error:
            self._errors[arm] = str(error)
            return
        self._errors.pop(arm, None)
        self._latest[arm] = (position, velocity, received_s)

    def problem(self, now_s: float) -> str:
        """Return '' when both followers are heard and fresh, else what is wrong."""
        problems = []
        for arm in self.arm_names:
            topic = self.config.topics(arm)[0]
            if arm in self._errors:
                problems.append(f'{topic}: {self._errors[arm]}')
            elif arm not in self._latest:
                problems.append(f'no joint state on {topic} yet; is Trossen\'s bringup running '
                                'and do arm_names match its follower names?')
            else:
                age_s = now_s - self._latest[arm][2]
                if age_s > self.config.max_state_age_s:
                    problems.append(f'newest joint state on {topic} is {age_s:.2f} s old '
                                    f'(max_state_age_s {self.config.max_state_age_s}); has '
                                    'its xs_sdk node stopped?')
        return '; '.join(problems)

    def read(self) -> tuple:
        """Return (positions[14], velocities[14]), left follower first; needs both heard."""
        missing = [arm for arm in self.arm_names if arm not in self._latest]
        if missing:
            raise RuntimeError(f'no joint state from {missing} yet; check problem() first')
        positions = np.concatenate([self._latest[arm][0] for arm in self.arm_names])
        velocities = np.concatenate([self._latest[arm][1] for arm in self.arm_names])
        return positions, velocities
