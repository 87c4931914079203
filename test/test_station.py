"""A sim station runs the robot's own cores: same commands as policy_node's, the manager's rules.

Stations are how practice reaches thousands of episodes (fleet/); they are only worth that if
a station's robot behaves as the node graph's. Checked here without ROS: the controller that
policy_node would build from the same graph description answers every recorded observation
with the command and tokens the station sent; episodes end as the episode manager ends them
(timeout, detection, faults); a broken world leaves a bag marked fault, not a lost one.
"""

import os

import numpy as np
import pytest

from selfimprove_ros.bag.episode_metadata import read_episode_file
from selfimprove_ros.cli.evaluate import sim_runtime_specs
from selfimprove_ros.core.config import config_from_dict
from selfimprove_ros.data.dataset_config import DatasetConfig
from selfimprove_ros.data.episode_labelling import read_labels
from selfimprove_ros.data.episode_loader import load_episode
from selfimprove_ros.fleet.practice_loop import EpisodeSpec, toy_station
from selfimprove_ros.fleet.station_settings import settings_from_graph
from selfimprove_ros.fleet.station_worker import StationWorker
from selfimprove_ros.runtime.onnx_model import load_model
from selfimprove_ros.runtime.policy_config import PolicyConfig
from selfimprove_ros.runtime.policy_controller import PolicyController
from selfimprove_ros.sim.aloha_sim import INSTRUCTIONS
from selfimprove_ros.sim.point_mass import PointMass

SHIPPED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'models',
                       'transfer_cube')


def aloha_specs(temperature=1.0, max_ticks=30):
    return sim_runtime_specs('transfer_cube', ['cam_high'], SHIPPED, SHIPPED, 'aloha1',
                             max_ticks, temperature)


def test_settings_come_from_the_nodes_parameters_of_the_graph_description():
    specs = sim_runtime_specs('transfer_cube', ['cam_high'], SHIPPED, SHIPPED, 'aloha1', 77,
                              0.0, {'robot_node': {'safety.max_arm_speed_rad_s': 1.5}})
    settings = settings_from_graph(specs, 'aloha1')
    assert settings.episodes.max_ticks == 77 and settings.policy.temperature == 0.0
    assert settings.safety.max_arm_speed_rad_s == 1.5
    assert settings.camera_size == (120, 160) and settings.cameras == ['cam_high']
    assert settings.robot_config.lockstep and settings.task == 'transfer_cube'


def test_a_station_needs_the_runtime_nodes():
    specs = [spec for spec in aloha_specs() if spec.executable != 'policy_node']
    with pytest.raises(ValueError, match='policy_node'):
        settings_from_graph(specs, 'aloha1')


def test_station_commands_are_what_policy_node_would_send(tmp_path):
    """Replay the station's bag through the controller policy_node builds from the same specs."""
    specs = aloha_specs(temperature=1.0)
    worker = StationWorker(specs, 'aloha1', SHIPPED, station={'frames': 'every_tick'},
                           sample_seed=7)
    try:
        assert worker.take_model(SHIPPED) == {'version': 'transfer_cube-stage1'}
        result = worker.run({'seed': 80_003, 'episode_id': 'replayed', 'bag_root': str(tmp_path)})
    finally:
        worker.close()
    assert result['labelled'] and result['decisions'] > 0
    params = next(spec.parameters for spec in specs if spec.executable == 'policy_node')
    names = set(PolicyConfig.__dataclass_fields__)
    config = config_from_dict(PolicyConfig, {k: v for k, v in params.items() if k in names},
                              'policy_node')
    model = load_model(SHIPPED, 'policy.onnx', ['cam_high'], providers='cpu')
    # The frames as camera_node publishes them (120 x 160): policy_node resizes them itself.
    episode = load_episode(result['bag'], DatasetConfig(
        cameras=['cam_high'], image_height=120, image_width=160, include_failed=True,
        cache_dir=''))
    controller = PolicyController(config, _Quiet(), decode=lambda frame: frame)
    controller.on_loads([model])
    # As the episode manager's `start`, which carries the task's instruction.
    controller.on_event({'event': 'start', 'episode_id': 'replayed', 'seed': 80_003,
                         'instruction': INSTRUCTIONS['transfer_cube']})
    controller.on_event({'event': 'recording', 'episode_id': 'replayed'})
    # A station draws each scene's samples from (its sample seed, the scene's seed).
    controller.runtime.rng = np.random.default_rng([7, 80_003])
    compared = 0
    for t in range(episode.length - 1):  # the last observation ends the episode unanswered
        stamp = int(episode.tick_ns[t])
        controller.on_joints(stamp, episode.joints[t])
        controller.on_frame('cam_high', stamp, episode.images['cam_high'][t])
        out = controller.tick(stamp)
        np.testing.assert_allclose(out.command, episode.actions[t], atol=1e-6)
        if out.tokens is not None:
            assert out.tokens['tokens'] == episode.action_tokens[t].tolist()
            compared += 1
    assert compared == result['decisions']


class _Quiet:
    def info(self, *_):
        pass

    warning = error = info


def test_only_the_frames_used_are_rendered_and_labels_still_cover_every_decision(tmp_path):
    worker = StationWorker(aloha_specs(temperature=1.0), 'aloha1', SHIPPED)
    try:
        worker.take_model(SHIPPED)
        result = worker.run({'seed': 80_001, 'episode_id': 'sparse', 'bag_root': str(tmp_path)})
    finally:
        worker.close()
    labels = read_labels(result['bag'])
    # 30 ticks, chunks of 5: frames at the 6 decisions and the last tick, not at all 31.
    assert result['ticks'] == 30 and result['outcome'] == 'timeout'
    assert len(labels.steps_to_go) < 31 and labels.decision.sum() == result['decisions'] == 6
    assert len(labels.steps_to_go) + len(labels.dropped_ticks) == 31


def spec(**changes):
    return EpisodeSpec(instruction='move the red dot onto the green disk', **changes)


class Commanding:
    """A scripted demonstrator that commands a fixed target, or raises at one tick."""

    def __init__(self, target, raise_at=None):
        self.target, self.raise_at, self.ticks = np.asarray(target, dtype=float), raise_at, 0

    def reset(self, seed):
        self.ticks = 0

    def act(self, frames, joints, stamp_ns):
        self.ticks += 1
        if self.ticks == self.raise_at:
            self.raise_at = None  # once: the next episode runs as usual
            raise RuntimeError('the demonstrator broke')
        return self.target, None


def test_a_station_times_out_at_max_ticks_as_the_episode_manager(tmp_path):
    env = PointMass()
    env.reset(0)
    station = toy_station(env, spec(max_ticks=9), actor=Commanding(env.joints()))
    result = station.run_episode(3, 'still', str(tmp_path))
    assert (result.outcome, result.ticks, result.sim_success) == ('timeout', 9, False)
    assert read_episode_file(result.bag).outcome == 'timeout'


def test_a_command_the_safety_guard_refuses_ends_the_episode_as_a_fault(tmp_path):
    env = PointMass()
    env.reset(0)
    wild = env.joints() + 50.0  # far outside every joint limit: bad input, the guard holds
    result = toy_station(env, spec(max_ticks=9), actor=Commanding(wild)).run_episode(
        3, 'wild', str(tmp_path))
    assert result.outcome == 'fault' and 'hold_invalid' in result.cause


def test_a_station_that_breaks_mid_episode_leaves_its_bag_marked_fault(tmp_path):
    env = PointMass()
    env.reset(0)
    station = toy_station(env, spec(max_ticks=9), actor=Commanding(env.joints(), raise_at=4))
    with pytest.raises(RuntimeError, match='demonstrator broke'):
        station.run_episode(3, 'broken', str(tmp_path))
    [bag] = os.listdir(tmp_path)
    meta = read_episode_file(os.path.join(tmp_path, bag))
    assert meta.outcome == 'fault' and 'demonstrator broke' in meta.outcome_cause
    # The ticks before the failure are kept: the next episode runs as usual.
    assert station.run_episode(4, 'after', str(tmp_path)).outcome == 'timeout'
