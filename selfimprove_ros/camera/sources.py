"""Camera devices: OpenCV/V4L2 and Intel RealSense. Both hand out RGB frames, blocking.

pyrealsense2 is imported only when a RealSense camera is opened, so machines without it can run
everything else.
"""

import numpy as np

REALSENSE_HELP = ('source=realsense needs pyrealsense2: pip install pyrealsense2 (or the '
                  'librealsense2 Debian package); or republish realsense2_camera\'s topic with '
                  'source=topic')


def resize(rgb, width: int, height: int):
    """Resize to width x height with area interpolation (the right filter for shrinking)."""
    if width == 0 or (rgb.shape[1] == width and rgb.shape[0] == height):
        return rgb
    import cv2
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)


class OpenCVSource:
    """Any camera OpenCV can open (V4L2 devices on Linux)."""

    def __init__(self, device: str, fps: float):
        import cv2
        self._cv2 = cv2
        target = int(device) if device.isdigit() else device
        self._capture = cv2.VideoCapture(target)
        if not self._capture.isOpened():
            raise RuntimeError(f'cannot open camera {device!r}: check the path (v4l2-ctl '
                               '--list-devices) and that no other process holds it')
        self._capture.set(cv2.CAP_PROP_FPS, fps)
        self._number = 0

    def read(self):
        """Block for the next frame; return (rgb, frame_number) or None at end of stream."""
        ok, bgr = self._capture.read()
        if not ok:
            return None
        self._number += 1
        return self._cv2.cvtColor(bgr, self._cv2.COLOR_BGR2RGB), None

    def close(self):
        """Release the device."""
        self._capture.release()


class RealSenseSource:
    """One Intel RealSense colour stream, selected by serial number."""

    def __init__(self, serial: str, width: int, height: int, fps: float):
        try:
            import pyrealsense2 as rs
        except ImportError as error:
            raise RuntimeError(f'{REALSENSE_HELP} ({error})') from error
        self._pipeline = rs.pipeline()
        config = rs.config()
        config.enable_device(serial)
        config.enable_stream(rs.stream.color, width or 640, height or 480, rs.format.rgb8,
                             int(fps))
        try:
            self._pipeline.start(config)
        except RuntimeError as error:
            raise RuntimeError(
                f'cannot start RealSense {serial}: {error}; is it plugged in '
                '(rs-enumerate-devices) and not used by another process?') from error

    def read(self):
        """Block for the next colour frame; return (rgb, device frame number)."""
        frames = self._pipeline.wait_for_frames()
        color = frames.get_color_frame()
        return np.asanyarray(color.get_data()).copy(), int(color.get_frame_number())

    def close(self):
        """Stop streaming."""
        self._pipeline.stop()
