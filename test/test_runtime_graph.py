"""The whole runtime on an isolated domain: a sim episode driven by an exported tiny model ends
as a labelled bag, attributed to the model version that acted."""

import glob
import os

from mcap.reader import make_reader
import rclpy
from rclpy.executors import SingleThreadedExecutor

from graph_probe import init_ros
from model_factory import tiny_model_dir
from selfimprove_ros.graph.description import build_graph, config_path, load_config
from selfimprove_ros.graph.launcher import GraphRunner
from selfimprove_ros.nodes.episode_watcher import EpisodeWatcher
from selfimprove_ros.runtime.episode_labelling import read_labels

NS = '/runtimetest'


def test_sim_episode_with_a_tiny_model_ends_as_a_labelled_bag(tmp_path):
    init_ros()
    model, _, _ = tiny_model_dir(tmp_path / 'model', version='tiny-v1')
    overrides = {
        'launch': {'cameras': ['cam_high'], 'lockstep': True, 'model_dir': model,
                   'reward_model_dir': model},
        'recorder_node': {'bag_dir': str(tmp_path / 'bags')},
        'episode_manager_node': {'max_episodes': 1, 'max_ticks': 12, 'wait_for_policy': True},
    }
    specs = build_graph(load_config(config_path('sim.yaml')), NS, overrides, with_runtime=True)
    try:
        with GraphRunner(specs, str(tmp_path / 'logs')) as runner:
            watcher = EpisodeWatcher(NS)
            executor = SingleThreadedExecutor()
            executor.add_node(watcher)
            saved = watcher.wait_for_labelled(executor, 1, 180.0, runner.check)
            watcher.destroy_node()
    finally:
        rclpy.shutdown()
    bag = saved[0]['path']
    labels = read_labels(bag)
    assert labels.policy_version == 'tiny-v1' and labels.outcome in ('timeout', 'success')
    assert len(labels.steps_to_go) >= 10
    decided = labels.decision.nonzero()[0]
    assert len(decided) >= 4  # chunks of 2 over >= 10 ticks
    assert {labels.token_versions[t] for t in decided} == {'tiny-v1'}
    assert labels.action_tokens[decided].min() >= 0
    topics = set()
    with open(glob.glob(os.path.join(bag, '*.mcap'))[0], 'rb') as stream:
        for _, channel, _ in make_reader(stream).iter_messages():
            topics.add(channel.topic)
    for topic in ('policy/action_tokens', 'joint_commands', 'reward/steps_to_go',
                  'cameras/cam_high/image_raw'):
        assert f'{NS}/{topic}' in topics, topic
