"""EfficientNet-Lite0: the packaged weights, their checks, ImageNet sense, freezing and ONNX."""

import os
import shutil

import numpy as np
import pytest
import torch

from selfimprove_ros.core.joints import LOWER_LIMITS, START_POSE, UPPER_LIMITS
from selfimprove_ros.model import efficientnet
from selfimprove_ros.model.codec import ModelCodec
from selfimprove_ros.model.encoders import EfficientNetEncoder, IMAGENET_MEAN, IMAGENET_STD
from selfimprove_ros.model.manifest import read_manifest
from selfimprove_ros.model.onnx_export import example_inputs, export_model_dir, INPUT_NAMES
from selfimprove_ros.model.tokenizers import ActionTokenizer, InstructionVocab, StepsToGoBins
from selfimprove_ros.model.two_head_model import TwoHeadModel
from test_model import make_batch, make_model, tiny_config

MILITARY_UNIFORM = 652  # ImageNet class of matplotlib's photograph of Grace Hopper


@pytest.fixture(scope='module')
def packaged_state():
    return torch.load(efficientnet.packaged_weights_path(), map_location='cpu',
                      weights_only=True)


@pytest.fixture(scope='module')
def classifier():
    network = efficientnet.EfficientNetLite0(classifier=True).eval()
    efficientnet.load_weights(network)
    return network


def grace_hopper(size: int = 224) -> torch.Tensor:
    """Return matplotlib's sample photograph, centre-cropped, as [1, 3, size, size] in [0, 1]."""
    import matplotlib.cbook
    from PIL import Image
    image = Image.open(matplotlib.cbook.get_sample_data('grace_hopper.jpg', asfileobj=False))
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    image = image.convert('RGB').crop((left, top, left + side, top + side))
    pixels = np.asarray(image.resize((size, size), Image.BICUBIC), dtype=np.float32) / 255.0
    return torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0)


def test_packaged_weights_load_strictly(packaged_state, classifier):
    assert efficientnet.sha256_of(efficientnet.packaged_weights_path()) == \
        efficientnet.WEIGHTS_SHA256
    loaded = classifier.state_dict()
    assert set(loaded) == set(packaged_state) and len(loaded) == 296
    for key, value in loaded.items():
        torch.testing.assert_close(value, packaged_state[key], rtol=0, atol=0, msg=key)
    encoder = EfficientNetEncoder()
    assert encoder.feature_dim == 1280
    assert set(encoder.backbone.state_dict()) == {k for k in packaged_state
                                                  if not k.startswith('_fc.')}
    torch.testing.assert_close(encoder.backbone._blocks[15]._project_conv.weight,
                               packaged_state['_blocks.15._project_conv.weight'])


def test_a_tampered_packaged_file_is_refused(tmp_path, monkeypatch, packaged_state):
    copy = tmp_path / efficientnet.WEIGHTS_FILE
    shutil.copyfile(efficientnet.packaged_weights_path(), copy)
    monkeypatch.setattr(efficientnet, 'packaged_weights_path', lambda: str(copy))
    EfficientNetEncoder()  # the intact copy loads
    # Change one weight inside the file: torch.load would still read it, only the digest differs.
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0x01
    copy.write_bytes(bytes(data))
    with pytest.raises(ValueError, match='sha256') as error:
        EfficientNetEncoder()
    assert str(copy) in str(error.value) and efficientnet.INSTALL_HINT in str(error.value)


def test_a_missing_package_names_the_fix(monkeypatch):
    monkeypatch.setattr(efficientnet, 'PACKAGE', 'no_such_weights_package')
    with pytest.raises(FileNotFoundError, match=efficientnet.INSTALL_HINT):
        make_model(tiny_config(encoder='efficientnet_lite0'))


def test_pretrained_path_loads_a_user_file_strictly(tmp_path, packaged_state):
    state = dict(packaged_state, **{'_bn1.bias': packaged_state['_bn1.bias'] + 1.0})
    path = tmp_path / 'finetuned.pth'
    torch.save(state, path)
    model = make_model(tiny_config(encoder='efficientnet_lite0', pretrained_path=str(path)))
    torch.testing.assert_close(model.encoder.backbone._bn1.bias, state['_bn1.bias'])
    del state['_blocks.3._bn0.running_var']
    torch.save(state, path)
    with pytest.raises(ValueError, match='1 missing keys') as error:
        make_model(tiny_config(encoder='efficientnet_lite0', pretrained_path=str(path)))
    assert '_blocks.3._bn0.running_var' in str(error.value)
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        EfficientNetEncoder(str(tmp_path / 'nowhere.pth'))


def test_same_padding_is_tensorflows():
    # A 3x3 stride-2 kernel that copies its top-left tap: out[i, j] = padded[2i, 2j].
    conv = efficientnet.SameConv2d(1, 1, 3, 2)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 0, 0] = 1.0
        image = torch.arange(1.0, 1.0 + 6 * 5).view(1, 1, 6, 5)
        out = conv(image)
    # TF 'SAME': ceil(size / 2) outputs; total padding 1 (even 6) goes after, 2 (odd 5) splits.
    assert out.shape == (1, 1, 3, 3)
    assert out[0, 0, :, 0].tolist() == [0.0, 0.0, 0.0]
    assert out[0, 0, :, 1].tolist() == image[0, 0, 0:5:2, 1].tolist()


def test_the_classifier_recognises_the_sample_photograph(classifier):
    pixels = grace_hopper()
    with torch.no_grad():
        probabilities = classifier(EfficientNetEncoder().normalise(pixels)).softmax(-1)[0]
    assert int(probabilities.argmax()) == MILITARY_UNIFORM
    assert probabilities[MILITARY_UNIFORM] > 0.25


def _stem_variance_ratio(network, normalised):
    """Return the median over channels of the stem's activation variance / BN running_var."""
    with torch.no_grad():
        stem = network._conv_stem(normalised)
    return float((stem.var(dim=(0, 2, 3)) / network._bn0.running_var).median())


def test_encoder_normalisation_is_the_one_the_weights_were_trained_with(classifier):
    # The stem's BatchNorm recorded the variance it saw in training; the right input scaling
    # reproduces it on a natural photograph, ImageNet's mean/std gives several times more.
    pixels = grace_hopper()
    ratio = _stem_variance_ratio(classifier, EfficientNetEncoder().normalise(pixels))
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (IMAGENET_MEAN, IMAGENET_STD))
    imagenet_ratio = _stem_variance_ratio(classifier, (pixels - mean) / std)
    assert 0.5 < ratio < 2.0 and imagenet_ratio > 3.0, (ratio, imagenet_ratio)


def test_frozen_encoder_gets_no_gradient_and_keeps_batch_norm_statistics():
    config = tiny_config(encoder='efficientnet_lite0', freeze_encoder=True)
    model = make_model(config).train()
    assert model.training and not model.encoder.training
    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    action_logits, stg_logits = model(*make_batch(config))
    (action_logits.mean() + stg_logits.mean()).backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert model.camera_projection.weight.grad is not None
    for key, value in model.encoder.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0, msg=key)
    unfrozen = make_model(tiny_config(encoder='efficientnet_lite0')).train()
    unfrozen(*make_batch(config))
    assert not torch.equal(unfrozen.encoder.backbone._bn0.running_mean,
                           before['backbone._bn0.running_mean'])


def test_policy_exports_to_onnx_and_matches_torch(tmp_path):
    import onnxruntime as ort
    # Odd and even sizes, so the stride-2 layers pad asymmetrically in the exported graph.
    config = tiny_config(cameras=['cam_high'], encoder='efficientnet_lite0', image_height=30,
                         image_width=41)
    codec = ModelCodec(config, ActionTokenizer(LOWER_LIMITS, UPPER_LIMITS, config.action_bins),
                       StepsToGoBins(config.steps_to_go_max, config.steps_to_go_bins),
                       InstructionVocab.fit(['pick up the cube'], config.max_instruction_tokens),
                       np.asarray(START_POSE, dtype=np.float32), np.ones(14, dtype=np.float32))
    torch.manual_seed(0)
    model = TwoHeadModel(config, codec.vocab.size, codec.joint_mean, codec.joint_std).eval()
    path = export_model_dir(str(tmp_path / 'model'), codec,
                            {'version': 'lite0', 'parent_version': None, 'stage': 'test',
                             'provenance': {}}, policy=model)
    assert read_manifest(path)['parity']['max_abs_error']['policy.onnx'] < 1e-3
    arrays = example_inputs(codec, batch=4, seed=7)
    with torch.no_grad():
        expected = model(*(torch.from_numpy(a) for a in arrays))[0].numpy()
    session = ort.InferenceSession(os.path.join(path, 'policy.onnx'),
                                   providers=['CPUExecutionProvider'])
    actual = session.run(None, dict(zip(INPUT_NAMES, arrays)))[0]
    assert actual.shape == expected.shape == (4, config.chunk_length * 14, config.action_bins)
    assert float(np.abs(actual - expected).max()) < 1e-3
