"""A LeRobot v3.0 ALOHA dataset -> episode bags (layout: lerobot_format.py)."""

import json
import os
import time

import numpy as np

from selfimprove_ros.data.lerobot_format import (ACTION, ACTION_MISSING, ACTION_TOKENS,
                                                 EPISODE_KEY, GRIPPER_RANGE, IMAGE_PREFIX,
                                                 INFO_PATH, POLICY_VERSION, REWARD, SIM_SUCCESS,
                                                 STATE, STEPS_TO_GO, TASKS_PATH, TICK_NS)
from selfimprove_ros.data.lerobot_video import read_video_frames


def _read_json(path):
    if not os.path.isfile(path):
        raise ValueError(f'{path} does not exist; pass the root of a LeRobot v3 dataset (the '
                         'directory holding meta/info.json)')
    with open(path, encoding='utf-8') as stream:
        try:
            return json.load(stream)
        except ValueError as error:
            raise ValueError(f'{path} is not valid JSON ({error}); download it again') from None


def joint_order(info_path, key, feature, order='names') -> np.ndarray:
    """Return indices that put a 14-dim LeRobot feature into JOINT_NAMES order.

    `order='names'` maps by the feature's names (e.g. left_waist or left_waist.pos) when it has
    any, and takes contract order when it has none; `order='contract'` ignores the names.
    """
    from selfimprove_ros.core.joints import JOINT_NAMES, NUM_JOINTS
    shape = list(feature.get('shape') or [])
    if shape != [NUM_JOINTS]:
        raise ValueError(f'{info_path}: features["{key}"].shape is {shape}, expected '
                         f'[{NUM_JOINTS}] (ALOHA: 2 arms x (6 joints + gripper) in the order '
                         f'{list(JOINT_NAMES)}); this dataset is not from a bimanual ALOHA')
    names = feature.get('names')
    if isinstance(names, dict) and len(names) == 1:  # v2-era {"motors": [...]}
        names = next(iter(names.values()))
    if order == 'contract' or not names:
        return np.arange(NUM_JOINTS)
    if order != 'names':
        raise ValueError(f"joint order must be 'names' or 'contract', got {order!r}")
    plain = [str(name).lower().removesuffix('.pos') for name in names]
    unknown = [names[i] for i, name in enumerate(plain) if name not in JOINT_NAMES]
    if unknown or len(set(plain)) != NUM_JOINTS:
        raise ValueError(f'{info_path}: features["{key}"].names {list(names)} are not the 14 '
                         f'ALOHA joints {list(JOINT_NAMES)} (unknown: {unknown}); if the '
                         "values are in that order anyway, import with joint order 'contract' "
                         '(--joint-order contract)')
    return np.array([plain.index(name) for name in JOINT_NAMES])


def camera_mapping(info_path, features, mapping=None) -> dict:
    """Return {LeRobot image key: contract camera} of the dataset's image features.

    Keys observation.images.<cam> map to <cam> for the contract's cameras and ACT's sim names
    (top, angle, left_wrist, right_wrist); `mapping` {name or key: camera, '' = leave out}
    handles others. Raises ValueError naming the keys it cannot place.
    """
    from selfimprove_ros.core.topics import CAMERA_NAMES

    from .act_hdf5 import ACT_CAMERAS
    mapping = dict(mapping or {})
    out, unknown = {}, []
    for key, feature in features.items():
        if feature.get('dtype') not in ('video', 'image'):
            continue
        name = key.removeprefix(IMAGE_PREFIX)
        cam = mapping.get(key, mapping.get(name))
        if cam is None:
            cam = name if name in CAMERA_NAMES else ACT_CAMERAS.get(name)
        if cam == '':
            continue
        if cam not in CAMERA_NAMES:
            unknown.append(key)
            continue
        out[key] = cam
    if unknown:
        raise ValueError(f'{info_path}: image features {unknown} are not cameras of the contract '
                         f'{list(CAMERA_NAMES)}; map them with --camera NAME=cam_high (or '
                         'NAME= to leave one out)')
    if len(set(out.values())) != len(out):
        raise ValueError(f'{info_path}: two image features map to one camera ({out}); map '
                         'each to its own with --camera NAME=CAM')
    return out


class _Dataset:
    """A LeRobot v3 dataset on disk: info, tasks, episodes metadata, data files on demand."""

    def __init__(self, root):
        import pyarrow.parquet as pq
        self.root = os.path.abspath(os.fspath(root))
        self.info_path = os.path.join(self.root, INFO_PATH)
        self.info = _read_json(self.info_path)
        version = str(self.info.get('codebase_version', ''))
        if not version.startswith('v3.'):
            raise ValueError(f'{self.info_path}: codebase_version is {version!r}; this importer '
                             'reads v3.0 datasets. Convert a v2.1 dataset with LeRobot\'s '
                             'convert_dataset_v21_to_v30 (lerobot.datasets.v30 in 0.4, '
                             'lerobot.scripts later)')
        for name in ('fps', 'features', 'data_path'):
            if name not in self.info:
                raise ValueError(f'{self.info_path} lacks "{name}"; it is not a LeRobot v3 '
                                 'info.json')
        self.fps = self.info['fps']
        if not isinstance(self.fps, int) or self.fps < 1:
            raise ValueError(f'{self.info_path}: fps is {self.fps!r}, expected an int >= 1')
        self.features = self.info['features']
        self.tasks = self._tasks()
        paths = sorted(os.path.join(parent, name)
                       for parent, _, names in os.walk(os.path.join(self.root, 'meta',
                                                                    'episodes'))
                       for name in names if name.endswith('.parquet'))
        if not paths:
            raise ValueError(f'{self.root}/meta/episodes holds no .parquet file; the dataset '
                             'is incomplete, download it again')
        rows = []
        for path in paths:
            table = pq.read_table(path)
            table = table.drop([c for c in table.column_names if c.startswith('stats/')])
            rows.extend(table.to_pylist())
        self.episodes = sorted(rows, key=lambda row: row['episode_index'])
        self._data = {}

    def _tasks(self):
        import pyarrow.parquet as pq
        path = os.path.join(self.root, TASKS_PATH)
        if not os.path.isfile(path):
            raise ValueError(f'{path} does not exist; the dataset is incomplete, download it '
                             'again')
        table = pq.read_table(path)
        text = 'task' if 'task' in table.column_names else None
        meta = json.loads((table.schema.metadata or {}).get(b'pandas', b'{}'))
        index = [c for c in meta.get('index_columns', []) if isinstance(c, str)]
        text = text or (index[0] if index else None)
        if text is None or 'task_index' not in table.column_names:
            raise ValueError(f'{path} has columns {table.column_names}; expected task_index '
                             'and the task text (column or pandas index "task")')
        return dict(zip(table['task_index'].to_pylist(), table[text].to_pylist()))

    def data(self, row):
        """Return the data table of the file holding episode `row`."""
        import pyarrow.parquet as pq
        where = (row['data/chunk_index'], row['data/file_index'])
        if where not in self._data:
            path = os.path.join(self.root, self.info['data_path'].format(
                chunk_index=where[0], file_index=where[1]))
            if not os.path.isfile(path):
                raise ValueError(f'{path} does not exist but episode {row["episode_index"]} '
                                 'is stored there (meta/episodes data/chunk_index, '
                                 'data/file_index); download the dataset again')
            self._data = {where: (path, pq.read_table(path))}  # one file in memory at a time
        return self._data[where]

    def video_path(self, key, row):
        """Return the mp4 of feature `key` that holds episode `row`."""
        template = self.info.get('video_path') or ''
        return os.path.join(self.root, template.format(
            video_key=key, chunk_index=row[f'videos/{key}/chunk_index'],
            file_index=row[f'videos/{key}/file_index']))


def _column(path, table, key, width=None) -> np.ndarray:
    """Return column `key` of a data table as an array ([N] or [N, width])."""
    if key not in table.column_names:
        raise ValueError(f'{path} has no column "{key}" that meta/info.json declares; the '
                         'dataset is damaged, download it again')
    column = table[key].combine_chunks()
    if width is None:
        return column.to_numpy(zero_copy_only=False)
    values = np.asarray(column.flatten().to_numpy(zero_copy_only=False))
    if values.size != len(column) * width:
        raise ValueError(f'{path}: column "{key}" holds {values.size} values for {len(column)} '
                         f'rows, expected {width} per row')
    return values.reshape(len(column), width)


def _episode_table(dataset, row):
    """Return (path, rows of episode `row` ordered by frame_index)."""
    import pyarrow.compute as pc
    path, table = dataset.data(row)
    if 'episode_index' not in table.column_names:
        raise ValueError(f'{path} has no episode_index column; it is not LeRobot data')
    rows = table.filter(pc.equal(table['episode_index'], row['episode_index']))
    if 'frame_index' in rows.column_names:
        rows = rows.sort_by('frame_index')
        frame_index = _column(path, rows, 'frame_index')
        if not np.array_equal(frame_index, np.arange(len(rows))):
            raise ValueError(f'{path}: frame_index of episode {row["episode_index"]} is not '
                             f'0..{len(rows) - 1}; the data file is damaged')
    if len(rows) != row['length']:
        raise ValueError(f'{path} holds {len(rows)} rows of episode {row["episode_index"]}, '
                         f'meta/episodes says length {row["length"]}; download it again')
    return path, rows


def check_grippers(path, key, values):
    """Raise ValueError unless the gripper columns of `values` [N, 14] are normalised."""
    from selfimprove_ros.core.joints import GRIPPER_INDICES, JOINT_NAMES
    grippers = values[:, list(GRIPPER_INDICES)]
    low, high = float(np.nanmin(grippers)), float(np.nanmax(grippers))
    if low < GRIPPER_RANGE[0] or high > GRIPPER_RANGE[1]:
        raise ValueError(
            f'{path}: {key} grippers ({", ".join(JOINT_NAMES[i] for i in GRIPPER_INDICES)}) '
            f'span [{low:.3g}, {high:.3g}]; the contract needs them normalised 0 (closed) .. 1 '
            '(open), as ACT and the ALOHA recorder store them. Normalise them first: '
            '(x - closed) / (open - closed)')


def _decode_images(dataset, key, feature, row, path, rows):
    """Return the frames [N, H, W, 3] uint8 of image feature `key` for one episode."""
    count = len(rows)
    if feature['dtype'] == 'image':  # PNG/JPEG bytes inside the data parquet
        import cv2
        images = []
        for i, cell in enumerate(rows[key].to_pylist()):
            data = (cell or {}).get('bytes')
            image = None if data is None else cv2.imdecode(np.frombuffer(data, np.uint8),
                                                           cv2.IMREAD_COLOR)
            if image is None:
                raise ValueError(f'{path}: "{key}" of frame {i} is not an encoded image')
            images.append(image[..., ::-1])
        return np.stack(images)
    shape = feature.get('shape') or []
    names = feature.get('names') or ['height', 'width', 'channels']
    dims = dict(zip(names, shape)) if len(names) == len(shape) == 3 else {}
    info = feature.get('info') or feature.get('video_info') or {}
    height = info.get('video.height') or dims.get('height')
    width = info.get('video.width') or dims.get('width')
    if not height or not width:
        raise ValueError(f'{dataset.info_path}: features["{key}"] gives no height and width '
                         '(shape with names height/width/channels, or info video.height)')
    video = dataset.video_path(key, row)
    if not os.path.isfile(video):
        raise ValueError(f'{video} does not exist but episode {row["episode_index"]} has its '
                         f'"{key}" frames there; download the videos too')
    timestamps = _column(path, rows, 'timestamp') if 'timestamp' in rows.column_names \
        else np.arange(count) / dataset.fps
    start = float(row[f'videos/{key}/from_timestamp']) + float(timestamps[0])
    return read_video_frames(video, start, count, dataset.fps, int(height), int(width))


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
    dataset = _Dataset(dataset_dir)
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
        path, rows = _episode_table(dataset, row)
        for key in (STATE, ACTION):
            check_grippers(path, key, _column(path, rows, key, 14)[:, order[key]])
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
    path, rows = _episode_table(dataset, row)
    frames, commands = tick_frames(len(rows), dataset.fps, control_period_s)
    state = _column(path, rows, STATE, 14)[:, order[STATE]][frames]
    action = _column(path, rows, ACTION, 14)[:, order[ACTION]][commands]
    images = {cam: _decode_images(dataset, key, dataset.features[key], row, path,
                                  rows)[frames] for key, cam in cams.items()}
    period_ns = int(round(control_period_s * 1e9))

    def per_tick(key, default):
        return _column(path, rows, key)[frames] if key in rows.column_names else default

    missing = per_tick(ACTION_MISSING, np.zeros(len(frames), dtype=bool)).astype(bool)
    tokens = None
    if ACTION_TOKENS in rows.column_names:
        width = dataset.features[ACTION_TOKENS]['shape'][0]
        tokens = _column(path, rows, ACTION_TOKENS, width)[frames]
    column = {name.removeprefix(EPISODE_KEY): value for name, value in row.items()
              if name.startswith(EPISODE_KEY)}
    instruction = dataset.tasks.get(
        int(_column(path, rows, 'task_index')[0]) if 'task_index' in rows.column_names
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
    from selfimprove_ros.runtime.episode_labelling import FORMAT, write_labels
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
