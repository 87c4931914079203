"""How often a fresh sim runtime graph comes up whole: start it, wait for its first episode.

Starts the evaluation graph of `selfimprove eval` (robot, one camera, recorder, policy, reward
scorer, success detector, manager) again and again, each time in a fresh ROS domain, and counts
the starts in which no episode began within --wait-s: a partly deaf graph (one reader that
never matched one writer) stalls there. Compare transports with --transport. Measurements, not
tests; writes benchmarks/results/graph_starts_<transport>.json.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results')


def start_once(model: str, out: str, wait_s: float) -> float:
    """Start one graph; return seconds until its first bag appeared, or -1 after wait_s."""
    from selfimprove_ros.graph.sim_driver import next_domain_id
    from selfimprove_ros.graph.description import build_graph, config_path, load_config
    from selfimprove_ros.graph.launcher import GraphRunner
    os.environ['ROS_DOMAIN_ID'] = str(next_domain_id())
    bags = os.path.join(out, 'bags')
    overrides = {'launch': {'task': 'transfer_cube', 'cameras': ['cam_high'], 'lockstep': True,
                            'model_dir': model, 'reward_model_dir': model},
                 'recorder_node': {'bag_dir': bags}, 'policy_node': {'temperature': 0.0},
                 'episode_manager_node': {'max_ticks': 30, 'wait_for_policy': True}}
    specs = build_graph(load_config(config_path('sim.yaml')), 'aloha1', overrides,
                        with_runtime=True)
    started = time.monotonic()
    with GraphRunner(specs, os.path.join(out, 'logs')) as graph:
        while time.monotonic() - started < wait_s:
            time.sleep(0.5)
            graph.check()
            if os.path.isdir(bags) and os.listdir(bags):
                return round(time.monotonic() - started, 1)
    return -1.0


def main(argv=None):
    """Start the graph --starts times; print and save how many stalled."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', required=True, help='exported model directory (policy and '
                        'reward), e.g. runs/demo/transfer_cube/models/stage1')
    parser.add_argument('--starts', type=int, default=25, help='graphs to start, one by one')
    parser.add_argument('--transport', default='DEFAULT',
                        help='FASTDDS_BUILTIN_TRANSPORTS of the graphs (DEFAULT, LARGE_DATA, ...)')
    parser.add_argument('--wait-s', type=float, default=40.0,
                        help='a start with no episode begun by then counts as stalled [s]')
    parser.add_argument('--out', default='runs/graph_starts')
    parser.add_argument('--results', help='where the JSON goes (default benchmarks/results/'
                        'graph_starts_<transport>.json)')
    args = parser.parse_args(argv)
    if args.starts < 1:
        parser.error(f'--starts must be >= 1, got {args.starts}')
    if args.wait_s <= 0:
        parser.error(f'--wait-s must be > 0, got {args.wait_s}')
    os.environ['FASTDDS_BUILTIN_TRANSPORTS'] = args.transport
    model = os.path.abspath(args.model)
    times = []
    for number in range(args.starts):
        seconds = start_once(model, os.path.join(args.out, args.transport, f'start{number}'),
                             args.wait_s)
        times.append(seconds)
        verdict = f'first episode after {seconds} s' if seconds >= 0 else \
            f'STALLED (no episode in {args.wait_s:.0f} s)'
        print(f'start {number}: {verdict}', flush=True)
    stalled = sum(t < 0 for t in times)
    print(f'{args.transport}: {stalled} of {len(times)} starts stalled')
    path = args.results or os.path.join(RESULTS, f'graph_starts_{args.transport}.json')
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'w') as stream:
        json.dump({'transport': args.transport, 'starts': len(times), 'stalled': stalled,
                   'seconds_to_first_episode': times, 'wait_s': args.wait_s,
                   'model': model}, stream, indent=1)
    print(f'wrote {path}')


if __name__ == '__main__':
    main()
