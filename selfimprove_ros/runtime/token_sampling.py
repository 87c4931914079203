"""Sampling action tokens from the policy's logits: the policy is a categorical per token."""

import numpy as np


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Return log-probabilities over the last axis, computed stably in float64."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def sample_tokens(logits: np.ndarray, temperature: float, rng: np.random.Generator):
    """Draw one token per row of `logits` [K, bins]; return (tokens [K], log pi(tokens) [K]).

    temperature 0 is greedy (argmax, for evaluation); 1 samples the trained distribution (what
    on-policy REINFORCE assumes); other values sharpen or flatten it. The returned
    log-probabilities are those of the temperature-1 policy, the one being trained.
    """
    if temperature < 0 or not np.isfinite(temperature):
        raise ValueError(f'temperature must be finite and >= 0, got {temperature!r}')
    logp = log_softmax(logits)
    if not np.all(np.isfinite(logp)):
        raise ValueError('policy logits contain NaN or inf; the model is broken')
    if temperature == 0:
        tokens = logp.argmax(axis=-1)
    else:
        scaled = log_softmax(logp / temperature)
        # Gumbel-max draws one sample per row without a Python loop.
        gumbel = -np.log(-np.log(rng.uniform(1e-12, 1.0, size=scaled.shape)))
        tokens = (scaled + gumbel).argmax(axis=-1)
    chosen = np.take_along_axis(logp, tokens[:, None], axis=-1)[:, 0]
    return tokens.astype(np.int64), chosen
