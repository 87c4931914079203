"""Labels of an aligned episode: actions, the success tick, steps-to-go, sampled tokens.

Pure functions on arrays. A missing action is NaN (the tick keeps its observation, which still
carries a steps-to-go label); a missing token row is -1.

Steps-to-go is d(o_t, g) of the paper, in control ticks: the number of ticks from t until the
tick at which the goal was first reached. It is only defined when the goal was reached:
- outcome 'success': every tick gets max(success_tick - t, 0); the success tick is the first
  tick the simulator reported success, or the last tick when the bag has no sim/success (a
  demonstration marked successful ends when the task is done);
- any other outcome: ticks up to a success the simulator reported get success_tick - t (the
  goal was really reached then, so the distance is a true one); later ticks, and every tick of
  an episode that never reached the goal, get -1 (unknown). A failed episode has no defined
  distance to a goal it never reached, so it would teach the head a wrong number.
"""

import json

import numpy as np

from .alignment import latest_at


def actions_from_commands(command_stamps_ns, commands, ticks_ns, period_ns: int) -> np.ndarray:
    """Return [T, J] float32 actions: the command stamped for each tick, NaN where none is.

    Commands carry the stamp of the observation they answer; one stamped within the period
    before a tick (e.g. a 50 Hz observation not on the grid) answers that tick.
    """
    commands = np.asarray(commands, dtype=np.float32)
    index = latest_at(command_stamps_ns, ticks_ns, period_ns - 1)
    out = np.full((len(index), commands.shape[1] if commands.ndim == 2 else 0), np.nan,
                  dtype=np.float32)
    out[index >= 0] = commands[index[index >= 0]]
    return out


def actions_from_next_joints(joints, grid_index) -> np.ndarray:
    """Return [T, J] float32 actions = the next tick's joint positions (teleoperation).

    Where the next grid tick was dropped, and at the last tick, the action is NaN.
    """
    joints = np.asarray(joints, dtype=np.float32)
    grid_index = np.asarray(grid_index)
    out = np.full(joints.shape, np.nan, dtype=np.float32)
    follows = np.flatnonzero(np.diff(grid_index) == 1)
    out[follows] = joints[follows + 1]
    return out


def grid_indices(length: int, dropped_ticks) -> np.ndarray:
    """Return the grid tick number of each kept tick, given the dropped grid ticks."""
    dropped = np.asarray(sorted(dropped_ticks), dtype=np.int64)
    return np.delete(np.arange(length + len(dropped), dtype=np.int64), dropped)


def success_tick(success_log_ns, success_values, ticks_ns):
    """Return the first kept tick index at which the simulator reported success, or None.

    sim/success (std_msgs/Bool) has no header, so each message belongs to the latest tick at
    or before its log time; a message before the first tick belongs to tick 0.
    """
    stamps = np.asarray(success_log_ns, dtype=np.int64)
    values = np.asarray(success_values, dtype=bool)
    ticks = np.asarray(ticks_ns, dtype=np.int64)
    if not values.any() or ticks.size == 0:
        return None
    first = int(stamps[values].min())
    return int(max(np.searchsorted(ticks, first, side='right') - 1, 0))


def steps_to_go(grid_index, success_index, succeeded: bool) -> np.ndarray:
    """Return float32 [T] steps-to-go [ticks] (see the module docstring); -1 = unknown."""
    grid_index = np.asarray(grid_index, dtype=np.int64)
    out = np.full(grid_index.shape, -1.0, dtype=np.float32)
    if success_index is None:
        return out
    remaining = (grid_index[success_index] - grid_index).astype(np.float32)
    if succeeded:
        return np.maximum(remaining, 0.0)
    before = remaining >= 0
    out[before] = remaining[before]
    return out


def parse_token_message(text: str):
    """Return (stamp_ns, version, tokens) of one policy/action_tokens JSON message."""
    try:
        doc = json.loads(text)
        tokens = np.asarray(doc['tokens'], dtype=np.int64).reshape(-1)
        return int(doc['stamp_ns']), str(doc.get('version', '')), tokens
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f'policy/action_tokens message is not {{"stamp_ns", "version", '
                         f'"tokens"}} JSON ({error}): {text[:80]!r}') from error


def tokens_per_tick(messages, ticks_ns, period_ns: int):
    """Place parsed token messages [(stamp_ns, version, tokens)] on the ticks they answer.

    Returns (tokens [T, K] int64, -1 where no chunk was sampled or beyond a shorter chunk;
    versions [T], '' where none) or (None, None) without messages.
    """
    if not messages:
        return None, None
    width = max(len(tokens) for _, _, tokens in messages)
    index = latest_at([stamp for stamp, _, _ in messages], ticks_ns, period_ns - 1)
    out = np.full((len(index), width), -1, dtype=np.int64)
    versions = [''] * len(index)
    for tick in np.flatnonzero(index >= 0):
        _, version, tokens = messages[index[tick]]
        out[tick, :len(tokens)] = tokens
        versions[tick] = version
    return out, versions
