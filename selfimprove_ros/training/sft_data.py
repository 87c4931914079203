"""Stage-1 data for a run: demonstrations loaded, split by episode, and turned into samples.

The split is decided once per run and stored (split.json, and inside every checkpoint), so a
resumed run and the value-landscape report use exactly the same held-out episodes even if more
bags have arrived since.
"""

from dataclasses import asdict, dataclass
import json
import os

from selfimprove_ros.data.dataset_config import DatasetConfig
from selfimprove_ros.data.episode_loader import load_episodes
from selfimprove_ros.data.episode_split import split_by_episode
from selfimprove_ros.data.sft_samples import SftSamples


@dataclass
class SftData:
    """Train and validation samples of one run and where they came from."""

    train: SftSamples
    val: list  # SftSamples, or [] when there are too few episodes to hold any out
    train_episodes: list
    val_episodes: list
    skipped: list
    config_dict: dict
    split_ids: dict


def dataset_config(model_config, overrides: dict, run_dir: str) -> DatasetConfig:
    """Return the DatasetConfig: cameras and image size always follow the model's."""
    values = {'cache_dir': os.path.join(run_dir, 'dataset_cache'), **overrides,
              'cameras': list(model_config.cameras), 'image_height': model_config.image_height,
              'image_width': model_config.image_width}
    return DatasetConfig(**values)


def stored_split(run_dir: str):
    """Return the run's stored {'train': [...], 'val': [...]} episode ids, or None."""
    path = os.path.join(run_dir, 'split.json')
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        return json.load(handle)


def apply_split(episodes, split: dict, config: DatasetConfig, log):
    """Keep a stored split; episodes new since then are assigned by the usual rule."""
    val_ids = set(split['val'])
    known = set(split['train']) | val_ids
    new = [ep for ep in episodes if ep.episode_id not in known]
    new_train, new_val = split_by_episode(new, config.val_fraction, config.split_seed) \
        if new else ([], [])
    if new:
        log(f'{len(new)} episodes are new since the run started; {len(new_val)} of them validate')
    val = [ep for ep in episodes if ep.episode_id in val_ids] + new_val
    val_set = {ep.episode_id for ep in val}
    return [ep for ep in episodes if ep.episode_id not in val_set], val


def no_episodes_message(bags, skipped) -> str:
    """Say why `bags` gave nothing to train on: the first skipped bags, or that none were found."""
    if not skipped:
        return (f'no episode bags found in {list(bags)}: give the directories `selfimprove '
                'collect` or the recorder wrote (each bag holds episode.yaml)')
    reasons = '; '.join(f'{path}: {reason}' for path, reason in skipped[:5])
    more = f' (and {len(skipped) - 5} more)' if len(skipped) > 5 else ''
    return f'no usable episodes in {list(bags)}: {reasons}{more}'


def load_sft_data(bags, run_dir: str, config, overrides: dict, log=print) -> SftData:
    """Load demonstrations for SFT config `config`, keeping the run's split if it has one."""
    data_config = dataset_config(config.model, overrides, run_dir)
    episodes, skipped = load_episodes(bags, data_config, log)
    if not episodes:
        raise ValueError(no_episodes_message(bags, skipped))
    split = stored_split(run_dir)
    if split:
        train, val = apply_split(episodes, split, data_config, log)
    else:
        train, val = split_by_episode(episodes, data_config.val_fraction, data_config.split_seed)
    if not val:
        log('no validation episodes (too few bags): validation uses training episodes')
    chunk = config.model.chunk_length
    failed = (data_config.failed_steps_to_go, data_config.failed_label_ticks)
    return SftData(train=SftSamples(train, chunk, data_config.cameras, *failed),
                   val=SftSamples(val, chunk, data_config.cameras, *failed) if val else [],
                   train_episodes=train, val_episodes=val, skipped=skipped,
                   config_dict=asdict(data_config),
                   split_ids={'train': [ep.episode_id for ep in train],
                              'val': [ep.episode_id for ep in val]})


def report_episodes(run_dir: str, state: dict, bags=None, log=print):
    """Return episodes for a value report: `bags`, or the run's validation episodes."""
    from selfimprove_ros.training.sft_config import SftConfig
    config = SftConfig.from_dict(state['config'])
    overrides = {k: v for k, v in state.get('dataset_config', {}).items()
                 if k not in ('cameras', 'image_height', 'image_width')}
    data_config = dataset_config(config.model, overrides, run_dir)
    if bags:
        return load_episodes(bags, data_config, log)[0]
    val_ids = set(state.get('split', {}).get('val', []))
    sources = [os.path.dirname(p) for p in state.get('bag_paths', [])] or None
    if not val_ids or not sources:
        raise ValueError(f'{run_dir}: no stored validation episodes; pass --bags')
    episodes = load_episodes(sorted(set(sources)), data_config, log)[0]
    return [ep for ep in episodes if ep.episode_id in val_ids]
