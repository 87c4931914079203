"""sample_tokens (runtime/token_sampling.py): greedy and tempered sampling of action tokens."""

import numpy as np
import pytest

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
