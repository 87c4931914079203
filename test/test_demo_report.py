"""The demo's closing report: greedy evaluations judged by the stopping rule."""

import json
import os

import pytest


def _row(version, sim_successes, trials, detected_successes):
    episodes = [{'outcome': 'success' if i < detected_successes else 'timeout',
                 'sim_success': i < sim_successes} for i in range(trials)]
    return {'version': version, 'episodes': episodes}


def test_the_demo_report_tables_plots_and_judges_every_version(tmp_path, capsys):
    from selfimprove_ros.cli.demo import judge
    # it1's detector said 21/21: an error bar that ends exactly at 100 % (it crashed the plot).
    history = [_row('stage1', 12, 20, 14), _row('it1', 15, 21, 21), _row('it2', 3, 20, 9)]
    judge(history, str(tmp_path), min_episodes=20)
    printed = capsys.readouterr().out
    # it2 fell from it1's 75 % to 15 %: the rule would roll back to the best version, it1.
    assert 'rolling back to it1' in printed
    table = printed.split('success per version')[1]
    assert table.index('stage1') < table.index('it1') < table.index('it2')
    assert '71% [50-86]' in table and '15% [5-36]' in table
    assert os.path.getsize(tmp_path / 'version_history.png') > 1000
    saved = json.loads((tmp_path / 'version_history.json').read_text())
    assert 'it2' in json.dumps(saved) and 'stage1' in json.dumps(saved)


def test_the_demo_says_plainly_whether_the_gain_is_significant():
    from selfimprove_ros.cli.demo import gain_verdict
    assert 'a significant gain' in gain_verdict(_row('stage1', 5, 20, 5), _row('it3', 15, 20, 15))
    assert 'NOT significant' in gain_verdict(_row('stage1', 12, 20, 5), _row('it3', 14, 20, 15))
    assert 'NO gain' in gain_verdict(_row('stage1', 12, 20, 5), _row('it3', 12, 20, 15))


def test_the_demos_practice_settings_take_overrides_and_name_a_bad_one():
    from selfimprove_ros.cli.demo import practice_config, SIZES
    config = practice_config(SIZES[False], ['lr=3e-5'])
    assert (config.objective, config.sampler, config.lr) == ('filtered_bc', 'chunk_quantile',
                                                             3e-5)
    paper = practice_config(SIZES[False], ['returns_until=closest_approach'],
                            objective='reinforce')
    assert (paper.objective, paper.returns_until, paper.baseline) == (
        'reinforce', 'closest_approach', 'step')
    with pytest.raises(ValueError, match="baseline must be one of .*, got 'median'"):
        practice_config(SIZES[False], ['baseline=median'])
    assert config.success_bonus == 0.0  # transfer_cube: the detector alone judges
    assert practice_config(SIZES[False], task='insertion').success_bonus > 0


def test_a_second_demo_sets_the_first_ones_story_aside_and_keeps_stage1(tmp_path, capsys):
    from selfimprove_ros.cli.demo import set_aside_previous_story
    out = tmp_path / 'transfer_cube'
    (out / 'improve').mkdir(parents=True)
    (out / 'improve' / 'state.json').write_text('{"iteration": 3}')
    (out / 'report.json').write_text('{}')
    (out / 'sft').mkdir()  # Stage 1 from --from-scratch: resumable, stays
    set_aside_previous_story(str(out))
    assert sorted(os.listdir(out)) == ['previous', 'sft']
    [aside] = os.listdir(out / 'previous')
    assert (out / 'previous' / aside / 'improve' / 'state.json').read_text() == '{"iteration": 3}'
    assert 'previous run of the demo was moved' in capsys.readouterr().out
    set_aside_previous_story(str(out))  # nothing left to move: no second folder
    assert len(os.listdir(out / 'previous')) == 1


def test_the_demo_tells_the_whole_story_at_the_smallest_sizes(tmp_path, monkeypatch, capsys):
    """Baseline, practice with one filtered-BC iteration, evaluation, the node graph, report."""
    from selfimprove_ros.cli import demo
    from selfimprove_ros.cli.main import main
    monkeypatch.setitem(demo.SIZES, False, {**demo.SIZES[False], 'eval_episodes': 2,
                                            'graph_episodes': 1, 'practice_episodes': 6})
    assert main(['demo', '--out', str(tmp_path), '--max-ticks', '12', '--set',
                 'decisions_per_iteration=6', 'updates_per_iteration=2', 'batch_size=2']) == 0
    out = capsys.readouterr().out
    report = json.loads((tmp_path / 'transfer_cube' / 'report.json').read_text())
    versions = [row['version'] for row in report['history']]
    assert versions[0] == 'transfer_cube-stage1' and '-it' in versions[-1], versions
    assert all(row['sim_success']['trials'] == 2 for row in report['history'])
    assert 'through the node graph: simulator' in out and 'fits the chunks of the episodes' in out
