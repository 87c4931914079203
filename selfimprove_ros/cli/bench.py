"""`selfimprove bench`: run one of the repository's benchmarks (measurements, not tests)."""

import importlib
import os
import sys

HELP = 'run a benchmark from benchmarks/ (speed and memory; results as JSON)'

BENCHMARKS = {
    'foundation': ('run', 'simulator speed, camera delivery across processes, recorder'),
    'dataset': ('dataset_throughput', 'bags -> training samples per second, cold and cached'),
    'training': ('training_throughput', 'SFT samples per second per encoder'),
    'runtime': ('runtime_latency', '10 Hz policy loop: jitter, inference, CPU, hot-swap gaps'),
    'toy': ('toy_improvement', 'self-improvement on the point-mass task, per iteration'),
    'graph-starts': ('graph_starts', 'how often a fresh sim runtime graph comes up whole'),
    'policy-vision': ('policy_vision', 'does a policy use what its camera shows'),
    'practice-step': ('practice_step', 'how far one REINFORCE iteration moves a policy, per lr'),
    'stage1-ablation': ('stage1_ablation', 'what each part of the Stage-1 recipe adds, in sim'),
    'practice-null': ('practice_null', 'practice against its shuffled-return control, in sim'),
    'practice-gain': ('practice_gain', 'K + practice against BC(K) and BC(2K), 3 seeds, in sim'),
    'practice-throughput': ('practice_throughput', 'practice episodes per minute: node graph, '
                            'one sim station, a fleet and its learner; station/graph fidelity'),
    'practice-pays': ('practice_pays', 'a practice setting (objective, sampler, temperature) '
                      'against its shuffled-return control, from one model, judged in sim'),
    'practice-replay': ('practice_replay', 'one learner iteration over recorded practice '
                        '(filtered BC or REINFORCE) against its blind control, judged in sim'),
    'expert-noise': ('expert_noise', "the scripted expert's success per demonstration noise "
                     'level and task, in sim'),
    'faults': ('faults', 'the fault matrix: what holds when processes, disks, models, inputs, '
               'bags and arguments go wrong'),
}


def add_arguments(parser):
    """Arguments of `bench`."""
    parser.add_argument('name', choices=sorted(BENCHMARKS), metavar='NAME',
                        help='; '.join(f'{name}: {text}'
                                       for name, (_, text) in sorted(BENCHMARKS.items())))
    parser.add_argument('bench_args', nargs='...', metavar='ARGS',
                        help="the benchmark's own arguments (see NAME --help)")


def checkout_root(start: str):
    """Return the nearest folder at or above `start` holding benchmarks/, or None."""
    folder = os.path.abspath(start)
    while True:
        if os.path.isfile(os.path.join(folder, 'benchmarks', '__init__.py')):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def load(name: str):
    """Import benchmarks.<module> from the repository checkout, or say why it cannot be."""
    module = BENCHMARKS[name][0]
    # The `selfimprove` script's sys.path holds its own folder, not the working directory.
    root = checkout_root(os.getcwd())
    if root and root not in sys.path:
        sys.path.insert(0, root)
    try:
        return importlib.import_module(f'benchmarks.{module}')
    except ModuleNotFoundError as error:
        if error.name not in ('benchmarks', f'benchmarks.{module}'):
            raise
        raise RuntimeError(
            f'benchmarks/{module}.py is not importable from {os.getcwd()}: benchmarks ship with '
            'the repository, not the installed package; run this from the checkout') from error


def run(args) -> int:
    """Run the benchmark's main() with its own arguments."""
    module = load(args.name)
    argv = sys.argv
    sys.argv = [f'selfimprove bench {args.name}', *args.bench_args]
    try:
        return module.main() or 0
    finally:
        sys.argv = argv
