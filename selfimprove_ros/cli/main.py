"""`selfimprove`: the project's command line. Each subcommand lives in its own module."""

import argparse
import os
import sys

from selfimprove_ros.cli import (audit, bag, bench, collect, console, demo, evaluate, export,
                                 models, practice, train)

# Headless rendering unless the user chose otherwise: without it MuJoCo tries GLFW, which warns
# about the missing X display (and fails) on every robot computer and CI machine.
os.environ.setdefault('MUJOCO_GL', 'egl')

COMMANDS = {'collect': collect, 'bag': bag, 'train': train, 'export': export, 'eval': evaluate,
            'demo': demo, 'console': console, 'bench': bench, 'audit': audit, 'models': models,
            'practice': practice}


def build_parser() -> argparse.ArgumentParser:
    """Build the parser with one sub-parser per command module."""
    parser = argparse.ArgumentParser(
        prog='selfimprove',
        description='Self-improving ALOHA policies on ROS 2 (arXiv 2509.15155).')
    sub = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')
    for name, module in COMMANDS.items():
        module.add_arguments(sub.add_parser(name, help=module.HELP, description=module.HELP))
    return parser


def main(argv=None) -> int:
    """Parse arguments and run the chosen command; errors become one clear line, exit 2."""
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command].run(args) or 0
    except (ValueError, OSError, RuntimeError, TimeoutError) as error:
        print(f'selfimprove {args.command}: error: {error}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f'selfimprove {args.command}: interrupted', file=sys.stderr)
        return 130


if __name__ == '__main__':
    sys.exit(main())
