"""FrameStats (core/frame_stats.py): a camera's rate, frame age and dropped frames."""

import pytest

from selfimprove_ros.core.frame_stats import FrameStats


def test_frame_stats_rate_age_and_inferred_drops():
    stats = FrameStats(expected_period_s=0.1, window_s=10.0)
    for i in range(11):
        if i == 5:
            continue  # one frame lost
        stats.record(capture_s=i * 0.1, publish_s=i * 0.1 + 0.02)
    summary = stats.summary(now_s=1.02)
    assert summary['frames'] == 10
    assert summary['drops'] == 1
    assert summary['rate_hz'] == pytest.approx(9 / 1.0)
    assert summary['age_ms_p50'] == pytest.approx(20.0)


def test_frame_stats_counts_numbered_drops_exactly():
    stats = FrameStats(expected_period_s=0.1)
    for number in (1, 2, 5, 6):
        stats.record(capture_s=number * 0.1, publish_s=number * 0.1, frame_number=number)
    assert stats.total_drops == 2
