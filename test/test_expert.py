"""Tests of the scripted joint-space expert on gym-aloha's MuJoCo scenes."""

import numpy as np
import pytest

from selfimprove_ros.core.joints import GRIPPER_INDICES, NUM_JOINTS
from selfimprove_ros.sim.aloha_sim import AlohaSim, SimConfig
from selfimprove_ros.sim.expert import ExpertConfig, ScriptedExpert

# Seeds apart from those the waypoints were tuned on (0..39).
SEEDS = range(1000, 1020)


def _initial_qpos(task, seed):
    sim = AlohaSim(SimConfig(task=task))
    sim.reset(seed)
    return sim.full_qpos()


@pytest.mark.parametrize('control_period_s', [0.1, 0.02])
@pytest.mark.parametrize('task', ['transfer_cube', 'insertion'])
def test_expert_solves_task(task, control_period_s):
    sim = AlohaSim(SimConfig(task=task, control_period_s=control_period_s))
    expert = ScriptedExpert(ExpertConfig(task=task, control_period_s=control_period_s))
    failed = []
    for seed in SEEDS:
        sim.reset(seed)
        plan = expert.plan(sim.full_qpos())
        assert plan.shape == (expert.episode_ticks, NUM_JOINTS)
        assert expert.episode_ticks * control_period_s <= 8.0 + 1e-9
        for tick in range(expert.episode_ticks):
            sim.step(expert.act(tick))
        if not sim.succeeded:
            failed.append((seed, sim.reward))
    assert len(failed) <= 0.05 * len(SEEDS), f'failed seeds (seed, last reward): {failed}'


def test_plan_depends_on_object_pose():
    qpos = _initial_qpos('transfer_cube', 0)
    expert = ScriptedExpert(ExpertConfig(task='transfer_cube'))
    near = expert.plan(qpos)
    qpos[16] += 0.05  # move the box along x
    far = expert.plan(qpos)
    right_arm = slice(7, 13)
    assert not np.allclose(near[:, right_arm], far[:, right_arm], atol=1e-3)


def test_plan_is_one_trajectory_sampled_at_any_period():
    qpos = _initial_qpos('insertion', 3)
    slow = ScriptedExpert(ExpertConfig(task='insertion', control_period_s=0.1,
                                       noise_std=0.02, noise_seed=5)).plan(qpos)
    fast = ScriptedExpert(ExpertConfig(task='insertion', control_period_s=0.02,
                                       noise_std=0.02, noise_seed=5)).plan(qpos)
    # Tick k of 0.1 s and tick 5k + 2 of 0.02 s are both centred on 0.1 k + 0.05 s.
    np.testing.assert_allclose(fast[2::5], slow, atol=1e-9)


def test_noise_is_smooth_and_reproducible():
    qpos = _initial_qpos('insertion', 7)

    def plan(noise_std, noise_seed):
        config = ExpertConfig(task='insertion', noise_std=noise_std, noise_seed=noise_seed)
        return ScriptedExpert(config).plan(qpos)

    clean = plan(0.0, 0)
    noisy = plan(0.05, 1)
    np.testing.assert_array_equal(noisy, plan(0.05, 1))
    assert not np.allclose(noisy, plan(0.05, 2))
    # Each episode of a run gets its own perturbation, reproducible from its seed.
    expert = ScriptedExpert(ExpertConfig(task='insertion', noise_std=0.05, noise_seed=1))
    np.testing.assert_array_equal(expert.plan(qpos, episode_seed=0), noisy)
    other = expert.plan(qpos, episode_seed=3)
    assert not np.allclose(other, noisy)
    np.testing.assert_array_equal(other, expert.plan(qpos, episode_seed=3))
    offset = noisy - clean
    arms = [j for j in range(NUM_JOINTS) if j not in GRIPPER_INDICES]
    assert 0.02 < offset[:, arms].std() < 0.1
    np.testing.assert_array_equal(offset[:, list(GRIPPER_INDICES)], 0.0)
    # Smooth: tick-to-tick changes stay well under the spread (white noise: 1.4 times it).
    assert np.diff(offset[:, arms], axis=0).std() < 0.7 * offset[:, arms].std()


@pytest.mark.parametrize('field, value', [
    ('task', 'stack_blocks'),
    ('control_period_s', 0.03),
    ('control_period_s', -0.1),
    ('noise_std', -0.01),
    ('noise_std', float('nan')),
    ('noise_seed', -1),
    ('noise_seed', 1.5),
])
def test_bad_config_names_the_value(field, value):
    with pytest.raises(ValueError, match=f'{field}='):
        ExpertConfig(**{field: value})


def test_act_needs_a_plan_and_holds_the_last_target():
    expert = ScriptedExpert(ExpertConfig(task='transfer_cube'))
    assert expert.episode_ticks == 0
    with pytest.raises(RuntimeError):
        expert.act(0)
    with pytest.raises(ValueError, match='needs'):
        expert.plan(np.zeros(30))
    plan = expert.plan(_initial_qpos('transfer_cube', 0))
    np.testing.assert_array_equal(expert.act(expert.episode_ticks + 10), plan[-1])
    with pytest.raises(ValueError, match='tick=-1'):
        expert.act(-1)
