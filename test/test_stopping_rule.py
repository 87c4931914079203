"""Stage-2 stopping rule and version history: synthetic histories with known answers."""

import json

import pytest
from scipy.stats import fisher_exact

from selfimprove_ros.training.stopping_rule import (decide, drop_p_value, history_table,
                                                    plot_history, StoppingConfig)
from selfimprove_ros.training.version_history import VersionHistory, wilson_interval

PEAK = (('v0', None, 12, 30), ('v1', 'v0', 21, 30), ('v2', 'v1', 9, 30))


def history_of(*versions, sim=True):
    """Build a history from (version, parent, successes, episodes) in deployment order."""
    history = VersionHistory()
    for version, parent, successes, episodes in versions:
        add(history, version, parent, successes, episodes, sim)
    return history


def add(history, version, parent, successes, episodes, sim=True):
    history.add_version(version, parent)
    for index in range(episodes):
        history.add_episode(version, index < successes, (index < successes) if sim else None)


def test_steady_improvement_continues():
    history = history_of(('v0', None, 10, 30), ('v1', 'v0', 15, 30), ('v2', 'v1', 21, 30))
    decision = decide(history, 'v2')
    assert decision.action == 'continue' and decision.best_version == 'v2'
    assert decision.signal == 'sim' and 'best so far' in decision.reason


def test_clear_drop_after_peak_rolls_back_to_the_peak():
    decision = decide(history_of(*PEAK), 'v2')
    assert (decision.action, decision.best_version) == ('rollback', 'v1')
    assert decision.p_value == pytest.approx(0.00206, abs=1e-5)
    assert decision.drop == pytest.approx(0.4) and decision.rollbacks_in_a_row == 1
    assert decision.reason == ('v2 succeeded 9/30 (30%, 95% CI 17-48%) vs best v1 21/30 (70%, '
                               '95% CI 52-83%) [simulator ground truth]: p=0.002 < 0.05, '
                               'rolling back to v1')


def test_second_drop_in_a_row_stops_and_keeps_the_best():
    history = history_of(*PEAK)
    history.record_rollback('v2', 'v1')
    history.add_episode('v1', True, True)  # the best runs again after the rollback
    add(history, 'v3', 'v1', 8, 30)
    decision = decide(history, 'v3')
    assert (decision.action, decision.best_version) == ('stop', 'v1')
    assert decision.rollbacks_in_a_row == 2 and 'patience 2' in decision.reason
    assert 'p<0.001 < 0.05' in decision.reason and decision.reason.endswith('stopping with v1')
    assert decide(history, 'v3', StoppingConfig(patience=3)).action == 'rollback'


def test_a_good_version_between_drops_resets_the_streak():
    history = history_of(*PEAK)
    history.record_rollback('v2', 'v1')
    add(history, 'v3', 'v1', 22, 30)
    add(history, 'v4', 'v3', 8, 30)
    decision = decide(history, 'v4')
    assert (decision.action, decision.rollbacks_in_a_row) == ('rollback', 1)
    assert decision.best_version == 'v3'


def test_not_enough_episodes_continues_even_after_a_bad_start():
    history = history_of(*PEAK[:2], ('v2', 'v1', 0, 10))
    decision = decide(history, 'v2')
    assert decision.action == 'continue' and decision.p_value is None
    assert '10 of 20 episodes' in decision.reason
    assert decide(history, 'v2', StoppingConfig(min_episodes=10)).action == 'rollback'


def test_small_or_insignificant_drops_continue():
    history = history_of(('v0', None, 21, 30), ('v1', 'v0', 17, 30))
    decision = decide(history, 'v1')
    assert decision.action == 'continue' and decision.p_value > 0.05
    big = history_of(('v0', None, 800, 1000), ('v1', 'v0', 760, 1000))
    decision = decide(big, 'v1')
    assert decision.p_value < 0.05 and decision.action == 'continue'
    assert 'min_drop' in decision.reason
    assert decide(big, 'v1', StoppingConfig(min_drop=0.02)).action == 'rollback'


def test_a_lucky_small_sample_does_not_become_best():
    history = history_of(('v0', None, 40, 50), ('v1', 'v0', 3, 3))
    assert history.best('sim', min_episodes=20) == 'v0'
    assert history.best('sim', min_episodes=1) == 'v0'  # lower bound 0.44 < 0.67
    assert history.best('sim', min_episodes=60) is None


def test_max_iterations_stops_with_the_best():
    history = history_of(('v0', None, 10, 30), ('v1', 'v0', 15, 30), ('v2', 'v1', 21, 30))
    decision = decide(history, 'v2', StoppingConfig(max_iterations=2))
    assert (decision.action, decision.best_version) == ('stop', 'v2')
    assert 'max_iterations 2' in decision.reason
    assert decide(history, 'v2', StoppingConfig(max_iterations=3)).action == 'continue'


def test_signal_auto_uses_sim_only_when_every_episode_has_it():
    history = history_of(('v0', None, 20, 30), sim=False)
    add(history, 'v1', 'v0', 5, 30)
    assert history.resolve_kind('auto') == 'detected'
    history.add_episode('v0', True, None)
    assert history.rate('v0', 'sim').trials == 0 and history.rate('v0').kind == 'detected'
    real = history_of(('v0', None, 20, 30), ('v1', 'v0', 5, 30), sim=False)
    assert decide(real, 'v1').signal == 'detected'
    assert '[success detector]' in decide(real, 'v1').reason
    assert decide(real, 'v1', StoppingConfig(signal='sim')).action == 'continue'


def test_detected_and_sim_are_counted_apart():
    history = VersionHistory()
    history.add_episode('v0', True, False)
    history.add_episode('v0', True, None)
    history.add_episode('v0', False, True)
    detected, sim = history.rate('v0', 'detected'), history.rate('v0', 'sim')
    assert (detected.successes, detected.trials) == (2, 3)
    assert (sim.successes, sim.trials) == (1, 2)
    assert (detected.low, detected.high) == pytest.approx(wilson_interval(2, 3))


def test_p_value_matches_scipy_fisher_exact():
    for best, current in (((21, 30), (9, 30)), ((3, 3), (0, 5)), ((5, 20), (15, 20)),
                          ((0, 10), (0, 10)), ((40, 50), (30, 45))):
        expected = fisher_exact([[best[0], best[1] - best[0]],
                                 [current[0], current[1] - current[0]]],
                                alternative='greater').pvalue
        assert drop_p_value(*best, *current) == pytest.approx(expected, rel=1e-9)


def test_json_round_trip(tmp_path):
    history = history_of(*PEAK)
    history.record_rollback('v2', 'v1')
    history.add_episode('v3', False, None, parent='v1')
    text = json.dumps(history.to_dict())
    again = VersionHistory.from_dict(json.loads(text))
    assert again.to_dict() == history.to_dict() and again.versions() == ['v0', 'v1', 'v2', 'v3']
    assert again.record('v2').rolled_back_to == 'v1' and again.record('v3').parent == 'v1'
    loaded = VersionHistory.load(history.save(tmp_path / 'history.json'))
    assert loaded.to_dict() == history.to_dict()
    assert [p.name for p in tmp_path.iterdir()] == ['history.json']


def test_bad_data_and_config_name_the_problem():
    data = history_of(*PEAK).to_dict()
    data['versions'][1]['detected_successes'] = 31
    with pytest.raises(ValueError, match=r'v1: detected_successes \(31\) exceeds episodes'):
        VersionHistory.from_dict(data)
    with pytest.raises(ValueError, match='parent'):
        history_of(*PEAK).add_version('v2', 'v0')
    with pytest.raises(KeyError, match="unknown policy version 'v9'"):
        decide(history_of(*PEAK), 'v9')
    with pytest.raises(ValueError, match="alpha must be in .0, 1., got 1.5"):
        StoppingConfig(alpha=1.5)
    with pytest.raises(ValueError, match="patience must be an integer >= 1, got 0"):
        StoppingConfig(patience=0)
    with pytest.raises(ValueError, match="signal must be one of .*got 'truth'"):
        StoppingConfig(signal='truth')


def test_table_shows_versions_rates_and_markers():
    history = history_of(*PEAK)
    history.record_rollback('v2', 'v1')
    add(history, 'v3', 'v1', 2, 5, sim=False)
    table = history_table(history, config=StoppingConfig(signal='detected'))
    lines = table.splitlines()
    assert lines[0].split()[:3] == ['version', 'parent', 'episodes']
    v1, v2, v3 = (next(line for line in lines if line.startswith(v)) for v in ('v1', 'v2', 'v3'))
    assert '70% [52-83]' in v1 and v1.endswith('best')
    assert '30% [17-48]' in v2 and v2.endswith('rolled back to v1')
    assert '40% [12-77]' in v3 and v3.split()[-1] == 'current' and ' - ' in v3


def test_plot_is_written(tmp_path):
    history = history_of(*PEAK)
    history.record_rollback('v2', 'v1')
    path = plot_history(history, str(tmp_path / 'history.png'))
    with open(path, 'rb') as handle:
        assert handle.read(8) == b'\x89PNG\r\n\x1a\n'
    assert (tmp_path / 'history.png').stat().st_size > 1000
    assert plot_history(VersionHistory(), str(tmp_path / 'empty.png'))
