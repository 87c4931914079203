"""Small models and model directories for tests (no training needed)."""

import numpy as np
import torch

from selfimprove_ros.core.joints import LOWER_LIMITS, START_POSE, UPPER_LIMITS
from selfimprove_ros.model.codec import ModelCodec
from selfimprove_ros.model.model_config import ModelConfig
from selfimprove_ros.model.tokenizers import ActionTokenizer, InstructionVocab, StepsToGoBins
from selfimprove_ros.model.two_head_model import TwoHeadModel

INSTRUCTION = 'pick up the cube and hand it over'


def tiny_codec(cameras=('cam_high',), height=24, width=32, chunk=2, bins=16) -> ModelCodec:
    """Return a codec of a very small model over the full joint range."""
    config = ModelConfig(cameras=list(cameras), image_height=height, image_width=width,
                         hidden_dim=32, chunk_length=chunk, action_bins=bins,
                         steps_to_go_max=20, steps_to_go_bins=11, max_instruction_tokens=8)
    return ModelCodec(config, ActionTokenizer(LOWER_LIMITS, UPPER_LIMITS, bins),
                      StepsToGoBins(20, 11), InstructionVocab.fit([INSTRUCTION], 8),
                      np.asarray(START_POSE, dtype=np.float32), np.ones(14, dtype=np.float32))


def tiny_model(codec: ModelCodec, seed: int = 0) -> TwoHeadModel:
    """Return a randomly initialised model matching `codec`."""
    torch.manual_seed(seed)
    return TwoHeadModel(codec.config, codec.vocab.size, codec.joint_mean, codec.joint_std).eval()


def tiny_model_dir(path, version='tiny-v1', cameras=('cam_high',), policy=True, reward=True,
                   parent_version=None):
    """Export a tiny model directory to `path`; return (path, codec, model)."""
    from selfimprove_ros.model.onnx_export import export_model_dir
    codec = tiny_codec(cameras)
    model = tiny_model(codec)
    export_model_dir(str(path), codec, {'version': version, 'parent_version': parent_version,
                                        'stage': 'test', 'provenance': {}},
                     policy=model if policy else None, reward=model if reward else None)
    return str(path), codec, model
