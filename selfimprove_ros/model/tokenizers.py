"""Discretisation that travels with a model: action tokens, steps-to-go bins, instruction words.

Each class round-trips through a plain dict (`to_dict` / `from_dict`) so that checkpoints and the
exported model manifest carry exactly what training used.
"""

import re

import numpy as np

from selfimprove_ros.core.joints import LOWER_LIMITS, UPPER_LIMITS


class ActionTokenizer:
    """Per-joint uniform bins over a normalised range [low, high] (rad; gripper 0..1).

    A value maps to the nearest of `bins` evenly spaced bin centres, the first at `low` and the
    last at `high`; values outside are clipped. The range comes from the demonstrations (with a
    margin), clipped to the joint limits, so bins are not wasted on poses nobody commands.
    """

    def __init__(self, low, high, bins: int = 256):
        self.low = np.asarray(low, dtype=np.float32)
        self.high = np.asarray(high, dtype=np.float32)
        self.bins = int(bins)
        if self.low.shape != self.high.shape or np.any(self.high <= self.low):
            raise ValueError(f'action range needs high > low per joint, got low={self.low} '
                             f'high={self.high}')

    @classmethod
    def fit(cls, actions: np.ndarray, bins: int = 256, margin: float = 0.05):
        """Fit the range to demonstrated actions [N, J], widened by `margin` of the span."""
        actions = np.asarray(actions, dtype=np.float32)
        actions = actions[~np.isnan(actions).any(axis=1)]  # ticks without a recorded command
        if len(actions) == 0:
            raise ValueError('no recorded actions to fit the action bins on')
        low, high = actions.min(axis=0), actions.max(axis=0)
        span = np.maximum(high - low, 1e-2)
        low = np.maximum(low - margin * span, LOWER_LIMITS[:actions.shape[1]])
        high = np.minimum(high + margin * span, UPPER_LIMITS[:actions.shape[1]])
        return cls(low, np.maximum(high, low + 1e-3), bins)

    def encode(self, actions: np.ndarray) -> np.ndarray:
        """Map actions [..., J] to integer tokens [..., J] in [0, bins)."""
        unit = (np.asarray(actions, dtype=np.float32) - self.low) / (self.high - self.low)
        return np.clip(np.rint(unit * (self.bins - 1)), 0, self.bins - 1).astype(np.int64)

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        """Map tokens [..., J] back to bin-centre actions [..., J]."""
        unit = np.asarray(tokens, dtype=np.float32) / (self.bins - 1)
        return (self.low + unit * (self.high - self.low)).astype(np.float32)

    def to_dict(self) -> dict:
        """Return a JSON-ready description."""
        return {'low': self.low.tolist(), 'high': self.high.tolist(), 'bins': self.bins}

    @classmethod
    def from_dict(cls, data: dict):
        """Rebuild from `to_dict` output."""
        return cls(data['low'], data['high'], data['bins'])


class StepsToGoBins:
    """Bins over [0, max_steps] control ticks; d(o, g) is the expectation over bin values."""

    def __init__(self, max_steps: int = 150, bins: int = 151):
        if bins < 2 or max_steps < 1:
            raise ValueError(f'steps-to-go needs bins >= 2 and max_steps >= 1, got bins={bins} '
                             f'max_steps={max_steps}')
        self.max_steps, self.bins = int(max_steps), int(bins)
        self.values = np.linspace(0.0, max_steps, bins).astype(np.float32)

    def encode(self, steps) -> np.ndarray:
        """Map steps-to-go [ticks] to the nearest bin index (clipped to the range)."""
        steps = np.clip(np.asarray(steps, dtype=np.float32), 0, self.max_steps)
        return np.rint(steps / self.max_steps * (self.bins - 1)).astype(np.int64)

    def expectation(self, probs: np.ndarray) -> np.ndarray:
        """Return d = sum_b p_b * value_b [ticks] for probabilities [..., bins]."""
        return np.asarray(probs, dtype=np.float32) @ self.values

    def to_dict(self) -> dict:
        """Return a JSON-ready description."""
        return {'max_steps': self.max_steps, 'bins': self.bins, 'unit': 'control ticks'}

    @classmethod
    def from_dict(cls, data: dict):
        """Rebuild from `to_dict` output."""
        return cls(data['max_steps'], data['bins'])


class InstructionVocab:
    """Lower-case word vocabulary; id 0 pads, id 1 stands for words never seen in training.

    Instructions in ALOHA tasks are short fixed sentences, so a word vocabulary fitted on the
    demonstrations is enough for the small encoder; it travels with the model so the robot
    tokenises exactly as training did.
    """

    PAD, UNKNOWN = 0, 1

    def __init__(self, words, max_tokens: int = 16):
        self.words = list(words)
        self.max_tokens = int(max_tokens)
        self.index = {word: i + 2 for i, word in enumerate(self.words)}

    @staticmethod
    def split(text: str) -> list:
        """Split an instruction into lower-case words."""
        return re.findall(r"[a-z0-9']+", text.lower())

    @classmethod
    def fit(cls, instructions, max_tokens: int = 16):
        """Build the vocabulary of every word in `instructions` (sorted, so it is stable)."""
        return cls(sorted({w for text in instructions for w in cls.split(text)}), max_tokens)

    @property
    def size(self) -> int:
        """Return the number of ids, padding and unknown included."""
        return len(self.words) + 2

    def encode(self, text: str) -> np.ndarray:
        """Return int64 ids [max_tokens], padded with PAD."""
        ids = [self.index.get(word, self.UNKNOWN) for word in self.split(text)]
        ids = ids[:self.max_tokens] + [self.PAD] * (self.max_tokens - len(ids))
        return np.asarray(ids, dtype=np.int64)

    def to_dict(self) -> dict:
        """Return a JSON-ready description."""
        return {'words': self.words, 'max_tokens': self.max_tokens}

    @classmethod
    def from_dict(cls, data: dict):
        """Rebuild from `to_dict` output."""
        return cls(data['words'], data['max_tokens'])
