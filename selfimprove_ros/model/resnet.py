"""ResNet-18 with torchvision's module names, and loading of torchvision-format state dicts.

torchvision is not installed here (its wheels are CUDA builds), so the network is written out;
every parameter and buffer name matches `torchvision.models.resnet18()` so that a state dict
saved with `torch.save(torchvision.models.resnet18(weights=...).state_dict(), path)` loads with
strict key checking. The classifier (`fc.*`) is not part of the encoder and is ignored.
"""

import os

import torch
from torch import nn

FEATURE_DIM = 512
SAVE_HINT = ('save one with torch.save(torchvision.models.resnet18(weights="IMAGENET1K_V1")'
             '.state_dict(), path) on a machine that has torchvision')


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (torchvision's BasicBlock)."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x):
        """Return relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class ResNet18(nn.Module):
    """ResNet-18 trunk up to the global average pool: [M, 3, H, W] -> [M, 512]."""

    feature_dim = FEATURE_DIM

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(BasicBlock(64, 64), BasicBlock(64, 64))
        self.layer2 = nn.Sequential(BasicBlock(64, 128, 2), BasicBlock(128, 128))
        self.layer3 = nn.Sequential(BasicBlock(128, 256, 2), BasicBlock(256, 256))
        self.layer4 = nn.Sequential(BasicBlock(256, 512, 2), BasicBlock(512, 512))
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode='fan_out', nonlinearity='relu')

    def forward(self, x):
        """Return the spatially averaged last feature map [M, 512]."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        # A mean over H, W, not AdaptiveAvgPool2d: identical result, and it exports to ONNX
        # for any input size.
        return x.mean(dim=(2, 3))


def _read_state_dict(path: str) -> dict:
    """Load a state dict from `path`, raising errors that name the file and the fix."""
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f'ResNet-18 weights {path!r} do not exist; set model pretrained_path to a '
            f'torchvision-format state dict (.pth), or to "" for random init; {SAVE_HINT}')
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:
        raise ValueError(f'cannot read ResNet-18 weights {path!r} as a torch state dict '
                         f'({error}); {SAVE_HINT}') from error
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        keys = list(state)[:5] if isinstance(state, dict) else type(state).__name__
        raise ValueError(f'{path!r} is not a plain state dict of tensors (found {keys}); '
                         f'save model.state_dict() itself, not a checkpoint wrapping it; '
                         f'{SAVE_HINT}')
    return state


def load_torchvision_weights(module: ResNet18, path: str):
    """Copy a torchvision-format ResNet-18 state dict at `path` into `module`, strictly.

    `fc.*` keys are ignored; `*.num_batches_tracked` may be absent (torchvision's own download
    files lack them). Any other missing, unexpected or mis-shaped key raises ValueError.
    """
    state = {k: v for k, v in _read_state_dict(path).items() if not k.startswith('fc.')}
    expected = module.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith('num_batches_tracked')]
    unexpected = [k for k in state if k not in expected]
    shapes = [f'{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}'
              for k, v in expected.items() if k in state and state[k].shape != v.shape]
    problems = []
    if missing:
        problems.append(f'{len(missing)} missing keys (e.g. {missing[:3]})')
    if unexpected:
        problems.append(f'{len(unexpected)} unexpected keys (e.g. {unexpected[:3]})')
    if shapes:
        problems.append(f'{len(shapes)} mis-shaped tensors (e.g. {shapes[:3]})')
    if problems:
        raise ValueError(f'{path!r} is not a torchvision ResNet-18 state dict: '
                         f'{"; ".join(problems)}; {SAVE_HINT}')
    for key, value in expected.items():
        if key not in state:
            state[key] = value
    module.load_state_dict(state, strict=True)
