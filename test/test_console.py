"""The operator console: fleet model, keys, text screens, and the ROS client on a live graph."""

import json
import os
import subprocess
import sys

import pytest

from selfimprove_ros.console.controls import (Action, answer_message, Controls, missing_message,
                                              QUIT, timeout_message)
from selfimprove_ros.console.fleet import Fleet
from selfimprove_ros.console.screen import screen_lines, text_report
from selfimprove_ros.console.status import (EPISODE_ABORT, EPISODE_MARK_FAILED,
                                            EPISODE_RESET_DONE, EPISODE_START, parse_status,
                                            service_name, status_namespace, StatusError,
                                            wilson_interval)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def status(robot, phase='running', needs_operator=False, version='v3', **fields):
    """Build a contract-conforming status dict."""
    data = {'robot': robot, 'phase': phase, 'cause': f'{robot} is {phase}', 'episode_id': 'e7',
            'ticks': 40, 'max_ticks': 400, 'steps_to_go': 37.5, 'policy_version': version,
            'episodes': 12, 'by_version': {'v2': {'episodes': 2, 'successes': 2},
                                           'v3': {'episodes': 10, 'successes': 7}},
            'needs_operator': needs_operator, 'stamp_ns': 123}
    data.update(fields)
    return data


def fleet_of(*statuses, now=0.0):
    """Return a Fleet that received `statuses` at `now`."""
    fleet = Fleet(stale_after_s=3.0)
    for data in statuses:
        fleet.ingest(data['robot'], json.dumps(data), now)
    return fleet


# ---------------------------------------------------------------------------- pure logic

def test_success_rate_counts_only_the_current_policy_version():
    row = fleet_of(status('aloha1')).row('aloha1', 0.0)
    rate = row.success
    assert (rate.version, rate.successes, rate.episodes) == ('v3', 7, 10)
    assert rate.rate == pytest.approx(0.7)
    # Wilson 95% for 7/10 (Newcombe 1998): 0.3968 .. 0.8922
    assert (rate.low, rate.high) == pytest.approx((0.3968, 0.8922), abs=1e-4)
    fresh = fleet_of(status('aloha1', version='v4')).row('aloha1', 0.0).success
    assert (fresh.episodes, fresh.rate, fresh.low, fresh.high) == (0, None, 0.0, 1.0)


def test_wilson_interval_edges():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    low, high = wilson_interval(10, 10)
    assert high == pytest.approx(1.0) and low == pytest.approx(0.7225, abs=1e-4)
    low, high = wilson_interval(0, 10)
    assert low == pytest.approx(0.0) and high == pytest.approx(0.2775, abs=1e-4)
    # Every interval contains its rate exactly (6/6 once came out as [0.61, 1 - 1e-16]).
    for trials in range(1, 60):
        for successes in range(trials + 1):
            low, high = wilson_interval(successes, trials)
            assert 0.0 <= low <= successes / trials <= high <= 1.0


def test_robot_goes_stale_and_stops_asking_for_a_reset():
    fleet = fleet_of(status('aloha1', 'waiting_for_reset', needs_operator=True), now=10.0)
    fresh, stale = fleet.row('aloha1', 12.9), fleet.row('aloha1', 13.5)
    assert not fresh.stale and fresh.needs_operator and fresh.attention == 'RESET'
    assert stale.stale and not stale.needs_operator and stale.attention == 'STALE 4s'
    assert 'STALE' in text_report([stale], 120)
    fleet.expect('aloha9')
    assert fleet.row('aloha9', 13.5).attention == 'NO DATA'


@pytest.mark.parametrize('bad, why', [
    ('{not json', 'not JSON'),
    ('[1, 2]', 'JSON object'),
    (json.dumps({k: v for k, v in status('aloha1').items() if k != 'ticks'}), "'ticks'"),
    (json.dumps(status('aloha1', phase='dancing')), 'dancing'),
    (json.dumps(status('aloha1', needs_operator='yes')), 'needs_operator'),
    (json.dumps(status('aloha1', episodes=True)), 'episodes'),
    (json.dumps(status('aloha1', by_version={'v3': {'episodes': 1, 'successes': 2}})), 'v3'),
])
def test_malformed_status_becomes_an_error_row(bad, why):
    with pytest.raises(StatusError, match=why):
        parse_status(bad)
    fleet = fleet_of(status('aloha2'))
    assert fleet.ingest('aloha1', bad, 0.0) is None
    row = fleet.row('aloha1', 0.0)
    assert row.status is None and row.attention == 'ERROR' and why in row.cause
    text = text_report(fleet.rows(0.0), 200)
    assert 'aloha1' in text and 'ERROR' in text and 'aloha2' in text
    fleet.ingest('aloha1', status('aloha1'), 1.0)
    assert fleet.row('aloha1', 1.0).attention == ''


def test_rows_put_robots_needing_the_operator_first():
    fleet = fleet_of(status('a_running'), status('b_reset', 'waiting_for_reset', True),
                     status('c_fault', 'fault'), status('d_reset', 'timeout', True))
    fleet.ingest('e_bad', '{}', 0.0)
    assert [row.robot for row in fleet.rows(1.0)] == [
        'b_reset', 'd_reset', 'c_fault', 'e_bad', 'a_running']


def test_keys_select_reset_and_start():
    rows = fleet_of(status('aloha1', 'waiting_for_reset', True), status('aloha2'),
                    status('aloha3', 'ready'), status('aloha4', 'success', True)).rows(0.0)
    controls = Controls()
    assert controls.selection(rows) == 'aloha1'
    assert controls.handle('r', rows, 0.0) == Action(EPISODE_RESET_DONE, ('aloha1',))
    assert controls.handle('down', rows, 0.0) is None and controls.selected == 'aloha4'
    assert controls.handle('s', rows, 0.0) == Action(EPISODE_START, ('aloha4',))
    controls.handle('up', rows, 0.0)
    controls.handle('up', rows, 0.0)  # wraps around
    assert controls.selected == 'aloha3'
    assert controls.handle('R', rows, 0.0) == Action(EPISODE_RESET_DONE, ('aloha1', 'aloha4'))
    assert controls.handle('f', rows, 0.0) == Action(EPISODE_MARK_FAILED, ('aloha3',))
    assert controls.handle('q', rows, 0.0) == QUIT
    assert controls.handle('x', rows, 0.0) is None
    calm = fleet_of(status('aloha2')).rows(0.0)
    assert controls.handle('R', calm, 0.0) is None and 'no robot needs' in controls.message


def test_abort_needs_a_second_press_within_two_seconds():
    rows = fleet_of(status('aloha1'), status('aloha2'), status('aloha3', 'ready')).rows(0.0)
    controls = Controls()
    assert controls.handle('a', rows, 10.0) is None
    assert 'again' in controls.message and 'aloha1' in controls.message
    assert controls.handle('a', rows, 11.9) == Action(EPISODE_ABORT, ('aloha1',))
    assert controls.handle('a', rows, 20.0) is None
    assert controls.handle('a', rows, 22.5) is None  # too late: this press asks again
    assert controls.handle('a', rows, 23.0) == Action(EPISODE_ABORT, ('aloha1',))
    assert controls.handle('a', rows, 30.0) is None
    controls.handle('down', rows, 30.5)  # another key cancels the confirmation
    assert controls.message == 'abort not confirmed'
    assert controls.handle('a', rows, 31.0) is None
    assert controls.handle('A', rows, 40.0) is None  # A does not confirm a
    assert controls.handle('A', rows, 41.0) == Action(EPISODE_ABORT, ('aloha1', 'aloha2'))
    idle = fleet_of(status('aloha3', 'ready')).rows(0.0)
    assert controls.handle('A', idle, 50.0) is None and 'no robot is running' in controls.message
    assert controls.handle('A', idle, 50.5) is None


def test_screen_shows_names_phases_and_fits_any_size():
    fleet = fleet_of(status('aloha1', 'waiting_for_reset', True), status('aloha2'),
                     status('aloha3', 'ready', steps_to_go=None))
    fleet.ingest('aloha4', 'garbage', 0.0)
    rows = fleet.rows(1.0)
    text = text_report(rows, 120)
    for name, phase in [('aloha1', 'waiting_for_reset'), ('aloha2', 'running'),
                        ('aloha3', 'ready'), ('aloha4', 'ERROR')]:
        line = next(line for line in text.splitlines() if name in line)
        assert phase in line
    assert '7/10 70% [40-89]' in text and '37.5' in text
    controls = Controls()
    controls.post('aloha2 abort: ok')
    for width, height in [(120, 30), (80, 24), (40, 7), (45, 8)]:
        lines = screen_lines(rows, controls, width, height)
        assert len(lines) <= height and all(len(text) <= width for text, _ in lines)
        assert sum(style == 'selected' for _, style in lines) == 1
        assert any('aloha2 abort: ok' in text for text, _ in lines)
    small = screen_lines(rows, controls, 20, 3)
    assert len(small) == 1 and small[0][0].startswith('too small')
    many = fleet_of(*[status(f'r{i:02d}') for i in range(30)]).rows(0.0)
    controls.selected = 'r25'
    lines = screen_lines(many, controls, 80, 10)
    assert any(text.startswith('> r25') for text, _ in lines)  # scrolled into view


def test_names_and_messages():
    assert status_namespace('/aloha1/episode/status') == '/aloha1'
    assert status_namespace('/lab/aloha2/episode/status') == '/lab/aloha2'
    assert status_namespace('/aloha1/episode/events') is None
    assert service_name('aloha1', EPISODE_ABORT) == '/aloha1/episode/abort'
    assert answer_message('aloha1', EPISODE_RESET_DONE, False, 'cannot') == \
        'aloha1 reset_done: REFUSED: cannot'
    assert '/aloha2/episode/start' in missing_message('aloha2', '/aloha2/episode/start')
    assert 'within 3 s' in timeout_message('aloha2', '/aloha2/episode/abort', 3.0)


def test_cli_registers_console():
    from selfimprove_ros.cli.main import build_parser
    args = build_parser().parse_args(['console', '--robots', 'aloha1', 'aloha2', '--once'])
    assert (args.robots, args.once, args.refresh_hz) == (['aloha1', 'aloha2'], True, 4.0)


# ---------------------------------------------------------------------------- on a ROS graph

class FakeManager:
    """A stand-in episode manager for one namespace: latched status, counting services."""

    def __init__(self, robot, services=(EPISODE_RESET_DONE, EPISODE_ABORT, EPISODE_START)):
        from rclpy.node import Node
        from std_msgs.msg import String
        from std_srvs.srv import Trigger

        from selfimprove_ros.console.status import EPISODE_STATUS
        from selfimprove_ros.nodes.ros_io import LATCHED_QOS
        self.robot, self.calls = robot, {name: 0 for name in services}
        self.node = Node('fake_episode_manager', namespace='/' + robot)
        self.status_pub = self.node.create_publisher(String, EPISODE_STATUS, LATCHED_QOS)
        for name in services:
            self.node.create_service(Trigger, name,
                                     lambda request, response, name=name:
                                     self.serve(name, response))
        self.publish(status(robot, 'waiting_for_reset', needs_operator=True))

    def publish(self, data):
        """Publish one status (latched, so a late console still gets it)."""
        from std_msgs.msg import String
        self.status_pub.publish(String(data=json.dumps(data)))

    def serve(self, name, response):
        """Count the call and accept it."""
        self.calls[name] += 1
        response.success, response.message = True, f'{self.robot} did {name}'
        if name == EPISODE_RESET_DONE:
            self.publish(status(self.robot, 'ready'))
        return response


@pytest.fixture
def ros():
    """Initialise rclpy for one test and shut it down after."""
    import rclpy
    rclpy.init()
    yield rclpy
    rclpy.try_shutdown()


@pytest.mark.graph
def test_console_client_discovers_robots_and_calls_the_right_one(ros):
    from rclpy.executors import SingleThreadedExecutor

    from graph_probe import spin_executor_until
    from selfimprove_ros.nodes.console_client import ConsoleClient
    fakes = [FakeManager('aloha1'), FakeManager('aloha2', services=(EPISODE_RESET_DONE,))]
    fleet, controls = Fleet(), Controls()
    client = ConsoleClient(fleet, controls.post, scan_period_s=0.5, call_timeout_s=1.5)
    executor = SingleThreadedExecutor()
    for node in [client] + [fake.node for fake in fakes]:
        executor.add_node(node)

    def spin_until(condition, timeout_s):
        return spin_executor_until(executor, condition, timeout_s)

    def phases():
        return {row.robot: row.phase for row in fleet.rows(client.clock())}

    try:
        wanted = {'aloha1': 'waiting_for_reset', 'aloha2': 'waiting_for_reset'}
        assert spin_until(lambda: wanted.items() <= phases().items(), 10.0), phases()
        controls.selected = 'aloha2'
        action = controls.handle('r', fleet.rows(client.clock()), client.clock())
        client.send(action)
        assert spin_until(lambda: 'aloha2 reset_done: ok' in controls.message, 5.0), \
            list(controls.messages)
        assert fakes[1].calls[EPISODE_RESET_DONE] == 1
        assert fakes[0].calls[EPISODE_RESET_DONE] == 0
        assert spin_until(lambda: phases().get('aloha2') == 'ready', 3.0), phases()

        client.send(Action(EPISODE_START, ('aloha2',)))
        assert spin_until(lambda: client.pending_calls == 0, 5.0)
        assert controls.message == ('aloha2: service /aloha2/episode/start is not available '
                                    '(is its episode manager running?)')
        assert fakes[0].calls[EPISODE_START] == 0
    finally:
        executor.shutdown()
        for node in [client] + [fake.node for fake in fakes]:
            node.destroy_node()


@pytest.mark.graph
def test_console_once_prints_the_table_of_a_live_graph(ros):
    fakes = [FakeManager('aloha1'), FakeManager('aloha2')]
    try:
        result = subprocess.run(
            [sys.executable, '-m', 'selfimprove_ros.cli.main', 'console', '--once',
             '--robots', 'aloha1', 'aloha2', '--wait-s', '10'],
            cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        lines = result.stdout.splitlines()
        assert lines[0].startswith('selfimprove console: 2 robots, 2 need a reset')
        assert [line.split()[:2] for line in lines[2:]] == [
            ['aloha1', 'waiting_for_reset'], ['aloha2', 'waiting_for_reset']]
    finally:
        for fake in fakes:
            fake.node.destroy_node()
