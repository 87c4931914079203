"""Balanced SFT batches: half behaviour cloning, half steps-to-go, as the paper's Stage 1.

Which samples make up step s's batch is a pure function of (seed, step), so a resumed run sees
exactly the batches an uninterrupted one would, and every DistributedDataParallel rank can draw
the same global batch and keep only its own shard.
"""

from dataclasses import dataclass

import numpy as np
import torch

from selfimprove_ros.model.codec import ModelCodec


@dataclass
class Batch:
    """Model inputs and both objectives' targets; BC rows first, steps-to-go rows after."""

    images: torch.Tensor        # uint8 [B, N_cam, H, W, 3]
    joints: torch.Tensor        # float32 [B, 14]
    instruction: torch.Tensor   # int64 [B, L]
    action_tokens: torch.Tensor  # int64 [B, chunk*14]
    action_mask: torch.Tensor   # bool [B, chunk*14], False past the episode's end
    steps_bins: torch.Tensor    # int64 [B]
    steps: torch.Tensor         # float32 [B] true steps-to-go [ticks], -1 if unknown
    grasp_target: torch.Tensor  # float32 [B, 4] x, y [m] of each arm's grasp point, NaN = none
    bc_rows: int                # rows [0, bc_rows) train BC; the rest train steps-to-go

    def to(self, device):
        """Return the batch on `device`."""
        moved = {name: getattr(self, name).to(device, non_blocking=True)
                 for name in ('images', 'joints', 'instruction', 'action_tokens', 'action_mask',
                              'steps_bins', 'steps', 'grasp_target')}
        return Batch(**moved, bc_rows=self.bc_rows)


class BalancedSampler:
    """Draw global batches of `batch_size`: half from BC samples, half from steps-to-go ones."""

    def __init__(self, samples, batch_size: int, seed: int, rank: int = 0, world: int = 1):
        everything = np.arange(len(samples))
        self.bc_pool = np.flatnonzero(samples.has_bc(everything))
        self.steps_pool = np.flatnonzero(samples.steps_to_go(everything) >= 0)
        if len(self.bc_pool) == 0 or len(self.steps_pool) == 0:
            raise ValueError(
                f'SFT needs samples for both objectives: {len(self.bc_pool)} behaviour-cloning '
                f'and {len(self.steps_pool)} steps-to-go samples; record successful episodes')
        if batch_size % (2 * world):
            raise ValueError(f'batch_size {batch_size} must split evenly into two halves over '
                             f'{world} processes')
        self.half, self.seed, self.rank, self.world = batch_size // 2, seed, rank, world

    def indices(self, step: int):
        """Return this rank's (bc_indices, steps_indices) of global batch `step`."""
        rng = np.random.default_rng([self.seed, step])
        bc = rng.choice(self.bc_pool, self.half, replace=len(self.bc_pool) < self.half)
        steps = rng.choice(self.steps_pool, self.half, replace=len(self.steps_pool) < self.half)
        return bc[self.rank::self.world], steps[self.rank::self.world]


def collate(samples, indices, codec: ModelCodec, bc_rows: int) -> Batch:
    """Stack samples[indices] into a Batch; the first `bc_rows` are the BC half."""
    items = [samples[int(i)] for i in indices]
    # Actions under a False mask may be NaN (no command recorded); their tokens are ignored.
    chunks = np.nan_to_num(np.stack([item['action_chunk'] for item in items]))
    mask = np.stack([item['action_mask'] for item in items]).astype(bool)
    steps = np.array([item['steps_to_go'] for item in items], dtype=np.float32)
    return Batch(
        images=torch.from_numpy(np.stack([item['images'] for item in items])),
        joints=torch.from_numpy(np.stack([item['joints'] for item in items])),
        instruction=torch.from_numpy(codec.encode_instructions(
            [item['instruction'] for item in items])),
        action_tokens=torch.from_numpy(codec.encode_chunks(chunks)),
        action_mask=torch.from_numpy(np.repeat(mask, chunks.shape[2], axis=1)),
        steps_bins=torch.from_numpy(codec.steps.encode(np.maximum(steps, 0))),
        steps=torch.from_numpy(steps),
        grasp_target=torch.from_numpy(np.stack([item['grasp_target'] for item in items])),
        bc_rows=bc_rows)


def sample_batch(samples, sampler: BalancedSampler, step: int, codec: ModelCodec) -> Batch:
    """Collate this rank's share of global batch `step`."""
    bc, steps = sampler.indices(step)
    return collate(samples, np.concatenate([bc, steps]), codec, bc_rows=len(bc))


def hide_joints(joints: torch.Tensor, mean: torch.Tensor, share: float, seed: int) -> torch.Tensor:
    """Return `joints` [B, 14] with about `share` of the rows replaced by `mean` [14].

    Deterministic in `seed` (the trainer passes one per step, so a resumed run hides the same
    rows). A hidden row says nothing the model could copy: it must read the cameras.
    """
    if share <= 0:
        return joints
    generator = torch.Generator().manual_seed(int(seed))
    hidden = (torch.rand(len(joints), generator=generator) < share).to(joints.device)
    return torch.where(hidden[:, None], mean.to(joints.dtype).expand_as(joints), joints)


def shift_images(images: torch.Tensor, max_shift_px: int, seed: int) -> torch.Tensor:
    """Return `images` [B, N_cam, H, W, C] each shifted by up to `max_shift_px` in x and y.

    Every frame gets its own integer shift; pixels shifted in repeat the edge (DrQ's
    pad-and-crop). Deterministic in `seed`, like `hide_joints`. With ~100 demonstrations a model
    otherwise memorises where things are in the frame instead of where they are relative to each
    other, which is what placing a gripper needs.
    """
    if max_shift_px <= 0:
        return images
    frames, cameras, height, width = images.shape[:4]
    generator = torch.Generator().manual_seed(int(seed))
    shifts = torch.randint(-max_shift_px, max_shift_px + 1, (2, frames, cameras),
                           generator=generator)
    rows = (torch.arange(height)[None, None, :] + shifts[0][..., None]).clamp(0, height - 1)
    cols = (torch.arange(width)[None, None, :] + shifts[1][..., None]).clamp(0, width - 1)
    frame = torch.arange(frames)[:, None, None, None]
    camera = torch.arange(cameras)[None, :, None, None]
    device = images.device
    return images[frame.to(device), camera.to(device), rows[..., :, None].to(device),
                  cols[..., None, :].to(device)]
