"""`selfimprove models --task insertion` at the smallest sizes: demonstrations through the node
graph, SFT, export; and the two-arm grasp target read back from one of its recorded bags."""

import json
import os

import numpy as np
import pytest

from selfimprove_ros.cli.main import main
from selfimprove_ros.cli.models import DEMO_NOISE_STD, RECIPES
from selfimprove_ros.data.dataset_config import DatasetConfig
from selfimprove_ros.data.episode_loader import load_episode

pytestmark = pytest.mark.graph  # records demonstrations through ROS nodes

# Two demonstrations, the shipped recipe's model at its smallest width, two optimizer steps.
TINY = ['sft.steps=2', 'sft.batch_size=8', 'sft.warmup_steps=1', 'sft.eval_every=1',
        'sft.eval_batches=1', 'sft.checkpoint_every=1', 'sft.model.hidden_dim=16']


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp('models')
    work, out = root / 'work', root / 'models'
    assert main(['models', '--task', 'insertion', '--demos', '2', '--rollouts', '0',
                 '--audit-rollouts', '0', '--work', str(work), '--out', str(out),
                 '--set', *TINY]) == 0
    return work, out / 'insertion'


def test_models_builds_an_insertion_model_from_insertion_demonstrations(built):
    _, model_dir = built
    assert sorted(os.listdir(model_dir)) == ['manifest.json', 'manifest.sha256', 'policy.onnx',
                                             'policy.pt', 'reward.onnx']
    with open(model_dir / 'manifest.json') as stream:
        manifest = json.load(stream)
    demos = manifest['provenance']['demonstrations']
    assert demos['task'] == 'insertion' and demos['simulator_seeds'] == [0, 1]
    assert demos['noise_std_rad'] == DEMO_NOISE_STD['insertion'] < DEMO_NOISE_STD['transfer_cube']
    command = manifest['provenance']['command']
    assert command.startswith('selfimprove models --task insertion')
    # The task's recipe comes first, so the command rebuilds it, and --set wins over it.
    assert f'--set {" ".join(RECIPES["insertion"]["sft"])} sft.steps=2' in command
    assert manifest['provenance']['sft_config']['steps'] == 2


def first_object_positions(bag_dir):
    """Return the peg's and the socket's x, y [m] from the bag's first sim/state (full qpos)."""
    from rosbags.rosbag2 import Reader
    from rosbags.typesys import get_typestore, Stores
    store = get_typestore(Stores.ROS2_HUMBLE)
    with Reader(bag_dir) as reader:
        for connection, _, raw in reader.messages():
            if connection.topic.endswith('/sim/state'):
                qpos = store.deserialize_cdr(raw, connection.msgtype).position
                return np.array(qpos[16:18]), np.array(qpos[23:25])
    raise AssertionError(f'{bag_dir} holds no sim/state')


def test_both_arms_grasp_target_comes_from_a_recorded_insertion_demonstration(built):
    work, _ = built
    folder = work / 'demonstrations'
    bag = sorted(folder / name for name in os.listdir(folder) if name.startswith('aloha1'))[0]
    episode = load_episode(str(bag), DatasetConfig())
    left, right = episode.grasp_ticks
    # Each arm closes once on its own object, the left on the socket, the right on the peg.
    assert left > 0 and right > 0, episode.grasp_ticks
    peg_xy, socket_xy = first_object_positions(bag)
    np.testing.assert_allclose(episode.grasp_target[:2], socket_xy, atol=0.01)
    np.testing.assert_allclose(episode.grasp_target[2:], peg_xy, atol=0.01)
