"""`selfimprove bag import-act`: ACT HDF5 episodes -> episode bags -> aligned episodes."""

import os

import h5py
import numpy as np
import pytest

from selfimprove_ros.cli.main import main
from selfimprove_ros.data.act_hdf5 import import_act_episode, tick_frames
from selfimprove_ros.data.dataset_config import DatasetConfig
from selfimprove_ros.data.episode_loader import load_episodes
from selfimprove_ros.sim.aloha_sim import INSTRUCTIONS

FRAMES = 23  # at 50 Hz: ticks at frames 0 5 10 15 20, commands from frames 4 9 14 19 22
ACT_CAMS = {'top': 0, 'left_wrist': 50, 'cam_low': 100}


def write_act_file(path, frames=FRAMES, gripper_scale=1.0):
    qpos = np.arange(frames)[:, None] * 0.01 + np.arange(14) * 0.001
    action = qpos + 0.002
    for data in (qpos, action):
        data[:, [6, 13]] *= gripper_scale
    with h5py.File(path, 'w') as h5:
        h5.attrs['sim'] = True
        h5['/observations/qpos'] = qpos
        h5['/observations/qvel'] = np.zeros_like(qpos)
        h5['/action'] = action
        for cam, offset in ACT_CAMS.items():
            h5[f'/observations/images/{cam}'] = (
                np.full((frames, 8, 12, 3), offset, np.uint8)
                + np.arange(frames, dtype=np.uint8)[:, None, None, None])
    return qpos, action


def test_tick_frames_subsample_50hz_to_10hz():
    frames, commands = tick_frames(FRAMES, 50.0, 0.1)
    np.testing.assert_array_equal(frames, [0, 5, 10, 15, 20])
    np.testing.assert_array_equal(commands, [4, 9, 14, 19, 22])
    with pytest.raises(ValueError, match='--fps 48 is not a whole multiple'):
        tick_frames(FRAMES, 48.0, 0.1)


def test_act_episodes_round_trip_through_load_episodes(tmp_path):
    source = tmp_path / 'sim_transfer_cube_scripted'
    source.mkdir()
    qpos, action = write_act_file(source / 'episode_0.hdf5')
    write_act_file(source / 'episode_1.hdf5', frames=12)
    assert main(['bag', 'import-act', str(source), '--out', str(tmp_path / 'bags')]) == 0
    config = DatasetConfig(cameras=['cam_high', 'cam_low', 'cam_left_wrist'],
                           image_height=8, image_width=12, cache_dir='')
    episodes, skipped = load_episodes(tmp_path / 'bags', config, log=print)
    assert skipped == [] and sorted(e.length for e in episodes) == [3, 5]
    episode = next(e for e in episodes if e.length == 5)
    assert episode.episode_id.startswith('episode_0-')
    assert (episode.task, episode.instruction, episode.outcome, episode.robot) == (
        'transfer_cube', INSTRUCTIONS['transfer_cube'], 'success', 'aloha1')
    assert episode.extra['action_source'] == 'commands' and episode.extra['sim'] is True
    np.testing.assert_array_equal(np.diff(episode.tick_ns), [100_000_000] * 4)
    np.testing.assert_allclose(episode.joints, qpos[[0, 5, 10, 15, 20]], atol=1e-6)
    np.testing.assert_allclose(episode.actions, action[[4, 9, 14, 19, 22]], atol=1e-6)
    for cam, offset in (('cam_high', 0), ('cam_left_wrist', 50), ('cam_low', 100)):
        np.testing.assert_array_equal(episode.images[cam][:, 0, 0, 0],
                                      offset + np.array([0, 5, 10, 15, 20]))
    assert episode.success_tick == 4 and episode.sim_success is None


def test_bad_act_files_are_named_and_the_rest_imported(tmp_path, capsys):
    source = tmp_path / 'act'
    source.mkdir()
    write_act_file(source / 'episode_0.hdf5')
    write_act_file(source / 'episode_1.hdf5', gripper_scale=40.0)  # raw, not normalised
    with h5py.File(source / 'episode_2.hdf5', 'w') as h5:
        h5['/action'] = np.zeros((3, 14))
    code = main(['bag', 'import-act', str(source), '--out', str(tmp_path / 'bags'),
                 '--task', 'transfer_cube', '--instruction', 'do it'])
    out = capsys.readouterr().out
    assert code == 1 and '1 episode bags written' in out
    assert 'FAILED' in out and 'episode_1.hdf5' in out and 'expected ACT-normalised' in out
    assert 'episode_2.hdf5' in out and 'is not an ACT episode' in out
    assert len([d for d in os.listdir(tmp_path / 'bags')]) == 1
    with pytest.raises(FileExistsError, match='refusing to reuse'):
        import_act_episode(str(source / 'episode_0.hdf5'), str(tmp_path / 'bags'),
                           task='transfer_cube')
