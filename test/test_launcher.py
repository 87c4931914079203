"""The launcher never leaves orphans: nodes die with a launcher that was killed outright."""

import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.graph  # starts ROS nodes: `-m "not graph"` skips

SCRIPT = '''
import sys, time
from selfimprove_ros.graph.description import NodeSpec
from selfimprove_ros.graph.launcher import GraphRunner
runner = GraphRunner([NodeSpec('success_detector_node', 'success_detector_node', '/orphan')],
                     sys.argv[1])
runner.__enter__()
print(runner.processes['success_detector_node'][1].pid, flush=True)
time.sleep(600)
'''


def alive(pid: int) -> bool:
    try:
        with open(f'/proc/{pid}/stat') as handle:
            return handle.read().split()[2] != 'Z'
    except FileNotFoundError:
        return False


def test_nodes_die_when_the_launcher_is_killed(tmp_path):
    launcher = subprocess.Popen([sys.executable, '-c', SCRIPT, str(tmp_path)],
                                stdout=subprocess.PIPE, text=True)
    child = int(launcher.stdout.readline())
    assert alive(child)
    os.kill(launcher.pid, signal.SIGKILL)
    launcher.wait()
    deadline = time.monotonic() + 20
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(child), 'the node outlived its launcher'


def test_dds_environment_picks_the_transport_per_distro(monkeypatch):
    from selfimprove_ros.graph.dds import dds_environment, HUMBLE_PROFILE
    monkeypatch.delenv('FASTDDS_BUILTIN_TRANSPORTS', raising=False)
    assert dds_environment('jazzy')['FASTDDS_BUILTIN_TRANSPORTS'] == 'LARGE_DATA'
    # Small frames fit the default transport's shared memory; unknown or large ones do not.
    small, large = 160 * 120 * 3, 640 * 480 * 3
    assert dds_environment('kilted', small)['FASTDDS_BUILTIN_TRANSPORTS'] == 'DEFAULT'
    assert dds_environment('kilted', large)['FASTDDS_BUILTIN_TRANSPORTS'] == 'LARGE_DATA'
    humble = dds_environment('humble')
    assert 'FASTDDS_BUILTIN_TRANSPORTS' not in humble
    assert humble['FASTRTPS_DEFAULT_PROFILES_FILE'].endswith(HUMBLE_PROFILE)
    assert os.path.exists(humble['FASTRTPS_DEFAULT_PROFILES_FILE'])
    # A transport chosen by the user (robots on several hosts need UDP) is kept.
    monkeypatch.setenv('FASTDDS_BUILTIN_TRANSPORTS', 'UDPv4')
    assert dds_environment('kilted')['FASTDDS_BUILTIN_TRANSPORTS'] == 'UDPv4'
    assert dds_environment('kilted', small)['FASTDDS_BUILTIN_TRANSPORTS'] == 'UDPv4'
