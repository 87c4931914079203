"""An expert episode through the whole sim graph ends as a complete bag; a killed recorder's bag
is recovered with at most a second lost."""

import glob
import os
import signal

from mcap.reader import make_reader
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor

from graph_probe import init_ros
from selfimprove_ros.bag.recovery import recover_bag
from selfimprove_ros.core.topics import camera_topic
from selfimprove_ros.graph.description import build_graph, config_path, load_config
from selfimprove_ros.graph.launcher import GraphRunner
from selfimprove_ros.nodes.collector import Collector
from selfimprove_ros.sim.aloha_sim import INSTRUCTIONS

pytestmark = pytest.mark.graph  # starts ROS nodes: `-m "not graph"` skips

CAMERAS = ['cam_high', 'cam_left_wrist']
NS = '/episodetest'


def count_messages(mcap_path):
    counts = {}
    with open(mcap_path, 'rb') as stream:
        for _, channel, message in make_reader(stream).iter_messages():
            counts.setdefault(channel.topic, []).append(message.log_time)
    return counts


@pytest.fixture(scope='module')
def graph(tmp_path_factory):
    init_ros()
    bags = tmp_path_factory.mktemp('bags')
    overrides = {'launch': {'cameras': CAMERAS, 'lockstep': True},
                 'recorder_node': {'bag_dir': str(bags)}}
    specs = build_graph(load_config(config_path('sim.yaml')), NS, overrides, with_expert=True)
    with GraphRunner(specs, str(bags / 'logs')) as runner:
        collector = Collector(NS, 'transfer_cube', INSTRUCTIONS['transfer_cube'], 0.1)
        executor = SingleThreadedExecutor()
        executor.add_node(collector)
        collector.wait_ready(executor, 120.0, subscribers=2, check=runner.check)
        yield runner, collector, executor, bags
        collector.destroy_node()
    rclpy.shutdown()


def explain(result, bags):
    """What an episode left behind: its messages per topic and the tail of each node's log."""
    mcaps = glob.glob(os.path.join(glob.escape(result.bag_path), '*.mcap'))
    counts = {topic: len(stamps) for topic, stamps in count_messages(mcaps[0]).items()} \
        if result.bag_path and mcaps else 'no bag'
    logs = ''.join(f'\n--- {path.name}\n{path.read_text()[-2000:]}'
                   for path in sorted((bags / 'logs').glob('*.log')))
    return f'{result}\nmessages per topic: {counts}\nnode logs:{logs}'


def test_expert_episode_through_the_graph_leaves_a_complete_bag(graph):
    runner, collector, executor, bags = graph
    # The plan is 70 ticks (success near 60); a practice episode's 100 leaves room for ticks
    # the robot steps on its own (lockstep_timeout_s) before the expert's first command.
    result = collector.run_episode(executor, max_ticks=100, post_success_ticks=3,
                                   check=runner.check)
    assert result.outcome == 'success', explain(result, bags)
    assert os.path.exists(os.path.join(result.bag_path, 'metadata.yaml'))
    counts = count_messages(glob.glob(os.path.join(result.bag_path, '*.mcap'))[0])
    joints = counts[f'{NS}/joint_states']
    commands = counts[f'{NS}/joint_commands']
    # Lockstep: one joint state and one frame per camera for every tick of the episode.
    assert len(joints) >= result.ticks
    for cam in CAMERAS:
        assert len(counts[f'{NS}/{camera_topic(cam)}']) >= len(joints) - 2, cam
    assert len(commands) >= result.ticks - 2
    assert f'{NS}/episode/events' in counts and f'{NS}/sim/state' in counts


def test_killed_recorder_loses_at_most_a_second_and_recovers(graph):
    runner, collector, executor, bags = graph
    before = set(os.listdir(bags))
    ticks = []
    collector.create_subscription(
        __import__('sensor_msgs.msg', fromlist=['JointState']).JointState,
        'joint_states', lambda msg: ticks.append(msg.header.stamp.sec * 10**9
                                                 + msg.header.stamp.nanosec), 10)

    def kill_midway():
        if len(ticks) >= 30 and 'recorder_node' in runner.processes:
            runner.kill('recorder_node', signal.SIGKILL)
            killed_at.append(ticks[-1])

    killed_at = []
    # The recorder dies, so no `saved` answer: run_episode returns after its 30 s wait.
    collector.run_episode(executor, max_ticks=45, post_success_ticks=100, check=kill_midway)
    assert killed_at, 'recorder was never killed'
    (bag,) = [bags / name for name in set(os.listdir(bags)) - before]
    assert not os.path.exists(bag / 'metadata.yaml')
    report = recover_bag(str(bag))
    assert os.path.exists(bag / 'metadata.yaml'), report
    counts = count_messages(glob.glob(str(bag / '*.mcap'))[0])
    joints = counts[f'{NS}/joint_states']
    # Stamps are sim time; the recorder ran on sim time too, so compare in that clock.
    lost_s = (killed_at[0] - max(joints)) / 1e9
    assert lost_s <= 1.0, f'{lost_s:.2f} s of joint states lost'
