"""Rolling frame statistics for a camera stream: rate, drops and age."""

from collections import deque

import numpy as np


class FrameStats:
    """Counts frames over a sliding window of wall/ROS time.

    A drop is a frame the source produced that never reached the topic: known exactly when the
    source numbers its frames (RealSense, the simulator's ticks), otherwise inferred from an
    interval longer than 1.5 expected periods.
    """

    def __init__(self, expected_period_s: float, window_s: float = 5.0):
        if not expected_period_s > 0 or not window_s > 0:
            raise ValueError(f'expected_period_s={expected_period_s!r} and '
                             f'window_s={window_s!r} must be > 0')
        self.expected_period_s = expected_period_s
        self.window_s = window_s
        self._frames = deque()  # (publish_s, age_s, dropped_before)
        self._last_number = None
        self._last_capture_s = None
        self.total_frames = 0
        self.total_drops = 0

    def record(self, capture_s: float, publish_s: float, frame_number=None):
        """Note one published frame captured at `capture_s` and published at `publish_s`."""
        dropped = 0
        if frame_number is not None and self._last_number is not None:
            dropped = max(0, frame_number - self._last_number - 1)
        elif frame_number is None and self._last_capture_s is not None:
            gap = capture_s - self._last_capture_s
            dropped = max(0, int(round(gap / self.expected_period_s)) - 1)
        self._last_number = frame_number
        self._last_capture_s = capture_s
        self.total_frames += 1
        self.total_drops += dropped
        self._frames.append((publish_s, publish_s - capture_s, dropped))
        self._trim(publish_s)

    def _trim(self, now_s):
        while self._frames and self._frames[0][0] < now_s - self.window_s:
            self._frames.popleft()

    def summary(self, now_s: float) -> dict:
        """Rate [Hz], drops, drop percentage and age percentiles [ms] over the window."""
        self._trim(now_s)
        frames = len(self._frames)
        drops = sum(f[2] for f in self._frames)
        ages_ms = np.array([f[1] * 1e3 for f in self._frames]) if frames else np.zeros(1)
        span_s = (now_s - self._frames[0][0]) if frames > 1 else self.window_s
        return {
            'frames': frames,
            'rate_hz': (frames - 1) / span_s if frames > 1 and span_s > 0 else 0.0,
            'drops': drops,
            'drop_pct': 100.0 * drops / max(1, frames + drops),
            'age_ms_p50': float(np.percentile(ages_ms, 50)),
            'age_ms_p99': float(np.percentile(ages_ms, 99)),
            'age_ms_max': float(ages_ms.max()),
        }
