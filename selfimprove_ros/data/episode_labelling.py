"""Steps-to-go labels of a finished episode: bag -> d(o_t, g) per tick -> rewards, beside the bag.

The paper labels rewards after each episode with the frozen Stage-1 model, so nothing real-time
depends on them (App. F). Every aligned tick gets d_t [control ticks] and r_t = d_t - d_{t+1};
the last tick gets 0 plus `success_bonus` when the simulator reported success. Rewards are per
tick: a trainer that acts on chunks sums them over each chunk (`decision` marks the ticks at
which a chunk was sampled); the sums telescope to `core.rewards.step_rewards` of d at the
decision ticks.
Every practice episode is labelled whatever its outcome (REINFORCE needs failures too).
The reward model is passed in (anything with `run`, `codec`, `version`, `manifest` and
`filename`, such as runtime.onnx_model.OnnxModel), so labels live with the data they describe
and every floor above data/ (runtime, training, fleet, nodes) reads them with its arrows down.

`steps_to_go.npz` is written into the bag directory atomically, so a reader sees the old file,
the new one or none, never half of one. Fields (T = aligned ticks):

- format: str, FORMAT; episode_id, outcome, instruction, policy_version: str
- tick_ns [T] int64; steps_to_go [T] float32 (d); rewards [T] float32 (r); decision [T] bool
- dropped_ticks [D] int64: grid ticks the bag could not fill (r_t spans such gaps)
- reward_version: str, reward_sha256: str (manifest sha256 of reward.onnx)
- success_bonus float, sim_success int8 (1, 0, -1 = not a sim bag)
- action_tokens [T, K] int64 (-1 where no chunk was sampled) and token_versions [T] str, only
  when the bag recorded policy/action_tokens
"""

from dataclasses import dataclass
import os
from typing import Optional
import zipfile

import numpy as np

from selfimprove_ros.core.atomic_file import atomic_write
from selfimprove_ros.core.rewards import step_rewards

from .dataset_config import DatasetConfig

LABELS_FILE = 'steps_to_go.npz'
FORMAT = 'selfimprove_ros/steps_to_go/1'
_PER_TICK = ('tick_ns', 'steps_to_go', 'rewards', 'decision')
_SCALARS = ('format', 'episode_id', 'outcome', 'instruction', 'policy_version',
            'reward_version', 'reward_sha256', 'success_bonus', 'sim_success')


class BadLabels(ValueError):
    """A labels file that is missing, unreadable or inconsistent; the message names it."""


@dataclass
class TickLabels:
    """What `read_labels` returns: the labels of one episode, per aligned tick."""

    path: str
    episode_id: str
    outcome: str
    instruction: str
    policy_version: str
    reward_version: str
    reward_sha256: str
    success_bonus: float
    sim_success: Optional[bool]
    tick_ns: np.ndarray            # [T] int64
    steps_to_go: np.ndarray        # [T] float32 d(o_t, g) [control ticks]
    rewards: np.ndarray            # [T] float32 r_t [control ticks]
    decision: np.ndarray           # [T] bool, a chunk was sampled at this tick
    dropped_ticks: np.ndarray      # [D] int64
    action_tokens: Optional[np.ndarray] = None   # [T, K] int64, -1 = none
    token_versions: Optional[list] = None        # [T] str, '' = none


def tick_rewards(steps_to_go, success_bonus: float = 0.0, sim_success: bool = False):
    """Return float32 r [T]: r_t = d_t - d_{t+1}, r_{T-1} = 0 (+ bonus on a sim success)."""
    d = np.asarray(steps_to_go, dtype=np.float64)
    if d.ndim != 1 or len(d) == 0:
        raise ValueError(f'rewards need d at >= 1 tick, got shape {d.shape}')
    if not np.all(np.isfinite(d)):
        raise ValueError('steps-to-go contains NaN or inf; the reward model is broken')
    rewards = np.zeros(len(d), dtype=np.float64)
    if len(d) > 1:
        rewards[:-1] = step_rewards(d)
    if sim_success:
        rewards[-1] += success_bonus
    return rewards.astype(np.float32)


def episode_inputs(episode, codec, instruction: str = ''):
    """Return (images [T, N, H, W, 3] uint8, joints [T, 14] float32, ids [L] int64)."""
    cfg = codec.config
    missing = [cam for cam in cfg.cameras if cam not in episode.images]
    if missing:
        raise ValueError(f'episode {episode.episode_id} lacks cameras {missing} that the reward '
                         f'model needs (it has {sorted(episode.images)})')
    images = np.stack([episode.images[cam] for cam in cfg.cameras], axis=1)
    if images.shape[2:4] != (cfg.image_height, cfg.image_width):
        raise ValueError(f'episode {episode.episode_id} frames are {images.shape[2:4]}, the '
                         f'reward model wants {(cfg.image_height, cfg.image_width)}')
    text = episode.instruction or instruction
    ids = codec.encode_instructions([text])[0]
    return (np.ascontiguousarray(images, dtype=np.uint8),
            np.asarray(episode.joints, dtype=np.float32), ids)


def predict_steps_to_go(model, images, joints, instruction_ids, batch_size: int = 32):
    """Run the reward model over every tick in batches; return d [T] float32 [control ticks]."""
    out = []
    for begin in range(0, len(images), batch_size):
        end = min(begin + batch_size, len(images))
        ids = np.repeat(instruction_ids[None], end - begin, axis=0)
        out.append(np.asarray(model.run(images[begin:end], joints[begin:end], ids)[1],
                              dtype=np.float32).reshape(-1))
    d = np.concatenate(out) if out else np.zeros(0, dtype=np.float32)
    if len(d) != len(images):
        raise ValueError(f'reward model returned {len(d)} values for {len(images)} ticks')
    return d


def label_episode(episode, model, success_bonus: float = 0.0, batch_size: int = 32,
                  instruction: str = '') -> dict:
    """Return the npz fields (see the module docstring) of one aligned Episode."""
    d = predict_steps_to_go(model, *episode_inputs(episode, model.codec, instruction),
                            batch_size=batch_size)
    sim_success = episode.sim_success
    labels = {
        'format': FORMAT, 'episode_id': episode.episode_id, 'outcome': episode.outcome,
        'instruction': episode.instruction or instruction,
        'policy_version': episode.policy_version,
        'reward_version': model.version,
        'reward_sha256': model.manifest['files'][model.filename]['sha256'],
        'success_bonus': float(success_bonus),
        'sim_success': -1 if sim_success is None else int(bool(sim_success)),
        'tick_ns': np.asarray(episode.tick_ns, dtype=np.int64),
        'steps_to_go': d,
        'rewards': tick_rewards(d, success_bonus, bool(sim_success)),
        'dropped_ticks': np.asarray(episode.dropped_ticks, dtype=np.int64),
        'decision': np.zeros(len(d), dtype=bool),
    }
    if episode.action_tokens is not None:
        tokens = np.asarray(episode.action_tokens, dtype=np.int64)
        labels['action_tokens'] = tokens
        labels['decision'] = (tokens >= 0).any(axis=1)
    if episode.token_versions is not None:
        labels['token_versions'] = np.asarray(list(episode.token_versions), dtype=str)
    return labels


def write_labels(bag_dir: str, labels: dict) -> str:
    """Write `labels` to <bag_dir>/steps_to_go.npz atomically; return its path."""
    path = os.path.join(bag_dir, LABELS_FILE)
    with atomic_write(path, binary=True) as stream:
        np.savez(stream, **{key: np.asarray(value) for key, value in labels.items()})
    return path


def labelling_dataset_config(model, control_period_s: float = 0.1):
    """Return the DatasetConfig that aligns a bag the way the reward model needs it."""
    cfg = model.codec.config
    # No cache: a practice bag is labelled once. include_failed only matters to load_episodes;
    # load_episode returns every outcome, and every one is labelled.
    return DatasetConfig(cameras=list(cfg.cameras), image_height=cfg.image_height,
                         image_width=cfg.image_width, control_period_s=control_period_s,
                         include_failed=True, cache_dir='')


def label_bag(bag_dir: str, model, control_period_s: float = 0.1, success_bonus: float = 0.0,
              batch_size: int = 32, instruction: str = '') -> str:
    """Label one episode bag with a loaded reward model; return the path of its npz.

    Raises data.bag_streams.BadBag when the bag cannot become an episode.
    """
    # Late: the bag reader is only needed to label, not by a reader of labels.
    from .episode_loader import load_episode
    episode = load_episode(bag_dir, labelling_dataset_config(model, control_period_s))
    labels = label_episode(episode, model, success_bonus, batch_size, instruction)
    return write_labels(bag_dir, labels)


def read_labels(bag_dir: str) -> TickLabels:
    """Read and check <bag_dir>/steps_to_go.npz (or a path to the file itself); raise BadLabels."""
    path = bag_dir if str(bag_dir).endswith('.npz') else os.path.join(bag_dir, LABELS_FILE)
    if not os.path.isfile(path):
        raise BadLabels(f'{path} does not exist; the episode was not labelled yet (run '
                        'reward_scorer_node, or label_bag on the bag)')
    try:
        with np.load(path, allow_pickle=False) as data:
            fields = {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise BadLabels(f'{path} is not a readable npz ({error}); delete it and label the bag '
                        'again') from error
    missing = [key for key in _SCALARS + _PER_TICK + ('dropped_ticks',) if key not in fields]
    if missing:
        raise BadLabels(f'{path} lacks {missing}; label the bag again')
    if str(fields['format']) != FORMAT:
        raise BadLabels(f'{path} has format {str(fields["format"])!r}, expected {FORMAT!r}')
    _check_arrays(path, fields)
    sim = int(fields['sim_success'])
    return TickLabels(
        path=path, **{key: str(fields[key]) for key in (
            'episode_id', 'outcome', 'instruction', 'policy_version', 'reward_version',
            'reward_sha256')},
        success_bonus=float(fields['success_bonus']), sim_success=None if sim < 0 else bool(sim),
        **{key: fields[key] for key in _PER_TICK + ('dropped_ticks',)},
        action_tokens=fields.get('action_tokens'),
        token_versions=[str(v) for v in fields['token_versions']]
        if 'token_versions' in fields else None)


def _check_arrays(path: str, fields: dict):
    length = len(np.atleast_1d(fields['tick_ns']))
    if length == 0:
        raise BadLabels(f'{path} holds zero ticks')
    for key in _PER_TICK + ('action_tokens', 'token_versions'):
        if key in fields and (fields[key].ndim < 1 or len(fields[key]) != length):
            raise BadLabels(f'{path}: {key} has shape {fields[key].shape}, expected {length} '
                            'rows (one per tick)')
    d, r = fields['steps_to_go'], fields['rewards']
    if not (np.all(np.isfinite(d)) and np.all(np.isfinite(r))):
        raise BadLabels(f'{path}: steps_to_go or rewards contain NaN or inf')
    if not np.allclose(r[:-1], d[:-1] - d[1:], atol=1e-4):
        raise BadLabels(f'{path}: rewards are not d_t - d_(t+1) of its steps_to_go; the file '
                        'was altered')
