"""Export: ONNX parity with torch, atomic model directories, manifests the loader verifies."""

import json
import os

import numpy as np
import pytest
import torch

from model_factory import tiny_model_dir
from selfimprove_ros.model.manifest import read_manifest, verify_model_dir
from selfimprove_ros.model.onnx_export import example_inputs, INPUT_NAMES
from selfimprove_ros.runtime.onnx_model import load_model, ModelRejected


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    return tiny_model_dir(tmp_path_factory.mktemp('models') / 'v1')


def test_exported_graphs_match_torch_on_new_inputs(model_dir):
    import onnxruntime as ort
    path, codec, model = model_dir
    arrays = example_inputs(codec, batch=5, seed=42)
    with torch.no_grad():
        logits, steps_logits = model(*(torch.from_numpy(a) for a in arrays))
    feeds = dict(zip(INPUT_NAMES, arrays))
    policy = ort.InferenceSession(os.path.join(path, 'policy.onnx'))
    assert np.allclose(policy.run(None, feeds)[0], logits.numpy(), atol=1e-4)
    reward = ort.InferenceSession(os.path.join(path, 'reward.onnx'))
    probs, expectation = reward.run(None, feeds)
    expected = steps_logits.softmax(-1).numpy()
    assert np.allclose(probs, expected, atol=1e-5)
    assert np.allclose(expectation, expected @ codec.steps.values, atol=1e-3)
    manifest = read_manifest(path)
    assert manifest['parity']['max_abs_error']['policy.onnx'] <= manifest['parity']['tolerance']
    assert manifest['codec']['cameras'] == ['cam_high']
    assert manifest['signature']['policy.onnx'][0]['shape'] == ['batch', 28, 16]


def test_model_directories_are_immutable_and_leave_no_partial_files(model_dir, tmp_path):
    path, _, _ = model_dir
    with pytest.raises(FileExistsError, match='immutable'):
        tiny_model_dir(path)
    assert not [name for name in os.listdir(os.path.dirname(path)) if name.startswith('.')]


def test_a_modified_file_fails_the_sha256_check(model_dir, tmp_path):
    path, _, _ = model_dir
    copy = tmp_path / 'copy'
    os.makedirs(copy)
    for name in os.listdir(path):
        with open(os.path.join(path, name), 'rb') as src, open(copy / name, 'wb') as dst:
            dst.write(src.read())
    verify_model_dir(str(copy), required=('policy.onnx', 'reward.onnx'))
    with open(copy / 'policy.onnx', 'r+b') as handle:
        handle.seek(100)
        handle.write(b'\x00\x01\x02')
    with pytest.raises(ValueError, match='sha256'):
        verify_model_dir(str(copy))
    with pytest.raises(ModelRejected, match='sha256'):
        load_model(str(copy), 'policy.onnx', ['cam_high'])


def test_the_loader_checks_robot_and_manifest(model_dir, tmp_path):
    path, _, _ = model_dir
    loaded = load_model(path, 'policy.onnx', ['cam_high', 'cam_low'], providers='cpu')
    assert loaded.providers == ['CPUExecutionProvider'] and loaded.inference_s > 0
    with pytest.raises(ModelRejected, match='cam_high'):
        load_model(path, 'policy.onnx', ['cam_low'])
    with pytest.raises(ModelRejected, match='budget'):
        load_model(path, 'policy.onnx', ['cam_high'], budget_s=1e-9)
    manifest = read_manifest(path)
    bad = tmp_path / 'bad'
    os.makedirs(bad)
    with open(bad / 'manifest.json', 'w') as handle:
        json.dump(dict(manifest, format='something-else'), handle)
    with pytest.raises(ModelRejected, match='format'):
        load_model(str(bad), 'policy.onnx', ['cam_high'])


def test_the_manifest_is_sealed_and_a_signed_model_needs_the_station_key(model_dir, tmp_path):
    import shutil

    from selfimprove_ros.model.manifest import sign_model_dir
    path, _, _ = model_dir
    copy = str(tmp_path / 'copy')
    shutil.copytree(path, copy)
    with pytest.raises(ValueError, match='not signed'):
        verify_model_dir(copy, key=b'station key')
    sign_model_dir(copy, b'station key')
    verify_model_dir(copy, key=b'station key')
    with pytest.raises(ValueError, match="does not match this station's key"):
        verify_model_dir(copy, key=b'another key')
    manifest = os.path.join(copy, 'manifest.json')
    with open(manifest) as stream:
        text = stream.read()
    with open(manifest, 'w') as stream:
        stream.write(text.replace('"cam_high"', '"cam_left_wrist"'))
    with pytest.raises(ValueError, match='manifest.json changed after export'):
        verify_model_dir(copy)
    os.remove(os.path.join(copy, 'manifest.sha256'))
    with pytest.raises(ValueError, match='not sealed'):
        verify_model_dir(copy)


def test_models_load_only_from_inside_the_roots(model_dir, tmp_path):
    from selfimprove_ros.runtime.onnx_model import check_model_root
    path, _, _ = model_dir
    parent = os.path.dirname(path)
    check_model_root(path, [parent])
    with pytest.raises(ModelRejected, match='outside the model roots'):
        check_model_root(path, [str(tmp_path / 'other')])
    # A link inside a root that leads out of it is judged by where it leads.
    os.makedirs(tmp_path / 'root')
    os.symlink(path, tmp_path / 'root' / 'link')
    with pytest.raises(ModelRejected, match='outside the model roots'):
        check_model_root(str(tmp_path / 'root' / 'link'), [str(tmp_path / 'root')])
    with pytest.raises(ModelRejected, match='outside the model roots'):
        load_model(path, 'policy.onnx', ['cam_high'], roots=[str(tmp_path / 'other')])


def json_strings(value):
    """Yield every string inside a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from json_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from json_strings(item)


def paths_of_the_building_machine(manifest: dict) -> list:
    """Return the absolute paths the provenance names outside its 'machine' part."""
    found = dict(manifest['provenance'])
    found.pop('machine', None)
    return [text for text in json_strings(found) if os.path.isabs(text)]


@pytest.fixture(scope='module')
def sft_run(tmp_path_factory):
    from episode_factory import synthetic_sft_data, tiny_sft_config
    from selfimprove_ros.training.sft_trainer import SftTrainer
    run = tmp_path_factory.mktemp('run') / 'sft'
    SftTrainer(synthetic_sft_data(), str(run), tiny_sft_config(2), log=lambda *_: None).run()
    return str(run)


def test_an_export_keeps_the_building_machines_paths_apart(sft_run, tmp_path):
    from selfimprove_ros.training.run_export import export_run, MACHINE_NOTE, run_checkpoint
    manifest = read_manifest(export_run(sft_run, str(tmp_path / 'model')))
    machine = manifest['provenance']['machine']
    assert machine['note'] == MACHINE_NOTE and machine['host']
    assert machine['run_dir_abs'] == os.path.abspath(sft_run)
    assert not {'host', 'run_dir'} & set(manifest['provenance'])
    assert {role: entry['path'] for role, entry in
            manifest['provenance']['checkpoints'].items()} == {
        'policy': 'checkpoints/last.pt', 'reward': 'checkpoints/best_steps_to_go.pt'}
    assert paths_of_the_building_machine(manifest) == []
    assert run_checkpoint(manifest) == os.path.join(sft_run, 'checkpoints', 'last.pt')
    # A checkpoint given by a path outside the run folder is the machine's too.
    outside = str(tmp_path / 'elsewhere.pt')
    os.link(run_checkpoint(manifest), outside)
    manifest = read_manifest(export_run(sft_run, str(tmp_path / 'model2'), policy=outside,
                                        reward=''))
    assert manifest['provenance']['checkpoints']['policy']['path'] is None
    assert manifest['provenance']['machine']['checkpoints_abs'] == {'policy': outside}
    assert run_checkpoint(manifest) == outside and paths_of_the_building_machine(manifest) == []


def test_a_manifest_of_the_old_shape_still_names_its_checkpoint():
    from selfimprove_ros.training.run_export import run_checkpoint, run_folder
    old = {'provenance': {'host': 'vm', 'run_dir': '/r/sft', 'checkpoints': {
        'policy': {'path': '/r/sft/checkpoints/last.pt', 'step': 1}}}}
    assert run_folder(old) == '/r/sft'
    assert run_checkpoint(old) == '/r/sft/checkpoints/last.pt'
    assert run_checkpoint({'provenance': {}}) == ''


def test_the_shipped_manifest_names_no_path_of_the_machine_that_built_it():
    shipped = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           'models', 'transfer_cube')
    manifest = verify_model_dir(shipped, required=('policy.onnx', 'reward.onnx'))
    assert paths_of_the_building_machine(manifest) == []
    assert os.path.isfile(os.path.join(shipped, 'policy.pt'))  # what Stage 2 starts from
