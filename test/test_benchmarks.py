"""Benchmarks are measurements, not tests, but they must keep running: each one is started
here with its help (imports, arguments) and the runtime-latency graph for a few seconds."""

import glob
import json
import os
import sys

import pytest

from selfimprove_ros.cli import bench

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_benchmark_module_is_reachable_from_selfimprove_bench():
    scripts = glob.glob(os.path.join(ROOT, 'benchmarks', '*.py'))
    modules = {os.path.basename(path)[:-3] for path in scripts}
    assert modules - {'__init__'} == {module for module, _ in bench.BENCHMARKS.values()}


@pytest.mark.parametrize('name', sorted(bench.BENCHMARKS))
def test_each_benchmark_imports_and_answers_help(name, capsys, monkeypatch):
    # As `selfimprove bench NAME --help` runs it: main() reads sys.argv.
    monkeypatch.setattr(sys, 'argv', [f'selfimprove bench {name}', '--help'])
    with pytest.raises(SystemExit) as done:
        bench.load(name).main()
    assert done.value.code == 0
    assert 'usage:' in capsys.readouterr().out


@pytest.mark.graph
def test_runtime_latency_measures_a_live_policy(tmp_path):
    main = bench.load('runtime').main
    results = tmp_path / 'latency.json'
    main(['--seconds', '3', '--warmup', '2', '--models', 'default', '--results', str(results)])
    (row,) = json.loads(results.read_text())['models']
    assert row['name'] == 'default' and row['steady']['ticks'] > 0
