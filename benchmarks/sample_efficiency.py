"""Sample efficiency in sim: BC on K and 2K demonstrations against K + self-improvement.

The paper's central comparison (arXiv 2509.15155, §4): a policy fine-tuned on K demonstrations
and then improved on at most K/4 of its own practice episodes (on-policy REINFORCE, rewards from
the frozen Stage-1 steps-to-go model) against behaviour cloning on K and on 2K demonstrations.
Every policy is judged by greedy episodes on the same scenes; success is the simulator's.

Per (task, seed), under --out:

    <task>/seed<s>/demos_k<K>_noise<std>/{first,second}/  2K scripted demonstrations
    <task>/seed<s>/bc_<n>demos_<steps>steps/              SFT run on the first K / on all 2K
    <task>/seed<s>/models/<run name>/                     their exports
    <task>/seed<s>/si_<budget>ep_<it>it_<N>x<B>/          ImproveRun: versions, practice bags
    <task>/seed<s>/eval/<version>_<n>ep_<ticks>ticks/     greedy evaluation, eval.json
    <task>/seed<s>/timings_k<K>_<steps>steps_<n>ep.json   wall time [s] of each phase

A phase whose output exists is not run again, so an interrupted run continues where it stopped.
Writes benchmarks/results/sample_efficiency.json (--quick: sample_efficiency_quick.json).
Measurements, not tests.
"""

import argparse
import json
import os
import platform
import shutil
import time

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results')
TASKS = ('transfer_cube', 'insertion')
NOISE_STD = {'transfer_cube': 0.01, 'insertion': 0.005}  # [rad]; insertion is noise-sensitive
# Reward [ticks] on a practice episode's last step when the simulator reports success: the
# paper adds one for insertion, whose last millimetres the cameras cannot see (App. D.3).
SUCCESS_BONUS = {'transfer_cube': 0.0, 'insertion': 2.0}
PRESETS = {  # False: the full CPU run (hours); True: --quick, a smoke run of a few minutes
    False: {'k': 20, 'seeds': [0, 1, 2], 'sft_steps': 5000, 'eval_episodes': 30,
            'iterations': 2, 'updates': 4, 'batch': 16},
    True: {'k': 4, 'seeds': [0], 'sft_steps': 100, 'eval_episodes': 2, 'iterations': 1,
           'updates': 2, 'batch': 8},
}
# Simulator seeds of benchmark seed s start at s * SEED_STRIDE; the three uses never overlap.
SEED_STRIDE = 100_000
DEMO_SEEDS, PRACTICE_SEEDS, EVAL_SEEDS = 0, 40_000, 80_000


def parse_args(argv=None) -> argparse.Namespace:
    """Parse the command line and fill unset sizes from the preset."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--task', action='append', choices=TASKS + ('both',),
                        help='task to run, repeatable, or both (default: both)')
    parser.add_argument('--k', type=int, help='demonstrations of the small set (default 20)')
    parser.add_argument('--seeds', type=int, nargs='+',
                        help='benchmark seeds: demonstrations, SFT, scenes (default 0 1 2)')
    parser.add_argument('--sft-steps', type=int, help='SFT steps of each BC run (default 5000)')
    parser.add_argument('--sft-batch', type=int, default=32, help='SFT samples per step')
    parser.add_argument('--eval-episodes', type=int,
                        help='greedy evaluation episodes per version (default 30)')
    parser.add_argument('--iterations', type=int,
                        help='most practice iterations; the budget may end them earlier '
                        '(default 2)')
    parser.add_argument('--updates', type=int, help='REINFORCE updates per iteration, N '
                        '(default 4; the paper: 16)')
    parser.add_argument('--batch', type=int, help='decisions per update, B (default 16; the '
                        'paper: 64)')
    parser.add_argument('--practice-fraction', type=float, default=0.25,
                        help='practice budget in episodes, as a fraction of K (the paper: 0.5)')
    parser.add_argument('--noise-std', type=float,
                        help='expert noise [rad] for every task (default: '
                        + ', '.join(f'{t} {s}' for t, s in NOISE_STD.items()) + ')')
    parser.add_argument('--success-bonus', type=float,
                        help='practice reward [ticks] for simulator success, every task '
                        '(default: ' + ', '.join(f'{t} {b}' for t, b in SUCCESS_BONUS.items())
                        + ')')
    parser.add_argument('--practice-temperature', type=float, default=1.0,
                        help='sampling temperature of practice episodes (default 1, on-policy as '
                        'the paper; below 1 finds a weak policy\'s successes more often)')
    parser.add_argument('--practice-lr', type=float,
                        help='REINFORCE learning rate (default: ReinforceConfig\'s)')
    parser.add_argument('--baseline', choices=('none', 'mean', 'step'), default='none',
                        help='REINFORCE baseline (default none, the paper; mean subtracts the '
                        'iteration\'s mean return)')
    parser.add_argument('--val-fraction', type=float, default=0.2,
                        help='share of demonstrations held out to choose the reward checkpoint')
    parser.add_argument('--max-ticks', type=int, default=100, help='episode limit [ticks]')
    parser.add_argument('--device', default='auto',
                        help="training device: 'auto' (cuda if present), 'cpu' or 'cuda[:N]'")
    parser.add_argument('--threads', type=int, default=0,
                        help='torch intra-op threads of this process; 0 = torch default')
    parser.add_argument('--out', help='run folder (default runs/sample_efficiency[_quick])')
    parser.add_argument('--results', help='result JSON (default benchmarks/results/'
                        'sample_efficiency[_quick].json)')
    parser.add_argument('--quick', action='store_true',
                        help='smoke sizes (K 4, 100 SFT steps, 2 evaluation episodes, 1 '
                        'iteration of 2 x 8): proves the pipeline, not the claim')
    args = parser.parse_args(argv)
    for name, value in PRESETS[args.quick].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    suffix = '_quick' if args.quick else ''
    args.out = os.path.abspath(args.out or os.path.join('runs', f'sample_efficiency{suffix}'))
    args.results = args.results or os.path.join(RESULTS, f'sample_efficiency{suffix}.json')
    args.tasks = list(TASKS) if not args.task or 'both' in args.task else list(
        dict.fromkeys(args.task))
    check(args)
    return args


def check(args):
    """Reject sizes that cannot make the comparison, naming the bad value."""
    for name in ('k', 'sft_steps', 'sft_batch', 'eval_episodes', 'iterations', 'updates',
                 'batch', 'max_ticks'):
        if getattr(args, name) < 1:
            raise SystemExit(f'--{name.replace("_", "-")} must be >= 1, got {getattr(args, name)}')
    if practice_budget(args) < 1:
        raise SystemExit(f'--k {args.k} x --practice-fraction {args.practice_fraction} allows '
                         'no practice episode; raise either')
    if args.practice_temperature <= 0:
        raise SystemExit('--practice-temperature must be > 0 (practice samples), got '
                         f'{args.practice_temperature}')
    if args.practice_lr is not None and args.practice_lr <= 0:
        raise SystemExit(f'--practice-lr must be > 0, got {args.practice_lr}')
    if not 0 <= args.val_fraction < 1:
        raise SystemExit(f'--val-fraction must be in [0, 1), got {args.val_fraction}')
    if 2 * args.k > PRACTICE_SEEDS:
        raise SystemExit(f'--k {args.k} is too large for the seed layout (at most '
                         f'{PRACTICE_SEEDS // 2})')


def practice_budget(args) -> int:
    """Return the most practice episodes self-improvement may use: K x fraction, rounded down."""
    return int(args.k * args.practice_fraction)


def noise_std(task: str, args) -> float:
    """Return the expert noise [rad] of `task`."""
    return NOISE_STD[task] if args.noise_std is None else args.noise_std


def success_bonus(task: str, args) -> float:
    """Return the practice reward [ticks] for simulator success on `task`."""
    return SUCCESS_BONUS[task] if args.success_bonus is None else args.success_bonus


class PhaseTimes:
    """Wall time [s] of each finished phase of one case, kept in a file across resumed runs."""

    def __init__(self, path: str):
        self.path = path
        self.times = {}
        if os.path.exists(path):
            with open(path) as handle:
                self.times = json.load(handle)

    def run(self, phase: str, function, *args):
        """Call `function(*args)`; record its wall time unless an earlier run already did."""
        started = time.monotonic()
        result = function(*args)
        if phase not in self.times:  # a phase found finished on disk keeps its first timing
            self.times[phase] = round(time.monotonic() - started, 1)
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            with open(self.path, 'w') as handle:
                json.dump(self.times, handle, indent=1)
        return result


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


def collect_demos(case: str, task: str, seed: int, args) -> list:
    """Record K + K demonstrations (distinct scenes) once; return the two bag folders."""
    from selfimprove_ros.cli import collect
    root = os.path.join(case, f'demos_k{args.k}_noise{noise_std(task, args):g}')
    halves = []
    for index, name in enumerate(('first', 'second')):
        folder = os.path.join(root, name)
        done = len(finished_bags(folder))
        if done < args.k:
            collect.collect(folder, task=task, episodes=args.k - done,
                            noise_std=noise_std(task, args), cameras=['cam_high'],
                            seed=seed * SEED_STRIDE + DEMO_SEEDS + index * args.k + done)
        halves.append(folder)
    return halves


def demo_outcomes(folders) -> dict:
    """Return how many demonstrations in `folders` ended with each outcome."""
    counts = {}
    for folder in folders:
        for _, outcome in finished_bags(folder):
            counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def train_bc(bag_roots, case: str, seed: int, args) -> str:
    """Train (or resume) SFT on the demonstrations in `bag_roots`, export; return the model."""
    from selfimprove_ros.training.run_export import export_run
    from selfimprove_ros.training.sft_config import SftConfig
    from selfimprove_ros.training.sft_trainer import train_sft
    name = f'bc_{args.k * len(bag_roots)}demos_{args.sft_steps}steps'
    run_dir, model_dir = os.path.join(case, name), os.path.join(case, 'models', name)
    if os.path.exists(model_dir):  # exports are published atomically: present = complete
        return model_dir
    every = max(100, args.sft_steps // 6)
    config = SftConfig(steps=args.sft_steps, batch_size=args.sft_batch, eval_every=every,
                       checkpoint_every=every, seed=seed, device=args.device,
                       torch_threads=args.threads)
    summary = train_sft(bag_roots, run_dir, config,
                        {'val_fraction': args.val_fraction, 'split_seed': seed})
    with open(os.path.join(run_dir, 'summary.json'), 'w') as handle:
        json.dump(summary, handle, indent=1, default=str)
    export_run(run_dir, model_dir)
    return model_dir


def sft_summary(model_dir: str) -> dict:
    """Return the validation numbers of the SFT run behind `model_dir` ({} if unknown)."""
    from selfimprove_ros.model.manifest import read_manifest
    run_dir = read_manifest(model_dir)['provenance'].get('run_dir', '')
    path = os.path.join(run_dir, 'summary.json')
    if not os.path.exists(path):
        return {}
    with open(path) as handle:
        summary = json.load(handle)
    landscape = summary.get('value_landscape', {})
    return {'val_bc_accuracy': summary.get('val_bc_accuracy'),
            'val_steps_mae': summary.get('val_steps_mae'),
            'value_spearman': landscape.get('spearman'), 'episodes': summary.get('episodes')}


def evaluation(model_dir: str, reward_dir: str, case: str, seed: int, task: str, args) -> dict:
    """Greedy episodes of `model_dir` on the case's evaluation scenes; reuse a finished report."""
    from selfimprove_ros.cli.evaluate import evaluate
    from selfimprove_ros.model.manifest import read_manifest
    manifest = read_manifest(model_dir)
    # Practice runs with other settings from the same Stage 1 name their versions alike
    # (<stage1>-it1): the run's folder tells their evaluations apart.
    name = manifest['version']
    if manifest.get('stage') == 'reinforce':
        name += '@' + os.path.basename(manifest['provenance']['run_dir'])
    out = os.path.join(case, 'eval', f'{name}_{args.eval_episodes}ep_{args.max_ticks}ticks')
    path = os.path.join(out, 'eval.json')
    if os.path.exists(path):
        with open(path) as handle:
            return json.load(handle)
    if os.path.exists(out):
        shutil.rmtree(out)  # an interrupted evaluation: its scenes start again from the first
    return evaluate(model_dir, reward_dir, task, args.eval_episodes, out,
                    seed=seed * SEED_STRIDE + EVAL_SEEDS, max_ticks=args.max_ticks,
                    temperature=0.0)


def practice_run(stage1: str, case: str, seed: int, task: str, args):
    """Open (or resume) the self-improvement run of the K model; return it and its bag folder."""
    from selfimprove_ros.training.improve_run import ImproveRun
    from selfimprove_ros.training.reinforce_config import ReinforceConfig
    name = f'si_{practice_budget(args)}ep_{args.iterations}it_{args.updates}x{args.batch}'
    if args.practice_temperature != 1.0:
        name += f'_t{args.practice_temperature:g}'
    if args.baseline != 'none':
        name += f'_baseline_{args.baseline}'
    extra = {'lr': args.practice_lr} if args.practice_lr else {}
    if extra:
        name += f'_lr{args.practice_lr:g}'
    if success_bonus(task, args):
        name += f'_bonus{success_bonus(task, args):g}'
    config = ReinforceConfig(updates_per_iteration=args.updates, batch_size=args.batch,
                             success_bonus=success_bonus(task, args), seed=seed,
                             baseline=args.baseline, device=args.device,
                             torch_threads=args.threads, **extra)
    run = ImproveRun(os.path.join(case, name), config, stage1)
    return run, os.path.join(case, name, 'practice')


def practise(stage1: str, case: str, seed: int, task: str, args, reward: str = None):
    """Improve the K model within the practice budget; return the ImproveRun.

    Rewards come from `stage1`'s reward head unless `reward` names another model directory.

    Iteration i may use its even share of the episodes left; it trains as soon as the live
    version has N x B decisions or its share of episodes, whichever comes first (with fewer
    decisions the minibatches shrink, as `policy_gradient.minibatches` does).
    """
    run, bags = practice_run(stage1, case, seed, task, args)
    return practise_within(run, reward or stage1, bags, practice_budget(args), seed, task, args)


def practise_within(run, reward: str, bags: str, budget: int, seed: int, task: str, args):
    """Alternate practice rounds and iterations until the budget [episodes] is used; return run.

    At most `args.iterations` iterations; `reward` names the model that scores practice.
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


def live_pending(run, bags: str) -> list:
    """Return the labelled, unconsumed practice episodes of the live version."""
    return run.pending([bags])


def practice_round(run, stage1: str, bags: str, share: int, seed: int, task: str, args) -> list:
    """Practise with the live version until it has `share` episodes or N x B decisions.

    Return at most `share` of its labelled episodes (an episode cut short when the graph
    stopped may be labelled as well; it is left out rather than breaking the budget).
    """
    from selfimprove_ros.training.improve_loop import ready_decisions

    def enough(done=0, ended=None):
        return len(live_pending(run, bags)) >= share or ready_decisions(run, [bags]) is not None
    os.makedirs(bags, exist_ok=True)
    if not enough():
        practice_graph(run, stage1, bags, seed, task, args, enough)
    return live_pending(run, bags)[:share]


def practice_graph(run, stage1: str, bags: str, seed: int, task: str, args, stop_when):
    """Run the sim graph with the live version, sampling, until `stop_when` is true."""
    from selfimprove_ros.graph.sim_driver import run_graph_until_labelled
    from selfimprove_ros.data.episode_loader import find_bags
    from selfimprove_ros.graph.description import build_graph, config_path, load_config
    model_dir = next(e['model_dir'] for e in run.state['versions'] if e['version'] == run.version)
    recorded = len(find_bags(bags)) if os.path.isdir(bags) else 0
    scene = seed * SEED_STRIDE + PRACTICE_SEEDS + recorded  # every practice episode a new scene
    overrides = {
        'launch': {'task': task, 'cameras': ['cam_high'], 'lockstep': True,
                   'model_dir': model_dir, 'reward_model_dir': stage1},
        'robot_node': {'seed': scene},
        'recorder_node': {'bag_dir': bags},
        'policy_node': {'temperature': args.practice_temperature, 'seed': scene},
        'reward_scorer_node': {'success_bonus': success_bonus(task, args)},
        'episode_manager_node': {'max_ticks': args.max_ticks, 'wait_for_policy': True},
    }
    specs = build_graph(load_config(config_path('sim.yaml')), 'aloha1', overrides,
                        with_runtime=True)
    log_dir = os.path.join(run.run_dir, 'logs', f'iteration{run.state["iteration"] + 1}')
    run_graph_until_labelled(specs, 'aloha1', 10**6, log_dir, stop_when=stop_when)


def practice_bags(folder: str) -> dict:
    """Count the practice bags: finished episodes and those cut short when a graph stopped."""
    from selfimprove_ros.data.episode_loader import find_bags
    finished = len(finished_bags(folder))
    return {'practice_bags_finished': finished,
            'practice_bags_cut_short': len(find_bags(folder)) - finished}


def result_row(task: str, seed: int, args, method: str, report: dict, demos: int,
               **extra) -> dict:
    """Return one table row: a version's greedy success and the episodes it was made from."""
    practice = extra.pop('practice_episodes', 0)
    return {'task': task, 'seed': seed, 'k': args.k, 'method': method, 'demos': demos,
            'practice_episodes': practice, 'episodes': demos + practice,
            'version': report['version'], 'sim_success': report['sim_success'],
            'detected_success': report['detected_success'],
            'eval_plot': report.get('plot'), **extra}


def run_case(task: str, seed: int, args) -> tuple:
    """Run one (task, seed) from demonstrations to the last practice version; return rows."""
    case = os.path.join(args.out, task, f'seed{seed}')
    # One file per set of sizes: runs with another K share the case folder, not its timings.
    times = PhaseTimes(os.path.join(
        case, f'timings_k{args.k}_{args.sft_steps}steps_{args.eval_episodes}ep.json'))
    first, second = times.run('collect', collect_demos, case, task, seed, args)
    bc_k = times.run('sft_k', train_bc, [first], case, seed, args)
    bc_2k = times.run('sft_2k', train_bc, [first, second], case, seed, args)
    rows = []
    for method, model_dir, demos in (('bc_k', bc_k, args.k), ('bc_2k', bc_2k, 2 * args.k)):
        report = times.run(f'eval_{method}', evaluation, model_dir, model_dir, case, seed, task,
                           args)
        rows.append(result_row(task, seed, args, method, report, demos,
                               sft=sft_summary(model_dir)))
    run = times.run('practice', practise, bc_k, case, seed, task, args)
    versions = [entry for entry in run.state['versions'] if entry['iteration'] > 0]
    used = 0
    for entry in versions:
        used += entry['episodes']
        report = times.run(f'eval_it{entry["iteration"]}', evaluation, entry['model_dir'], bc_k,
                           case, seed, task, args)
        rows.append(result_row(task, seed, args, 'k_si', report, args.k, practice_episodes=used,
                               iteration=entry['iteration'], final=entry is versions[-1],
                               train_metrics=entry.get('metrics', {})))
    info = {'task': task, 'seed': seed, 'noise_std': noise_std(task, args),
            'demo_outcomes': {'first_k': demo_outcomes([first]),
                              'all_2k': demo_outcomes([first, second])},
            'practice_budget': practice_budget(args),
            **practice_bags(os.path.join(run.run_dir, 'practice')),
            'practice_outcomes': run.history.to_dict(), 'timings_s': times.times}
    return rows, info


def pooled(rows) -> list:
    """Pool each (task, method) over seeds: summed successes and trials, one Wilson interval."""
    from selfimprove_ros.training.episode_report import rate
    groups = {}
    for row in rows:
        if row['method'] != 'k_si' or row.get('final'):
            groups.setdefault((row['task'], row['method']), []).append(row)
    result = []
    for (task, method), members in groups.items():
        result.append({
            'task': task, 'seed': 'all', 'k': members[0]['k'], 'method': method,
            'seeds': [m['seed'] for m in members], 'demos': members[0]['demos'],
            'practice_episodes': sum(m['practice_episodes'] for m in members) / len(members),
            'episodes': sum(m['episodes'] for m in members) / len(members), 'final': True,
            **{key: rate(sum(m[key]['successes'] for m in members),
                         sum(m[key]['trials'] for m in members))
               for key in ('sim_success', 'detected_success')}})
    return result


def label(row: dict) -> str:
    """Return a row's method as the table shows it."""
    if row['method'] == 'k_si':
        final = ' final' if row.get('final') and row['seed'] != 'all' else ''
        iteration = f' it{row["iteration"]}' if 'iteration' in row else ''
        return f'{row["k"]} + SI{iteration}{final}'
    return f'BC {row["demos"]}'


def print_table(rows):
    """Print task, K, seed, method, simulator and detected success, episodes used."""
    print(f'\n{"task":14s} {"K":>3s} {"seed":>4s} {"method":16s} {"success (sim, greedy)":28s} '
          f'{"detected success":28s} {"episodes used":>14s}')
    for row in rows:
        episodes = f'{row["demos"]} + {row["practice_episodes"]:g}' if row['method'] == 'k_si' \
            else f'{row["demos"]}'
        print(f'{row["task"]:14s} {row["k"]:3d} {str(row["seed"]):>4s} {label(row):16s} '
              f'{row["sim_success"]["describe"]:28s} {row["detected_success"]["describe"]:28s} '
              f'{episodes:>14s}')


def machine() -> dict:
    """Return what the numbers were measured on."""
    import torch

    from selfimprove_ros.training.run_export import git_commit
    return {'host': platform.node(), 'cpu_count': os.cpu_count(),
            'load_average': [round(x, 2) for x in os.getloadavg()],
            'python': platform.python_version(), 'torch': torch.__version__,
            'cuda_device': torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            'torch_threads': torch.get_num_threads(), 'ros_distro': os.environ.get('ROS_DISTRO'),
            'ros_domain_id': os.environ.get('ROS_DOMAIN_ID'), 'git_commit': git_commit()}


def save(args, rows, cases, started: float, complete: bool, at_start: dict):
    """Write the result JSON atomically: config, machine, per-seed and pooled rows."""
    from selfimprove_ros.training.improve_run import write_json_atomic
    config = {k: v for k, v in vars(args).items() if k not in ('task', 'results')}
    config['practice_budget'] = practice_budget(args)
    config['noise_std'] = {task: noise_std(task, args) for task in args.tasks}
    config['success_bonus'] = {task: success_bonus(task, args) for task in args.tasks}
    os.makedirs(os.path.dirname(os.path.abspath(args.results)), exist_ok=True)
    write_json_atomic(args.results, {
        'complete': complete, 'wall_s': round(time.monotonic() - started, 1), 'config': config,
        'machine': {**at_start, 'load_average_end': machine()['load_average']},
        'rows': rows, 'pooled': pooled(rows), 'cases': cases})


def main(argv=None):
    """Run every (task, seed), print the table, save JSON after each case."""
    args = parse_args(argv)
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    started, at_start = time.monotonic(), machine()
    rows, cases = [], []
    for task in args.tasks:
        for seed in args.seeds:
            print(f'\n==== {task}, seed {seed}: K={args.k}, practice budget '
                  f'{practice_budget(args)} episodes', flush=True)
            case_rows, info = run_case(task, seed, args)
            rows += case_rows
            cases.append(info)
            save(args, rows, cases, started, False, at_start)
    save(args, rows, cases, started, True, at_start)
    print_table(rows + pooled(rows))
    print(f'\nfinished in {(time.monotonic() - started) / 60:.1f} min; saved {args.results}')


if __name__ == '__main__':
    main()
