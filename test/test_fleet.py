"""A simulated fleet: stations practise, a learner learns, a dead station costs one episode.

Real stations (processes running the robot's cores around MuJoCo and the shipped model), kept
short (30-tick episodes, iterations of a few dozen decisions) so the whole file runs in about a
minute on two cores. No test here asserts a success rate or a duration.
"""

import json
import os
import shutil
import signal

import pytest

from selfimprove_ros.bag.episode_metadata import read_episode_file
from selfimprove_ros.cli.evaluate import sim_runtime_specs
from selfimprove_ros.cli.main import main
from selfimprove_ros.data.episode_labelling import read_labels
from selfimprove_ros.data.episode_loader import find_bags
from selfimprove_ros.fleet.fleet import start_fleet
from selfimprove_ros.fleet.practice import evaluate_on_fleet, Tally

SHIPPED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'models',
                       'transfer_cube')
MAX_TICKS = 30


def worker_args() -> dict:
    specs = sim_runtime_specs('transfer_cube', ['cam_high'], SHIPPED, SHIPPED, 'aloha1',
                              MAX_TICKS, 1.0)
    return {'specs': specs, 'robot': 'aloha1', 'reward_model_dir': SHIPPED}


def practise(out, episodes):
    return main(['practice', '--model', SHIPPED, '--stations', '2', '--episodes',
                 str(episodes), '--max-ticks', str(MAX_TICKS), '--objective', 'reinforce',
                 '--updates', '1', '--batch', '16', '--out', str(out)])


def test_the_tally_puts_the_simulators_verdict_beside_each_detection():
    tally = Tally()
    for outcome, sim_success in (('success', True), ('success', False), ('success', None),
                                 ('timeout', True), ('timeout', False), ('fault', None)):
        tally.add({'version': 'v1', 'outcome': outcome, 'sim_success': sim_success,
                   'phases': {'episode': 1.0}})
    assert tally.versions['v1'] == {'episodes': 6, 'sim_successes': 2, 'detected_successes': 3,
                                    'false_detections': 1, 'faults': 1}
    assert tally.describe('v1') == 'sim 2/6, detected 3/6 (1 false)'


def test_practice_learns_swaps_versions_into_every_station_and_resumes(tmp_path, capsys):
    out = tmp_path / 'practice'
    assert practise(out, 8) == 0
    summary = json.loads((out / 'practice.json').read_text())
    versions = [entry['version'] for entry in summary['versions_history']]
    assert summary['episodes'] == 8 and len(versions) >= 2, summary
    bags = find_bags(str(out / 'practice'))
    labels = [read_labels(bag) for bag in bags]
    assert len(bags) == 8 and all(label.decision.sum() > 0 for label in labels)
    # Every new version was practised by the stations, and trained on its parent's episodes.
    practised = {label.policy_version for label in labels}
    assert set(versions[1:-1]) <= practised and versions[0] in practised
    consumed = json.loads((out / 'improve' / 'state.json').read_text())['consumed']
    by_id = {label.episode_id: label.policy_version for label in labels}
    assert consumed and all(by_id[episode] != versions[-1] for episode in consumed)
    # Run again with a larger budget: it resumes (same learner state, bags counted).
    assert practise(out, 11) == 0
    again = json.loads((out / 'practice.json').read_text())
    assert again['episodes'] == 11 and again['practised_now'] == 3
    assert [entry['version'] for entry in again['versions_history']][:len(versions)] == versions
    assert len(find_bags(str(out / 'practice'))) == 11


def test_a_station_that_dies_costs_its_episode_and_the_fleet_goes_on(tmp_path):
    lines = []
    fleet = start_fleet(worker_args(), 2, log=lines.append)
    try:
        fleet.take_model(SHIPPED)
        killed = []

        def kill_station_one(result):
            if not killed:
                os.kill(fleet.stations.pid(1), signal.SIGKILL)
                killed.append(result['episode_id'])
        jobs = iter({'seed': 80_000 + n, 'episode_id': f'job{n}', 'bag_root': str(tmp_path)}
                    for n in range(5))
        results = fleet.run(lambda: next(jobs, None), on_result=kill_station_one)
    finally:
        fleet.close()
    faults = [r for r in results if r['outcome'] == 'fault']
    assert len(results) == 5 and len(faults) == 1, results
    assert 'station 1 died' in faults[0]['cause'] and fleet.live == {0}
    assert any('goes on with 1 station' in line for line in lines), lines
    if faults[0]['bag']:  # it had begun recording: the bag says what happened
        meta = read_episode_file(faults[0]['bag'])
        assert meta.outcome == 'fault' and 'died' in meta.outcome_cause
    assert all(r['labelled'] for r in results if r is not faults[0])


def test_a_model_that_fails_verification_is_refused_by_every_station(tmp_path):
    broken = tmp_path / 'broken'
    shutil.copytree(SHIPPED, broken)
    with open(broken / 'policy.onnx', 'r+b') as stream:
        stream.seek(100)
        stream.write(b'\0' * 16)  # the manifest's sha256 no longer matches
    lines = []
    fleet = start_fleet(worker_args(), 2, log=lines.append)
    try:
        assert fleet.take_model(SHIPPED) == 'transfer_cube-stage1'
        with pytest.raises(RuntimeError, match='every station refused') as refused:
            fleet.take_model(str(broken))
        assert 'sha256' in str(refused.value)
        assert sum('refused' in line for line in lines) == 2
        results = evaluate_on_fleet(fleet, SHIPPED, [80_000], str(tmp_path / 'bags'),
                                    progress=False)
    finally:
        fleet.close()
    assert results[0]['version'] == 'transfer_cube-stage1' and results[0]['labelled']


@pytest.mark.parametrize('argv, message', [
    (['--stations', '0'], '--stations must be >= 1'),
    (['--episodes', '-1'], '--episodes must be >= 0'),
    (['--model', 'no/such/model'], 'manifest.json is missing'),
])
def test_practice_refuses_bad_arguments_in_one_line(argv, message, capsys, tmp_path):
    args = ['practice', '--model', SHIPPED, '--out', str(tmp_path)] + argv
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_eval_on_stations_reports_like_the_graph(tmp_path):
    out = tmp_path / 'eval'
    assert main(['eval', '--model', SHIPPED, '--episodes', '3', '--stations', '2',
                 '--max-ticks', str(MAX_TICKS), '--out', str(out)]) == 0
    report = json.loads((out / 'eval.json').read_text())
    assert report['sim_success']['trials'] == 3 and len(report['episodes']) == 3


def test_stations_run_as_ray_actors_on_a_local_instance(tmp_path):
    pytest.importorskip('ray')
    fleet = start_fleet(worker_args(), 2, ray_address='local', log=lambda *_: None)
    try:
        results = evaluate_on_fleet(fleet, SHIPPED, range(80_000, 80_004), str(tmp_path),
                                    progress=False)
    finally:
        fleet.close()
    assert len(results) == 4 and all(r['labelled'] for r in results), results
    assert {r['version'] for r in results} == {'transfer_cube-stage1'}


def test_a_killed_practice_run_loses_at_most_its_running_episodes_and_resumes(tmp_path):
    import subprocess
    import sys
    import time

    import psutil
    out = tmp_path / 'killed'
    command = [sys.executable, '-m', 'selfimprove_ros.cli.main', 'practice', '--model', SHIPPED,
               '--stations', '2', '--episodes', '40', '--max-ticks', str(MAX_TICKS),
               '--objective', 'reinforce', '--updates', '1', '--batch', '16', '--out', str(out)]
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bags = out / 'practice'
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and run.poll() is None and \
            (not bags.is_dir() or len(list(bags.iterdir())) < 6):
        time.sleep(0.2)
    stations = psutil.Process(run.pid).children(recursive=True)
    run.kill()
    run.wait()
    assert len(stations) >= 2
    _, alive = psutil.wait_procs(stations, timeout=30)
    assert not alive, 'stations outlived the killed fleet'
    left = len(list(bags.iterdir()))
    assert 6 <= left < 40
    assert practise(out, 40) == 0
    metas = [read_episode_file(str(path)) for path in bags.iterdir()]
    assert len(metas) == 40 and all(meta.is_final for meta in metas)
    faults = [meta for meta in metas if meta.outcome == 'fault']
    assert len(faults) <= 2 and all('stopped' in meta.outcome_cause for meta in faults)
