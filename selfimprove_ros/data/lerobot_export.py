"""Episode bags -> a LeRobot v3.0 dataset (layout: lerobot_format.py)."""

from dataclasses import dataclass, field
import json
import os
import shutil
import tempfile
import time

import numpy as np

from selfimprove_ros.data.lerobot_format import (ACTION, ACTION_MISSING, ACTION_TOKENS,
                                                 CHUNKS_SIZE, CODEBASE_VERSION, CODECS,
                                                 DATA_FILES_SIZE_MB, DATA_PATH, DEFAULT_FEATURES,
                                                 EPISODES_PATH, EPISODE_KEY, IMAGE_PREFIX,
                                                 INFO_PATH, POLICY_VERSION, QUANTILES, REWARD,
                                                 ROBOT_TYPE, SIM_SUCCESS, STATE, STATS_PATH,
                                                 STEPS_TO_GO, TASKS_PATH, TICK_NS,
                                                 VIDEO_FILES_SIZE_MB, VIDEO_PATH)
from selfimprove_ros.data.lerobot_video import (VideoWriter, choose_codec)


@dataclass
class ExportReport:
    """What `export_lerobot` wrote, and the bags it could not use (bag, reason)."""

    out_dir: str
    episodes: int = 0
    frames: int = 0
    codec: str = ''
    bytes_read: int = 0
    bytes_written: int = 0
    seconds: float = 0.0
    skipped: list = field(default_factory=list)


def array_stats(values: np.ndarray) -> dict:
    """Return LeRobot's stats of values [N, D] (NaN ignored): min, max, mean, std, count, q.."""
    values = np.asarray(values, dtype=np.float64)
    values = values.reshape(len(values), -1)
    finite = np.isfinite(values)
    count = int(finite.all(axis=1).sum())
    if not finite.any():
        zeros = np.zeros(values.shape[1])
        stats = {'min': zeros, 'max': zeros, 'mean': zeros, 'std': zeros}
        stats.update({f'q{int(q * 100):02d}': zeros for q in QUANTILES})
    else:
        stats = {'min': np.nanmin(values, axis=0), 'max': np.nanmax(values, axis=0),
                 'mean': np.nanmean(values, axis=0), 'std': np.nanstd(values, axis=0)}
        stats.update({f'q{int(q * 100):02d}': np.nanquantile(values, q, axis=0)
                      for q in QUANTILES})
    stats = {key: np.nan_to_num(value) for key, value in stats.items()}
    stats['count'] = np.array([count])
    return stats


def image_histogram(frames: np.ndarray) -> np.ndarray:
    """Return per-channel counts of the 256 levels [3, 256] of a sample of frames.

    Like LeRobot's sample_images: at most ~100 frames and ~150 px a side are looked at.
    """
    frames = frames[::max(1, len(frames) // 100)]
    step = max(1, max(frames.shape[1:3]) // 150)
    sample = frames[:, ::step, ::step]
    return np.stack([np.bincount(sample[..., c].reshape(-1), minlength=256)
                     for c in range(3)]).astype(np.int64)


def histogram_stats(histogram: np.ndarray, frames: int) -> dict:
    """Return image stats [3, 1, 1] in [0, 1] from per-channel level counts [3, 256]."""
    levels = np.arange(256) / 255.0
    total = histogram.sum(axis=1)
    safe = np.maximum(total, 1)
    mean = histogram @ levels / safe
    std = np.sqrt(np.maximum(histogram @ levels ** 2 / safe - mean ** 2, 0.0))
    cumulative = np.cumsum(histogram, axis=1) / safe[:, None]

    def per_channel(values):
        return np.asarray(values, dtype=np.float64).reshape(3, 1, 1)

    stats = {
        'min': per_channel([levels[np.flatnonzero(h)[0]] if h.any() else 0 for h in histogram]),
        'max': per_channel([levels[np.flatnonzero(h)[-1]] if h.any() else 0 for h in histogram]),
        'mean': per_channel(mean), 'std': per_channel(std), 'count': np.array([frames])}
    for q in QUANTILES:
        stats[f'q{int(q * 100):02d}'] = per_channel(
            [levels[min(np.searchsorted(c, q), 255)] for c in cumulative])
    return stats


def _jsonable(stats: dict) -> dict:
    return {key: {name: np.asarray(value).tolist() for name, value in entry.items()}
            for key, entry in stats.items()}


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


def _labels_of(bag_dir, episode, log):
    """Return the bag's TickLabels aligned to the episode's ticks, or None without a file."""
    from selfimprove_ros.runtime.episode_labelling import BadLabels, LABELS_FILE, read_labels
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


class _Export:
    """The files of one export as they are written; closes or removes them."""

    def __init__(self, root, cameras, height, width, fps, codec, crf):
        self.root, self.cameras, self.fps = root, cameras, fps
        self.height, self.width, self.codec, self.crf = height, width, codec, crf
        self.chunk, self.file, self.file_frames = 0, 0, 0
        self.videos = {}
        self.episodes, self.rows = [], []   # episode columns; (chunk, file, frames dict)
        self.histograms = {cam: np.zeros((3, 256), np.int64) for cam in cameras}
        self.tasks = {}

    def video_key(self, cam):
        return IMAGE_PREFIX + cam

    def open_videos(self):
        for cam in self.cameras:
            path = os.path.join(self.root, VIDEO_PATH.format(
                video_key=self.video_key(cam), chunk_index=self.chunk, file_index=self.file))
            self.videos[cam] = VideoWriter(path, self.height, self.width, self.fps,
                                           self.codec, self.crf)

    def close_videos(self):
        for writer in self.videos.values():
            writer.close()
        self.videos = {}

    def abort(self):
        for writer in self.videos.values():
            writer.abort()
        self.videos = {}

    def roll_over_if_full(self, bytes_per_frame):
        """Start the next file (chunk) once the current data or video file is full."""
        data_mb = self.file_frames * bytes_per_frame / 2**20
        video_mb = max((os.path.getsize(w.path) if os.path.exists(w.path) else 0) / 2**20
                       for w in self.videos.values()) if self.videos else 0
        if self.file_frames and (data_mb >= DATA_FILES_SIZE_MB or
                                 video_mb >= VIDEO_FILES_SIZE_MB):
            self.close_videos()
            self.file += 1
            if self.file == CHUNKS_SIZE:
                self.chunk, self.file = self.chunk + 1, 0
            self.file_frames = 0
            self.open_videos()

    def add(self, episode, frames, columns):
        """Append one episode: frames to the videos, its rows and metadata to memory."""
        index = len(self.episodes)
        task = episode.instruction or episode.task
        task_index = self.tasks.setdefault(task, len(self.tasks))
        ticks = episode.length
        first = sum(e['length'] for e in self.episodes)
        frames = dict(frames)
        frames.update({
            'timestamp': (np.arange(ticks) / self.fps).astype(np.float32),
            'frame_index': np.arange(ticks, dtype=np.int64),
            'episode_index': np.full(ticks, index, dtype=np.int64),
            'index': np.arange(first, first + ticks, dtype=np.int64),
            'task_index': np.full(ticks, task_index, dtype=np.int64)})
        row = {'episode_index': index, 'tasks': [task], 'length': ticks,
               'data/chunk_index': self.chunk, 'data/file_index': self.file,
               'dataset_from_index': first, 'dataset_to_index': first + ticks}
        histograms = {}
        for cam in self.cameras:
            images = episode.images[cam]
            start_s = self.videos[cam].frames / self.fps
            self.videos[cam].write(images)
            histograms[cam] = image_histogram(images)
            self.histograms[cam] += histograms[cam]
            key = self.video_key(cam)
            row.update({f'videos/{key}/chunk_index': self.chunk,
                        f'videos/{key}/file_index': self.file,
                        f'videos/{key}/from_timestamp': start_s,
                        f'videos/{key}/to_timestamp': start_s + ticks / self.fps})
        row.update({'meta/episodes/chunk_index': 0, 'meta/episodes/file_index': 0})
        row['_histograms'] = histograms
        row.update({EPISODE_KEY + name: value for name, value in columns.items()})
        self.episodes.append(row)
        self.rows.append((self.chunk, self.file, frames))
        self.file_frames += ticks


def _features(cameras, height, width, codec, fps, token_width):
    """Return the info.json features of an export."""
    from selfimprove_ros.core.joints import JOINT_NAMES
    features = {
        STATE: {'dtype': 'float32', 'shape': [len(JOINT_NAMES)], 'names': list(JOINT_NAMES)},
        ACTION: {'dtype': 'float32', 'shape': [len(JOINT_NAMES)], 'names': list(JOINT_NAMES)},
    }
    for cam in cameras:
        features[IMAGE_PREFIX + cam] = {
            'dtype': 'video', 'shape': [height, width, 3],
            'names': ['height', 'width', 'channels'],
            'info': {'video.height': height, 'video.width': width,
                     'video.codec': CODECS[codec], 'video.pix_fmt': 'yuv420p',
                     'video.is_depth_map': False, 'video.fps': fps, 'video.channels': 3,
                     'has_audio': False}}
    features.update({
        TICK_NS: {'dtype': 'int64', 'shape': [1], 'names': None},
        STEPS_TO_GO: {'dtype': 'float32', 'shape': [1], 'names': None},
        REWARD: {'dtype': 'float32', 'shape': [1], 'names': None},
        POLICY_VERSION: {'dtype': 'string', 'shape': [1], 'names': None},
        SIM_SUCCESS: {'dtype': 'bool', 'shape': [1], 'names': None},
        ACTION_MISSING: {'dtype': 'bool', 'shape': [1], 'names': None},
    })
    if token_width:
        features[ACTION_TOKENS] = {'dtype': 'int64', 'shape': [token_width], 'names': None}
    features.update(json.loads(json.dumps(DEFAULT_FEATURES)))
    return features


def _arrow_type(feature):
    import pyarrow as pa
    scalar = {'float32': pa.float32(), 'float64': pa.float64(), 'int64': pa.int64(),
              'bool': pa.bool_(), 'string': pa.string()}[feature['dtype']]
    if list(feature['shape']) == [1]:
        return scalar
    # Fixed-size lists: what `datasets` makes of LeRobot's Sequence(length=n) features.
    return pa.list_(scalar, feature['shape'][0])


def _frames_table(frames: dict, features: dict):
    import pyarrow as pa
    columns, fields, hf_features = [], [], {}
    for key, feature in features.items():
        if feature['dtype'] == 'video':
            continue
        values = frames[key]
        arrow = _arrow_type(feature)
        if isinstance(arrow, pa.FixedSizeListType):
            flat = np.ascontiguousarray(values, dtype=feature['dtype']).reshape(-1)
            array = pa.FixedSizeListArray.from_arrays(pa.array(flat, arrow.value_type),
                                                      feature['shape'][0])
        else:
            array = pa.array(values if feature['dtype'] == 'string'
                             else np.asarray(values, dtype=feature['dtype']), arrow)
        columns.append(array)
        fields.append(pa.field(key, arrow))
        hf_features[key] = {'dtype': feature['dtype'], '_type': 'Value'}
        if isinstance(arrow, pa.FixedSizeListType):
            hf_features[key] = {'feature': hf_features[key], 'length': feature['shape'][0],
                                '_type': 'List'}
    # The `datasets` library's own record of the features, as LeRobot's writer leaves it.
    meta = {b'huggingface': json.dumps({'info': {'features': hf_features}}).encode()}
    return pa.Table.from_arrays(columns, schema=pa.schema(fields, metadata=meta))


def _write_tasks(path, tasks):
    """Write meta/tasks.parquet as pandas would: task_index column, index 'task'."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    table = pa.table({'task_index': pa.array(range(len(tasks)), pa.int64()),
                      'task': pa.array(list(tasks), pa.string())})
    # LeRobot reads this with pandas and looks a task up as `tasks.iloc[i].name`, the index;
    # pandas restores that index from this schema metadata.
    pandas_meta = {
        'index_columns': ['task'],
        'column_indexes': [{'name': None, 'field_name': None, 'pandas_type': 'unicode',
                            'numpy_type': 'object', 'metadata': {'encoding': 'UTF-8'}}],
        'columns': [{'name': 'task_index', 'field_name': 'task_index', 'pandas_type': 'int64',
                     'numpy_type': 'int64', 'metadata': None},
                    {'name': 'task', 'field_name': 'task', 'pandas_type': 'unicode',
                     'numpy_type': 'object', 'metadata': None}],
        'creator': {'library': 'pyarrow', 'version': pa.__version__},
        'pandas_version': '2.2.3'}
    table = table.replace_schema_metadata({b'pandas': json.dumps(pandas_meta).encode()})
    pq.write_table(table, path)


def _write_dataset_files(export, features, fps, robot_type):
    """Write the data parquet files, the episodes metadata, tasks, stats and info."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    root = export.root
    writers = {}
    try:
        for chunk, file, frames in export.rows:
            table = _frames_table(frames, features)
            if (chunk, file) not in writers:
                path = os.path.join(root, DATA_PATH.format(chunk_index=chunk, file_index=file))
                os.makedirs(os.path.dirname(path), exist_ok=True)
                writers[(chunk, file)] = pq.ParquetWriter(path, table.schema,
                                                          compression='snappy')
            writers[(chunk, file)].write_table(table)  # one row group per episode
    finally:
        for writer in writers.values():
            writer.close()
    numeric = [key for key, ft in features.items() if ft['dtype'] not in ('video', 'string')]
    for row, (_, _, frames) in zip(export.episodes, export.rows):
        for key in numeric:
            for name, value in array_stats(frames[key]).items():
                row[f'stats/{key}/{name}'] = value.tolist()
        for cam, histogram in row.pop('_histograms').items():
            stats = histogram_stats(histogram, row['length'])
            for name, value in stats.items():
                row[f'stats/{IMAGE_PREFIX + cam}/{name}'] = value.tolist()
    stats = {key: array_stats(np.concatenate([np.asarray(f[key]).reshape(len(f[key]), -1)
                                              for _, _, f in export.rows]))
             for key in numeric}
    total = sum(row['length'] for row in export.episodes)
    stats.update({IMAGE_PREFIX + cam: histogram_stats(h, total)
                  for cam, h in export.histograms.items()})
    # Typed explicitly: a column that is None in every episode would otherwise be of type null.
    types = {EPISODE_KEY + name: pa.int64() for name in (
        'seed', 'success_tick', 'start_time_ns', 'end_time_ns', 'action_tokens_width')}
    types.update({EPISODE_KEY + name: pa.bool_() for name in ('sim_success',
                                                              'verdict_success')})
    columns = {key: pa.array([row[key] for row in export.episodes], types.get(key))
               for key in export.episodes[0]}
    episodes_path = os.path.join(root, EPISODES_PATH.format(chunk_index=0, file_index=0))
    os.makedirs(os.path.dirname(episodes_path), exist_ok=True)
    pq.write_table(pa.table(columns), episodes_path)
    _write_tasks(os.path.join(root, TASKS_PATH), export.tasks)
    with open(os.path.join(root, STATS_PATH), 'w', encoding='utf-8') as stream:
        json.dump(_jsonable(stats), stream, indent=2)
    info = {
        'codebase_version': CODEBASE_VERSION, 'robot_type': robot_type,
        'total_episodes': len(export.episodes), 'total_frames': total,
        'total_tasks': len(export.tasks), 'chunks_size': CHUNKS_SIZE,
        'data_files_size_in_mb': DATA_FILES_SIZE_MB,
        'video_files_size_in_mb': VIDEO_FILES_SIZE_MB, 'fps': fps,
        'splits': {'train': f'0:{len(export.episodes)}'},
        'data_path': DATA_PATH, 'video_path': VIDEO_PATH if export.cameras else None,
        'features': features}
    with open(os.path.join(root, INFO_PATH), 'w', encoding='utf-8') as stream:
        json.dump(info, stream, indent=4)


def _dir_bytes(path) -> int:
    return sum(os.path.getsize(os.path.join(parent, name))
               for parent, _, names in os.walk(path) for name in names)


def export_lerobot(bag_paths, out_dir, fps=10, cameras=None, image_height=None,
                   image_width=None, codec=None, crf=30, robot_type=ROBOT_TYPE,
                   log=print) -> ExportReport:
    """Write the episode bags in `bag_paths` (bags or folders of them) as a LeRobot v3 dataset.

    Every outcome is exported (demonstrations and practice episodes); a bag that cannot become
    an episode is skipped and listed in the report. `fps` is the control rate [Hz] the bags are
    aligned to (one frame per tick). `cameras` default to the contract cameras of the first
    bag, frames to that camera's size (`image_height`/`image_width` [px] resize them). The
    dataset appears at `out_dir` only when complete; an existing `out_dir` is refused.
    """
    from selfimprove_ros.bag.episode_metadata import read_episode_file

    from .bag_streams import BadBag
    from .dataset_config import DatasetConfig
    from .episode_loader import find_bags, load_episode
    started = time.monotonic()
    if isinstance(fps, bool) or not isinstance(fps, int) or fps < 1:
        raise ValueError(f'fps must be a whole number of frames per second >= 1 (LeRobot '
                         f'stores an int), got {fps!r}')
    out_dir = os.path.abspath(os.fspath(out_dir))
    if os.path.exists(out_dir):
        raise FileExistsError(f'{out_dir} already exists; export into a new directory so no '
                              'dataset is mixed with another')
    bags = find_bags(bag_paths)
    if not bags:
        raise FileNotFoundError(f'no episode bags in {bag_paths}; pass bag directories or '
                                'folders that hold them')
    codec = choose_codec(codec)
    if cameras is None or image_height is None or image_width is None:
        sizes = probe_cameras(bags[0])
        cameras = list(sizes) if cameras is None else list(cameras)
        unknown = [cam for cam in cameras if cam not in sizes]
        if unknown or not cameras:
            raise ValueError(f'{bags[0]} has no image topics of camera(s) '
                             f'{unknown or "of the contract"} (it has {list(sizes)}); pass '
                             'cameras= that the bags recorded')
        height, width = sizes[cameras[0]]
        image_height, image_width = image_height or height, image_width or width
    if image_height % 2 or image_width % 2:
        raise ValueError(f'frames of {image_height}x{image_width} px cannot be yuv420p video '
                         '(both sides must be even); pass an even image_height/image_width')
    config = DatasetConfig(cameras=list(cameras), image_height=image_height,
                           image_width=image_width, control_period_s=1.0 / fps,
                           include_failed=True, cache_dir='')
    report = ExportReport(out_dir=out_dir, codec=codec)
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    work = tempfile.mkdtemp(prefix=f'.{os.path.basename(out_dir)}.', suffix='.partial',
                            dir=parent)
    export = _Export(work, list(cameras), image_height, image_width, fps, codec, crf)
    try:
        export.open_videos()
        token_width = 0
        for bag in bags:
            try:
                episode = load_episode(bag, config)
                record = read_episode_file(bag)
            except (BadBag, ValueError) as error:
                report.skipped.append((bag, str(error)))
                log(f'skipping {bag}: {error}')
                continue
            frames, columns = episode_frames(episode, _labels_of(bag, episode, log), record)
            export.roll_over_if_full(bytes_per_frame=512 + 16 * token_width)
            export.add(episode, frames, columns)
            if ACTION_TOKENS in frames:
                token_width = max(token_width, frames[ACTION_TOKENS].shape[1])
            report.bytes_read += _dir_bytes(bag)
            report.frames += episode.length
        export.close_videos()
        if not export.episodes:
            raise ValueError(f'none of the {len(bags)} bags could be exported: '
                             f'{report.skipped[0][1] if report.skipped else ""}')
        _pad_tokens(export.rows, token_width)
        features = _features(cameras, image_height, image_width, codec, fps, token_width)
        _write_dataset_files(export, features, fps, robot_type)
        os.rename(work, out_dir)
    except BaseException:
        export.abort()
        shutil.rmtree(work, ignore_errors=True)
        raise
    report.episodes = len(export.episodes)
    report.bytes_written = _dir_bytes(out_dir)
    report.seconds = time.monotonic() - started
    return report


def _pad_tokens(rows, width):
    """Give every episode an action_tokens column [T, width], -1 beyond its own chunk."""
    if not width:
        for _, _, frames in rows:
            frames.pop(ACTION_TOKENS, None)
        return
    for _, _, frames in rows:
        ticks = len(frames[STATE])
        padded = np.full((ticks, width), -1, dtype=np.int64)
        tokens = frames.get(ACTION_TOKENS)
        if tokens is not None:
            padded[:, :tokens.shape[1]] = tokens
        frames[ACTION_TOKENS] = padded
