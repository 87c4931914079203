"""`selfimprove eval`: greedy episodes of a model in sim, success rate and steps-to-go curve."""

import json
import os

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
    parser.add_argument('--robot', default='aloha1')
    parser.add_argument('--run-to-limit', action='store_true',
                        help='no learned detection ends an episode: each runs --max-ticks, so '
                        '`selfimprove audit` can judge any rule on whole episodes')


def run(args) -> int:
    """Run the episodes, print and save the report."""
    report = evaluate(args.model, args.reward_model or args.model, args.task, args.episodes,
                      args.out, seed=args.seed, max_ticks=args.max_ticks,
                      temperature=args.temperature, robot=args.robot,
                      learned_detection=not args.run_to_limit)
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
             temperature=0.0, robot='aloha1', log=print, learned_detection=True) -> dict:
    """Run `episodes` episodes of the policy through the sim graph and report on them."""
    from selfimprove_ros.graph.description import build_graph, config_path, load_config
    from selfimprove_ros.graph.sim_driver import run_graph_until_labelled
    from selfimprove_ros.training.episode_report import episode_report
    manifest = preflight(model_dir, reward_model_dir, episodes, max_ticks, temperature)
    cameras = manifest['codec']['cameras']
    out = os.path.abspath(out)
    overrides = {
        'launch': {'task': task, 'cameras': cameras, 'lockstep': True,
                   'model_dir': os.path.abspath(model_dir),
                   'reward_model_dir': os.path.abspath(reward_model_dir)},
        'robot_node': {'seed': seed},
        'recorder_node': {'bag_dir': os.path.join(out, 'bags')},
        'policy_node': {'temperature': float(temperature)},
        'success_detector_node': {'learned_detection': bool(learned_detection)},
        # No max_episodes: faults do not count, so the driver decides when enough are done.
        'episode_manager_node': {'max_ticks': max_ticks, 'wait_for_policy': True},
    }
    specs = build_graph(load_config(config_path('sim.yaml')), robot, overrides,
                        with_runtime=True)
    saved = run_graph_until_labelled(specs, robot, episodes, os.path.join(out, 'logs'), log)
    labelled = [item['path'] for item in saved if item['labelled']]
    if len(labelled) < len(saved):
        log(f'{len(saved) - len(labelled)} of {len(saved)} episodes could not be labelled and '
            'are left out of the report; see the reward scorer\'s log')
    report = episode_report(labelled, out, manifest['version'])
    log(f'{manifest["version"]}: simulator success {report["sim_success"]["describe"]}, '
        f'detected {report["detected_success"]["describe"]}; curve in {report["plot"]}')
    return report
