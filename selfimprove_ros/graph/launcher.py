"""Start a node graph as processes, without the `launch` package (which has no PyPI wheel).

Each node runs as `python -m selfimprove_ros.nodes.<executable> --ros-args ...` with its
parameters in a ROS parameter file, its output in `<log_dir>/<namespace>_<name>.log`, and the DDS
environment of `graph.dds`. A node that dies is reported with its exit code and the end of its log.
"""

import os
import signal
import subprocess
import sys
import time

import yaml

from selfimprove_ros.graph.dds import dds_environment
from selfimprove_ros.graph.description import largest_frame_bytes


class NodeDied(RuntimeError):
    """A node of the graph exited while the graph was meant to be running."""


def _die_with_parent():
    """Ask Linux to SIGTERM this child when the launcher dies, so no node is orphaned."""
    try:
        import ctypes
        ctypes.CDLL('libc.so.6', use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the launcher's own cleanup still stops the nodes


class GraphRunner:
    """Runs a list of `NodeSpec`s; use as a context manager so everything stops on exit."""

    def __init__(self, specs, log_dir: str, env: dict = None):
        self.specs = list(specs)
        self.log_dir = log_dir
        transport = dds_environment(largest_frame_bytes=largest_frame_bytes(self.specs))
        self.env = {**os.environ, **transport, 'MUJOCO_GL': os.environ.get(
            'MUJOCO_GL', 'egl'), 'PYTHONUNBUFFERED': '1', **(env or {})}
        self.processes = {}

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def _log_path(self, spec) -> str:
        return os.path.join(self.log_dir, f'{spec.namespace.strip("/")}_{spec.name}.log')

    def start(self):
        """Start every node."""
        os.makedirs(self.log_dir, exist_ok=True)
        for spec in self.specs:
            params_file = os.path.join(self.log_dir,
                                       f'{spec.namespace.strip("/")}_{spec.name}.params.yaml')
            with open(params_file, 'w') as stream:
                yaml.safe_dump({'/**': {'ros__parameters': spec.parameters}}, stream)
            command = [sys.executable, '-m', f'selfimprove_ros.nodes.{spec.executable}',
                       '--ros-args', '-r', f'__node:={spec.name}', '-r',
                       f'__ns:={spec.namespace}', '--params-file', params_file]
            log = open(self._log_path(spec), 'w')
            # Own process group, so Ctrl-C in a terminal reaches us first and we stop in order.
            self.processes[spec.name] = (spec, subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                start_new_session=True, preexec_fn=_die_with_parent))
            log.close()

    def check(self):
        """Raise NodeDied if any node has exited."""
        for name, (spec, process) in self.processes.items():
            code = process.poll()
            if code is not None:
                raise NodeDied(f'{spec.namespace}/{name} exited with code {code}; last lines '
                               f'of {self._log_path(spec)}:\n{self.log_tail(spec)}')

    def log_tail(self, spec, lines: int = 15) -> str:
        """Return the last lines a node printed."""
        try:
            with open(self._log_path(spec)) as stream:
                return ''.join(stream.readlines()[-lines:])
        except OSError:
            return '(no log)'

    def stop(self, timeout_s: float = 10.0):
        """SIGINT every node (clean shutdown: the recorder closes its bag), then SIGKILL."""
        for _, process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
        deadline = time.monotonic() + timeout_s
        for _, process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes.clear()

    def kill(self, name: str, sig=signal.SIGKILL):
        """Send `sig` to one node (for crash tests)."""
        spec, process = self.processes[name]
        os.killpg(process.pid, sig)
        process.wait()
        del self.processes[name]
