"""Alignment and label functions on hand-built stamp arrays: gaps, ages, actions, steps-to-go."""

import json

import numpy as np
import pytest

from selfimprove_ros.data.alignment import align, latest_at, tick_grid
from selfimprove_ros.data.labels import (actions_from_commands, actions_from_next_joints,
                                         grid_indices, parse_token_message, steps_to_go,
                                         success_tick, tokens_per_tick)

MS = 1_000_000
P = 100 * MS
T0 = 1_700_000_000_000_000_000


def test_tick_grid_starts_at_first_joint_state_after_start_and_runs_to_end():
    joints = T0 + np.array([0, 20, 40, 60, 80, 100, 120, 140, 160, 180, 200, 220]) * MS
    np.testing.assert_array_equal(tick_grid(joints, P), T0 + np.array([0, 100, 200]) * MS)
    # The start event falls between two joint states: the grid starts at the next one.
    np.testing.assert_array_equal(tick_grid(joints, P, start_ns=T0 + 30 * MS),
                                  T0 + np.array([40, 140]) * MS)
    # An end event after the last joint state extends the grid (those ticks will be dropped).
    assert len(tick_grid(joints, P, end_ns=T0 + 450 * MS)) == 5
    assert len(tick_grid(joints, P, start_ns=T0 + 300 * MS)) == 0


def test_latest_at_takes_latest_sample_within_age_and_never_a_future_one():
    stamps = T0 + np.array([0, 95, 210, 400]) * MS
    ticks = T0 + np.array([-10, 0, 100, 200, 300, 400]) * MS
    np.testing.assert_array_equal(latest_at(stamps, ticks, 50 * MS), [-1, 0, 1, -1, -1, 3])
    # Unsorted input: indices still refer to the input order.
    shuffled = stamps[[3, 1, 0, 2]]
    np.testing.assert_array_equal(latest_at(shuffled, ticks, 150 * MS), [-1, 2, 1, 1, 3, 0])
    np.testing.assert_array_equal(latest_at([], ticks, P), [-1] * 6)


def test_align_drops_and_reports_unfillable_ticks():
    ticks = T0 + np.arange(6) * P
    camera = np.delete(ticks, [2]) - 5 * MS  # captured 5 ms before each tick, tick 2 lost
    wrist = np.delete(ticks, [4])
    result = align(ticks, {'joint_states': ticks, 'cam_high': camera, 'cam_wrist': wrist},
                   {'joint_states': 0, 'cam_high': 60 * MS, 'cam_wrist': 0})
    # Tick 2 would need cam_high's frame of tick 1, 105 ms old: never reused, the tick goes.
    assert result.dropped_ticks == [2, 4]
    assert result.missing == {'joint_states': 0, 'cam_high': 1, 'cam_wrist': 1}
    np.testing.assert_array_equal(result.tick_ns, ticks[[0, 1, 3, 5]])
    np.testing.assert_array_equal(result.indices['cam_high'], [0, 1, 2, 4])
    np.testing.assert_array_equal(result.indices['cam_wrist'], [0, 1, 3, 4])
    assert result.describe(6) == ('dropped 2 of 6 ticks (cam_high missing or too old at 1, '
                                  'cam_wrist missing or too old at 1)')


def test_align_with_a_50hz_joint_stream_and_a_gap():
    ticks = T0 + np.arange(5) * P
    joints = T0 + np.arange(0, 500, 20) * MS
    joints = joints[(joints < T0 + 190 * MS) | (joints > T0 + 310 * MS)]  # a 120 ms gap
    result = align(ticks, {'joint_states': joints}, {'joint_states': 50 * MS})
    assert result.dropped_ticks == [3]  # at 300 ms the latest is from 180 ms: 120 ms old
    np.testing.assert_array_equal(joints[result.indices['joint_states']],
                                  T0 + np.array([0, 100, 180, 400]) * MS)


def test_actions_from_commands_match_the_tick_they_answer():
    ticks = T0 + np.arange(4) * P
    stamps = np.array([ticks[0], ticks[1], ticks[3] - 20 * MS])  # none for tick 2
    commands = np.array([[1.0, 1.0], [2.0, 2.0], [4.0, 4.0]])
    actions = actions_from_commands(stamps, commands, ticks, P)
    np.testing.assert_array_equal(actions[[0, 1, 3]], [[1, 1], [2, 2], [4, 4]])
    # Tick 2 gets no command: the one for tick 1 is a period old, so not for tick 2.
    assert np.isnan(actions[2]).all()
    assert actions.dtype == np.float32


def test_actions_from_next_joints_stop_at_gaps_and_the_end():
    joints = np.arange(5, dtype=np.float32)[:, None] * np.ones((1, 14))
    grid = grid_indices(5, [3])  # grid ticks 0 1 2 4 5
    np.testing.assert_array_equal(grid, [0, 1, 2, 4, 5])
    actions = actions_from_next_joints(joints, grid)
    np.testing.assert_array_equal(actions[[0, 1, 3], 0], [1, 2, 4])
    assert np.isnan(actions[2]).all() and np.isnan(actions[4]).all()


def test_success_tick_is_the_tick_of_the_first_true_flag():
    ticks = T0 + np.arange(10) * P
    log = ticks + 3 * MS  # received just after each tick
    values = np.arange(10) >= 6
    assert success_tick(log, values, ticks) == 6
    assert success_tick(log, np.zeros(10, bool), ticks) is None
    # Kept ticks only: with grid tick 6 dropped, success lands on the kept tick before it.
    assert success_tick(log, values, np.delete(ticks, 6)) == 5


def test_steps_to_go_for_success_and_failure():
    grid = np.array([0, 1, 2, 4, 5, 6])  # grid tick 3 dropped
    np.testing.assert_array_equal(steps_to_go(grid, 4, succeeded=True), [5, 4, 3, 1, 0, 0])
    # Failed episode that once reached the goal: labels only up to that moment.
    np.testing.assert_array_equal(steps_to_go(grid, 3, succeeded=False), [4, 3, 2, 0, -1, -1])
    np.testing.assert_array_equal(steps_to_go(grid, None, succeeded=False), [-1] * 6)
    assert steps_to_go(grid, 4, True).dtype == np.float32


def token_text(stamp, version, tokens):
    return json.dumps({'stamp_ns': int(stamp), 'version': version, 'tokens': tokens})


def test_tokens_per_tick_fill_sampled_ticks_only():
    ticks = T0 + np.arange(6) * P
    messages = [parse_token_message(token_text(ticks[0], 'v1', list(range(28)))),
                parse_token_message(token_text(ticks[5], 'v2', [7] * 28))]
    tokens, versions = tokens_per_tick(messages, ticks, P)
    assert tokens.shape == (6, 28) and tokens.dtype == np.int64
    np.testing.assert_array_equal(tokens[0], np.arange(28))
    assert (tokens[1:5] == -1).all() and (tokens[5] == 7).all()
    assert versions == ['v1', '', '', '', '', 'v2']
    assert tokens_per_tick([], ticks, P) == (None, None)
    with pytest.raises(ValueError, match='stamp_ns'):
        parse_token_message('{"tokens": [1]}')
