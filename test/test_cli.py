"""The `selfimprove` command line: every help text renders, errors are one clear line."""

import argparse

import pytest

from selfimprove_ros.cli import bench
from selfimprove_ros.cli.main import build_parser, COMMANDS, main


def subparsers(parser):
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return action.choices


def test_every_command_has_a_help_text_that_renders():
    parser = build_parser()
    text = parser.format_help()
    for name, sub in subparsers(parser).items():
        assert name in text
        assert sub.format_help().strip(), name
    assert set(subparsers(parser)) == set(COMMANDS)


def test_top_level_help_exits_cleanly(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(['--help'])
    assert exit_info.value.code == 0
    assert 'bench' in capsys.readouterr().out


def test_bench_runs_the_named_benchmark_with_its_arguments(monkeypatch):
    seen = {}

    class FakeBenchmark:
        @staticmethod
        def main():
            import sys
            seen['argv'] = list(sys.argv)
            return 0

    monkeypatch.setattr(bench.importlib, 'import_module',
                        lambda name: seen.setdefault('module', name) and FakeBenchmark)
    assert main(['bench', 'runtime', '--seconds', '5']) == 0
    assert seen['module'] == 'benchmarks.runtime_latency'
    assert seen['argv'][1:] == ['--seconds', '5']


def test_bench_outside_the_checkout_says_where_to_run_it(monkeypatch, tmp_path, capsys):
    def missing(name):
        raise ModuleNotFoundError(f'No module named {name!r}', name='benchmarks')

    monkeypatch.setattr(bench.importlib, 'import_module', missing)
    assert main(['bench', 'foundation']) == 2
    assert 'run this from the checkout' in capsys.readouterr().err
