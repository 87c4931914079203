"""policy_node on an isolated domain: acts every tick, rejects bad models, holds on stale input,
swaps models without missing a tick."""

import json

import numpy as np
import pytest
import rclpy
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger

from graph_probe import init_ros, spin_executor_until
from model_factory import copy_model_dir, poison_with_nan, tiny_model_dir
from selfimprove_ros.core import topics
from selfimprove_ros.episode.events import make_event
from selfimprove_ros.core.joints import START_POSE
from selfimprove_ros.graph.description import NodeSpec
from selfimprove_ros.graph.launcher import GraphRunner
from selfimprove_ros.nodes.ros_io import (LATCHED_QOS, RELIABLE_QOS, SENSOR_QOS, image_msg,
                                          joint_state_msg, stamp_to_ns)

pytestmark = pytest.mark.graph  # starts ROS nodes: `-m "not graph"` skips

NS = '/policytest'


class FakeRobot(Node):
    """Publishes joint states and cam_high frames at 20 Hz; records what the controller says."""

    def __init__(self):
        super().__init__('fake_robot', namespace=NS)
        self.cameras_on = True
        self.commands, self.tokens, self.timing = [], [], []
        self.joint_pub = self.create_publisher(JointState, topics.JOINT_STATES, RELIABLE_QOS)
        self.image_pub = self.create_publisher(
            __import__('sensor_msgs.msg', fromlist=['Image']).Image,
            topics.camera_topic('cam_high'), SENSOR_QOS)
        self.event_pub = self.create_publisher(String, topics.EPISODE_EVENTS, RELIABLE_QOS)
        self.announce_pub = self.create_publisher(String, topics.MODEL_ANNOUNCE, LATCHED_QOS)
        self.create_subscription(JointState, topics.JOINT_COMMANDS, lambda m: self.commands.append(
            (stamp_to_ns(m.header.stamp), np.array(m.position))), RELIABLE_QOS)
        self.create_subscription(String, topics.POLICY_ACTIONS,
                                 lambda m: self.tokens.append(json.loads(m.data)), RELIABLE_QOS)
        self.create_subscription(String, topics.POLICY_TIMING,
                                 lambda m: self.timing.append(json.loads(m.data)), RELIABLE_QOS)
        self.swap_now = self.create_client(Trigger, topics.POLICY_SWAP_NOW)
        self.rollback = self.create_client(Trigger, topics.POLICY_ROLLBACK)
        self.pose = np.asarray(START_POSE, dtype=np.float64)
        self.create_timer(0.05, self.publish_observation)

    def publish_observation(self):
        stamp = self.get_clock().now().to_msg()
        self.joint_pub.publish(joint_state_msg(stamp, self.pose))
        if self.cameras_on:
            frame = np.full((24, 32, 3), 100, dtype=np.uint8)
            self.image_pub.publish(image_msg(frame, stamp, 'cam_high'))

    def event(self, kind, **fields):
        self.event_pub.publish(String(data=make_event(kind, **fields)))

    def announce(self, model_dir, version):
        self.announce_pub.publish(String(data=json.dumps({'model_dir': model_dir,
                                                          'version': version})))


@pytest.fixture(scope='module')
def graph(tmp_path_factory):
    init_ros()
    root = tmp_path_factory.mktemp('policy')
    v1, _, _ = tiny_model_dir(root / 'v1', version='v1')
    spec = NodeSpec('policy_node', 'policy_node', NS, {
        'model_dir': v1, 'cameras': ['cam_high'], 'lockstep': False, 'temperature': 1.0,
        'max_observation_age_s': 0.2, 'model_topic': topics.MODEL_ANNOUNCE})
    with GraphRunner([spec], str(root / 'logs')) as runner:
        robot = FakeRobot()
        executor = rclpy.executors.SingleThreadedExecutor()
        executor.add_node(robot)

        def spin_until(condition, timeout_s=30.0):
            return spin_executor_until(executor, condition, timeout_s, runner.check, 0.02)

        assert spin_until(lambda: any(t['version'] == 'v1' for t in robot.timing), 60), \
            'policy_node never loaded v1'
        robot.event('start', episode_id='e1', robot='policytest', task='transfer_cube',
                    instruction='pick up the cube and hand it over')
        assert spin_until(lambda: robot.timing[-1]['state'] == 'waiting_for_recorder', 10)
        robot.event('recording', episode_id='e1', path='/nowhere')
        yield robot, spin_until, root, v1
        robot.destroy_node()
    rclpy.shutdown()


def ok_ticks(robot, since=0):
    return [t for t in robot.timing[since:] if t['state'] == 'ok']


def test_commands_and_tokens_every_tick_with_the_version(graph):
    robot, spin_until, _, _ = graph
    start = len(robot.timing)
    assert spin_until(lambda: len(ok_ticks(robot, start)) >= 10)
    assert robot.tokens and all(t['version'] == 'v1' and len(t['tokens']) == 28
                                for t in robot.tokens)
    assert robot.tokens[-1]['episode_id'] == 'e1'
    stamps = [stamp for stamp, _ in robot.commands[-8:]]
    assert np.all(np.diff(stamps) > 0.05e9)  # one command per 0.1 s tick, not per observation
    timing = ok_ticks(robot, start)[-1]
    assert timing['observation_age_s'] < 0.2 and timing['latency_s'] >= 0


@pytest.mark.parametrize('damage', ['corrupt', 'signature', 'nan', 'manifest', 'foreign'])
def test_bad_models_are_rejected_while_the_controller_keeps_running(graph, damage,
                                                                    tmp_path_factory):
    robot, spin_until, root, v1 = graph
    bad = root / f'bad_{damage}'
    if damage == 'manifest':
        # Another camera in the manifest would run a cam_high policy on the wrist camera.
        copy_model_dir(v1, bad, 'bad-manifest')
        manifest = json.loads((bad / 'manifest.json').read_text())
        manifest['codec']['cameras'] = ['cam_left_wrist']
        (bad / 'manifest.json').write_text(json.dumps(manifest))
        reason = 'changed after export'
    elif damage == 'foreign':
        # A sound model, announced by anyone on the domain from a directory nobody configured.
        bad = tmp_path_factory.mktemp('elsewhere') / 'foreign'
        copy_model_dir(v1, bad, 'bad-foreign')
        reason = 'outside the model roots'
    elif damage == 'corrupt':
        copy_model_dir(v1, bad, 'bad-corrupt')
        with open(bad / 'policy.onnx', 'r+b') as handle:
            handle.seek(200)
            handle.write(b'garbage')
        reason = 'sha256'
    elif damage == 'signature':
        other, _, _ = tiny_model_dir(root / 'other_size', version='other', height=16, width=16)
        copy_model_dir(v1, bad, 'bad-signature', replace_policy_with=other)
        reason = 'does not match the manifest'
    else:
        copy_model_dir(v1, bad, 'bad-nan', edit_policy=poison_with_nan)
        reason = 'NaN'
    start = len(robot.timing)
    robot.announce(str(bad), f'bad-{damage}')
    assert spin_until(lambda: any(reason in t['cause'] for t in robot.timing[start:])), \
        robot.timing[-1]
    later = len(robot.timing)
    assert spin_until(lambda: len(ok_ticks(robot, later)) >= 3)
    assert all(t['version'] == 'v1' for t in robot.timing[start:])


def test_a_model_waits_for_the_episode_end_and_the_swap_misses_no_tick(graph):
    robot, spin_until, root, _ = graph
    v2, _, _ = tiny_model_dir(root / 'v2', version='v2', seed=1)
    start = len(robot.timing)
    robot.announce(v2, 'v2')
    assert spin_until(lambda: any(t['pending_version'] == 'v2' for t in robot.timing[start:]))
    assert robot.timing[-1]['version'] == 'v1'  # not during the episode
    future = robot.swap_now.call_async(Trigger.Request())
    assert spin_until(future.done) and future.result().success
    assert spin_until(lambda: len(ok_ticks(robot, start)) >= 1 and
                      ok_ticks(robot)[-1]['version'] == 'v2')
    swapped = len(robot.timing)
    assert spin_until(lambda: len(ok_ticks(robot, swapped)) >= 5)
    ticks = [t['stamp_ns'] for t in robot.timing[start:]]
    assert max(np.diff(ticks)) < 0.15e9, 'a tick was missed around the swap'
    assert any(t['version'] == 'v2' for t in robot.tokens)
    future = robot.rollback.call_async(Trigger.Request())
    assert spin_until(future.done) and future.result().message == 'rolled back to v1'


def test_stale_camera_holds_the_arm_within_one_tick(graph):
    robot, spin_until, _, _ = graph
    assert spin_until(lambda: ok_ticks(robot))
    robot.cameras_on = False
    start = len(robot.timing)
    assert spin_until(lambda: any(t['state'] == 'stale' for t in robot.timing[start:]), 5)
    first_stale = next(i for i, t in enumerate(robot.timing[start:]) if t['state'] == 'stale')
    # Frames older than 0.2 s are refused: at most 0.2 s + one 0.1 s tick of acting blind.
    assert first_stale <= 4
    stale_stamp = robot.timing[start + first_stale]['stamp_ns']
    assert spin_until(lambda: any(s >= stale_stamp for s, _ in robot.commands))
    held = [pos for stamp, pos in robot.commands if stamp >= stale_stamp][0]
    assert np.allclose(held, robot.pose)
    robot.cameras_on = True
    later = len(robot.timing)
    assert spin_until(lambda: ok_ticks(robot, later))
