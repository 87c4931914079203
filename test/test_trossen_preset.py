"""Beside Trossen's ALOHA bringup: names, units and the preset without ROS, then the preset's graph
against a fake bringup (xs_sdk joint states, RealSense-named images, Interbotix command topics)
recording an episode and commanding the fake followers."""

import importlib.util
import json
import os
import sys
import time
import types

import numpy as np
import pytest
import rclpy
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String

from graph_probe import GraphProbe, init_ros
from selfimprove_ros.core import topics
from selfimprove_ros.episode.events import make_event, parse_event
from selfimprove_ros.core.joints import START_POSE
from selfimprove_ros.core.topics import CAMERA_NAMES
from selfimprove_ros.graph.description import (build_graph, config_path, load_config,
                                               preset_config_path)
from selfimprove_ros.graph.launcher import GraphRunner
from selfimprove_ros.nodes.bringup_arms import BringupArms, CommandMessages, string_messages
from selfimprove_ros.nodes.ros_io import image_msg, joint_state_msg, RELIABLE_QOS, time_msg
from selfimprove_ros.robot.backends import gripper_joint_from_opening
from selfimprove_ros.robot.bringup import arm_command, arm_state, BringupConfig, FollowerStates
from selfimprove_ros.robot.robot_config import RobotConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# xs_sdk's joint names of one arm, in the order it publishes them.
XS_NAMES = ['waist', 'shoulder', 'elbow', 'forearm_roll', 'wrist_angle', 'wrist_rotate',
            'gripper', 'left_finger', 'right_finger']
TROSSEN = dict(finger_closed_m=0.0440, finger_open_m=0.0579, gripper_closed_rad=0.6197,
               gripper_open_rad=1.6214)


def xs_state(arm6, opening, config):
    """An xs_sdk JointState's (names, positions) for six arm angles and a gripper opening."""
    finger = config.finger_closed_m + opening * (config.finger_open_m - config.finger_closed_m)
    return XS_NAMES, list(arm6) + [config.gripper_angle(opening), finger, -finger]


# ------------------------------------------------------------------ names and units, no ROS

def test_joints_are_found_by_name_and_the_finger_slide_becomes_the_opening():
    config = BringupConfig(**TROSSEN)
    names, positions = xs_state([0.1, -0.9, 1.1, 0.0, -0.3, 0.2], 0.25, config)
    order = [8, 3, 0, 7, 1, 6, 2, 4, 5]  # any order, as long as names travel with values
    velocities = [0.0] * 7 + [0.00139, -0.00139]
    position, velocity = arm_state(config, [names[i] for i in order],
                                   [positions[i] for i in order], [velocities[i] for i in order])
    assert position[:6] == pytest.approx([0.1, -0.9, 1.1, 0.0, -0.3, 0.2])
    assert position[6] == pytest.approx(0.25)
    assert velocity[6] == pytest.approx(0.1)  # 1.39 mm/s of a 13.9 mm stroke
    closed = arm_state(config, *xs_state([0] * 6, 0.0, config))[0][6]
    opened = arm_state(config, *xs_state([0] * 6, 1.0, config))[0][6]
    assert (closed, opened) == (pytest.approx(0.0), pytest.approx(1.0))
    # No velocities in the message: zeros, not a crash.
    assert arm_state(config, names, positions)[1].tolist() == [0.0] * 7
    with pytest.raises(ValueError, match=r"\['left_finger'\]"):
        arm_state(config, names[:7], positions[:7])


def test_a_target_becomes_arm_angles_and_a_gripper_motor_angle():
    config = BringupConfig(**TROSSEN)
    arm, gripper = arm_command(config, [0.1, -0.9, 1.1, 0.0, -0.3, 0.2, 0.0])
    assert arm == pytest.approx([0.1, -0.9, 1.1, 0.0, -0.3, 0.2]) and gripper == 0.6197
    assert arm_command(config, [0] * 6 + [1.0])[1] == pytest.approx(1.6214)
    # The defaults are the calibration the interbotix backend uses.
    assert arm_command(BringupConfig(), [0] * 6 + [0.3])[1] == pytest.approx(
        gripper_joint_from_opening(0.3))
    with pytest.raises(ValueError, match='7 targets'):
        arm_command(config, [0.0] * 6)


@pytest.mark.parametrize('settings, message', [
    ({'joint_state_topic': '/follower_left/joint_states'}, "'/follower_left/joint_states'"),
    ({'finger_open_m': 0.05, 'finger_closed_m': 0.05}, 'must differ, both are 0.05'),
    ({'max_state_age_s': 0.0}, 'max_state_age_s must be > 0, got 0.0'),
    ({'command_messages': 'ros1'}, "command_messages='ros1'"),
    ({'group_name': ''}, 'group_name must name'),
])
def test_a_bad_bringup_setting_is_refused_with_its_value(settings, message):
    with pytest.raises(ValueError, match=message.replace('(', r'\(').replace('[', r'\[')):
        BringupConfig(**settings)


def test_followers_are_used_only_while_both_are_heard_and_fresh():
    config = BringupConfig(**TROSSEN)
    states = FollowerStates(config, ['follower_left', 'follower_right'])
    assert '/follower_left/joint_states' in states.problem(0.0)
    assert '/follower_right/joint_states' in states.problem(0.0)
    states.update('follower_left', *xs_state([0.1] * 6, 0.5, config), [], received_s=10.0)
    states.update('follower_right', *xs_state([-0.1] * 6, 0.2, config), [], received_s=10.1)
    assert states.problem(10.2) == ''
    positions, _ = states.read()
    assert positions.tolist() == pytest.approx([0.1] * 6 + [0.5] + [-0.1] * 6 + [0.2])
    assert '0.60 s old' in states.problem(10.7)  # the left arm went quiet
    states.update('follower_right', ['waist'], [0.0], [], received_s=10.8)
    assert "lacks ['shoulder'" in states.problem(10.8)


class FakeNode:
    """Records what a backend creates; stands in for rclpy's Node in the backend test."""

    def __init__(self):
        self.subscriptions, self.publishers = {}, {}

    def create_subscription(self, msg_type, topic, callback, qos):
        self.subscriptions[topic] = callback

    def create_publisher(self, msg_type, topic, qos):
        publisher = types.SimpleNamespace(msg_type=msg_type, sent=[])
        publisher.publish = publisher.sent.append
        self.publishers[topic] = publisher
        return publisher


def test_the_backend_takes_injected_command_messages():
    sent = CommandMessages(dict, tuple, lambda name, cmd: {'name': name, 'cmd': cmd},
                           lambda name, cmd: (name, cmd))
    config = BringupConfig(**TROSSEN)
    node, now = FakeNode(), [100.0]
    arms = BringupArms(node, ['follower_left', 'follower_right'], config, sent,
                       clock=lambda: now[0])
    assert set(node.subscriptions) == {'/follower_left/joint_states',
                                       '/follower_right/joint_states'}
    assert 'no joint state' in arms.problem()
    for arm, value in (('follower_left', 0.1), ('follower_right', -0.2)):
        names, positions = xs_state([value] * 6, 0.5, config)
        node.subscriptions[f'/{arm}/joint_states'](JointState(name=names, position=positions))
    assert arms.problem() == ''
    arms.command(np.array([0.1] * 6 + [0.0] + [-0.2] * 6 + [1.0]))
    left = node.publishers['/follower_left/commands/joint_group']
    assert left.msg_type is dict and left.sent == [{'name': 'arm', 'cmd': [0.1] * 6}]
    assert node.publishers['/follower_right/commands/joint_single'].sent == [
        ('gripper', pytest.approx(1.6214))]
    now[0] += 1.0
    assert '1.00 s old' in arms.problem()
    # The std_msgs stand-in carries the same fields as JSON.
    message = string_messages().group('arm', [0.5, 0.25])
    assert isinstance(message, String) and json.loads(message.data) == {
        'name': 'arm', 'cmd': [0.5, 0.25]}


# ----------------------------------------------------------------------- the preset, no ROS

def test_the_trossen_preset_starts_no_second_driver():
    assert RobotConfig(backend='bringup').backend == 'bringup'
    with pytest.raises(ValueError, match='lockstep=true needs backend=sim'):
        RobotConfig(backend='bringup', lockstep=True)
    specs = {spec.name: spec for spec in build_graph(
        load_config(preset_config_path('trossen')), 'aloha1', with_runtime=True)}
    assert specs['robot_node'].parameters['backend'] == 'bringup'
    BringupConfig(**{key[len('bringup.'):]: value for key, value
                     in specs['robot_node'].parameters.items() if key.startswith('bringup.')})
    cameras = [spec for spec in specs.values() if spec.executable == 'camera_node']
    assert sorted(spec.parameters['camera_name'] for spec in cameras) == sorted(CAMERA_NAMES)
    for spec in cameras:
        camera = spec.parameters['camera_name']
        assert spec.parameters['source'] == 'topic', camera
        assert spec.parameters['input_topic'] == f'/{camera}/camera/color/image_rect_raw'
    assert specs['recorder_node'].parameters['record_sim_topics'] is False
    with pytest.raises(ValueError, match=r"preset 'trosen' unknown; choose one of"):
        preset_config_path('trosen')


def test_a_camera_section_overrides_the_shared_one_for_that_camera_only():
    config = load_config(config_path('sim.yaml'))
    config['cam_low_camera_node'] = {'ros__parameters': {'width': 320, 'height': 240}}
    specs = {spec.name: spec for spec in build_graph(config, 'r')}
    assert specs['cam_low_camera_node'].parameters['width'] == 320
    assert specs['cam_high_camera_node'].parameters['width'] == 160
    config['cam_hihg_camera_node'] = {'ros__parameters': {'width': 320}}
    with pytest.raises(ValueError, match=r"\['cam_hihg_camera_node'\] name no camera"):
        build_graph(config, 'r')


def _fake_launch_modules():
    """Just enough of `launch` and `launch_ros` to run launch/aloha.launch.py's own logic."""
    class Action:
        def __init__(self, *args, **kwargs):
            self.args, self.kwargs = args, kwargs

    class LaunchConfiguration:
        def __init__(self, name, default=None):
            self.name, self.default = name, default

        def perform(self, context):
            value = context.get(self.name, self.default)
            if value is None:
                raise LookupError(f'launch configuration {self.name} is not set')
            return value

    modules = {name: types.ModuleType(name) for name in (
        'launch', 'launch.actions', 'launch.substitutions', 'launch_ros', 'launch_ros.actions')}
    modules['launch'].LaunchDescription = Action
    for name in ('DeclareLaunchArgument', 'OpaqueFunction', 'SetEnvironmentVariable',
                 'SetLaunchConfiguration'):
        setattr(modules['launch.actions'], name, type(name, (Action,), {}))
    modules['launch.substitutions'].LaunchConfiguration = LaunchConfiguration
    modules['launch_ros.actions'].Node = type('Node', (Action,), {})
    return modules


def test_the_preset_launch_argument_points_config_at_the_preset(monkeypatch):
    for name, module in _fake_launch_modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    try:
        spec = importlib.util.spec_from_file_location(
            'aloha_launch', os.path.join(ROOT, 'launch', 'aloha.launch.py'))
        launch_file = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(launch_file)
        entities = launch_file.generate_launch_description().args[0]
    finally:
        sys.modules.pop('selfimprove_ros.graph.ros_launch', None)  # bound to the fakes
    names = [entity.args[0] if entity.args else entity.kwargs.get('function')
             for entity in entities]
    assert names[0] == 'preset' and entities[0].kwargs['default_value'] == 'aloha'
    # The preset is applied before `config` is declared (default ''), so it survives.
    assert names.index(launch_file.select_preset) < names.index('config')
    (chosen,) = launch_file.select_preset({'preset': 'trossen'})
    assert chosen.args[0] == 'config' and chosen.args[1].endswith('trossen.yaml')
    assert launch_file.select_preset({'preset': 'trossen', 'config': 'mine.yaml'}) == []
    with pytest.raises(ValueError, match="preset 'nope' unknown"):
        launch_file.select_preset({'preset': 'nope'})


# ------------------------------------------------------------ the graph against a fake bringup

def record_episode(node, executor, during=None, hold_s: float = 2.0, check=None,
                   timeout_s: float = 60.0) -> str:
    """Run one episode through the recorder by events alone; return the saved bag's path.

    `start` is repeated until the recorder answers `recording` (a reader may miss a new
    writer's first message), then `during()` runs for `hold_s`, then `end` until `saved`.
    """
    answers = {}

    def on_event(msg):
        event = parse_event(msg.data)
        answers.setdefault(event['event'], event)
    node.create_subscription(String, topics.EPISODE_EVENTS, on_event, RELIABLE_QOS)
    events = node.create_publisher(String, topics.EPISODE_EVENTS, RELIABLE_QOS)
    episode_id = f'ep{time.monotonic_ns()}'
    robot = node.get_namespace().strip('/')

    def until(kind, text, then=None, spin_s=timeout_s):
        deadline, repeat_at = time.monotonic() + spin_s, 0.0
        while kind not in answers:
            if time.monotonic() > deadline:
                raise TimeoutError(f'no `{kind}` from the recorder within {spin_s} s; '
                                   'see the node logs')
            if text and time.monotonic() >= repeat_at:
                events.publish(String(data=text))
                repeat_at = time.monotonic() + 0.5
            executor.spin_once(timeout_sec=0.05)
            if then:
                then()
            if check:
                check()

    until('recording', make_event('start', episode_id=episode_id, robot=robot,
                                  task='transfer_cube'))
    deadline = time.monotonic() + hold_s
    while time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
        if during:
            during()
        if check:
            check()
    until('saved', make_event('end', episode_id=episode_id, outcome='aborted', cause='test'))
    return answers['saved']['path']


def bag_topics(bag: str) -> dict:
    """Return {topic: message count} of a bag, as rosbags reads it."""
    from rosbags.rosbag2 import Reader
    with Reader(bag) as reader:
        return {connection.topic: connection.msgcount for connection in reader.connections}


class FakeBringup(Node):
    """Trossen's bringup as its topics: follower joint states, RealSense images, commands."""

    def __init__(self, config: BringupConfig, messages: CommandMessages, poses: dict):
        super().__init__('fake_bringup')
        self.config, self.poses = config, poses
        self.commands = {}  # topic -> list of (name, cmd)
        self.state_pubs = {arm: self.create_publisher(JointState, config.topics(arm)[0],
                                                      RELIABLE_QOS) for arm in poses}
        self.image_pubs = {cam: self.create_publisher(
            Image, f'/{cam}/camera/color/image_rect_raw', RELIABLE_QOS) for cam in CAMERA_NAMES}
        for arm in poses:
            for topic, msg_type in zip(config.topics(arm)[1:],
                                       (messages.group_type, messages.single_type)):
                self.create_subscription(msg_type, topic, lambda msg, topic=topic: self.on_command(
                    topic, msg), RELIABLE_QOS)
        self.paused = False  # True: the followers' driver has gone quiet
        self.create_timer(0.05, self.publish_states)   # xs_sdk: about 20 Hz and more
        self.create_timer(0.1, self.publish_images)
        self.frame = np.zeros((48, 64, 3), dtype=np.uint8)

    def on_command(self, topic, msg):
        """Keep every command as (name, cmd), whichever message type carried it."""
        if isinstance(msg, String):
            fields = json.loads(msg.data)
            self.commands.setdefault(topic, []).append((fields['name'], fields['cmd']))
        else:
            self.commands.setdefault(topic, []).append((msg.name, msg.cmd))

    def publish_states(self):
        """Each follower's xs_sdk joint state."""
        if self.paused:
            return
        stamp = self.get_clock().now().to_msg()
        for arm, (arm6, opening) in self.poses.items():
            names, positions = xs_state(arm6, opening, self.config)
            self.state_pubs[arm].publish(joint_state_msg(stamp, positions, [0.0] * 9, names))

    def publish_images(self):
        """One small rgb8 frame per camera, as realsense2_camera would."""
        stamp = time_msg(self.get_clock().now().nanoseconds)
        for cam, publisher in self.image_pubs.items():
            publisher.publish(image_msg(self.frame, stamp, f'{cam}_color_optical_frame'))


@pytest.mark.graph
def test_the_preset_graph_records_an_episode_and_commands_the_fake_bringup(tmp_path):
    init_ros()
    try:
        from interbotix_xs_msgs.msg import JointGroupCommand  # noqa: F401
        kind = 'interbotix_xs_msgs'
    except ImportError:  # not on PyPI: the std_msgs stand-in carries the same fields
        kind = 'std_msgs_string'
    from selfimprove_ros.nodes.bringup_arms import MESSAGES
    namespace = '/trossentest'
    config = BringupConfig(**TROSSEN, command_messages=kind)
    left, right = START_POSE[:6] + 0.05, START_POSE[:6] - 0.05
    poses = {'follower_left': (left, 0.3), 'follower_right': (right, 0.8)}
    overrides = {
        'camera_node': {'width': 64, 'height': 48},  # small frames: the DEFAULT transport
        'robot_node': {'bringup.command_messages': kind},
        'recorder_node': {'bag_dir': str(tmp_path / 'bags')},
    }
    specs = build_graph(load_config(preset_config_path('trossen')), namespace, overrides)
    expected = np.concatenate([left, [0.3], right, [0.8]])
    target = expected.copy()
    target[0] += 0.1   # left waist, within one tick's speed limit (1.5 rad/s x 0.1 s)
    target[13] = 0.5   # right gripper half open
    try:
        with GraphRunner(specs, str(tmp_path / 'logs')) as runner:
            probe = GraphProbe(namespace, CAMERA_NAMES)
            fake = FakeBringup(config, MESSAGES[kind](), poses)
            probe.executor_.add_node(fake)
            heard = ['/follower_left/commands/joint_group',
                     '/follower_right/commands/joint_single']
            assert probe.spin_until(lambda: len(probe.joints) > 3 and all(
                probe.frames.values()) and all(t in fake.commands for t in heard), 120.0,
                check=runner.check), (f'joints={len(probe.joints)} commands={list(fake.commands)}'
                                      f' frames={[len(f) for f in probe.frames.values()]}')
            # robot_node publishes the followers in contract order and units.
            assert probe.joints[-1][1] == pytest.approx(expected, abs=1e-6)
            # Before any command the guard holds the measured pose: that is what reaches them.
            group = fake.commands['/follower_left/commands/joint_group']
            assert group[-1][0] == 'arm' and group[-1][1] == pytest.approx(left, abs=1e-5)
            single = fake.commands['/follower_right/commands/joint_single'][-1]
            assert single == ('gripper', pytest.approx(config.gripper_angle(0.8), abs=1e-5))

            sent_at = [0.0]

            def command():  # a 10 Hz controller
                if time.monotonic() - sent_at[0] >= 0.1:
                    sent_at[0] = time.monotonic()
                    probe.command_pub.publish(joint_state_msg(
                        probe.get_clock().now().to_msg(), target))
            bag = record_episode(probe, probe.executor_, during=command, hold_s=3.0,
                                 check=runner.check)
            # The target reached the followers while it was being sent (afterwards the
            # watchdog holds the measured pose again).
            waists = [cmd[0] for _, cmd in fake.commands['/follower_left/commands/joint_group']]
            assert np.isclose(waists, target[0], atol=1e-5).any(), waists[-5:]
            grippers = [cmd for _, cmd in fake.commands['/follower_right/commands/joint_single']]
            assert np.isclose(grippers, config.gripper_angle(0.5), atol=1e-5).any(), grippers[-5:]
            # A driver gone quiet: within max_state_age_s robot_node stops commanding and
            # publishing, so controllers see stale states instead of a frozen pose.
            fake.paused = True
            probe.spin_until(lambda: False, 0.5 + config.max_state_age_s)
            joints, sent = len(probe.joints), len(fake.commands[heard[0]])
            probe.spin_until(lambda: False, 1.0, check=runner.check)
            assert (len(probe.joints), len(fake.commands[heard[0]])) == (joints, sent)
            fake.paused = False
            assert probe.spin_until(lambda: len(probe.joints) > joints + 2, 5.0)
            fake.destroy_node()
            probe.destroy_node()
    finally:
        rclpy.shutdown()
    counts = bag_topics(bag)
    for topic in [topics.JOINT_STATES, topics.JOINT_COMMANDS] + [
            topics.camera_topic(cam) for cam in CAMERA_NAMES]:
        assert counts.get(f'{namespace}/{topic}', 0) > 0, (topic, counts)
    assert f'{namespace}/{topics.SIM_STATE}' not in counts  # a real robot: no sim topics
