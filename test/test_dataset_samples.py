"""SftSamples, the episode split, DatasetConfig and the image helpers on hand-built episodes."""

import numpy as np
import pytest
import torch
from rosbags.typesys import get_typestore, Stores

from selfimprove_ros.data.dataset_config import DatasetConfig
from selfimprove_ros.data.episode import Episode
from selfimprove_ros.data.episode_split import split_by_episode
from selfimprove_ros.data.images import image_to_rgb, resize_rgb
from selfimprove_ros.data.sft_samples import chunk_labels, SftSamples

TS = get_typestore(Stores.ROS2_HUMBLE)
P = 100_000_000


def make_episode(length=6, outcome='success', success_tick=3, dropped=(), nan_actions=(),
                 episode_id='ep', cameras=('cam_high', 'cam_low')):
    ticks = np.delete(np.arange(length + len(dropped)), list(dropped))
    actions = (ticks[:, None] * 10 + np.arange(14)).astype(np.float32)
    actions[list(nan_actions)] = np.nan
    images = {cam: np.full((length, 4, 6, 3), 50 * c, dtype=np.uint8) + np.arange(
        length, dtype=np.uint8)[:, None, None, None] for c, cam in enumerate(cameras)}
    return Episode(bag_path='/bags/' + episode_id, episode_id=episode_id, robot='aloha1',
                   task='transfer_cube', instruction='hand over the cube',
                   policy_version='expert', outcome=outcome, tick_ns=ticks * P,
                   joints=np.repeat(ticks[:, None], 14, axis=1).astype(np.float32),
                   actions=actions, images=images, success_tick=success_tick,
                   dropped_ticks=list(dropped))


def test_sample_fields_shapes_and_labels():
    samples = SftSamples([make_episode()], chunk_length=3)
    assert len(samples) == 6
    item = samples[1]
    assert item['images'].shape == (2, 4, 6, 3) and item['images'].dtype == np.uint8
    assert item['images'][0, 0, 0, 0] == 1 and item['images'][1, 0, 0, 0] == 51
    assert item['joints'].dtype == np.float32 and item['joints'][0] == 1
    np.testing.assert_array_equal(item['action_chunk'][:, 0], [10, 20, 30])
    assert item['action_mask'].all() and item['has_bc'] and item['steps_to_go'] == 2.0
    assert item['instruction'] == 'hand over the cube'
    # Past the end the chunk repeats the last action and is masked.
    last = samples[5]
    np.testing.assert_array_equal(last['action_chunk'][:, 0], [50, 50, 50])
    np.testing.assert_array_equal(last['action_mask'], [True, False, False])
    assert last['steps_to_go'] == 0.0


def test_camera_order_follows_the_request():
    samples = SftSamples([make_episode()], chunk_length=1, cameras=['cam_low', 'cam_high'])
    assert samples[0]['images'][0, 0, 0, 0] == 50 and samples[0]['images'][1, 0, 0, 0] == 0
    with pytest.raises(ValueError, match="lacks cameras \\['cam_left_wrist'\\]"):
        SftSamples([make_episode()], chunk_length=1, cameras=['cam_left_wrist'])


def test_chunks_stop_at_dropped_ticks_and_missing_actions():
    episode = make_episode(length=6, dropped=[3], nan_actions=[4])  # grid 0 1 2 4 5 6
    samples = SftSamples([episode], chunk_length=3)
    chunks = {int(samples.tick[i]): samples[i] for i in range(len(samples))}
    np.testing.assert_array_equal(chunks[1]['action_mask'], [True, True, False])
    np.testing.assert_array_equal(chunks[1]['action_chunk'][:, 0], [10, 20, 20])
    np.testing.assert_array_equal(chunks[3]['action_mask'], [True, False, False])  # tick 4 NaN
    # Tick 4 (grid 5) has no action: no BC label, but it still has steps-to-go (0).
    assert not chunks[4]['has_bc'] and chunks[4]['steps_to_go'] == 0
    assert not chunks[4]['action_mask'].any() and not chunks[4]['action_chunk'].any()
    assert chunks[0]['steps_to_go'] == 4  # success at kept tick 3 = grid tick 4


def test_failed_episode_has_no_bc_and_steps_only_until_success():
    reached = make_episode(outcome='timeout', success_tick=2, episode_id='reached')
    never = make_episode(outcome='timeout', success_tick=None, episode_id='never')
    samples = SftSamples([reached, never], chunk_length=2)
    assert not samples.bc_labelled.any() and not samples.has_bc(0)
    np.testing.assert_array_equal(samples.tick, [0, 1, 2])  # `never` has nothing to teach
    np.testing.assert_array_equal(samples.steps_to_go(np.arange(3)), [2, 1, 0])
    assert not samples.action_masks.any()


def test_dataloader_collates_a_batch():
    loader = torch.utils.data.DataLoader(SftSamples([make_episode()], 5), batch_size=4)
    batch = next(iter(loader))
    assert batch['images'].shape == (4, 2, 4, 6, 3) and batch['images'].dtype == torch.uint8
    assert batch['action_chunk'].shape == (4, 5, 14) and batch['has_bc'].dtype == torch.bool
    assert batch['instruction'] == ['hand over the cube'] * 4


def test_chunk_labels_vectorised_against_a_loop():
    rng = np.random.default_rng(0)
    actions = rng.normal(size=(30, 14)).astype(np.float32)
    actions[rng.choice(30, 5, replace=False)] = np.nan
    grid = np.sort(rng.choice(40, 30, replace=False))
    has_bc = ~np.isnan(actions).any(axis=1)
    chunks, mask = chunk_labels(actions, grid, 4, has_bc)
    for t in range(30):
        last = None
        for k in range(4):
            ok = (t + k < 30 and grid[t + k] == grid[t] + k and has_bc[t + k]
                  and (k == 0 or mask[t, k - 1]) and has_bc[t])
            assert mask[t, k] == ok, (t, k)
            if ok:
                last = actions[t + k]
            expected = last if last is not None else np.zeros(14)
            np.testing.assert_array_equal(chunks[t, k], expected)


def test_split_is_deterministic_by_episode_and_keeps_one_episode_in_train():
    episodes = [make_episode(episode_id=f'ep{i}') for i in range(10)]
    train, val = split_by_episode(episodes, 0.2, seed=1)
    assert len(val) == 2 and len(train) == 8
    assert {e.episode_id for e in train}.isdisjoint(e.episode_id for e in val)
    again_train, again_val = split_by_episode(list(reversed(episodes)), 0.2, seed=1)
    assert {e.episode_id for e in again_val} == {e.episode_id for e in val}
    other = split_by_episode(episodes, 0.2, seed=2)[1]
    assert {e.episode_id for e in other} != {e.episode_id for e in val}
    assert split_by_episode(episodes[:1], 0.5, seed=0) == (episodes[:1], [])
    assert len(split_by_episode(episodes[:2], 0.01, seed=0)[1]) == 1
    assert split_by_episode(episodes, 0.0)[1] == []
    with pytest.raises(ValueError, match='repeat'):
        split_by_episode(episodes[:1] * 2, 0.5)


@pytest.mark.parametrize('changes, shown', [
    ({'cameras': ['cam_top']}, "'cam_top'"), ({'cameras': []}, '[]'),
    ({'cameras': ['cam_high', 'cam_high']}, 'repeat'), ({'image_height': 0}, '0'),
    ({'control_period_s': -0.1}, '-0.1'), ({'max_image_age_s': 5.0}, '5.0'),
    ({'action_source': 'teleop'}, "'teleop'"), ({'val_fraction': 1.0}, '1.0'),
])
def test_config_rejects_bad_values_and_shows_them(changes, shown):
    with pytest.raises(ValueError) as error:
        DatasetConfig(**changes)
    assert shown in str(error.value)


def test_resize_and_image_decoding():
    image = np.zeros((8, 12, 3), dtype=np.uint8)
    image[:4] = 200
    small = resize_rgb(image, 2, 3)
    assert small.shape == (2, 3, 3) and small[0, 0, 0] == 200 and small[1, 0, 0] == 0
    header = TS.types['std_msgs/msg/Header'](
        stamp=TS.types['builtin_interfaces/msg/Time'](sec=0, nanosec=0), frame_id='c')
    pixels = np.zeros((2, 5, 3), dtype=np.uint8)
    pixels[..., 0] = 9  # blue in bgr8
    padded = np.concatenate([pixels.reshape(2, 15), np.ones((2, 1), np.uint8)], axis=1)
    msg = TS.types['sensor_msgs/msg/Image'](header=header, height=2, width=5, encoding='bgr8',
                                            is_bigendian=0, step=16, data=padded.reshape(-1))
    rgb = image_to_rgb(msg)
    assert rgb.shape == (2, 5, 3) and (rgb[..., 2] == 9).all() and (rgb[..., 0] == 0).all()
    msg.encoding = 'mono8'
    with pytest.raises(ValueError, match="'mono8'"):
        image_to_rgb(msg)
    msg.encoding, msg.data = 'rgb8', padded.reshape(-1)[:20]
    with pytest.raises(ValueError, match='holds 20 bytes'):
        image_to_rgb(msg)


def test_a_simulator_verified_failure_is_never_cloned_and_may_teach_beyond_horizon():
    # A detector fooled during practice called it a success; the simulator says it failed.
    fooled = make_episode(outcome='success', success_tick=5, episode_id='fooled')
    fooled.sim_success = False
    demo = make_episode(episode_id='demo')
    demo.sim_success = True
    unlabelled = SftSamples([demo, fooled], chunk_length=2)
    assert set(unlabelled.episode_index.tolist()) == {0}  # no label of any kind from it
    taught = SftSamples([demo, fooled], chunk_length=2, failed_steps_to_go=150.0)
    rows = taught.episode_index == 1
    assert rows.sum() == fooled.length and not taught.has_bc(np.flatnonzero(rows)).any()
    np.testing.assert_array_equal(taught.steps_to_go(np.flatnonzero(rows)), 150.0)
    np.testing.assert_array_equal(taught.steps_to_go(np.flatnonzero(~rows)),
                                  unlabelled.steps_to_go(np.arange(len(unlabelled))))
    # Only its last ticks, where the failure shows, when asked: the rest looks like a success.
    last = SftSamples([demo, fooled], chunk_length=2, failed_steps_to_go=150.0,
                      failed_label_ticks=3)
    rows = last.episode_index == 1
    assert last.tick[rows].tolist() == list(range(fooled.length - 3, fooled.length))
    np.testing.assert_array_equal(last.steps_to_go(np.flatnonzero(rows)), 150.0)


def test_failed_labels_need_failed_episodes_loaded():
    with pytest.raises(ValueError, match='include_failed'):
        DatasetConfig(failed_steps_to_go=150.0)
    with pytest.raises(ValueError, match='got -2'):
        DatasetConfig(include_failed=True, failed_steps_to_go=-2)
    assert DatasetConfig(include_failed=True, failed_steps_to_go=150.0).failed_steps_to_go == 150
