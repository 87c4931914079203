"""Decoded bag streams -> one aligned, labelled Episode (pure: no files, no ROS)."""

import numpy as np

from selfimprove_ros.bag.verdict import recorded_verdict

from .alignment import align, tick_grid
from .bag_streams import BadBag
from .episode import Episode
from .grasp_target import grasp_target
from .labels import (actions_from_commands, actions_from_next_joints, success_tick,
                     tokens_per_tick)

JOINT_STREAM = 'joint_states'


def action_source(streams, config) -> str:
    """Return the action source of this bag; raise BadBag if the configured one is absent."""
    has = {'intended': streams.intended is not None and len(streams.intended) > 0,
           'commands': streams.commands is not None and len(streams.commands) > 0,
           'next_joints': True}
    if config.action_source == 'auto':
        return next(source for source, present in has.items() if present)
    if not has[config.action_source]:
        topic = {'intended': 'joint_commands/intended', 'commands': 'joint_commands'}
        raise BadBag(f"action_source is {config.action_source!r} but the bag has no "
                     f"{topic[config.action_source]}; use 'auto' (the best source each bag "
                     f"has) or 'next_joints' for teleoperated demonstrations")
    return config.action_source


def build_episode(streams, config) -> Episode:
    """Align `streams` (BagStreams) to the control ticks of `config` and label them.

    Dropped ticks are listed in the Episode and described in `extra['notes']`.
    """
    period = config.period_ns
    grid = tick_grid(streams.joint_stamps, period, streams.start_ns, streams.end_ns)
    if grid.size == 0:
        raise BadBag('no joint state at or after the start event')
    stamps = {JOINT_STREAM: streams.joint_stamps}
    stamps.update(streams.camera_stamps)
    max_age = {name: int(round(config.max_image_age_s * 1e9)) for name in stamps}
    max_age[JOINT_STREAM] = int(round(config.max_joint_age_s * 1e9))
    aligned = align(grid, stamps, max_age)
    notes = list(streams.notes)
    if aligned.dropped_ticks:
        notes.append(aligned.describe(grid.size))
    if aligned.tick_ns.size == 0:
        raise BadBag(f'no tick could be filled: {aligned.describe(grid.size)}')
    joints = streams.joints[aligned.indices[JOINT_STREAM]]
    grid_index = np.delete(np.arange(grid.size), aligned.dropped_ticks)
    source = action_source(streams, config)
    if source == 'intended':
        actions = actions_from_commands(streams.intended_stamps, streams.intended,
                                        aligned.tick_ns, period)
    elif source == 'commands':
        actions = actions_from_commands(streams.command_stamps, streams.commands,
                                        aligned.tick_ns, period)
    else:
        actions = actions_from_next_joints(joints, grid_index)
    # The last tick's command comes after the recording stops in most bags: not worth a note
    # per bag (a 400-bag load printed 400), whereas a gap inside the episode is.
    missing = int(np.isnan(actions[:-1, 0]).sum())
    if missing:
        notes.append(f'{missing} of {len(actions)} ticks have no action ({source})')
    meta = streams.meta
    success, sim_success = None, None
    if streams.success_values is not None:
        sim_success = bool(streams.success_values.any())
        success = success_tick(streams.success_log_ns, streams.success_values, aligned.tick_ns)
    person = recorded_verdict(meta.get('extra'))
    if meta['outcome'] == 'success' and not streams.complete:
        # The end that showed the success may be what was cut off: never clone it as one.
        meta = {**meta, 'outcome': 'unknown'}
        notes.append('outcome success not trusted: the MCAP is cut (no footer); `selfimprove '
                     'bag recover` keeps it if its closing records survived')
    if meta['outcome'] == 'success' and sim_success is False:
        # A learned detector ended it; the simulator, which knows, says the goal was not reached.
        notes.append('outcome success but sim/success never true: treated as a failure')
    elif meta['outcome'] == 'success' and sim_success is None and person is False:
        notes.append('outcome success but a person recorded a failure (bag verdict): treated '
                     'as a failure')
    elif meta['outcome'] == 'success' and success is None:
        success = len(aligned.tick_ns) - 1
    tokens, versions = tokens_per_tick(streams.tokens, aligned.tick_ns, period)
    target, closing_ticks = grasp_target(joints, actions)
    extra = dict(meta.get('extra') or {})
    extra.update({'outcome_cause': meta.get('outcome_cause', ''), 'seed': meta.get('seed'),
                  'action_source': source, 'control_period_s': config.control_period_s,
                  'notes': notes})
    return Episode(
        bag_path=streams.path, episode_id=meta['episode_id'], robot=meta['robot'],
        task=meta['task'], instruction=meta['instruction'] or '',
        policy_version=meta['policy_version'] or '', outcome=meta['outcome'],
        tick_ns=aligned.tick_ns, joints=joints, actions=actions,
        images={cam: streams.frames[cam][aligned.indices[cam]] for cam in config.cameras},
        success_tick=success, sim_success=sim_success, action_tokens=tokens,
        token_versions=versions, dropped_ticks=aligned.dropped_ticks,
        grasp_target=target, grasp_ticks=closing_ticks, extra=extra)
