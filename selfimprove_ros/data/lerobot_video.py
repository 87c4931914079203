"""Videos of a LeRobot dataset: encode and decode with the ffmpeg binary imageio-ffmpeg bundles."""

import os
import subprocess
import tempfile

import numpy as np

from selfimprove_ros.data.lerobot_format import CODECS


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
