"""Benchmarks are measurements, not tests, but they must keep running: each one is started
here with its help (imports, arguments) and once for real at the tiniest sizes its command
line allows, its JSON written under tmp_path. Only behaviour is checked (the JSON and its rows),
never a time.

Those that run the MuJoCo sim through a ROS graph (evaluation, collection, practice) run here
with sim_stand_in.py playing the graph's part on the point-mass task in this process: every
step of the benchmark around the graph (its phases, SFT, exports, labelled bags, reports,
ImproveRun, the result JSON) is real. Those whose point is the graph itself (foundation,
graph-starts, runtime) start it, marked `graph`."""

import glob
import json
import os
import shutil
import sys

import pytest

import sim_stand_in
from selfimprove_ros.cli import bench

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# Modules of benchmarks/ that are no benchmark: the shared helpers and the plots of
# docs/results.md.
NOT_BENCHMARKS = {'__init__', 'plot_results'}


def test_every_benchmark_module_is_reachable_from_selfimprove_bench():
    scripts = glob.glob(os.path.join(ROOT, 'benchmarks', '*.py'))
    modules = {os.path.basename(path)[:-3] for path in scripts}
    assert modules - NOT_BENCHMARKS == {module for module, _ in bench.BENCHMARKS.values()}


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


# Tiny real runs ---------------------------------------------------------------------------------
# Each benchmark and the test that runs it; a new benchmark must join.
TINY_RUNS = {'foundation': 'test_foundation_tiny', 'dataset': 'test_dataset_throughput_tiny',
             'training': 'test_training_throughput_tiny',
             'runtime': 'test_runtime_latency_measures_a_live_policy',
             'toy': 'test_toy_improvement_tiny',
             'graph-starts': 'test_graph_starts_tiny', 'policy-vision': 'test_policy_vision_tiny',
             'practice-step': 'test_practice_step_tiny',
             'stage1-ablation': 'test_stage1_ablation_tiny',
             'practice-null': 'test_practice_null_tiny', 'faults': 'test_faults_tiny',
             'practice-gain': 'test_practice_gain_tiny',
             'practice-throughput': 'test_practice_throughput_tiny',
             'practice-pays': 'test_practice_pays_and_practice_replay_tiny',
             'practice-replay': 'test_practice_pays_and_practice_replay_tiny',
             'expert-noise': 'test_expert_noise_tiny'}


def test_every_benchmark_has_a_tiny_run():
    assert set(TINY_RUNS) == set(bench.BENCHMARKS)
    assert all(callable(globals().get(test)) for test in TINY_RUNS.values())


@pytest.mark.parametrize('name, argv', [
    ('dataset', ['--ticks', '0']), ('training', ['--batch', '3']),
    ('foundation', ['--camera-sizes', '0x32']), ('foundation', ['--renders', '0']),
    ('toy', ['--sft-steps', '0']), ('faults', ['--only', 'everything']),
    ('graph-starts', ['--model', 'm', '--starts', '0']),
    ('policy-vision', ['--model', 'm', '--bags', 'b', '--episodes', '1']),
    ('practice-step', ['--stage1', 's', '--practice', 'p', '--demos', 'd', '--updates', '0']),
    ('practice-null', ['--stage1', 's', '--practice', 'p', '--max-ticks', '0']),
    ('stage1-ablation', ['--max-ticks', '0']),
    ('practice-throughput', ['--stations', '0']),
    ('practice-pays', ['--temperature', '0']),
    ('practice-replay', ['--practice', 'p', '--episodes', '0']),
    ('expert-noise', ['--noise', '-0.1']),
    ('practice-gain', ['--bc-k', 'm', '--bc-2k', 'm', '--iterations', '0'])])
def test_the_tiny_size_options_refuse_what_cannot_run(name, argv, capsys):
    with pytest.raises(SystemExit) as done:
        bench.load(name).main(argv)
    assert done.value.code == 2 and 'error:' in capsys.readouterr().err


@pytest.fixture(autouse=True)
def process_state():
    """Benchmarks are programs: give back the environment and torch threads they change."""
    import torch
    environ, threads = dict(os.environ), torch.get_num_threads()
    yield
    os.environ.clear()
    os.environ.update(environ)
    torch.set_num_threads(threads)


def quiet(*_):
    pass


def read(path) -> dict:
    with open(path) as stream:
        return json.load(stream)


@pytest.fixture(scope='module')
def toy_stage1(tmp_path_factory):
    """A point-mass Stage 1 (policy.pt beside it, as shipped), its demonstrations and two
    labelled practice episodes of its version: what the replay benchmarks read."""
    from selfimprove_ros.fleet.practice_loop import (EpisodeSpec, PracticeLoop,
                                                     record_demonstrations, train_stage_one)
    from selfimprove_ros.model.manifest import read_manifest
    from selfimprove_ros.model.model_config import ModelConfig
    from selfimprove_ros.sim import point_mass as pm
    from selfimprove_ros.training.reinforce_config import ReinforceConfig
    from selfimprove_ros.training.run_export import run_checkpoint
    from selfimprove_ros.training.sft_config import SftConfig
    import torch
    threads = torch.get_num_threads()  # training here sets it to the recipe's
    root = tmp_path_factory.mktemp('toy_stage1')
    env = pm.PointMass()
    demos = str(root / 'demos')
    record_demonstrations(env, pm.HesitantDemonstrator(env), demos,
                          EpisodeSpec(instruction=pm.INSTRUCTION,
                                      max_ticks=pm.DEMONSTRATION_TICKS),
                          range(20_000, 20_004), env.cameras)
    config = SftConfig(model=ModelConfig(**pm.MODEL), **dict(pm.SFT, steps=10))
    stage1 = train_stage_one(demos, str(root / 'sft'), config, str(root / 'stage1'), log=quiet)
    checkpoint = run_checkpoint(read_manifest(stage1))
    shutil.copyfile(checkpoint, os.path.join(stage1, 'policy.pt'))
    practice = str(root / 'practice')
    loop = PracticeLoop(env, stage1, str(root / 'improve'), practice,
                        ReinforceConfig(**pm.REINFORCE),
                        EpisodeSpec(instruction=pm.INSTRUCTION, max_ticks=pm.PRACTICE_TICKS),
                        log=quiet)
    loop.practise(2)
    torch.set_num_threads(threads)
    return {'stage1': stage1, 'demos': demos, 'practice': practice,
            'version': read_manifest(stage1)['version']}


def test_dataset_throughput_tiny(tmp_path):
    results = tmp_path / 'dataset.json'
    bench.load('dataset').main(['--episodes', '1', '--ticks', '2', '--chunk-length', '1',
                                '--results', str(results)])
    runs = read(results)['runs']
    assert [run['size_in'] for run in runs] == [[120, 160], [480, 640]]
    assert all(run['episodes'] == 1 and run['samples'] > 0 and run['cameras'] == 4
               for run in runs)


def test_training_throughput_tiny(tmp_path):
    results = tmp_path / 'training.json'
    bench.load('training').main(['--steps', '1', '--batch', '2', '--threads', '1',
                                 '--results', str(results)])
    rows = read(results)['rows']
    assert [(row['encoder'], row['freeze_encoder']) for row in rows] == [
        ('small_cnn', False), ('resnet18', True), ('resnet18', False)]
    assert [row['steps'] for row in rows] == [1, 5, 5]
    assert all(row['samples_per_s'] > 0 and 0 <= row['data_wait_fraction'] <= 1 for row in rows)


def test_toy_improvement_tiny(tmp_path):
    results = tmp_path / 'toy.json'
    bench.load('toy').main(['--iterations', '1', '--episodes', '1', '--evaluation-episodes',
                            '1', '--demonstrations', '2', '--sft-steps', '2',
                            '--out', str(results)])
    found = read(results)
    assert (found['demonstrations'], found['sft_steps']) == (2, 2)
    assert [entry['iteration'] for entry in found['history']] == [0, 1]
    assert found['history'][1]['version'].endswith('-it1')
    assert {'success_rate', 'greedy_success_rate'} <= set(found['history'][1])


def test_faults_tiny(tmp_path):
    # Every fast group but `trainer` (a 400-step SFT run killed and resumed in subprocesses;
    # test_sft.py kills and resumes training).
    faults = bench.load('faults')
    groups = [name for name in faults.FAST_ROWS if name != 'trainer']
    results, report = tmp_path / 'faults.json', tmp_path / 'reliability.md'
    report.write_text(f'# Reliability\n\n{faults.BEGIN}\nold\n{faults.END}\nafter\n')
    code = faults.main(['--only', *groups, '--results', str(results), '--report', str(report)])
    found = read(results)
    assert found['groups'] == groups and not found['graph']
    # recorder 1, stopped 1, disk 1, models 6 (five damaged models, a foreign one), inputs 5,
    # data 3, cli 6.
    assert len(found['rows']) == 23
    assert all({'fault', 'held', 'what_held', 'message'} <= set(row) for row in found['rows'])
    assert code == (0 if all(row['held'] for row in found['rows']) else 1)
    table = report.read_text().split(faults.BEGIN)[1].split(faults.END)[0]
    assert table.count('\n| ') == 1 + 23 and report.read_text().endswith('after\n')


def test_policy_vision_tiny(tmp_path, toy_stage1):
    results = tmp_path / 'vision.json'
    bench.load('policy-vision').main(['--model', toy_stage1['stage1'], '--bags',
                                      toy_stage1['demos'], '--episodes', '2', '--ticks', '1',
                                      '--arm', 'left', '--results', str(results)])
    found = read(results)
    assert found['model'] == toy_stage1['version']
    (row,) = found['rows']
    assert row['tick'] == 1 and row['episodes'] == 2
    assert {'own_frames', 'other_scene_frames', 'hold'} <= set(row)


def test_practice_step_tiny(tmp_path, toy_stage1):
    results = tmp_path / 'step.json'
    bench.load('practice-step').main([
        '--stage1', toy_stage1['stage1'], '--practice', toy_stage1['practice'],
        '--demos', toy_stage1['demos'], '--lrs', '1e-4', '--baselines', 'none', '--updates', '1',
        '--batch', '2', '--episodes', '2', '--ticks', '1', '--arm', 'left',
        '--out', str(tmp_path / 'runs'), '--results', str(results)])
    rows = read(results)['rows']
    assert [(row['lr'], row['baseline']) for row in rows] == [(None, None), (1e-4, 'none')]
    assert all(len(row['errors']) == 1 and 'ratio_to_stage1' in row for row in rows)


def test_practice_null_tiny(tmp_path, toy_stage1, monkeypatch):
    sim_stand_in.install(monkeypatch)
    results = tmp_path / 'null.json'
    bench.load('practice-null').main([
        '--stage1', toy_stage1['stage1'], '--practice', toy_stage1['practice'],
        '--iterations', '1', '--episodes', '1', '--max-ticks', '3',
        '--set', 'updates_per_iteration=1', 'batch_size=2',
        '--out', str(tmp_path / 'runs'), '--results', str(results)])
    found = read(results)
    assert set(found['rows']) == {'stage1', 'real', 'shuffled'}
    assert all(row['trials'] == 1 for row in found['rows'].values())
    assert 0 <= found['p_real_beats_shuffled'] <= 1


def test_practice_gain_tiny(tmp_path, toy_stage1, monkeypatch):
    sim_stand_in.install(monkeypatch)
    results = tmp_path / 'gain.json'
    bench.load('practice-gain').main([
        '--bc-k', toy_stage1['stage1'], '--bc-2k', toy_stage1['stage1'], '--k', '2',
        '--seeds', '0', '1', '--iterations', '1', '--eval-episodes', '1', '--max-ticks', '3',
        '--set', 'updates_per_iteration=1', 'batch_size=2',
        '--out', str(tmp_path / 'runs'), '--results', str(results)])
    found = read(results)
    assert found['complete']
    assert [(row['seed'], row['method']) for row in found['rows']] == [
        (0, 'bc_k'), (0, 'bc_2k'), (0, 'k_practice'), (1, 'bc_k'), (1, 'bc_2k'),
        (1, 'k_practice')]
    assert all(row['practice_episodes'] == 1 for row in found['rows'][2::3])  # K/2 of 2
    assert found['pooled']['k_practice']['trials'] == 2
    assert 0 <= found['pooled']['p_gain_over_bc_k'] <= 1


def test_practice_throughput_tiny(tmp_path, monkeypatch):
    """Stations for real (the shipped model, 10-tick episodes); the graph rows on the stand-in."""
    sim_stand_in.install(monkeypatch)
    results = tmp_path / 'throughput.json'
    bench.load('practice-throughput').main([
        '--stations', '2', '--graph-episodes', '1', '--station-episodes', '2',
        '--practice-episodes', '3', '--fidelity-episodes', '1', '--max-ticks', '10',
        '--out', str(tmp_path / 'runs'), '--results', str(results)])
    found = read(results)
    assert set(found['rows']) == {'node_graph', 'one_station', 'stations', 'practice'}
    assert found['rows']['practice']['episodes'] == 3
    assert set(found['rows']['stations']['phases_s_per_episode']) >= {'physics', 'render'}
    assert 0 <= found['fidelity']['p_difference'] <= 1
    assert found['fidelity']['paired']['scenes'] == 1


def test_practice_pays_and_practice_replay_tiny(tmp_path):
    """Real stations and learner from the shipped model, at the smallest sizes; then the
    shuffled case's bags refitted."""
    results = tmp_path / 'pays.json'
    tiny_iteration = ['decisions_per_iteration=4', 'updates_per_iteration=2', 'batch_size=2']
    bench.load('practice-pays').main([
        '--objective', 'filtered_bc', '--sampler', 'chunk_quantile', '--episodes', '2',
        '--eval-episodes', '1', '--max-ticks', '10', '--stations', '2',
        '--out', str(tmp_path / 'runs'), '--results', str(results), '--set', *tiny_iteration])
    (name, row), = read(results).items()
    assert {'start', 'real', 'shuffled', 'p_values'} <= set(row)
    assert row['real']['greedy']['trials'] == 1 and row['shuffled']['episodes'] == 2
    assert all(0 <= p <= 1 for p in row['p_values'].values())
    replayed = tmp_path / 'replay.json'
    bench.load('practice-replay').main([
        '--practice', str(tmp_path / 'runs' / name / 'shuffled' / 'practice'),
        '--episodes', '2', '--eval-episodes', '1', '--max-ticks', '10', '--stations', '1',
        '--out', str(tmp_path / 'replay'), '--results', str(replayed), '--set',
        'updates_per_iteration=2'])
    bench.load('practice-replay').main([
        '--practice', str(tmp_path / 'runs' / name / 'shuffled' / 'practice'),
        '--objective', 'reinforce', '--cases', 'real', '--episodes', '2',
        '--eval-episodes', '1', '--max-ticks', '10', '--stations', '1',
        '--out', str(tmp_path / 'replay'), '--results', str(replayed), '--set',
        'sampler=chunk_quantile', 'updates_per_iteration=2', 'batch_size=2'])
    fitted, reinforced = read(replayed).values()
    assert fitted['episodes'] == 2 and fitted['real']['greedy']['trials'] == 1
    assert set(fitted['p_values']) == {'real_beats_start', 'shuffled_beats_start',
                                       'real_beats_shuffled'}
    assert reinforced['settings']['objective'] == 'reinforce' and 'shuffled' not in reinforced
    assert set(reinforced['p_values']) == {'real_beats_start'}
    assert reinforced['real']['fit']['updates'] == 2 and reinforced['real']['fit']['kl'] >= 0


def test_the_results_page_plots_draw_from_the_recorded_results(tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(ROOT)  # as `python -m benchmarks.plot_results` from the checkout
    from benchmarks import plot_results
    plot_results.main(['--out', str(tmp_path)])
    assert sorted(os.listdir(tmp_path)) == ['success_vs_demonstrations.png',
                                            'success_vs_practice.png']
    plot_results.main(['--results', str(tmp_path / 'none'), '--out', str(tmp_path / 'empty')])
    assert capsys.readouterr().out.count('run its benchmark first') == 2


def test_stage1_ablation_tiny(tmp_path, monkeypatch):
    sim_stand_in.install(monkeypatch)
    results = tmp_path / 'ablation.json'
    bench.load('stage1-ablation').main([
        '--variants', 'recipe', '--demos', str(tmp_path / 'demos'), '--k', '2', '--steps', '1',
        '--episodes', '1', '--max-ticks', '3', '--threads', '1', '--out', str(tmp_path / 'runs'),
        '--results', str(results)])
    found = read(results)
    assert (found['task'], found['k'], found['steps'], found['episodes'], found['max_ticks']) == (
        'transfer_cube', 2, 1, 1, 3)
    (row,) = found['rows']
    assert row['variant'] == 'recipe' and row['sim_success']['trials'] == 1


@pytest.mark.graph
def test_foundation_tiny(tmp_path):
    results = tmp_path / 'foundation.json'
    bench.load('foundation').main(['--seconds', '1', '--ticks', '1', '--renders', '1',
                                   '--messages', '2', '--camera-sizes', '24x32',
                                   '--results', str(results)])
    found = read(results)
    assert [run['task'] for run in found['sim']] == ['transfer_cube', 'insertion']
    assert found['sim_480x640']['size'] == [480, 640]
    assert [run['messages'] for run in found['recorder']] == [2, 2]
    (cameras,) = found['cameras']
    assert cameras['size'] == [24, 32] and set(cameras['frames']) == {
        'cam_high', 'cam_low', 'cam_left_wrist', 'cam_right_wrist'}


@pytest.mark.graph
def test_graph_starts_tiny(tmp_path):
    from model_factory import tiny_model_dir
    model, _, _ = tiny_model_dir(tmp_path / 'model')
    results = tmp_path / 'starts.json'
    bench.load('graph-starts').main(['--model', model, '--starts', '1', '--wait-s', '120',
                                     '--out', str(tmp_path / 'runs'), '--results', str(results)])
    found = read(results)
    assert found['starts'] == 1 and len(found['seconds_to_first_episode']) == 1
    assert found['stalled'] in (0, 1)


def test_expert_noise_tiny(tmp_path):
    results = tmp_path / 'noise.json'
    argv = ['--noise', '0', '0.3', '--scenes', '2', '--results', str(results)]
    bench.load('expert-noise').main(['--task', 'insertion', *argv])
    bench.load('expert-noise').main(['--task', 'transfer_cube', *argv])
    found = read(results)
    assert set(found) == {'insertion', 'transfer_cube'}
    clean, wild = found['insertion']['levels']
    # The clean expert inserts; 0.3 rad of noise on every arm joint cannot.
    assert clean['success']['successes'] == 2 and wild['success']['successes'] == 0
    assert clean['held_at_end'] == 2 and wild['noise_std_rad'] == 0.3


def test_a_row_that_cannot_be_written_loses_no_row_already_measured(tmp_path, monkeypatch):
    from argparse import Namespace

    import benchmarks
    monkeypatch.setattr(benchmarks, 'machine', lambda: {'host': 'test'})
    path = str(tmp_path / 'result.json')
    benchmarks.save_row(path, 'first', {'greedy': 62}, Namespace(seed=0, results=path))
    with pytest.raises(TypeError):
        benchmarks.save_row(path, 'second', {'greedy': object()}, Namespace(seed=1, results=path))
    with open(path) as stream:
        rows = json.load(stream)
    assert list(rows) == ['first'] and rows['first']['greedy'] == 62
    assert rows['first']['settings'] == {'seed': 0} and os.listdir(tmp_path) == ['result.json']
