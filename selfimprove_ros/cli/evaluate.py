"""`selfimprove eval`: greedy episodes of a model in sim, success rate and steps-to-go curve."""

import json
import os

from selfimprove_ros.runtime.token_sampling import SAMPLERS
from selfimprove_ros.sim.aloha_sim import TASKS

HELP = 'evaluate a policy in sim: success rate with a 95 percent interval, mean steps-to-go curve'


def add_arguments(parser):
    """Arguments of `eval`."""
    parser.add_argument('--model', required=True, help='model directory with policy.onnx')
    parser.add_argument('--reward-model', default='',
                        help='frozen Stage-1 model directory with reward.onnx (default: --model)')
    parser.add_argument('--task', choices=TASKS, default='transfer_cube')
    parser.add_argument('--episodes', type=int, default=10)
    parser.add_argument('--out', default='runs/eval', help='directory for bags and the report')
    parser.add_argument('--seed', type=int, default=1000,
                        help='seed of the first episode (demonstrations use 0..)')
    parser.add_argument('--max-ticks', type=int, default=100, help='episode limit [ticks]')
    parser.add_argument('--temperature', type=float, default=0.0,
                        help='0 = greedy (default), 1 = the practising policy')
    parser.add_argument('--sampler', choices=SAMPLERS, default='independent',
                        help="how a chunk's tokens are drawn at temperature > 0 (policy_node's "
                        'sampler)')
    parser.add_argument('--actions-per-chunk', type=int, default=0,
                        help='execute only this many actions of each chunk before querying '
                        'again (a receding horizon); 0 = the whole chunk, as in practice')
    parser.add_argument('--robot', default='aloha1')
    parser.add_argument('--stations', type=int, default=0,
                        help='run the episodes on this many sim stations (the robot\'s cores in '
                        'one process each, fleet/) instead of through the node graph; 0 = the '
                        'node graph')
    parser.add_argument('--ray', default='', metavar='ADDRESS',
                        help='with --stations: run them as Ray actors on this cluster '
                        '(\'local\' starts one here)')
    parser.add_argument('--run-to-limit', action='store_true',
                        help='no learned detection ends an episode: each runs --max-ticks, so '
                        '`selfimprove audit` can judge any rule on whole episodes')


def run(args) -> int:
    """Run the episodes, print and save the report."""
    if args.stations < 0:
        raise ValueError(f'--stations must be >= 0 (0 = the node graph), got {args.stations}')
    run_episodes = evaluate_on_stations if args.stations else evaluate
    extra = {'stations': args.stations, 'ray_address': args.ray} if args.stations else {}
    report = run_episodes(args.model, args.reward_model or args.model, args.task,
                          args.episodes, args.out, seed=args.seed, max_ticks=args.max_ticks,
                          temperature=args.temperature, robot=args.robot,
                          learned_detection=not args.run_to_limit, sampler=args.sampler,
                          actions_per_chunk=args.actions_per_chunk, **extra)
    print(json.dumps({k: v for k, v in report.items() if k != 'episodes'}, indent=1))
    return 0


def preflight(model_dir, reward_model_dir, episodes, max_ticks, temperature) -> dict:
    """Refuse, before any node starts, what the graph would refuse; return the manifest.

    The nodes check the same things, but a refusal there reads as a broken graph three
    restarts later, with the reason buried in a node's log.
    """
    from selfimprove_ros.model.manifest import read_manifest
    from selfimprove_ros.runtime.onnx_model import load_model
    for name, value, low in (('--episodes', episodes, 1), ('--max-ticks', max_ticks, 1),
                             ('--temperature', temperature, 0)):
        if value < low:
            raise ValueError(f'{name} must be >= {low}, got {value}')
    manifest = read_manifest(model_dir)
    cameras = manifest['codec']['cameras']
    load_model(model_dir, 'policy.onnx', cameras, providers='cpu')
    load_model(reward_model_dir, 'reward.onnx', cameras, providers='cpu')
    return manifest


def evaluate(model_dir, reward_model_dir, task, episodes, out, seed=1000, max_ticks=100,
             temperature=0.0, robot='aloha1', log=print, learned_detection=True,
             sampler='independent', actions_per_chunk=0) -> dict:
    """Run `episodes` episodes of the policy through the sim graph and report on them."""
    from selfimprove_ros.graph.sim_driver import run_graph_until_labelled
    from selfimprove_ros.training.episode_report import episode_report
    manifest = preflight(model_dir, reward_model_dir, episodes, max_ticks, temperature)
    out = os.path.abspath(out)
    specs = sim_runtime_specs(task, manifest['codec']['cameras'], model_dir, reward_model_dir,
                              robot, max_ticks, temperature, {
                                  'robot_node': {'seed': seed},
                                  'recorder_node': {'bag_dir': os.path.join(out, 'bags')},
                                  'policy_node': {'sampler': sampler,
                                                  'actions_per_chunk': actions_per_chunk},
                                  'success_detector_node': {
                                      'learned_detection': bool(learned_detection)}})
    saved = run_graph_until_labelled(specs, robot, episodes, os.path.join(out, 'logs'), log)
    labelled = [item['path'] for item in saved if item['labelled']]
    if len(labelled) < len(saved):
        log(f'{len(saved) - len(labelled)} of {len(saved)} episodes could not be labelled and '
            'are left out of the report; see the reward scorer\'s log')
    report = episode_report(labelled, out, manifest['version'])
    log(f'{manifest["version"]}: simulator success {report["sim_success"]["describe"]}, '
        f'detected {report["detected_success"]["describe"]}; curve in {report["plot"]}')
    return report


def sim_runtime_specs(task, cameras, model_dir, reward_model_dir, robot='aloha1', max_ticks=100,
                      temperature=0.0, overrides=None) -> list:
    """Return the sim graph (config/sim.yaml, lockstep, runtime nodes) for one policy.

    The node graph and the sim stations (fleet/) both run these specs. `overrides` maps node
    key -> parameter changes on top of these.
    """
    from selfimprove_ros.graph.description import build_graph, config_path, load_config
    overrides = overrides or {}
    base = {
        'launch': {'task': task, 'cameras': list(cameras), 'lockstep': True,
                   'model_dir': os.path.abspath(model_dir),
                   'reward_model_dir': os.path.abspath(reward_model_dir)},
        'policy_node': {'temperature': float(temperature)},
        # No max_episodes: faults do not count, so the driver decides when enough are done.
        'episode_manager_node': {'max_ticks': max_ticks, 'wait_for_policy': True},
    }
    merged = {key: {**base.get(key, {}), **overrides.get(key, {})}
              for key in set(base) | set(overrides)}
    return build_graph(load_config(config_path('sim.yaml')), robot, merged, with_runtime=True)


def evaluate_on_stations(model_dir, reward_model_dir, task, episodes, out, seed=1000,
                         max_ticks=100, temperature=0.0, robot='aloha1', log=print,
                         learned_detection=True, stations=1, ray_address='',
                         station=None, sampler='independent', actions_per_chunk=0) -> dict:
    """Run `episodes` episodes on sim stations (the graph's cores); report as `evaluate`.

    `sampler` is policy_node's (runtime/token_sampling.py), for temperatures above 0;
    `actions_per_chunk` too (0 = whole chunks).
    """
    from selfimprove_ros.fleet.fleet import start_fleet
    from selfimprove_ros.fleet.practice import evaluate_on_fleet
    from selfimprove_ros.fleet.station import PHASES
    from selfimprove_ros.training.episode_report import episode_report
    manifest = preflight(model_dir, reward_model_dir, episodes, max_ticks, temperature)
    out = os.path.abspath(out)
    specs = sim_runtime_specs(task, manifest['codec']['cameras'], model_dir, reward_model_dir,
                              robot, max_ticks, temperature, {
                                  'policy_node': {'sampler': sampler,
                                                  'actions_per_chunk': actions_per_chunk},
                                  'success_detector_node': {
                                      'learned_detection': bool(learned_detection)}})
    fleet = start_fleet({'specs': specs, 'robot': robot,
                         'reward_model_dir': os.path.abspath(reward_model_dir),
                         'station': station or {}}, stations, ray_address, log)
    try:
        results = evaluate_on_fleet(fleet, os.path.abspath(model_dir),
                                    range(seed, seed + episodes), os.path.join(out, 'bags'),
                                    log)
    finally:
        fleet.close()
    labelled = [result['bag'] for result in results if result['labelled']]
    if len(labelled) < len(results):
        log(f'{len(results) - len(labelled)} of {len(results)} episodes were faults and are '
            f'left out of the report: {fleet.faults}')
    report = episode_report(labelled, out, manifest['version'])
    report['stations'] = stations
    report['phases_s'] = {name: sum(result['phases'].get(name, 0.0) for result in results)
                          for name in PHASES}
    log(f'{manifest["version"]} on {stations} station(s): simulator success '
        f'{report["sim_success"]["describe"]}, detected {report["detected_success"]["describe"]}'
        f'; curve in {report["plot"]}')
    return report
