"""Settings of the episode recorder."""

from dataclasses import dataclass

from selfimprove_ros.core.config import require, setting
from selfimprove_ros.core.topics import CAMERA_NAMES


@dataclass
class RecorderConfig:
    """Where episode bags go and what they contain."""

    bag_dir: str = setting('runs/bags', 'Directory that receives one bag directory per episode')
    robot_name: str = setting('', 'Robot name in the episode metadata; empty = the namespace')
    cameras: list = setting(list(CAMERA_NAMES), 'Cameras whose image topics are recorded')
    record_sim_topics: bool = setting(True, 'Also record sim/state and sim/success')
    queue_depth: int = setting(
        100, 'Messages each subscription may hold while the recorder is busy writing; lockstep '
        'sim runs faster than real time and a shallow queue silently drops messages')
    input_timeout_s: float = setting(
        2.0, 'Answer `start` with `recording` only while joint states arrived within this long '
        '[s, wall]: right after start-up DDS may not have matched the robot yet, and an episode '
        'would be recorded without its joint states')
    end_grace_s: float = setting(
        0.5, "After `end`, the longest wall time [s] the bag stays open for the camera frames of "
        "the episode's last joint state (a sim camera renders a tick after the robot publishes "
        'it); only camera frames are written then')
    max_chunk_s: float = setting(
        0.5, 'Longest time [s] a message may sit in memory before it reaches the file: '
        'what a recorder crash can lose')

    def __post_init__(self):
        require(bool(self.bag_dir), 'bag_dir must name a directory')
        unknown = [cam for cam in self.cameras if cam not in CAMERA_NAMES]
        require(not unknown, f'unknown cameras {unknown}; choose from {list(CAMERA_NAMES)}')
        require(self.queue_depth >= 1, f'queue_depth must be >= 1, got {self.queue_depth!r}')
        require(self.input_timeout_s > 0,
                f'input_timeout_s must be > 0 s, got {self.input_timeout_s!r}')
        require(0 <= self.end_grace_s <= 5.0,
                f'end_grace_s must be in [0, 5] s, got {self.end_grace_s!r}')
        require(0 < self.max_chunk_s <= 1.0,
                f'max_chunk_s must be in (0, 1] s so a crash loses at most a second, '
                f'got {self.max_chunk_s!r}')
