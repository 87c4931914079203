"""Episode bags -> a LeRobot v3.0 dataset: the export run and the files it gathers."""

from dataclasses import dataclass, field
import os
import shutil
import tempfile
import time

import numpy as np

from selfimprove_ros.data.lerobot_columns import episode_frames, labels_of, probe_cameras
from selfimprove_ros.data.lerobot_format import (ACTION_TOKENS, CHUNKS_SIZE, DATA_FILES_SIZE_MB,
                                                 EPISODE_KEY, IMAGE_PREFIX, ROBOT_TYPE, STATE,
                                                 VIDEO_FILES_SIZE_MB, VIDEO_PATH)
from selfimprove_ros.data.lerobot_stats import image_histogram
from selfimprove_ros.data.lerobot_tables import info_features, write_dataset_files
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
            frames, columns = episode_frames(episode, labels_of(bag, episode, log), record)
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
        features = info_features(cameras, image_height, image_width, codec, fps, token_width)
        write_dataset_files(export, features, fps, robot_type)
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
