"""`selfimprove train`: Stage 1 (sft) from demonstration bags; the value-landscape report."""

import json
import os


HELP = 'train the two-headed model (sft) or report its value landscape (report)'


def add_arguments(parser):
    """Arguments of `train` and its verbs."""
    verbs = parser.add_subparsers(dest='verb', required=True, metavar='VERB')
    sft = verbs.add_parser('sft', help='supervised fine-tuning on demonstration bags (resumes '
                           'from RUN_DIR/checkpoints/last.pt when present)')
    sft.add_argument('--bags', required=True, nargs='+', help='bag directories or their parent')
    sft.add_argument('--out', required=True, help='run directory (checkpoints, logs, reports)')
    sft.add_argument('--config', default=None,
                     help="YAML with 'sft' and 'dataset' sections (see config/sft.yaml)")
    sft.add_argument('--set', dest='overrides', nargs='*', default=[], metavar='KEY=VALUE',
                     help="overrides, e.g. sft.steps=500 sft.model.encoder=resnet18 "
                     "dataset.val_fraction=0.2")
    improve = verbs.add_parser('improve', help='Stage 2: REINFORCE on on-policy practice bags, '
                               'one new policy version per iteration (resumes from RUN_DIR)')
    improve.add_argument('--bags', required=True, nargs='+',
                         help='episode-bag directories the robots record into')
    improve.add_argument('--out', required=True, help='self-improvement run directory')
    improve.add_argument('--model', default='',
                         help='Stage-1 model directory the robots start with (new runs)')
    improve.add_argument('--checkpoint', default='',
                         help='policy checkpoint (default: MODEL/policy.pt, else the one the '
                         'model manifest names)')
    improve.add_argument('--iterations', type=int, default=1,
                         help='iterations to run before exiting (0 = forever)')
    improve.add_argument('--poll-s', type=float, default=5.0,
                         help='seconds between scans of the bag directories')
    improve.add_argument('--set', dest='overrides', nargs='*', default=[], metavar='KEY=VALUE',
                         help='ReinforceConfig overrides, e.g. lr=3e-5 batch_size=32')
    report = verbs.add_parser('report', help='value landscape of a run on held-out episodes')
    report.add_argument('run_dir', help='run directory of `train sft`')
    report.add_argument('--bags', nargs='+', default=None,
                        help='episodes to score (default: the run\'s validation episodes)')
    report.add_argument('--checkpoint', default='best_steps_to_go',
                        help='checkpoint role (best_steps_to_go, best_bc, last) or path')


def run(args) -> int:
    """Dispatch to the verb."""
    return {'sft': run_sft, 'improve': run_improve, 'report': run_report}[args.verb](args)


def run_sft(args) -> int:
    """Train (or resume), then write the value-landscape report."""
    from selfimprove_ros.training.sft_config import load_settings, SftConfig
    from selfimprove_ros.training.sft_trainer import train_sft
    settings = load_settings(args.config, args.overrides)
    config = SftConfig.from_dict(settings.get('sft', {}))
    summary = train_sft(args.bags, args.out, config, settings.get('dataset', {}))
    print(json.dumps(summary, indent=1))
    return 0


def run_improve(args) -> int:
    """Wait for on-policy episodes, train, export; repeat `--iterations` times."""
    from selfimprove_ros.training.improve_loop import improve_forever
    from selfimprove_ros.training.reinforce_config import ReinforceConfig
    from selfimprove_ros.training.sft_config import apply_overrides
    if args.iterations < 0:
        raise ValueError(f'--iterations must be >= 0 (0 = forever), got {args.iterations}')
    if args.poll_s <= 0:
        raise ValueError(f'--poll-s must be > 0, got {args.poll_s}')
    config = ReinforceConfig.from_dict(apply_overrides({}, args.overrides))
    for model_dir in improve_forever(args.bags, args.out, config, args.model, args.checkpoint,
                                     args.iterations, args.poll_s):
        print(f'new policy version in {model_dir}')
    return 0


def run_report(args) -> int:
    """Score episodes with a checkpoint's steps-to-go head; print the numbers."""
    from selfimprove_ros.training.sft_data import report_episodes
    from selfimprove_ros.training.checkpoint import (load_checkpoint, resolve_checkpoint,
                                                     restore_model)
    from selfimprove_ros.training.value_report import value_landscape
    state = load_checkpoint(resolve_checkpoint(args.run_dir, args.checkpoint))
    model, codec, _ = restore_model(state)
    episodes = report_episodes(args.run_dir, state, args.bags)
    report = value_landscape(model, codec, episodes, os.path.join(args.run_dir, 'reports'))
    print(json.dumps({k: v for k, v in report.items() if k != 'per_episode'}, indent=1))
    return 0
