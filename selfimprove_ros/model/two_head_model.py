"""The Stage-1 model: one observation trunk, an action-token head and a steps-to-go head.

As in "Self-Improving Embodied Foundation Models" (arXiv 2509.15155), a single network reads
the cameras, the joint state and the instruction, and answers two questions: which action tokens
come next (behaviour cloning) and how many control ticks remain until the goal (the steps-to-go
estimate that Stage 2 turns into a reward). Every preprocessing step happens inside `forward`,
so the exported ONNX graph takes raw uint8 pixels, raw joints [rad; gripper 0..1] and word ids.
"""

import numpy as np
import torch
from torch import nn

from selfimprove_ros.core.joints import NUM_JOINTS
from selfimprove_ros.data.grasp_target import TARGET_SIZE as GRASP_TARGET_SIZE
from selfimprove_ros.model.encoders import build_encoder

# Joints whose demonstrations barely move would otherwise be divided by ~0.
MIN_JOINT_STD = 1e-3


def _mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    """Return Linear -> GELU -> Linear."""
    return nn.Sequential(nn.Linear(inputs, hidden), nn.GELU(), nn.Linear(hidden, outputs))


class ResidualBlock(nn.Module):
    """x + MLP(LayerNorm(x)), pre-norm as in transformer feed-forward blocks."""

    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.mlp = _mlp(width, 2 * width, width)

    def forward(self, x):
        """Return x plus the block's update."""
        return x + self.mlp(self.norm(x))


class ActionHead(nn.Module):
    """Trunk [B, hidden] -> logits [B, chunk * 14, bins] for every action token at once.

    One Linear makes a small d_token vector per token, a learned position embedding marks which
    (step, joint) it is, and a Linear shared by all tokens maps it to bin logits; so the head
    grows with chunk * 14 * d_token, not chunk * 14 * bins.
    """

    def __init__(self, hidden: int, tokens: int, bins: int, token_dim: int = 64):
        super().__init__()
        self.tokens, self.token_dim = tokens, token_dim
        self.expand = nn.Linear(hidden, tokens * token_dim)
        self.position = nn.Parameter(torch.randn(tokens, token_dim) * 0.02)
        self.norm = nn.LayerNorm(token_dim)
        self.act = nn.GELU()
        self.logits = nn.Linear(token_dim, bins)

    def forward(self, trunk):
        """Return [B, tokens, bins] logits."""
        tokens = self.expand(trunk).view(-1, self.tokens, self.token_dim) + self.position
        return self.logits(self.act(self.norm(tokens)))


class TwoHeadModel(nn.Module):
    """Cameras + joints + instruction -> (action-token logits, steps-to-go logits).

    forward(images uint8 [B, N_cam, H, W, 3], joints float32 [B, 14],
    instruction int64 [B, max_instruction_tokens]) returns action_logits
    [B, chunk_length * 14, action_bins] (token k is chunk step k // 14, joint k % 14) and
    stg_logits [B, steps_to_go_bins].
    """

    def __init__(self, config, vocab_size: int, joint_mean, joint_std):
        super().__init__()
        self.config, self.vocab_size = config, int(vocab_size)
        hidden, cameras = config.hidden_dim, len(config.cameras)
        joint_mean = np.asarray(joint_mean, dtype=np.float32).reshape(-1)
        joint_std = np.asarray(joint_std, dtype=np.float32).reshape(-1)
        if joint_mean.shape != (NUM_JOINTS,) or joint_std.shape != (NUM_JOINTS,):
            raise ValueError(f'joint_mean and joint_std need {NUM_JOINTS} values each, got '
                             f'{joint_mean.shape} and {joint_std.shape}')
        self.register_buffer('joint_mean', torch.from_numpy(joint_mean.copy()))
        self.register_buffer('joint_std',
                             torch.from_numpy(np.maximum(joint_std, MIN_JOINT_STD)))

        self.encoder = build_encoder(config)
        self.camera_projection = nn.Linear(self.encoder.feature_dim, hidden)
        self.camera_embedding = nn.Parameter(torch.randn(cameras, hidden) * 0.02)
        self.camera_norm = nn.LayerNorm(hidden)
        self.joint_mlp = _mlp(NUM_JOINTS, hidden, hidden)
        self.word_embedding = nn.Embedding(self.vocab_size, hidden, padding_idx=0)
        self.fuse = nn.Sequential(nn.Linear((cameras + 2) * hidden, hidden), nn.LayerNorm(hidden),
                                  nn.GELU())
        self.trunk = nn.Sequential(ResidualBlock(hidden), ResidualBlock(hidden),
                                   nn.LayerNorm(hidden))
        self.action_head = ActionHead(hidden, config.chunk_length * NUM_JOINTS,
                                      config.action_bins)
        self.steps_to_go_head = _mlp(hidden, hidden, config.steps_to_go_bins)
        # Training only, never exported: where each gripper will grasp, read linearly from the
        # camera tokens alone, so that they must locate the object (training/losses.py).
        self.grasp_head = nn.Linear(cameras * hidden, GRASP_TARGET_SIZE)
        if config.freeze_encoder:
            self.encoder.requires_grad_(False)
        self.train()

    def train(self, mode: bool = True):
        """Set training mode; a frozen encoder stays in eval mode (fixed BatchNorm statistics)."""
        super().train(mode)
        if self.config.freeze_encoder:
            self.encoder.eval()
        return self

    def policy_parameters(self) -> list:
        """Return the parameters Stage 2 trains: all but the vision encoder's."""
        encoder = {id(p) for p in self.encoder.parameters()}
        return [p for p in self.parameters() if id(p) not in encoder]

    def encode_cameras(self, images):
        """Return per-camera tokens [B, N_cam, hidden] of uint8 images [B, N_cam, H, W, 3]."""
        batch, cameras = images.shape[0], images.shape[1]
        pixels = images.flatten(0, 1).permute(0, 3, 1, 2).float() / 255.0
        features = self.encoder(pixels).reshape(batch, cameras, -1)
        tokens = self.camera_projection(features) + self.camera_embedding
        return nn.functional.gelu(self.camera_norm(tokens))

    def encode_instruction(self, instruction):
        """Return the mean word embedding [B, hidden], padding (id 0) ignored."""
        mask = (instruction != 0).unsqueeze(-1).float()
        words = (self.word_embedding(instruction) * mask).sum(dim=1)
        return words / mask.sum(dim=1).clamp(min=1.0)

    def encode(self, images, joints, instruction):
        """Return (camera tokens [B, N_cam, hidden], trunk embedding [B, hidden])."""
        cameras = self.encode_cameras(images)
        joints = self.joint_mlp((joints.float() - self.joint_mean) / self.joint_std)
        words = self.encode_instruction(instruction)
        fused = torch.cat([cameras.flatten(1), joints, words], dim=-1)
        return cameras, self.trunk(self.fuse(fused))

    def forward(self, images, joints, instruction, with_grasp: bool = False):
        """Return (action_logits [B, chunk * 14, bins], stg_logits [B, stg_bins]).

        with_grasp (training) appends the grasp prediction [B, 4] in units of the loss's scale.
        """
        cameras, trunk = self.encode(images, joints, instruction)
        outputs = (self.action_head(trunk), self.steps_to_go_head(trunk))
        return outputs + (self.grasp_head(cameras.flatten(1)),) if with_grasp else outputs

    def locate_grasps(self, images):
        """Return the grasp prediction [B, 4] (training units) from the cameras alone."""
        return self.grasp_head(self.encode_cameras(images).flatten(1))


def build_model(config, vocab_size: int, joint_mean, joint_std) -> TwoHeadModel:
    """Return a TwoHeadModel in training mode (the same arguments as its constructor)."""
    return TwoHeadModel(config, vocab_size, joint_mean, joint_std)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Return the number of parameters (only those with requires_grad if trainable_only)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
