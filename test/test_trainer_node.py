"""trainer_node on an isolated domain: SFT from bags, export, and an announcement the
controllers can load; a bad bag directory is reported on the status topic, not a crash."""

import json
import os
import time

import pytest
import rclpy
from rclpy.node import Node
from std_msgs.msg import String
import yaml

from graph_probe import init_ros
from selfimprove_ros.graph.description import NodeSpec
from selfimprove_ros.graph.launcher import GraphRunner
from selfimprove_ros.model.manifest import verify_model_dir
from selfimprove_ros.nodes.ros_io import LATCHED_QOS
from test_dataset_loading import write_sim_bag

pytestmark = pytest.mark.graph  # starts ROS nodes: `-m "not graph"` skips

ANNOUNCE = '/trainertest/models/policy'


def run_trainer(tmp_path, parameters, until, timeout_s=180.0):
    """Start trainer_node, collect its status and announcements until `until(seen)`."""
    seen = {'status': [], 'announce': []}
    node = Node('trainer_probe')
    node.create_subscription(String, 'trainer/status', lambda m: seen['status'].append(
        json.loads(m.data)), LATCHED_QOS)
    node.create_subscription(String, ANNOUNCE, lambda m: seen['announce'].append(
        json.loads(m.data)), LATCHED_QOS)
    spec = NodeSpec('trainer_node', 'trainer_node', '/', {'announce_topic': ANNOUNCE,
                                                          **parameters})
    with GraphRunner([spec], str(tmp_path / 'logs')):
        deadline = time.monotonic() + timeout_s
        while not until(seen) and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
    node.destroy_node()
    return seen


def test_sft_mode_trains_exports_and_announces(tmp_path):
    init_ros()
    for index in range(3):
        write_sim_bag(tmp_path / 'bags', episode_id=f'ep{index}', ticks=12, success_from=8)
    settings = tmp_path / 'sft.yaml'
    settings.write_text(yaml.safe_dump({
        'sft': {'steps': 4, 'batch_size': 4, 'eval_every': 2, 'checkpoint_every': 2,
                'model': {'cameras': ['cam_high'], 'image_height': 8, 'image_width': 12,
                          'hidden_dim': 16, 'chunk_length': 2, 'action_bins': 8,
                          'steps_to_go_max': 20, 'steps_to_go_bins': 11}},
        'dataset': {'val_fraction': 0.0, 'cache_dir': str(tmp_path / 'cache')}}))
    seen = run_trainer(tmp_path, {
        'mode': 'sft', 'bag_dirs': [str(tmp_path / 'bags')], 'run_dir': str(tmp_path / 'run'),
        'settings_file': str(settings), 'export_dir': str(tmp_path / 'model')},
        until=lambda s: s['announce'] and s['status'] and s['status'][-1]['state'] != 'training')
    assert seen['announce'], seen['status'][-1:]
    announced = seen['announce'][-1]
    assert announced['model_dir'] == str(tmp_path / 'model')
    manifest = verify_model_dir(announced['model_dir'], required=('policy.onnx', 'reward.onnx'))
    assert manifest['version'] == announced['version']
    assert seen['status'][-1]['state'] == 'done'


def test_a_missing_bag_directory_is_reported_not_fatal(tmp_path):
    init_ros()
    seen = run_trainer(tmp_path, {
        'mode': 'sft', 'bag_dirs': [str(tmp_path / 'nowhere')], 'run_dir': str(tmp_path / 'r')},
        until=lambda s: s['status'] and s['status'][-1]['state'] == 'failed', timeout_s=60)
    assert seen['status'][-1]['state'] == 'failed'
    assert 'nowhere' in seen['status'][-1]['error']
    assert not os.path.exists(tmp_path / 'r' / 'checkpoints')
