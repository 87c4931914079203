"""The `selfimprove` command line: every help text renders, errors are one clear line."""

import argparse
import os
import subprocess
import sys

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


@pytest.mark.parametrize('where', ['checkout', 'elsewhere'])
def test_the_installed_script_finds_the_benchmarks_from_the_checkout(tmp_path, where):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = os.path.join(os.path.dirname(sys.executable), 'selfimprove')
    cwd = os.path.join(root, 'docs') if where == 'checkout' else str(tmp_path)
    # The script's own sys.path, not pytest's (which holds the checkout already).
    result = subprocess.run([script, 'bench', 'policy-vision', '--help'], cwd=cwd,
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, 'PYTHONPATH': ''})
    if where == 'checkout':
        assert result.returncode == 0 and 'usage: selfimprove bench policy-vision' in \
            result.stdout, result.stderr
    else:
        assert result.returncode == 2 and 'run this from the checkout' in result.stderr


def one_line_refusal(capsys, argv, *phrases):
    """Run `argv`; assert exit 2 and a single stderr line holding every phrase."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'Traceback' not in err, err
    for phrase in phrases:
        assert phrase in err, err


@pytest.mark.parametrize('setting, said', [
    ('sft.steps=abc', "steps must be int, got 'abc'"),
    ('sft.lr=abc', "lr must be float, got 'abc'")])
def test_a_wrong_typed_override_is_one_line_and_exit_2(tmp_path, capsys, setting, said):
    one_line_refusal(capsys, ['train', 'sft', '--bags', str(tmp_path), '--out',
                              str(tmp_path / 'run'), '--set', setting], said)


def test_a_wrong_typed_yaml_setting_is_one_line_and_exit_2(tmp_path, capsys):
    config = tmp_path / 'sft.yaml'
    config.write_text('sft:\n  steps: abc\n')
    one_line_refusal(capsys, ['train', 'sft', '--bags', str(tmp_path), '--out',
                              str(tmp_path / 'run'), '--config', str(config)],
                     "steps must be int, got 'abc'")


def test_sft_on_a_folder_without_bags_says_so(tmp_path, capsys):
    one_line_refusal(capsys, ['train', 'sft', '--bags', str(tmp_path), '--out',
                              str(tmp_path / 'run')], 'no episode bags found in', 'episode.yaml')


def test_improve_refuses_negative_iterations_before_creating_anything(tmp_path, capsys):
    run_dir = tmp_path / 'run'
    one_line_refusal(capsys, ['train', 'improve', '--bags', str(tmp_path), '--out',
                              str(run_dir), '--iterations', '-1'], 'got -1')
    assert not run_dir.exists()


def test_models_refuses_zero_demonstrations_rather_than_using_the_recipes(tmp_path, capsys):
    work = tmp_path / 'work'
    one_line_refusal(capsys, ['models', '--task', 'insertion', '--demos', '0', '--work',
                              str(work), '--out', str(tmp_path / 'models')],
                     '--demos must be >= 2 (one validates), got 0')
    assert not work.exists()


@pytest.mark.parametrize('verb', [['check'], ['verdict', '--failed']])
def test_bag_verbs_refuse_a_missing_path_with_exit_2(tmp_path, capsys, verb):
    one_line_refusal(capsys, ['bag', *verb, str(tmp_path / 'nothing')], 'does not exist')


def random_bytes_policy(model_dir):
    """Overwrite policy.onnx with random bytes; make the manifest and its seal match them."""
    import json

    from selfimprove_ros.model.manifest import seal_model_dir, sha256_of
    policy = os.path.join(model_dir, 'policy.onnx')
    with open(policy, 'wb') as stream:
        stream.write(os.urandom(3000))
    with open(os.path.join(model_dir, 'manifest.json')) as stream:
        manifest = json.load(stream)
    manifest['files']['policy.onnx']['sha256'] = sha256_of(policy)
    with open(os.path.join(model_dir, 'manifest.json'), 'w') as stream:
        json.dump(manifest, stream)
    seal_model_dir(model_dir)  # consistent: only opening the file can tell


@pytest.fixture(scope='module')
def tiny_model(tmp_path_factory):
    from model_factory import tiny_model_dir
    return tiny_model_dir(tmp_path_factory.mktemp('tiny') / 'model')[0]


@pytest.mark.parametrize('flaw, said', [
    (['--max-ticks', '-5'], '--max-ticks must be >= 1, got -5'),
    (['--temperature', '-1'], '--temperature must be >= 0, got -1.0'),
    ('policy', 'cannot be opened by ONNX Runtime'),
    ('reward', 'reward.onnx: sha256')])
def test_eval_refuses_what_the_graph_would_refuse_before_starting_it(tmp_path, capsys,
                                                                     monkeypatch, tiny_model,
                                                                     flaw, said):
    import shutil

    from selfimprove_ros.graph import sim_driver
    model, reward = str(tmp_path / 'model'), str(tmp_path / 'reward')
    shutil.copytree(tiny_model, model)
    shutil.copytree(tiny_model, reward)
    if flaw == 'policy':
        random_bytes_policy(model)
    if flaw == 'reward':
        with open(os.path.join(reward, 'reward.onnx'), 'ab') as stream:
            stream.write(b'tampered')

    def graph(*_args, **_kwargs):
        raise AssertionError('the graph started')
    monkeypatch.setattr(sim_driver, 'run_graph_until_labelled', graph)
    options = flaw if isinstance(flaw, list) else []
    one_line_refusal(capsys, ['eval', '--model', model, '--reward-model', reward, '--out',
                              str(tmp_path / 'out'), *options], said)
