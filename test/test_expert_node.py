"""expert_node answers `acting` only once it is recorded and has planned, so a starter that
repeats `start` until answered also draws again a `recording` the expert missed."""

import json

import pytest
import rclpy
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import String

from graph_probe import init_ros, spin_executor_until
from selfimprove_ros.core import topics
from selfimprove_ros.episode.events import make_event
from selfimprove_ros.graph.description import NodeSpec
from selfimprove_ros.graph.launcher import GraphRunner
from selfimprove_ros.nodes.ros_io import joint_state_msg, RELIABLE_QOS, time_msg
from selfimprove_ros.sim.aloha_sim import AlohaSim, scene_name, SimConfig

pytestmark = pytest.mark.graph  # starts ROS nodes: `-m "not graph"` skips

NS = '/experttest'


class Starter(Node):
    """Plays the collector, the recorder and the simulator's state for one expert_node."""

    def __init__(self):
        super().__init__('starter', namespace=NS)
        self.answers = []
        self.event_pub = self.create_publisher(String, topics.EPISODE_EVENTS, RELIABLE_QOS)
        self.state_pub = self.create_publisher(JointState, topics.SIM_STATE, RELIABLE_QOS)
        self.create_subscription(String, topics.EPISODE_EVENTS, self.on_event, RELIABLE_QOS)

    def on_event(self, msg: String):
        event = json.loads(msg.data)
        if event['event'] == 'acting':
            self.answers.append(event['episode_id'])

    def event(self, kind: str, **fields):
        self.event_pub.publish(String(data=make_event(kind, **fields)))


@pytest.fixture(scope='module')
def starter(tmp_path_factory):
    init_ros()
    logs = tmp_path_factory.mktemp('expert_logs')
    spec = NodeSpec('expert_node', 'expert_node', NS,
                    {'cameras': ['cam_high'], 'task': 'transfer_cube'})
    with GraphRunner([spec], str(logs)) as runner:
        node = Starter()
        executor = rclpy.executors.SingleThreadedExecutor()
        executor.add_node(node)
        assert spin_executor_until(
            executor, lambda: node.event_pub.get_subscription_count() >= 1
            and node.count_publishers(f'{NS}/{topics.EPISODE_EVENTS}') >= 2, 60.0, runner.check)
        yield node, executor, runner
        node.destroy_node()
    rclpy.shutdown()


def test_acting_waits_for_recording_and_a_plan_and_answers_each_repeat(starter):
    node, executor, runner = starter
    sim = AlohaSim(SimConfig(task='transfer_cube'))
    sim.reset(0)
    start = dict(episode_id='e1', robot='r', task='transfer_cube', instruction='', seed=0)
    stamp_ns = 10**9

    recorded = []

    def repeat_start():
        nonlocal stamp_ns
        node.event('start', **start)
        # Each repeated start draws the recorder's `recording` again: beside two CPU burners
        # the first one was lost while the test and the node were still matching.
        if recorded:
            node.event('recording', episode_id='e1', path='/bags/e1')
        stamp_ns += 10**8
        state = joint_state_msg(time_msg(stamp_ns), sim.full_qpos(), names=())
        state.header.frame_id = scene_name('transfer_cube', 0)  # as robot_node names it
        node.state_pub.publish(state)
        return bool(node.answers)

    # Started and observed, but never recorded: no answer, however often `start` comes.
    assert not spin_executor_until(executor, repeat_start, 3.0, runner.check)
    node.event('recording', episode_id='e1', path='/bags/e1')
    recorded.append(True)
    assert spin_executor_until(executor, repeat_start, 20.0, runner.check), \
        'no `acting` after `recording`'
    assert set(node.answers) == {'e1'}
    answered = len(node.answers)
    assert spin_executor_until(executor, lambda: repeat_start() and len(node.answers) > answered,
                               10.0, runner.check), 'a repeated start was not answered'


def test_plans_only_from_a_state_of_the_episodes_scene(starter):
    """A reset's first state can come after `start`: the old scene's objects are elsewhere.

    The newest state expert_node holds is the previous test's, of scene seed 0.
    """
    node, executor, runner = starter
    sim = AlohaSim(SimConfig(task='transfer_cube'))
    sim.reset(0)
    start = dict(episode_id='e2', robot='r', task='transfer_cube', instruction='', seed=1)
    stamp_ns = 10**10
    scene = [scene_name('transfer_cube', 0)]

    def repeat_start():
        nonlocal stamp_ns
        node.event('start', **start)
        node.event('recording', episode_id='e2', path='/bags/e2')
        stamp_ns += 10**8
        state = joint_state_msg(time_msg(stamp_ns), sim.full_qpos(), names=())
        state.header.frame_id = scene[0]
        node.state_pub.publish(state)
        return 'e2' in node.answers

    assert not spin_executor_until(executor, repeat_start, 3.0, runner.check), \
        'planned from the previous scene'
    scene[0] = scene_name('transfer_cube', 1)
    assert spin_executor_until(executor, repeat_start, 20.0, runner.check), \
        'no `acting` once a state of the scene came'
