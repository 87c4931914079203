"""Stage 2 against hand-worked numbers: chunk log-probabilities, the REINFORCE loss, decision
returns, on-policy filtering by version, and a run that resumes without double counting."""

import copy
import json
import math
import os
import shutil

import numpy as np
import pytest
import torch

from episode_factory import synthetic_episode, tiny_stage1
from selfimprove_ros.data.episode_labelling import FORMAT, read_labels, write_labels
from selfimprove_ros.model.manifest import read_manifest
from selfimprove_ros.training import improve_run
from selfimprove_ros.training.improve_run import ImproveRun
from selfimprove_ros.training.policy_gradient import (chunk_log_prob, closest_approach,
                                                      Decisions, episode_decisions, minibatches,
                                                      reinforce_loss)
from selfimprove_ros.training.reinforce_config import ReinforceConfig
from selfimprove_ros.training.run_export import run_checkpoint


def test_loss_is_minus_c_times_return_times_chunk_log_prob():
    logits = torch.log(torch.tensor([[[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]],
                                     [[0.2, 0.2, 0.6], [0.3, 0.3, 0.4]]]))
    tokens = torch.tensor([[0, 2], [2, 1]])
    expected_logp = [math.log(0.5) + math.log(0.8), math.log(0.6) + math.log(0.3)]
    assert torch.allclose(chunk_log_prob(logits, tokens), torch.tensor(expected_logp))
    returns = torch.tensor([2.0, -1.0])
    loss = reinforce_loss(logits, tokens, returns, loss_scale=0.05)
    by_hand = -(0.05 * 2.0 * expected_logp[0] + 0.05 * -1.0 * expected_logp[1]) / 2
    assert loss.item() == pytest.approx(by_hand, rel=1e-6)


def test_minibatches_never_reuse_a_decision():
    batches = minibatches(50, updates=4, batch_size=16, rng=np.random.default_rng(0))
    flat = np.concatenate(batches)
    assert len(batches) == 4 and len(set(flat.tolist())) == len(flat) == 48
    small = minibatches(10, updates=16, batch_size=64, rng=np.random.default_rng(0))
    assert sum(len(b) for b in small) == 10  # fewer decisions: smaller batches, no repeats


def labels_for(episode, versions, decisions, d, bag='/synthetic'):
    """Return a TickLabels-like dict for `episode` with decisions at `decisions`."""
    ticks = episode.length
    tokens = np.full((ticks, 28), -1, dtype=np.int64)
    for tick in decisions:
        tokens[tick] = tick % 16
    d = np.asarray(d, dtype=np.float32)
    rewards = np.zeros(ticks, dtype=np.float32)
    rewards[:-1] = d[:-1] - d[1:]
    return {'format': FORMAT, 'episode_id': episode.episode_id, 'outcome': episode.outcome,
            'instruction': episode.instruction, 'policy_version': versions[decisions[0]],
            'reward_version': 'r1', 'reward_sha256': 'x', 'success_bonus': 0.0,
            'sim_success': 1, 'tick_ns': episode.tick_ns, 'steps_to_go': d,
            'rewards': rewards, 'dropped_ticks': np.zeros(0, dtype=np.int64),
            'decision': tokens.max(axis=1) >= 0, 'action_tokens': tokens,
            'token_versions': np.asarray(versions, dtype=str)}


def test_decision_rewards_sum_the_chunk_and_returns_discount_per_decision(tmp_path):
    episode = synthetic_episode(0, ticks=6)
    d = [10, 9, 7, 6, 2, 0]  # decisions at ticks 0, 2, 4
    versions = ['v1'] * 6
    write_labels(str(tmp_path), labels_for(episode, versions, [0, 2, 4], d))
    labels = read_labels(str(tmp_path))
    decisions = episode_decisions(episode, labels, 'v1', gamma=0.5, cameras=['cam_high'])
    assert decisions.rewards.tolist() == [3.0, 5.0, 2.0]  # d0-d2, d2-d4, d4-d5
    assert decisions.returns.tolist() == [3.0 + 0.5 * 5.0 + 0.25 * 2.0, 5.0 + 0.5 * 2.0, 2.0]
    assert decisions.tokens[:, 0].tolist() == [0, 2, 4]
    assert np.array_equal(decisions.images[1, 0], episode.images['cam_high'][2])
    other = episode_decisions(episode, labels, 'v2', gamma=0.5, cameras=['cam_high'])
    assert len(other) == 0  # another version's tokens never train this one


def test_returns_can_end_at_the_closest_approach(tmp_path):
    episode = synthetic_episode(0, ticks=8)
    # An undetected success: d reaches 0.5, holds within a tick, then wanders off.
    d = [10, 8, 4, 0.5, 1.2, 6, 30, 40]  # decisions at ticks 0, 2, 4, 6
    write_labels(str(tmp_path), labels_for(episode, ['v1'] * 8, [0, 2, 4, 6], d))
    labels = read_labels(str(tmp_path))
    assert closest_approach(labels.steps_to_go) == 4  # the last tick within 1 of 0.5
    cut = episode_decisions(episode, labels, 'v1', gamma=0.5, cameras=['cam_high'],
                            returns_until='closest_approach')
    assert cut.rewards.tolist() == pytest.approx([6.0, 2.8])  # ends at tick 4
    assert cut.returns.tolist() == pytest.approx([6.0 + 0.5 * 2.8, 2.8])
    whole = episode_decisions(episode, labels, 'v1', gamma=0.5, cameras=['cam_high'])
    assert whole.rewards.tolist() == pytest.approx([6.0, 2.8, -28.8, -10.0])
    with pytest.raises(ValueError, match='returns_until'):
        ReinforceConfig(returns_until='best')


@pytest.fixture(scope='module')
def stage1(tmp_path_factory):
    return tiny_stage1(tmp_path_factory.mktemp('stage1'))


def practice_bag(root, index, version):
    """Write a labelled practice 'bag' (labels only: pending() reads nothing else)."""
    episode = synthetic_episode(index, ticks=6)
    episode.episode_id = f'{version}-ep{index}'
    bag = os.path.join(root, f'bag_{version}_{index}')
    os.makedirs(bag)
    open(os.path.join(bag, 'episode.yaml'), 'w').close()
    write_labels(bag, labels_for(episode, [version] * 6, [0, 2, 4], [10, 9, 7, 6, 2, 0]))
    return episode


def synthetic_decisions(episodes):
    parts = []
    for episode in episodes:
        parts.append(Decisions(
            images=episode.images['cam_high'][:3, None], joints=episode.joints[:3],
            instructions=[episode.instruction] * 3,
            tokens=np.zeros((3, 28), dtype=np.int64), returns=np.ones(3, np.float32),
            rewards=np.ones(3, np.float32), episode_ids=[episode.episode_id] * 3,
            steps=np.arange(3), successes=np.zeros(3, bool)))
    return Decisions.concatenate(parts)


def test_only_unconsumed_episodes_of_the_live_version_are_pending(stage1, tmp_path):
    bags = tmp_path / 'bags'
    mine = [practice_bag(str(bags), i, 's1') for i in range(2)]
    practice_bag(str(bags), 9, 'older-version')
    config = ReinforceConfig(updates_per_iteration=2, batch_size=2)
    run = ImproveRun(str(tmp_path / 'run'), config, stage1)
    pending = run.pending([str(bags)])
    assert sorted(labels.episode_id for _, labels in pending) == ['s1-ep0', 's1-ep1']
    new_dir = run.iterate(pending, synthetic_decisions(mine))
    assert os.path.exists(os.path.join(new_dir, 'manifest.json')) and run.version == 's1-it1'
    assert run.pending([str(bags)]) == []  # consumed, and s1's episodes are now off-policy


def test_a_run_killed_before_its_commit_redoes_the_iteration_once(stage1, tmp_path,
                                                                  monkeypatch):
    bags = tmp_path / 'bags'
    episodes = [practice_bag(str(bags), i, 's1') for i in range(2)]
    config = ReinforceConfig(updates_per_iteration=2, batch_size=2)
    run = ImproveRun(str(tmp_path / 'run'), config, stage1)
    real_write = improve_run.write_json_atomic

    def crash(path, data):
        raise KeyboardInterrupt('killed between export and commit')
    monkeypatch.setattr(improve_run, 'write_json_atomic', crash)
    with pytest.raises(KeyboardInterrupt):
        run.iterate(run.pending([str(bags)]), synthetic_decisions(episodes))
    monkeypatch.setattr(improve_run, 'write_json_atomic', real_write)
    assert os.path.exists(tmp_path / 'run' / 'models' / 's1-it1')  # exported, not committed
    resumed = ImproveRun(str(tmp_path / 'run'), config)
    assert resumed.version == 's1' and len(resumed.pending([str(bags)])) == 2
    resumed.iterate(resumed.pending([str(bags)]), synthetic_decisions(episodes))
    again = ImproveRun(str(tmp_path / 'run'), config)
    assert again.version == 's1-it1'
    assert sorted(again.state['consumed']) == ['s1-ep0', 's1-ep1']
    assert again.history.record('s1').episodes == 0  # iterate() alone records no outcomes


def test_trainable_action_head_moves_the_action_head_and_nothing_else(stage1, tmp_path):
    bags = tmp_path / 'bags'
    episodes = [practice_bag(str(bags), i, 's1') for i in range(2)]
    config = ReinforceConfig(updates_per_iteration=2, batch_size=2, trainable='action_head',
                             lr=1e-2)
    run = ImproveRun(str(tmp_path / 'run'), config, stage1)
    before = {k: v.clone() for k, v in run.model.state_dict().items()}
    run.iterate(run.pending([str(bags)]), synthetic_decisions(episodes))
    moved = {k for k, v in run.model.state_dict().items()
             if v.is_floating_point() and not torch.equal(v, before[k])}
    assert moved and all(k.startswith('action_head.') for k in moved)
    with pytest.raises(ValueError, match="trainable must be one of .*, got 'trunk'"):
        ReinforceConfig(trainable='trunk')


def test_stage2_leaves_a_frozen_encoders_batchnorm_statistics_alone():
    from model_factory import tiny_codec
    from selfimprove_ros.model.two_head_model import TwoHeadModel
    from selfimprove_ros.training.policy_gradient import run_iteration
    codec = tiny_codec()
    codec.config.encoder = 'resnet18'
    model = TwoHeadModel(codec.config, codec.vocab.size, codec.joint_mean, codec.joint_std)
    model.encoder.requires_grad_(False)  # as ImproveRun does: the paper freezes the encoder
    before = {k: v.clone() for k, v in model.encoder.state_dict().items() if 'running' in k}
    optimizer = torch.optim.AdamW(model.policy_parameters(), lr=1e-3)
    episodes = [synthetic_episode(i, ticks=6) for i in range(2)]
    run_iteration(model, optimizer, synthetic_decisions(episodes), codec,
                  ReinforceConfig(updates_per_iteration=2, batch_size=3), 'cpu', 1)
    after = model.encoder.state_dict()
    assert before and all(torch.equal(value, after[key]) for key, value in before.items())


def _tiny_model():
    from model_factory import tiny_codec
    from selfimprove_ros.model.two_head_model import TwoHeadModel
    codec = tiny_codec()
    torch.manual_seed(0)
    return codec, TwoHeadModel(codec.config, codec.vocab.size, codec.joint_mean,
                               codec.joint_std)


def test_a_step_baseline_compares_decisions_at_the_same_step_of_their_episodes():
    from selfimprove_ros.training.policy_gradient import baseline
    decisions = synthetic_decisions([synthetic_episode(i, ticks=6) for i in range(2)])
    decisions.returns[:] = [30, 10, 2, 20, 10, 4]  # two episodes, steps 0, 1, 2
    assert baseline(decisions, 'step').tolist() == [25, 10, 3, 25, 10, 3]
    assert baseline(decisions, 'mean').tolist() == pytest.approx([76 / 6] * 6)
    assert not baseline(decisions, 'none').any()
    # Against the mean every first chunk would look good and every last one bad.
    advantage = decisions.returns - baseline(decisions, 'step')
    assert advantage.tolist() == [5, 0, -1, -5, 0, 1]


def test_a_mean_baseline_turns_equal_returns_into_no_update_and_keeps_the_ranking():
    from selfimprove_ros.training.policy_gradient import run_iteration
    episodes = [synthetic_episode(i, ticks=6) for i in range(2)]
    moved = {}
    for baseline in ('none', 'mean'):
        codec, model = _tiny_model()
        before = {k: v.clone() for k, v in model.state_dict().items()}
        optimizer = torch.optim.AdamW(model.policy_parameters(), lr=1e-3, weight_decay=0.0)
        config = ReinforceConfig(updates_per_iteration=2, batch_size=3, baseline=baseline)
        metrics = run_iteration(model, optimizer, synthetic_decisions(episodes), codec, config,
                                'cpu', 1)
        moved[baseline] = max((v - before[k]).abs().max().item()
                              for k, v in model.state_dict().items() if v.is_floating_point())
        assert metrics['baseline'] == (1.0 if baseline == 'mean' else 0.0)
    # Every return is 1: without a baseline each sampled chunk is pushed up; with the mean
    # subtracted nothing is better than anything else, so nothing moves.
    assert moved['none'] > 1e-4 and moved['mean'] == 0.0

    # With different returns, the mean baseline pushes the better half up and the worse down.
    decisions = synthetic_decisions(episodes)
    decisions.returns[:] = [5, 5, 5, -1, -1, -1]
    decisions.tokens[3:] = 1
    codec, model = _tiny_model()
    optimizer = torch.optim.AdamW(model.policy_parameters(), lr=1e-2, weight_decay=0.0)
    words = torch.from_numpy(codec.encode_instructions(decisions.instructions))

    def log_probs():
        with torch.no_grad():
            logits = model(torch.from_numpy(decisions.images), torch.from_numpy(decisions.joints),
                           words)[0]
        return chunk_log_prob(logits, torch.from_numpy(decisions.tokens))
    start = log_probs()
    run_iteration(model, optimizer, decisions, codec,
                  ReinforceConfig(updates_per_iteration=1, batch_size=6, baseline='mean'), 'cpu',
                  1)
    change = log_probs() - start
    assert change[:3].min() > 0 > change[3:].max()
    with pytest.raises(ValueError, match="baseline must be one of .*'step'.*, got 'x'"):
        ReinforceConfig(baseline='x')


def test_a_shipped_model_directory_starts_from_its_own_policy_pt(stage1, tmp_path):
    # The provenance names where the model was trained, a path only that machine has.
    shipped = str(tmp_path / 'shipped')
    shutil.copytree(stage1, shipped)
    shutil.copy(run_checkpoint(read_manifest(stage1)), os.path.join(shipped, 'policy.pt'))
    manifest_path = os.path.join(shipped, 'manifest.json')
    with open(manifest_path) as stream:
        manifest = json.load(stream)
    manifest['provenance']['checkpoints']['policy']['path'] = '/elsewhere/last.pt'
    with open(manifest_path, 'w') as stream:
        json.dump(manifest, stream)
    run = ImproveRun(str(tmp_path / 'run'), ReinforceConfig(), shipped)
    assert run.version == 's1'
    os.remove(os.path.join(shipped, 'policy.pt'))
    with pytest.raises(FileNotFoundError, match='/elsewhere/last.pt'):
        ImproveRun(str(tmp_path / 'run2'), ReinforceConfig(), shipped)


def test_a_trust_region_stops_the_iteration_once_the_policy_moved_that_far(stage1, tmp_path):
    from selfimprove_ros.training.policy_gradient import chunk_kl, run_iteration
    logits = torch.tensor([[[0.0, 0.0], [1.0, -1.0]]])
    same = chunk_kl(logits, logits)
    moved = chunk_kl(torch.zeros(1, 2, 2), torch.tensor([[[math.log(3), 0.0], [0.0, 0.0]]]))
    # KL(uniform || [3/4, 1/4]) on the first token, nothing on the second.
    expected = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    assert same.item() == pytest.approx(0.0, abs=1e-7)
    assert moved.item() == pytest.approx(expected, rel=1e-5)
    bags = tmp_path / 'bags'
    episodes = [practice_bag(str(bags), i, 's1') for i in range(4)]
    decisions = synthetic_decisions(episodes)
    run = ImproveRun(str(tmp_path / 'run'), ReinforceConfig(), stage1)
    metrics = {}
    for target in (0.0, 1e-9):
        config = ReinforceConfig(updates_per_iteration=4, batch_size=3, lr=1e-2,
                                 target_kl=target)
        model = copy.deepcopy(run.model)
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
        metrics[target] = run_iteration(model, optimizer, decisions, run.codec, config,
                                        torch.device('cpu'), 0)
    assert metrics[0.0]['updates'] == 4 and metrics[0.0]['kl'] > 1e-9
    assert metrics[1e-9]['updates'] == 1  # the first update moved it past the region
    with pytest.raises(ValueError, match='target_kl must be >= 0 nats'):
        ReinforceConfig(target_kl=-1)


def test_chunks_sampled_by_other_weights_are_left_out_whatever_their_version(stage1, tmp_path):
    from selfimprove_ros.training.policy_gradient import sampling_surprise
    episodes = [practice_bag(str(tmp_path / 'bags'), i, 's1') for i in range(4)]
    decisions = synthetic_decisions(episodes)
    lines = []
    run = ImproveRun(str(tmp_path / 'run'), ReinforceConfig(), stage1, log=lines.append)
    images, joints = torch.from_numpy(decisions.images), torch.from_numpy(decisions.joints)
    words = torch.from_numpy(run.codec.encode_instructions(decisions.instructions))
    torch.manual_seed(0)
    with torch.no_grad():
        logits = run.model.eval()(images, joints, words)[0]
    own = torch.distributions.Categorical(logits=logits).sample().numpy()
    other = logits.argmin(-1).numpy()  # what these weights would almost never choose
    decisions.tokens = own
    surprise = sampling_surprise(run.model, decisions, run.codec, torch.device('cpu'))
    chunk_tokens = own.shape[1]
    assert abs(surprise.mean()) < 0.5 * chunk_tokens  # 0 in expectation
    assert not run.sampled_elsewhere(decisions, 'own-bag')
    decisions.tokens = other
    assert run.sampled_elsewhere(decisions, 'foreign-bag')
    assert run.sampled_elsewhere(decisions, 'foreign-bag')
    assert sum('left out foreign-bag' in line for line in lines) == 1  # said once
    assert len(Decisions.concatenate([decisions.take([])])) == 0
