"""Success-filtered behaviour cloning: which chunks it fits, that it moves the policy towards
them and not towards the failures', its null control, and its settings."""

import json

import numpy as np
import pytest
import torch

from episode_factory import synthetic_episode, tiny_stage1
from selfimprove_ros.cli.practice import practice_config
from selfimprove_ros.training.filtered_bc import chosen_rows, fit_successes
from selfimprove_ros.training.improve_run import ImproveRun
from selfimprove_ros.training.policy_gradient import Decisions, episode_success
from selfimprove_ros.training.reinforce_config import ReinforceConfig

SUCCESS_TOKEN, FAILURE_TOKEN = 12, 3


@pytest.fixture(scope='module')
def stage1(tmp_path_factory):
    return tiny_stage1(tmp_path_factory.mktemp('stage1'))


def decisions_of(verdicts, tokens_width=28):
    """Three decisions per episode; a success's chunks are all SUCCESS_TOKEN, a failure's not."""
    parts = []
    for index, success in enumerate(verdicts):
        episode = synthetic_episode(index, ticks=6)
        token = SUCCESS_TOKEN if success else FAILURE_TOKEN
        parts.append(Decisions(
            images=episode.images['cam_high'][:3, None], joints=episode.joints[:3],
            instructions=[episode.instruction] * 3,
            tokens=np.full((3, tokens_width), token, dtype=np.int64),
            returns=np.zeros(3, np.float32), rewards=np.zeros(3, np.float32),
            episode_ids=[f'ep{index}'] * 3, steps=np.arange(3),
            successes=np.full(3, success)))
    return Decisions.concatenate(parts)


def test_only_the_successful_episodes_chunks_are_chosen():
    decisions = decisions_of([True, False, True, False, False])
    rows = chosen_rows(decisions, shuffle=False, rng=np.random.default_rng(0))
    assert rows.tolist() == [0, 1, 2, 6, 7, 8]


@pytest.mark.parametrize('outcome, bonus, sim, counted', [
    ('success', 0.0, None, True),      # the detector's verdict, on a robot
    ('failure', 0.0, True, False),     # transfer_cube: the simulator's verdict stays out
    ('failure', 5.0, True, True),      # insertion: what the cameras cannot see, the sim knows
    ('failure', 5.0, False, False),
    ('failure', 5.0, None, False)])    # a bonus but no simulator: nothing to count
def test_the_simulators_verdict_counts_only_where_its_success_has_a_bonus(
        outcome, bonus, sim, counted):
    from types import SimpleNamespace
    labels = SimpleNamespace(outcome=outcome, success_bonus=bonus, sim_success=sim)
    assert episode_success(labels) is counted


def test_the_null_control_chooses_as_many_episodes_blind_to_their_verdicts():
    decisions = decisions_of([True] + [False] * 9)
    picked = [{decisions.episode_ids[i]
               for i in chosen_rows(decisions, True, np.random.default_rng(seed))}
              for seed in range(20)]
    assert all(len(episodes) == 1 for episodes in picked)  # one success, one episode
    assert len(set.union(*picked)) > 1  # and not always the successful one


def probabilities(run, decisions, token):
    """Mean probability of `token` over every position of the decisions' chunks."""
    with torch.no_grad():
        logits = run.model(torch.from_numpy(decisions.images),
                           torch.from_numpy(decisions.joints),
                           torch.from_numpy(run.codec.encode_instructions(
                               decisions.instructions)))[0]
    return logits.softmax(-1)[..., token].mean().item()


def test_an_iteration_moves_the_policy_towards_the_successes_and_not_the_failures(
        stage1, tmp_path):
    config = ReinforceConfig(objective='filtered_bc', updates_per_iteration=30, batch_size=4,
                             lr=1e-2, soft_target_sigma_bins=0.0)
    run = ImproveRun(str(tmp_path / 'run'), config, stage1, log=lambda *_: None)
    decisions = decisions_of([True, False, False])
    before = (probabilities(run, decisions, SUCCESS_TOKEN),
              probabilities(run, decisions, FAILURE_TOKEN))
    run.iterate([], decisions)  # the run trains with the objective its settings name
    with open(tmp_path / 'run' / 'metrics.jsonl') as stream:
        metrics = json.loads(stream.readline())
    after = (probabilities(run, decisions, SUCCESS_TOKEN),
             probabilities(run, decisions, FAILURE_TOKEN))
    assert after[0] > 0.5 > before[0]  # the successes' chunks became the policy's
    assert after[1] <= before[1]  # twice as many failures taught nothing
    assert metrics['fitted_episodes'] == 1 and metrics['fitted_decisions'] == 3
    assert metrics['updates'] == 30 and metrics['kl'] > 0
    assert run.optimizer.param_groups[0]['lr'] == config.lr  # ready for the next iteration


def test_without_a_success_an_iteration_leaves_the_policy_as_it_was(stage1, tmp_path):
    config = ReinforceConfig(objective='filtered_bc', updates_per_iteration=5, batch_size=4)
    run = ImproveRun(str(tmp_path / 'run'), config, stage1, log=lambda *_: None)
    before = {k: v.clone() for k, v in run.model.state_dict().items()}
    metrics = fit_successes(run.model, run.optimizer, decisions_of([False, False]), run.codec,
                            config, run.device, step_seed=1)
    assert metrics['updates'] == 0
    assert all(torch.equal(v, before[k]) for k, v in run.model.state_dict().items())


def test_settings_name_a_bad_objective_and_size_its_iteration():
    with pytest.raises(ValueError, match="objective must be one of .*, got 'ppo'"):
        ReinforceConfig(objective='ppo')
    with pytest.raises(ValueError, match='decisions_per_iteration must be >= 0'):
        ReinforceConfig(decisions_per_iteration=-1)
    assert ReinforceConfig(updates_per_iteration=4, batch_size=8).samples_per_iteration == 32
    config = practice_config(objective='filtered_bc', overrides=['lr=3e-4'])
    assert config.objective == 'filtered_bc' and config.lr == 3e-4
    assert config.samples_per_iteration == config.decisions_per_iteration > 0
    assert practice_config(16, 64).objective == 'reinforce'
    with pytest.raises(ValueError, match="objective must be one of .*, got 'bc'"):
        practice_config(objective='bc')


@pytest.mark.parametrize('task, bonus', [('transfer_cube', 0.0), ('insertion', 5.0)])
def test_the_learner_records_the_success_bonus_its_stations_label_with(task, bonus):
    from selfimprove_ros.sim.aloha_sim import SUCCESS_BONUS
    config = practice_config(overrides=['lr=1e-4'], objective='filtered_bc', task=task)
    assert config.success_bonus == SUCCESS_BONUS[task] == bonus and config.lr == 1e-4
