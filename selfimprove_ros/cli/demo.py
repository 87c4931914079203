"""`selfimprove demo`: the simulated story, as far as the project goes today.

Today: scripted demonstrations for a sim task through the full node graph (robot, four cameras,
recorder, expert), then every bag is validated. Later stages (SFT, practice, evaluation) join
this command as they land.
"""

import argparse
import os

from selfimprove_ros.cli import bag, collect

HELP = 'run the simulated demo: demonstrations through the node graph, then bag checks'


def add_arguments(parser):
    """Arguments of `demo`."""
    parser.add_argument('--out', default='runs/demo', help='where bags and logs go')
    parser.add_argument('--task', default='transfer_cube')
    parser.add_argument('--episodes', type=int, default=5)
    parser.add_argument('--full', action='store_true', help='the long version: 50 episodes')


def run(args) -> int:
    """Collect, then check every bag."""
    episodes = 50 if args.full else args.episodes
    out = os.path.abspath(os.path.join(args.out, 'demonstrations', args.task))
    print(f'== 1/2 scripted demonstrations: {episodes} x {args.task} through the node graph')
    collect_args = collect.build_namespace(task=args.task, episodes=episodes, out=out)
    code = collect.run(collect_args)
    bags = sorted(os.path.join(out, name) for name in os.listdir(out)
                  if os.path.exists(os.path.join(out, name, 'metadata.yaml')))
    print(f'\n== 2/2 checking {len(bags)} bags')
    code |= bag.run(argparse.Namespace(verb='check', bags=bags, expect=None, max_gap_s=1.0))
    print(f'\nbags: {out}\nnode logs: {os.path.join(out, "logs")}')
    return code
