"""An episode bag as a LeRobot export sees it: its cameras, labels and per-tick columns."""

import json
import os

import numpy as np

from selfimprove_ros.data.lerobot_format import (ACTION, ACTION_MISSING, ACTION_TOKENS,
                                                 POLICY_VERSION, REWARD, SIM_SUCCESS, STATE,
                                                 STEPS_TO_GO, TICK_NS)


def probe_cameras(bag_dir: str) -> dict:
    """Return {contract camera: (height, width) [px]} of the image topics in a bag."""
    from selfimprove_ros.bag.inspection import BagReader
    from selfimprove_ros.core.topics import CAMERA_NAMES

    from .bag_streams import topic_role, typestore
    from .images import image_to_rgb
    sizes = {}
    reader = BagReader(bag_dir)
    known = [topic_role(topic, CAMERA_NAMES)[0] for topic in reader.topics] \
        if reader.counts_known else None
    for topic, msgtype, _, raw in reader.messages():
        role = topic_role(topic, CAMERA_NAMES)[0]
        if role and role.startswith('camera:') and role[7:] not in sizes:
            image = image_to_rgb(typestore().deserialize_cdr(raw, msgtype))
            sizes[role[7:]] = image.shape[:2]
            if known is not None and all(r[7:] in sizes for r in known
                                         if r and r.startswith('camera:')):
                break
    return {cam: sizes[cam] for cam in CAMERA_NAMES if cam in sizes}


def labels_of(bag_dir, episode, log):
    """Return the bag's TickLabels aligned to the episode's ticks, or None without a file."""
    from selfimprove_ros.data.episode_labelling import BadLabels, LABELS_FILE, read_labels
    if not os.path.exists(os.path.join(bag_dir, LABELS_FILE)):
        return None
    try:
        return read_labels(bag_dir)
    except BadLabels as error:
        log(f'{bag_dir}: labels ignored: {error}')
        return None


def episode_frames(episode, labels, record) -> tuple:
    """Return (per-tick columns, episode columns) of one Episode (images excluded).

    `labels` is the bag's TickLabels or None, `record` its EpisodeMetadata or None.
    """
    from selfimprove_ros.bag.verdict import recorded_verdict

    from .labels import grid_indices, steps_to_go
    ticks = episode.length
    state = np.asarray(episode.joints, dtype=np.float32)
    actions = np.asarray(episode.actions, dtype=np.float32)
    missing = np.isnan(actions).any(axis=1)
    frames = {
        STATE: state, ACTION: np.where(missing[:, None], state, actions),
        TICK_NS: np.asarray(episode.tick_ns, dtype=np.int64), ACTION_MISSING: missing,
    }
    success = episode.success_tick
    frames[SIM_SUCCESS] = np.zeros(ticks, dtype=bool)
    if episode.sim_success and success is not None:
        frames[SIM_SUCCESS][success:] = True
    tokens, versions = episode.action_tokens, episode.token_versions
    frames[POLICY_VERSION] = [v if tokens is not None and (tokens[t] >= 0).any()
                              else episode.policy_version
                              for t, v in enumerate(versions or [''] * ticks)]
    if tokens is not None:
        frames[ACTION_TOKENS] = np.asarray(tokens, dtype=np.int64)
    label_info = {}
    if labels is not None:
        where = {int(t): i for i, t in enumerate(labels.tick_ns)}
        index = np.array([where.get(int(t), -1) for t in episode.tick_ns])
        found = index >= 0
        frames[STEPS_TO_GO] = np.where(found, labels.steps_to_go[np.maximum(index, 0)], -1.0)
        frames[REWARD] = np.where(found, labels.rewards[np.maximum(index, 0)], np.nan)
        label_info = {
            'source': 'steps_to_go.npz', 'reward_version': labels.reward_version,
            'reward_sha256': labels.reward_sha256, 'success_bonus': labels.success_bonus,
            'instruction': labels.instruction, 'outcome': labels.outcome,
            'policy_version': labels.policy_version, 'episode_id': labels.episode_id,
            'sim_success': labels.sim_success,
            'dropped_ticks': np.asarray(labels.dropped_ticks).tolist(),
            'tokens': labels.action_tokens is not None,
            # Restorable as a labels file only if it labelled exactly the exported ticks.
            'complete': bool(found.all()) and len(labels.tick_ns) == ticks}
    else:
        grid = grid_indices(ticks, episode.dropped_ticks)
        frames[STEPS_TO_GO] = steps_to_go(grid, success, episode.cloned)
        frames[REWARD] = np.full(ticks, np.nan)
        label_info = {'source': 'success_tick'}
    frames[STEPS_TO_GO] = frames[STEPS_TO_GO].astype(np.float32)
    frames[REWARD] = frames[REWARD].astype(np.float32)
    extra = dict(record.extra) if record is not None else {
        k: v for k, v in episode.extra.items()
        if k not in ('notes', 'action_source', 'control_period_s', 'outcome_cause', 'seed')}
    verdict = recorded_verdict(extra)
    columns = {
        'episode_id': episode.episode_id, 'robot': episode.robot, 'task': episode.task,
        'instruction': episode.instruction, 'policy_version': episode.policy_version,
        'outcome': episode.outcome,
        'outcome_cause': record.outcome_cause if record else episode.extra.get(
            'outcome_cause', ''),
        'verdict_success': verdict, 'sim_success': episode.sim_success,
        'success_tick': success,
        'seed': record.seed if record else episode.extra.get('seed'),
        'start_time_ns': record.start_time_ns if record else None,
        'end_time_ns': record.end_time_ns if record else None,
        'action_source': episode.extra.get('action_source', ''),
        'action_tokens_width': None if tokens is None else int(np.asarray(tokens).shape[1]),
        'dropped_ticks': json.dumps([int(t) for t in episode.dropped_ticks]),
        'extra': json.dumps(extra, sort_keys=True), 'labels': json.dumps(label_info),
        'bag_path': episode.bag_path,
    }
    return frames, columns
