"""The fault matrix: inject each fault into the real code and processes, record what held.

Each row injects one fault (a killed or stopped process, a full disk, a bad model or manifest
pushed to the loader the policy node uses, stale or wrongly encoded camera input, NaN and huge
commands, cut and garbage bags among training data, bad command-line values) and records
whether the system held (refused, recovered, ended the episode as a fault, kept the rest), the
seconds of data lost where that applies, the exit code and the message a user sees.

    selfimprove bench faults            # the fast rows (about a minute)
    selfimprove bench faults --graph    # plus policy_node SIGKILL and SIGSTOP in a live sim graph

Writes benchmarks/results/faults.json and the table in docs/reliability.md (between its
markers). Measurements, not tests: the fast rows are also tests (test/test_*.py name them).
"""

import argparse
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
RESULTS = os.path.join(ROOT, 'benchmarks', 'results', 'faults.json')
REPORT = os.path.join(ROOT, 'docs', 'reliability.md')
BEGIN, END = '<!-- faults table: begin -->', '<!-- faults table: end -->'


def row(fault, held, what, lost_s=None, exit_code=None, message=''):
    """One line of the table."""
    first = str(message).strip().splitlines()[0] if str(message).strip() else ''
    return {'fault': fault, 'held': bool(held), 'what_held': what, 'lost_s': lost_s,
            'exit_code': exit_code, 'message': first[:240]}


# Processes -------------------------------------------------------------------------------------
RECORDING_CHILD = textwrap.dedent('''
    import sys, time
    from rosbags.typesys import get_typestore, Stores
    from selfimprove_ros.bag.episode_bag import EpisodeBagWriter
    from selfimprove_ros.bag.episode_metadata import EpisodeMetadata
    ts = get_typestore(Stores.ROS2_HUMBLE)
    writer = EpisodeBagWriter(sys.argv[1], EpisodeMetadata(robot='aloha', task='crash'))
    writer.add_topic('/chatter', 'std_msgs/msg/String')
    print('PATH', writer.path, flush=True)
    for i in range(100000):
        now = time.time_ns()
        writer.write('/chatter', ts.serialize_cdr(ts.types['std_msgs/msg/String'](data=str(i)),
                                                  'std_msgs/msg/String'), now)
        print(i, now, flush=True)
        time.sleep(0.02)
''')


def recorder_sigkill(work):
    """SIGKILL a recording process after 2 s; recover the bag; how much was lost?"""
    from selfimprove_ros.bag.recovery import recover_bag
    child = subprocess.Popen([sys.executable, '-c', RECORDING_CHILD, work],
                             env=dict(os.environ, PYTHONPATH=ROOT), stdout=subprocess.PIPE,
                             text=True)
    path = child.stdout.readline().split()[1]
    time.sleep(2.0)
    kill_ns = time.time_ns()
    child.send_signal(signal.SIGKILL)
    out, _ = child.communicate(timeout=30)
    written = [int(line.split()[1]) for line in out.splitlines() if line.count(' ') == 1]
    report = recover_bag(path)
    kept = written[:report.messages]
    lost_s = (kill_ns - kept[-1]) / 1e9 if kept else None
    return row('recorder SIGKILL mid-episode', report.messages > 0 and lost_s < 1.0,
               f'`bag recover` kept {report.messages} of {len(written)} messages; outcome '
               f'{report.outcome}', lost_s, message=report.stop_reason)


def recorder_disk_full(work):
    """The disk fills during an episode: only that episode ends, as a fault; the next records."""
    from selfimprove_ros.bag.episode_bag import EpisodeBagWriter
    from selfimprove_ros.bag.episode_recorder import EpisodeRecorder
    from selfimprove_ros.bag.inspection import check_bag
    from selfimprove_ros.bag.recorder_config import RecorderConfig
    from selfimprove_ros.episode.events import make_event
    disk = {'full': False}

    class Disk(EpisodeBagWriter):
        def __init__(self, *args, **kwargs):
            if disk['full']:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            super().__init__(*args, **kwargs)

        def write(self, *args, **kwargs):
            if disk['full']:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            super().write(*args, **kwargs)

    events = []
    recorder = EpisodeRecorder(RecorderConfig(bag_dir=work), 'aloha1',
                               [('/aloha1/chatter', 'std_msgs/msg/String', None)],
                               lambda text: events.append(json.loads(text)), _Quiet(), Disk)
    data = b'\x00\x01\x00\x00\x02\x00\x00\x00x\x00'
    for name, full_at in (('first', None), ('full', 5), ('after', None)):
        recorder.on_event(make_event('start', episode_id=name, robot='aloha1', task='t'), 0)
        for i in range(10):
            disk['full'] = i == full_at or (disk['full'] and name == 'full')
            recorder.on_message('/aloha1/chatter', data, i * 10**8)
        disk['full'] = False
        recorder.on_event(make_event('end', episode_id=name, outcome='success'), 10**9)
    kinds = {e['episode_id']: [x['event'] for x in events if x['episode_id'] == e['episode_id']]
             for e in events}
    first = next(e['path'] for e in events if e['event'] == 'saved')
    intact = not [p for p in check_bag(first) if p.severity == 'error']
    cause = next((e['cause'] for e in events if e['event'] == 'refused'), '')
    held = intact and kinds['full'] == ['recording', 'refused'] and \
        kinds['after'] == ['recording', 'saved']
    return row('disk full while recording', held, 'the episode ended as a fault (`refused`), '
               'earlier bag intact, the next episode recorded', message=cause)


TINY_SFT = ['sft.steps=400', 'sft.batch_size=8', 'sft.checkpoint_every=20', 'sft.eval_every=1000',
            'sft.torch_threads=1', 'sft.device=cpu', 'sft.model.cameras=[cam_high]',
            'sft.model.image_height=24', 'sft.model.image_width=32', 'sft.model.hidden_dim=32',
            'sft.model.chunk_length=2', 'sft.model.action_bins=16', 'dataset.cache_dir=""']


def trainer_sigkill(work):
    """SIGKILL `selfimprove train sft` after its first checkpoint; resume it to the end."""
    from selfimprove_ros.training.checkpoint import load_checkpoint
    bags = os.path.join(work, 'bags')
    for name in ('a', 'b', 'c'):
        _demonstration(work, bags, name)
    run_dir = os.path.join(work, 'run')
    command = [sys.executable, '-m', 'selfimprove_ros.cli.main', 'train', 'sft', '--bags', bags,
               '--out', run_dir, '--set', *TINY_SFT]
    env = dict(os.environ, OMP_NUM_THREADS='1')
    job = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    last = os.path.join(run_dir, 'checkpoints', 'last.pt')
    deadline = time.monotonic() + 300
    while not os.path.exists(last) and time.monotonic() < deadline and job.poll() is None:
        time.sleep(0.1)
    time.sleep(1.0)
    job.send_signal(signal.SIGKILL)
    job.wait()
    killed_at = load_checkpoint(last)['step']
    resumed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=900)
    final = load_checkpoint(last)['step']
    return row('trainer (train sft) SIGKILL mid-run', resumed.returncode == 0 and final == 400,
               f'resumed from step {killed_at} (last.pt every 20 steps or 60 s) to {final}',
               exit_code=resumed.returncode,
               message=next((line for line in resumed.stdout.splitlines()
                             if 'resuming' in line), ''))


def recorder_sigstop(work):
    """SIGSTOP a recording process for 2 s, then SIGCONT: it goes on, nothing is lost."""
    child = subprocess.Popen([sys.executable, '-c', RECORDING_CHILD, work],
                             env=dict(os.environ, PYTHONPATH=ROOT), stdout=subprocess.PIPE,
                             text=True)
    child.stdout.readline()
    time.sleep(1.0)
    child.send_signal(signal.SIGSTOP)
    time.sleep(2.0)
    child.send_signal(signal.SIGCONT)
    time.sleep(1.0)
    alive = child.poll() is None
    child.send_signal(signal.SIGTERM)
    out, _ = child.communicate(timeout=30)
    stamps = [int(line.split()[1]) for line in out.splitlines() if line.count(' ') == 1]
    gap_s = max(np.diff(stamps)) / 1e9 if len(stamps) > 1 else None
    return row('recording process SIGSTOP 2 s', alive and gap_s is not None,
               f'it resumed and kept writing the same bag (a {gap_s:.1f} s pause); in a graph '
               'what others published meanwhile waits in its queue (queue_depth 100)'
               if gap_s else 'no output', lost_s=None)


class _Quiet:
    def info(self, *_):
        pass

    warning = error = info


def graph_rows(work):
    """policy_node SIGKILL and SIGSTOP while `selfimprove eval` runs the shipped model."""
    rows = []
    for fault, action in (('policy_node SIGKILL during eval', 'kill'),
                          ('policy_node SIGSTOP 3 s during eval', 'stop')):
        out = os.path.join(work, action)
        command = [sys.executable, '-m', 'selfimprove_ros.cli.main', 'eval', '--model',
                   os.path.join(ROOT, 'models', 'transfer_cube'), '--episodes', '4',
                   '--seed', '90000', '--out', out]
        started = time.monotonic()
        proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        pid = _wait_for_node('policy_node', out, 90.0)
        _wait_for_bag(os.path.join(out, 'bags'), 120.0)
        time.sleep(2.0)  # into that episode
        if pid:
            os.kill(pid, signal.SIGKILL if action == 'kill' else signal.SIGSTOP)
            if action == 'stop':
                time.sleep(3.0)
                os.kill(pid, signal.SIGCONT)
        text, _ = proc.communicate(timeout=900)
        faults = _fault_causes(os.path.join(out, 'bags'))
        # Killed: the episode must end as a fault naming the node. Stopped: the guard holds the
        # arms meanwhile and the run goes on; whether that episode counts is the manager's
        # fault_grace_ticks, but every bag must stay whole.
        whole = _bags_whole(os.path.join(out, 'bags'))
        held = proc.returncode == 0 and whole and (bool(faults) or action == 'stop')
        rows.append(row(fault, held,
                        f'{len(faults)} episode(s) ended as faults, every bag whole: {whole}, '
                        f'eval finished in {time.monotonic() - started:.0f} s',
                        exit_code=proc.returncode,
                        message=faults[0] if faults else next(
                            (line for line in text.splitlines()
                             if 'simulator success' in line and '/' in line), '')))
    return rows


def _wait_for_node(name, out, timeout_s):
    import psutil
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for proc in psutil.process_iter(['pid', 'cmdline']):
            line = ' '.join(proc.info['cmdline'] or [])
            if f'__node:={name}' in line or (name in line and out in line):
                return proc.info['pid']
        time.sleep(0.5)
    return None


def _wait_for_bag(bag_dir, timeout_s):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if os.path.isdir(bag_dir) and os.listdir(bag_dir):
            return True
        time.sleep(0.2)
    return False


def _bags_whole(bag_dir):
    """Tell whether every bag is complete and readable (gaps are the fault's, not damage)."""
    from selfimprove_ros.bag.inspection import check_bag
    broken = ('unreadable', 'truncated', 'recording', 'missing_metadata', 'episode_running',
              'count_mismatch', 'bad_episode')
    return all(not [p for p in check_bag(os.path.join(bag_dir, name)) if p.kind in broken]
               for name in os.listdir(bag_dir)) if os.path.isdir(bag_dir) else False


def _fault_causes(bag_dir):
    import yaml
    causes = []
    for name in sorted(os.listdir(bag_dir)) if os.path.isdir(bag_dir) else ():
        try:
            with open(os.path.join(bag_dir, name, 'episode.yaml')) as stream:
                meta = yaml.safe_load(stream) or {}
        except OSError:
            continue
        if meta.get('outcome') == 'fault':
            causes.append(str(meta.get('outcome_cause', '')))
    return causes


# Models pushed to the policy node's loader ------------------------------------------------------
def model_rows(work):
    """Each bad model through load_model, the check chain policy_node runs before a swap."""
    from selfimprove_ros.model.manifest import seal_model_dir, sha256_of, sign_model_dir
    from selfimprove_ros.runtime.onnx_model import load_model, ModelRejected
    source = os.path.join(ROOT, 'models', 'transfer_cube')
    roots = [os.path.join(work, 'models')]
    cameras = ['cam_high']

    def copy(name):
        path = os.path.join(work, 'models', name)
        shutil.copytree(source, path)
        return path

    def reseal(path, name='policy.onnx'):
        manifest_path = os.path.join(path, 'manifest.json')
        with open(manifest_path) as stream:
            manifest = json.load(stream)
        manifest['files'][name]['sha256'] = sha256_of(os.path.join(path, name))
        with open(manifest_path, 'w') as stream:
            json.dump(manifest, stream)
        seal_model_dir(path)

    def flipped(path):
        with open(os.path.join(path, 'policy.onnx'), 'r+b') as stream:
            stream.seek(4096)
            byte = stream.read(1)
            stream.seek(4096)
            stream.write(bytes([byte[0] ^ 0xFF]))

    def random_bytes(path):
        with open(os.path.join(path, 'policy.onnx'), 'wb') as stream:
            stream.write(os.urandom(4096))
        reseal(path)

    def cameras_edited(path):
        manifest_path = os.path.join(path, 'manifest.json')
        with open(manifest_path) as stream:
            text = stream.read()
        with open(manifest_path, 'w') as stream:
            stream.write(text.replace('"cam_high"', '"cam_left_wrist"'))

    cases = [('model with a flipped byte', flipped, {}),
             ('random bytes with a matching sha256 and seal', random_bytes, {}),
             ('manifest camera list edited', cameras_edited, {}),
             ('unsigned model on a robot with a station key', lambda p: None,
              {'key': b'station'}),
             ('model signed with another key', lambda p: sign_model_dir(p, b'other'),
              {'key': b'station'})]
    rows = []
    for index, (fault, damage, options) in enumerate(cases):
        path = copy(f'case{index}')
        damage(path)

        def attempt(path=path, options=options):
            return load_model(path, 'policy.onnx', cameras, 'cpu', roots=roots, **options)
        rows.append(_refused(fault, attempt, ModelRejected))
    foreign = os.path.join(work, 'elsewhere')
    shutil.copytree(source, foreign)
    rows.append(_refused('sound model announced from outside model_roots', lambda: load_model(
        foreign, 'policy.onnx', cameras, 'cpu', roots=roots), ModelRejected))
    return rows


def _refused(fault, attempt, error_type,
             what='refused before use; the live model keeps running'):
    try:
        attempt()
    except error_type as error:
        return row(fault, True, what, message=str(error))
    return row(fault, False, 'ACCEPTED', message='')


# Inputs and commands ---------------------------------------------------------------------------
def input_rows(work):
    """Stale camera, wrong encoding, NaN and huge commands."""
    import types

    from selfimprove_ros.core.safety import SafetyConfig, SafetyGuard
    from selfimprove_ros.data.images import image_to_rgb
    from selfimprove_ros.runtime.policy_config import PolicyConfig
    from selfimprove_ros.runtime.onnx_model import load_model
    from selfimprove_ros.runtime.policy_controller import PolicyController
    from selfimprove_ros.sim.aloha_sim import START_POSE
    rows = []
    model = load_model(os.path.join(ROOT, 'models', 'transfer_cube'), 'policy.onnx',
                       ['cam_high'], 'cpu')
    core = PolicyController(PolicyConfig(cameras=['cam_high']), _Quiet(), lambda f: f)
    core.on_loads([model])
    core.on_event({'event': 'start', 'episode_id': 'e', 'robot': 'r', 'task': 't'})
    core.on_event({'event': 'recording', 'episode_id': 'e', 'path': '/b'})
    core.on_joints(10**9, np.asarray(START_POSE))
    core.on_frame('cam_high', 10**9 - 300_000_000, np.zeros((96, 128, 3), np.uint8))
    out = core.tick(10**9)
    rows.append(row('camera frame 0.3 s old', out.timing['state'] == 'stale' and np.array_equal(
        out.command, np.asarray(START_POSE)), 'arm held where it is, tick reported stale',
        lost_s=None, message=out.timing['cause']))
    mono = types.SimpleNamespace(encoding='mono16', height=2, width=2, step=4, data=bytes(8))
    rows.append(_refused('camera publishing mono16', lambda: image_to_rgb(mono), ValueError,
                         'frame refused by name; the tick holds as stale'))
    guard = SafetyGuard(SafetyConfig(), 0.1)
    pose = np.asarray(START_POSE, dtype=np.float64)
    nan = pose.copy()
    nan[3] = np.nan
    reason = guard.submit(nan, 0.0)
    decision = guard.next_target(pose, 0.0)
    rows.append(row('NaN joint command', bool(reason) and decision.state.holding,
                    f'guard {decision.state.value}, arm held', message=reason))
    huge = pose + 1e6
    reason = guard.submit(huge, 0.1)
    rows.append(row('command 1e6 rad away', bool(reason), 'refused, arm held', message=reason))
    jump = pose.copy()
    jump[0] += 0.5
    guard.submit(jump, 0.2)
    decision = guard.next_target(pose, 0.2)
    step = float(np.abs(decision.target - pose).max())
    rows.append(row('a 0.5 rad jump in one tick', decision.state.value == 'clamped',
                    f'clamped to {step:.3f} rad this tick', message=decision.reason))
    return rows


# Training data ---------------------------------------------------------------------------------
def data_rows(work):
    """Cut, garbage and unfinished bags mixed into demonstrations."""
    from selfimprove_ros.data.dataset_config import DatasetConfig
    from selfimprove_ros.data.episode_loader import load_episodes
    bags = os.path.join(work, 'bags')
    good = _demonstration(work, bags, 'good')
    cut = _demonstration(work, bags, 'cut')
    mcap = next(f for f in os.listdir(cut) if f.endswith('.mcap'))
    with open(os.path.join(cut, mcap), 'r+b') as stream:
        stream.truncate(os.path.getsize(os.path.join(cut, mcap)) // 2)
    garbage = os.path.join(bags, 'garbage')
    os.makedirs(garbage)
    with open(os.path.join(garbage, 'metadata.yaml'), 'w') as stream:
        stream.write('{not: [yaml')
    config = DatasetConfig(cameras=['cam_high'], image_height=24, image_width=32, cache_dir='')
    episodes, skipped = load_episodes(bags, config, log=lambda *_: None)
    reasons = dict(skipped)
    loaded = [e.bag_path for e in episodes]
    return [row('a finished success cut in half', cut in reasons and cut not in loaded,
                'not cloned: its outcome is unknown', message=reasons.get(cut, '')),
            row('garbage metadata.yaml among the bags', garbage in reasons,
                'skipped by name; the others load', message=reasons.get(garbage, '')),
            row('good bag beside them', good in loaded, 'loaded', message='')]


def _demonstration(work, bags, name):
    import h5py

    from selfimprove_ros.data.act_hdf5 import import_act_episode
    source = os.path.join(work, f'{name}.hdf5')
    frames = 100
    qpos = np.linspace(0, 0.5, frames)[:, None] * np.ones(14)
    qpos[:, [6, 13]] = 0.5
    with h5py.File(source, 'w') as h5:
        h5['/observations/qpos'] = qpos
        h5['/action'] = qpos
        h5['/observations/images/cam_high'] = np.random.default_rng(0).integers(
            0, 255, (frames, 24, 32, 3), dtype=np.uint8)
    return import_act_episode(source, bags, task='transfer_cube')


# Command line ----------------------------------------------------------------------------------
def cli_rows(work):
    """Bad values on the command line: one line on stderr and exit 2, nothing created."""
    cases = [('train sft --set sft.steps=abc',
              ['train', 'sft', '--bags', work, '--out', f'{work}/sft', '--set', 'sft.steps=abc']),
             ('train improve --iterations -1',
              ['train', 'improve', '--bags', work, '--out', f'{work}/improve', '--iterations',
               '-1']),
             ('bag check /nonexistent', ['bag', 'check', '/nonexistent']),
             ('bag verdict --failed /nonexistent', ['bag', 'verdict', '--failed',
                                                    '/nonexistent']),
             ('eval --max-ticks -5', ['eval', '--model', 'models/transfer_cube',
                                      '--max-ticks', '-5']),
             ('train sft on a folder without bags',
              ['train', 'sft', '--bags', work, '--out', f'{work}/sft2'])]
    rows = []
    for fault, argv in cases:
        result = subprocess.run([sys.executable, '-m', 'selfimprove_ros.cli.main', *argv],
                                cwd=ROOT, capture_output=True, text=True, timeout=300)
        lines = result.stderr.strip().splitlines()
        rows.append(row(fault, result.returncode == 2 and len(lines) == 1,
                        'refused in one line before anything started', exit_code=result.returncode,
                        message=lines[-1] if lines else ''))
    return rows


def write_report(rows, path=REPORT):
    """Put the table between the markers of docs/reliability.md."""
    table = ['| fault | held | what held | data lost [s] | exit | message |',
             '|---|---|---|---|---|---|']
    for r in rows:
        lost = '' if r['lost_s'] is None else f'{r["lost_s"]:.2f}'
        code = '' if r['exit_code'] is None else str(r['exit_code'])
        message = r['message'].replace('|', '\\|')
        table.append(f'| {r["fault"]} | {"yes" if r["held"] else "**NO**"} | {r["what_held"]} '
                     f'| {lost} | {code} | {message} |')
    with open(path) as stream:
        text = stream.read()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    with open(path, 'w') as stream:
        stream.write(head + BEGIN + '\n' + '\n'.join(table) + '\n' + END + tail)


# The fast rows by group, in the order they run.
FAST_ROWS = {'recorder': recorder_sigkill, 'stopped': recorder_sigstop,
             'trainer': trainer_sigkill, 'disk': recorder_disk_full, 'models': model_rows,
             'inputs': input_rows, 'data': data_rows, 'cli': cli_rows}


def main(argv=None):
    """Run the matrix, print the table, save JSON and the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--graph', action='store_true',
                        help='also kill and stop policy_node in a live sim graph (minutes)')
    parser.add_argument('--results', default=RESULTS, help='where the JSON goes')
    parser.add_argument('--report', default=None,
                        help='markdown file whose faults table is rewritten (default '
                        'docs/reliability.md, unless --only makes the table partial)')
    parser.add_argument('--only', nargs='+', choices=list(FAST_ROWS), metavar='GROUP',
                        help='run only these groups of fast rows (default all: '
                        + ' '.join(FAST_ROWS) + ')')
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix='faults-') as work:
        for name, make in FAST_ROWS.items():
            if args.only and name not in args.only:
                continue
            folder = os.path.join(work, name)
            os.makedirs(folder)
            made = make(folder)
            rows += made if isinstance(made, list) else [made]
        if args.graph:
            rows += graph_rows(os.path.join(work))
        for r in rows:  # the report outlives the temporary directory
            r['message'] = r['message'].replace(work, '<tmp>')
    for r in rows:
        lost = '' if r['lost_s'] is None else f', {r["lost_s"]:.2f} s lost'
        print(f'{"held" if r["held"] else "BROKE":5s}  {r["fault"]}: {r["what_held"]}{lost}')
    os.makedirs(os.path.dirname(os.path.abspath(args.results)), exist_ok=True)
    with open(args.results, 'w') as stream:
        json.dump({'rows': rows, 'graph': args.graph, 'groups': args.only or list(FAST_ROWS),
                   'time': time.strftime('%Y-%m-%d %H:%M')}, stream, indent=1)
    # A partial run must not replace the whole table of docs/reliability.md by a few rows.
    report = args.report or (None if args.only else REPORT)
    if report and os.path.exists(report):
        write_report(rows, report)
    print(f'wrote {args.results}; {sum(r["held"] for r in rows)}/{len(rows)} held')
    return 0 if all(r['held'] for r in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
