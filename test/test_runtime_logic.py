"""Pure logic of the runtime: token sampling, success debouncing, rewards, episode phases."""

import numpy as np
import pytest

from selfimprove_ros.episode.state import EpisodeStateMachine, Phase, TransitionError
from selfimprove_ros.core.rewards import discounted_returns, step_rewards
from selfimprove_ros.core.success_detection import SuccessConfig, SuccessDetector
from selfimprove_ros.runtime.token_sampling import sample_tokens


def test_greedy_sampling_takes_the_argmax_and_reports_its_log_prob():
    logits = np.array([[0.0, 2.0, 1.0], [5.0, 0.0, 0.0]])
    tokens, logp = sample_tokens(logits, 0.0, np.random.default_rng(0))
    assert tokens.tolist() == [1, 0]
    expected = logits[0, 1] - np.log(np.exp(logits[0]).sum())
    assert logp[0] == pytest.approx(expected)


def test_sampling_follows_the_categorical_distribution():
    probs = np.array([0.1, 0.6, 0.3])
    logits = np.tile(np.log(probs), (20000, 1))
    tokens, _ = sample_tokens(logits, 1.0, np.random.default_rng(1))
    frequencies = np.bincount(tokens, minlength=3) / len(tokens)
    assert np.allclose(frequencies, probs, atol=0.02)
    cold, _ = sample_tokens(logits, 0.2, np.random.default_rng(1))
    assert np.mean(cold == 1) > 0.95  # low temperature concentrates on the mode


def test_sampling_rejects_broken_logits_and_temperatures():
    with pytest.raises(ValueError, match='NaN'):
        sample_tokens(np.array([[np.nan, 0.0]]), 1.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match='temperature'):
        sample_tokens(np.zeros((1, 2)), -1.0, np.random.default_rng(0))


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


def test_rewards_and_returns_match_a_hand_worked_episode():
    d = np.array([10.0, 8.0, 9.0, 4.0])  # three decisions and the final observation
    rewards = step_rewards(d)
    assert rewards.tolist() == [2.0, -1.0, 5.0]
    returns = discounted_returns(rewards, gamma=0.9)
    assert returns[2] == pytest.approx(5.0)
    assert returns[1] == pytest.approx(-1.0 + 0.9 * 5.0)
    assert returns[0] == pytest.approx(2.0 + 0.9 * (-1.0) + 0.81 * 5.0)
    bonus = step_rewards(d, success_bonus=1.5, succeeded_at_end=True)
    assert bonus[-1] == pytest.approx(6.5) and bonus[0] == 2.0
    with pytest.raises(ValueError):
        step_rewards(np.array([1.0]))
    with pytest.raises(ValueError):
        discounted_returns(rewards, 1.5)


def test_episode_cycle_through_every_ending():
    for end, expected in (('success', Phase.SUCCESS), ('abort', Phase.ABORTED),
                          ('fault', Phase.FAULT), ('timeout', Phase.TIMEOUT)):
        machine = EpisodeStateMachine(max_ticks=3)
        assert machine.reset_done().phase is Phase.READY
        assert machine.start('e1').phase is Phase.RUNNING
        if end == 'success':
            machine.success('d <= s')
        elif end == 'abort':
            machine.abort()
        elif end == 'fault':
            machine.fault('camera cam_high stale')
        else:
            assert machine.tick() is None and machine.tick() is None
            assert machine.tick().phase is Phase.TIMEOUT
        assert machine.phase is expected and machine.outcome == expected.value
        assert machine.finished().phase is Phase.WAITING_FOR_RESET


def test_illegal_requests_explain_themselves_and_change_nothing():
    machine = EpisodeStateMachine(max_ticks=10)
    with pytest.raises(TransitionError, match='reset the scene'):
        machine.start('e1')
    machine.reset_done()
    with pytest.raises(TransitionError, match='waiting|ready'):
        machine.reset_done()
    assert machine.phase is Phase.READY
    # A fault or abort while ready sends the robot back to a reset.
    assert machine.fault('e-stop').phase is Phase.WAITING_FOR_RESET
    machine.reset_done()
    assert machine.abort().phase is Phase.WAITING_FOR_RESET
    machine.reset_done()
    machine.start('e2')
    machine.success('detected')
    assert machine.fault('late fault') is None and machine.success('again') is None
    assert machine.tick() is None and machine.phase is Phase.SUCCESS
    with pytest.raises(TransitionError):
        machine.abort()


class _Model:
    def __init__(self, version):
        self.version = version


def test_model_slot_waits_for_the_episode_end_and_rolls_back():
    from selfimprove_ros.runtime.model_slot import ModelSlot
    slot = ModelSlot()
    assert slot.offer(_Model('v1'), in_episode=True, swap_during_episode=False)  # first: now
    assert not slot.offer(_Model('v2'), in_episode=True, swap_during_episode=False)
    assert slot.live.version == 'v1' and slot.pending.version == 'v2'
    assert slot.between_episodes() and slot.live.version == 'v2'
    assert not slot.between_episodes()
    assert slot.offer(_Model('v3'), in_episode=True, swap_during_episode=True)
    assert not slot.offer(_Model('v3'), in_episode=False, swap_during_episode=False)  # same one
    assert slot.rollback().version == 'v2' and slot.rollback().version == 'v1'
    with pytest.raises(ValueError, match='no previous'):
        slot.rollback()


def test_the_newest_unseen_model_directory_is_chosen(tmp_path):
    import os
    import time
    from selfimprove_ros.runtime.model_loader import newest_unseen_model
    for name in ('v1', 'v2', '.v3-partial', 'not_a_model'):
        os.makedirs(tmp_path / name)
        if name != 'not_a_model':
            (tmp_path / name / 'manifest.json').write_text('{}')
        time.sleep(0.01)
    assert newest_unseen_model(str(tmp_path), set()) == str(tmp_path / 'v2')
    assert newest_unseen_model(str(tmp_path), {str(tmp_path / 'v2')}) == str(tmp_path / 'v1')
    assert newest_unseen_model(str(tmp_path / 'missing'), set()) == ''
