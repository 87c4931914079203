"""Synthetic aligned episodes whose pictures show progress, for training tests."""

import numpy as np

from selfimprove_ros.core.joints import START_POSE
from selfimprove_ros.data.episode import Episode

INSTRUCTION = 'pick up the cube and hand it over'


def synthetic_episode(index: int, ticks: int = 12, height: int = 24, width: int = 32,
                      success: bool = True) -> Episode:
    """Return an episode where a bright bar sweeps across the image as the arm moves.

    Joint 0 ramps with the tick and the bar's column follows it, so both heads can learn the
    episode from the picture: actions (the next joint positions) and steps-to-go.
    """
    rng = np.random.default_rng(index)
    start = np.asarray(START_POSE, dtype=np.float32)
    joints = np.repeat(start[None], ticks + 1, axis=0)
    joints[:, 0] += np.linspace(0.0, 0.8, ticks + 1) + rng.normal(0, 0.01)
    joints[:, 1] += np.linspace(0.0, -0.4, ticks + 1)
    images = np.full((ticks, height, width, 3), 20, dtype=np.uint8)
    for tick in range(ticks):
        column = int(tick / max(ticks - 1, 1) * (width - 4))
        images[tick, :, column:column + 4] = 230
    return Episode(
        bag_path=f'/synthetic/ep{index}', episode_id=f'ep{index}', robot='aloha1',
        task='transfer_cube', instruction=INSTRUCTION, policy_version='scripted',
        outcome='success' if success else 'timeout',
        tick_ns=np.arange(ticks, dtype=np.int64) * 100_000_000,
        joints=joints[:-1].copy(), actions=joints[1:].copy(), images={'cam_high': images},
        success_tick=ticks - 1 if success else None)


def tiny_sft_config(steps: int, **changes):
    """Return an SftConfig of a very small model that trains in seconds on a CPU."""
    from selfimprove_ros.model.model_config import ModelConfig
    from selfimprove_ros.training.sft_config import SftConfig
    model = ModelConfig(cameras=['cam_high'], image_height=24, image_width=32, hidden_dim=32,
                        chunk_length=2, action_bins=16, steps_to_go_max=20, steps_to_go_bins=21,
                        max_instruction_tokens=8)
    # One-hot targets: the tests read the BC loss as a fit to the labels, and soft targets
    # keep it above their own entropy.
    values = dict(steps=steps, batch_size=16, lr=3e-3, warmup_steps=5, eval_every=10,
                  eval_batches=2, checkpoint_every=10, device='cpu', torch_threads=1,
                  soft_target_sigma_bins=0.0, model=model)
    values.update(changes)
    return SftConfig(**values)


def synthetic_sft_data(episodes=4, val=1, chunk=2):
    """Return SftData over synthetic episodes (the last `val` ones validate)."""
    from selfimprove_ros.data.sft_samples import SftSamples
    from selfimprove_ros.training.sft_data import SftData
    eps = [synthetic_episode(i) for i in range(episodes + val)]
    train, held = eps[:episodes], eps[episodes:]
    return SftData(train=SftSamples(train, chunk, ['cam_high']),
                   val=SftSamples(held, chunk, ['cam_high']) if held else [],
                   train_episodes=train, val_episodes=held, skipped=[],
                   config_dict={'synthetic': True},
                   split_ids={'train': [e.episode_id for e in train],
                              'val': [e.episode_id for e in held]})


def tiny_stage1(root) -> str:
    """Train a tiny Stage 1 on synthetic episodes under `root`; return its model directory 's1'."""
    from selfimprove_ros.training.run_export import export_run
    from selfimprove_ros.training.sft_trainer import SftTrainer
    SftTrainer(synthetic_sft_data(), str(root / 'sft'), tiny_sft_config(4),
               log=lambda *_: None).run()
    return export_run(str(root / 'sft'), str(root / 'model'), version='s1')
