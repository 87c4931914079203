"""Settings of one camera node."""

from dataclasses import dataclass

from selfimprove_ros.core.config import require, setting
from selfimprove_ros.core.topics import CAMERA_NAMES

SOURCES = ('sim', 'opencv', 'realsense', 'topic')


@dataclass
class CameraConfig:
    """Where one named ALOHA camera's frames come from and how they are published."""

    camera_name: str = setting('cam_high', f'ALOHA camera name, one of {list(CAMERA_NAMES)}')
    source: str = setting('sim', f'Frame source, one of {list(SOURCES)}')
    width: int = setting(0, 'Published width [px]; 0 keeps the source size (sim: 640)')
    height: int = setting(0, 'Published height [px]; 0 keeps the source size (sim: 480)')
    fps: float = setting(30.0, 'Frame rate [Hz] of opencv, realsense and a free-running sim '
                         'camera')
    free_run: bool = setting(
        False, 'sim: render the newest simulator state at `fps` on a wall-clock timer, stamped '
        'when rendered (as the device sources stamp on arrival), like a camera beside a robot '
        '(benchmarks/runtime_latency.py); false renders one frame per simulator tick, stamped '
        'with it (lockstep needs that)')
    device: str = setting('/dev/video0', 'opencv: device path or index')
    serial: str = setting('', 'realsense: serial number of this camera')
    input_topic: str = setting('', 'topic: an existing sensor_msgs/Image topic to republish')
    sim_task: str = setting('transfer_cube', 'sim: the task scene to render')
    diagnostics_period_s: float = setting(1.0, 'How often rate/drops/age are published [s]')

    def __post_init__(self):
        require(self.camera_name in CAMERA_NAMES,
                f'camera_name={self.camera_name!r}; choose one of {list(CAMERA_NAMES)}')
        require(self.source in SOURCES, f'source={self.source!r}; choose one of {list(SOURCES)}')
        require(self.width >= 0 and self.height >= 0 and (self.width > 0) == (self.height > 0),
                f'width={self.width}, height={self.height}: set both > 0, or both 0')
        require(self.fps > 0, f'fps must be > 0, got {self.fps!r}')
        require(self.source != 'realsense' or self.serial,
                'source=realsense needs the camera serial number (rs-enumerate-devices lists it)')
        require(self.source != 'topic' or self.input_topic,
                'source=topic needs input_topic, e.g. /camera/color/image_raw')
        require(self.diagnostics_period_s > 0,
                f'diagnostics_period_s must be > 0, got {self.diagnostics_period_s!r}')

    @property
    def frame_id(self) -> str:
        """Optical frame of this camera."""
        return f'{self.camera_name}_optical_frame'
