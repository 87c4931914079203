"""Pretrained encoders from local files: torchvision-format ResNet-18 and Hugging Face models."""

import json

import pytest
import torch

from selfimprove_ros.model.encoders import HFVisionEncoder
from selfimprove_ros.model.resnet import ResNet18
from test_model import export_and_compare, make_batch, make_model, tiny_config


def torchvision_state_dict(seed: int = 7) -> dict:
    """Return a ResNet-18 state dict in torchvision's key format, classifier included."""
    torch.manual_seed(seed)
    network = ResNet18()
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(module.weight)
            torch.nn.init.uniform_(module.running_mean)
    state = network.state_dict()
    state['fc.weight'] = torch.randn(1000, 512)
    state['fc.bias'] = torch.randn(1000)
    return state


def test_resnet18_loads_torchvision_state_dict(tmp_path):
    state = torchvision_state_dict()
    path = tmp_path / 'resnet18.pth'
    torch.save(state, path)
    model = make_model(tiny_config(encoder='resnet18', pretrained_path=str(path)))
    loaded = model.encoder.backbone.state_dict()
    assert set(loaded) == {k for k in state if not k.startswith('fc.')}
    for key, value in loaded.items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0, msg=key)


def test_resnet18_accepts_missing_batch_counters(tmp_path):
    state = {k: v for k, v in torchvision_state_dict().items()
             if not k.endswith('num_batches_tracked')}
    path = tmp_path / 'resnet18-download.pth'
    torch.save(state, path)
    model = make_model(tiny_config(encoder='resnet18', pretrained_path=str(path)))
    torch.testing.assert_close(model.encoder.backbone.conv1.weight, state['conv1.weight'])


@pytest.mark.parametrize('damage, message', [
    (lambda s: s.pop('layer3.1.conv2.weight'), 'missing keys'),
    (lambda s: s.update({'layer2.0.conv1.weight': torch.zeros(128, 64, 5, 5)}), 'mis-shaped'),
    (lambda s: s.update({'layer5.0.conv1.weight': torch.zeros(1)}), 'unexpected keys'),
])
def test_resnet18_rejects_a_damaged_state_dict(tmp_path, damage, message):
    state = torchvision_state_dict()
    damage(state)
    path = tmp_path / 'damaged.pth'
    torch.save(state, path)
    with pytest.raises(ValueError, match=message) as error:
        make_model(tiny_config(encoder='resnet18', pretrained_path=str(path)))
    assert str(path) in str(error.value) and 'torchvision' in str(error.value)


def test_resnet18_rejects_missing_and_unreadable_files(tmp_path):
    missing = tmp_path / 'nowhere.pth'
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        make_model(tiny_config(encoder='resnet18', pretrained_path=str(missing)))
    garbage = tmp_path / 'garbage.pth'
    garbage.write_bytes(b'not a torch file')
    with pytest.raises(ValueError, match='garbage.pth'):
        make_model(tiny_config(encoder='resnet18', pretrained_path=str(garbage)))
    wrapped = tmp_path / 'checkpoint.pth'
    torch.save({'model': torchvision_state_dict(), 'step': 3}, wrapped)
    with pytest.raises(ValueError, match='not a plain state dict'):
        make_model(tiny_config(encoder='resnet18', pretrained_path=str(wrapped)))


@pytest.fixture(scope='module')
def siglip_dir(tmp_path_factory):
    """Save a tiny random SigLIP vision tower with a processor config; return its directory."""
    transformers = pytest.importorskip('transformers')
    path = tmp_path_factory.mktemp('siglip')
    torch.manual_seed(0)
    vision = transformers.SiglipVisionConfig(hidden_size=32, intermediate_size=64,
                                             num_hidden_layers=2, num_attention_heads=2,
                                             image_size=32, patch_size=8)
    transformers.SiglipVisionModel(vision).save_pretrained(path)
    (path / 'preprocessor_config.json').write_text(json.dumps({
        'image_mean': [0.4, 0.5, 0.6], 'image_std': [0.2, 0.3, 0.4],
        'size': {'height': 32, 'width': 32}}))
    return path


def test_hf_vision_loads_a_local_model(siglip_dir):
    config = tiny_config(encoder='hf_vision', pretrained_path=str(siglip_dir))
    model = make_model(config)
    encoder = model.encoder
    assert encoder.feature_dim == 32 and encoder.image_size == (32, 32)
    torch.testing.assert_close(encoder.normalise.mean.flatten(), torch.tensor([0.4, 0.5, 0.6]))
    saved = HFVisionEncoder(str(siglip_dir)).model.state_dict()
    for key, value in encoder.model.state_dict().items():
        torch.testing.assert_close(value, saved[key], rtol=0, atol=0, msg=key)
    action_logits, stg_logits = model(*make_batch(config, batch=2))
    assert action_logits.shape == (2, config.chunk_length * 14, config.action_bins)
    assert stg_logits.shape == (2, config.steps_to_go_bins)


def test_hf_vision_without_a_model_directory_fails_clearly(tmp_path):
    config = tiny_config(encoder='hf_vision', pretrained_path=str(tmp_path / 'absent'))
    with pytest.raises(FileNotFoundError, match='absent'):
        make_model(config)


def test_hf_vision_onnx_export_matches_torch(siglip_dir, tmp_path):
    config = tiny_config(encoder='hf_vision', pretrained_path=str(siglip_dir))
    export_and_compare(make_model(config), config, tmp_path / 'model.onnx')
