"""The graph description: shipped configs build, graph-wide settings reach every node, and a
lockstep graph whose simulator would outrun its controllers is refused."""

import pytest

from selfimprove_ros.graph.description import (build_graph, config_path, largest_frame_bytes,
                                               load_config)
from selfimprove_ros.sim.aloha_sim import SUCCESS_BONUS


def specs_by_name(specs):
    return {spec.name: spec for spec in specs}


@pytest.mark.parametrize('name', ['sim.yaml', 'aloha.yaml'])
def test_shipped_configs_build_a_whole_runtime_graph(name):
    specs = specs_by_name(build_graph(load_config(config_path(name)), 'aloha1',
                                      with_runtime=True))
    assert {'robot_node', 'policy_node', 'reward_scorer_node', 'success_detector_node',
            'episode_manager_node', 'recorder_node'} <= set(specs)
    assert all(spec.namespace == '/aloha1' for spec in specs.values())


def test_lockstep_gives_everyone_but_the_robot_sim_time_and_one_period():
    overrides = {'launch': {'lockstep': True, 'control_period_s': 0.05, 'cameras': ['cam_high']}}
    specs = specs_by_name(build_graph(load_config(config_path('sim.yaml')), 'r', overrides,
                                      with_runtime=True, with_expert=True))
    assert 'use_sim_time' not in specs['robot_node'].parameters
    assert specs['policy_node'].parameters['use_sim_time'] is True
    for name in ('robot_node', 'expert_node', 'policy_node', 'episode_manager_node'):
        assert specs[name].parameters['control_period_s'] == 0.05, name


@pytest.mark.parametrize('controller', ['policy_node', 'expert_node'])
def test_a_simulator_that_steps_before_a_controller_may_act_is_refused(controller):
    config = load_config(config_path('sim.yaml'))
    overrides = {controller: {'sync_timeout_s': 1.0}, 'robot_node': {'lockstep_timeout_s': 1.0}}
    with pytest.raises(ValueError, match=f'{controller}.sync_timeout_s'):
        build_graph(config, 'r', overrides, with_runtime=True, with_expert=True)
    overrides['robot_node']['lockstep_timeout_s'] = 1.5
    build_graph(config, 'r', overrides, with_runtime=True, with_expert=True)
    # Wall-clock mode has no such race: the simulator never waits for anyone.
    overrides['launch'] = {'lockstep': False}
    overrides['robot_node']['lockstep_timeout_s'] = 0.1
    build_graph(config, 'r', overrides, with_runtime=True, with_expert=True)


def test_frame_size_decides_whether_a_graph_needs_the_large_data_transport():
    sim = load_config(config_path('sim.yaml'))
    assert largest_frame_bytes(build_graph(sim, 'r')) == 160 * 120 * 3
    bigger = {'camera_node': {'width': 640, 'height': 480}}
    assert largest_frame_bytes(build_graph(sim, 'r', bigger)) == 640 * 480 * 3
    robot = build_graph(load_config(config_path('aloha.yaml')), 'r')
    assert largest_frame_bytes(robot) == 640 * 480 * 3
    # A camera that keeps its source's size may be large: unknown.
    source = {'camera_node': {'width': 0, 'height': 0}}
    assert largest_frame_bytes(build_graph(sim, 'r', source)) is None
    assert largest_frame_bytes(build_graph(sim, 'r', {'launch': {'cameras': []}})) == 0


def test_the_expert_waits_for_the_recorder_only_where_there_is_one():
    sim = load_config(config_path('sim.yaml'))
    recorded = specs_by_name(build_graph(sim, 'r', with_expert=True))
    assert 'wait_for_recording' not in recorded['expert_node'].parameters  # default: wait
    bare = specs_by_name(build_graph(sim, 'r', {'launch': {'recorder': False}}, with_expert=True))
    assert 'recorder_node' not in bare and bare['expert_node'].parameters[
        'wait_for_recording'] is False


@pytest.mark.parametrize('config, task, bonus', [
    ('sim.yaml', 'insertion', SUCCESS_BONUS['insertion']),
    ('sim.yaml', 'transfer_cube', 0.0),
    ('aloha.yaml', 'insertion', 0.0),  # a robot's config sets none: no simulator verdict there
])
def test_the_scorer_gets_the_tasks_success_bonus_unless_the_config_sets_one(config, task, bonus):
    specs = specs_by_name(build_graph(load_config(config_path(config)), 'r',
                                      {'launch': {'task': task}}, with_runtime=True))
    assert specs['reward_scorer_node'].parameters['success_bonus'] == bonus
    assert SUCCESS_BONUS['insertion'] > 0
    chosen = {'launch': {'task': task}, 'reward_scorer_node': {'success_bonus': 1.5}}
    specs = specs_by_name(build_graph(load_config(config_path(config)), 'r', chosen,
                                      with_runtime=True))
    assert specs['reward_scorer_node'].parameters['success_bonus'] == 1.5
