"""The LeRobot v3.0 dataset layout (ALOHA) as this project writes and reads it.

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
