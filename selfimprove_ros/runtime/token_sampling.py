"""Sampling action tokens from the policy's logits: the policy is a categorical per token."""

import numpy as np


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Return log-probabilities over the last axis, computed stably in float64."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


SAMPLERS = ('independent', 'chunk_quantile')


def sample_tokens(logits: np.ndarray, temperature: float, rng: np.random.Generator,
                  sampler: str = 'independent', joints: int = 14):
    """Draw one token per row of `logits` [K, bins]; return (tokens [K], log pi(tokens) [K]).

    temperature 0 is greedy (argmax, for evaluation); otherwise the tempered distribution
    softmax(log pi / temperature) is sampled (1 = the trained distribution, what on-policy
    REINFORCE assumes). `sampler`:
    - 'independent': every token drawn on its own (a chunk of jitter: each tick's draw moves
      a joint by up to the width of its distribution, independently of the tick before);
    - 'chunk_quantile': one uniform draw u_j per joint for the whole chunk, every tick of the
      chunk at that quantile of its own distribution, so the chunk is a smooth deviation (rows
      are chunk-major: row k * joints + j is tick k of joint j). Each token's marginal is still
      its tempered categorical; the exact probability of the sampled chunk is
      `chunk_quantile_log_prob`.
    The returned log-probabilities are those of the temperature-1 tokens, per token.
    """
    if temperature < 0 or not np.isfinite(temperature):
        raise ValueError(f'temperature must be finite and >= 0, got {temperature!r}')
    if sampler not in SAMPLERS:
        raise ValueError(f'sampler must be one of {list(SAMPLERS)}, got {sampler!r}')
    logp = log_softmax(logits)
    if not np.all(np.isfinite(logp)):
        raise ValueError('policy logits contain NaN or inf; the model is broken')
    if temperature == 0:
        tokens = logp.argmax(axis=-1)
    elif sampler == 'independent':
        scaled = log_softmax(logp / temperature)
        # Gumbel-max draws one sample per row without a Python loop.
        gumbel = -np.log(-np.log(rng.uniform(1e-12, 1.0, size=scaled.shape)))
        tokens = (scaled + gumbel).argmax(axis=-1)
    else:
        tokens = quantile_tokens(log_softmax(logp / temperature), rng.uniform(size=joints))
    chosen = np.take_along_axis(logp, tokens[:, None], axis=-1)[:, 0]
    return tokens.astype(np.int64), chosen


def quantile_tokens(scaled_logp: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """Return tokens [K]: row k * J + j at quantile `quantiles[j]` of its distribution.

    `scaled_logp` [K, bins] are the (tempered) log-probabilities; token b is the bin with
    cdf(b - 1) <= u < cdf(b).
    """
    joints, bins = len(quantiles), scaled_logp.shape[-1]
    cdf = np.cumsum(np.exp(scaled_logp), axis=-1).reshape(-1, joints, bins)
    tokens = (cdf <= np.asarray(quantiles)[None, :, None]).sum(axis=-1)
    return np.minimum(tokens, bins - 1).reshape(-1)


def chunk_quantile_log_prob(scaled_logp: np.ndarray, tokens: np.ndarray,
                            joints: int = 14) -> float:
    """Return the exact log-probability of a chunk drawn by the 'chunk_quantile' sampler.

    For joint j the chunk's tokens came from one u_j ~ U(0, 1): the set of u that gives them is
    the intersection of the ticks' bins [cdf(b - 1), cdf(b)), so the chunk's probability is the
    product over joints of that intersection's length.
    """
    bins = scaled_logp.shape[-1]
    probs = np.exp(scaled_logp).reshape(-1, joints, bins)
    tokens = np.asarray(tokens).reshape(-1, joints)
    upper = np.take_along_axis(np.cumsum(probs, axis=-1), tokens[..., None], -1)[..., 0]
    lower = upper - np.take_along_axis(probs, tokens[..., None], -1)[..., 0]
    overlap = upper.min(axis=0) - lower.max(axis=0)
    return float(np.log(np.maximum(overlap, 1e-300)).sum())
