"""bag_info and check_bag on good, crashed, gappy and malformed bags, ours and rosbag2's."""

import os
import shutil

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import get_typestore, Stores

from selfimprove_ros.bag.episode_bag import EpisodeBagWriter
from selfimprove_ros.bag.episode_metadata import EpisodeMetadata
from selfimprove_ros.bag.inspection import bag_info, check_bag
from selfimprove_ros.data.bag_messages import string_cdr

TS = get_typestore(Stores.ROS2_HUMBLE)
T0 = 1_700_000_000_000_000_000
MS = 1_000_000
STRING, JOINTS, IMAGE = 'std_msgs/msg/String', 'sensor_msgs/msg/JointState', \
    'sensor_msgs/msg/Image'


def header(i):
    return TS.types['std_msgs/msg/Header'](
        stamp=TS.types['builtin_interfaces/msg/Time'](sec=i, nanosec=0), frame_id='f')


def joints_cdr(i):
    return TS.serialize_cdr(TS.types[JOINTS](
        header=header(i), name=['a'], position=np.array([float(i)]), velocity=np.zeros(0),
        effort=np.zeros(0)), JOINTS).tobytes()


def image_cdr(i, encoding='rgb8', step=12, data_len=None, height=3, width=4):
    data = np.zeros(step * height if data_len is None else data_len, dtype=np.uint8)
    return TS.serialize_cdr(TS.types[IMAGE](
        header=header(i), height=height, width=width, encoding=encoding, is_bigendian=0,
        step=step, data=data), IMAGE).tobytes()


def start(root, extra_topics=()):
    writer = EpisodeBagWriter(str(root), EpisodeMetadata(robot='aloha', task='check'),
                              max_chunk_s=60)
    writer.add_topic('/chatter', STRING, {'reliability': 'reliable'})
    writer.add_topic('/joint_states', JOINTS)
    writer.add_topic('/cam/image_raw', IMAGE)
    for topic, msgtype in extra_topics:
        writer.add_topic(topic, msgtype)
    return writer


def write_steady(writer, seconds=2.0, skip=None, image=image_cdr):
    """Chatter and joints at 50 Hz, images at 10 Hz; joints silent during `skip` (s, s)."""
    for i in range(int(seconds * 50)):
        stamp = T0 + i * 20 * MS
        writer.write('/chatter', string_cdr(str(i)), stamp)
        if not (skip and skip[0] <= i / 50 < skip[1]):
            writer.write('/joint_states', joints_cdr(i), stamp)
        if i % 5 == 0:
            writer.write('/cam/image_raw', image(i), stamp)


def good_bag(root):
    writer = start(root)
    write_steady(writer)
    return writer.finish('success')


def kinds(problems):
    return sorted(p.kind for p in problems)


def test_info_of_a_good_bag(tmp_path):
    info = bag_info(good_bag(tmp_path))
    assert info['storage'] == 'mcap' and info['complete'] and info['has_metadata']
    assert info['duration_s'] == pytest.approx(99 * 0.02)
    topics = info['topics']
    assert {t: v['count'] for t, v in topics.items()} == {
        '/chatter': 100, '/joint_states': 100, '/cam/image_raw': 20}
    assert topics['/chatter']['rate_hz'] == pytest.approx(100 / 1.98)
    assert topics['/cam/image_raw']['type'] == IMAGE
    assert topics['/chatter']['qos'][0]['reliability'] == 'reliable'
    assert info['episode']['outcome'] == 'success' and info['episode']['task'] == 'check'


def test_good_bag_has_no_problems(tmp_path):
    path = good_bag(tmp_path)
    assert check_bag(path, expected_topics=['/chatter', '/joint_states', '/cam/image_raw'],
                     max_gap_s=0.5) == []


def crashed_copy(writer, dest):
    """Copy a live writer's files: what a SIGKILL leaves behind."""
    shutil.copytree(writer.path, dest)
    return str(dest)


def test_crashed_bag_is_flagged_with_a_recover_hint(tmp_path):
    writer = start(tmp_path / 'live')
    write_steady(writer, seconds=1.0)
    writer.flush()
    write_steady(writer, seconds=0.2)  # still in memory at the "crash"
    bag = crashed_copy(writer, tmp_path / 'crashed')
    writer.finish('success')
    problems = check_bag(bag)
    assert kinds(problems) == ['episode_running', 'missing_metadata', 'truncated']
    assert all('selfimprove bag recover' in p.message for p in problems)
    info = bag_info(bag)  # what is readable is still described
    assert not info['complete'] and info['topics']['/chatter']['count'] == 50


def test_live_recording_is_reported_as_such(tmp_path):
    writer = start(tmp_path)
    write_steady(writer, seconds=0.2)
    assert kinds(check_bag(writer.path)) == ['recording']
    writer.finish('success')


def test_missing_and_empty_expected_topics(tmp_path):
    writer = start(tmp_path, extra_topics=[('/wrist/image_raw', IMAGE)])
    write_steady(writer, seconds=0.5)
    problems = check_bag(writer.finish('success'),
                         expected_topics=['/chatter', '/wrist/image_raw', '/sim/state'])
    missing = {p.topic: p.message for p in problems if p.kind == 'missing_topic'}
    assert 'has no messages' in missing['/wrist/image_raw']
    assert 'is not in the bag' in missing['/sim/state']
    assert kinds(problems) == ['missing_topic', 'missing_topic']
    unexpected = check_bag(writer.path)
    assert [(p.kind, p.severity) for p in unexpected] == [('empty_topic', 'warning')]


def test_gap_longer_than_allowed(tmp_path):
    writer = start(tmp_path)
    write_steady(writer, seconds=4.0, skip=(1.0, 3.0))
    problems = check_bag(writer.finish('success'), max_gap_s=1.0)
    assert [(p.kind, p.topic) for p in problems] == [('gap', '/joint_states')]
    assert 'longest 2.02 s starting 0.98 s into the bag' in problems[0].message
    assert check_bag(writer.path, max_gap_s=2.5) == []


@pytest.mark.parametrize('bad, expected', [
    (lambda i: image_cdr(i, encoding='rgb9'), "encoding 'rgb9'"),
    (lambda i: image_cdr(i, step=10, data_len=30), 'step 10 is less than width 4 x 3'),
    (lambda i: image_cdr(i, data_len=35), 'data holds 35'),
    (lambda i: b'\x00\x01\x00\x00', 'not a valid CDR'),
])
def test_malformed_images(tmp_path, bad, expected):
    writer = start(tmp_path)
    write_steady(writer, seconds=1.0, image=lambda i: bad(i) if i == 20 else image_cdr(i))
    problems = check_bag(writer.finish('success'))
    assert kinds(problems) == ['bad_image']
    assert '1 of 10 images' in problems[0].message and expected in problems[0].message


@pytest.mark.parametrize('version, storage', [(8, StoragePlugin.SQLITE3),
                                              (9, StoragePlugin.MCAP)])
def test_bags_in_ros2_bag_record_formats(tmp_path, version, storage):
    path = tmp_path / 'rosbag2'
    with Writer(path, version=version, storage_plugin=storage) as writer:
        chatter = writer.add_connection('/chatter', STRING, typestore=TS)
        camera = writer.add_connection('/camera', IMAGE, typestore=TS)
        for i in range(30):
            writer.write(chatter, T0 + i * 100 * MS, string_cdr(str(i)))
            writer.write(camera, T0 + i * 100 * MS, image_cdr(i))
    info = bag_info(path)
    assert {t: v['count'] for t, v in info['topics'].items()} == {'/chatter': 30, '/camera': 30}
    assert info['duration_s'] == pytest.approx(2.9) and info['episode'] is None
    problems = check_bag(path, expected_topics=['/chatter', '/camera'])
    assert [(p.kind, p.severity) for p in problems] == [('missing_episode', 'warning')]


def test_unreadable_bags(tmp_path):
    assert kinds(check_bag(tmp_path / 'nowhere')) == ['unreadable']
    path = good_bag(tmp_path / 'a')
    with open(os.path.join(path, 'metadata.yaml'), 'w') as stream:
        stream.write('rosbag2_bagfile_information: {version: 5}\n')
    problems = check_bag(path)
    assert kinds(problems) == ['unreadable'] and 'cannot be read' in problems[0].message


def test_bag_check_of_a_folder_checks_each_bag_inside(tmp_path, capsys):
    from selfimprove_ros.cli.main import main
    good_bag(str(tmp_path / 'bags' / 'a'))
    good_bag(str(tmp_path / 'bags' / 'b'))
    broken = tmp_path / 'bags' / 'c'
    broken.mkdir()
    (broken / 'metadata.yaml').write_text('{not: [yaml')
    assert main(['bag', 'check', str(tmp_path / 'bags')]) == 1
    out = capsys.readouterr()
    assert f'OK      {tmp_path / "bags" / "a"}' in out.out
    assert f'OK      {tmp_path / "bags" / "b"}' in out.out
    assert f'PROBLEM {broken}' in out.out
    assert '1 of 3 bags have problems' in out.err
