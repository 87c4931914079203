"""`selfimprove models`: rebuild the shipped Stage-1 models (models/<task>/) from scratch.

1. scripted demonstrations through the node graph (noise DEMO_NOISE_STD, the clean labels
   recorded beside, simulator seeds 0..N-1)
2. SFT on them with config/sft.yaml (the recipe that makes the policy look)
3. practice-like rollouts of that policy (temperature 1, seeds 20000..) through the runtime
   graph; the simulator marks the failures, among them the episodes the detector wrongly ended
4. SFT again on the demonstrations plus those failures, the last ticks of each failure
   labelled "not within the horizon" (`dataset.failed_steps_to_go`, `failed_label_ticks`;
   earlier ticks look like a success's and stay unlabelled): a reward model trained on
   demonstrations alone calls the arms' hand-over pose a success whether or not the cube is in
   the gripper (docs/notebook/2026-11-30.md). The failures teach only steps-to-go; behaviour
   cloning still sees the demonstrations alone.
5. the detector's rule for this reward model: whole-episode rollouts of the final policy (half
   greedy, half temperature 1, seeds 30000..), no detection ending them; every candidate
   `recovery_ticks` replayed over them; the best recall with at most 5 % false positives
   (`training/rule_choice.py`). A look-back that keeps one reward model honest silences another
6. export of the second run, with the data's seeds and the settings in the manifest's
   provenance, the audited rule as the manifest's `success_rule` (success_detector_node uses
   it), and policy.pt (weights, config and codec, no optimizer) that Stage 2 trains from

Every phase resumes from `--work`. `make models` runs it; `make demo` starts from what it writes,
and `make demo ARGS=--from-scratch` runs the same steps first.
"""

import os

from selfimprove_ros.cli import collect

HELP = 'rebuild the shipped Stage-1 policy and reward model (models/<task>/) from scratch'
# [rad] per task: imperfect demonstrations, with their clean labels recorded, the most noise
# that keeps the expert succeeding in >= 95 % of scenes. Insertion's fit is millimetres: at
# 0.01 rad the expert inserted 63/100 (0.005: 92, 0.003: 97, 0: 100; seeds 0..99,
# benchmarks/expert_noise.py).
DEMO_NOISE_STD = {'transfer_cube': 0.01, 'insertion': 0.003}
# Per task: the demonstrations and the SFT settings over config/sft.yaml of the shipped model.
# Insertion needs millimetres where transfer_cube needs centimetres: with 3,000 steps it went
# 12 -> 24 -> 31/100 greedy with 100 -> 200 -> 400 demonstrations; 400 with 15,000 steps (34
# and 41 min per SFT run on one core) shipped at 62/100 (benchmarks/results/
# insertion_stage1.json): the steps must grow with the data.
RECIPES = {'transfer_cube': {'demos': 100, 'sft': []},
           'insertion': {'demos': 400, 'sft': ['sft.steps=15000']}}
ROLLOUT_SEED = 20_000  # first simulator seed of the rollouts (demonstrations use 0..)
AUDIT_SEED = 30_000  # first simulator seed of the rollouts that choose the detector's rule
# Demonstrations hold the final pose this long after success, labelled d = 0: a policy that
# imitates them stays at the goal instead of wandering off, and the reward model learns that a
# held goal is still the goal, so the detector fires (with 5 ticks it found 57 % of successes).
POST_SUCCESS_TICKS = 20
DEMO_EPISODE_S = 10.0  # [s]: about 6 s to success, then the hold


def add_arguments(parser):
    """Arguments of `models`."""
    parser.add_argument('--task', default='transfer_cube', choices=tuple(DEMO_NOISE_STD),
                        help='task of the shipped models')
    parser.add_argument('--out', default='models', help='the models/ directory to write into')
    parser.add_argument('--work', default='runs/models',
                        help='demonstrations, rollouts and SFT runs (kept: a rerun resumes)')
    parser.add_argument('--demos', type=int, default=None,
                        help="demonstrations (simulator seeds 0..N-1; default: the task's "
                        'recipe, RECIPES)')
    parser.add_argument('--rollouts', type=int, default=100,
                        help='rollouts whose failures teach the reward model; 0 = the paper\'s '
                        'reward model, trained on demonstrations alone')
    parser.add_argument('--audit-rollouts', type=int, default=100,
                        help='whole-episode rollouts of the final policy (half greedy, half at '
                        'temperature 1) that choose the success rule; 0 = record none')
    parser.add_argument('--post-success-ticks', type=int, default=POST_SUCCESS_TICKS,
                        help='ticks each demonstration holds its final pose after success')
    parser.add_argument('--set', dest='overrides', nargs='*', default=[], metavar='KEY=VALUE',
                        help="SFT overrides on config/sft.yaml after the task's recipe "
                        '(RECIPES), e.g. sft.steps=3000')


def run(args) -> int:
    """Build the models in --work and publish them as --out/<task>."""
    from selfimprove_ros.training.run_export import export_run
    model_dir = os.path.join(args.out, args.task)
    if os.path.exists(model_dir):
        raise ValueError(f'{model_dir} exists; move it away to rebuild the shipped models')
    if args.audit_rollouts == 1 or args.audit_rollouts < 0:
        raise ValueError(f'--audit-rollouts must be 0 or >= 2 (half greedy, half sampled), got '
                         f'{args.audit_rollouts}')
    recipe = RECIPES[args.task]
    demos = recipe['demos'] if args.demos is None else args.demos
    run_dir, provenance = build_stage1(args.task, args.work, demos, args.rollouts,
                                       [*recipe['sft'], *args.overrides], args.post_success_ticks)
    provenance['command'] += f' --audit-rollouts {args.audit_rollouts}'
    rule = None
    if args.audit_rollouts:
        rule = choose_success_rule(run_dir, args.task, os.path.join(args.work, 'audit'),
                                   args.audit_rollouts)
    export_run(run_dir, model_dir, version=f'{args.task}-stage1', extra_provenance=provenance,
               success_rule=rule)
    ship_checkpoint(run_dir, os.path.join(model_dir, 'policy.pt'))
    print(f'models in {os.path.abspath(model_dir)}: policy.onnx, reward.onnx, manifest.json, '
          'policy.pt')
    return 0


def build_stage1(task: str, work: str, demos: int, rollouts: int, overrides=(),
                 post_success_ticks: int = POST_SUCCESS_TICKS):
    """Run steps 1-4 in `work`; return (the final SFT run dir, provenance for its export)."""
    from selfimprove_ros.graph.description import config_path
    from selfimprove_ros.training.sft_config import load_settings, SftConfig
    if demos < 2:
        raise ValueError(f'--demos must be >= 2 (one validates), got {demos}')
    if rollouts < 0:
        raise ValueError(f'--rollouts must be >= 0, got {rollouts}')
    if post_success_ticks < 0:
        raise ValueError(f'--post-success-ticks must be >= 0, got {post_success_ticks}')
    settings = load_settings(config_path('sft.yaml'), overrides)
    # One torch thread: the node graph of the rollouts needs the other core.
    config = SftConfig.from_dict({**settings.get('sft', {}), 'torch_threads': 1})
    dataset = settings.get('dataset', {})
    bags = collect_demonstrations(task, os.path.join(work, 'demonstrations'), demos,
                                  list(config.model.cameras), post_success_ticks)
    provenance = {
        'command': f'selfimprove models --task {task} --demos {demos} --rollouts {rollouts} '
                   f'--post-success-ticks {post_success_ticks}'
                   + (' --set ' + ' '.join(overrides) if overrides else ''),
        'demonstrations': {'task': task, 'simulator_seeds': [0, demos - 1],
                           'noise_std_rad': DEMO_NOISE_STD[task], 'expert': 'sim/expert.py',
                           'post_success_ticks': post_success_ticks}}
    summary, run_dir = train(bags, os.path.join(work, 'sft_demos'), config, dataset)
    if rollouts:
        failures = failed_rollouts(run_dir, task, os.path.join(work, 'rollouts'), rollouts)
        provenance['rollouts'] = {'simulator_seeds': [ROLLOUT_SEED, ROLLOUT_SEED + rollouts - 1],
                                  'temperature': 1.0, 'failures_used': len(failures)}
        summary, run_dir = train([bags, *failures], os.path.join(work, 'sft'), config,
                                 {**dataset, 'include_failed': True,
                                  'failed_steps_to_go': config.model.steps_to_go_max})
    provenance['demonstrations']['episodes_used'] = summary['episodes']
    provenance['localisation'] = summary.get('localisation')
    return run_dir, provenance


def collect_demonstrations(task: str, folder: str, count: int, cameras,
                           post_success_ticks: int = POST_SUCCESS_TICKS) -> str:
    """Record the demonstrations not recorded yet (seeds continue where a run stopped)."""
    folder = os.path.abspath(folder)
    done = count_bags(folder)
    if done < count:
        collect.collect(folder, task=task, episodes=count - done, noise_std=DEMO_NOISE_STD[task],
                        cameras=cameras, seed=done, post_success_ticks=post_success_ticks,
                        episode_s=DEMO_EPISODE_S)
    return folder


def count_bags(directory: str) -> int:
    """Return how many finished bags (with metadata.yaml) `directory` holds."""
    if not os.path.isdir(directory):
        return 0
    return sum(os.path.exists(os.path.join(directory, name, 'metadata.yaml'))
               for name in os.listdir(directory))


def train(bags, run_dir: str, config, dataset: dict):
    """Run (or resume) SFT; return (its summary, run_dir)."""
    from selfimprove_ros.training.sft_trainer import train_sft
    return train_sft(bags, run_dir, config, dataset), run_dir


def exported(run_dir: str, model_dir: str, version: str) -> str:
    """Export `run_dir` to `model_dir` unless an earlier run did; return model_dir."""
    from selfimprove_ros.training.run_export import export_run
    if not os.path.exists(model_dir):
        export_run(run_dir, model_dir, version=version)
    return model_dir


def rollouts(model_dir: str, task: str, count: int, out: str, seed: int, temperature: float,
             learned_detection: bool = True) -> dict:
    """Run `count` episodes of `model_dir` into `out` once; return their report (resumed)."""
    import json

    from selfimprove_ros.cli.evaluate import evaluate
    report_path = os.path.join(out, 'eval.json')
    if os.path.exists(report_path):
        with open(report_path) as handle:
            return json.load(handle)
    return evaluate(model_dir, model_dir, task, count, out, seed=seed, temperature=temperature,
                    learned_detection=learned_detection)


def failed_rollouts(run_dir: str, task: str, folder: str, count: int) -> list:
    """Roll the run's policy out `count` times at temperature 1; return the failed bags."""
    model_dir = exported(run_dir, os.path.join(folder, 'model'), 'stage1-demonstrations-only')
    report = rollouts(model_dir, task, count, folder, ROLLOUT_SEED, temperature=1.0)
    return [episode['bag'] for episode in report['episodes'] if episode['sim_success'] is False]


def choose_success_rule(run_dir: str, task: str, folder: str, count: int) -> dict:
    """Roll the run's final policy out whole, audit every candidate rule; return the chosen one.

    Half the episodes are greedy (evaluation), half at temperature 1 (practice): the rule must
    hold for both. No detection ends them, so every candidate is judged on whole episodes.
    """
    from selfimprove_ros.cli.audit import score_bags
    from selfimprove_ros.training.rule_choice import choose_rule
    model_dir = exported(run_dir, os.path.join(folder, 'model'), 'stage1-unaudited')
    halves = (('greedy', 0.0, count // 2), ('sampled', 1.0, count - count // 2))
    seed, bags = AUDIT_SEED, []
    for name, temperature, episodes in halves:
        report = rollouts(model_dir, task, episodes, os.path.join(folder, name), seed,
                          temperature, learned_detection=False)
        # The report's episodes, not the folder: a graph stopping may leave one cut short.
        bags += [episode['bag'] for episode in report['episodes']]
        seed += episodes
    _, scored, _ = score_bags(model_dir, bags)
    choice = choose_rule(scored)
    print('success rule, audited on the final policy\'s rollouts:\n' + choice.describe())
    return choice.manifest_entry({'simulator_seeds': [AUDIT_SEED, seed - 1],
                                  'greedy': count // 2, 'temperature_1': count - count // 2})


def ship_checkpoint(run_dir: str, path: str):
    """Write the policy's weights, config and codec (no optimizer): what Stage 2 starts from."""
    from selfimprove_ros.training import checkpoint as ckpt
    state = ckpt.load_checkpoint(ckpt.resolve_checkpoint(run_dir, 'last'))
    keep = ('model', 'config', 'codec', 'step', 'dataset_config')
    ckpt.save_checkpoint(path, {key: state[key] for key in keep if key in state})
