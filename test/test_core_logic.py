"""Pure logic beside the nodes: joint ordering, frame statistics, events, observation sync."""

import json

import numpy as np
import pytest

from selfimprove_ros.camera.camera_config import CameraConfig
from selfimprove_ros.episode.events import make_event, parse_event
from selfimprove_ros.core.frame_stats import FrameStats
from selfimprove_ros.core.joints import JOINT_NAMES, order_by_name
from selfimprove_ros.core.observation_sync import ObservationSync
from selfimprove_ros.robot.backends import gripper_joint_from_opening, \
    gripper_opening_from_finger
from selfimprove_ros.robot.robot_config import RobotConfig


def test_order_by_name_reorders_and_rejects_missing():
    values = np.arange(14, dtype=float)
    names = list(reversed(JOINT_NAMES))
    np.testing.assert_array_equal(order_by_name(names, values[::-1]), values)
    np.testing.assert_array_equal(order_by_name([], values), values)
    with pytest.raises(ValueError, match='lacks joints'):
        order_by_name(names[:-1] + ['bogus'], values)
    with pytest.raises(ValueError, match='14 positions'):
        order_by_name([], values[:3])


def test_frame_stats_rate_age_and_inferred_drops():
    stats = FrameStats(expected_period_s=0.1, window_s=10.0)
    for i in range(11):
        if i == 5:
            continue  # one frame lost
        stats.record(capture_s=i * 0.1, publish_s=i * 0.1 + 0.02)
    summary = stats.summary(now_s=1.02)
    assert summary['frames'] == 10
    assert summary['drops'] == 1
    assert summary['rate_hz'] == pytest.approx(9 / 1.0)
    assert summary['age_ms_p50'] == pytest.approx(20.0)


def test_frame_stats_counts_numbered_drops_exactly():
    stats = FrameStats(expected_period_s=0.1)
    for number in (1, 2, 5, 6):
        stats.record(capture_s=number * 0.1, publish_s=number * 0.1, frame_number=number)
    assert stats.total_drops == 2


def test_events_round_trip_and_reject_incomplete():
    text = make_event('start', episode_id='e1', robot='aloha1', task='transfer_cube', seed=3)
    assert parse_event(text)['seed'] == 3
    with pytest.raises(ValueError, match='lacks'):
        make_event('end', episode_id='e1')
    with pytest.raises(ValueError, match='lacks'):
        make_event('recording', episode_id='e1')
    with pytest.raises(ValueError, match='unknown'):
        parse_event(json.dumps({'event': 'explode'}))
    with pytest.raises(ValueError, match='not JSON'):
        parse_event('{nope')


def test_observation_sync_waits_for_every_source():
    sync = ObservationSync(['joint_states', 'cam_high'])
    sync.add('joint_states', 100)
    assert not sync.complete(100)
    assert sync.missing(100) == ['cam_high']
    sync.add('cam_high', 90)
    assert not sync.complete(100)
    sync.add('cam_high', 100)
    assert sync.complete(100)
    sync.add('cam_high', 50)  # late, older sample does not go back in time
    assert sync.complete(100)


def test_gripper_conversions_span_the_follower_range():
    assert gripper_opening_from_finger(0.01844) == pytest.approx(0.0)
    assert gripper_opening_from_finger(0.058) == pytest.approx(1.0)
    assert gripper_joint_from_opening(0.0) == pytest.approx(-0.6213)
    assert gripper_joint_from_opening(1.0) == pytest.approx(1.4910)


@pytest.mark.parametrize('cls, kwargs, word', [
    (RobotConfig, {'backend': 'gazebo'}, 'backend'),
    (RobotConfig, {'backend': 'interbotix', 'lockstep': True}, 'lockstep'),
    (CameraConfig, {'camera_name': 'cam_top'}, 'camera_name'),
    (CameraConfig, {'source': 'realsense'}, 'serial'),
    (CameraConfig, {'width': 100}, 'width'),
])
def test_configs_reject_bad_values_by_name(cls, kwargs, word):
    with pytest.raises(ValueError, match=word):
        cls(**kwargs)
