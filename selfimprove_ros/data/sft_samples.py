"""Stage-1 training samples: one per (episode, tick), labels precomputed as index arrays."""

import numpy as np
from torch.utils.data import Dataset

from .grasp_target import TARGET_SIZE, visible_target
from .labels import grid_indices, steps_to_go


def chunk_labels(actions, grid_index, chunk_length: int, has_bc):
    """Return (chunks [T, L, J] float32, mask [T, L] bool) of the actions from each tick.

    Entry k of tick t is the action of tick t + k if that tick was kept (no dropped tick in
    between), has an action and the episode is cloned; other entries repeat the chunk's last
    valid action (zeros when there is none) and are masked out.
    """
    actions = np.asarray(actions, dtype=np.float32)
    length = len(actions)
    offsets = np.arange(chunk_length)
    index = np.minimum(np.arange(length)[:, None] + offsets, length - 1)
    valid = (np.arange(length)[:, None] + offsets < length)
    valid &= grid_index[index] == grid_index[:, None] + offsets
    valid &= ~np.isnan(actions[index]).any(axis=2)
    valid &= np.asarray(has_bc, dtype=bool)[:, None]
    valid = np.cumprod(valid, axis=1).astype(bool)  # a gap ends the chunk
    last = np.maximum(valid.sum(axis=1) - 1, 0)
    source = np.where(valid, index, index[np.arange(length), last][:, None])
    chunks = np.nan_to_num(actions[source])
    chunks[~valid.any(axis=1)] = 0.0
    return chunks.astype(np.float32), valid


class SftSamples(Dataset):
    """Samples of aligned episodes for behaviour cloning and steps-to-go.

    Each item is a dict of numpy values: images uint8 [N_cam, H, W, 3] (camera order of
    `cameras`, default the first episode's), joints float32 [14], action_chunk float32
    [chunk_length, 14] with action_mask bool [chunk_length], steps_to_go float32 [ticks]
    (-1 = unknown), has_bc bool, grasp_target float32 [4] (x, y [m] of each arm's grasp
    point, NaN = none or already grasped; see `grasp_target`), instruction str, episode and
    tick indices. Only ticks with a behaviour-cloning or a steps-to-go label are samples.
    Behaviour cloning uses episodes with outcome 'success' only (see `episode_loader`), and
    never one the simulator says failed (a detector fooled during practice may have called it
    a success). With
    `failed_steps_to_go` >= 0 the last `failed_label_ticks` ticks (0: every tick) of such a
    simulator-verified failure get that steps-to-go label ("not within the horizon" when it
    is the model's largest value). The
    label columns are also arrays over all samples (`bc_labelled`, `steps_labels`,
    `action_chunks`, `action_masks`), so samplers can pick indices without fetching images.
    """

    def __init__(self, episodes, chunk_length: int, cameras=None,
                 failed_steps_to_go: float = -1.0, failed_label_ticks: int = 0):
        if chunk_length < 1:
            raise ValueError(f'chunk_length must be >= 1, got {chunk_length!r}')
        self.failed_steps_to_go = float(failed_steps_to_go)
        self.failed_label_ticks = int(failed_label_ticks)
        self.episodes = list(episodes)
        if not self.episodes:
            raise ValueError('SftSamples needs at least one episode')
        self.cameras = list(cameras or self.episodes[0].images)
        self.chunk_length = int(chunk_length)
        columns = [self._label(i, episode) for i, episode in enumerate(self.episodes)]
        (self.episode_index, self.tick, self.action_chunks, self.action_masks,
         self.steps_labels, self.bc_labelled) = (np.concatenate(c) for c in zip(*columns))

    def has_bc(self, index):
        """Return whether sample(s) `index` (an int or an index array) have a BC label."""
        return self.bc_labelled[index]

    def steps_to_go(self, index):
        """Return the steps-to-go label(s) [ticks] of sample(s) `index`; -1 = unknown."""
        return self.steps_labels[index]

    def _label(self, number, episode):
        missing = [cam for cam in self.cameras if cam not in episode.images]
        if missing:
            raise ValueError(f'episode {episode.episode_id} ({episode.bag_path}) lacks cameras '
                             f'{missing}; load all episodes with the same DatasetConfig')
        grid = grid_indices(episode.length, episode.dropped_ticks)
        failed = episode.verified_success is False  # the simulator's or a person's word
        cloned = episode.cloned
        has_bc = cloned & ~np.isnan(episode.actions).any(axis=1)
        chunks, mask = chunk_labels(episode.actions, grid, self.chunk_length, has_bc)
        if failed:
            steps = np.full(len(grid), self.failed_steps_to_go, dtype=np.float32)
            if self.failed_label_ticks:
                steps[:-self.failed_label_ticks] = -1.0  # looks like a success's: no label
        else:
            steps = steps_to_go(grid, episode.success_tick, cloned)
        keep = has_bc | (steps >= 0)
        ticks = np.flatnonzero(keep)
        return (np.full(len(ticks), number), ticks, chunks[keep], mask[keep], steps[keep],
                has_bc[keep])

    @staticmethod
    def _grasp_target(episode, tick: int, cloned: bool):
        # Only a cloned (successful) episode grasped the object: a failed rollout's gripper may
        # have closed on air, and its grasp point would teach the wrong place.
        if not cloned or episode.grasp_target is None or episode.grasp_ticks is None:
            return np.full(TARGET_SIZE, np.nan, dtype=np.float32)
        return visible_target(episode.grasp_target, episode.grasp_ticks, tick)

    def __len__(self):
        """Return the number of samples."""
        return len(self.tick)

    def __getitem__(self, item):
        """Return sample `item` as a dict of numpy arrays (and the instruction string)."""
        number, tick = int(self.episode_index[item]), int(self.tick[item])
        episode = self.episodes[number]
        return {
            'images': np.stack([episode.images[cam][tick] for cam in self.cameras]),
            'joints': np.asarray(episode.joints[tick], dtype=np.float32),
            'action_chunk': self.action_chunks[item],
            'action_mask': self.action_masks[item],
            'steps_to_go': self.steps_labels[item],
            'has_bc': self.bc_labelled[item],
            'grasp_target': self._grasp_target(episode, tick,
                                               bool(self.bc_labelled[item])),
            'instruction': episode.instruction,
            'episode_index': number,
            'tick': tick,
        }
