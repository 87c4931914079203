"""recover_bag: a SIGKILLed recorder loses at most ~1 s and its bag becomes valid again."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from mcap.reader import make_reader
from rosbags.highlevel import AnyReader
from rosbags.typesys import get_typestore, Stores

from bag_factory import crashed_copy
from selfimprove_ros.bag.episode_bag import EpisodeBagWriter
from selfimprove_ros.bag.episode_metadata import EpisodeMetadata, read_episode_file
from selfimprove_ros.bag.inspection import check_bag
from selfimprove_ros.bag.recovery import recover_bag

REPO = Path(__file__).resolve().parents[1]
TS = get_typestore(Stores.ROS2_HUMBLE)
STRING = 'std_msgs/msg/String'

# The child records like the ROS node would, at steady rates, and prints one line per
# message it handed to the writer: "<topic> <seq> <log_time_ns>".
CHILD = textwrap.dedent('''
    import sys, time
    import numpy as np
    from rosbags.typesys import get_typestore, Stores
    from selfimprove_ros.bag.episode_bag import EpisodeBagWriter
    from selfimprove_ros.bag.episode_metadata import EpisodeMetadata
    ts = get_typestore(Stores.ROS2_HUMBLE)
    String, Joints, Image = (ts.types[t] for t in (
        'std_msgs/msg/String', 'sensor_msgs/msg/JointState', 'sensor_msgs/msg/Image'))
    Header, Time = ts.types['std_msgs/msg/Header'], ts.types['builtin_interfaces/msg/Time']
    writer = EpisodeBagWriter(sys.argv[1], EpisodeMetadata(robot='aloha', task='crash',
                                                           episode_id='killed'))
    writer.add_topic('/chatter', 'std_msgs/msg/String')
    writer.add_topic('/joint_states', 'sensor_msgs/msg/JointState')
    writer.add_topic('/cam/image_raw', 'sensor_msgs/msg/Image')
    print('PATH', writer.path, flush=True)
    pixels = np.zeros(240 * 320 * 3, dtype=np.uint8)
    for i in range(100000):
        now = time.time_ns()
        header = Header(stamp=Time(sec=i, nanosec=0), frame_id='x')
        out = [('/chatter', ts.serialize_cdr(String(data=str(i)), 'std_msgs/msg/String')),
               ('/joint_states', ts.serialize_cdr(Joints(
                   header=header, name=['a'], position=np.array([float(i)]),
                   velocity=np.zeros(0), effort=np.zeros(0)), 'sensor_msgs/msg/JointState'))]
        if i % 25 == 0:  # slow enough that only time, not size, closes chunks
            out.append(('/cam/image_raw', ts.serialize_cdr(Image(
                header=header, height=240, width=320, encoding='rgb8', is_bigendian=0,
                step=960, data=pixels), 'sensor_msgs/msg/Image')))
        for topic, data in out:
            writer.write(topic, data, now)
            print(topic, i, now, flush=True)
        time.sleep(0.02)
''')


def run_and_kill(root, seconds=2.5):
    """Run the recording child, SIGKILL it; return (bag path, written [(topic, seq, t)], kill)."""
    env = dict(os.environ, PYTHONPATH=f'{REPO}{os.pathsep}{os.environ.get("PYTHONPATH", "")}')
    child = subprocess.Popen([sys.executable, '-c', CHILD, str(root)], env=env,
                             stdout=subprocess.PIPE, text=True)
    path = child.stdout.readline().split()[1]
    time.sleep(seconds)
    kill_ns = time.time_ns()
    child.send_signal(signal.SIGKILL)
    out, _ = child.communicate(timeout=30)
    written = [(t, int(s), int(n)) for t, s, n in (line.split() for line in out.splitlines()
                                                   if line.count(' ') == 2)]
    return path, written, kill_ns


def read_all(path):
    """Return [(topic, seq, log_time)] from the mcap reader, checking rosbags agrees."""
    mcap = [f for f in os.listdir(path) if f.endswith('.mcap')][0]
    with open(os.path.join(path, mcap), 'rb') as stream:
        got = [(c.topic, m.data, m.log_time) for _, c, m in make_reader(stream).iter_messages()]
    with AnyReader([Path(path)], default_typestore=TS) as reader:
        assert sum(c.msgcount for c in reader.connections) == len(got)
        seqs = [(c.topic, _seq(reader.deserialize(raw, c.msgtype)), t)
                for c, t, raw in reader.messages()]
    return seqs


def _seq(msg):
    return int(msg.data) if hasattr(msg, 'data') and isinstance(msg.data, str) \
        else msg.header.stamp.sec


def test_sigkill_loses_at_most_a_second(tmp_path):
    path, written, kill_ns = run_and_kill(tmp_path)
    assert len(written) > 100, 'the child wrote too little to judge'
    assert 'metadata.yaml' not in os.listdir(path)
    damaged_bytes = open(next(Path(path).glob('*.mcap')), 'rb').read()

    report = recover_bag(path)

    assert report.status == 'recovered' and report.messages > 0
    recovered = read_all(path)
    # What survives is exactly the oldest messages, in order: no holes, no inventions.
    assert recovered == written[:len(recovered)]
    lost = written[len(recovered):]
    assert all(t > kill_ns - 1_000_000_000 for _, _, t in lost), (
        f'lost {len(lost)} messages, oldest {(kill_ns - lost[0][2]) / 1e9:.2f} s before kill')
    assert open(report.damaged_path, 'rb').read() == damaged_bytes  # original kept as is
    episode = read_episode_file(path)
    assert episode.outcome == 'unknown'
    assert episode.outcome_cause == f'recorder crashed; recovered {len(recovered)} messages'
    with open(os.path.join(path, 'metadata.yaml')) as stream:
        info = yaml.safe_load(stream)['rosbag2_bagfile_information']
    assert info['message_count'] == len(recovered)


def test_recovery_is_idempotent(tmp_path):
    path, _, _ = run_and_kill(tmp_path, seconds=1.0)
    first = recover_bag(path)
    snapshot = {f: open(os.path.join(path, f), 'rb').read() for f in os.listdir(path)}
    second = recover_bag(path)
    assert (first.status, second.status) == ('recovered', 'healthy')
    assert {f: open(os.path.join(path, f), 'rb').read() for f in os.listdir(path)} == snapshot


def write_bag(root, n=50, finish=True, flush_every=10):
    writer = EpisodeBagWriter(str(root), EpisodeMetadata(robot='r', task='t'), max_chunk_s=60)
    writer.add_topic('/chatter', STRING)
    for i in range(n):
        data = TS.serialize_cdr(TS.types[STRING](data=str(i)), STRING)
        writer.write('/chatter', data, 1_000 + i)
        if (i + 1) % flush_every == 0:
            writer.flush()
    if finish:
        writer.finish('success')
    return writer


def test_healthy_bag_is_left_untouched(tmp_path):
    path = write_bag(tmp_path).path
    snapshot = {f: os.stat(os.path.join(path, f)).st_mtime_ns for f in os.listdir(path)}
    report = recover_bag(path)
    assert report.status == 'healthy' and report.messages == 50
    assert {f: os.stat(os.path.join(path, f)).st_mtime_ns for f in os.listdir(path)} == snapshot


def test_cut_anywhere_recovers_the_complete_chunks(tmp_path):
    writer = write_bag(tmp_path / 'live', n=50, finish=False, flush_every=10)
    size = os.path.getsize(os.path.join(writer.path, writer.file_name))
    counts = []
    for cut in range(0, size + 1, max(size // 40, 1)):
        report = recover_bag(crashed_copy(writer, tmp_path / f'cut{cut}', cut))
        counts.append(report.messages)
        assert report.messages % 10 == 0  # whole chunks only, never a partial one
    assert counts == sorted(counts) and counts[-1] == 50 and counts[0] == 0
    garbage = crashed_copy(writer, tmp_path / 'garbage', size)
    with open(os.path.join(garbage, writer.file_name), 'ab') as out:
        out.write(os.urandom(5000))
    assert recover_bag(garbage).messages == 50
    writer.finish('success')


def test_a_success_cut_before_its_closing_records_becomes_unknown(tmp_path):
    # episode.yaml says success, but the recording ends before the writer's closing records:
    # nothing shows the episode ran to that end, so it must never be cloned as a success.
    writer = write_bag(tmp_path / 'live', n=20, finish=False)
    bag = crashed_copy(writer, tmp_path / 'crash', 10**9)
    done = read_episode_file(bag).replace(outcome='success', end_time_ns=time.time_ns())
    with open(os.path.join(bag, 'episode.yaml'), 'w') as stream:
        yaml.safe_dump(done.to_dict(), stream)
    report = recover_bag(bag)
    assert report.outcome == 'unknown' and report.messages == 20
    assert read_episode_file(bag).outcome == 'unknown'
    assert 'recorded as success' in read_episode_file(bag).outcome_cause
    writer.finish('success')


def test_a_success_whose_closing_records_survived_is_kept(tmp_path):
    path = write_bag(tmp_path / 'done', n=20).path
    mcap = next(Path(path).glob('*.mcap'))
    mcap.write_bytes(mcap.read_bytes()[:-37])  # footer and closing magic lost, records intact
    report = recover_bag(path)
    assert report.status == 'recovered' and report.outcome == 'success'
    assert read_episode_file(path).outcome == 'success'


def test_missing_metadata_is_rebuilt_without_touching_data(tmp_path):
    path = write_bag(tmp_path).path
    with open(os.path.join(path, 'metadata.yaml')) as stream:
        original = yaml.safe_load(stream)
    os.remove(os.path.join(path, 'metadata.yaml'))
    mcap = next(Path(path).glob('*.mcap'))
    data = mcap.read_bytes()
    report = recover_bag(path)
    assert report.status == 'repaired' and mcap.read_bytes() == data
    with open(os.path.join(path, 'metadata.yaml')) as stream:
        assert yaml.safe_load(stream) == original


@pytest.mark.parametrize('garbage', ['{not: [yaml', 'just a string\n', '\xff\xfe'])
def test_garbage_metadata_is_named_by_check_and_rebuilt_by_recover(tmp_path, garbage):
    path = write_bag(tmp_path).path
    with open(os.path.join(path, 'metadata.yaml')) as stream:
        original = yaml.safe_load(stream)
    with open(os.path.join(path, 'metadata.yaml'), 'w', encoding='latin-1') as stream:
        stream.write(garbage)
    (problem,) = [p for p in check_bag(path) if p.severity == 'error']
    assert os.path.join(path, 'metadata.yaml') in str(problem) and 'bag recover' in str(problem)
    assert len(str(problem).splitlines()) == 1
    report = recover_bag(path)
    assert report.status == 'repaired'
    assert any('metadata.yaml.damaged' in note for note in report.notes)
    with open(os.path.join(path, 'metadata.yaml')) as stream:
        assert yaml.safe_load(stream) == original
    assert not [p for p in check_bag(path) if p.severity == 'error']


def test_refuses_a_bag_that_is_still_recording(tmp_path):
    writer = write_bag(tmp_path, finish=False)
    with pytest.raises(RuntimeError, match='still held open by a running recorder'):
        recover_bag(writer.path)
    writer.finish('success')


def test_interrupted_recovery_resumes_from_the_damaged_original(tmp_path):
    writer = write_bag(tmp_path / 'live', n=30, finish=False)
    bag = crashed_copy(writer, tmp_path / 'crash', 10**9)
    mcap = os.path.join(bag, writer.file_name)
    os.rename(mcap, mcap + '.damaged')  # crash between recovery's two renames
    with open(mcap + '.recovering', 'wb') as out:
        out.write(b'half written')
    report = recover_bag(bag)
    assert report.messages == 30 and report.damaged_path == mcap + '.damaged'
    assert len(read_all(bag)) == 30 and not os.path.exists(mcap + '.recovering')
    writer.finish('success')
