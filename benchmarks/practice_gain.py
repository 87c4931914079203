"""Does practice beat demonstrations? K + practice against BC(K) and BC(2K), in sim.

The paper's comparison on models `selfimprove models` builds with the recipe:

    selfimprove models --demos 60 --work runs/k60/work --out runs/k60        # BC(K), its reward
    selfimprove models --demos 120 --rollouts 0 --audit-rollouts 0 \\
        --work runs/k120/work --out runs/k120                                 # BC(2K)
    python -m benchmarks.practice_gain --bc-k runs/k60/transfer_cube \\
        --bc-2k runs/k120/transfer_cube --seeds 0 1 2

For each seed s, BC(K) practises through the node graph as `make demo` does (temperature 1
unless `--practice-temperature`, REINFORCE with the demo's settings, scored and ended by BC(K)'s
frozen reward model and its audited success rule), at most K/2 episodes (the paper's ALOHA
ratio) on scenes 40000 + 100000 s.., over `--iterations` iterations. Then BC(K), BC(2K) and
the last practice version run greedily on the seed's unseen scenes (80000 + 100000 s..), the
simulator judging.
Pooled over seeds: Wilson intervals and one-sided Fisher exact tests of K + practice against
BC(K) (a gain) and against BC(2K). The seeds vary practice and scenes; both BC models are one
build each, so SFT's own variance is not in the intervals.

A phase whose output exists is not run again. Writes benchmarks/results/practice_gain.json.
Measurements, not tests.
"""

import argparse
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import machine, require_at_least_one  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results')
# Simulator seeds of benchmark seed s start at s * SEED_STRIDE; practice and evaluation scenes
# never overlap.
SEED_STRIDE = 100_000
PRACTICE_SEEDS, EVAL_SEEDS = 40_000, 80_000
# Updates x batch of an iteration as the demo practised through the node graph until
# 2026-12-05 (about 15 episodes): what this benchmark's recorded results used.
GRAPH_ITERATION = (8, 32)


def parse_args(argv=None) -> argparse.Namespace:
    """Parse and check the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--bc-k', required=True,
                        help='BC(K) model directory (policy.pt, reward.onnx, audited rule)')
    parser.add_argument('--bc-2k', required=True, help='BC(2K) model directory')
    parser.add_argument('--task', default='transfer_cube')
    parser.add_argument('--k', type=int,
                        help="demonstrations of BC(K) (default: its manifest's provenance)")
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--practice-fraction', type=float, default=0.5,
                        help='practice budget as a fraction of K (the paper on ALOHA: 0.5)')
    parser.add_argument('--iterations', type=int, default=2, help='REINFORCE iterations')
    parser.add_argument('--eval-episodes', type=int, default=100)
    parser.add_argument('--max-ticks', type=int, default=100, help='episode limit [ticks]')
    parser.add_argument('--practice-temperature', type=float, default=1.0,
                        help='sampling temperature of practice (1: the paper and the demo; '
                        'lower practises nearer the greedy policy that is judged)')
    parser.add_argument('--set', dest='overrides', nargs='*', default=[], metavar='KEY=VALUE',
                        help="REINFORCE overrides on the demo's settings, e.g. lr=1e-4")
    parser.add_argument('--out', default='runs/practice_gain')
    parser.add_argument('--results', default=os.path.join(RESULTS, 'practice_gain.json'))
    args = parser.parse_args(argv)
    require_at_least_one(parser, args, 'iterations', 'eval_episodes', 'max_ticks')
    args.k = args.k or demonstrations(args.bc_k)
    if not args.k:
        parser.error(f'{args.bc_k} records no demonstrations in its provenance: build it with '
                     '`selfimprove models --demos K`, or give --k')
    args.budget = int(args.k * args.practice_fraction)
    if args.budget < 1:
        parser.error(f'K = {args.k} x --practice-fraction {args.practice_fraction} allows no '
                     'practice episode; raise the fraction')
    if args.practice_temperature <= 0:
        parser.error(f'--practice-temperature must be > 0 (practice samples), got '
                     f'{args.practice_temperature}')
    args.success_bonus = 0.0  # the reward scorer's, in practice_graph: none on transfer_cube
    return args


def demonstrations(model_dir: str) -> int:
    """Return how many demonstrations a `selfimprove models` model used (0: not recorded)."""
    from selfimprove_ros.model.manifest import read_manifest
    demos = read_manifest(model_dir).get('provenance', {}).get('demonstrations')
    if not demos:
        return 0
    first, last = demos['simulator_seeds']
    return last - first + 1


def practise(seed: int, args):
    """Practise from BC(K) within the budget; return the ImproveRun."""
    from selfimprove_ros.cli.practice import practice_config
    from selfimprove_ros.training.improve_run import ImproveRun
    config = practice_config(*GRAPH_ITERATION, [*args.overrides, f'seed={seed}'])
    case = os.path.join(args.out, f'seed{seed}')
    run = ImproveRun(os.path.join(case, 'practice_run'), config, args.bc_k,
                     checkpoint=os.path.join(args.bc_k, 'policy.pt'), log=lambda *_: None)
    return practise_within(run, args.bc_k, os.path.join(case, 'practice'), args.budget, seed,
                           args.task, args)


def practise_within(run, reward: str, bags: str, budget: int, seed: int, task: str, args):
    """Alternate practice rounds and iterations until the budget [episodes] is used; return run.

    At most `args.iterations` iterations; `reward` names the model that scores practice.
    Iteration i may use its even share of the episodes left; it trains as soon as the live
    version has N x B decisions or its share of episodes, whichever comes first (with fewer
    decisions the minibatches shrink, as `policy_gradient.minibatches` does).
    """
    while run.state['iteration'] < args.iterations:
        allowed = budget - len(run.state['consumed'])
        if allowed < 1:
            break
        share = max(1, allowed // (args.iterations - run.state['iteration']))
        pending = practice_round(run, reward, bags, share, seed, task, args)
        if not pending:
            break
        run.record_outcomes(pending)
        run.iterate(pending, run.decisions(pending))
    return run


def practice_round(run, reward: str, bags: str, share: int, seed: int, task: str,
                   args) -> list:
    """Practise with the live version until it has `share` episodes or N x B decisions.

    Return at most `share` of its labelled episodes (an episode cut short when the graph
    stopped may be labelled as well; it is left out rather than breaking the budget).
    """
    from selfimprove_ros.training.improve_loop import ready_decisions

    def enough(done=0, ended=None):
        return len(run.pending([bags])) >= share or ready_decisions(run, [bags]) is not None
    os.makedirs(bags, exist_ok=True)
    if not enough():
        practice_graph(run, reward, bags, seed, task, args, enough)
    return run.pending([bags])[:share]


def practice_graph(run, reward: str, bags: str, seed: int, task: str, args, stop_when):
    """Run the sim graph with the live version, sampling, until `stop_when` is true."""
    from selfimprove_ros.data.episode_loader import find_bags
    from selfimprove_ros.graph.description import build_graph, config_path, load_config
    from selfimprove_ros.graph.sim_driver import run_graph_until_labelled
    model_dir = next(e['model_dir'] for e in run.state['versions'] if e['version'] == run.version)
    recorded = len(find_bags(bags)) if os.path.isdir(bags) else 0
    scene = seed * SEED_STRIDE + PRACTICE_SEEDS + recorded  # every practice episode a new scene
    overrides = {
        'launch': {'task': task, 'cameras': ['cam_high'], 'lockstep': True,
                   'model_dir': model_dir, 'reward_model_dir': reward},
        'robot_node': {'seed': scene},
        'recorder_node': {'bag_dir': bags},
        'policy_node': {'temperature': args.practice_temperature, 'seed': scene},
        'reward_scorer_node': {'success_bonus': args.success_bonus},
        'episode_manager_node': {'max_ticks': args.max_ticks, 'wait_for_policy': True},
    }
    specs = build_graph(load_config(config_path('sim.yaml')), 'aloha1', overrides,
                        with_runtime=True)
    log_dir = os.path.join(run.run_dir, 'logs', f'iteration{run.state["iteration"] + 1}')
    run_graph_until_labelled(specs, 'aloha1', 10**6, log_dir, stop_when=stop_when)


def evaluation(model_dir: str, name: str, seed: int, args) -> dict:
    """Greedy episodes of `model_dir` on the seed's scenes (reused when finished)."""
    from selfimprove_ros.cli.evaluate import evaluate
    out = os.path.join(args.out, f'seed{seed}', 'eval', name)
    path = os.path.join(out, 'eval.json')
    if os.path.exists(path):
        with open(path) as handle:
            return json.load(handle)
    shutil.rmtree(out, ignore_errors=True)  # an interrupted evaluation starts again
    return evaluate(model_dir, args.bc_k, args.task, args.eval_episodes, out,
                    seed=seed * SEED_STRIDE + EVAL_SEEDS, max_ticks=args.max_ticks)


def run_seed(seed: int, args) -> list:
    """Practise, then evaluate the three versions on the seed's scenes; return their rows."""
    run = practise(seed, args)
    last = run.state['versions'][-1]
    used = len(run.state['consumed'])
    practice_success = run.history.to_dict()
    versions = {'k_practice': (last['model_dir'], args.k, used),
                'bc_k': (args.bc_k, args.k, 0), 'bc_2k': (args.bc_2k, 2 * args.k, 0)}
    # Evaluated in this order (BC(2K) may still be training while practice runs); shown as BC.
    reports = {method: evaluation(model_dir, method, seed, args)
               for method, (model_dir, _, _) in versions.items()}
    rows = []
    for method in ('bc_k', 'bc_2k', 'k_practice'):
        _, demos, practice = versions[method]
        report = reports[method]
        rows.append({'seed': seed, 'method': method, 'demos': demos,
                     'practice_episodes': practice, 'version': report['version'],
                     'sim_success': report['sim_success'],
                     'detected_success': report['detected_success']})
    rows[-1]['practice_history'] = practice_success
    return rows


def pooled(rows) -> dict:
    """Sum each method's successes over seeds; test K + practice against both BC models."""
    from selfimprove_ros.training.episode_report import rate
    from selfimprove_ros.training.stopping_rule import drop_p_value
    totals = {}
    for row in rows:
        total = totals.setdefault(row['method'], [0, 0])
        total[0] += row['sim_success']['successes']
        total[1] += row['sim_success']['trials']
    result = {method: rate(*total) for method, total in totals.items()}
    if {'k_practice', 'bc_k', 'bc_2k'} <= set(totals):
        practice = totals['k_practice']
        # P(K + practice does at least this much better by chance alone), one-sided.
        result['p_gain_over_bc_k'] = drop_p_value(*practice, *totals['bc_k'])
        result['p_gain_over_bc_2k'] = drop_p_value(*practice, *totals['bc_2k'])
        result['p_worse_than_bc_2k'] = drop_p_value(*totals['bc_2k'], *practice)
    return result


def print_table(rows, summary):
    """Print each seed's rows and the pooled line with the tests."""
    print(f'\n{"seed":>4} {"method":12} {"episodes used":>14} {"sim success (greedy)":28} '
          'detected')
    for row in rows:
        used = f'{row["demos"]} + {row["practice_episodes"]}'
        print(f'{row["seed"]:>4} {row["method"]:12} {used:>14} '
              f'{row["sim_success"]["describe"]:28} {row["detected_success"]["describe"]}')
    for method in ('bc_k', 'bc_2k', 'k_practice'):
        if method in summary:
            print(f'{"all":>4} {method:12} {"":>14} {summary[method]["describe"]}')
    if 'p_gain_over_bc_k' in summary:
        print(f'one-sided Fisher exact: K + practice > BC(K) p = '
              f'{summary["p_gain_over_bc_k"]:.3f}; > BC(2K) p = '
              f'{summary["p_gain_over_bc_2k"]:.3f}; < BC(2K) p = '
              f'{summary["p_worse_than_bc_2k"]:.3f}')


def main(argv=None):
    """Run every seed, saving JSON after each; print the table."""
    from selfimprove_ros.training.improve_run import write_json_atomic
    args = parse_args(argv)
    started, at_start = time.monotonic(), machine()
    rows = []
    for seed in args.seeds:
        print(f'\n==== seed {seed}: K = {args.k}, practice budget {args.budget} episodes',
              flush=True)
        rows += run_seed(seed, args)
        config = {key: value for key, value in vars(args).items() if key != 'results'}
        os.makedirs(os.path.dirname(os.path.abspath(args.results)), exist_ok=True)
        write_json_atomic(args.results, {
            'complete': seed == args.seeds[-1], 'wall_s': round(time.monotonic() - started, 1),
            'config': config, 'machine': at_start, 'rows': rows, 'pooled': pooled(rows)})
    print_table(rows, pooled(rows))
    print(f'\nsaved {args.results}')


if __name__ == '__main__':
    main()
