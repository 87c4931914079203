"""`selfimprove eval`: greedy episodes of a model in sim, success rate and steps-to-go curve."""

import json
import os
import time

from selfimprove_ros.sim.aloha_sim import TASKS

HELP = 'evaluate a policy in sim: success rate with a 95% interval, mean steps-to-go curve'


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


def run(args) -> int:
    """Run the episodes, print and save the report."""
    report = evaluate(args.model, args.reward_model or args.model, args.task, args.episodes,
                      args.out, seed=args.seed, max_ticks=args.max_ticks,
                      temperature=args.temperature, robot=args.robot)
    print(json.dumps({k: v for k, v in report.items() if k != 'episodes'}, indent=1))
    return 0


def evaluate(model_dir, reward_model_dir, task, episodes, out, seed=1000, max_ticks=100,
             temperature=0.0, robot='aloha1', log=print) -> dict:
    """Run `episodes` episodes of the policy through the sim graph and report on them."""
    from selfimprove_ros.graph.description import build_graph, config_path, load_config
    from selfimprove_ros.model.manifest import read_manifest
    from selfimprove_ros.training.episode_report import episode_report
    if episodes < 1:
        raise ValueError(f'--episodes must be >= 1, got {episodes}')
    manifest = read_manifest(model_dir)
    cameras = manifest['codec']['cameras']
    out = os.path.abspath(out)
    overrides = {
        'launch': {'task': task, 'cameras': cameras, 'lockstep': True,
                   'model_dir': os.path.abspath(model_dir),
                   'reward_model_dir': os.path.abspath(reward_model_dir)},
        'robot_node': {'seed': seed},
        'recorder_node': {'bag_dir': os.path.join(out, 'bags')},
        'policy_node': {'temperature': float(temperature)},
        'episode_manager_node': {'max_episodes': episodes, 'max_ticks': max_ticks,
                                 'wait_for_policy': True},
    }
    specs = build_graph(load_config(config_path('sim.yaml')), robot, overrides,
                        with_runtime=True)
    saved = run_graph_until_labelled(specs, robot, episodes, os.path.join(out, 'logs'), log)
    report = episode_report([event['path'] for event in saved], out, manifest['version'])
    log(f'{manifest["version"]}: simulator success {report["sim_success"]["describe"]}, '
        f'detected {report["detected_success"]["describe"]}; curve in {report["plot"]}')
    return report


_DOMAINS = {'next': None}


def next_domain_id() -> int:
    """Return a ROS domain id for the next graph, cycling through 110..219 from the start."""
    if _DOMAINS['next'] is None:
        start = int(os.environ.get('ROS_DOMAIN_ID', '0') or 0)
        _DOMAINS['next'] = 110 + (start + os.getpid()) % 110
    domain = _DOMAINS['next']
    _DOMAINS['next'] = 110 + (domain - 110 + 1) % 110
    return domain


def labelled_bags(bag_dir: str, exclude) -> list:
    """Return the bag directories under bag_dir that have labels, oldest first."""
    from selfimprove_ros.runtime.episode_labelling import LABELS_FILE
    if not os.path.isdir(bag_dir):
        return []
    found = [os.path.join(bag_dir, name) for name in os.listdir(bag_dir)
             if name not in exclude and os.path.exists(os.path.join(bag_dir, name, LABELS_FILE))]
    return sorted(found, key=lambda path: os.path.getmtime(os.path.join(path, LABELS_FILE)))


def run_graph_until_labelled(specs, robot, episodes, log_dir, log=print, timeout_s=None,
                             stop_when=None):
    """Start `specs`, wait for `episodes` labelled episodes, stop; return them in order.

    Completion is read from the recorder's bag directory (a bag with its steps_to_go.npz), not
    from DDS in this process: the graph's own nodes talk over DDS, but a driver that comes and
    goes between graphs is the one participant we saw miss messages. Each returned item is
    {'episode_id', 'path', 'outcome'}. `stop_when(done, item)`, called after each labelled
    episode, can end the wait early.
    """
    from selfimprove_ros.graph.dds import dds_environment
    from selfimprove_ros.graph.launcher import GraphRunner
    from selfimprove_ros.runtime.episode_labelling import read_labels
    bag_dir = next(spec.parameters['bag_dir'] for spec in specs
                   if spec.executable == 'recorder_node')
    before = set(os.listdir(bag_dir)) if os.path.isdir(bag_dir) else set()
    os.environ.update(dds_environment())
    # A fresh ROS domain per graph keeps it apart from the participants of the last one.
    os.environ['ROS_DOMAIN_ID'] = str(next_domain_id())
    deadline = time.monotonic() + (timeout_s or 120 + 60 * min(episodes, 1000))
    done = []
    with GraphRunner(specs, log_dir) as graph:
        while len(done) < episodes:
            if time.monotonic() > deadline:
                raise TimeoutError(f'only {len(done)} of {episodes} episodes were labelled in '
                                   f'{bag_dir}; see the node logs in {log_dir}')
            graph.check()
            time.sleep(0.5)
            for path in labelled_bags(bag_dir, before | {os.path.basename(p['path'])
                                                         for p in done}):
                labels = read_labels(path)
                item = {'episode_id': labels.episode_id, 'path': path,
                        'outcome': labels.outcome}
                done.append(item)
                sim = '' if labels.sim_success is None else \
                    f', simulator {"success" if labels.sim_success else "failure"}'
                log(f'  episode {len(done)}: {labels.outcome}{sim}')
                if stop_when and stop_when(len(done), item):
                    return done
    return done
