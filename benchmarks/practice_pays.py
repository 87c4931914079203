"""Does practice pay: one practice setting against its own shuffled-return control, in sim.

Each case practises on a fleet of sim stations (`selfimprove practice`) from the same model with
the same setting (sampler, temperature, REINFORCE overrides) for the same number of episodes;
the 'shuffled' case permutes every iteration's returns across its decisions, so none of its
updates knows which chunk did well. Then the version each run left live (after the stopping
rule) and the starting model are judged on the same unseen scenes (seeds 80000..), greedily
(what a robot deploys) and at the practice temperature, on stations. One-sided Fisher exact
tests: real > start, real > shuffled.

    python -m benchmarks.practice_pays --sampler chunk_quantile --episodes 2500
    python -m benchmarks.practice_pays --sampler chunk_quantile --objective filtered_bc

Writes benchmarks/results/practice_pays.json (rows of earlier runs under other --name stay).
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
from selfimprove_ros.sim.aloha_sim import SUCCESS_BONUS  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results')
EVAL_SEED = 80_000
PRACTICE_SEED = 100_000
CASES = ('real', 'shuffled')


def practise_case(args, case: str) -> dict:
    """Practise one case from --model; return its summary and the live model directory."""
    from selfimprove_ros.cli.evaluate import preflight, sim_runtime_specs
    from selfimprove_ros.cli.practice import practice_config, practise_on_fleet
    out = os.path.join(args.out, case)
    shutil.rmtree(out, ignore_errors=True)
    model = os.path.abspath(args.model)
    manifest = preflight(model, model, 1, args.max_ticks, args.temperature)
    specs = sim_runtime_specs(args.task, manifest['codec']['cameras'], model, model, 'aloha1',
                              args.max_ticks, args.temperature,
                              {'policy_node': {'sampler': args.sampler}})
    overrides = [*args.overrides, f'sampler={args.sampler}', f'temperature={args.temperature}',
                 f'shuffle_returns={case == "shuffled"}', f'seed={args.seed}']
    started = time.monotonic()
    # A seed practises other scenes with other samples and minibatches; the judged scenes stay.
    summary = practise_on_fleet(model, model, out, specs,
                                practice_config(None, None, overrides, threads=args.stations,
                                                objective=args.objective, task=args.task),
                                args.episodes, args.stations, PRACTICE_SEED + 10_000 * args.seed,
                                sample_seed=args.seed, log=lambda *_: None)
    live = summary['live_version']
    model_dir = [entry['model_dir'] for entry in summary['versions_history']
                 if entry['version'] == live][-1]
    print(f'{case}: {summary["practised_now"]} episodes in '
          f'{(time.monotonic() - started) / 60:.1f} min, {len(summary["versions_history"])} '
          f'versions, live {live}', flush=True)
    return {'live_version': live, 'model_dir': model_dir, 'episodes': summary['episodes'],
            'stopped_by_rule': summary['stopped_by_rule'], 'versions': summary['versions'],
            'practice_s': time.monotonic() - started}


def judge(args, model_dir: str, name: str) -> dict:
    """Greedy and practice-temperature success of `model_dir` on the benchmark's scenes."""
    from selfimprove_ros.cli.evaluate import evaluate_on_stations
    row = {}
    for label, temperature in (('greedy', 0.0), ('tempered', args.temperature)):
        out = os.path.join(args.out, 'eval', f'{name}_{label}')
        shutil.rmtree(out, ignore_errors=True)
        report = evaluate_on_stations(model_dir, args.model, args.task, args.eval_episodes, out,
                                      seed=EVAL_SEED, max_ticks=args.max_ticks,
                                      temperature=temperature, stations=args.stations,
                                      sampler=args.sampler, log=lambda *_: None)
        row[label] = report['sim_success']
        print(f'{name:>9} {label:>8}: {report["sim_success"]["describe"]}', flush=True)
    return row


def parse_args(argv=None):
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', default=os.path.join('models', 'transfer_cube'),
                        help='model directory to practise from (with policy.pt)')
    parser.add_argument('--task', default='transfer_cube', choices=tuple(SUCCESS_BONUS))
    parser.add_argument('--name', default='', help='row name (default: sampler and temperature)')
    parser.add_argument('--objective', default='reinforce', choices=('reinforce', 'filtered_bc'),
                        help="the learner's (selfimprove practice --objective)")
    parser.add_argument('--sampler', default='independent',
                        choices=('independent', 'chunk_quantile'))
    parser.add_argument('--temperature', type=float, default=1.0)
    parser.add_argument('--set', dest='overrides', nargs='*', default=[], metavar='KEY=VALUE',
                        help='REINFORCE overrides on the practice settings, e.g. lr=1e-4')
    parser.add_argument('--episodes', type=int, default=2500, help='practice episodes per case')
    parser.add_argument('--cases', nargs='+', choices=CASES, default=list(CASES))
    parser.add_argument('--seed', type=int, default=0,
                        help='practice seed: scenes, samples and minibatches of practice')
    parser.add_argument('--eval-episodes', type=int, default=100)
    parser.add_argument('--stations', type=int, default=os.cpu_count() or 1)
    parser.add_argument('--max-ticks', type=int, default=100)
    parser.add_argument('--out', default=os.path.join('runs', 'practice_pays'))
    parser.add_argument('--results', default=os.path.join(RESULTS, 'practice_pays.json'))
    args = parser.parse_args(argv)
    require_at_least_one(parser, args, 'episodes', 'eval_episodes', 'stations', 'max_ticks')
    if not args.temperature > 0:
        parser.error(f'--temperature must be > 0, got {args.temperature}')
    return args


def main(argv=None):
    """Practise each case, judge it and the start, test, save."""
    from selfimprove_ros.training.stopping_rule import drop_p_value
    args = parse_args(argv)
    name = args.name or (f'{args.sampler}_t{args.temperature:g}_seed{args.seed}' +
                         ('' if args.objective == 'reinforce' else f'_{args.objective}'))
    args.out = os.path.join(args.out, name)
    row = {'start': judge(args, os.path.abspath(args.model), 'start')}
    for case in args.cases:
        row[case] = {**practise_case(args, case)}
        row[case].update(judge(args, row[case]['model_dir'], case))
    tests = {}
    for label in ('greedy', 'tempered'):
        for case in args.cases:
            a, b = row[case][label], row['start'][label]
            tests[f'{case}_beats_start_{label}'] = drop_p_value(
                a['successes'], a['trials'], b['successes'], b['trials'])
        if set(CASES) <= set(args.cases):
            a, b = row['real'][label], row['shuffled'][label]
            tests[f'real_beats_shuffled_{label}'] = drop_p_value(
                a['successes'], a['trials'], b['successes'], b['trials'])
    row['p_values'] = tests
    print(json.dumps(tests, indent=1))
    save_row(args.results, name, row, args)


if __name__ == '__main__':
    main()
