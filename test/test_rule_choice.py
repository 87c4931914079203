"""Each reward model's success rule, chosen by an audit of its own rollouts and read back from
its manifest by the detector, the audit command and the launcher."""

import os
import types

import pytest

from selfimprove_ros.core.success_detection import (audited_rule, EpisodeSuccessMonitor,
                                                    SuccessConfig)
from selfimprove_ros.graph.description import build_graph, config_path, load_config
from selfimprove_ros.training.rule_choice import choose_rule
from test_detector_audit import episode

HORIZON = 150.0  # "not within the horizon": at or above failure_steps (100)
# A failure whose d jumps from "failed" straight to "done": caught only by a look-back >= 1.
FOOLED = [HORIZON, HORIZON, 0.5, 0.5, 0.5, 0.5]
# A success that left "failed" two evaluations before its streak: a look-back of 3 rejects it.
RECOVERED = [HORIZON, 9, 9, 0.5, 0.5, 0.5]
CLEAN = [9, 9, 9, 0.5, 0.5, 0.5]  # a success any rule finds
HONEST = [9] * 6                  # a failure no rule calls a success


def rollouts(fooled=1, honest=19, recovered=1, clean=1):
    items = ([(False, FOOLED)] * fooled + [(False, HONEST)] * honest
             + [(True, RECOVERED)] * recovered + [(True, CLEAN)] * clean)
    return [(episode(ok, success_tick=5 if ok else None, name=f'e{i}'), d)
            for i, (ok, d) in enumerate(items)]


def test_the_longest_look_back_with_the_best_recall_under_five_percent_false_is_chosen():
    choice = choose_rule(rollouts())  # look-back 0: 1 false in 20 (5 %) - allowed
    assert choice.meets_target and choice.config.recovery_ticks == 2  # 0, 1, 2 all find 2/2
    by_ticks = {row['recovery_ticks']: row for row in choice.candidates}
    assert by_ticks[0]['false_positive']['count'] == 1
    assert by_ticks[1]['false_positive']['count'] == 0
    assert by_ticks[3]['recall']['count'] == 1 and by_ticks[10]['recall']['count'] == 1
    assert '* recovery_ticks  2: false positives 0/20, recall 2/2' in choice.describe()


def test_a_look_back_is_chosen_for_its_recall_not_its_strictness():
    # Four recovered successes and one clean: 10 evaluations would find 1 in 5.
    choice = choose_rule(rollouts(recovered=4), candidates=(3, 10, 2))
    assert choice.config.recovery_ticks == 2
    assert choose_rule(rollouts(recovered=4), candidates=(3, 10)).config.recovery_ticks == 10


def test_no_honest_rule_is_said_plainly_and_the_fewest_false_positives_win():
    always_fooled = [(episode(False, name='f'), [0.5] * 6), *rollouts(fooled=0, honest=1)]
    choice = choose_rule(always_fooled)
    assert not choice.meets_target
    assert choice.config.recovery_ticks == 2  # every rule: 1 false in 2; recall 2/2 up to 2
    assert 'do not practise with this reward model' in choice.describe()
    entry = choice.manifest_entry({'greedy': 1})
    assert entry['recovery_ticks'] == 2 and entry['audit']['meets_target'] is False
    assert audited_rule({'success_rule': entry}) == SuccessConfig(recovery_ticks=2)


@pytest.mark.parametrize('items, message', [
    (rollouts(recovered=0, clean=0), '20 failures in 20'),
    (rollouts(fooled=0, honest=0), '0 failures in 2'),
])
def test_an_audit_without_both_outcomes_is_refused(items, message):
    with pytest.raises(ValueError, match=message):
        choose_rule(items)


def test_a_manifest_without_a_rule_keeps_the_parameters_and_a_bad_one_is_refused():
    assert audited_rule({'version': 'v'}) is None
    with pytest.raises(ValueError, match='must be a mapping'):
        audited_rule({'success_rule': 3})
    with pytest.raises(ValueError, match='recovery_ticks must be >= 0, got -1'):
        audited_rule({'success_rule': {'recovery_ticks': -1}})


def test_without_learned_detection_no_episode_ends_on_d_but_the_simulator_still_may():
    monitor = EpisodeSuccessMonitor(SuccessConfig(consecutive=1), use_sim_success=True,
                                    learned=False)
    monitor.start('a')
    assert monitor.steps_to_go({'episode_id': 'a', 'stamp_ns': 1, 'steps_to_go': 0}) is None
    assert monitor.sim_flag(True, 2)['source'] == 'sim'


def test_the_launcher_gives_the_detector_the_scorers_reward_model():
    config = load_config(config_path('aloha.yaml'))
    specs = {spec.name: spec for spec in build_graph(config, 'r', with_runtime=True)}
    scorer = specs['reward_scorer_node'].parameters['reward_model_dir']
    assert scorer and specs['success_detector_node'].parameters['reward_model_dir'] == scorer
    specs = {spec.name: spec for spec in build_graph(
        config, 'r', {'launch': {'reward_model_dir': '/models/s1'}}, with_runtime=True)}
    assert specs['success_detector_node'].parameters['reward_model_dir'] == '/models/s1'


def test_the_audit_command_uses_the_manifests_rule_unless_told_otherwise(tmp_path):
    from model_factory import tiny_model_dir, with_rule
    from selfimprove_ros.cli.audit import rule_of
    plain, _, _ = tiny_model_dir(tmp_path / 'plain')
    ruled = with_rule(plain, str(tmp_path / 'ruled'), {'recovery_ticks': 3, 'audit': {}})

    def args(model, **given):
        return types.SimpleNamespace(reward_model=model, **{
            'threshold_steps': None, 'consecutive': None, 'recovery_ticks': None, **given})

    assert rule_of(args(plain)) == (SuccessConfig(), 'default')
    assert rule_of(args(ruled)) == (SuccessConfig(recovery_ticks=3),
                                    'audited, from the manifest')
    config, source = rule_of(args(ruled, consecutive=5))
    assert config == SuccessConfig(consecutive=5, recovery_ticks=3) and 'consecutive' in source


def test_models_audits_half_greedy_half_sampled_whole_episodes(tmp_path, monkeypatch):
    from selfimprove_ros.cli import audit, evaluate, models
    from selfimprove_ros.training import run_export
    calls = []
    monkeypatch.setattr(run_export, 'export_run', lambda run, out, version: os.makedirs(out))

    def evaluate_(*args, **kw):
        calls.append((args, kw))
        return {'episodes': [{'bag': f'{kw["seed"]}-{n}'} for n in range(args[3])]}

    def score_bags(model, bags):
        assert bags == ['30000-0', '30000-1', '30000-2', *(f'30003-{n}' for n in range(4))]
        return 'v', rollouts(), []
    monkeypatch.setattr(evaluate, 'evaluate', evaluate_)
    monkeypatch.setattr(audit, 'score_bags', score_bags)
    entry = models.choose_success_rule('run', 'transfer_cube', str(tmp_path), 7)
    assert [(args[3], kw['seed'], kw['temperature'], kw['learned_detection'])
            for args, kw in calls] == [(3, 30000, 0.0, False), (4, 30003, 1.0, False)]
    assert entry['recovery_ticks'] == 2 and entry['audit']['rollouts'] == {
        'simulator_seeds': [30000, 30006], 'greedy': 3, 'temperature_1': 4}


def test_export_records_the_audited_rule_and_refuses_one_the_detector_would(tmp_path):
    from episode_factory import synthetic_sft_data, tiny_sft_config
    from selfimprove_ros.model.manifest import verify_model_dir
    from selfimprove_ros.training.run_export import export_run
    from selfimprove_ros.training.sft_trainer import SftTrainer
    SftTrainer(synthetic_sft_data(), str(tmp_path / 'sft'), tiny_sft_config(2),
               log=lambda *_: None).run()
    entry = choose_rule(rollouts()).manifest_entry({'greedy': 1})
    model = export_run(str(tmp_path / 'sft'), str(tmp_path / 'model'), success_rule=entry)
    manifest = verify_model_dir(model, required=('reward.onnx',))
    assert audited_rule(manifest) == SuccessConfig(recovery_ticks=2)
    with pytest.raises(ValueError, match='consecutive must be >= 1, got 0'):
        export_run(str(tmp_path / 'sft'), str(tmp_path / 'bad'),
                   success_rule={**entry, 'consecutive': 0})


def test_the_demo_says_which_rule_the_detector_uses_and_how_it_was_audited():
    from selfimprove_ros.cli.demo import success_rule_line
    assert success_rule_line({}).endswith('(defaults: this reward model records no audited rule)')
    entry = choose_rule(rollouts()).manifest_entry({'greedy': 22})
    assert success_rule_line({'success_rule': entry}) == (
        'success detector: d <= 1 ticks for 3 ticks, approached over 2 (audited on 22 whole '
        'rollouts: false positives 0/20, recall 2/2)')
