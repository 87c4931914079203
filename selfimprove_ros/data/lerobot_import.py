"""A LeRobot v3.0 ALOHA dataset -> episode bags: the import run and the bags it writes."""

import json
import os
import time

import numpy as np

from selfimprove_ros.data.lerobot_dataset import (camera_mapping, check_grippers, DatasetFiles,
                                                  decode_images, episode_table, joint_order,
                                                  table_column)
from selfimprove_ros.data.lerobot_format import (ACTION, ACTION_MISSING, ACTION_TOKENS,
                                                 EPISODE_KEY, POLICY_VERSION, REWARD,
                                                 SIM_SUCCESS, STATE, STEPS_TO_GO, TICK_NS)


def import_lerobot(dataset_dir, out_dir, robot=None, task=None, cameras=None,
                   joint_order_mode='names', control_period_s=0.1, outcome='success',
                   log=print):
    """Write each episode of the LeRobot v3 dataset `dataset_dir` as an episode bag.

    Returns (bags, failures): failures are (episode, reason), one bad episode does not stop the
    others. Whatever concerns the whole dataset (info.json, joint count and names, cameras,
    gripper scale) is checked before any bag is started and raises ValueError naming the file
    and field. Datasets this module exported come back with their episode records, extras and
    steps-to-go labels; others get `robot` (default aloha1), `task` (default the dataset's
    directory name), their LeRobot task as the instruction and `outcome` (LeRobot datasets
    are demonstrations; pass 'unknown' for mixed ones). Frames are taken every
    fps * control_period_s frames, the action of a tick being the last of its frames (as the
    ACT importer does).
    """
    from selfimprove_ros.bag.episode_metadata import FINAL_OUTCOMES
    if outcome not in FINAL_OUTCOMES:
        raise ValueError(f'outcome must be one of {list(FINAL_OUTCOMES)}, got {outcome!r}')
    dataset = DatasetFiles(dataset_dir)
    features = dataset.features
    for key in (STATE, ACTION):
        if key not in features:
            raise ValueError(f'{dataset.info_path}: no "{key}" feature (it has '
                             f'{list(features)}); an ALOHA dataset needs {STATE} and {ACTION}')
    order = {key: joint_order(dataset.info_path, key, features[key], joint_order_mode)
             for key in (STATE, ACTION)}
    cams = camera_mapping(dataset.info_path, features, cameras)
    stride = dataset.fps * control_period_s
    if stride < 1 or abs(stride - round(stride)) > 1e-6:
        raise ValueError(f'{dataset.info_path}: fps {dataset.fps} is not a whole multiple of '
                         f'the control rate {1 / control_period_s:g} Hz; import with '
                         f'--control-period-s {1 / dataset.fps:g} (one tick per frame)')
    ours = EPISODE_KEY + 'episode_id' in dataset.episodes[0]
    for row in dataset.episodes:  # the whole dataset's joints, before any bag is started
        path, rows = episode_table(dataset, row)
        for key in (STATE, ACTION):
            check_grippers(path, key, table_column(path, rows, key, 14)[:, order[key]])
    bags, failures = [], []
    for row in dataset.episodes:
        started = time.monotonic()
        name = f'episode {row["episode_index"]}'
        try:
            bags.append(_import_episode(dataset, row, out_dir, order, cams, ours, robot, task,
                                        control_period_s, outcome))
        except (ValueError, OSError) as error:
            failures.append((name, str(error)))
            log(f'FAILED {name}: {error}')
            continue
        log(f'{name} -> {bags[-1]} ({time.monotonic() - started:.1f} s)')
    return bags, failures


def _import_episode(dataset, row, out_dir, order, cams, ours, robot, task, control_period_s,
                    outcome):
    """Write one episode of `dataset` as a bag; return its path."""
    from selfimprove_ros.bag.episode_bag import EpisodeBagWriter
    from selfimprove_ros.bag.episode_metadata import EpisodeMetadata

    from .act_hdf5 import tick_frames
    from .labels import grid_indices
    path, rows = episode_table(dataset, row)
    frames, commands = tick_frames(len(rows), dataset.fps, control_period_s)
    state = table_column(path, rows, STATE, 14)[:, order[STATE]][frames]
    action = table_column(path, rows, ACTION, 14)[:, order[ACTION]][commands]
    images = {cam: decode_images(dataset, key, dataset.features[key], row, path,
                                 rows)[frames] for key, cam in cams.items()}
    period_ns = int(round(control_period_s * 1e9))

    def per_tick(key, default):
        return table_column(path, rows, key)[frames] if key in rows.column_names else default

    missing = per_tick(ACTION_MISSING, np.zeros(len(frames), dtype=bool)).astype(bool)
    tokens = None
    if ACTION_TOKENS in rows.column_names:
        width = dataset.features[ACTION_TOKENS]['shape'][0]
        tokens = table_column(path, rows, ACTION_TOKENS, width)[frames]
    column = {name.removeprefix(EPISODE_KEY): value for name, value in row.items()
              if name.startswith(EPISODE_KEY)}
    instruction = dataset.tasks.get(
        int(table_column(path, rows, 'task_index')[0]) if 'task_index' in rows.column_names
        else -1, '')
    if ours:
        episode = EpisodeMetadata(
            robot=robot or column['robot'], task=task or column['task'],
            instruction=column['instruction'], policy_version=column['policy_version'],
            episode_id=column['episode_id'], seed=column.get('seed'),
            start_time_ns=column.get('start_time_ns'),
            extra={**json.loads(column.get('extra') or '{}'),
                   'imported_from': {'lerobot': dataset.root,
                                     'episode_index': row['episode_index']}})
        outcome, cause = column['outcome'], column.get('outcome_cause') or ''
        if tokens is not None and column.get('action_tokens_width') is not None:
            tokens = tokens[:, :column['action_tokens_width']]
        elif column.get('action_tokens_width') is None:
            tokens = None
    else:
        name = os.path.basename(dataset.root.rstrip('/')) or 'lerobot'
        episode = EpisodeMetadata(
            robot=robot or 'aloha1', task=task or name, instruction=instruction,
            policy_version='lerobot_demonstration',
            episode_id=f'{_safe(name)}-{row["episode_index"]:06d}',
            start_time_ns=int(os.stat(path).st_mtime_ns),
            extra={'source': 'lerobot', 'imported_from': {
                'lerobot': dataset.root, 'episode_index': row['episode_index']},
                'source_fps': dataset.fps})
        cause = 'LeRobot dataset episode'
    ticks_ns = per_tick(TICK_NS, None)
    if ticks_ns is None:
        ticks_ns = episode.start_time_ns + np.arange(len(frames), dtype=np.int64) * period_ns
    ticks_ns = np.asarray(ticks_ns, dtype=np.int64)
    streams = {'joints': state, 'commands': action, 'missing': missing, 'images': images,
               'tokens': tokens, 'versions': per_tick(POLICY_VERSION, None),
               'sim_success': per_tick(SIM_SUCCESS, None)
               if ours and column.get('sim_success') is not None else None}
    writer = EpisodeBagWriter(out_dir, episode.replace(start_time_ns=episode.start_time_ns
                                                       or int(ticks_ns[0])), max_chunk_s=1.0)
    last_tick_ns = int(ticks_ns[-1])
    if ours and len(frames) == len(rows):
        # The end event bounds the tick grid: where it stood, the ticks the source could not
        # fill after its last kept one are dropped again (those before the first are not).
        dropped = json.loads(column.get('dropped_ticks') or '[]')
        grid = grid_indices(len(frames), dropped)
        last_tick_ns = int(ticks_ns[0]) + (len(grid) + len(dropped) - 1 - int(grid[0])) * \
            period_ns
    with writer:
        _write_ticks(writer, writer.episode, ticks_ns, streams, outcome, last_tick_ns)
        end_ns = max(int(column.get('end_time_ns') or 0), last_tick_ns) if ours \
            else last_tick_ns
        bag = writer.finish(outcome, cause, end_time_ns=end_ns)
    if ours:
        _restore_labels(bag, column, ticks_ns, per_tick(STEPS_TO_GO, None),
                        per_tick(REWARD, None), tokens, streams['versions'])
    return bag


def _safe(name):
    import re
    return re.sub(r'[^A-Za-z0-9._-]+', '-', name).strip('-') or 'lerobot'


def _write_ticks(writer, episode, ticks_ns, streams, outcome, end_ns):
    """Write start event, per tick joints/cameras/sim success/tokens/command, end event."""
    from selfimprove_ros.core import topics
    from selfimprove_ros.episode.events import make_event

    from .bag_messages import (bool_cdr, image_cdr, joint_state_cdr as joint_state,
                               string_cdr as string)
    from .bag_streams import BOOL, IMAGE, JOINT_STATE, STRING
    ns = f'/{episode.robot}/'
    name = {'joints': ns + topics.JOINT_STATES, 'commands': ns + topics.JOINT_COMMANDS,
            'events': ns + topics.EPISODE_EVENTS, 'success': ns + topics.SIM_SUCCESS,
            'tokens': ns + topics.POLICY_ACTIONS}
    for role, msgtype in (('joints', JOINT_STATE), ('commands', JOINT_STATE),
                          ('events', STRING)):
        writer.add_topic(name[role], msgtype)
    if streams['sim_success'] is not None:
        writer.add_topic(name['success'], BOOL)
    if streams['tokens'] is not None:
        writer.add_topic(name['tokens'], STRING)
    for cam in streams['images']:
        writer.add_topic(ns + topics.camera_topic(cam), IMAGE)

    first = int(ticks_ns[0])
    writer.write(name['events'], string(make_event(
        'start', episode_id=episode.episode_id, robot=episode.robot, task=episode.task,
        instruction=episode.instruction, policy_version=episode.policy_version)), first)
    for k, stamp in enumerate(int(t) for t in ticks_ns):
        writer.write(name['joints'], joint_state(stamp, streams['joints'][k]), stamp)
        for cam, frames in streams['images'].items():
            writer.write(ns + topics.camera_topic(cam), image_cdr(stamp, frames[k], cam), stamp)
        if streams['sim_success'] is not None:
            writer.write(name['success'], bool_cdr(streams['sim_success'][k]), stamp)
        tokens = streams['tokens']
        if tokens is not None and (tokens[k] >= 0).any():
            version = str(streams['versions'][k]) if streams['versions'] is not None else ''
            text = json.dumps({'stamp_ns': stamp, 'version': version,
                               'tokens': [int(t) for t in tokens[k]]})
            writer.write(name['tokens'], string(text), stamp)
        if not streams['missing'][k]:
            writer.write(name['commands'], joint_state(stamp, streams['commands'][k]), stamp)
    writer.write(name['events'], string(make_event(
        'end', episode_id=episode.episode_id, outcome=outcome)), end_ns)


def _restore_labels(bag, column, ticks_ns, steps, rewards, tokens, versions):
    """Write steps_to_go.npz back when the export carried a complete labels file."""
    from selfimprove_ros.data.episode_labelling import FORMAT, write_labels
    info = json.loads(column.get('labels') or '{}')
    if info.get('source') != 'steps_to_go.npz' or not info.get('complete') or steps is None:
        return
    sim = info.get('sim_success')
    labels = {
        'format': FORMAT, 'episode_id': info['episode_id'], 'outcome': info['outcome'],
        'instruction': info['instruction'], 'policy_version': info['policy_version'],
        'reward_version': info['reward_version'], 'reward_sha256': info['reward_sha256'],
        'success_bonus': float(info['success_bonus']),
        'sim_success': -1 if sim is None else int(bool(sim)),
        'tick_ns': np.asarray(ticks_ns, dtype=np.int64),
        'steps_to_go': np.asarray(steps, dtype=np.float32),
        'rewards': np.asarray(rewards, dtype=np.float32),
        'dropped_ticks': np.asarray(info.get('dropped_ticks', []), dtype=np.int64),
        'decision': np.zeros(len(ticks_ns), dtype=bool)}
    if info.get('tokens') and tokens is not None:
        labels['action_tokens'] = np.asarray(tokens, dtype=np.int64)
        labels['decision'] = (labels['action_tokens'] >= 0).any(axis=1)
        labels['token_versions'] = np.asarray(
            [str(v) if (t >= 0).any() else '' for t, v in zip(tokens, versions)], dtype=str)
    write_labels(bag, labels)
