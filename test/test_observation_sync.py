"""ObservationSync (core/observation_sync.py): when a tick's inputs are complete, stale, new."""

from selfimprove_ros.core.observation_sync import ObservationSync
from selfimprove_ros.runtime.controller import RobotTicks


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


def test_staleness_and_arrival_are_kept_per_input():
    sync = ObservationSync(['joint_states', 'cam_high'])
    sync.add('joint_states', 1000, arrived_s=5.0)
    assert sync.stale(1000, 100) == ['cam_high']
    sync.add('cam_high', 850, arrived_s=6.0)
    assert sync.stale(1000, 100) == ['cam_high'] and sync.stale(1000, 200) == []
    assert sync.arrived('cam_high') == 6.0 and sync.stamp('joint_states') == 1000
    ticks = RobotTicks(sync, 0.5)
    assert ticks.due(1000) is None and ticks.due(1000, force=True) == 1000
