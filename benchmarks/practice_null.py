"""Does practice carry signal? Replay a practice run with real and with shuffled returns.

A practice setting earns its place only if it beats its own null control: the same recorded
episodes, the same settings and minibatches, but the returns shuffled across decisions, so no
update knows which chunk did well. If the shuffled replay scores as well as the real one, the
change practice made is the size of noisy steps, not learning (measured 2026-11-30: three
iterations of the demo's 44 episodes, whole policy at lr 3e-5, real 66/100 and shuffled 66/100
against Stage 1's 82/100; docs/notebook/2026-11-30.md).

    python -m benchmarks.practice_null --stage1 models/transfer_cube \\
        --practice runs/demo/transfer_cube/practice --iterations 3 --set trainable=policy

The practice bags must come from a run started at `--stage1` (their versions are named
<stage1>-it<n>, as every ImproveRun names them). Each replayed version is evaluated on the same
unseen scenes (seeds 80000..), greedily unless `--temperature` says otherwise. Writes
benchmarks/results/practice_null.json.
Measurements, not tests.
"""

import argparse
import json
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import machine, require_at_least_one  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results')
# Updates x batch of an iteration as the demo practised through the node graph until
# 2026-12-05 (about 15 episodes): what this benchmark's recorded results used.
GRAPH_ITERATION = (8, 32)
EVAL_SEED = 80_000


def replay(stage1: str, practice: str, out: str, config, iterations: int, shuffle: bool):
    """Replay `iterations` iterations of `practice` from `stage1`; return the last model dir."""
    from selfimprove_ros.training.improve_run import ImproveRun
    shutil.rmtree(out, ignore_errors=True)
    run = ImproveRun(out, config, stage1, checkpoint=os.path.join(stage1, 'policy.pt'),
                     log=lambda *_: None)
    rng = np.random.default_rng(config.seed)
    model_dir = ''
    for _ in range(iterations):
        pending = run.pending([practice])
        if not pending:
            raise SystemExit(f'no labelled practice episodes of {run.version} under {practice}; '
                             'were they recorded by a run that started at --stage1?')
        decisions = run.decisions(pending)
        if shuffle:
            decisions.returns[:] = rng.permutation(decisions.returns)
        model_dir = run.iterate(pending, decisions)
    return model_dir


def evaluation(model_dir: str, stage1: str, out: str, args) -> dict:
    """Episodes of `model_dir` on the benchmark's scenes; return the sim success."""
    from selfimprove_ros.cli.evaluate import evaluate
    shutil.rmtree(out, ignore_errors=True)
    report = evaluate(model_dir, stage1, args.task, args.episodes, out, seed=EVAL_SEED,
                      max_ticks=args.max_ticks, temperature=args.temperature)
    return report['sim_success']


def parse_args(argv=None):
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--stage1', required=True,
                        help='Stage-1 model directory with policy.pt (as models/<task>/)')
    parser.add_argument('--practice', required=True, help='labelled practice bags of a run '
                        'that started at --stage1 (e.g. runs/demo/<task>/practice)')
    parser.add_argument('--iterations', type=int, default=3, help='iterations to replay')
    parser.add_argument('--set', dest='overrides', nargs='*', default=[], metavar='KEY=VALUE',
                        help="REINFORCE overrides on the demo's settings, e.g. lr=1e-5")
    parser.add_argument('--episodes', type=int, default=100, help='evaluation episodes each')
    parser.add_argument('--temperature', type=float, default=0.0,
                        help='sampling temperature of the evaluations (0 = greedy; 1 = the '
                        'policy that practised, which is what REINFORCE improves)')
    parser.add_argument('--max-ticks', type=int, default=100,
                        help='evaluation episode limit [ticks]')
    parser.add_argument('--task', default='transfer_cube')
    parser.add_argument('--out', default=os.path.join('runs', 'practice_null'))
    parser.add_argument('--results', default=os.path.join(RESULTS, 'practice_null.json'))
    args = parser.parse_args(argv)
    if args.temperature < 0:
        parser.error(f'--temperature must be >= 0, got {args.temperature}')
    require_at_least_one(parser, args, 'iterations', 'episodes', 'max_ticks')
    return args


def main(argv=None):
    """Replay real and shuffled, evaluate Stage 1 and both; print and save the table."""
    from selfimprove_ros.cli.practice import practice_config
    from selfimprove_ros.training.stopping_rule import drop_p_value
    args = parse_args(argv)
    config = practice_config(*GRAPH_ITERATION, args.overrides)
    rows = {'stage1': evaluation(args.stage1, args.stage1, os.path.join(args.out, 'eval_stage1'),
                                 args)}
    for name in ('real', 'shuffled'):
        model_dir = replay(args.stage1, args.practice, os.path.join(args.out, name), config,
                           args.iterations, shuffle=name == 'shuffled')
        rows[name] = evaluation(model_dir, args.stage1, os.path.join(args.out, f'eval_{name}'),
                                args)
    real, null = rows['real'], rows['shuffled']
    # One-sided Fisher exact: the chance of real doing at least this much better by luck.
    p_value = drop_p_value(real['successes'], real['trials'], null['successes'], null['trials'])
    for name, row in rows.items():
        print(f'{name:>9}: {row["describe"]}')
    verdict = 'carries signal' if p_value < 0.05 else 'is not distinguishable from noise'
    print(f'real against shuffled returns: one-sided Fisher exact p = {p_value:.3f}; this '
          f'practice {verdict}')
    os.makedirs(os.path.dirname(os.path.abspath(args.results)), exist_ok=True)
    with open(args.results, 'w') as stream:
        json.dump({'stage1': os.path.abspath(args.stage1),
                   'practice': os.path.abspath(args.practice), 'iterations': args.iterations,
                   'eval_temperature': args.temperature,
                   'reinforce_config': config.to_dict(), 'rows': rows,
                   'p_real_beats_shuffled': p_value, 'machine': machine(),
                   'argv': argv or sys.argv[1:]}, stream, indent=1)
    print(f'wrote {args.results}')


if __name__ == '__main__':
    main()
