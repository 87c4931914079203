"""`selfimprove demo`: a robot getting better in sim, as a newcomer would see it.

By default the demo starts from the shipped Stage-1 model (models/<task>/, made by
`make models`, provenance in its manifest):
1. the Stage-1 model: where it came from, and whether it locates the object
2. baseline: greedy evaluation of the Stage-1 policy on 100 unseen scenes, on sim stations
   (fleet/: the robot's own cores - policy controller, reward scorer, success detector, episode
   rules, recorder - one station per core, without ROS transport; they score as the node graph
   does, docs/results.md)
3. the reward model: the shipped one, trained on the demonstrations and on the failures of
   the Stage-1 policy's own rollouts (cli/models.py says why)
4. Stage 2: practice on sim stations at temperature 1, one learner on the on-policy bags:
   success-filtered behaviour cloning by default (the objective that paid, training/
   filtered_bc.py), REINFORCE with --objective reinforce; after each round a greedy evaluation
   of the live version on the same scenes
5. the last version through the node graph, as on a robot (a few episodes)
6. a report: simulator and detector success per version with intervals, the stopping rule's
   verdict, a one-sided test of the last version against the baseline, plots and bags on disk
`--from-scratch` first builds Stage 1 as `make models` does: scripted demonstrations (with
injected noise and their clean labels) through the node graph, SFT, rollouts, SFT again, and
the whole-episode rollouts that choose the detector's rule for that reward model.
"""

import json
import os
import time

from selfimprove_ros.cli.evaluate import evaluate
from selfimprove_ros.cli.models import RECIPES
from selfimprove_ros.sim.aloha_sim import SUCCESS_BONUS
from selfimprove_ros.training.stopping_rule import history_table

HELP = 'run the simulated story: Stage-1 model, baseline, practice, a better robot, report'

SIZES = {  # default (at most about 15 min on a 2-core CPU) and --full
    False: {'rollouts': 100, 'audit_rollouts': 100, 'eval_episodes': 100,
            'graph_episodes': 10, 'rounds': 1, 'practice_episodes': 1200},
    True: {'rollouts': 100, 'audit_rollouts': 100, 'eval_episodes': 100,
           'graph_episodes': 100, 'rounds': 2, 'practice_episodes': 2500},
}
EVAL_SEED = 80_000  # unseen scenes: demonstrations use 0.., practice 100000..


def add_arguments(parser):
    """Arguments of `demo`."""
    parser.add_argument('--out', default='runs/demo', help='where everything goes')
    parser.add_argument('--task', default='transfer_cube', choices=tuple(SUCCESS_BONUS),
                        help='the task of the shipped models (models/<task>/)')
    parser.add_argument('--models', default='models',
                        help='directory of the shipped Stage-1 models (make models)')
    parser.add_argument('--from-scratch', action='store_true',
                        help='build Stage 1 first, as make models does (about 40 more '
                        'minutes), instead of starting from the shipped model')
    parser.add_argument('--full', action='store_true',
                        help='the long version: 2,500 practice episodes in 2 rounds, the last '
                        'version 100 episodes through the node graph')
    parser.add_argument('--objective', choices=('filtered_bc', 'reinforce'),
                        default='filtered_bc',
                        help="the learner's: fit the successes (default, the one that "
                        "paid) or the paper's REINFORCE (selfimprove practice --objective)")
    parser.add_argument('--max-ticks', type=int, default=100, help='episode limit [ticks]')
    parser.add_argument('--stations', type=int, default=os.cpu_count() or 1,
                        help='sim stations that practise (default: one per core)')
    parser.add_argument('--set', dest='overrides', nargs='*', default=[], metavar='KEY=VALUE',
                        help='overrides on the learner\'s settings, e.g. lr=3e-5 '
                        '(see training/reinforce_config.py)')
    parser.add_argument('--end-on-sim-success', action='store_true',
                        help='diagnostic: the simulator\'s success also ends practice episodes, '
                        'as if the detector found every success (sim only; separates the '
                        'detector\'s recall from the rest of practice)')


class Stages:
    """Numbered stage banners: '== 2/5 baseline ...'."""

    def __init__(self, total: int):
        self.total, self.number = total, 0

    def __call__(self, text: str):
        """Print the next stage's banner."""
        self.number += 1
        print(f'\n== {self.number}/{self.total} {text}', flush=True)


def run(args) -> int:
    """Run the stages and print the report."""
    size = SIZES[args.full]
    out = os.path.abspath(os.path.join(args.out, args.task))
    set_aside_previous_story(out)
    started = time.monotonic()
    stage = Stages(6 if args.from_scratch else 5)
    if args.from_scratch:
        stage(f'Stage 1 from scratch, as make models: {RECIPES[args.task]["demos"]} scripted '
              f'demonstrations, SFT, {size["rollouts"]} rollouts whose failures teach the '
              f'reward model, SFT again, {size["audit_rollouts"]} rollouts that choose the '
              'success rule')
        stage1, checkpoint = build_from_scratch(args.task, out, size)
    else:
        stage1, checkpoint = shipped_model(args)
    stage(f'the Stage-1 model {stage1}')
    describe_model(stage1)
    stage(f'baseline: {size["eval_episodes"]} greedy episodes of the Stage-1 policy on unseen '
          f'scenes, on {args.stations} sim stations')
    history = [evaluation(stage1, stage1, args, out, size, 'stage1')]
    # The learner trains while the stations wait for its version: it may use their cores.
    config = practice_config(size, args.overrides, min(args.stations, os.cpu_count() or 1),
                             args.objective, args.task)
    stage(f'Stage 2: {size["practice_episodes"]} practice episodes on {args.stations} sim '
          f'stations (temperature 1, chunk-quantile sampling), scored by the Stage-1 reward '
          f'model; {describe_learning(config)}; after each of {size["rounds"]} round(s) a '
          'greedy evaluation of the live version on the same scenes')
    results, improve_run = practice(stage1, checkpoint, stage1, config, args, out, size)
    history += results
    stage(f'the last version through the node graph, as on a robot: {size["graph_episodes"]} '
          'greedy episodes')
    graph_check(history[-1], stage1, args, out, size)
    stage('report')
    report(history, out, time.monotonic() - started)
    judge(history, out, size['eval_episodes'])
    print('\npractice episodes per version (sampled; detected by the reward model that scored '
          'practice):')
    print(history_table(improve_run.history))
    return 0


STORY = ('eval', 'improve', 'practice', 'logs', 'report.json', 'version_history.json',
         'version_history.png')  # what one run of the story writes into its folder


def set_aside_previous_story(out: str):
    """Move an earlier run's story into out/previous/<time>/ so this run starts afresh.

    Its practice run would otherwise resume from the old versions. Stage 1 built by
    --from-scratch stays where it is, so that 40-minute build is not repeated.
    """
    found = [name for name in STORY if os.path.exists(os.path.join(out, name))]
    if not found:
        return
    aside = os.path.join(out, 'previous', time.strftime('%Y%m%dT%H%M%S'))
    os.makedirs(aside)
    for name in found:
        os.replace(os.path.join(out, name), os.path.join(aside, name))
    print(f'the previous run of the demo was moved to {aside}', flush=True)


def build_from_scratch(task: str, out: str, size: dict):
    """Build Stage 1 in `out` as `make models` does; return (model dir, policy checkpoint)."""
    from selfimprove_ros.cli.models import build_stage1, choose_success_rule
    from selfimprove_ros.training.checkpoint import resolve_checkpoint
    from selfimprove_ros.training.run_export import export_run
    recipe = RECIPES[task]
    run_dir, provenance = build_stage1(task, out, recipe['demos'], size['rollouts'],
                                       recipe['sft'])
    model_dir = os.path.join(out, 'models', 'stage1')
    if not os.path.exists(model_dir):
        rule = choose_success_rule(run_dir, task, os.path.join(out, 'audit'),
                                   size['audit_rollouts'])
        export_run(run_dir, model_dir, version=f'{task}-stage1', extra_provenance=provenance,
                   success_rule=rule)
    return model_dir, resolve_checkpoint(run_dir, 'last')


def shipped_model(args):
    """Return (model dir, policy checkpoint) of the shipped Stage-1 model; say how to get it."""
    model_dir = os.path.abspath(os.path.join(args.models, args.task))
    checkpoint = os.path.join(model_dir, 'policy.pt')
    for path in (os.path.join(model_dir, 'manifest.json'), checkpoint):
        if not os.path.exists(path):
            raise ValueError(f'{path} is missing: the demo starts from the shipped Stage-1 '
                             'model; run `make models` to rebuild it, or add --from-scratch')
    return model_dir, checkpoint


def describe_model(model_dir: str):
    """Print a model's version, its data and its localisation check."""
    from selfimprove_ros.model.manifest import read_manifest
    manifest = read_manifest(model_dir)
    provenance = manifest.get('provenance', {})
    demos = provenance.get('demonstrations')
    print(f'version {manifest["version"]}, encoder {manifest["model_config"]["encoder"]}')
    if demos:
        first, last = demos['simulator_seeds']
        print(f'data: {last - first + 1} scripted demonstrations of {demos["task"]} (simulator '
              f'seeds {first}..{last}, noise {demos["noise_std_rad"]} rad, clean labels)')
        rollouts = provenance.get('rollouts')
        if rollouts:
            print(f'  and {rollouts["failures_used"]} failed rollouts of the policy trained on '
                  'them alone, which teach the reward model what failure looks like')
        used = demos['episodes_used']
        print(f'  {used["train"]} episodes trained, {used["val"]} held out; rebuilt by: '
              f'{provenance.get("command", "make models")}')
    check = provenance.get('localisation')
    if check and check.get('known'):
        print(f'locates the object on held-out first frames to {check["error_cm"]:.2f} cm per '
              f'axis (a blind guess: {check["blind_error_cm"]:.2f} cm)')
    print(success_rule_line(manifest))


def success_rule_line(manifest: dict) -> str:
    """Return the success rule the detector will use with this reward model, and its audit."""
    from selfimprove_ros.core.success_detection import audited_rule, SuccessConfig
    rule = audited_rule(manifest)
    config = rule or SuccessConfig()
    text = (f'success detector: d <= {config.threshold_steps:g} ticks for {config.consecutive} '
            f'ticks, approached over {config.recovery_ticks}')
    if rule is None:
        return text + ' (defaults: this reward model records no audited rule)'
    audit = manifest['success_rule'].get('audit', {})
    chosen = next((row for row in audit.get('candidates', [])
                   if row['recovery_ticks'] == config.recovery_ticks), None)
    if chosen is None:
        return text + ' (audited)'
    fp, recall = chosen['false_positive'], chosen['recall']
    return (text + f' (audited on {fp["of"] + recall["of"]} whole rollouts: false positives '
            f'{fp["count"]}/{fp["of"]}, recall {recall["count"]}/{recall["of"]})')


def describe_learning(config) -> str:
    """Return what the learner does with practice, in one clause."""
    if config.objective == 'filtered_bc':
        judges = ('the detector, or the simulator where the task earns a success bonus,'
                  if config.success_bonus else 'the detector')
        return (f'every {config.samples_per_iteration} decisions the learner fits the chunks of '
                f'the episodes {judges} called successes ({config.updates_per_iteration} '
                f'steps, lr {config.lr:g}, {config.trainable.replace("_", " ")})')
    return (f'REINFORCE on the {config.trainable.replace("_", " ")} with the {config.baseline} '
            f'baseline, lr {config.lr:g}, {config.samples_per_iteration} decisions per iteration')


def evaluation(model_dir: str, reward_dir: str, args, out: str, size: dict, name: str) -> dict:
    """Greedy episodes of `model_dir` on sim stations, on the demo's unseen scenes."""
    from selfimprove_ros.cli.evaluate import evaluate_on_stations
    result = evaluate_on_stations(model_dir, reward_dir, args.task, size['eval_episodes'],
                                  os.path.join(out, 'eval', name), seed=EVAL_SEED,
                                  max_ticks=args.max_ticks, temperature=0.0,
                                  stations=args.stations)
    return {'name': name, 'model_dir': model_dir, **result}


def graph_check(last: dict, reward_dir: str, args, out: str, size: dict):
    """Run the last version's first scenes through the node graph; print both verdicts."""
    result = evaluate(last['model_dir'], reward_dir, args.task, size['graph_episodes'],
                      os.path.join(out, 'eval', f'{last["name"]}_graph'), seed=EVAL_SEED,
                      max_ticks=args.max_ticks, temperature=0.0)
    print(f'{last["version"]} through the node graph: simulator '
          f'{result["sim_success"]["describe"]}, detected '
          f'{result["detected_success"]["describe"]} (on sim stations: simulator '
          f'{last["sim_success"]["describe"]})')


def practice(stage1: str, checkpoint: str, reward: str, config, args, out: str, size: dict):
    """Practise on sim stations in rounds; after each, evaluate the live version on stations.

    The stations (fleet/) run the robot's own cores at temperature 1 and one learner trains
    on their labelled bags (with the trainer's stopping rule); each round resumes the same run
    with a larger budget. Return the greedy evaluation of every new live version and the
    ImproveRun.
    """
    from selfimprove_ros.cli.evaluate import sim_runtime_specs
    from selfimprove_ros.cli.practice import practise_on_fleet
    from selfimprove_ros.model.manifest import read_manifest
    from selfimprove_ros.training.improve_run import ImproveRun
    manifest = read_manifest(stage1)
    specs = sim_runtime_specs(args.task, manifest['codec']['cameras'], stage1, reward,
                              'aloha1', args.max_ticks, 1.0, {
                                  'success_detector_node': {
                                      'use_sim_success': bool(args.end_on_sim_success)},
                                  'policy_node': {'sampler': config.sampler}})
    results, evaluated = [], {manifest['version']}
    for number in range(1, size['rounds'] + 1):
        budget = number * size['practice_episodes'] // size['rounds']
        print(f'-- round {number}: practising on {args.stations} stations until '
              f'{budget} practice episodes', flush=True)
        summary = practise_on_fleet(stage1, reward, out, specs, config, budget, args.stations,
                                    checkpoint=checkpoint)
        live = summary['live_version']
        if live in evaluated:
            print(f'{live} is still live: no new version to evaluate this round')
            continue
        evaluated.add(live)
        model_dir = [entry['model_dir'] for entry in summary['versions_history']
                     if entry['version'] == live][-1]
        results.append(evaluation(model_dir, reward, args, out, size, live))
    run = ImproveRun(os.path.join(out, 'improve'), config, stage1, checkpoint=checkpoint,
                     log=lambda *_: None)
    return results, run


def practice_config(size: dict, overrides=(), threads: int = 1, objective: str = 'filtered_bc',
                    task: str = 'transfer_cube'):
    """Return the demo's learner settings (cli/practice.py's) with `overrides` applied.

    Practice samples a chunk's ticks at one quantile per joint (smooth motions, not jitter).
    """
    from selfimprove_ros.cli.practice import practice_config as settings
    return settings(overrides=['sampler=chunk_quantile', *overrides], threads=threads,
                    objective=objective, task=task)


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
    print(gain_verdict(history[0], history[-1]))
    print(f'plot {plot}')


def gain_verdict(baseline: dict, last: dict) -> str:
    """Return one plain line: whether the last version beat the baseline in sim, significantly."""
    from selfimprove_ros.training.episode_report import rate
    from selfimprove_ros.training.stopping_rule import drop_p_value
    before, after = (rate(sum(e['sim_success'] is True for e in row['episodes']),
                          sum(e['sim_success'] is not None for e in row['episodes']))
                     for row in (baseline, last))
    if not before['trials'] or not after['trials']:
        return 'no simulator verdicts to compare'
    # P(the last version does at least this much better than the baseline by chance alone).
    p = drop_p_value(after['successes'], after['trials'], before['successes'], before['trials'])
    change = (f'{last["version"]} against the baseline, simulator success: '
              f'{before["describe"]} -> {after["describe"]}; one-sided Fisher exact p = {p:.3f}')
    if after['rate'] <= before['rate']:
        return change + ': NO gain in this run'
    if p < 0.05:
        return change + ': a significant gain'
    return (change + ': higher, but NOT significant at 0.05 with this many episodes (more '
            'evaluation episodes: --full)')


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
