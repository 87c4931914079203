"""The two-headed model: shapes, joint normalisation, freezing, learning and ONNX parity."""

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from selfimprove_ros.model.model_config import ModelConfig
from selfimprove_ros.model.two_head_model import build_model, count_parameters, TwoHeadModel

VOCAB = 12
TINY = dict(image_height=32, image_width=40, hidden_dim=32, chunk_length=2, action_bins=16,
            steps_to_go_max=20, steps_to_go_bins=11, max_instruction_tokens=6)


def tiny_config(**overrides) -> ModelConfig:
    """Return a small ModelConfig (two cameras) that runs in milliseconds."""
    return ModelConfig(**{'cameras': ['cam_high', 'cam_left_wrist'], **TINY, **overrides})


def make_model(config, seed: int = 0) -> TwoHeadModel:
    """Return a seeded model with a non-trivial joint normalisation."""
    torch.manual_seed(seed)
    mean = np.linspace(-0.5, 0.5, 14)
    std = np.linspace(0.2, 1.0, 14)
    return build_model(config, VOCAB, mean, std)


def make_batch(config, batch: int = 3, seed: int = 1) -> tuple:
    """Return (images, joints, instruction) with the dtypes and shapes the model takes."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (batch, len(config.cameras), config.image_height,
                                    config.image_width, 3), dtype=torch.uint8,
                           generator=generator)
    joints = torch.randn(batch, 14, generator=generator)
    instruction = torch.randint(1, VOCAB, (batch, config.max_instruction_tokens),
                                generator=generator)
    instruction[:, 3:] = 0
    return images, joints, instruction


@pytest.mark.parametrize('encoder', ['small_cnn', 'resnet18'])
def test_output_shapes_and_dtypes(encoder):
    config = tiny_config(encoder=encoder)
    model = make_model(config)
    action_logits, stg_logits = model(*make_batch(config, batch=3))
    assert action_logits.shape == (3, config.chunk_length * 14, config.action_bins)
    assert stg_logits.shape == (3, config.steps_to_go_bins)
    assert action_logits.dtype == stg_logits.dtype == torch.float32
    assert model.config is config
    assert count_parameters(model) == sum(p.numel() for p in model.parameters())


def test_default_config_builds():
    model = make_model(ModelConfig())
    action_logits, stg_logits = model(*make_batch(model.config, batch=2))
    assert action_logits.shape == (2, 5 * 14, 256) and stg_logits.shape == (2, 151)
    assert count_parameters(model) < 5_000_000


def test_joint_normalisation_buffers_are_used():
    config = tiny_config()
    model = make_model(config).eval()
    images, joints, instruction = make_batch(config)
    with torch.no_grad():
        before = model(images, joints, instruction)
        # Shifting the mean and the input together leaves the normalised joints unchanged...
        shift = torch.linspace(0.1, 1.4, 14)
        model.joint_mean += shift
        same = model(images, joints + shift, instruction)
        # ...shifting the mean alone does not.
        changed = model(images, joints, instruction)
    assert 'joint_mean' in model.state_dict() and 'joint_std' in model.state_dict()
    for reference, output in zip(before, same):
        torch.testing.assert_close(output, reference, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(changed[0], before[0], atol=1e-4)


def test_zero_joint_std_is_guarded():
    model = build_model(tiny_config(), VOCAB, np.zeros(14), np.zeros(14))
    action_logits, _ = model(*make_batch(model.config))
    assert torch.isfinite(action_logits).all()
    with pytest.raises(ValueError, match='14 values'):
        build_model(tiny_config(), VOCAB, np.zeros(13), np.ones(13))


def test_instruction_padding_is_ignored():
    config = tiny_config()
    model = make_model(config).eval()
    images, joints, instruction = make_batch(config)
    with torch.no_grad():
        reference = model(images, joints, instruction)
        model.word_embedding.weight[0] += 5.0
        padded = model(images, joints, instruction)
        instruction[:, 0] = (instruction[:, 0] % (VOCAB - 1)) + 1
        reworded = model(images, joints, instruction)
    torch.testing.assert_close(padded[0], reference[0])
    assert not torch.allclose(reworded[0], reference[0], atol=1e-5)


def test_freeze_encoder_excludes_encoder_from_training():
    config = tiny_config(encoder='resnet18', freeze_encoder=True)
    model = make_model(config).train()
    encoder = {id(p) for p in model.encoder.parameters()}
    assert encoder and not any(p.requires_grad for p in model.encoder.parameters())
    assert all(p.requires_grad for p in model.parameters() if id(p) not in encoder)
    policy = model.policy_parameters()
    assert not {id(p) for p in policy} & encoder
    assert sum(p.numel() for p in policy) == count_parameters(model, trainable_only=True)
    assert model.training and not model.encoder.training
    running_mean = model.encoder.backbone.bn1.running_mean.clone()
    action_logits, stg_logits = model(*make_batch(config))
    (action_logits.mean() + stg_logits.mean()).backward()
    torch.testing.assert_close(model.encoder.backbone.bn1.running_mean, running_mean)
    assert all(p.grad is None for p in model.encoder.parameters())
    assert model.camera_projection.weight.grad is not None


def test_unfrozen_encoder_trains_with_the_policy():
    config = tiny_config(encoder='resnet18')
    model = make_model(config).train()
    assert model.encoder.training
    running_mean = model.encoder.backbone.bn1.running_mean.clone()
    model(*make_batch(config))
    assert not torch.allclose(model.encoder.backbone.bn1.running_mean, running_mean)
    assert len(model.policy_parameters()) < len(list(model.parameters()))


def test_tiny_model_overfits_one_batch():
    config = tiny_config(cameras=['cam_high'])
    model = make_model(config, seed=3).train()
    images, joints, instruction = make_batch(config, batch=8, seed=4)
    generator = torch.Generator().manual_seed(5)
    action_tokens = torch.randint(0, config.action_bins, (8, config.chunk_length * 14),
                                  generator=generator)
    steps_to_go = torch.randint(0, config.steps_to_go_bins, (8,), generator=generator)
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(80):
        action_logits, stg_logits = model(images, joints, instruction)
        loss = (F.cross_entropy(action_logits.flatten(0, 1), action_tokens.flatten())
                + F.cross_entropy(stg_logits, steps_to_go))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0], f'loss went {losses[0]:.3f} -> {losses[-1]:.3f}'


def export_and_compare(model, config, path):
    """Export `model` to ONNX with a dynamic batch and check ONNX Runtime against torch."""
    onnxruntime = pytest.importorskip('onnxruntime')
    model.eval()
    batch = torch.export.Dim('batch', min=1, max=1024)
    torch.onnx.export(model, make_batch(config, batch=2), str(path), dynamo=True,
                      external_data=False, input_names=['images', 'joints', 'instruction'],
                      output_names=['action_logits', 'stg_logits'],
                      dynamic_shapes={'images': {0: batch}, 'joints': {0: batch},
                                      'instruction': {0: batch}})
    session = onnxruntime.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    for size in (1, 3):
        images, joints, instruction = make_batch(config, batch=size, seed=size)
        with torch.no_grad():
            expected = model(images, joints, instruction)
        outputs = session.run(None, {'images': images.numpy(), 'joints': joints.numpy(),
                                     'instruction': instruction.numpy()})
        for output, reference in zip(outputs, expected):
            assert output.shape == tuple(reference.shape)
            np.testing.assert_allclose(output, reference.numpy(), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize('encoder', ['small_cnn', 'resnet18'])
def test_onnx_export_matches_torch(encoder, tmp_path):
    config = tiny_config(encoder=encoder)
    export_and_compare(make_model(config), config, tmp_path / 'model.onnx')
