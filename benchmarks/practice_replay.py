"""Does learning from recorded practice pay? One iteration over bags on disk: real, blind.

The bags of one practice run (any version: practice of a policy that barely moved, e.g. a
`practice-pays` run's shuffled case) are turned into decisions; one iteration of the learner's
own code (`--objective`) learns from them, from `--model`, with the real verdicts and returns
('real') or blind ('shuffled', the null control: filtered BC fits as many episodes chosen at
random, REINFORCE gets the returns permuted); each result and the start are judged greedily on
the same 100 unseen scenes (seeds 80000..) on sim stations. One-sided Fisher exact tests:
real > start, real > shuffled. Unlike `practice-pays` the learner sees practice it did not
sample itself, so it answers whether the verdicts and returns carry signal, cheaply, from bags
already on disk; for REINFORCE, whose gradient assumes its own samples, only practice of a
policy that barely moved is fair.

    python -m benchmarks.practice_replay --practice runs/practice_pays/X/shuffled/practice
    python -m benchmarks.practice_replay --practice ... --objective reinforce \
        --set sampler=chunk_quantile updates_per_iteration=600 lr=1e-4 baseline=step

Writes benchmarks/results/practice_replay.json (rows of other --name stay).
Measurements, not tests.
"""

import argparse
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import require_at_least_one, save_row  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results')
EVAL_SEED = 80_000
CASES = ('real', 'shuffled')


def recorded_decisions(run, practice: str, episodes: int, log=print):
    """Return the decisions of the first `episodes` labelled bags under `practice`."""
    from selfimprove_ros.data.episode_labelling import (BadLabels, labelling_dataset_config,
                                                        read_labels)
    from selfimprove_ros.data.episode_loader import find_bags, load_episode
    from selfimprove_ros.training.policy_gradient import Decisions, episode_decisions
    config = labelling_dataset_config(run, 0.1)
    parts = []
    for bag in find_bags([practice]):
        if len(parts) == episodes:
            break
        try:
            labels = read_labels(bag)
        except BadLabels:
            continue
        # Each episode with the version that sampled it: the fit is behaviour cloning.
        parts.append(episode_decisions(load_episode(bag, config), labels, labels.policy_version,
                                       run.config.gamma, list(run.codec.config.cameras),
                                       run.config.returns_until))
    if not parts:
        raise SystemExit(f'no labelled practice bags under {practice}')
    log(f'{len(parts)} episodes, {sum(len(p) for p in parts)} decisions')
    return Decisions.concatenate(parts)


def fit(args, case: str, decisions):
    """Learn one case from --model; return its exported model directory and the metrics."""
    from selfimprove_ros.cli.practice import practice_config
    from selfimprove_ros.training.improve_run import ImproveRun
    out = os.path.join(args.out, case)
    shutil.rmtree(out, ignore_errors=True)
    config = practice_config(overrides=[*args.overrides, f'shuffle_returns={case == "shuffled"}',
                                        f'seed={args.seed}'],
                             threads=args.stations, objective=args.objective)
    run = ImproveRun(out, config, os.path.abspath(args.model), log=print)
    model_dir = run.iterate([], decisions)
    return model_dir, run.state['versions'][-1]['metrics']


def judge(args, model_dir: str, name: str) -> dict:
    """Greedy success of `model_dir` on the benchmark's scenes."""
    from selfimprove_ros.cli.evaluate import evaluate_on_stations
    out = os.path.join(args.out, 'eval', name)
    shutil.rmtree(out, ignore_errors=True)
    report = evaluate_on_stations(model_dir, args.model, args.task, args.eval_episodes, out,
                                  seed=EVAL_SEED, max_ticks=args.max_ticks, temperature=0.0,
                                  stations=args.stations, log=lambda *_: None)
    print(f'{name:>9} greedy: {report["sim_success"]["describe"]}', flush=True)
    return {'greedy': report['sim_success'], 'greedy_detected': report['detected_success']}


def parse_args(argv=None):
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', default=os.path.join('models', 'transfer_cube'),
                        help='model directory to fit from (with policy.pt)')
    parser.add_argument('--practice', required=True, help='labelled practice bags to refit')
    parser.add_argument('--episodes', type=int, default=2500, help='practice episodes used')
    parser.add_argument('--task', default='transfer_cube')
    parser.add_argument('--name', default='', help='row name (default: the practice folder, '
                        'the seed and a non-default objective)')
    parser.add_argument('--objective', default='filtered_bc',
                        choices=('filtered_bc', 'reinforce'),
                        help="the learner's (selfimprove practice --objective)")
    parser.add_argument('--set', dest='overrides', nargs='*', default=[], metavar='KEY=VALUE',
                        help="overrides on `selfimprove practice --objective X`'s settings, "
                        'e.g. updates_per_iteration=2000')
    parser.add_argument('--cases', nargs='+', choices=CASES, default=list(CASES))
    parser.add_argument('--seed', type=int, default=0, help='seed of minibatches and the blind '
                        'choice')
    parser.add_argument('--eval-episodes', type=int, default=100)
    parser.add_argument('--stations', type=int, default=os.cpu_count() or 1)
    parser.add_argument('--max-ticks', type=int, default=100)
    parser.add_argument('--out', default=os.path.join('runs', 'practice_replay'))
    parser.add_argument('--results', default=os.path.join(RESULTS, 'practice_replay.json'))
    args = parser.parse_args(argv)
    require_at_least_one(parser, args, 'episodes', 'eval_episodes', 'stations', 'max_ticks')
    return args


def main(argv=None):
    """Load the practice once, fit each case, judge them and the start, test, save."""
    from selfimprove_ros.cli.practice import practice_config
    from selfimprove_ros.training.improve_run import ImproveRun
    from selfimprove_ros.training.stopping_rule import drop_p_value
    args = parse_args(argv)
    name = args.name or os.path.basename(os.path.dirname(os.path.normpath(
        os.path.dirname(os.path.normpath(args.practice))))) + f'_seed{args.seed}' + (
            '' if args.objective == 'filtered_bc' else f'_{args.objective}')
    args.out = os.path.join(args.out, name)
    started = time.monotonic()
    # Returns need the objective's settings (gamma, returns_until) to be what it will train on.
    reader = ImproveRun(os.path.join(args.out, 'reader'),
                        practice_config(overrides=args.overrides, objective=args.objective),
                        os.path.abspath(args.model), log=lambda *_: None)
    decisions = recorded_decisions(reader, args.practice, args.episodes)
    row = {'start': judge(args, os.path.abspath(args.model), 'start'),
           'episodes': len(set(decisions.episode_ids)),
           'detected_successes': len({e for e, s in zip(decisions.episode_ids,
                                                        decisions.successes) if s})}
    for case in args.cases:
        model_dir, metrics = fit(args, case, decisions)
        row[case] = {**judge(args, model_dir, case),
                     'fit': {key: metrics[key] for key in ('updates', 'kl', 'train_s')}}
    tests = {}
    for case in args.cases:
        a, b = row[case]['greedy'], row['start']['greedy']
        tests[f'{case}_beats_start'] = drop_p_value(a['successes'], a['trials'], b['successes'],
                                                    b['trials'])
    if set(CASES) <= set(args.cases):
        a, b = row['real']['greedy'], row['shuffled']['greedy']
        tests['real_beats_shuffled'] = drop_p_value(a['successes'], a['trials'],
                                                    b['successes'], b['trials'])
    row['p_values'] = tests
    row['elapsed_s'] = time.monotonic() - started
    print(json.dumps(tests, indent=1))
    save_row(args.results, name, row, args)


if __name__ == '__main__':
    main()
