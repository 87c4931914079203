"""`selfimprove collect`: scripted demonstrations through the running sim node graph."""

import os

from selfimprove_ros.graph.description import build_graph, config_path, load_config
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


def graph_overrides(task, out, seed, noise_std, cameras, size, realtime) -> dict:
    """Turn collection choices into per-node parameter overrides."""
    launch = {'task': task, 'lockstep': not realtime}
    if cameras is not None:
        launch['cameras'] = list(cameras)
    overrides = {
        'launch': launch,
        'robot_node': {'seed': seed},
        'recorder_node': {'bag_dir': os.path.abspath(out)},
        'expert_node': {'noise_std': noise_std, 'noise_seed': seed},
    }
    if size:
        overrides['camera_node'] = {'height': size[0], 'width': size[1]}
    return overrides


def collect(out: str, task: str = 'transfer_cube', episodes: int = 10, robot: str = 'aloha1',
            config: str = None, seed: int = 0, noise_std: float = 0.0, episode_s: float = 8.0,
            post_success_ticks: int = 5, cameras=None, size=None, realtime: bool = False):
    """Record `episodes` expert episodes into `out` through a fresh sim graph.

    The keyword defaults are the command's; returns the EpisodeResults in order.
    """
    from selfimprove_ros.graph.collection import collect_episodes
    if episodes < 1:
        raise ValueError(f'--episodes must be >= 1, got {episodes}')
    graph = load_config(config or config_path('sim.yaml'))
    specs = build_graph(graph, robot, graph_overrides(task, out, seed, noise_std, cameras, size,
                                                      realtime), with_expert=True)
    period_s = float(graph['launch'].get('control_period_s', 0.1))
    return collect_episodes(
        specs, robot, task, INSTRUCTIONS[task], period_s, episodes,
        max_ticks=int(round(episode_s / period_s)), post_success_ticks=post_success_ticks,
        extra={'noise_std': noise_std}, log_dir=os.path.join(os.path.abspath(out), 'logs'))


def run(args) -> int:
    """Start the graph, collect the episodes, print a summary."""
    results = collect(args.out, args.task, args.episodes, args.robot, args.config, args.seed,
                      args.noise_std, args.episode_s, args.post_success_ticks, args.cameras,
                      args.size, args.realtime)
    successes = sum(r.outcome == 'success' for r in results)
    print(f'\n{successes}/{len(results)} episodes succeeded; bags in {os.path.abspath(args.out)}')
    return 0 if results else 1
