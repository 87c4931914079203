"""ONNX export of the policy head and the steps-to-go (reward) head, with a parity check.

`policy.onnx`: (images uint8 [B, N, H, W, 3], joints float32 [B, 14], instruction int64 [B, L])
-> action_logits float32 [B, chunk*14, bins]. `reward.onnx`: the same inputs -> steps_to_go_probs
float32 [B, bins] and steps_to_go float32 [B] (the expectation d(o, g) [control ticks]). All
preprocessing is inside the graphs, so the runtime only resizes frames and tokenises the goal.
"""

import contextlib
import logging
import os
import tempfile
import warnings

import numpy as np
import torch
from torch import nn

from selfimprove_ros.model.codec import ModelCodec
from selfimprove_ros.model.manifest import publish_model_dir

INPUT_NAMES = ('images', 'joints', 'instruction')
POLICY_OUTPUTS = ('action_logits',)
REWARD_OUTPUTS = ('steps_to_go_probs', 'steps_to_go')
# ONNX Runtime and torch reorder float sums differently; logits agree far closer than this.
PARITY_ATOL = 1e-3


class PolicyGraph(nn.Module):
    """The exported policy: observation -> action-token logits."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images, joints, instruction):
        """Return action logits [B, chunk*14, bins]."""
        return self.model(images, joints, instruction)[0]


class RewardGraph(nn.Module):
    """The exported reward model: observation -> steps-to-go distribution and expectation."""

    def __init__(self, model: nn.Module, values: np.ndarray):
        super().__init__()
        self.model = model
        self.register_buffer('values', torch.as_tensor(values, dtype=torch.float32))

    def forward(self, images, joints, instruction):
        """Return (probabilities [B, bins], d = expectation [B] in control ticks)."""
        probs = self.model(images, joints, instruction)[1].float().softmax(-1)
        return probs, probs @ self.values


def example_inputs(codec: ModelCodec, batch: int = 2, seed: int = 0):
    """Return random but valid inputs for tracing and parity checks."""
    rng = np.random.default_rng(seed)
    cfg = codec.config
    images = rng.integers(0, 256, (batch, len(cfg.cameras), cfg.image_height, cfg.image_width, 3),
                          dtype=np.uint8)
    joints = (codec.joint_mean + codec.joint_std * rng.standard_normal((batch, 14))).astype(
        np.float32)
    instruction = np.stack([codec.vocab.encode(' '.join(codec.vocab.words))] * batch)
    return images, joints, instruction


def signature(codec: ModelCodec) -> dict:
    """Return the input/output names, shapes ('batch' is dynamic) and dtypes of both graphs."""
    cfg = codec.config
    inputs = [
        {'name': 'images', 'dtype': 'uint8',
         'shape': ['batch', len(cfg.cameras), cfg.image_height, cfg.image_width, 3]},
        {'name': 'joints', 'dtype': 'float32', 'shape': ['batch', 14]},
        {'name': 'instruction', 'dtype': 'int64', 'shape': ['batch', cfg.max_instruction_tokens]},
    ]
    return {
        'inputs': inputs,
        'policy.onnx': [{'name': 'action_logits', 'dtype': 'float32',
                         'shape': ['batch', codec.tokens_per_chunk, cfg.action_bins]}],
        'reward.onnx': [{'name': 'steps_to_go_probs', 'dtype': 'float32',
                         'shape': ['batch', cfg.steps_to_go_bins]},
                        {'name': 'steps_to_go', 'dtype': 'float32', 'shape': ['batch']}],
    }


@contextlib.contextmanager
def quiet_exporter():
    """Silence the exporter's notices about torch itself, which bury the export's summary.

    Each export logs that torchvision (deliberately not installed) is absent, and trips a
    deprecation and a dynamic-axis note inside torch; none says anything about this model.
    Errors still raise, and other warnings still show.
    """
    logger = logging.getLogger('torch.onnx._internal.exporter._registration')
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings('ignore', r'.*isinstance\(treespec, LeafSpec\)',
                                    FutureWarning)
            warnings.filterwarnings('ignore', r'# The axis name: .* will not be used',
                                    UserWarning)
            yield
    finally:
        logger.setLevel(level)


def export_graph(graph: nn.Module, codec: ModelCodec, path: str, output_names) -> float:
    """Export `graph` to a single-file ONNX at `path`; return the max |ORT - torch| error."""
    graph = graph.eval().cpu()
    inputs = tuple(torch.from_numpy(array) for array in example_inputs(codec))
    batch = torch.export.Dim('batch', min=1, max=256)
    with torch.no_grad(), quiet_exporter():
        torch.onnx.export(graph, inputs, path, dynamo=True, external_data=False,
                          input_names=list(INPUT_NAMES), output_names=list(output_names),
                          dynamic_shapes=tuple({0: batch} for _ in INPUT_NAMES), verbose=False)
    return parity_error(graph, path, codec)


def parity_error(graph: nn.Module, path: str, codec: ModelCodec) -> float:
    """Run torch and ONNX Runtime on fresh inputs (batch 3); raise if they disagree."""
    import onnxruntime as ort
    arrays = example_inputs(codec, batch=3, seed=1)
    with torch.no_grad():
        expected = graph(*(torch.from_numpy(a) for a in arrays))
    expected = expected if isinstance(expected, tuple) else (expected,)
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    actual = session.run(None, dict(zip(INPUT_NAMES, arrays)))
    error = max(float(np.max(np.abs(e.numpy() - a))) for e, a in zip(expected, actual))
    if not error <= PARITY_ATOL:
        raise RuntimeError(f'ONNX export of {os.path.basename(path)} disagrees with torch by '
                           f'{error:.3g} (> {PARITY_ATOL}); the model uses an op that exports '
                           'wrongly - report this with the model config')
    return error


def export_model_dir(out_dir: str, codec: ModelCodec, manifest: dict, policy=None,
                     reward=None) -> str:
    """Export the given torch models (policy and/or reward) and publish them with a manifest."""
    if policy is None and reward is None:
        raise ValueError('nothing to export: give a policy model, a reward model or both')
    if os.path.exists(out_dir):
        raise FileExistsError(f'{out_dir} exists; model directories are immutable, choose a new '
                              'one (or delete it first)')
    with tempfile.TemporaryDirectory(prefix='selfimprove-export-') as tmp:
        files, parity = {}, {}
        if policy is not None:
            files['policy.onnx'] = os.path.join(tmp, 'policy.onnx')
            parity['policy.onnx'] = export_graph(PolicyGraph(policy), codec,
                                                 files['policy.onnx'], POLICY_OUTPUTS)
        if reward is not None:
            files['reward.onnx'] = os.path.join(tmp, 'reward.onnx')
            parity['reward.onnx'] = export_graph(RewardGraph(reward, codec.steps.values), codec,
                                                 files['reward.onnx'], REWARD_OUTPUTS)
        manifest = dict(manifest, codec=codec.to_dict(), signature=signature(codec),
                        model_config=_config_dict(codec),
                        parity={'max_abs_error': parity, 'tolerance': PARITY_ATOL})
        return publish_model_dir(files, manifest, out_dir)


def _config_dict(codec: ModelCodec) -> dict:
    from dataclasses import asdict
    return asdict(codec.config)
