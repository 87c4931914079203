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


def write_recorder_file(path, frames=FRAMES, height=48, width=64):
    """Write an episode as aloha/record_episodes.py does with COMPRESS: one JPEG (quality 50)
    per zero-padded row, /compress_len [cameras, frames], qvel and effort, sim false."""
    import cv2
    rng = np.random.default_rng(0)
    qpos = rng.uniform(-1, 1, (frames, 14))
    qpos[:, [6, 13]] = rng.uniform(0, 1, (frames, 2))
    action = qpos + 0.01
    names = ['cam_high', 'cam_low', 'cam_left_wrist', 'cam_right_wrist']
    # Smooth images (a gradient per camera and frame) survive JPEG within a few levels.
    y, x = np.mgrid[0:height, 0:width]
    raw = {cam: np.stack([np.stack([np.clip(x * 2 + y + k * 3 + c * 20 + i * 10, 0, 255)
                                    for c in range(3)], -1).astype(np.uint8)
                          for k in range(frames)]) for i, cam in enumerate(names)}
    encoded = {cam: [cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, 50])[1]
                     for image in images] for cam, images in raw.items()}
    lengths = np.array([[len(e) for e in encoded[cam]] for cam in names])
    padded = lengths.max()
    with h5py.File(path, 'w', rdcc_nbytes=1024 ** 2 * 2) as root:
        root.attrs['sim'] = False
        root.attrs['compress'] = True
        for cam in names:
            rows = root.create_dataset(f'/observations/images/{cam}', (frames, padded),
                                       dtype='uint8', chunks=(1, padded))
            for k, jpeg in enumerate(encoded[cam]):
                row = np.zeros(padded, np.uint8)
                row[:len(jpeg)] = jpeg.reshape(-1)
                rows[k] = row
        root['/observations/qpos'] = qpos
        root['/observations/qvel'] = np.zeros_like(qpos)
        root['/observations/effort'] = np.zeros_like(qpos)
        root['/action'] = action
        root['/base_action'] = np.zeros((frames, 2))
        root['/compress_len'] = lengths.astype(np.float64)
    return qpos, raw


def test_compressed_recorder_episodes_import_within_jpeg_loss(tmp_path):
    qpos, raw = write_recorder_file(tmp_path / 'episode_0.hdf5')
    assert main(['bag', 'import-act', str(tmp_path / 'episode_0.hdf5'), '--out',
                 str(tmp_path / 'bags'), '--task', 'transfer_cube']) == 0
    config = DatasetConfig(cameras=['cam_high', 'cam_low', 'cam_left_wrist', 'cam_right_wrist'],
                           image_height=48, image_width=64, cache_dir='')
    (episode,), skipped = load_episodes(tmp_path / 'bags', config, log=print)
    ticks = [0, 5, 10, 15, 20]
    np.testing.assert_allclose(episode.joints, qpos[ticks], atol=1e-6)
    for cam, images in raw.items():
        error = np.abs(episode.images[cam].astype(int) - images[ticks].astype(int))
        assert error.mean() < 3 and error.max() < 40, (cam, error.mean(), error.max())
    assert episode.extra['compressed'] is True


@pytest.mark.parametrize('damage, said', [
    ('not_jpeg', 'cam_high frame 0 is not a JPEG'),
    ('short_rows', '/compress_len says a frame has'),
    ('raw_shape', 'uint8 [23, bytes]')])
def test_a_damaged_compressed_episode_names_its_file_and_field(tmp_path, damage, said):
    from selfimprove_ros.data.act_hdf5 import import_act_dir
    path = tmp_path / 'episode_0.hdf5'
    write_recorder_file(path)
    with h5py.File(path, 'r+') as root:
        rows = root['/observations/images/cam_high']
        if damage == 'not_jpeg':
            rows[0] = np.full(rows.shape[1], 7, np.uint8)
        elif damage == 'short_rows':
            root['/compress_len'][0, 0] = rows.shape[1] + 100
        else:
            del root['/observations/images/cam_high']
            root['/observations/images/cam_high'] = np.zeros((FRAMES, 4, 4), np.uint8)
    bags, failures = import_act_dir(str(path), str(tmp_path / 'bags'), log=lambda *_: None)
    assert bags == [] and len(failures) == 1
    assert str(path) in failures[0][1] and said in failures[0][1], failures
    assert not (tmp_path / 'bags').exists() or os.listdir(tmp_path / 'bags') == []
