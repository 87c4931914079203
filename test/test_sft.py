"""SFT: a tiny model overfits demonstrations; kill and resume; DDP (gloo) equals one process."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from episode_factory import synthetic_sft_data, tiny_sft_config
from selfimprove_ros.training.checkpoint import load_checkpoint, resolve_checkpoint
from selfimprove_ros.training.sft_trainer import SftTrainer

JOB = os.path.join(os.path.dirname(__file__), 'sft_job.py')


def test_a_tiny_model_overfits_a_handful_of_demonstrations(tmp_path):
    trainer = SftTrainer(synthetic_sft_data(episodes=4, val=0), str(tmp_path),
                         tiny_sft_config(200, eval_every=1000), log=lambda *_: None)
    before = trainer.evaluate()
    summary = trainer.run()
    assert summary['step'] == 200
    assert summary['val_bc_loss'] < 0.3 * before['val_bc_loss'], (before, summary)
    assert summary['val_bc_accuracy'] > 0.6 > before['val_bc_accuracy'], (before, summary)
    assert summary['val_steps_mae'] < 0.3 * before['val_steps_mae'], (before, summary)
    for name in ('last.pt', 'best_steps_to_go.pt', 'best_bc.pt'):
        assert os.path.exists(tmp_path / 'checkpoints' / name)
    assert (tmp_path / 'metrics.jsonl').read_text().count('\n') == 1
    assert load_checkpoint(str(tmp_path / 'checkpoints' / 'last.pt'))['config']['steps'] == 200


def _weights(run_dir):
    return load_checkpoint(resolve_checkpoint(str(run_dir), 'last'))['model']


def test_killed_training_resumes_to_the_same_step_and_weights(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    killed = tmp_path / 'killed'
    job = subprocess.Popen([sys.executable, JOB, str(killed), '40'], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = killed / 'checkpoints' / 'last.pt'
    deadline = time.monotonic() + 120
    while not last.exists() and time.monotonic() < deadline and job.poll() is None:
        time.sleep(0.05)
    job.send_signal(signal.SIGKILL)
    job.wait()
    interrupted_at = load_checkpoint(str(last))['step']
    assert 10 <= interrupted_at < 40, 'the job should have been killed mid-run'
    resumed = SftTrainer(synthetic_sft_data(), str(killed), tiny_sft_config(40),
                         log=lambda *_: None)
    assert resumed.step == interrupted_at
    assert resumed.run()['step'] == 40
    straight = SftTrainer(synthetic_sft_data(), str(tmp_path / 'straight'), tiny_sft_config(40),
                          log=lambda *_: None)
    straight.run()
    for name, value in _weights(tmp_path / 'straight').items():
        assert torch.allclose(value, _weights(killed)[name], atol=1e-5), name


def test_last_checkpoint_is_written_by_the_clock_between_step_checkpoints(tmp_path):
    # Slow steps: a kill between two step checkpoints would lose everything since the last.
    trainer = SftTrainer(synthetic_sft_data(), str(tmp_path), tiny_sft_config(
        7, checkpoint_every=1000, eval_every=1000, checkpoint_every_s=30.0),
        log=lambda *_: None)
    now = [0.0]
    trainer.clock, trainer.saved_at_s = (lambda: now[0]), 0.0
    saved = []
    real_save = trainer.save

    def save(name, state=None):
        saved.append((trainer.step, name))
        real_save(name, state)
    trainer.save = save

    def step():
        now[0] += 20.0  # [s] per step
        return real_step()
    real_step, trainer.train_step = trainer.train_step, step
    trainer.run()
    assert [s for s, name in saved if name == 'last.pt'] == [2, 4, 6, 7]
    with pytest.raises(ValueError, match='checkpoint_every_s must be >= 0 s .*got -1'):
        tiny_sft_config(7, checkpoint_every_s=-1)


def test_two_gloo_processes_match_one_process(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), OMP_NUM_THREADS='1')
    single = subprocess.run([sys.executable, JOB, str(tmp_path / 'one'), '20'], env=env,
                            capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-2000:]
    ddp = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone',
                          '--nproc_per_node=2', JOB, str(tmp_path / 'two'), '20'], env=env,
                         capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one = json.loads(single.stdout.strip().splitlines()[-1])
    two = json.loads(ddp.stdout.strip().splitlines()[-1])
    assert abs(one['val_bc_loss'] - two['val_bc_loss']) < 2e-2 * one['val_bc_loss']
    assert abs(one['val_steps_loss'] - two['val_steps_loss']) < 2e-2 * one['val_steps_loss']
    # Adam divides by sqrt(v): where a gradient is ~0, summation-order noise can flip a step's
    # sign, so compare the typical weight, not the single worst one.
    one_w, two_w = _weights(tmp_path / 'one'), _weights(tmp_path / 'two')
    diffs = torch.cat([(one_w[name] - two_w[name]).abs().flatten().float() for name in one_w])
    assert float(diffs.mean()) < 1e-3, float(diffs.mean())
    assert float((diffs > 1e-2).float().mean()) < 0.01


def test_shipped_sft_yaml_is_the_defaults():
    from dataclasses import asdict

    import yaml

    from selfimprove_ros.data.dataset_config import DatasetConfig
    from selfimprove_ros.graph.description import config_path
    from selfimprove_ros.training.sft_config import SftConfig
    with open(config_path('sft.yaml')) as stream:
        shipped = yaml.safe_load(stream)
    assert SftConfig.from_dict(shipped['sft']).to_dict() == SftConfig().to_dict()
    assert asdict(DatasetConfig(**shipped['dataset'])) == asdict(DatasetConfig())
    # Every setting is written out (with its help), not left to the defaults.
    assert set(shipped['sft']) == set(SftConfig().to_dict())
    assert set(shipped['dataset']) == set(asdict(DatasetConfig()))


def test_shifted_images_move_whole_frames_by_at_most_the_shift_with_edges_repeated():
    import pytest

    from selfimprove_ros.training.batches import shift_images
    from selfimprove_ros.training.sft_config import SftConfig
    # Every pixel encodes its own (row, column), so a shifted frame tells its shift.
    rows, cols = torch.meshgrid(torch.arange(12), torch.arange(16), indexing='ij')
    frame = torch.stack([rows, cols, torch.zeros_like(rows)], dim=-1).to(torch.uint8)
    images = frame.expand(64, 2, 12, 16, 3).clone()
    shifted = shift_images(images, 3, seed=5)
    assert shifted.shape == images.shape and shifted.dtype == torch.uint8
    dy = shifted[:, :, 6, 8, 0].long() - 6
    dx = shifted[:, :, 6, 8, 1].long() - 8
    assert dy.abs().max() == 3 and dx.abs().max() == 3  # the whole range is used
    assert len({(int(y), int(x)) for y, x in zip(dy.flatten(), dx.flatten())}) > 20
    for index in range(64):
        for camera in range(2):
            expected = frame[(torch.arange(12) + dy[index, camera]).clamp(0, 11)][
                :, (torch.arange(16) + dx[index, camera]).clamp(0, 15)]
            assert torch.equal(shifted[index, camera], expected)
    assert torch.equal(shift_images(images, 3, seed=5), shifted)
    assert shift_images(images, 0, seed=5) is images
    with pytest.raises(ValueError, match='image_shift_px must be >= 0, got -1'):
        SftConfig(image_shift_px=-1)


def test_hidden_joints_are_the_mean_reproducibly_and_only_in_the_share_asked():
    import pytest

    from selfimprove_ros.training.batches import hide_joints
    from selfimprove_ros.training.sft_config import SftConfig
    joints = torch.arange(2000 * 14, dtype=torch.float32).reshape(2000, 14)
    mean = torch.full((14,), -1.0)
    hidden = hide_joints(joints, mean, 0.5, seed=7)
    rows = (hidden == mean).all(dim=1)
    assert 0.45 < rows.float().mean() < 0.55
    assert torch.equal(hidden[~rows], joints[~rows])
    assert torch.equal(hide_joints(joints, mean, 0.5, seed=7), hidden)
    assert not torch.equal(hide_joints(joints, mean, 0.5, seed=8), hidden)
    assert hide_joints(joints, mean, 0.0, seed=7) is joints
    with pytest.raises(ValueError, match='joint_dropout must be in \\[0, 1\\), got 1.0'):
        SftConfig(joint_dropout=1.0)


def test_a_setting_of_the_wrong_type_is_refused_by_name_and_yaml_floats_are_read():
    from selfimprove_ros.training.reinforce_config import ReinforceConfig
    from selfimprove_ros.training.sft_config import SftConfig
    with pytest.raises(ValueError, match="SFT setting steps must be int, got 'abc'"):
        SftConfig.from_dict({'steps': 'abc'})
    with pytest.raises(ValueError, match="SFT setting lr must be float, got 'abc'"):
        SftConfig.from_dict({'lr': 'abc'})
    with pytest.raises(ValueError, match='steps must be int, got True'):
        SftConfig.from_dict({'steps': True})
    # PyYAML reads 1e-4 (no dot) as a string and 1 as an int; both mean a float setting.
    assert SftConfig.from_dict({'lr': '1e-4'}).lr == 1e-4
    assert ReinforceConfig.from_dict({'lr': 1}).lr == 1.0


class _Payload:
    """An object a full unpickler would rebuild, and so could run code through."""

    def __reduce__(self):
        return (os.system, ('echo pwned',))


def test_a_checkpoint_that_holds_more_than_tensors_and_plain_data_is_refused(tmp_path):
    path = str(tmp_path / 'foreign.pt')
    torch.save({'model': {}, 'config': {}, 'codec': {}, 'step': 0, 'x': _Payload()}, path)
    with pytest.raises(ValueError, match='cannot be read safely .*foreign.pt|foreign.pt.*safely'):
        load_checkpoint(path)
    plain = str(tmp_path / 'plain.pt')
    torch.save({'model': {'w': torch.zeros(2)}, 'config': {'steps': 3}, 'codec': {},
                'step': 1}, plain)
    assert load_checkpoint(plain)['config'] == {'steps': 3}
