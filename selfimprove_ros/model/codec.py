"""Everything that must travel with a model so the robot feeds it exactly as training did.

The codec turns robot data (joint angles, instructions, action chunks, steps-to-go) into model
tensors and back: action tokenizer, steps-to-go bins, instruction vocabulary, joint statistics,
cameras and image size. Checkpoints store `to_dict()`; the export manifest embeds it.
"""

import numpy as np

from selfimprove_ros.core.joints import JOINT_NAMES
from selfimprove_ros.model.model_config import ModelConfig
from selfimprove_ros.model.tokenizers import ActionTokenizer, InstructionVocab, StepsToGoBins


class ModelCodec:
    """Tokenizers and statistics of one model."""

    def __init__(self, config: ModelConfig, actions: ActionTokenizer, steps: StepsToGoBins,
                 vocab: InstructionVocab, joint_mean, joint_std):
        self.config = config
        self.actions, self.steps, self.vocab = actions, steps, vocab
        self.joint_mean = np.asarray(joint_mean, dtype=np.float32)
        self.joint_std = np.asarray(joint_std, dtype=np.float32)

    @classmethod
    def fit(cls, episodes, config: ModelConfig):
        """Fit ranges, statistics and vocabulary on training episodes."""
        if not episodes:
            raise ValueError('cannot fit a model codec on zero episodes; check the bag directory')
        # The bins cover what is cloned: a failed episode's commands (include_failed loads
        # them to teach the reward model) must not stretch the policy's action range.
        cloned = [ep for ep in episodes if ep.cloned] or episodes
        actions = np.concatenate([ep.actions for ep in cloned])
        joints = np.concatenate([ep.joints for ep in episodes])
        return cls(config,
                   ActionTokenizer.fit(actions, config.action_bins),
                   StepsToGoBins(config.steps_to_go_max, config.steps_to_go_bins),
                   InstructionVocab.fit({ep.instruction for ep in episodes},
                                        config.max_instruction_tokens),
                   joints.mean(axis=0), np.maximum(joints.std(axis=0), 1e-3))

    @property
    def tokens_per_chunk(self) -> int:
        """Return the number of action tokens per chunk (chunk_length x 14)."""
        return self.config.chunk_length * len(JOINT_NAMES)

    def encode_chunks(self, chunks: np.ndarray) -> np.ndarray:
        """Map action chunks [B, chunk, 14] to tokens [B, chunk*14] (chunk-major)."""
        return self.actions.encode(chunks).reshape(len(chunks), -1)

    def decode_tokens(self, tokens: np.ndarray) -> np.ndarray:
        """Map tokens [..., chunk*14] back to joint targets [..., chunk, 14]."""
        tokens = np.asarray(tokens)
        shape = tokens.shape[:-1] + (self.config.chunk_length, len(JOINT_NAMES))
        return self.actions.decode(tokens.reshape(shape))

    def encode_instructions(self, texts) -> np.ndarray:
        """Map instruction strings to word ids [B, max_instruction_tokens]."""
        return np.stack([self.vocab.encode(text) for text in texts])

    def to_dict(self) -> dict:
        """Return a JSON-ready description (stored in checkpoints and manifests)."""
        return {
            'joint_names': list(JOINT_NAMES),
            'cameras': list(self.config.cameras),
            'image_size': [self.config.image_height, self.config.image_width],
            'chunk_length': self.config.chunk_length,
            'action_tokenizer': self.actions.to_dict(),
            'steps_to_go': self.steps.to_dict(),
            'instruction': {'kind': 'word_vocab', **self.vocab.to_dict()},
            'joint_normalisation': {'mean': self.joint_mean.tolist(),
                                    'std': self.joint_std.tolist()},
        }

    @classmethod
    def from_dict(cls, data: dict, config: ModelConfig):
        """Rebuild from `to_dict` output and the model config it belongs to."""
        if list(data['joint_names']) != list(JOINT_NAMES):
            raise ValueError(f'model joints {data["joint_names"]} differ from this robot\'s '
                             f'{list(JOINT_NAMES)}')
        return cls(config, ActionTokenizer.from_dict(data['action_tokenizer']),
                   StepsToGoBins.from_dict(data['steps_to_go']),
                   InstructionVocab.from_dict(data['instruction']),
                   data['joint_normalisation']['mean'], data['joint_normalisation']['std'])
