"""episode_manager_node on an isolated graph: a simulated and an operator-reset robot.

The real node runs as a process in two namespaces; recorder, simulator reset, robot, policy and
success detector are played by `FakeNeighbours` in this process.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from std_msgs.msg import Bool

from graph_probe import init_ros
from manager_fakes import FakeNeighbours
from selfimprove_ros.console.status import parse_status
from selfimprove_ros.core import topics
from selfimprove_ros.core.joints import START_POSE
from selfimprove_ros.graph.description import NodeSpec
from selfimprove_ros.graph.launcher import GraphRunner

pytestmark = pytest.mark.graph  # starts ROS nodes: `-m "not graph"` skips

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIM, ROBOT = 'mgrsim', 'mgrrobot'
MAX_TICKS = 12
SIM_PARAMS = {'max_ticks': MAX_TICKS, 'auto_reset': True, 'auto_start': True,
              'recorder_timeout_s': 5.0}
ROBOT_PARAMS = {'max_ticks': 50, 'auto_reset': False, 'auto_start': False, 'home_s': 3.0,
                'recorder_timeout_s': 1.5}


@pytest.fixture(scope='module')
def graph(tmp_path_factory):
    """Both managers, and the neighbours of each."""
    init_ros()
    executor = SingleThreadedExecutor()
    fakes = {name: FakeNeighbours('/' + name, executor) for name in (SIM, ROBOT)}
    specs = [NodeSpec('episode_manager_node', 'episode_manager_node', '/' + SIM, SIM_PARAMS),
             NodeSpec('episode_manager_node', 'episode_manager_node', '/' + ROBOT,
                      ROBOT_PARAMS)]
    with GraphRunner(specs, str(tmp_path_factory.mktemp('manager_logs'))) as runner:
        for fake in fakes.values():
            fake.wait_matched(60.0, runner.check)
        yield fakes[SIM], fakes[ROBOT], runner.check
        for fake in fakes.values():
            fake.destroy_node()
    executor.shutdown()
    rclpy.shutdown()


def test_sim_cycle_ends_on_detected_success_and_starts_the_next_episode(graph):
    sim, _, check = graph
    start = sim.running_episode(30.0, check)
    assert (start['robot'], start['task']) == (SIM, 'transfer_cube')
    assert start['instruction'] and start['seed'] in sim.seeds
    sim.sim_success_pub.publish(Bool(data=True))
    sim.publish_json(topics.POLICY_TIMING, version='v1', state='ok')
    sim.publish_json(topics.STEPS_TO_GO, steps_to_go=3.5, episode_id=start['episode_id'])
    sim.wait_status(5.0, check, policy_version='v1', steps_to_go=3.5)
    sim.publish_json(topics.SUCCESS_DETECTED, episode_id=start['episode_id'], stamp_ns=1,
                     steps_to_go=1.25, sim_success=True)
    end = sim.wait_end(start['episode_id'], 5.0, check)
    assert end['outcome'] == 'success', end
    assert 'd=1.25' in end['cause'] and 'simulator agreed' in end['cause'], end
    assert (end['policy_version'], end['sim_success']) == ('v1', True)
    after = sim.running_episode(10.0, check)
    assert after['episode_id'] != start['episode_id']
    assert after['seed'] == start['seed'] + 1 and after['policy_version'] == 'v1'


def test_episode_times_out_after_max_ticks_of_robot_time(graph):
    sim, _, check = graph
    start = sim.running_episode(15.0, check)
    sim.tick(MAX_TICKS)  # the first stamp is tick 0
    sim.wait_status(5.0, check, episode_id=start['episode_id'], ticks=MAX_TICKS - 1)
    assert start['episode_id'] not in sim.ended()
    sim.tick()
    end = sim.wait_end(start['episode_id'], 5.0, check)
    assert (end['outcome'], end['ticks']) == ('timeout', MAX_TICKS), end
    assert end['cause'] == f'no success within {MAX_TICKS} ticks'


def test_abort_while_running_and_reset_done_refused(graph):
    sim, _, check = graph
    start = sim.running_episode(15.0, check)
    refused = sim.call(topics.EPISODE_RESET_DONE, check=check)
    assert not refused.success
    assert refused.message == ('cannot confirm a reset while running; '
                               'abort or wait for the episode to end')
    answer = sim.call(topics.EPISODE_ABORT, check=check)
    assert (answer.success, answer.message) == (True, 'operator abort')
    end = sim.wait_end(start['episode_id'], 5.0, check)
    assert (end['outcome'], end['cause']) == ('aborted', 'operator abort')


def test_safety_hold_after_the_controller_acted_is_a_fault(graph):
    sim, _, check = graph
    start = sim.running_episode(15.0, check)
    sim.safety('hold_no_command', 'no command received yet')  # the start of every episode
    sim.safety('hold_watchdog', 'left over from the previous episode')  # within the grace
    sim.safety('ok')
    sim.safety('hold_watchdog', 'newest command is 0.600 s old')
    end = sim.wait_end(start['episode_id'], 5.0, check)
    assert end['outcome'] == 'fault'
    assert end['cause'] == 'safety guard hold_watchdog: newest command is 0.600 s old'


def test_stale_policy_is_a_fault_and_counts_for_its_version(graph):
    sim, _, check = graph
    start = sim.running_episode(15.0, check)
    sim.publish_json(topics.POLICY_TIMING, version='v2', state='ok')
    sim.publish_json(topics.POLICY_TIMING, version='v2', state='stale')
    end = sim.wait_end(start['episode_id'], 5.0, check)
    assert (end['outcome'], end['policy_version']) == ('fault', 'v2')
    assert 'stale' in end['cause']


def test_status_follows_the_contract_and_counts_add_up(graph):
    sim, _, check = graph
    sim.running_episode(15.0, check)
    ends = list(sim.ended().values())
    status = sim.wait_status(5.0, check, episodes=len(ends))
    for text in sim.statuses:
        parse_status(text)
    expected = {}
    for end in ends:
        counts = expected.setdefault(end['policy_version'],
                                     {'episodes': 0, 'successes': 0, 'sim_successes': 0})
        counts['episodes'] += 1
        counts['successes'] += end['outcome'] == 'success'
        counts['sim_successes'] += end['sim_success']
    assert status['by_version'] == expected
    assert sum(c['episodes'] for c in status['by_version'].values()) == status['episodes']
    assert (status['max_ticks'], status['needs_operator'], status['robot']) == \
        (MAX_TICKS, False, SIM)


def test_operator_resets_the_real_robot(graph):
    _, robot, check = graph
    status = robot.wait_status(20.0, check, phase='waiting_for_reset', needs_operator=True)
    refused = robot.call(topics.EPISODE_START, check=check)
    assert not refused.success and 'waiting_for_reset' in refused.message
    assert robot.status()['needs_operator']
    answer = robot.call(topics.EPISODE_RESET_DONE, check=check)
    assert (answer.success, answer.message) == (True, 'operator confirmed the reset')
    robot.wait_status(5.0, check, phase='ready', needs_operator=False)
    assert robot.call(topics.EPISODE_START, check=check).success
    start = robot.running_episode(5.0, check)
    assert start['seed'] == -1
    robot.commands.clear()
    robot.call(topics.EPISODE_ABORT, check=check)
    assert robot.wait_end(start['episode_id'], 5.0, check)['outcome'] == 'aborted'
    robot.wait_status(5.0, check, phase='waiting_for_reset', needs_operator=True,
                      episodes=status['episodes'] + 1)
    assert robot.spin_until(lambda: len(robot.commands) >= 3, 5.0, check), 'arms not sent home'
    np.testing.assert_allclose(robot.commands[-1], START_POSE)


def test_unacknowledged_episode_ends_as_a_fault(graph):
    _, robot, check = graph
    robot.wait_status(20.0, check, phase='waiting_for_reset')
    robot.recorder_answers = False
    try:
        assert robot.call(topics.EPISODE_RESET_DONE, check=check).success
        assert robot.call(topics.EPISODE_START, check=check).success
        episode_id = robot.status()['episode_id']
        end = robot.wait_end(episode_id, 10.0, check)
        assert end['outcome'] == 'fault' and 'recorder did not acknowledge' in end['cause']
        status = robot.wait_status(5.0, check, phase='waiting_for_reset')
        assert 'never acknowledged' in status['cause']
    finally:
        robot.recorder_answers = True


def test_console_once_shows_both_managers(graph):
    result = subprocess.run(
        [sys.executable, '-m', 'selfimprove_ros.cli.main', 'console', '--once',
         '--robots', SIM, ROBOT, '--wait-s', '10'],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env=os.environ)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[2:]}
    assert set(rows) == {SIM, ROBOT}, result.stdout
    assert 'RESET' in rows[ROBOT] and 'RESET' not in rows[SIM], result.stdout
