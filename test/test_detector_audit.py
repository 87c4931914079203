"""The detector audit: the success rule replayed over episodes, judged by the simulator."""

import numpy as np
import pytest

from selfimprove_ros.core.success_detection import SuccessConfig
from selfimprove_ros.data.episode import Episode
from selfimprove_ros.training.detector_audit import (audit_episode, audit_table,
                                                     first_detection, summarise)

RULE = SuccessConfig(threshold_steps=2.0, consecutive=2)


def episode(sim_success, success_tick=None, length=6, version='v1', name='ep'):
    ticks = np.arange(length, dtype=np.int64) * 100_000_000
    return Episode(bag_path=f'/bags/{name}', episode_id=name, robot='r', task='t',
                   instruction='', policy_version=version, outcome='timeout', tick_ns=ticks,
                   joints=np.zeros((length, 14), np.float32),
                   actions=np.zeros((length, 14), np.float32), images={},
                   success_tick=success_tick, sim_success=sim_success)


def test_first_detection_needs_consecutive_ticks_under_the_threshold():
    assert first_detection([5, 1, 4, 2, 1.5, 9], RULE) == 4
    assert first_detection([5, 1, 4, 3, 1.5, 9], RULE) is None
    assert first_detection([1, float('nan'), 1, 1], RULE) == 3  # NaN breaks the streak


def test_false_positives_recall_and_lead_against_the_simulator():
    verdicts = [
        audit_episode(episode(False, name='fooled'), [9, 3, 1, 0.5, 1, 2], RULE),
        audit_episode(episode(False, name='honest'), [9, 8, 8, 7, 9, 9], RULE),
        audit_episode(episode(True, success_tick=5, name='early'), [6, 4, 2, 1, 1, 0], RULE),
        audit_episode(episode(True, success_tick=4, name='missed'), [6, 5, 4, 3, 3, 3], RULE),
    ]
    assert [v.detected_tick for v in verdicts] == [3, None, 3, None]
    summary = summarise(verdicts)
    assert summary['false_positive']['count'] == 1 and summary['false_positive']['of'] == 2
    assert summary['recall']['rate'] == 0.5 and summary['precision']['rate'] == 0.5
    low, high = summary['false_positive']['interval95']
    assert 0 < low < 0.5 < high < 1
    assert summary['median_detection_lead_ticks'] == 2.0  # detected at 3, simulator at 5
    assert summary['median_closest_d'] == {'sim_failure': 3.75, 'sim_success': 1.5}
    table = audit_table(verdicts)
    assert '1/2' in table and '50%' in table


def test_bags_without_the_simulator_verdict_or_with_wrong_lengths_are_refused():
    with pytest.raises(ValueError, match='no sim/success'):
        audit_episode(episode(None), [1] * 6, RULE)
    with pytest.raises(ValueError, match='5 steps-to-go values for 6 ticks'):
        audit_episode(episode(False), [1] * 5, RULE)


def test_table_groups_by_policy_version():
    verdicts = [audit_episode(episode(False, version=v, name=v), [0] * 6, RULE)
                for v in ('v1', 'v2')]
    lines = audit_table(verdicts).splitlines()
    assert [line.split()[0] for line in lines[1:]] == ['v1', 'v2', 'all']


def test_audit_command_reads_sim_bags_runs_the_model_and_skips_what_it_cannot_judge(
        tmp_path, capsys):
    import json

    from model_factory import tiny_model_dir
    from selfimprove_ros.cli.main import main
    from test_dataset_loading import write_sim_bag

    model, _, _ = tiny_model_dir(tmp_path / 'model')
    bags = tmp_path / 'bags'
    write_sim_bag(bags, outcome='success', episode_id='done', success_from=6)
    write_sim_bag(bags, outcome='success', episode_id='fooled', success_from=99)
    write_sim_bag(bags, outcome='success', episode_id='teleop', success_from=None)
    out = tmp_path / 'audit.json'
    assert main(['audit', '--reward-model', model, str(bags), '--out', str(out)]) == 0
    printed = capsys.readouterr().out
    assert '2 episodes audited, 1 skipped' in printed and 'no sim/success stream' in printed
    report = json.loads(out.read_text())
    assert report['reward_model'] == 'tiny-v1'
    assert report['summary']['sim_successes'] == 1
    assert report['summary']['false_positive']['of'] == 1
    by_id = {row['bag_path'].rsplit('_', 1)[-1]: row for row in report['episodes']}
    assert by_id['done']['sim_tick'] == 6 and by_id['fooled']['sim_tick'] is None
    assert all(row['ticks'] == 10 for row in report['episodes'])
