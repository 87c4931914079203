"""A self-improvement run: on-policy episodes in, a new policy version out, crash-safe.

    RUN_DIR/state.json               the commit point: live version, iteration, consumed episodes
    RUN_DIR/checkpoints/<version>.pt policy weights + optimizer of every version
    RUN_DIR/models/<version>/        the exported policy (manifest names its parent)
    RUN_DIR/metrics.jsonl            one line per iteration

An iteration trains, saves the checkpoint, exports, and only then rewrites state.json. Killed
anywhere before that, the run resumes from the previous state and redoes the iteration on the
same episodes (a half-made export of the uncommitted version is removed first); killed after,
the episodes are already marked consumed. Either way no episode is lost or counted twice.
"""

import json
import os
import shutil
import time

import torch

from selfimprove_ros.core.atomic_file import write_json_atomic
from selfimprove_ros.data.episode_labelling import (BadLabels, labelling_dataset_config,
                                                    read_labels)
from selfimprove_ros.data.episode_loader import find_bags, load_episode
from selfimprove_ros.model.manifest import read_manifest
from selfimprove_ros.model.onnx_export import export_model_dir
from selfimprove_ros.training import checkpoint as ckpt
from selfimprove_ros.training.distributed import resolve_device
from selfimprove_ros.training.filtered_bc import fit_successes
from selfimprove_ros.training.policy_gradient import (Decisions, episode_decisions,
                                                      run_iteration, sampling_surprise)
from selfimprove_ros.training.reinforce_config import ReinforceConfig
from selfimprove_ros.training.run_export import provenance, run_checkpoint
from selfimprove_ros.training.version_history import VersionHistory

STATE = 'state.json'


def shipped_checkpoint(model_dir: str, manifest: dict) -> str:
    """Return the policy checkpoint a model directory starts from.

    A shipped model directory carries its own policy.pt; the path in the provenance is where
    it was trained, which exists only on the machine that trained it.
    """
    beside = os.path.join(model_dir, 'policy.pt')
    if os.path.exists(beside):
        return beside
    return run_checkpoint(manifest, 'policy')


class ImproveRun:
    """The policy copy being improved and the bookkeeping that makes it on-policy."""

    def __init__(self, run_dir: str, config: ReinforceConfig, initial_model_dir: str = '',
                 checkpoint: str = '', log=print):
        self.run_dir, self.config, self.log = run_dir, config, log
        self.device = resolve_device(config.device)
        if config.torch_threads:
            torch.set_num_threads(config.torch_threads)
        os.makedirs(os.path.join(run_dir, 'checkpoints'), exist_ok=True)
        state_path = os.path.join(run_dir, STATE)
        if os.path.exists(state_path):
            with open(state_path) as handle:
                self.state = json.load(handle)
            log(f'resuming {run_dir}: version {self.version}, iteration '
                f'{self.state["iteration"]}, {len(self.state["consumed"])} episodes consumed')
        else:
            self.state = self._start(initial_model_dir, checkpoint)
        self.off_policy = set()  # bags already found sampled by other weights
        # Success per version lives in state.json too, so it commits with the consumed list:
        # a crash can neither drop an episode from the history nor count it twice.
        self.history = VersionHistory.from_dict(self.state['history']) \
            if self.state.get('history') else VersionHistory()
        self.history.add_version(self.version, self._parent(self.version))
        self._load(self.version)

    def _start(self, model_dir: str, checkpoint: str) -> dict:
        if not model_dir:
            raise ValueError('a new self-improvement run needs the Stage-1 model directory the '
                             'robots start with (--model)')
        manifest = read_manifest(model_dir)
        version = manifest['version']
        source = checkpoint or shipped_checkpoint(model_dir, manifest)
        if not source:
            raise ValueError(f'{model_dir} does not name its policy checkpoint; pass --checkpoint')
        state = ckpt.load_checkpoint(source)
        ckpt.save_checkpoint(self._checkpoint(version), {**state, 'optimizer': None})
        start = {'version': version, 'base': version, 'iteration': 0, 'consumed': [],
                 'versions': [{'version': version, 'parent': manifest.get('parent_version'),
                               'iteration': 0, 'model_dir': os.path.abspath(model_dir)}]}
        write_json_atomic(os.path.join(self.run_dir, STATE), start)
        self.log(f'new self-improvement run from {version} ({source})')
        return start

    @property
    def version(self) -> str:
        """Return the live policy version: the one whose episodes train the next iteration."""
        return self.state['version']

    def _parent(self, version: str):
        entries = [e for e in self.state['versions'] if e['version'] == version]
        return entries[0].get('parent') if entries else None

    def record_outcomes(self, pending):
        """Count the pending episodes' detected and simulator successes for their version."""
        for _, labels in pending:
            self.history.add_episode(labels.policy_version, labels.outcome == 'success',
                                     labels.sim_success)

    def commit(self, episodes, **changes):
        """Mark `episodes` consumed, apply `changes`, store the history; atomically."""
        self.state.update(changes)
        self.state['consumed'] = self.state['consumed'] + list(episodes)
        self.state['history'] = self.history.to_dict()
        write_json_atomic(os.path.join(self.run_dir, STATE), self.state)

    def _checkpoint(self, version: str) -> str:
        return os.path.join(self.run_dir, 'checkpoints', f'{version}.pt')

    def _load(self, version: str):
        state = ckpt.load_checkpoint(self._checkpoint(version))
        self.model, self.codec, self.sft_config = ckpt.restore_model(state)
        self.model.to(self.device)
        # The paper freezes the vision encoder in Stage 2; only the rest of the policy moves.
        self.model.encoder.requires_grad_(False)
        moving = self.model.policy_parameters()
        if self.config.trainable == 'action_head':
            self.model.requires_grad_(False)
            self.model.action_head.requires_grad_(True)
            moving = list(self.model.action_head.parameters())
        self.optimizer = torch.optim.AdamW(moving, lr=self.config.lr,
                                           weight_decay=self.config.weight_decay)
        if state.get('optimizer'):
            self.optimizer.load_state_dict(state['optimizer'])
        self.sft_state = state

    def pending(self, bag_roots) -> list:
        """Return (bag_dir, labels) of labelled, unconsumed episodes of the live version."""
        consumed, found = set(self.state['consumed']), []
        for bag in find_bags(bag_roots):
            try:
                labels = read_labels(bag)
            except BadLabels:
                continue  # not labelled yet (or being relabelled): try again later
            if labels.policy_version == self.version and labels.episode_id not in consumed:
                found.append((bag, labels))
        return found

    def decisions(self, pending) -> Decisions:
        """Load the pending episodes' observations and turn them into decisions."""
        period_s = self.sft_state.get('dataset_config', {}).get('control_period_s', 0.1)
        config = labelling_dataset_config(self, period_s)
        parts = []
        for bag, labels in pending:
            episode = load_episode(bag, config)
            part = episode_decisions(episode, labels, self.version, self.config.gamma,
                                     list(self.codec.config.cameras), self.config.returns_until)
            if len(part) and self.sampled_elsewhere(part, bag):
                part = part.take([])  # consumed with the others, never trained on
            parts.append(part)
        return Decisions.concatenate(parts)

    def sampled_elsewhere(self, part: Decisions, bag: str) -> bool:
        """Tell (and log) whether an episode's chunks were sampled by other weights.

        Version names are not proof: a model rebuilt and shipped under the same name records
        the same version, and REINFORCE on its chunks pushes up what another policy chose.
        """
        surprise = float(sampling_surprise(self.model, part, self.codec, self.device).mean())
        if surprise <= self.config.off_policy_nats:
            return False
        if bag in self.off_policy:
            return True
        self.off_policy.add(bag)
        self.log(f'left out {bag}: its chunks are {surprise:.0f} nats less likely under '
                 f'{self.version} than its own samples would be (limit off_policy_nats '
                 f'{self.config.off_policy_nats:g}); another model sampled them, whatever '
                 'the version name says')
        return True

    def iterate(self, pending, decisions: Decisions) -> str:
        """Train one iteration, checkpoint, export, commit; return the new model directory."""
        iteration = self.state['iteration'] + 1
        new_version = f'{self.state["base"]}-it{iteration}'
        started = time.monotonic()
        train = fit_successes if self.config.objective == 'filtered_bc' else run_iteration
        metrics = train(self.model, self.optimizer, decisions, self.codec, self.config,
                        self.device, iteration)
        metrics['train_s'] = time.monotonic() - started
        weights = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        ckpt.save_checkpoint(self._checkpoint(new_version), {
            **self.sft_state, 'model': weights, 'optimizer': self.optimizer.state_dict(),
            'reinforce_config': self.config.to_dict(), 'version': new_version})
        model_dir = os.path.join(self.run_dir, 'models', new_version)
        if os.path.exists(model_dir):
            shutil.rmtree(model_dir)  # an export of this uncommitted version was interrupted
        episodes = [labels.episode_id for _, labels in pending]
        rewards = {labels.reward_version for _, labels in pending}
        export_model_dir(model_dir, self.codec, {
            'version': new_version, 'parent_version': self.version, 'stage': 'reinforce',
            'provenance': provenance(
                run_dir=os.path.abspath(self.run_dir), iteration=iteration, episodes=episodes,
                reward_versions=sorted(rewards), metrics=metrics,
                reinforce_config=self.config.to_dict())}, policy=self.model.cpu())
        self.model.to(self.device)
        self.state['versions'].append({'version': new_version, 'parent': self.version,
                                       'iteration': iteration, 'model_dir': model_dir,
                                       'episodes': len(episodes), 'metrics': metrics})
        self.history.add_version(new_version, self.version)
        self.commit(episodes, version=new_version, iteration=iteration)
        with open(os.path.join(self.run_dir, 'metrics.jsonl'), 'a') as handle:
            handle.write(json.dumps({'iteration': iteration, 'version': new_version,
                                     **metrics}) + '\n')
        fitted = (f' ({metrics["fitted_episodes"]} successes fitted)'
                  if 'fitted_episodes' in metrics else '')
        self.log(f'iteration {iteration}: {len(episodes)} episodes{fitted}, {len(decisions)} '
                 f'decisions, mean return {metrics["mean_return"]:.2f}, {metrics["updates"]} '
                 f'updates, KL {metrics["kl"]:.3f} nats per chunk -> {new_version}')
        return model_dir

    def revert_to(self, version: str, reason: str, episodes=()):
        """Make an earlier version live again (a rollback), consuming `episodes`; commit."""
        known = {entry['version']: entry for entry in self.state['versions']}
        if version not in known:
            raise ValueError(f'version {version} is not part of this run ({sorted(known)})')
        self.history.record_rollback(self.version, version)
        self._load(version)
        self.state['versions'].append({**known[version], 'rollback': reason})
        self.commit(episodes, version=version)
        self.log(f'rolled back to {version}: {reason}')
        return known[version]['model_dir']
