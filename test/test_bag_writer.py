"""EpisodeBagWriter: round trip through independent readers, metadata, naming, chunking."""

import os
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from mcap.reader import make_reader
from mcap.stream_reader import StreamReader
from rosbags.highlevel import AnyReader
from rosbags.typesys import get_typestore, Stores

from selfimprove_ros.bag.episode_bag import bag_dir_name, EpisodeBagWriter
from selfimprove_ros.bag.episode_metadata import (EpisodeMetadata, qos_to_yaml,
                                                  read_episode_file)
from selfimprove_ros.data.bag_messages import string_cdr

TS = get_typestore(Stores.ROS2_HUMBLE)
T0 = 1_700_000_000_000_000_000
STRING, JOINTS, IMAGE = 'std_msgs/msg/String', 'sensor_msgs/msg/JointState', \
    'sensor_msgs/msg/Image'


def joints_cdr(i):
    header = TS.types['std_msgs/msg/Header'](
        stamp=TS.types['builtin_interfaces/msg/Time'](sec=i, nanosec=0), frame_id='base')
    return TS.serialize_cdr(TS.types[JOINTS](
        header=header, name=['a', 'b'], position=np.array([i, -i], dtype=np.float64),
        velocity=np.zeros(2), effort=np.zeros(0)), JOINTS).tobytes()


def image_cdr(i, height=24, width=32, encoding='rgb8', step=None, data=None):
    header = TS.types['std_msgs/msg/Header'](
        stamp=TS.types['builtin_interfaces/msg/Time'](sec=i, nanosec=0), frame_id='cam')
    if data is None:
        data = np.full(height * width * 3, i % 256, dtype=np.uint8)
    return TS.serialize_cdr(TS.types[IMAGE](
        header=header, height=height, width=width, encoding=encoding, is_bigendian=0,
        step=width * 3 if step is None else step, data=data), IMAGE).tobytes()


def make_episode(**kwargs):
    fields = dict(robot='aloha', task='pick_cube', instruction='pick up the cube',
                  policy_version='act-v3', seed=7, extra={'operator': 'sim'})
    fields.update(kwargs)
    return EpisodeMetadata(**fields)


def record(root, counts=(20, 10, 5), **kwargs):
    """Write a bag with `counts` strings, joint states and images; return (path, sent)."""
    sent = {'/chatter': [], '/joint_states': [], '/cam/image_raw': []}
    with EpisodeBagWriter(str(root), make_episode(), **kwargs) as writer:
        writer.add_topic('/chatter', STRING, {'reliability': 'reliable', 'depth': 10})
        writer.add_topic('/joint_states', JOINTS)
        writer.add_topic('/cam/image_raw', IMAGE, {'reliability': 'best_effort'})
        makers = zip(sent, (lambda i: string_cdr(f'hello {i}'), joints_cdr, image_cdr), counts)
        for topic, maker, count in makers:
            for i in range(count):
                data, stamp = maker(i), T0 + i * 10_000_000
                writer.write(topic, data, stamp)
                sent[topic].append((stamp, data))
        path = writer.finish('success', 'cube lifted')
    return path, sent


def mcap_file(path):
    files = [f for f in os.listdir(path) if f.endswith('.mcap')]
    assert len(files) == 1, files
    return os.path.join(path, files[0])


def test_round_trip_with_mcap_reader(tmp_path):
    path, sent = record(tmp_path)
    with open(mcap_file(path), 'rb') as stream:
        reader = make_reader(stream)
        assert reader.get_header().profile == 'ros2'
        summary = reader.get_summary()
        got = {topic: [] for topic in sent}
        for schema, channel, message in reader.iter_messages():
            assert schema.encoding == 'ros2msg' and channel.message_encoding == 'cdr'
            assert schema.data.decode() == TS.generate_msgdef(schema.name, ros_version=2)[0]
            got[channel.topic].append((message.log_time, message.data))
        records = {m.name: m.metadata for m in reader.iter_metadata()}
    assert got == sent
    assert summary.statistics.message_count == sum(len(v) for v in sent.values())
    channels = {c.topic: c for c in summary.channels.values()}
    assert {summary.schemas[c.schema_id].name for c in channels.values()} == {STRING, JOINTS,
                                                                              IMAGE}
    qos = yaml.safe_load(channels['/chatter'].metadata['offered_qos_profiles'])
    assert qos[0]['reliability'] == 1 and qos[0]['depth'] == 10
    assert records['episode']['outcome'] == 'success'
    inner = yaml.safe_load(records['rosbag2']['serialized_metadata'])
    assert inner['version'] == 5 and inner['message_count'] == 35


def test_round_trip_with_rosbags_anyreader(tmp_path):
    path, sent = record(tmp_path)
    with AnyReader([Path(path)], default_typestore=TS) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
        assert counts == {t: len(v) for t, v in sent.items()}
        best_effort = next(c for c in reader.connections if c.topic == '/cam/image_raw')
        assert best_effort.ext.offered_qos_profiles[0].reliability.name == 'BEST_EFFORT'
        texts = [reader.deserialize(raw, c.msgtype).data
                 for c, _, raw in reader.messages() if c.topic == '/chatter']
        images = [reader.deserialize(raw, c.msgtype)
                  for c, _, raw in reader.messages() if c.topic == '/cam/image_raw']
    assert texts == [f'hello {i}' for i in range(20)]
    assert [int(img.data[0]) for img in images] == list(range(5))
    assert images[0].encoding == 'rgb8' and images[0].step * images[0].height == 24 * 32 * 3


def test_metadata_yaml_is_readable_by_humble_and_jazzy(tmp_path):
    path, sent = record(tmp_path)
    with open(os.path.join(path, 'metadata.yaml')) as stream:
        info = yaml.safe_load(stream)['rosbag2_bagfile_information']
    # Humble decodes these keys for version 5 and knows no newer version.
    assert info['version'] == 5
    for key in ('storage_identifier', 'duration', 'starting_time', 'message_count',
                'topics_with_message_count', 'relative_file_paths', 'compression_format',
                'compression_mode', 'files'):
        assert key in info, key
    assert info['storage_identifier'] == 'mcap'
    assert os.path.exists(os.path.join(path, info['relative_file_paths'][0]))
    assert info['starting_time']['nanoseconds_since_epoch'] == T0
    assert info['duration']['nanoseconds'] == 19 * 10_000_000
    for entry in info['topics_with_message_count']:
        meta = entry['topic_metadata']
        assert isinstance(meta['offered_qos_profiles'], str)  # v9's list breaks Humble
        assert entry['message_count'] == len(sent[meta['name']])


def test_metadata_version_8_carries_episode_in_custom_data(tmp_path):
    path, _ = record(tmp_path, metadata_version=8)
    with open(os.path.join(path, 'metadata.yaml')) as stream:
        info = yaml.safe_load(stream)['rosbag2_bagfile_information']
    assert info['version'] == 8 and 'ros_distro' in info
    assert info['custom_data']['episode.outcome'] == 'success'
    assert all(e['topic_metadata']['type_description_hash'].startswith('RIHS01_')
               for e in info['topics_with_message_count'])
    with pytest.raises(ValueError, match='Humble cannot read'):
        EpisodeBagWriter(str(tmp_path / 'v9'), make_episode(), metadata_version=9)


def test_episode_yaml_is_running_until_finish(tmp_path):
    writer = EpisodeBagWriter(str(tmp_path), make_episode())
    assert read_episode_file(writer.path).outcome == 'running'
    writer.finish('timeout', 'no grasp within 30 s', end_time_ns=time.time_ns())
    episode = read_episode_file(writer.path)
    assert (episode.outcome, episode.outcome_cause) == ('timeout', 'no grasp within 30 s')
    assert episode.end_time_ns >= episode.start_time_ns
    with pytest.raises(RuntimeError, match='already finished'):
        writer.write('/x', b'', 0)


def test_directory_name_and_never_overwriting(tmp_path):
    episode = make_episode(robot='aloha 2', episode_id='ep42', start_time_ns=T0)
    assert bag_dir_name(episode) == 'aloha-2_pick_cube_20231114T221320Z_ep42'
    first = EpisodeBagWriter(str(tmp_path), episode)
    first.add_topic('/chatter', STRING)
    first.write('/chatter', string_cdr('keep me'), T0)
    path = first.finish('success')
    before = {f: open(os.path.join(path, f), 'rb').read() for f in os.listdir(path)}
    with pytest.raises(FileExistsError, match='refusing to reuse'):
        EpisodeBagWriter(str(tmp_path), episode)
    assert {f: open(os.path.join(path, f), 'rb').read() for f in os.listdir(path)} == before


def messages_on_disk(path):
    """Messages a reader can get from the file right now, without the writer's help."""
    count = 0
    with open(mcap_file(path), 'rb') as stream:
        try:
            for record in StreamReader(stream).records:
                count += type(record).__name__ == 'Message'
        except Exception:  # the unfinished tail
            pass
    return count


def test_flush_ends_the_chunk_on_disk(tmp_path):
    # Pins the mcap Writer.flush() behaviour crash safety relies on.
    writer = EpisodeBagWriter(str(tmp_path), make_episode(), max_chunk_s=60)
    writer.add_topic('/chatter', STRING)
    for i in range(3):
        writer.write('/chatter', string_cdr(str(i)), T0 + i)
    assert messages_on_disk(writer.path) == 0
    writer.flush()
    assert messages_on_disk(writer.path) == 3
    writer.finish('success')


def test_idle_writer_still_closes_chunks_in_time(tmp_path):
    writer = EpisodeBagWriter(str(tmp_path), make_episode(), max_chunk_s=0.2)
    writer.add_topic('/chatter', STRING)
    writer.write('/chatter', string_cdr('lonely'), T0)
    time.sleep(1.0)  # no further write arrives to trigger a flush
    assert messages_on_disk(writer.path) == 1
    writer.finish('success')


def test_context_manager_records_fault_and_unknown(tmp_path):
    with pytest.raises(ZeroDivisionError):
        with EpisodeBagWriter(str(tmp_path / 'a'), make_episode()) as writer:
            1 / 0
    episode = read_episode_file(writer.path)
    assert episode.outcome == 'fault' and 'ZeroDivisionError' in episode.outcome_cause
    with EpisodeBagWriter(str(tmp_path / 'b'), make_episode()) as writer:
        pass
    assert read_episode_file(writer.path).outcome == 'unknown'


def test_topic_errors_say_what_to_do(tmp_path):
    writer = EpisodeBagWriter(str(tmp_path), make_episode())
    with pytest.raises(KeyError, match='call add_topic'):
        writer.write('/nope', b'', T0)
    writer.add_topic('/chatter', STRING)
    writer.add_topic('/chatter', STRING)  # repeating is harmless
    with pytest.raises(ValueError, match='already recorded as std_msgs/msg/String'):
        writer.add_topic('/chatter', JOINTS)
    with pytest.raises(ValueError, match='pass msgdef='):
        writer.add_topic('/custom', 'my_msgs/msg/Thing')
    writer.add_topic('/custom', 'my_msgs/msg/Thing', msgdef='float64 x\n')
    writer.write('/custom', bytes(12), T0)
    path = writer.finish('success')
    with open(mcap_file(path), 'rb') as stream:
        schemas = make_reader(stream).get_summary().schemas.values()
    assert {s.name: s.data for s in schemas}['my_msgs/msg/Thing'] == b'float64 x\n'


def test_qos_accepts_names_ints_and_rclpy_spellings():
    text = qos_to_yaml({'history': 'KEEP_ALL', 'reliability': 2,
                        'durability': 'RMW_QOS_POLICY_DURABILITY_TRANSIENT_LOCAL',
                        'deadline': 1_500_000_000})
    qos = yaml.safe_load(text)[0]
    assert (qos['history'], qos['reliability'], qos['durability']) == (2, 2, 1)
    assert qos['deadline'] == {'sec': 1, 'nsec': 500_000_000}
    assert qos_to_yaml(None) == ''
    with pytest.raises(ValueError, match="'sometimes'"):
        qos_to_yaml({'reliability': 'sometimes'})
    with pytest.raises(ValueError, match='unknown QoS keys'):
        qos_to_yaml({'relyability': 'reliable'})


def test_episode_metadata_validates_and_round_trips():
    episode = make_episode(outcome='failure', outcome_cause='dropped', start_time_ns=T0,
                           end_time_ns=T0 + 5)
    assert EpisodeMetadata.from_dict(episode.to_dict()) == episode
    assert EpisodeMetadata.from_mcap_metadata(episode.to_mcap_metadata()) == episode
    for bad, match in [({'outcome': 'great'}, "'great'"), ({'robot': ''}, "''"),
                       ({'episode_id': 'a/b'}, "'a/b'"), ({'seed': 1.5}, '1.5'),
                       ({'start_time_ns': T0, 'end_time_ns': T0 - 1}, 'before'),
                       ({'extra': {'f': object}}, 'plain data')]:
        with pytest.raises(ValueError, match=match):
            make_episode(**bad)
