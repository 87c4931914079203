"""The episode manager's logic without ROS: the EpisodeStateMachine's phases, EpisodeCycle with a
fake io, EpisodeWatch rules."""

import json
import logging

import pytest

from hand_clock import Clock
from selfimprove_ros.console.status import parse_status
from selfimprove_ros.episode.cycle import EpisodeCycle
from selfimprove_ros.episode.state import EpisodeStateMachine, Phase, TransitionError
from selfimprove_ros.episode.watch import EpisodeTally, EpisodeWatch
from selfimprove_ros.episode.episode_manager_config import EpisodeManagerConfig

PERIOD_NS = 100_000_000


class Answer:
    """A Trigger response."""

    def __init__(self, success, message):
        self.success, self.message = success, message


class Future:
    """Enough of rclpy's Future for sim/reset calls."""

    def __init__(self):
        self.callbacks, self.response = [], None

    def add_done_callback(self, callback):
        self.callbacks.append(callback)

    def result(self):
        return self.response

    def answer(self, success=True, message=None, seed=7):
        self.response = Answer(success, message or json.dumps({'seed': seed, 'time_ns': 0}))
        for callback in self.callbacks:
            callback(self)


class FakeIO:
    """Record what the cycle publishes; hand out sim/reset futures."""

    def __init__(self, reset_available=True):
        self.events, self.statuses, self.homes, self.resets, self.cancelled = [], [], 0, [], []
        self.reset_available = reset_available

    def publish_event(self, text):
        self.events.append(json.loads(text))

    def publish_status(self, text):
        self.statuses.append(parse_status(text))

    def publish_home(self):
        self.homes += 1

    def call_reset(self):
        if not self.reset_available:
            return None
        self.resets.append(Future())
        return self.resets[-1]

    def cancel_reset(self, future):
        self.cancelled.append(future)

    def kinds(self):
        return [event['event'] for event in self.events]


def make_cycle(**settings):
    io, clock = FakeIO(), Clock()
    cycle = EpisodeCycle(EpisodeManagerConfig(max_ticks=5, **settings), 'aloha1', 'do it', io,
                         logging.getLogger('test'), clock)
    return cycle, io, clock


def acknowledge(cycle, io):
    episode_id = io.events[-1]['episode_id']
    cycle.on_event({'event': 'recording', 'episode_id': episode_id, 'path': '/bag'})
    return episode_id


def test_sim_cycle_runs_episodes_until_max_episodes():
    cycle, io, clock = make_cycle(max_episodes=2)
    cycle.step()
    io.resets[-1].answer(seed=7)
    assert io.events[-1]['event'] == 'start' and io.events[-1]['seed'] == 7
    first = acknowledge(cycle, io)
    cycle.on_success({'episode_id': 'someone-else', 'steps_to_go': 0.5})
    assert cycle.machine.phase.value == 'running'
    cycle.on_success({'episode_id': first, 'steps_to_go': 0.5})
    assert io.events[-1]['outcome'] == 'success' and 'd=0.50' in io.events[-1]['cause']
    cycle.on_event({'event': 'saved', 'episode_id': first, 'path': '/bag'})
    cycle.step()
    io.resets[-1].answer(seed=8)
    second = acknowledge(cycle, io)
    for stamp in range(6):
        cycle.on_stamp(10**9 + stamp * PERIOD_NS)
    assert io.events[-1]['outcome'] == 'timeout'
    cycle.on_event({'event': 'saved', 'episode_id': second, 'path': '/bag'})
    cycle.step()
    assert len(io.resets) == 2 and 'max_episodes=2 done' in io.statuses[-1].cause
    assert io.statuses[-1].by_version == {'': {'episodes': 2, 'successes': 1}}


def test_no_episode_starts_before_the_policy_and_the_reward_scorer_are_live(caplog):
    cycle, io, clock = make_cycle(wait_for_policy=True, wait_for_reward=True)
    cycle.step()
    io.resets[-1].answer(seed=7)
    assert cycle.machine.phase.value == 'ready' and 'start' not in io.kinds()
    assert 'a live policy' in io.statuses[-1].cause
    accepted, message = cycle.request('start')
    assert not accepted and 'wait_for_policy' in message
    cycle.on_version('v1')
    assert cycle.machine.phase.value == 'ready' and 'the reward scorer' in io.statuses[-1].cause
    clock.now += 6.0  # a graph that never comes up says so in the log, not only the status
    cycle.on_version('v1')  # a live policy is heard every tick
    with caplog.at_level(logging.WARNING):
        cycle.step()
    assert 'no episode starts before the reward scorer' in caplog.text
    cycle.on_steps_to_go({'episode_id': '', 'steps_to_go': 40.0})  # scored between episodes
    assert io.kinds() == ['start'] and cycle.machine.phase.value == 'running'


def test_ticks_follow_stamps_not_messages():
    cycle, io, _ = make_cycle(auto_reset=False)
    cycle.request('reset_done')
    acknowledge(cycle, io)
    for stamp_ms in (0, 0, 98, 203, 203):  # repeats and timer jitter
        cycle.on_stamp(10**9 + stamp_ms * 10**6)
    assert cycle.machine.ticks == 2
    cycle.on_stamp(10**9 + 5 * PERIOD_NS)  # a lost message still counts its ticks
    assert io.events[-1]['event'] == 'end' and io.events[-1]['ticks'] == 5


def test_unacknowledged_start_is_repeated_then_a_fault():
    cycle, io, clock = make_cycle(auto_reset=False, recorder_timeout_s=2.0)
    cycle.request('reset_done')
    for _ in range(5):
        clock.now += 0.5
        cycle.step()
    assert io.kinds() == ['start'] * 5 + ['end']  # at 0, 0.5, 1, 1.5, 2 s; then 2.5 s
    assert io.events[-1]['outcome'] == 'fault'
    assert cycle.machine.phase.value == 'waiting_for_reset'  # no bag to wait for


def test_recorder_not_required_runs_anyway():
    cycle, io, clock = make_cycle(auto_reset=False, require_recorder=False,
                                  recorder_timeout_s=1.0)
    cycle.request('reset_done')
    clock.now += 5.0
    cycle.step()
    assert cycle.machine.phase.value == 'running'


def test_missing_saved_moves_on_after_the_timeout():
    cycle, io, clock = make_cycle(auto_reset=False, saved_timeout_s=3.0)
    cycle.request('reset_done')
    acknowledge(cycle, io)
    assert cycle.request('abort') == (True, 'operator abort')
    assert cycle.request('reset_done')[0] is False
    clock.now += 3.5
    cycle.step()
    assert cycle.machine.phase.value == 'waiting_for_reset'
    assert cycle.machine.cause == 'the recorder did not confirm the bag'


def test_a_recorder_that_cannot_write_ends_the_episode_as_a_fault_at_once():
    cycle, io, clock = make_cycle(auto_reset=False, saved_timeout_s=3.0)
    cycle.request('reset_done')
    episode_id = acknowledge(cycle, io)
    cycle.on_event({'event': 'refused', 'episode_id': 'another', 'cause': 'not mine'})
    assert cycle.machine.phase.value == 'running'
    cycle.on_event({'event': 'refused', 'episode_id': episode_id,
                    'cause': 'No space left on device'})
    assert io.events[-1]['event'] == 'end' and io.events[-1]['outcome'] == 'fault'
    assert io.events[-1]['cause'] == 'recorder: No space left on device'
    # No `saved` will come: the robot waits for its reset, not for the recorder's timeout.
    assert cycle.machine.phase.value == 'waiting_for_reset'
    assert cycle.machine.cause == 'recorder: No space left on device'


def test_sim_reset_is_called_again_after_a_timeout_or_a_failure():
    cycle, io, clock = make_cycle(reset_timeout_s=2.0)
    cycle.step()
    clock.now += 2.5
    cycle.step()
    assert io.cancelled == [io.resets[0]]
    cycle.step()
    io.resets[0].answer()  # too late: ignored
    io.resets[1].answer(success=False, message='simulator crashed')
    cycle.step()
    assert len(io.resets) == 2
    clock.now += 1.5
    cycle.step()
    io.resets[2].answer(seed=3)
    assert cycle.machine.phase.value == 'running' and io.events[-1]['seed'] == 3


def test_operator_robot_goes_home_and_needs_the_operator():
    cycle, io, clock = make_cycle(auto_reset=False, auto_start=False, home_s=1.0)
    assert io.statuses[-1].needs_operator and io.statuses[-1].phase == 'waiting_for_reset'
    for _ in range(8):
        cycle.step()
        clock.now += 0.25
    assert io.homes == 4
    assert cycle.request('start')[0] is False
    assert cycle.request('reset_done') == (True, 'operator confirmed the reset')
    assert not io.statuses[-1].needs_operator and io.statuses[-1].phase == 'ready'
    assert cycle.request('start')[0] and io.events[-1]['seed'] == -1


def test_estop_faults_and_pauses_the_cycle():
    cycle, io, clock = make_cycle()
    cycle.step()
    io.resets[-1].answer()
    acknowledge(cycle, io)
    cycle.on_estop(True)
    assert io.events[-1]['cause'] == 'e-stop engaged'
    cycle.on_event({'event': 'saved', 'episode_id': io.events[-1]['episode_id'], 'path': '/b'})
    cycle.step()
    assert len(io.resets) == 1  # no new scene while the e-stop is engaged
    cycle.on_estop(False)
    cycle.step()
    assert len(io.resets) == 2


def test_sim_success_is_kept_but_ends_nothing():
    cycle, io, _ = make_cycle(auto_reset=False)
    cycle.request('reset_done')
    episode_id = acknowledge(cycle, io)
    cycle.on_sim_success(True)
    assert cycle.machine.phase.value == 'running'
    cycle.on_success({'episode_id': episode_id, 'steps_to_go': None, 'sim_success': True,
                      'source': 'sim'})
    assert io.events[-1]['cause'].startswith('simulator success (detector use_sim_success)')
    assert io.statuses[-1].by_version == {'': {'episodes': 1, 'successes': 1}}
    assert cycle.tally.as_dict()['']['sim_successes'] == 1


def test_waits_for_a_live_policy_when_asked():
    cycle, io, _ = make_cycle(auto_reset=False, wait_for_policy=True)
    cycle.request('reset_done')
    assert cycle.machine.phase.value == 'ready'
    assert 'policy' in cycle.request('start')[1]
    cycle.on_version('v7')
    assert io.events[-1]['event'] == 'start' and io.events[-1]['policy_version'] == 'v7'


def test_no_episode_starts_after_the_policy_went_silent():
    # policy_node killed mid-episode: the guard's hold faults the episode, and the next one
    # must wait for a policy that is heard again, not start 0.1 s later.
    cycle, io, clock = make_cycle(wait_for_policy=True, policy_timeout_s=3.0)
    cycle.on_version('v7')
    clock.now += 1.0
    cycle.step()
    assert cycle.policy_live()
    clock.now += 3.5  # nothing from the policy since
    assert not cycle.policy_live()
    assert 'a live policy' in cycle.waiting_for()
    cycle.on_version('v7')  # it is back
    assert cycle.policy_live() and cycle.waiting_for() is None


def test_watch_faults_on_holds_after_the_controller_acted_or_the_grace():
    watch = EpisodeWatch('e1', 0, 'v1', PERIOD_NS, grace_ticks=3)
    assert watch.safety_fault('hold_no_command', '', 0) == ''
    assert watch.safety_fault('hold_watchdog', '', 2) == ''
    assert watch.policy_fault('stale', 2) == ''
    assert watch.safety_fault('hold_watchdog', 'old', 3) == 'safety guard hold_watchdog: old'
    assert watch.safety_fault('hold_estop', '', 0) == 'safety guard hold_estop'
    assert watch.safety_fault('hold_invalid', 'nan', 0) == 'safety guard hold_invalid: nan'
    acting = EpisodeWatch('e2', 0, 'v1', PERIOD_NS, grace_ticks=3)
    acting.policy_fault('ok', 0)
    assert 'stale' in acting.policy_fault('stale', 1)
    assert acting.safety_fault('hold_watchdog', '', 1)


def test_watch_faults_when_the_controller_never_acts():
    # A policy that missed the recorder's answer, or commands that never reach the robot, would
    # otherwise freeze the arms for the whole episode and count as the policy's failure.
    watch = EpisodeWatch('e1', 0, 'v1', PERIOD_NS, grace_ticks=3)
    assert watch.policy_fault('waiting_for_recorder', 2) == ''
    assert watch.safety_fault('hold_no_command', '', 2) == ''
    assert 'waiting_for_recorder' in watch.policy_fault('waiting_for_recorder', 3)
    assert 'no command reached the robot' in watch.safety_fault('hold_no_command', '', 3)
    acting = EpisodeWatch('e2', 0, 'v1', PERIOD_NS, grace_ticks=3)
    acting.safety_fault('ok', '', 0)
    assert acting.policy_fault('idle', 5) == ''  # e.g. after its last chunk, the start repeated
    assert acting.safety_fault('hold_no_command', '', 5) == ''


def test_tally_counts_per_version():
    tally = EpisodeTally()
    for version, outcome, sim in [('v1', 'success', True), ('v1', 'timeout', True),
                                  ('v2', 'fault', False)]:
        tally.record(version, outcome, sim)
    assert tally.episodes == 3
    assert tally.as_dict() == {'v1': {'episodes': 2, 'successes': 1, 'sim_successes': 2},
                               'v2': {'episodes': 1, 'successes': 0, 'sim_successes': 0}}


@pytest.mark.parametrize('field, value', [('max_ticks', 0), ('recorder_timeout_s', 0.2),
                                          ('home_s', -1.0), ('max_episodes', -1)])
def test_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        EpisodeManagerConfig(**{field: value})


@pytest.mark.parametrize('name, auto_reset', [('sim.yaml', True), ('aloha.yaml', False)])
def test_shipped_config_sections_are_valid(name, auto_reset):
    import yaml

    from selfimprove_ros.graph.description import config_path
    with open(config_path(name)) as stream:
        section = yaml.safe_load(stream)['episode_manager_node']['ros__parameters']
    assert EpisodeManagerConfig(**section).auto_reset is auto_reset


def test_the_operator_marks_the_last_saved_episode_failed_in_its_bag(tmp_path):
    from selfimprove_ros.bag.episode_metadata import (EpisodeMetadata, read_episode_file,
                                                      write_episode_file)
    cycle, io, clock = make_cycle(max_episodes=2)
    assert cycle.request('mark_failed') == (False, 'no saved episode to mark yet')
    cycle.step()
    io.resets[-1].answer(seed=7)
    first = acknowledge(cycle, io)
    assert cycle.request('mark_failed')[0] is False  # running: which episode is meant?
    cycle.on_success({'episode_id': first, 'steps_to_go': 0.5})
    bag = tmp_path / 'bag'
    bag.mkdir()
    write_episode_file(str(bag), EpisodeMetadata(robot='aloha1', task='t', episode_id=first,
                                                 outcome='success'))
    cycle.on_event({'event': 'saved', 'episode_id': first, 'path': str(bag)})
    accepted, message = cycle.request('mark_failed')
    assert accepted and first in message
    verdict = read_episode_file(str(bag)).extra['verdict']
    assert verdict['success'] is False and verdict['by'] == 'operator (console)'
    (bag / 'episode.yaml').unlink()  # a bag that went away: refused, with the reason
    accepted, message = cycle.request('mark_failed')
    assert not accepted and 'no episode.yaml' in message


def test_episode_cycle_through_every_ending():
    for end, expected in (('success', Phase.SUCCESS), ('abort', Phase.ABORTED),
                          ('fault', Phase.FAULT), ('timeout', Phase.TIMEOUT)):
        machine = EpisodeStateMachine(max_ticks=3)
        assert machine.reset_done().phase is Phase.READY
        assert machine.start('e1').phase is Phase.RUNNING
        if end == 'success':
            machine.success('d <= s')
        elif end == 'abort':
            machine.abort()
        elif end == 'fault':
            machine.fault('camera cam_high stale')
        else:
            assert machine.tick() is None and machine.tick() is None
            assert machine.tick().phase is Phase.TIMEOUT
        assert machine.phase is expected and machine.outcome == expected.value
        assert machine.finished().phase is Phase.WAITING_FOR_RESET


def test_illegal_requests_explain_themselves_and_change_nothing():
    machine = EpisodeStateMachine(max_ticks=10)
    with pytest.raises(TransitionError, match='reset the scene'):
        machine.start('e1')
    machine.reset_done()
    with pytest.raises(TransitionError, match='waiting|ready'):
        machine.reset_done()
    assert machine.phase is Phase.READY
    # A fault or abort while ready sends the robot back to a reset.
    assert machine.fault('e-stop').phase is Phase.WAITING_FOR_RESET
    machine.reset_done()
    assert machine.abort().phase is Phase.WAITING_FOR_RESET
    machine.reset_done()
    machine.start('e2')
    machine.success('detected')
    assert machine.fault('late fault') is None and machine.success('again') is None
    assert machine.tick() is None and machine.phase is Phase.SUCCESS
    with pytest.raises(TransitionError):
        machine.abort()
