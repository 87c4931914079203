"""How fast does a robot practise here: the node graph, one sim station, a fleet, the learner.

Rows (transfer_cube, the shipped model unless --model says otherwise):
- node graph: `selfimprove eval` through the ROS graph at temperature 1 (as practice runs);
- one station / N stations: the same episodes on sim stations (fleet/), with the station
  seconds per phase (physics, render, inference, detection, bag, labelling);
- practice: `selfimprove practice` for --practice-episodes episodes on N stations, labelled and
  learned from (REINFORCE iterations of 16 x 64 decisions), with the learner's time;
- fidelity (--fidelity-episodes > 0): the same model greedy on the same unseen scenes (seeds
  80000..) through the stations and through the node graph, with a two-sided Fisher exact test
  of their difference.

    python -m benchmarks.practice_throughput --practice-episodes 2500 --fidelity-episodes 100

Writes benchmarks/results/practice_throughput.json; rows measured in an earlier run and not
this one stay, each with when and on what it was measured. Measurements, not tests.
"""

import argparse
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import machine  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results')
FIDELITY_SEED = 80_000
PRACTICE_SEED = 100_000


def timed_evaluation(args, name: str, episodes: int, temperature: float, seed: int,
                     stations: int = 0) -> dict:
    """Run `episodes` through the graph (stations 0) or on stations; return the row."""
    from selfimprove_ros.cli.evaluate import evaluate, evaluate_on_stations
    out = os.path.join(args.out, name)
    shutil.rmtree(out, ignore_errors=True)
    started = time.monotonic()
    common = dict(seed=seed, max_ticks=args.max_ticks, temperature=temperature,
                  log=lambda *_: None)
    if stations:
        report = evaluate_on_stations(args.model, args.model, args.task, episodes, out,
                                      stations=stations, **common)
    else:
        report = evaluate(args.model, args.model, args.task, episodes, out, **common)
    elapsed = time.monotonic() - started
    row = {'episodes': episodes, 'stations': stations, 'temperature': temperature,
           'elapsed_s': elapsed, 'episodes_per_min': episodes / elapsed * 60,
           'sim_success': report['sim_success'], 'detected_success': report['detected_success']}
    if stations:
        row['phases_s_per_episode'] = {key: value / episodes
                                       for key, value in report['phases_s'].items()}
    print(f'{name:>14}: {row["episodes_per_min"]:7.1f} episodes/min ({episodes} in '
          f'{elapsed:.0f} s), sim {report["sim_success"]["describe"]}', flush=True)
    return row


def practice_row(args) -> dict:
    """Practise --practice-episodes on --stations stations with one learner; return the row."""
    from selfimprove_ros.cli.evaluate import preflight, sim_runtime_specs
    from selfimprove_ros.cli.practice import practice_config, practise_on_fleet
    from selfimprove_ros.training.stopping_rule import StoppingConfig
    out = os.path.join(args.out, 'practice')
    shutil.rmtree(out, ignore_errors=True)
    manifest = preflight(args.model, args.model, 1, args.max_ticks, 1.0)
    specs = sim_runtime_specs(args.task, manifest['codec']['cameras'], args.model, args.model,
                              'aloha1', args.max_ticks, 1.0)
    model = os.path.abspath(args.model)
    started = time.monotonic()
    # Rollbacks still happen, but the rule never ends the run: the row measures throughput.
    summary = practise_on_fleet(model, model, out, specs,
                                practice_config(16, 64, threads=args.stations),
                                args.practice_episodes, args.stations, PRACTICE_SEED,
                                stopping=StoppingConfig(patience=10**6), log=lambda *_: None)
    elapsed = time.monotonic() - started
    episodes = summary['practised_now']
    row = {'episodes': episodes, 'stations': args.stations, 'elapsed_s': elapsed,
           'episodes_per_min': episodes / elapsed * 60,
           'iterations': len(summary['versions_history']) - 1,
           'phases_s_per_episode': {key: value / max(episodes, 1)
                                    for key, value in summary['phases_s'].items()},
           'versions': summary['versions'], 'faults': len(summary['faults'])}
    print(f'{"practice":>14}: {row["episodes_per_min"]:7.1f} episodes/min ({episodes} labelled '
          f'and learned from in {elapsed / 60:.1f} min, {row["iterations"]} iterations)',
          flush=True)
    return row


def fidelity(args) -> dict:
    """Greedy on the same unseen scenes through stations and the graph; test the difference."""
    from scipy.stats import fisher_exact
    rows = {name: timed_evaluation(args, f'fidelity_{name}', args.fidelity_episodes, 0.0,
                                   FIDELITY_SEED, stations)
            for name, stations in (('stations', args.stations), ('node_graph', 0))}
    a, b = (rows[name]['sim_success'] for name in ('stations', 'node_graph'))
    _, p_value = fisher_exact([[a['successes'], a['trials'] - a['successes']],
                               [b['successes'], b['trials'] - b['successes']]])
    paired = scene_agreement(*(os.path.join(args.out, f'fidelity_{name}')
                               for name in ('stations', 'node_graph')))
    print(f'fidelity: stations {a["describe"]}, node graph {b["describe"]}; two-sided Fisher '
          f'exact p = {p_value:.2f}; per scene {paired}', flush=True)
    return {**rows, 'p_difference': p_value, 'paired': paired,
            'seeds': [FIDELITY_SEED, FIDELITY_SEED + args.fidelity_episodes - 1]}


def scene_agreement(stations_dir: str, graph_dir: str) -> dict:
    """Compare the two evaluations scene by scene; McNemar's exact test on the discordant ones."""
    from scipy.stats import binomtest

    from selfimprove_ros.bag.episode_metadata import read_episode_file

    def by_seed(folder):
        with open(os.path.join(folder, 'eval.json')) as stream:
            report = json.load(stream)
        return {read_episode_file(e['bag']).seed: bool(e['sim_success'])
                for e in report['episodes']}
    a, b = by_seed(stations_dir), by_seed(graph_dir)
    seeds = sorted(set(a) & set(b))
    only_a = sum(a[s] and not b[s] for s in seeds)
    only_b = sum(b[s] and not a[s] for s in seeds)
    p_value = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    return {'scenes': len(seeds), 'agree': len(seeds) - only_a - only_b,
            'stations_only': only_a, 'node_graph_only': only_b, 'p_mcnemar': p_value}


def parse_args(argv=None):
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', default=os.path.join('models', 'transfer_cube'))
    parser.add_argument('--task', default='transfer_cube')
    parser.add_argument('--stations', type=int, default=os.cpu_count() or 1)
    parser.add_argument('--graph-episodes', type=int, default=20,
                        help='episodes through the node graph (0 skips the row)')
    parser.add_argument('--station-episodes', type=int, default=40,
                        help='episodes on one station and on the fleet')
    parser.add_argument('--practice-episodes', type=int, default=200,
                        help='practice episodes, labelled and learned from (0 skips)')
    parser.add_argument('--fidelity-episodes', type=int, default=0,
                        help='greedy episodes per side of the fidelity row (0 skips it)')
    parser.add_argument('--max-ticks', type=int, default=100)
    parser.add_argument('--out', default=os.path.join('runs', 'practice_throughput'))
    parser.add_argument('--results', default=os.path.join(RESULTS, 'practice_throughput.json'))
    args = parser.parse_args(argv)
    for name in ('graph_episodes', 'station_episodes', 'practice_episodes',
                 'fidelity_episodes'):
        if getattr(args, name) < 0:
            parser.error(f'--{name.replace("_", "-")} must be >= 0')
    if args.stations < 1:
        parser.error(f'--stations must be >= 1, got {args.stations}')
    return args


def main(argv=None):
    """Measure each row, print it as it comes, save the JSON."""
    args = parse_args(argv)
    result = {'model': os.path.abspath(args.model), 'task': args.task, 'rows': {}}
    if os.path.exists(args.results):  # rows measured now replace theirs, the others stay
        with open(args.results) as stream:
            result = {**result, **json.load(stream)}
    rows = result['rows']
    stamp = {'machine': machine(), 'argv': argv if argv is not None else sys.argv[1:],
             'date': time.strftime('%Y-%m-%d')}
    if args.graph_episodes:
        rows['node_graph'] = timed_evaluation(args, 'node_graph', args.graph_episodes, 1.0,
                                              PRACTICE_SEED)
    if args.station_episodes:
        rows['one_station'] = timed_evaluation(args, 'one_station', args.station_episodes,
                                               1.0, PRACTICE_SEED, 1)
        rows['stations'] = timed_evaluation(args, 'stations', args.station_episodes, 1.0,
                                            PRACTICE_SEED, args.stations)
    if args.practice_episodes:
        rows['practice'] = practice_row(args)
    if args.fidelity_episodes:
        result['fidelity'] = fidelity(args)
    for row in list(rows.values()) + [result.get('fidelity', {})]:
        row.setdefault('measured', stamp)
    os.makedirs(os.path.dirname(os.path.abspath(args.results)), exist_ok=True)
    with open(args.results, 'w') as stream:
        json.dump(result, stream, indent=1)
    print(f'wrote {args.results}')


if __name__ == '__main__':
    main()
