"""Episode bags <-> LeRobot v3.0 datasets (ALOHA), both ways, without the lerobot package.

Layout written and read (LeRobot's codebase_version "v3.0", src/lerobot/datasets/utils.py):

- `meta/info.json`: codebase_version, robot_type, fps, features (dtype, shape, names; video
  features carry `info` with codec and pixel format), total_episodes/frames/tasks, chunks_size,
  data_files_size_in_mb, video_files_size_in_mb, data_path and video_path templates, splits.
- `meta/stats.json`: min, max, mean, std, count, q01..q99 per feature (images per channel, in
  [0, 1], shape [3, 1, 1]).
- `meta/tasks.parquet`: task_index with the task text as the pandas index named "task" (LeRobot
  looks tasks up as `tasks.iloc[i].name`), written with pyarrow plus pandas' schema metadata.
- `meta/episodes/chunk-000/file-000.parquet`: one row per episode: episode_index, tasks, length,
  data/chunk_index, data/file_index, dataset_from_index, dataset_to_index,
  videos/<key>/{chunk_index, file_index, from_timestamp, to_timestamp},
  meta/episodes/{chunk_index, file_index}, stats/<feature>/<stat>, and this project's episode
  record under `selfimprove/...` (episode_id, robot, task, outcome and its cause, the operator's
  verdict, sim success, seed, times, episode.yaml's extra, the steps-to-go labels' provenance).
- `data/chunk-000/file-000.parquet`: one row per tick (one row group per episode):
  observation.state [14], action [14], timestamp, frame_index, episode_index, index, task_index
  and the per-tick extras `selfimprove.*` (tick_ns, steps_to_go, reward, policy_version,
  sim_success, action_missing, action_tokens). The prefix matters: LeRobot's policy factory
  takes every feature whose key starts with "observation" for state and "action" for action.
- `videos/observation.images.<cam>/chunk-000/file-000.mp4`: every episode's frames of one camera
  back to back at `fps`; an episode's frames start at its videos/<key>/from_timestamp.

Files roll over to file-001... at episode boundaries past data_files_size_in_mb /
video_files_size_in_mb, as LeRobot's writer does.

Mapping: observation.state = the measured joints, action = the tick's action label (the
intended command where the bag has one, else the executed one), both in JOINT_NAMES order,
grippers 0 (closed)..1 (open). A tick without action label keeps the state as its action (hold
still, what a LeRobot consumer can use safely) and selfimprove.action_missing marks it, so the
import writes no command there and the loader sees the gap again. The LeRobot task is the
instruction (the task name where there is none). Camera <cam> is observation.images.<cam>.

Extras: steps_to_go is the reward model's d(o_t, g) from `steps_to_go.npz` when the bag was
labelled (and reward its r_t), else the dataset's own label from the success tick (reward NaN);
-1 = unknown. The import restores `steps_to_go.npz` when the labels covered every tick.

Videos are encoded with the ffmpeg binary that imageio-ffmpeg bundles (libsvtav1 when it has
it, as LeRobot does, else libx264; yuv420p, a key frame every 2 frames so a random frame decodes
fast) and decoded with it on import. Nothing here imports rclpy.
"""

from dataclasses import dataclass, field
import json
import os
import shutil
import subprocess
import tempfile
import time

import numpy as np

CODEBASE_VERSION = 'v3.0'
ROBOT_TYPE = 'aloha'
CHUNKS_SIZE = 1000            # files per chunk directory, LeRobot's DEFAULT_CHUNK_SIZE
DATA_FILES_SIZE_MB = 100      # LeRobot's DEFAULT_DATA_FILE_SIZE_IN_MB
VIDEO_FILES_SIZE_MB = 200     # LeRobot's DEFAULT_VIDEO_FILE_SIZE_IN_MB
CHUNK_FILE = 'chunk-{chunk_index:03d}/file-{file_index:03d}'
DATA_PATH = 'data/' + CHUNK_FILE + '.parquet'
VIDEO_PATH = 'videos/{video_key}/' + CHUNK_FILE + '.mp4'
EPISODES_PATH = 'meta/episodes/' + CHUNK_FILE + '.parquet'
INFO_PATH, STATS_PATH, TASKS_PATH = 'meta/info.json', 'meta/stats.json', 'meta/tasks.parquet'

STATE, ACTION = 'observation.state', 'action'
IMAGE_PREFIX = 'observation.images.'
TICK_NS = 'selfimprove.tick_ns'
STEPS_TO_GO = 'selfimprove.steps_to_go'
REWARD = 'selfimprove.reward'
POLICY_VERSION = 'selfimprove.policy_version'
SIM_SUCCESS = 'selfimprove.sim_success'
ACTION_MISSING = 'selfimprove.action_missing'
ACTION_TOKENS = 'selfimprove.action_tokens'
EPISODE_KEY = 'selfimprove/'  # prefix of this project's columns in the episodes metadata
DEFAULT_FEATURES = {
    'timestamp': {'dtype': 'float32', 'shape': [1], 'names': None},
    'frame_index': {'dtype': 'int64', 'shape': [1], 'names': None},
    'episode_index': {'dtype': 'int64', 'shape': [1], 'names': None},
    'index': {'dtype': 'int64', 'shape': [1], 'names': None},
    'task_index': {'dtype': 'int64', 'shape': [1], 'names': None},
}
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)  # LeRobot's DEFAULT_QUANTILES
CODECS = {'libsvtav1': 'av1', 'libx264': 'h264'}
# The ACT importer's bound (data/act_hdf5.py): normalised grippers overshoot 0..1 a little on
# real arms; raw joint angles [rad] or motor ticks lie far outside.
GRIPPER_RANGE = (-0.5, 1.5)


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


# --------------------------------------------------------------------------------------------
# ffmpeg (the binary imageio-ffmpeg bundles)


def ffmpeg_exe() -> str:
    """Return the ffmpeg binary imageio-ffmpeg ships; RuntimeError saying how to get it."""
    try:
        import imageio_ffmpeg
        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as error:
        raise RuntimeError(f'no ffmpeg for LeRobot videos ({error}); install imageio-ffmpeg '
                           '(pip install imageio-ffmpeg), which bundles one') from None


_ENCODERS = {}


def choose_codec(codec=None) -> str:
    """Return `codec`, or libsvtav1 (LeRobot's default) if this ffmpeg has it, else libx264."""
    exe = ffmpeg_exe()
    if exe not in _ENCODERS:
        listing = subprocess.run([exe, '-hide_banner', '-encoders'], capture_output=True,
                                 text=True, check=False).stdout
        _ENCODERS[exe] = {name for name in CODECS if f' {name} ' in listing}
    available = _ENCODERS[exe]
    if codec is None:
        codec = 'libsvtav1' if 'libsvtav1' in available else 'libx264'
    if codec not in CODECS:
        raise ValueError(f'codec must be one of {list(CODECS)}, got {codec!r}')
    if codec not in available:
        raise ValueError(f'the ffmpeg of imageio-ffmpeg ({exe}) has no {codec} encoder; use one '
                         f'of {sorted(available)}')
    return codec


class VideoWriter:
    """Frames [N, H, W, 3] uint8 RGB -> one mp4 (yuv420p) through an ffmpeg pipe."""

    def __init__(self, path: str, height: int, width: int, fps: int, codec: str, crf: int):
        self.path, self.frames = path, 0
        os.makedirs(os.path.dirname(path), exist_ok=True)
        # A key frame every 2 frames (LeRobot's g=2): decoding any one frame costs <= 2 frames.
        command = [ffmpeg_exe(), '-hide_banner', '-loglevel', 'error', '-nostdin', '-y',
                   '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', f'{width}x{height}',
                   '-framerate', str(fps), '-i', 'pipe:0', '-c:v', codec,
                   '-pix_fmt', 'yuv420p', '-g', '2', '-crf', str(crf)]
        if codec == 'libsvtav1':
            command += ['-preset', '8']  # SVT-AV1's speed/size balance; 12 is fastest
        self._log = tempfile.TemporaryFile()
        # SVT-AV1 prints a banner of its own below ffmpeg's log level; SVT_LOG=1 = errors only.
        self._process = subprocess.Popen(command + [path], stdin=subprocess.PIPE,
                                         stdout=subprocess.DEVNULL, stderr=self._log,
                                         env={**os.environ, 'SVT_LOG': '1'})

    def write(self, frames: np.ndarray):
        """Append frames [N, H, W, 3] uint8."""
        try:
            self._process.stdin.write(np.ascontiguousarray(frames, dtype=np.uint8).tobytes())
        except BrokenPipeError:
            self._process.wait()
            raise RuntimeError(f'ffmpeg stopped while encoding {self.path}: '
                               f'{self._stderr()}') from None
        self.frames += len(frames)

    def close(self):
        """Finish the file; RuntimeError with ffmpeg's message if encoding failed."""
        self._process.stdin.close()
        if self._process.wait() != 0:
            raise RuntimeError(f'ffmpeg could not encode {self.path} (exit '
                               f'{self._process.returncode}): {self._stderr()}')
        self._log.close()

    def abort(self):
        """Stop ffmpeg without finishing the file."""
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._log.close()

    def _stderr(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors='replace').strip()[-500:] or 'no message'


def read_video_frames(path: str, start_s: float, count: int, fps: int, height: int,
                      width: int) -> np.ndarray:
    """Decode `count` frames from `start_s` [s] of an mp4 as RGB [count, H, W, 3] uint8.

    Raises ValueError naming the file when it holds fewer frames there.
    """
    # Seeking before -i decodes from the key frame before and drops frames until the target;
    # half a frame earlier keeps a frame whose time rounds below start_s.
    seek_s = max(start_s - 0.5 / fps, 0.0)
    command = [ffmpeg_exe(), '-hide_banner', '-loglevel', 'error', '-nostdin',
               '-ss', f'{seek_s:.6f}', '-i', path, '-frames:v', str(count),
               '-fps_mode', 'passthrough', '-f', 'rawvideo', '-pix_fmt', 'rgb24',
               '-s', f'{width}x{height}', 'pipe:1']
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0:
        raise ValueError(f'{path}: ffmpeg cannot decode it '
                         f'({result.stderr.decode(errors="replace").strip()[-300:]}); '
                         'the file is damaged or not a video, download it again')
    frame_bytes = height * width * 3
    got = len(result.stdout) // frame_bytes
    if got < count:
        raise ValueError(f'{path}: holds {got} frames from {start_s:.3f} s, the episodes '
                         f'metadata promises {count}; the video is cut short, download it again')
    return np.frombuffer(result.stdout[:count * frame_bytes],
                         dtype=np.uint8).reshape(count, height, width, 3)


# --------------------------------------------------------------------------------------------
# Statistics as LeRobot keeps them


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


# --------------------------------------------------------------------------------------------
# Export: bags -> LeRobot


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


# --------------------------------------------------------------------------------------------
# Import: LeRobot -> bags


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
    from selfimprove_ros.core.episode_events import make_event
    from selfimprove_ros.core.joints import JOINT_NAMES

    from .bag_streams import BOOL, IMAGE, JOINT_STATE, STRING, typestore
    ts = typestore()
    Header, Time = ts.types['std_msgs/msg/Header'], ts.types['builtin_interfaces/msg/Time']
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

    def header(stamp, frame_id=''):
        return Header(stamp=Time(sec=stamp // 10**9, nanosec=stamp % 10**9), frame_id=frame_id)

    def string(text):
        return ts.serialize_cdr(ts.types[STRING](data=text), STRING)

    def joint_state(stamp, positions):
        # float32 values widen to float64 exactly, so a round trip keeps every joint value.
        return ts.serialize_cdr(ts.types[JOINT_STATE](
            header=header(stamp), name=list(JOINT_NAMES),
            position=np.asarray(positions, dtype=np.float64), velocity=np.zeros(0),
            effort=np.zeros(0)), JOINT_STATE)

    first = int(ticks_ns[0])
    writer.write(name['events'], string(make_event(
        'start', episode_id=episode.episode_id, robot=episode.robot, task=episode.task,
        instruction=episode.instruction, policy_version=episode.policy_version)), first)
    for k, stamp in enumerate(int(t) for t in ticks_ns):
        writer.write(name['joints'], joint_state(stamp, streams['joints'][k]), stamp)
        for cam, frames in streams['images'].items():
            rgb = np.ascontiguousarray(frames[k])
            writer.write(ns + topics.camera_topic(cam), ts.serialize_cdr(ts.types[IMAGE](
                header=header(stamp, cam), height=rgb.shape[0], width=rgb.shape[1],
                encoding='rgb8', is_bigendian=0, step=rgb.shape[1] * 3,
                data=rgb.reshape(-1)), IMAGE), stamp)
        if streams['sim_success'] is not None:
            writer.write(name['success'], ts.serialize_cdr(ts.types[BOOL](
                data=bool(streams['sim_success'][k])), BOOL), stamp)
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
