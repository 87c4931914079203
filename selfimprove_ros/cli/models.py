"""`selfimprove models`: rebuild the shipped Stage-1 models (models/<task>/) from scratch.

Scripted demonstrations through the node graph (noise 0.01 rad, simulator seeds 0..N-1), SFT
with config/sft.yaml (the recipe that makes the policy look), export with the data's seeds and
the settings in the manifest's provenance, and policy.pt (weights, config and codec without the
optimizer), which Stage 2 trains from. Every phase resumes from `--work`. `make models` runs
it; `make demo` starts from what it writes.
"""

import os

from selfimprove_ros.cli import collect
from selfimprove_ros.cli.demo import count_bags

HELP = 'rebuild the shipped Stage-1 policy and reward model (models/<task>/) from scratch'
DEMO_NOISE_STD = 0.01  # [rad]: imperfect demonstrations, with their clean labels recorded


def add_arguments(parser):
    """Arguments of `models`."""
    parser.add_argument('--task', default='transfer_cube', choices=('transfer_cube',),
                        help='task of the shipped models')
    parser.add_argument('--out', default='models', help='the models/ directory to write into')
    parser.add_argument('--work', default='runs/models',
                        help='demonstrations and the SFT run (kept, so a rerun resumes)')
    parser.add_argument('--demos', type=int, default=100,
                        help='demonstrations (simulator seeds 0..N-1)')
    parser.add_argument('--set', dest='overrides', nargs='*', default=[], metavar='KEY=VALUE',
                        help='SFT overrides on config/sft.yaml, e.g. sft.steps=3000')


def run(args) -> int:
    """Collect, train and export; print where the models are."""
    from selfimprove_ros.cli.train import load_settings
    from selfimprove_ros.graph.description import config_path
    from selfimprove_ros.training.run_export import export_run
    from selfimprove_ros.training.sft_config import SftConfig
    from selfimprove_ros.training.sft_trainer import train_sft
    if args.demos < 2:
        raise ValueError(f'--demos must be >= 2 (one validates), got {args.demos}')
    settings = load_settings(config_path('sft.yaml'), args.overrides)
    config = SftConfig.from_dict({**settings.get('sft', {}), 'torch_threads': 1})
    demos = os.path.abspath(os.path.join(args.work, 'demonstrations'))
    done = count_bags(demos)
    if done < args.demos:  # seeds continue where an interrupted run stopped
        collect.run(collect.build_namespace(task=args.task, episodes=args.demos - done,
                                            out=demos, noise_std=DEMO_NOISE_STD,
                                            cameras=list(config.model.cameras), seed=done))
    run_dir = os.path.join(args.work, 'sft')
    summary = train_sft([demos], run_dir, config, settings.get('dataset', {}))
    model_dir = os.path.join(args.out, args.task)
    if os.path.exists(model_dir):
        raise ValueError(f'{model_dir} exists; move it away to rebuild the shipped models')
    export_run(run_dir, model_dir, version=f'{args.task}-stage1', extra_provenance={
        'command': f'selfimprove models --task {args.task} --demos {args.demos} --set '
                   + ' '.join(args.overrides),
        'demonstrations': {'task': args.task, 'simulator_seeds': [0, args.demos - 1],
                           'noise_std_rad': DEMO_NOISE_STD, 'expert': 'sim/expert.py',
                           'episodes_used': summary['episodes']},
        'localisation': summary.get('localisation')})
    ship_checkpoint(run_dir, os.path.join(model_dir, 'policy.pt'))
    print(f'models in {os.path.abspath(model_dir)}: policy.onnx, reward.onnx, manifest.json, '
          'policy.pt')
    return 0


def ship_checkpoint(run_dir: str, path: str):
    """Write the policy's weights, config and codec (no optimizer): what Stage 2 starts from."""
    from selfimprove_ros.training import checkpoint as ckpt
    state = ckpt.load_checkpoint(ckpt.resolve_checkpoint(run_dir, 'last'))
    keep = ('model', 'config', 'codec', 'step', 'dataset_config')
    ckpt.save_checkpoint(path, {key: state[key] for key in keep if key in state})
