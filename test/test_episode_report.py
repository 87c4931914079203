"""The per-version report: success rates with intervals and how close episodes came."""

from types import SimpleNamespace

import numpy as np
import pytest

from selfimprove_ros.training import episode_report as report_module
from selfimprove_ros.training.episode_report import episode_report, rate


def labels(path, curve, outcome, sim_success):
    return SimpleNamespace(path=f'{path}/steps_to_go.npz', episode_id=path, outcome=outcome,
                           sim_success=sim_success, steps_to_go=np.asarray(curve, float))


def test_report_counts_successes_and_summarises_the_curves(tmp_path, monkeypatch):
    fake = {'a': labels('a', [30, 20, 10, 2], 'success', True),
            'b': labels('b', [30, 25, 15, 18, 21], 'timeout', False),
            'c': labels('c', [30, 28], 'fault', None)}
    monkeypatch.setattr(report_module, 'read_labels', lambda path: fake[path])
    report = episode_report(['a', 'b', 'c'], str(tmp_path), 'v1')
    assert report['sim_success']['successes'] == 1 and report['sim_success']['trials'] == 2
    assert report['detected_success']['successes'] == 1
    assert report['detected_success']['trials'] == 3
    assert report['mean_closest_steps_to_go'] == pytest.approx((2 + 15 + 28) / 3)
    assert report['mean_final_steps_to_go'] == pytest.approx((2 + 21 + 28) / 3)
    # The mean curve averages only the episodes still running at each tick.
    assert report['mean_steps_to_go'][:2] == [30.0, pytest.approx(73 / 3, abs=0.01)]
    assert report['mean_steps_to_go'][4] == 21.0
    assert (tmp_path / 'eval.json').exists() and (tmp_path / 'eval_steps_to_go.png').exists()


def test_no_episodes_is_an_error_not_an_empty_report(tmp_path):
    with pytest.raises(ValueError, match='no labelled episodes'):
        episode_report([], str(tmp_path), 'v1')


def test_rate_reads_as_a_fraction_with_its_interval():
    assert rate(3, 10)['describe'].startswith('3/10 (30%, 95% CI ')
    assert rate(0, 0)['trials'] == 0
