"""Multi-process graph tests on an isolated ROS domain: data flows, unsafe commands are stopped."""

import numpy as np
import pytest
import rclpy

from graph_probe import GraphProbe, init_ros
from selfimprove_ros.core.joints import LOWER_LIMITS, START_POSE, UPPER_LIMITS
from selfimprove_ros.graph.description import build_graph, config_path, load_config
from selfimprove_ros.graph.launcher import GraphRunner
from selfimprove_ros.nodes.ros_io import joint_state_msg

pytestmark = pytest.mark.graph  # starts ROS nodes: `-m "not graph"` skips

CAMERAS = ['cam_high', 'cam_left_wrist']
PERIOD_S = 0.1
MAX_ARM_SPEED = 2.0  # [rad/s] -> 0.2 rad per tick


@pytest.fixture(scope='module')
def graph(tmp_path_factory):
    """robot_node (sim, 10 Hz wall clock) and two camera nodes, no recorder."""
    init_ros()
    overrides = {'launch': {'cameras': CAMERAS, 'lockstep': False, 'recorder': False,
                            'control_period_s': PERIOD_S},
                 'robot_node': {'safety.max_arm_speed_rad_s': MAX_ARM_SPEED,
                                'safety.watchdog_timeout_s': 0.3}}
    specs = build_graph(load_config(config_path('sim.yaml')), 'flowtest', overrides)
    with GraphRunner(specs, str(tmp_path_factory.mktemp('logs'))) as runner:
        probe = GraphProbe('/flowtest', CAMERAS)
        ok = probe.spin_until(lambda: len(probe.joints) > 5 and all(
            len(f) > 5 for f in probe.frames.values()), 90.0, check=runner.check)
        assert ok, f'graph did not start: joints={len(probe.joints)} ' \
                   f'frames={ {k: len(v) for k, v in probe.frames.items()} }'
        yield runner, probe
        probe.destroy_node()
    rclpy.shutdown()


def test_joint_states_and_cameras_flow_at_the_configured_rate(graph):
    runner, probe = graph
    start = len(probe.joints)
    probe.spin_until(lambda: len(probe.joints) >= start + 30, 30.0, check=runner.check)
    stamps = np.array([s for s, _ in probe.joints[start:]])
    assert len(stamps) >= 30
    # Stamps come from the robot's tick, so their spacing is the configured period.
    assert np.median(np.diff(stamps)) / 1e9 == pytest.approx(PERIOD_S, rel=0.05)
    joint_stamps = np.array(sorted({s for s, _ in probe.joints}))
    for cam, frames in probe.frames.items():
        frame_stamps = np.array([s for s, _, _ in frames])
        assert np.median(np.diff(frame_stamps)) / 1e9 == pytest.approx(PERIOD_S, rel=0.05), cam
        # Every frame is stamped with the simulator tick it shows: its stamp is a robot tick.
        # The probe may miss a joint state on a busy machine; that tick then falls in a gap of
        # the joint stamps the probe saw, and only there may a frame stamp be unmatched.
        assert off_tick_frames(frame_stamps, joint_stamps) == [], cam
        assert {(h, w) for _, h, w in frames} == {(120, 160)}


def off_tick_frames(frame_stamps, joint_stamps, period_ns=int(PERIOD_S * 1e9)) -> list:
    """Return the frame stamps that are no robot tick the probe saw or could have missed."""
    off = []
    for stamp in frame_stamps:
        if stamp < joint_stamps[0] or stamp > joint_stamps[-1] or stamp in joint_stamps:
            continue  # outside the probe's window, or a tick it saw
        after = np.searchsorted(joint_stamps, stamp)
        gap = joint_stamps[after] - joint_stamps[after - 1]
        if gap < 1.5 * period_ns:  # no tick was missed here: the frame is off the grid
            off.append(int(stamp))
    return off


def test_a_frame_between_two_seen_ticks_is_off_the_grid():
    ticks = np.array([0, 100, 200, 400, 500]) * 1_000_000  # the probe missed the tick at 300 ms
    frames = np.array([100, 300, 450]) * 1_000_000
    assert off_tick_frames(frames, ticks) == [450_000_000]


def _command(probe, positions):
    probe.command_pub.publish(joint_state_msg(probe.get_clock().now().to_msg(), positions))


def _steps_after(probe, start):
    positions = np.array([p for _, p in probe.joints[start - 1:]])
    return np.abs(np.diff(positions, axis=0)).max(axis=0)


@pytest.mark.parametrize('name, offset', [
    ('nan', np.nan), ('far_out_of_range', 10.0), ('huge_step', 1.5)])
def test_unsafe_commands_never_reach_the_simulated_joints(graph, name, offset):
    runner, probe = graph
    command = START_POSE.copy()
    command[0] += offset   # left waist
    command[7] -= offset   # right waist
    start = len(probe.joints)
    for _ in range(15):
        _command(probe, command)
        probe.spin_until(lambda: False, PERIOD_S, check=runner.check)
    probe.spin_until(lambda: len(probe.joints) >= start + 15, 10.0, check=runner.check)
    positions = np.array([p for _, p in probe.joints[start:]])
    assert np.all(positions >= LOWER_LIMITS - 0.02) and np.all(positions <= UPPER_LIMITS + 0.02)
    # Physics tracks the guarded targets: no joint moves faster than the speed limit allows.
    assert _steps_after(probe, start)[[0, 7]].max() <= MAX_ARM_SPEED * PERIOD_S + 0.05
    if name != 'huge_step':
        assert 'hold_invalid' in probe.safety[-10:]
        assert np.abs(positions[-1][[0, 7]] - START_POSE[[0, 7]]).max() < 0.3
    else:
        # The command is legal but fast: the guard ramps towards it instead of jumping.
        assert 'clamped' in probe.safety[-30:]


def test_watchdog_holds_when_commands_stop(graph):
    runner, probe = graph
    _command(probe, START_POSE)
    probe.spin_until(lambda: False, 1.0, check=runner.check)
    assert probe.safety[-1] == 'hold_watchdog'
