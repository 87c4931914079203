"""Stage 1: supervised fine-tuning of the two-headed model on demonstration episodes.

Reads top to bottom like nanoGPT's train.py, but split into set-up, one step, evaluation and
checkpointing. The run directory holds everything:

    RUN_DIR/config.yaml              resolved SFT + dataset config
    RUN_DIR/split.json               which episodes trained and which validated
    RUN_DIR/checkpoints/last.pt      resume point (every `checkpoint_every` steps or
                                     `checkpoint_every_s` seconds, and at the end)
    RUN_DIR/checkpoints/best_steps_to_go.pt   the reward model's checkpoint
    RUN_DIR/checkpoints/best_bc.pt   best BC validation loss (not necessarily the best policy)
    RUN_DIR/metrics.jsonl            validation history
    RUN_DIR/tensorboard/             scalars
"""

import json
import math
import os
import time

import torch
from torch.nn.parallel import DistributedDataParallel
import yaml

from selfimprove_ros.model.codec import ModelCodec
from selfimprove_ros.model.two_head_model import TwoHeadModel
from selfimprove_ros.training import checkpoint as ckpt
from selfimprove_ros.training.batches import (BalancedSampler, hide_joints, sample_batch,
                                              shift_images)
from selfimprove_ros.training.distributed import init_distributed, shutdown_distributed
from selfimprove_ros.training.losses import sft_losses
from selfimprove_ros.training.sft_config import SftConfig
from selfimprove_ros.training.sft_data import SftData, load_sft_data


def get_lr(step: int, config: SftConfig) -> float:
    """Linear warm-up, then cosine decay to min_lr_ratio * lr."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    cosine = 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return config.lr * (config.min_lr_ratio + (1.0 - config.min_lr_ratio) * cosine)


def make_optimizer(model, config: SftConfig):
    """Build AdamW with weight decay on matrices and convolutions only (not biases or norms)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    return torch.optim.AdamW([{'params': decay, 'weight_decay': config.weight_decay},
                              {'params': no_decay, 'weight_decay': 0.0}],
                             lr=config.lr, betas=(0.9, 0.95))


class SftTrainer:
    """One SFT run: owns the data, model, optimizer and run directory."""

    def __init__(self, data: SftData, run_dir: str, config: SftConfig, log=print):
        self.run_dir, self.config, self.log = run_dir, config, log
        self.ctx = init_distributed(config.device)
        if config.torch_threads:
            torch.set_num_threads(config.torch_threads)
        self.data = data
        last = ckpt.resolve_checkpoint(run_dir, 'last')
        self.resumed = ckpt.load_checkpoint(last) if os.path.exists(last) else None
        if self.resumed:
            # The codec of a run never changes: refitting on new bags would shift every token.
            self.codec = ModelCodec.from_dict(self.resumed['codec'], config.model)
        else:
            self.codec = ModelCodec.fit(data.train_episodes, config.model)
        torch.manual_seed(config.seed)
        self.model = TwoHeadModel(config.model, self.codec.vocab.size, self.codec.joint_mean,
                                  self.codec.joint_std).to(self.ctx.device)
        self.optimizer = make_optimizer(self.model, config)
        self.step, self.best, self.wait_s, self.compute_s = 0, {}, 0.0, 0.0
        self.clock = time.monotonic  # [s]; a test may substitute its own
        self.saved_at_s = self.clock()
        if self.resumed:
            self._restore(self.resumed)
        self.ddp = (DistributedDataParallel(self.model) if self.ctx.world > 1 else self.model)
        self.sampler = BalancedSampler(data.train, config.batch_size, config.seed,
                                       self.ctx.rank, self.ctx.world)
        self.steps_values = torch.from_numpy(self.codec.steps.values).to(self.ctx.device)
        self.writer = self._tensorboard() if self.ctx.is_main else None

    def _restore(self, state: dict):
        self.model.load_state_dict(state['model'])
        self.optimizer.load_state_dict(state['optimizer'])
        self.step, self.best = int(state['step']), dict(state.get('best', {}))
        self.log(f'resuming {self.run_dir} at step {self.step}')

    def _tensorboard(self):
        from torch.utils.tensorboard import SummaryWriter
        return SummaryWriter(os.path.join(self.run_dir, 'tensorboard'), purge_step=self.step)

    def _autocast(self):
        enabled = self.config.amp and self.ctx.device.type == 'cuda'
        return torch.autocast(self.ctx.device.type, dtype=torch.bfloat16, enabled=enabled)

    def train_step(self) -> dict:
        """Run one optimizer step; return its losses as floats."""
        started = time.perf_counter()
        batch = sample_batch(self.data.train, self.sampler, self.step, self.codec)
        batch = batch.to(self.ctx.device)
        ready = time.perf_counter()
        for group in self.optimizer.param_groups:
            group['lr'] = get_lr(self.step, self.config)
        self.model.train()
        seed = self.config.seed * 1_000_003 + self.step
        joints = hide_joints(batch.joints, self.model.joint_mean, self.config.joint_dropout, seed)
        images = shift_images(batch.images, self.config.image_shift_px, seed)
        with self._autocast():
            action_logits, steps_logits, grasp = self.ddp(images, joints, batch.instruction,
                                                          with_grasp=True)
        losses = self._losses(action_logits, steps_logits, grasp, batch)
        loss = losses['bc_loss'] + self.config.steps_to_go_weight * losses['steps_loss']
        if self.config.grasp_target_weight > 0:
            loss = loss + self.config.grasp_target_weight * losses['grasp_loss']
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.step += 1
        # .item() is a device sync point; it also ends the step's timing honestly.
        result = {name: value.item() for name, value in losses.items()}
        self.wait_s += ready - started
        self.compute_s += time.perf_counter() - ready
        return result

    def _losses(self, action_logits, steps_logits, grasp, batch) -> dict:
        return sft_losses(action_logits, steps_logits, batch, self.steps_values,
                          self.config.soft_target_sigma_bins, grasp,
                          self.config.grasp_target_scale_m)

    @torch.no_grad()
    def evaluate(self) -> dict:
        """Mean validation metrics over a fixed set of validation batches."""
        self.model.eval()
        samples = self.data.val if len(self.data.val) else self.data.train
        sampler = BalancedSampler(samples, self.config.batch_size, seed=12345)
        totals = {}
        for index in range(self.config.eval_batches):
            batch = sample_batch(samples, sampler, index, self.codec).to(self.ctx.device)
            with self._autocast():
                outputs = self.model(batch.images, batch.joints, batch.instruction,
                                     with_grasp=True)
            for name, value in self._losses(*outputs, batch).items():
                totals[name] = totals.get(name, 0.0) + value.item() / self.config.eval_batches
        return {f'val_{name}': value for name, value in totals.items()}

    def state(self) -> dict:
        """Return everything needed to resume, export or reproduce this run."""
        return {'model': self.model.state_dict(), 'optimizer': self.optimizer.state_dict(),
                'step': self.step, 'config': self.config.to_dict(),
                'dataset_config': self.data.config_dict, 'codec': self.codec.to_dict(),
                'best': dict(self.best), 'split': self.data.split_ids,
                'bag_paths': [ep.bag_path for ep in self.data.train_episodes
                              + self.data.val_episodes]}

    def save(self, name: str, state=None):
        """Write checkpoint `name` (main process only)."""
        if self.ctx.is_main:
            ckpt.save_checkpoint(os.path.join(self.run_dir, 'checkpoints', name),
                                 state or self.state())

    def record_validation(self, metrics: dict):
        """Log metrics, keep the best checkpoints per role."""
        if not self.ctx.is_main:
            return
        for name, value in metrics.items():
            self.writer.add_scalar(name.replace('val_', 'val/'), value, self.step)
        with open(os.path.join(self.run_dir, 'metrics.jsonl'), 'a') as handle:
            handle.write(json.dumps({'step': self.step, **metrics}) + '\n')
        state = None
        for role, metric, name in (('steps_to_go', 'val_steps_loss', ckpt.BEST_STEPS),
                                   ('bc', 'val_bc_loss', ckpt.BEST_BC)):
            if metrics[metric] < self.best.get(role, (float('inf'), 0))[0]:
                self.best[role] = (metrics[metric], self.step)
                state = state or self.state()
                self.save(name, state)

    def checkpoint_due(self) -> bool:
        """Return whether last.pt is due: every `checkpoint_every` steps or seconds, at the end."""
        config = self.config
        late = config.checkpoint_every_s > 0 and \
            self.clock() - self.saved_at_s >= config.checkpoint_every_s
        return late or self.step % config.checkpoint_every == 0 or self.step == config.steps

    def run(self) -> dict:
        """Train to `config.steps`, evaluating and checkpointing on the way."""
        config = self.config
        self._write_run_files()
        progress = self._progress()
        metrics = {}
        while self.step < config.steps:
            losses = self.train_step()
            if self.ctx.is_main:
                # refresh=False: update() redraws at the bar's own pace (mininterval).
                progress.set_postfix(bc=f'{losses["bc_loss"]:.3f}',
                                     stg=f'{losses["steps_loss"]:.3f}', refresh=False)
                progress.update(1)
                for name, value in losses.items():
                    self.writer.add_scalar(f'train/{name}', value, self.step)
                self.writer.add_scalar('train/lr', get_lr(self.step - 1, config), self.step)
            if self.step % config.eval_every == 0 or self.step == config.steps:
                metrics = self.evaluate()
                self.record_validation(metrics)
            if self.checkpoint_due():
                self.save(ckpt.LAST)
                self.saved_at_s = self.clock()
        if self.ctx.is_main:
            progress.close()
            self.writer.close()
        total = self.wait_s + self.compute_s
        shutdown_distributed(self.ctx)
        return {'step': self.step, **metrics,
                'data_wait_fraction': self.wait_s / total if total else 0.0,
                'best': {role: {'loss': loss, 'step': step}
                         for role, (loss, step) in self.best.items()}}

    def _progress(self):
        import sys

        from tqdm import tqdm
        # Into a log file (trainer_node, benchmarks) a bar redrawn 10 times a second buries
        # everything else: there, one line every 30 s.
        interactive = sys.stderr.isatty()
        return tqdm(total=self.config.steps, initial=self.step, disable=not self.ctx.is_main,
                    desc='sft', unit='step', dynamic_ncols=True,
                    mininterval=0.1 if interactive else 30.0)

    def _write_run_files(self):
        if not self.ctx.is_main:
            return
        os.makedirs(self.run_dir, exist_ok=True)
        with open(os.path.join(self.run_dir, 'config.yaml'), 'w') as handle:
            yaml.safe_dump({'sft': self.config.to_dict(), 'dataset': self.data.config_dict},
                           handle, sort_keys=False)
        with open(os.path.join(self.run_dir, 'split.json'), 'w') as handle:
            json.dump(self.data.split_ids, handle, indent=1)


def landscape_of_best(run_dir: str, data: SftData, log) -> dict:
    """Report the value landscape of the best steps-to-go checkpoint on held-out episodes."""
    from selfimprove_ros.training.value_report import value_landscape
    episodes = data.val_episodes or data.train_episodes
    state = ckpt.load_checkpoint(ckpt.resolve_checkpoint(run_dir, 'best_steps_to_go'))
    model, codec, _ = ckpt.restore_model(state)
    report = value_landscape(model, codec, episodes, os.path.join(run_dir, 'reports'))
    held_out = 'held-out' if data.val_episodes else 'TRAINING (none held out)'
    log(f'value landscape on {report["episodes"]} {held_out} episodes: Spearman '
        f'{report["spearman"]:.3f}, MAE {report["mae_ticks"]:.2f} ticks -> {report["plot"]}')
    return {k: v for k, v in report.items() if k != 'per_episode'}


def localisation_of_last(run_dir: str, data: SftData, log) -> dict:
    """Check whether the policy (the last checkpoint) locates the object; write the report."""
    from selfimprove_ros.training.localisation_check import describe, localisation_check
    state = ckpt.load_checkpoint(ckpt.resolve_checkpoint(run_dir, 'last'))
    model, _, config = ckpt.restore_model(state)
    episodes = data.val_episodes or data.train_episodes
    report = localisation_check(model, episodes, data.train_episodes, config.model.cameras,
                                config.grasp_target_scale_m)
    log(describe(report, held_out=bool(data.val_episodes)))
    os.makedirs(os.path.join(run_dir, 'reports'), exist_ok=True)
    with open(os.path.join(run_dir, 'reports', 'localisation.json'), 'w') as handle:
        json.dump(report, handle, indent=1)
    return report


def train_sft(bags, run_dir: str, config: SftConfig, dataset_overrides=None, log=print) -> dict:
    """Load demonstrations from `bags` and run (or resume) SFT into `run_dir`."""
    data = load_sft_data(bags, run_dir, config, dataset_overrides or {}, log)
    trainer = SftTrainer(data, run_dir, config, log)
    summary = trainer.run()
    if trainer.ctx.is_main:
        summary['value_landscape'] = landscape_of_best(run_dir, data, log)
        summary['localisation'] = localisation_of_last(run_dir, data, log)
    summary['episodes'] = {'train': len(data.train_episodes), 'val': len(data.val_episodes),
                           'skipped': [list(item) for item in data.skipped]}
    return summary
