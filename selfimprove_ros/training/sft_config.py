"""Settings of a Stage-1 (SFT) run; the resolved config is stored in every checkpoint."""

from dataclasses import asdict, dataclass, field

from selfimprove_ros.core.config import config_from_dict, require, setting
from selfimprove_ros.model.model_config import ModelConfig


@dataclass
class SftConfig:
    """Optimisation, schedule, checkpointing and evaluation of supervised fine-tuning."""

    steps: int = setting(3000, 'Optimizer steps in total')
    batch_size: int = setting(64, 'Samples per step, half for each objective (the paper)')
    lr: float = setting(1e-3, 'Peak learning rate of AdamW (1e-3 with warm-up and cosine decay '
                        'trained the seeing policy of docs/notebook/2026-11-30.md; 3e-4 was '
                        'slower)')
    min_lr_ratio: float = setting(0.1, 'Final learning rate as a fraction of lr (cosine decay)')
    warmup_steps: int = setting(100, 'Steps of linear warm-up')
    weight_decay: float = setting(0.01, 'AdamW weight decay (not on biases and norms)')
    grad_clip: float = setting(1.0, 'Global gradient-norm clip; 0 disables')
    steps_to_go_weight: float = setting(1.0, 'Weight of the steps-to-go loss against BC')
    soft_target_sigma_bins: float = setting(
        2.0, 'Std [bins] of the Gaussian over action bins that BC is fitted to (soft targets; '
        'the policy stays a categorical); 0 = one-hot targets')
    grasp_target_weight: float = setting(
        30.0, 'Weight of the auxiliary loss that regresses, from the camera features alone, '
        'where each gripper grasps (forward kinematics at the tick its command closes, '
        'data/grasp_target.py); it makes the policy locate the object (weight 1: 3/30 in sim, 10: '
        '21/30, 30: 24/30). 0 disables')
    grasp_target_scale_m: float = setting(
        0.1, 'Unit [m] of the grasp target in its loss (x, y divided by it)')
    joint_dropout: float = setting(
        0.0, 'Share [0, 1) of training samples whose joint state is hidden (set to its mean), '
        'so the model must read arm and object from the cameras instead of copying the arm\'s '
        'pose (benchmarks/policy_vision.py); SFT only, never in practice or on the robot')
    image_shift_px: int = setting(
        0, 'Largest random shift [px] of every training frame in x and y, edges repeated (DrQ\'s '
        'pad-and-crop), so the model places the gripper relative to what it sees rather than '
        'memorising pixel positions; SFT only, 0 disables')
    eval_every: int = setting(250, 'Steps between validation passes')
    eval_batches: int = setting(8, 'Batches per validation pass')
    checkpoint_every: int = setting(250, 'Steps between checkpoints (last.pt)')
    checkpoint_every_s: float = setting(
        60.0, 'Also write last.pt once this many seconds [s] have passed since the last one, so '
        'a kill loses at most about this much training however slow the steps; 0 disables')
    seed: int = setting(0, 'Seed of sampling and initialisation')
    device: str = setting('auto', "'auto' (cuda if present), 'cpu' or 'cuda[:N]'")
    amp: bool = setting(True, 'bfloat16 autocast on GPU; ignored on CPU')
    torch_threads: int = setting(0, 'torch intra-op threads on CPU; 0 = torch default')
    model: ModelConfig = field(default_factory=ModelConfig,
                               metadata={'help': 'The two-headed model'})

    def __post_init__(self):
        if isinstance(self.model, dict):
            self.model = ModelConfig(**self.model)
        for name in ('steps', 'batch_size', 'eval_every', 'eval_batches', 'checkpoint_every'):
            require(getattr(self, name) >= 1, f'{name} must be >= 1, got {getattr(self, name)!r}')
        require(self.batch_size % 2 == 0,
                f'batch_size must be even (half BC, half steps-to-go), got {self.batch_size}')
        require(self.lr > 0, f'lr must be > 0, got {self.lr!r}')
        require(self.checkpoint_every_s >= 0,
                f'checkpoint_every_s must be >= 0 s (0 disables), got {self.checkpoint_every_s!r}')
        require(self.soft_target_sigma_bins >= 0,
                f'soft_target_sigma_bins must be >= 0 bins, got {self.soft_target_sigma_bins!r}')
        require(self.grasp_target_weight >= 0,
                f'grasp_target_weight must be >= 0, got {self.grasp_target_weight!r}')
        require(self.grasp_target_scale_m > 0,
                f'grasp_target_scale_m must be > 0 m, got {self.grasp_target_scale_m!r}')
        require(0 <= self.min_lr_ratio <= 1, f'min_lr_ratio must be in [0, 1], got '
                f'{self.min_lr_ratio!r}')
        require(self.warmup_steps >= 0, f'warmup_steps must be >= 0, got {self.warmup_steps}')
        require(self.grad_clip >= 0, f'grad_clip must be >= 0, got {self.grad_clip!r}')
        require(0 <= self.joint_dropout < 1,
                f'joint_dropout must be in [0, 1), got {self.joint_dropout!r}')
        require(self.image_shift_px >= 0,
                f'image_shift_px must be >= 0, got {self.image_shift_px!r}')
        require(self.device == 'auto' or self.device == 'cpu' or self.device.startswith('cuda'),
                f"device must be 'auto', 'cpu' or 'cuda[:N]', got {self.device!r}")

    def to_dict(self) -> dict:
        """Return the resolved config as plain data (what checkpoints store)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict):
        """Build from plain data, naming unknown keys instead of ignoring them."""
        return config_from_dict(cls, data, 'SFT')


def apply_overrides(data: dict, overrides) -> dict:
    """Apply 'a.b=value' overrides (YAML-parsed values) to nested config data."""
    import yaml
    data = dict(data)
    for item in overrides or ():
        key, sep, text = item.partition('=')
        require(bool(sep) and bool(key), f"override must look like 'key=value', got {item!r}")
        target = data
        *parents, leaf = key.split('.')
        for parent in parents:
            target[parent] = dict(target.get(parent) or {})
            target = target[parent]
        target[leaf] = yaml.safe_load(text)
    return data


def load_settings(path, overrides) -> dict:
    """Merge a YAML settings file (optional; sections 'sft' and 'dataset') with overrides."""
    import yaml
    data = {}
    if path:
        with open(path) as handle:
            data = yaml.safe_load(handle) or {}
        unknown = sorted(set(data) - {'sft', 'dataset'})
        if unknown:
            raise ValueError(f'{path}: unknown sections {unknown}; expected sft and dataset')
    return apply_overrides(data, overrides)
