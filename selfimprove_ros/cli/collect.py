"""`selfimprove collect`: scripted demonstrations through the running sim node graph."""

import os
import time

from selfimprove_ros.graph.description import build_graph, config_path, load_config
from selfimprove_ros.graph.launcher import GraphRunner
from selfimprove_ros.sim.aloha_sim import INSTRUCTIONS, TASKS

HELP = 'record scripted expert demonstrations in sim, one episode bag each'


def add_arguments(parser):
    """Arguments of `collect`."""
    parser.add_argument('--task', choices=TASKS, default='transfer_cube')
    parser.add_argument('--episodes', type=int, default=10, help='episodes to record')
    parser.add_argument('--out', required=True, help='directory that receives the bags')
    parser.add_argument('--robot', default='aloha1', help='robot namespace')
    parser.add_argument('--config', default=None, help='graph config (default: config/sim.yaml)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the first episode')
    parser.add_argument('--noise-std', type=float, default=0.0,
                        help='expert noise [rad]; > 0 makes imperfect demonstrations')
    parser.add_argument('--episode-s', type=float, default=8.0,
                        help='maximum episode length [s of robot time]')
    parser.add_argument('--post-success-ticks', type=int, default=5,
                        help='ticks kept after success so the final state is recorded')
    parser.add_argument('--cameras', nargs='*', default=None, help='camera names to run')
    parser.add_argument('--size', type=int, nargs=2, default=None, metavar=('HEIGHT', 'WIDTH'),
                        help='camera image size [px]')
    parser.add_argument('--realtime', action='store_true',
                        help='run at wall-clock rate instead of lockstep on /clock')


def graph_overrides(args) -> dict:
    """Turn command-line choices into per-node parameter overrides."""
    launch = {'task': args.task, 'lockstep': not args.realtime}
    if args.cameras is not None:
        launch['cameras'] = list(args.cameras)
    overrides = {
        'launch': launch,
        'robot_node': {'seed': args.seed},
        'recorder_node': {'bag_dir': os.path.abspath(args.out)},
        'expert_node': {'noise_std': args.noise_std, 'noise_seed': args.seed},
    }
    if args.size:
        overrides['camera_node'] = {'height': args.size[0], 'width': args.size[1]}
    return overrides


def run(args) -> int:
    """Start the graph, collect the episodes, print a summary."""
    if args.episodes < 1:
        raise ValueError(f'--episodes must be >= 1, got {args.episodes}')
    config = load_config(args.config or config_path('sim.yaml'))
    specs = build_graph(config, args.robot, graph_overrides(args), with_expert=True)
    period_s = float(config['launch'].get('control_period_s', 0.1))
    results = collect_episodes(specs, args, period_s)
    successes = sum(r.outcome == 'success' for r in results)
    print(f'\n{successes}/{len(results)} episodes succeeded; bags in {os.path.abspath(args.out)}')
    return 0 if results else 1


def collect_episodes(specs, args, period_s: float):
    """Run the episodes in a fresh graph; returns the EpisodeResults."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from selfimprove_ros.graph.dds import dds_environment
    from selfimprove_ros.graph.description import largest_frame_bytes
    from selfimprove_ros.nodes.collector import Collector

    # The collector in this process talks to the graph over the transport the graph uses.
    os.environ.update(dds_environment(largest_frame_bytes=largest_frame_bytes(specs)))
    log_dir = os.path.join(os.path.abspath(args.out), 'logs')
    max_ticks = int(round(args.episode_s / period_s))
    rclpy.init()
    results = []
    try:
        with GraphRunner(specs, log_dir) as graph:
            collector = Collector(args.robot, args.task, INSTRUCTIONS[args.task], period_s,
                                  extra={'noise_std': args.noise_std})
            executor = SingleThreadedExecutor()
            executor.add_node(collector)
            collector.wait_ready(executor, timeout_s=120.0, subscribers=2, check=graph.check)
            for index in range(args.episodes):
                start = time.monotonic()
                result = collector.run_episode(executor, max_ticks, args.post_success_ticks,
                                               check=graph.check)
                results.append(result)
                print(f'[{index + 1}/{args.episodes}] seed {result.seed}: {result.outcome:8s} '
                      f'{result.ticks:3d} ticks {time.monotonic() - start:5.1f} s  '
                      f'{result.bag_path or "(no bag saved!)"}', flush=True)
            executor.remove_node(collector)
            collector.destroy_node()
    finally:
        rclpy.shutdown()
    return results


def build_namespace(**values):
    """Return `collect`'s defaults with `values` applied (for commands that collect)."""
    import argparse
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(['--out', values.pop('out')])
    for key, value in values.items():
        setattr(args, key, value)
    return args
