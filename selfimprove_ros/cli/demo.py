"""`selfimprove demo`: the whole story in sim, as a newcomer would see it.

1. scripted demonstrations (with injected noise) through the node graph -> episode bags
2. Stage 1: SFT of the two-headed model, value landscape on held-out demonstrations, export
3. baseline: greedy evaluation of the Stage-1 policy
4. the reward model: the Stage-1 model, as the paper does; with `--teach-failure`, Stage 1
   again on the demonstrations plus the baseline's episodes the simulator says failed
   (`dataset.failed_steps_to_go`). At K = 100 with ~120 failures that stopped the detector
   calling failures successes (docs/sample_efficiency.md); at the demo's size (12
   demonstrations, 6 failures) it is no reliable fix (one run: 0/6 false detections, another:
   5-6/6 after one practice iteration), so it is not the default.
5. Stage 2: practice iterations through the running graph (policy, reward scorer, success
   detector, episode manager, recorder), REINFORCE on the on-policy bags, a greedy evaluation
   of every new version
6. a report: tables in the terminal, plots and bags on disk
"""

import json
import os
import time

from selfimprove_ros.cli import collect
from selfimprove_ros.cli.evaluate import evaluate, run_graph_until_labelled
from selfimprove_ros.training.stopping_rule import history_table

HELP = 'run the simulated story: demonstrations, SFT, evaluation, practice, report'

SIZES = {  # default (about 15 min on a 2-core CPU) and --full
    False: {'demos': 12, 'sft_steps': 1200, 'eval_episodes': 6, 'iterations': 3,
            'updates': 8, 'batch': 32},
    True: {'demos': 50, 'sft_steps': 20000, 'eval_episodes': 30, 'iterations': 10,
           'updates': 16, 'batch': 64},
}


def add_arguments(parser):
    """Arguments of `demo`."""
    parser.add_argument('--out', default='runs/demo', help='where everything goes')
    parser.add_argument('--task', default='transfer_cube', choices=('transfer_cube', 'insertion'))
    parser.add_argument('--full', action='store_true',
                        help='the long version (hours on a CPU): more demonstrations, SFT '
                        'steps, evaluation episodes and iterations')
    parser.add_argument('--noise-std', type=float, default=0.01,
                        help='expert noise [rad]: imperfect demonstrations keep BC below 100%%')
    parser.add_argument('--max-ticks', type=int, default=100, help='episode limit [ticks]')
    parser.add_argument('--teach-failure', action='store_true',
                        help='score practice with a reward model trained on the demonstrations '
                        'and the baseline\'s failed episodes, instead of the Stage-1 model (the '
                        'paper)')


STAGES = 6


def stage(number: int, text: str):
    """Print a stage banner."""
    print(f'\n== {number}/{STAGES} {text}', flush=True)


def run(args) -> int:
    """Run the six stages and print the report."""
    from selfimprove_ros.model.model_config import ModelConfig
    size = SIZES[args.full]
    out = os.path.abspath(os.path.join(args.out, args.task))
    started = time.monotonic()
    stage(1, f'{size["demos"]} scripted demonstrations of {args.task} (noise '
             f'{args.noise_std} rad) through the node graph')
    demos = os.path.join(out, 'demonstrations')
    missing = size['demos'] - count_bags(demos)
    if missing > 0:  # a rerun into the same --out continues instead of doubling the data
        collect.run(collect.build_namespace(task=args.task, episodes=missing, out=demos,
                                            noise_std=args.noise_std, cameras=['cam_high'],
                                            seed=size['demos'] - missing))
    stage(2, f'Stage 1: SFT ({size["sft_steps"]} steps), value landscape, export')
    stage1 = train_stage1([demos], out, size['sft_steps'])
    stage(3, f'baseline: {size["eval_episodes"]} greedy episodes of the Stage-1 policy')
    history = [evaluation(stage1, stage1, args, out, size, 'stage1')]
    reward = stage1
    if not args.teach_failure:
        stage(4, 'reward model: the Stage-1 model, trained on demonstrations only (the paper)')
    else:
        stage(4, 'reward model: Stage 1 again, on the demonstrations plus the baseline\'s '
                 'failed episodes')
        reward = train_stage1([demos, os.path.join(out, 'eval', 'stage1', 'bags')], out,
                              size['sft_steps'], name='reward',
                              # Every tick of a failure: "not within the horizon".
                              dataset={'include_failed': True,
                                       'failed_steps_to_go': ModelConfig().steps_to_go_max})
    stage(5, f'Stage 2: {size["iterations"]} practice iterations')
    results, improve_run = practice(stage1, reward, args, out, size)
    history += results
    stage(6, 'report')
    report(history, out, time.monotonic() - started)
    judge(history, out, size['eval_episodes'])
    print('\npractice episodes per version (sampled; detected by the reward model that scored '
          'practice):')
    print(history_table(improve_run.history))
    return 0


def count_bags(directory: str) -> int:
    """Return how many finished bags (with metadata.yaml) `directory` holds."""
    if not os.path.isdir(directory):
        return 0
    return sum(os.path.exists(os.path.join(directory, name, 'metadata.yaml'))
               for name in os.listdir(directory))


def train_stage1(bags: list, out: str, steps: int, name: str = 'stage1',
                 dataset: dict = None) -> str:
    """Train SFT on `bags` and export; return the model directory `out`/models/`name`."""
    from selfimprove_ros.training.run_export import export_run
    from selfimprove_ros.training.sft_config import SftConfig
    from selfimprove_ros.training.sft_trainer import train_sft
    run_dir = os.path.join(out, 'sft' if name == 'stage1' else f'sft_{name}')
    # One torch thread: on a 2-core machine two spinning OpenMP threads against any other
    # busy process (a node graph, a browser) run many times slower than one.
    config = SftConfig(steps=steps, batch_size=32, eval_every=max(100, steps // 6),
                       checkpoint_every=max(100, steps // 6), torch_threads=1)
    summary = train_sft(bags, run_dir, config, {'val_fraction': 0.2, **(dataset or {})})
    landscape = summary.get('value_landscape', {})
    print(f'SFT: BC accuracy {summary.get("val_bc_accuracy", float("nan")):.2f}, steps-to-go '
          f'MAE {summary.get("val_steps_mae", float("nan")):.1f} ticks; value landscape '
          f'Spearman {landscape.get("spearman", float("nan")):.3f} -> {landscape.get("plot")}')
    model_dir = os.path.join(out, 'models', name)
    if not os.path.exists(model_dir):
        export_run(run_dir, model_dir)
    return model_dir


def evaluation(model_dir: str, reward_dir: str, args, out: str, size: dict, name: str) -> dict:
    """Greedy episodes of `model_dir`; return the report."""
    result = evaluate(model_dir, reward_dir, args.task, size['eval_episodes'],
                      os.path.join(out, 'eval', name), seed=1000,
                      max_ticks=args.max_ticks, temperature=0.0)
    return {'name': name, 'model_dir': model_dir, **result}


def practice(stage1: str, reward: str, args, out: str, size: dict):
    """Alternate practising (at temperature 1, recorded, labelled) with REINFORCE iterations.

    Return the greedy evaluation of every new version and the ImproveRun.
    """
    from selfimprove_ros.training.improve_loop import ready_decisions
    from selfimprove_ros.training.improve_run import ImproveRun
    from selfimprove_ros.training.reinforce_config import ReinforceConfig
    config = ReinforceConfig(updates_per_iteration=size['updates'], batch_size=size['batch'],
                             torch_threads=1)
    run = ImproveRun(os.path.join(out, 'improve'), config, stage1)
    bags = os.path.join(out, 'practice')
    results = []
    for iteration in range(1, size['iterations'] + 1):
        model_dir = next(e['model_dir'] for e in run.state['versions']
                         if e['version'] == run.version)
        print(f'-- iteration {iteration}: practising with {run.version} until '
              f'{config.samples_per_iteration} decisions are labelled', flush=True)
        ready = practise_until(run, model_dir, reward, bags, args, out, iteration,
                               lambda: ready_decisions(run, [bags]))
        run.record_outcomes(ready[0])
        new_dir = run.iterate(*ready)
        results.append(evaluation(new_dir, reward, args, out, size, os.path.basename(new_dir)))
    return results, run


def practise_until(run, model_dir, reward_dir, bags, args, out, iteration, ready):
    """Run the practice graph until `ready()` returns something; return it."""
    from selfimprove_ros.graph.description import build_graph, config_path, load_config
    overrides = {
        'launch': {'task': args.task, 'cameras': ['cam_high'], 'lockstep': True,
                   'model_dir': model_dir, 'reward_model_dir': reward_dir},
        'robot_node': {'seed': 100 * iteration},
        'recorder_node': {'bag_dir': bags},
        'policy_node': {'temperature': 1.0, 'seed': iteration},
        'episode_manager_node': {'max_ticks': args.max_ticks, 'wait_for_policy': True},
    }
    specs = build_graph(load_config(config_path('sim.yaml')), 'aloha1', overrides,
                        with_runtime=True)
    result = []

    def enough(done, item):
        result[:] = [ready()]
        return result[0] is not None
    run_graph_until_labelled(specs, 'aloha1', 10**6, os.path.join(out, 'logs', 'practice'),
                             stop_when=enough)
    return result[0]


def judge(history: list, out: str, min_episodes: int):
    """Print the greedy evaluations as the stopping rule sees them; save the PNG and history.

    The demo trains every iteration to show practice; the trainer node would have rolled back or
    stopped where the rule's last line says so (training/stopping_rule.py explains the rule).
    """
    from selfimprove_ros.training.stopping_rule import decide, plot_history, StoppingConfig
    from selfimprove_ros.training.version_history import VersionHistory
    versions = VersionHistory()
    parent = None
    for row in history:
        versions.add_version(row['version'], parent)
        for episode in row['episodes']:
            versions.add_episode(row['version'], episode['outcome'] == 'success',
                                 episode['sim_success'])
        parent = row['version']
    config = StoppingConfig(signal='sim', min_episodes=min_episodes)
    print('\nsuccess per version, greedy evaluation episodes:')
    print(history_table(versions, config=config))
    plot = plot_history(versions, os.path.join(out, 'version_history.png'), config)
    versions.save(os.path.join(out, 'version_history.json'))
    print(f'stopping rule on the last version: {decide(versions, parent, config).reason}')
    print(f'plot {plot}')


def report(history: list, out: str, elapsed_s: float):
    """Print the table and where everything is; save report.json."""
    print(f'\n{"version":34s} {"sim success (greedy)":24s} {"detected":24s} '
          f'{"closest d":>9s} {"final d":>8s}')
    for row in history:
        print(f'{row["version"]:34s} {row["sim_success"]["describe"]:24s} '
              f'{row["detected_success"]["describe"]:24s} '
              f'{row["mean_closest_steps_to_go"]:9.1f} {row["mean_final_steps_to_go"]:8.1f}')
    print('detected, closest d, final d: by the reward model of that evaluation (the '
          'baseline: Stage 1\'s; practice versions: the one that scored practice); closest / '
          'final d: mean over episodes of the smallest and the last steps-to-go [ticks], lower '
          'is closer to done')
    path = os.path.join(out, 'report.json')
    with open(path, 'w') as handle:
        json.dump({'elapsed_s': elapsed_s, 'history': history}, handle, indent=1)
    print(f'\nfinished in {elapsed_s / 60:.1f} min. Report {path}\n'
          f'demonstrations {os.path.join(out, "demonstrations")}, SFT run and value landscape '
          f'{os.path.join(out, "sft")}, models {os.path.join(out, "models")} and '
          f'{os.path.join(out, "improve", "models")}, practice bags '
          f'{os.path.join(out, "practice")}, evaluation bags and plots '
          f'{os.path.join(out, "eval")}')
