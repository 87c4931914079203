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
                   parent_version=None, seed=0, **codec_args):
    """Export a tiny model directory to `path`; return (path, codec, model)."""
    from selfimprove_ros.model.onnx_export import export_model_dir
    codec = tiny_codec(cameras, **codec_args)
    model = tiny_model(codec, seed)
    export_model_dir(str(path), codec, {'version': version, 'parent_version': parent_version,
                                        'stage': 'test', 'provenance': {}},
                     policy=model if policy else None, reward=model if reward else None)
    return str(path), codec, model


def copy_model_dir(src, dst, version, replace_policy_with=None, edit_policy=None):
    """Copy a model directory under a new version, optionally tampering with policy.onnx.

    `replace_policy_with` takes policy.onnx from another model directory; `edit_policy(model)`
    edits the loaded onnx ModelProto in place. The manifest's sha256 is recomputed, so only the
    loader's deeper checks (signature, warm-up) can catch the damage.
    """
    import json
    import os
    import shutil

    import onnx

    from selfimprove_ros.model.manifest import seal_model_dir, sha256_of
    os.makedirs(dst)
    for name in os.listdir(src):
        shutil.copyfile(os.path.join(src, name), os.path.join(dst, name))
    policy = os.path.join(dst, 'policy.onnx')
    if replace_policy_with:
        shutil.copyfile(os.path.join(replace_policy_with, 'policy.onnx'), policy)
    if edit_policy:
        model = onnx.load(policy)
        edit_policy(model)
        onnx.save(model, policy)
    with open(os.path.join(dst, 'manifest.json')) as handle:
        manifest = json.load(handle)
    manifest['version'] = version
    manifest['files']['policy.onnx']['sha256'] = sha256_of(policy)
    with open(os.path.join(dst, 'manifest.json'), 'w') as handle:
        json.dump(manifest, handle)
    seal_model_dir(dst)  # a consistent forgery: only the loader's deeper checks can catch it
    return str(dst)


def poison_with_nan(model):
    """Set the last floating-point initializer of an onnx graph to NaN."""
    import numpy as np
    from onnx import numpy_helper
    for init in reversed(model.graph.initializer):
        array = numpy_helper.to_array(init)
        if array.dtype == np.float32 and array.size > 1:
            init.CopyFrom(numpy_helper.from_array(np.full_like(array, np.nan), init.name))
            return
    raise ValueError('no float initializer to poison')


def with_rule(model_dir: str, out: str, rule: dict) -> str:
    """Copy a model directory and record `rule` as its audited success rule (resealed)."""
    import json
    import os
    import shutil

    from selfimprove_ros.model.manifest import MANIFEST, seal_model_dir
    shutil.copytree(model_dir, out)
    path = os.path.join(out, MANIFEST)
    with open(path) as handle:
        manifest = json.load(handle)
    manifest['success_rule'] = rule
    with open(path, 'w') as handle:
        json.dump(manifest, handle)
    seal_model_dir(out)
    return out
