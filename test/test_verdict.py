"""A person's verdict on a robot episode: recorded in the bag, obeyed by datasets and the audit."""

import numpy as np
import pytest
import yaml

from selfimprove_ros.bag.verdict import record_verdict, recorded_verdict
from selfimprove_ros.cli.main import main
from selfimprove_ros.data.episode_loader import load_episodes
from selfimprove_ros.data.sft_samples import SftSamples
from test_dataset_loading import config, write_sim_bag


def robot_bag(root, episode_id='fooled', **options):
    """A bag the detector ended as a success, with no simulator to say otherwise."""
    return write_sim_bag(root, outcome='success', episode_id=episode_id, success_from=None,
                         **options).path


def test_a_verdict_is_written_into_episode_yaml_and_the_last_one_counts(tmp_path):
    path = robot_bag(tmp_path / 'bags')
    record = record_verdict(path, False, note='cube slipped', now_ns=0)
    assert record.extra['verdict'] == {'success': False, 'by': 'operator',
                                       'note': 'cube slipped',
                                       'time_utc': '1970-01-01T00:00:00.000Z'}
    with open(f'{path}/episode.yaml') as stream:
        on_disk = yaml.safe_load(stream)
    assert on_disk['outcome'] == 'success' and on_disk['extra']['verdict']['success'] is False
    assert recorded_verdict(record_verdict(path, True).extra) is True
    assert recorded_verdict({}) is None and recorded_verdict({'verdict': 'yes'}) is None


def test_a_running_or_foreign_bag_is_refused_and_the_others_still_get_theirs(tmp_path, capsys):
    good = robot_bag(tmp_path / 'bags', episode_id='good')
    live = write_sim_bag(tmp_path / 'bags', episode_id='live', finish=False).path
    with pytest.raises(ValueError, match='still marked running'):
        record_verdict(live, False)
    with pytest.raises(ValueError, match='has no episode.yaml'):
        record_verdict(str(tmp_path), False)
    assert main(['bag', 'verdict', '--failed', '--note', 'missed', live, good]) == 1
    captured = capsys.readouterr()
    assert f'REFUSED {live}' in captured.err and f'failed    {good}' in captured.out
    episodes, _ = load_episodes(good, config(tmp_path), log=lambda _: None)
    assert episodes[0].verified_success is False
    with pytest.raises(SystemExit):
        main(['bag', 'verdict', good])  # --failed or --succeeded is required


def test_a_failed_verdict_makes_a_detected_success_a_failure_for_training(tmp_path):
    path = robot_bag(tmp_path / 'bags')
    quiet = []
    episodes, _ = load_episodes(path, config(tmp_path), log=quiet.append)
    before = episodes[0]
    assert (before.verified_success, before.success_tick) == (None, 9)  # the outcome stands
    assert SftSamples(episodes, chunk_length=2).has_bc(np.arange(10)).all()

    record_verdict(path, False)
    notes = []
    taught_config = config(tmp_path, include_failed=True, failed_steps_to_go=150.0)
    episodes, _ = load_episodes(path, taught_config, log=notes.append)
    after = episodes[0]  # episode.yaml changed, so the cached episode is rebuilt
    assert (after.verified_success, after.success_tick, after.succeeded) == (False, None, False)
    assert any('a person recorded a failure' in note for note in after.extra['notes'])
    assert len(SftSamples(episodes, chunk_length=2)) == 0  # never cloned, no label at all
    taught = SftSamples(episodes, chunk_length=2, failed_steps_to_go=150.0)
    assert len(taught) == after.length and not taught.has_bc(np.arange(len(taught))).any()
    np.testing.assert_array_equal(taught.steps_to_go(np.arange(len(taught))), 150.0)


def test_the_audit_judges_robot_bags_by_their_verdicts(tmp_path, capsys):
    from model_factory import tiny_model_dir
    model, _, _ = tiny_model_dir(tmp_path / 'model')
    bags = tmp_path / 'bags'
    judged, unjudged = robot_bag(bags, 'judged'), robot_bag(bags, 'unjudged')
    record_verdict(judged, False)
    assert main(['audit', '--reward-model', model, str(bags)]) == 0
    printed = capsys.readouterr().out
    assert '1 episodes audited, 1 skipped' in printed
    assert f'skipping {unjudged}: ' in printed and 'bag verdict' in printed
