"""Stage-1 ablation: what each part of the recipe contributes to success in sim.

One set of scripted demonstrations (the task's noise, cli/models.py DEMO_NOISE_STD, seeds
0..K-1, recorded with their clean labels), one SFT run per variant, each judged the only way
that tells a seeing policy from a blind one: greedy episodes on unseen scenes (seeds 80000..),
the simulator's verdict, with a Wilson interval. Beside it: the localisation check and the
validation numbers.

    python -m benchmarks.stage1_ablation --variants recipe no_grasp_target --episodes 100
    python -m benchmarks.stage1_ablation --task insertion --k 400 --variants recipe

Per variant, under --out: sft_<variant>/ (run), models/<variant>/ (export), eval_<variant>/.
A finished phase is reused. Writes benchmarks/results/stage1_ablation.json (transfer_cube) or
stage1_ablation_<task>.json. Measurements, not tests.
"""

import argparse
import json
import os
import time

from benchmarks import machine, require_at_least_one
from selfimprove_ros.cli.models import DEMO_EPISODE_S, DEMO_NOISE_STD, POST_SUCCESS_TICKS

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results')
EVAL_SEED = 80_000
# Each variant changes the recipe's defaults (config/sft.yaml) by these SFT and dataset settings.
VARIANTS = {
    'recipe': ({}, {}),
    'no_clean_labels': ({}, {'action_source': 'commands'}),
    'no_soft_targets': ({'soft_target_sigma_bins': 0.0}, {}),
    'no_grasp_target': ({'grasp_target_weight': 0.0}, {}),
    'old_recipe': ({'soft_target_sigma_bins': 0.0, 'grasp_target_weight': 0.0, 'lr': 3e-4},
                   {'action_source': 'commands'}),
    'efficientnet_frozen': ({'model': {'encoder': 'efficientnet_lite0',
                                       'freeze_encoder': True}}, {}),
    'efficientnet_finetuned': ({'model': {'encoder': 'efficientnet_lite0'}}, {}),
}


def finished_bags(folder: str) -> list:
    """Return the bags in `folder` with a final outcome other than 'aborted'."""
    from selfimprove_ros.bag.episode_metadata import read_episode_file
    from selfimprove_ros.data.episode_loader import find_bags
    if not os.path.isdir(folder):
        return []
    found = []
    for bag in find_bags(folder):
        meta = read_episode_file(bag)
        if meta is not None and meta.is_final and meta.outcome != 'aborted':
            found.append((bag, meta.outcome))
    return found


def parse_args(argv=None):
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--task', choices=tuple(DEMO_NOISE_STD), default='transfer_cube')
    parser.add_argument('--variants', nargs='+', choices=sorted(VARIANTS), default=['recipe'])
    parser.add_argument('--demos', nargs='+', default=None,
                        help='folders of demonstration bags; missing ones are collected into '
                        'the first (default: runs/demos_tc, runs/demos_<task> for another task)')
    parser.add_argument('--k', type=int, default=100, help='demonstrations to collect/use')
    parser.add_argument('--steps', type=int, default=3000, help='SFT steps per variant')
    parser.add_argument('--episodes', type=int, default=100, help='evaluation episodes')
    parser.add_argument('--max-ticks', type=int, default=100,
                        help='evaluation episode limit [ticks]')
    parser.add_argument('--threads', type=int, default=1, help='torch threads of SFT')
    parser.add_argument('--stations', type=int, default=0,
                        help='evaluate on this many sim stations (0: through the node graph)')
    parser.add_argument('--run-to-limit', action='store_true',
                        help='the detector ends no evaluation episode (whole episodes)')
    parser.add_argument('--out', default=None,
                        help='work folder (default: runs/stage1_ablation[_<task>])')
    parser.add_argument('--results', default=None,
                        help='result file (default: benchmarks/results/stage1_ablation[_<task>]'
                        '.json)')
    args = parser.parse_args(argv)
    suffix = '' if args.task == 'transfer_cube' else f'_{args.task}'
    args.demos = args.demos or ['runs/demos_tc' if not suffix else f'runs/demos{suffix}']
    args.out = args.out or f'runs/stage1_ablation{suffix}'
    args.results = args.results or os.path.join(RESULTS, f'stage1_ablation{suffix}.json')
    require_at_least_one(parser, args, 'k', 'steps', 'episodes', 'max_ticks')
    if args.stations < 0:
        parser.error(f'--stations must be >= 0, got {args.stations}')
    if args.threads < 0:
        parser.error(f'--threads must be >= 0, got {args.threads}')
    return args


def ensure_demos(args):
    """Collect the K demonstrations (seeds 0..K-1) that are not there yet."""
    from selfimprove_ros.cli import collect
    done = sum(len(finished_bags(folder)) for folder in args.demos)
    if done < args.k:
        collect.collect(args.demos[0], task=args.task, episodes=args.k - done,
                        noise_std=DEMO_NOISE_STD[args.task], seed=done,
                        post_success_ticks=POST_SUCCESS_TICKS, episode_s=DEMO_EPISODE_S)


def merged(base: dict, changes: dict) -> dict:
    """Return `base` with `changes` applied, nested dicts merged."""
    out = dict(base)
    for key, value in changes.items():
        out[key] = merged(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


def train(variant: str, args) -> str:
    """Train and export one variant (reusing a finished export); return the model dir."""
    from selfimprove_ros.training.run_export import export_run
    from selfimprove_ros.training.sft_config import SftConfig
    from selfimprove_ros.training.sft_trainer import train_sft
    sft, dataset = VARIANTS[variant]
    run_dir = os.path.join(args.out, f'sft_{variant}_{args.steps}steps')
    model_dir = os.path.join(args.out, 'models', f'{variant}_{args.steps}steps')
    if os.path.exists(model_dir):
        return model_dir
    config = SftConfig.from_dict(merged(SftConfig().to_dict(), merged(
        {'steps': args.steps, 'torch_threads': args.threads, 'device': 'cpu'}, sft)))
    started = time.monotonic()
    summary = train_sft(list(args.demos), run_dir, config, dataset)
    summary['wall_s'] = round(time.monotonic() - started, 1)
    with open(os.path.join(run_dir, 'summary.json'), 'w') as handle:
        json.dump(summary, handle, indent=1, default=str)
    export_run(run_dir, model_dir, version=f'{variant}-{args.steps}')
    return model_dir


def evaluation(variant: str, model_dir: str, args) -> dict:
    """Greedy episodes on the unseen scenes; reuse a finished report."""
    from selfimprove_ros.cli.evaluate import evaluate, evaluate_on_stations
    out = os.path.join(args.out, f'eval_{variant}_{args.steps}steps_{args.episodes}ep')
    if args.max_ticks != 100:  # another episode limit is another evaluation
        out += f'_{args.max_ticks}ticks'
    path = os.path.join(out, 'eval.json')
    if os.path.exists(path):
        with open(path) as handle:
            return json.load(handle)
    if args.stations:
        return evaluate_on_stations(model_dir, model_dir, args.task, args.episodes, out,
                                    seed=EVAL_SEED, max_ticks=args.max_ticks, temperature=0.0,
                                    learned_detection=not args.run_to_limit,
                                    stations=args.stations)
    return evaluate(model_dir, model_dir, args.task, args.episodes, out, seed=EVAL_SEED,
                    max_ticks=args.max_ticks, temperature=0.0,
                    learned_detection=not args.run_to_limit)


def row(variant: str, model_dir: str, report: dict) -> dict:
    """Return the result row of one variant."""
    from selfimprove_ros.model.manifest import read_manifest
    from selfimprove_ros.training.run_export import run_folder
    run_dir = run_folder(read_manifest(model_dir))
    with open(os.path.join(run_dir, 'summary.json')) as handle:
        summary = json.load(handle)
    return {'variant': variant, 'changes': VARIANTS[variant],
            'sim_success': report['sim_success'], 'detected_success': report['detected_success'],
            'localisation': summary.get('localisation'), 'sft_wall_s': summary.get('wall_s'),
            'val_bc_accuracy': summary.get('val_bc_accuracy'),
            'val_grasp_error_cm': summary.get('val_grasp_error_cm')}


def main(argv=None):
    """Run the variants asked for, one after the other, and save the table."""
    args = parse_args(argv)
    ensure_demos(args)
    rows = []
    if os.path.exists(args.results):
        with open(args.results) as handle:
            rows = [r for r in json.load(handle).get('rows', [])
                    if r['variant'] not in args.variants]
    for variant in args.variants:
        model_dir = train(variant, args)
        rows.append(row(variant, model_dir, evaluation(variant, model_dir, args)))
        os.makedirs(os.path.dirname(os.path.abspath(args.results)), exist_ok=True)
        with open(args.results, 'w') as handle:
            json.dump({'task': args.task, 'demos': args.demos, 'k': args.k, 'steps': args.steps,
                       'episodes': args.episodes, 'max_ticks': args.max_ticks,
                       'eval_seed': EVAL_SEED, 'machine': machine(),
                       'rows': rows}, handle, indent=1)
        print(f'{variant}: sim {rows[-1]["sim_success"]["describe"]}, localisation '
              f'{rows[-1]["localisation"]}', flush=True)


if __name__ == '__main__':
    main()
