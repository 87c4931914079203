"""Export a training run's chosen checkpoints as a model directory the robot can load."""

import os
import platform
import subprocess

import torch

from selfimprove_ros.core.success_detection import audited_rule, RULE_KEY
from selfimprove_ros.model.onnx_export import export_model_dir
from selfimprove_ros.training.checkpoint import load_checkpoint, resolve_checkpoint, restore_model


def git_commit() -> str:
    """Return the source tree's git commit, or '' outside a checkout."""
    try:
        return subprocess.run(['git', 'rev-parse', 'HEAD'], capture_output=True, text=True,
                              cwd=os.path.dirname(__file__), timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ''


MACHINE_NOTE = 'paths on the machine that built this; meaningless elsewhere'


def provenance(run_dir: str = '', **fields) -> dict:
    """Return training provenance common to every export, plus `fields`.

    A model directory travels (it is shipped in models/, copied to robots), so what only the
    building machine can use is kept apart under 'machine': its host name and `run_dir`, the
    absolute run folder. Paths inside that folder belong in `fields` relative to it.
    """
    machine = {'host': platform.node(), 'note': MACHINE_NOTE}
    if run_dir:
        machine['run_dir_abs'] = os.path.abspath(run_dir)
    return {'git_commit': git_commit(), 'torch': torch.__version__, **fields, 'machine': machine}


def run_folder(manifest: dict) -> str:
    """Return the absolute run folder a model was exported from, on the machine that built it.

    Reads manifests of both shapes: 'machine'.'run_dir_abs', or the older top-level 'run_dir'.
    """
    found = manifest.get('provenance', {})
    return found.get('machine', {}).get('run_dir_abs') or found.get('run_dir', '')


def run_checkpoint(manifest: dict, role: str = 'policy') -> str:
    """Return the absolute path of the `role` checkpoint a model was exported from, or ''.

    The path exists only on the machine that built the model (a shipped directory carries its
    own policy.pt instead). Older manifests recorded it absolute; os.path.join keeps those.
    """
    found = manifest.get('provenance', {})
    entry = found.get('checkpoints', {}).get(role, {})
    if entry.get('path'):
        return os.path.join(run_folder(manifest), entry['path'])
    return found.get('machine', {}).get('checkpoints_abs', {}).get(role, '')


def _checkpoint_entry(run_dir: str, path: str, state: dict) -> tuple:
    """Return ({'path' relative to run_dir, 'step', 'best'}, absolute path if outside it)."""
    inside = os.path.relpath(os.path.abspath(path), os.path.abspath(run_dir))
    outside = inside == os.pardir or inside.startswith(os.pardir + os.sep)
    entry = {'path': None if outside else inside.replace(os.sep, '/'),
             'step': int(state['step']), 'best': state.get('best', {})}
    return entry, os.path.abspath(path) if outside else None


def export_run(run_dir: str, out_dir: str, policy: str = 'last',
               reward: str = 'best_steps_to_go', version: str = '',
               extra_provenance: dict = None, success_rule: dict = None) -> str:
    """Export `policy` and `reward` checkpoints of `run_dir` (roles or paths) to `out_dir`.

    Either may be '' to leave that graph out. The two must share one codec: they come from the
    same run, and the robot feeds both the same tensors. `extra_provenance` (e.g. the data's
    seeds and the command that made them) joins the manifest's provenance; `success_rule` (the
    detector's rule audited for this reward model, `training/rule_choice.py`) is recorded as
    the manifest's `success_rule`.
    """
    states = {}
    for role, which in (('policy', policy), ('reward', reward)):
        if which:
            path = resolve_checkpoint(run_dir, which)
            states[role] = (path, load_checkpoint(path))
    if not states:
        raise ValueError('choose at least one of --policy and --reward checkpoints to export')
    codecs = {role: state['codec'] for role, (_, state) in states.items()}
    if len({repr(c) for c in codecs.values()}) > 1:
        raise ValueError('policy and reward checkpoints have different codecs; export them from '
                         'the same run')
    models = {role: restore_model(state) for role, (_, state) in states.items()}
    codec = next(iter(models.values()))[1]
    run_name = os.path.basename(os.path.normpath(run_dir))
    steps = {role: int(state['step']) for role, (_, state) in states.items()}
    version = version or f'{run_name}-' + '-'.join(f'{r[0]}{s}' for r, s in steps.items())
    entries = {role: _checkpoint_entry(run_dir, path, state)
               for role, (path, state) in states.items()}
    found = provenance(
        run_dir=run_dir, checkpoints={role: entry for role, (entry, _) in entries.items()},
        sft_config=next(iter(states.values()))[1]['config'],
        dataset_config=next(iter(states.values()))[1].get('dataset_config', {}),
        **(extra_provenance or {}))
    elsewhere = {role: path for role, (_, path) in entries.items() if path}
    if elsewhere:  # a checkpoint given by path, outside the run folder
        found['machine']['checkpoints_abs'] = elsewhere
    manifest = {'version': version, 'parent_version': None, 'stage': 'sft',
                'provenance': found}
    if success_rule is not None:
        audited_rule({RULE_KEY: success_rule})  # refuse a rule the detector would refuse
        manifest[RULE_KEY] = success_rule
    return export_model_dir(out_dir, codec, manifest,
                            policy=models['policy'][0] if 'policy' in models else None,
                            reward=models['reward'][0] if 'reward' in models else None)
