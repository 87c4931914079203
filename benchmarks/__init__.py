"""Measurements, not tests: one script per question (docs/benchmarks.md lists them).

`selfimprove bench NAME` runs one; each writes its JSON under benchmarks/results/ stamped with
`machine()`, what the numbers were measured on.
"""

import json
import os
import platform
import time


def machine() -> dict:
    """Return what the numbers were measured on."""
    import torch

    from selfimprove_ros.training.run_export import git_commit
    return {'host': platform.node(), 'cpu_count': os.cpu_count(),
            'load_average': [round(x, 2) for x in os.getloadavg()],
            'python': platform.python_version(), 'torch': torch.__version__,
            'cuda_device': torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            'torch_threads': torch.get_num_threads(), 'ros_distro': os.environ.get('ROS_DISTRO'),
            'ros_domain_id': os.environ.get('ROS_DOMAIN_ID'), 'git_commit': git_commit()}


def save_row(path: str, name: str, row: dict, args) -> None:
    """Write `row` as entry `name` of the JSON at `path`, beside the entries already there.

    The row carries the run's settings (`args`, less --results), machine() and today's date.
    Written whole or not at all: runs of one benchmark in parallel each read the file just
    before writing, and a crash must not lose the rows already measured.
    """
    from selfimprove_ros.core.atomic_file import atomic_write
    found = {}
    if os.path.exists(path):
        with open(path) as stream:
            found = json.load(stream)
    found[name] = {**row, 'settings': {k: v for k, v in vars(args).items() if k != 'results'},
                   'machine': machine(), 'date': time.strftime('%Y-%m-%d')}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_write(path) as stream:
        json.dump(found, stream, indent=1)
    print(f'wrote {path}')


def require_at_least_one(parser, args, *names):
    """Refuse (argparse's exit 2) any option of `names` given below 1; None means not given."""
    for name in names:
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1, got {value}')
