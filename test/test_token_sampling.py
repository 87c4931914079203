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


# The chunk-quantile sampler: one quantile per joint for the whole chunk ----------------------
def exact_chunk_probabilities(scaled_logp, joints):
    """Enumerate every token tuple the sampler can draw and the exact measure of its u's."""
    probs = np.exp(scaled_logp).reshape(-1, joints, scaled_logp.shape[-1])
    cdf = np.cumsum(probs, axis=-1)
    per_joint = []
    for j in range(joints):
        edges = np.unique(np.concatenate([[0.0, 1.0], cdf[:, j].ravel()]))
        edges = edges[(edges >= 0) & (edges <= 1)]
        found = {}
        for low, high in zip(edges[:-1], edges[1:]):
            if high <= low:
                continue
            u = (low + high) / 2  # the tokens are constant between two edges
            tokens = tuple(int(min((cdf[k, j] <= u).sum(), cdf.shape[-1] - 1))
                           for k in range(cdf.shape[0]))
            found[tokens] = found.get(tokens, 0.0) + (high - low)
        per_joint.append(found)
    return per_joint


def test_chunk_quantile_log_prob_is_the_exact_probability_of_the_sampled_chunk():
    from selfimprove_ros.runtime.token_sampling import (chunk_quantile_log_prob, log_softmax,
                                                        quantile_tokens)
    rng = np.random.default_rng(3)
    chunk, joints, bins = 3, 2, 4
    scaled = log_softmax(rng.normal(size=(chunk * joints, bins)) * 2)
    exact = exact_chunk_probabilities(scaled, joints)
    assert all(sum(found.values()) == pytest.approx(1.0) for found in exact)
    for first in exact[0]:
        for second in exact[1]:
            tokens = np.array([[first[k], second[k]] for k in range(chunk)]).ravel()
            expected = exact[0][first] * exact[1][second]
            assert np.exp(chunk_quantile_log_prob(scaled, tokens, joints)) == pytest.approx(
                expected, rel=1e-9)
    # And the sampler draws each chunk with that probability.
    draws = [tuple(quantile_tokens(scaled, rng.uniform(size=joints)))
             for _ in range(20000)]
    mode = [max(found, key=found.get) for found in exact]  # each joint's likeliest tuple
    tokens = np.array([[mode[0][k], mode[1][k]] for k in range(chunk)]).ravel()
    frequency = np.mean([draw == tuple(tokens) for draw in draws])
    assert frequency == pytest.approx(np.exp(chunk_quantile_log_prob(scaled, tokens, joints)),
                                      abs=0.02)


def test_the_learner_computes_the_samplers_log_prob_as_the_runtime_does():
    import torch

    from selfimprove_ros.runtime.token_sampling import chunk_quantile_log_prob, log_softmax
    from selfimprove_ros.training.policy_gradient import chunk_log_prob
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(10 * 14, 16)) * 3
    for temperature in (1.0, 0.5):
        tokens, _ = sample_tokens(logits, temperature, rng, 'chunk_quantile')
        runtime = chunk_quantile_log_prob(log_softmax(logits / temperature), tokens)
        learner = chunk_log_prob(torch.from_numpy(logits)[None], torch.from_numpy(tokens)[None],
                                 'chunk_quantile', temperature)
        assert float(learner[0]) == pytest.approx(runtime, rel=1e-5)
    independent = chunk_log_prob(torch.from_numpy(logits)[None], torch.from_numpy(tokens)[None])
    assert float(independent[0]) == pytest.approx(
        np.take_along_axis(log_softmax(logits), tokens[:, None], -1).sum(), rel=1e-6)


def test_a_chunk_quantile_chunk_moves_each_joint_together():
    # Two ticks with the same distribution: one quantile gives them the same token, always.
    logits = np.tile(np.log([0.2, 0.5, 0.3]), (2 * 14, 1))
    for seed in range(20):
        tokens, _ = sample_tokens(logits, 1.0, np.random.default_rng(seed), 'chunk_quantile')
        assert (tokens[:14] == tokens[14:]).all()
    with pytest.raises(ValueError, match='sampler'):
        sample_tokens(logits, 1.0, np.random.default_rng(0), 'beam')


@pytest.mark.parametrize('sampler', ['independent', 'chunk_quantile'])
def test_onnx_and_torch_sample_the_same_tokens_with_the_same_seed(tmp_path, sampler):
    import torch

    from model_factory import INSTRUCTION, tiny_model_dir
    from selfimprove_ros.runtime.onnx_model import load_model
    from selfimprove_ros.runtime.policy_runtime import observation_inputs
    model_dir, codec, model = tiny_model_dir(tmp_path / 'm')
    onnx = load_model(model_dir, 'policy.onnx', ['cam_high'], providers='cpu')
    frames = {'cam_high': np.random.default_rng(0).integers(0, 255, (24, 32, 3), np.uint8)}
    inputs = observation_inputs(onnx, frames, np.zeros(14), codec.encode_instructions(
        [INSTRUCTION])[0])
    from_onnx = onnx.run(*inputs)[0][0]
    with torch.no_grad():
        from_torch = model(*(torch.from_numpy(x) for x in inputs))[0][0].numpy()
    for seed in range(5):
        a, _ = sample_tokens(from_onnx, 1.0, np.random.default_rng(seed), sampler)
        b, _ = sample_tokens(from_torch, 1.0, np.random.default_rng(seed), sampler)
        assert a.tolist() == b.tolist()
