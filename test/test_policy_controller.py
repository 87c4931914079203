"""PolicyController: policy_node's decisions without ROS, on a real (tiny) ONNX model."""

import logging

import numpy as np
import pytest

from hand_clock import Clock
from model_factory import tiny_model_dir
from selfimprove_ros.runtime.controller import EpisodeFollower
from selfimprove_ros.runtime.policy_config import PolicyConfig
from selfimprove_ros.runtime.onnx_model import load_model
from selfimprove_ros.runtime.policy_controller import PolicyController

MS = 1_000_000
FRAME = np.full((24, 32, 3), 100, np.uint8)


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp('controller')
    return [load_model(tiny_model_dir(root / v, version=v, seed=i)[0], 'policy.onnx',
                       ['cam_high'], providers='cpu') for i, v in enumerate(('v1', 'v2'))]


def controller(lockstep=False, **settings):
    clock = Clock()
    config = PolicyConfig(cameras=['cam_high'], lockstep=lockstep, temperature=1.0, **settings)
    return PolicyController(config, logging.getLogger('test'), lambda frame: frame, clock), \
        clock


def observe(core, stamp_ns):
    core.on_joints(stamp_ns, np.zeros(14))
    return core.on_frame('cam_high', stamp_ns, FRAME)


def start(core, episode_id='e1', recorded=True):
    core.on_event({'event': 'start', 'episode_id': episode_id, 'robot': 'r', 'task': 't',
                   'instruction': 'hand it over'})
    if recorded:
        core.on_event({'event': 'recording', 'episode_id': episode_id, 'path': '/bag'})


def test_it_acts_only_with_a_model_inside_a_recorded_episode(models):
    core, _ = controller()
    observe(core, 100 * MS)
    assert core.tick(100 * MS).timing['state'] == 'no_model'
    core.on_loads([models[0]])
    assert core.tick(100 * MS).timing['state'] == 'idle'
    start(core, recorded=False)
    out = core.tick(100 * MS)
    assert out.timing['state'] == 'waiting_for_recorder' and out.command is None
    core.on_event({'event': 'recording', 'episode_id': 'e1', 'path': '/bag'})
    first, second, third = (core.tick(t * MS) for t in (100, 200, 300))
    assert first.timing['state'] == 'ok' and first.command.shape == (14,)
    assert first.tokens['version'] == 'v1' and first.tokens['episode_id'] == 'e1'
    assert len(first.tokens['tokens']) == 28 and first.tokens['log_prob'] < 0
    assert second.tokens is None and third.tokens is not None  # a chunk of 2 ticks
    assert third.timing['tick_period_s'] == pytest.approx(0.1)


def test_a_receding_horizon_queries_again_after_its_share_of_each_chunk(models):
    core, _ = controller(actions_per_chunk=1)
    core.on_loads([models[0]])
    start(core)
    outs = []
    for t in (100, 200, 300):
        observe(core, t * MS)
        outs.append(core.tick(t * MS))
    assert all(out.tokens is not None for out in outs)  # a query every tick, not every 2
    assert all(len(out.tokens['tokens']) == 28 for out in outs)  # the whole chunk, as sampled
    with pytest.raises(ValueError, match='actions_per_chunk must be >= 0'):
        PolicyConfig(cameras=['cam_high'], actions_per_chunk=-1)


def test_a_stale_input_holds_the_arm_where_it_is(models):
    core, _ = controller(max_observation_age_s=0.2)
    core.on_loads([models[0]])
    start(core)
    core.on_joints(1000 * MS, np.arange(14.0))
    core.on_frame('cam_high', 700 * MS, FRAME)  # 0.3 s old at the tick
    out = core.tick(1000 * MS)
    assert out.timing['state'] == 'stale' and "['cam_high']" in out.timing['cause']
    np.testing.assert_array_equal(out.command, np.arange(14.0))
    assert out.tokens is None


def test_lockstep_answers_each_tick_once_when_complete_or_overdue(models):
    core, clock = controller(lockstep=True, sync_timeout_s=0.5)
    assert core.on_joints(100 * MS, np.zeros(14)) is None  # its frame is not in yet
    assert core.on_frame('cam_high', 100 * MS, FRAME) == 100 * MS
    assert core.on_frame('cam_high', 100 * MS, FRAME) is None  # answered already
    core.on_joints(200 * MS, np.zeros(14))
    assert core.overdue() is None
    clock.now += 0.6  # the frame of tick 200 ms never came
    assert core.overdue() == 200 * MS and core.overdue() is None


def test_on_a_robot_a_tick_waits_for_each_cameras_next_frame_within_the_deadline(models):
    core, clock = controller(lockstep=False, decision_deadline_s=0.05, frame_tolerance_s=0.005)
    core.on_loads([models[0]])
    start(core)
    core.on_frame('cam_high', 980 * MS, FRAME)
    assert core.on_joints(1000 * MS, np.zeros(14)) is None  # the newest frame predates it
    assert core.on_frame('cam_high', 990 * MS, FRAME) is None  # 10 ms before the tick
    clock.now += 0.02
    assert core.on_frame('cam_high', 1020 * MS, FRAME) == 1000 * MS  # the first fresh frame
    clock.now += 0.003
    out = core.tick(1000 * MS, now_ns=1025 * MS)
    assert out.timing['state'] == 'ok' and out.timing['stamp_ns'] == 1000 * MS
    assert out.timing['observation_age_s'] == pytest.approx(0.025)  # the joint state's age
    assert out.timing['frame_latency_s'] == pytest.approx(0.003)
    core.on_joints(1100 * MS, np.zeros(14))
    clock.now += 0.04
    assert core.overdue() is None
    clock.now += 0.02  # no camera delivered within the deadline: act on the newest frame
    assert core.overdue() == 1100 * MS
    core.on_frame('cam_high', 1196 * MS, FRAME)  # 4 ms before the next tick: counts as of it
    assert core.on_joints(1200 * MS, np.zeros(14)) == 1200 * MS
    core.on_frame('cam_high', 1260 * MS, FRAME)
    assert core.on_joints(1250 * MS, np.zeros(14)) is None  # a 20 Hz driver: not a new tick
    core.on_frame('cam_high', 1310 * MS, FRAME)
    assert core.on_joints(1300 * MS, np.zeros(14)) == 1300 * MS


def test_a_silent_robot_still_shows_on_the_timing_topic_once_per_period(models):
    core, clock = controller(lockstep=False)
    core.on_loads([models[0]])
    start(core)
    core.on_joints(1000 * MS, np.zeros(14))
    assert core.unheard_tick(1050 * MS) is None  # it ticked just now
    clock.now += 0.5
    assert core.unheard_tick(1500 * MS) == 1500 * MS
    assert core.unheard_tick(1550 * MS) is None and core.unheard_tick(1600 * MS) == 1600 * MS
    out = core.tick(1600 * MS)
    assert out.timing['state'] == 'stale' and 'joint_states' in out.timing['cause']
    lockstep, clock = controller(lockstep=True)
    clock.now += 5.0
    assert lockstep.unheard_tick(1600 * MS) is None  # simulated time stands still


def test_a_model_arriving_mid_episode_waits_for_its_end(models):
    core, _ = controller()
    core.on_loads([models[0]])
    start(core)
    core.on_loads([models[1]])
    assert core.slot.live.version == 'v1' and core.slot.pending.version == 'v2'
    core.on_event({'event': 'end', 'episode_id': 'e1', 'outcome': 'success'})
    assert core.slot.live.version == 'v2'
    assert core.rollback() == 'rolled back to v1'
    core.on_loads([ValueError('model in /x rejected: sha256 mismatch')])
    assert core.tick(0).timing['cause'] == 'model in /x rejected: sha256 mismatch'


def test_the_managers_status_starts_and_ends_an_episode_whose_events_were_missed(models):
    core, _ = controller()
    core.on_loads([models[0]])
    observe(core, 100 * MS)
    core.on_status('running', 'e7')
    assert core.tick(100 * MS).timing['state'] == 'ok'
    core.on_status('success', 'e7')
    assert core.tick(100 * MS).timing['state'] == 'idle'


def test_a_recording_that_overtook_its_start_still_counts():
    follower = EpisodeFollower(wait_for_recording=True)
    assert follower.on_event({'event': 'recording', 'episode_id': 'e2', 'path': '/b'}) == ''
    assert follower.on_event({'event': 'start', 'episode_id': 'e2', 'task': 't'}) == 'started'
    assert follower.acting
    assert follower.on_event({'event': 'start', 'episode_id': 'e2', 'task': 't'}) == 'repeat'
    assert follower.on_event({'event': 'end', 'episode_id': 'other'}) == ''
    assert follower.on_event({'event': 'end', 'episode_id': 'e2'}) == 'ended'
