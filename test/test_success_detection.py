"""SuccessDetector (core/success_detection.py): debounced, approached successes only."""

import pytest

from selfimprove_ros.core.success_detection import SuccessConfig, SuccessDetector


def test_success_needs_k_consecutive_evaluations_under_the_threshold():
    detector = SuccessDetector(SuccessConfig(threshold_steps=2.0, consecutive=3))
    verdicts = [detector.update(d) for d in (5, 1.5, 1.0, 9, 2.0, float('nan'), 1, 1, 0.5, 20)]
    assert verdicts == [False] * 8 + [True, True]  # latched after the third in a row
    detector.reset()
    assert not detector.update(0.0)


def test_a_success_must_be_approached_not_jumped_to_from_failure():
    config = SuccessConfig(threshold_steps=1.0, consecutive=3, failure_steps=100.0,
                           recovery_ticks=4)
    detector = SuccessDetector(config)
    # The shape of every false detection measured in sim: "failed", then straight to "done".
    fooled = [40, 150, 150, 0, 0, 0, 0, 0, 0, 0, 0]
    assert not any(detector.update(d) for d in fooled)  # however long the streak lasts
    detector.reset()
    # The same streak after four evaluations free of failure counts (a real approach).
    assert [detector.update(d) for d in (150, 60, 30, 10, 5, 1, 0, 0)] == [False] * 7 + [True]
    detector.reset()
    assert [detector.update(d) for d in (150, 30, 10, 5, 1, 0, 0)] == [False] * 7  # 3 < 4
    off = SuccessDetector(SuccessConfig(threshold_steps=1.0, consecutive=3, recovery_ticks=0))
    assert [off.update(d) for d in fooled[:6]] == [False] * 5 + [True]
    with pytest.raises(ValueError, match='failure_steps must be above threshold_steps'):
        SuccessConfig(threshold_steps=5.0, failure_steps=5.0)
