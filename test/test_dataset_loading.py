"""load_episodes on synthetic bags: sim and ros2-bag-record layouts, bad bags, the disk cache."""

import json
import os

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import get_typestore, Stores

from bag_factory import crashed_copy
from selfimprove_ros.bag.episode_bag import EpisodeBagWriter
from selfimprove_ros.bag.episode_metadata import EpisodeMetadata
from selfimprove_ros.core.joints import JOINT_NAMES
from selfimprove_ros.data import episode_loader
from selfimprove_ros.data.bag_messages import bool_cdr, string_cdr
from selfimprove_ros.data.dataset_config import DatasetConfig
from selfimprove_ros.data.episode_loader import find_bags, load_episodes

TS = get_typestore(Stores.ROS2_HUMBLE)
T0 = 1_700_000_000_000_000_000
MS = 1_000_000
P = 100 * MS
CAMS = ('cam_high', 'cam_low')
JOINTS, IMAGE, STRING, BOOL = ('sensor_msgs/msg/JointState', 'sensor_msgs/msg/Image',
                               'std_msgs/msg/String', 'std_msgs/msg/Bool')


def header(stamp):
    return TS.types['std_msgs/msg/Header'](stamp=TS.types['builtin_interfaces/msg/Time'](
        sec=stamp // 10**9, nanosec=stamp % 10**9), frame_id='f')


def joints_cdr(stamp, values, names=JOINT_NAMES):
    return TS.serialize_cdr(TS.types[JOINTS](
        header=header(stamp), name=list(names), position=np.asarray(values, np.float64),
        velocity=np.zeros(0), effort=np.zeros(0)), JOINTS).tobytes()


def image_cdr(stamp, value, encoding='rgb8', height=8, width=12):
    pixels = np.full(height * width * 3, value, dtype=np.uint8)
    return TS.serialize_cdr(TS.types[IMAGE](
        header=header(stamp), height=height, width=width, encoding=encoding, is_bigendian=0,
        step=width * 3, data=pixels), IMAGE).tobytes()


def event(kind, **fields):
    return string_cdr(json.dumps({'event': kind, 'episode_id': 'ep1', **fields}))


def joint_values(tick):
    return tick + 0.01 * np.arange(14)


def sim_messages(ticks=10, success_from=6, cameras=CAMS, skip_frames=(), commands=True,
                 tokens=(0, 5), encoding='rgb8', joint_names=JOINT_NAMES, ns='/aloha1',
                 omit=(), intended=False):
    """Yield (topic, msgtype, cdr, log time) of a lockstep sim episode, tick by tick.

    `commands`: True, False, or the ticks that have a joint command.
    """
    for message in _sim_messages(ticks, success_from, cameras, skip_frames, commands, tokens,
                                 encoding, joint_names, ns, intended):
        if not message[0].endswith(omit):
            yield message


def _sim_messages(ticks, success_from, cameras, skip_frames, commands, tokens, encoding,
                  joint_names, ns, intended):
    yield f'{ns}/episode/events', STRING, event('start', robot='aloha1', task='cube'), T0
    for t in range(ticks):
        stamp = T0 + (t + 1) * P
        positions = joint_values(t)[:len(joint_names)]
        yield f'{ns}/joint_states', JOINTS, joints_cdr(stamp, positions, joint_names), stamp
        for c, cam in enumerate(cameras):
            if (cam, t) not in skip_frames:
                yield (f'{ns}/cameras/{cam}/image_raw', IMAGE,
                       image_cdr(stamp, 100 * c + t, encoding), stamp)
        if success_from is not None:
            yield f'{ns}/sim/success', BOOL, bool_cdr(t >= success_from), stamp
        if t in tokens:
            text = json.dumps({'stamp_ns': stamp, 'version': f'v{t}', 'tokens': [t] * 28})
            yield f'{ns}/policy/action_tokens', STRING, string_cdr(text), stamp + MS
        if intended:  # what a noisy expert meant: 0.25 rad off what it executed
            yield (f'{ns}/joint_commands/intended', JOINTS,
                   joints_cdr(stamp, joint_values(t) + 0.25), stamp + 29 * MS)
        if commands is True or (commands and t in commands):
            # The answer arrives 30 ms later, stamped with the observation.
            yield (f'{ns}/joint_commands', JOINTS, joints_cdr(stamp, joint_values(t) + 0.5),
                   stamp + 30 * MS)


def write_sim_bag(root, outcome='success', episode_id='ep1', finish=True, flush_every=0,
                  **options):
    """Write an EpisodeBagWriter bag of `sim_messages` (a chunk every `flush_every` messages
    when > 0); return the writer."""
    writer = EpisodeBagWriter(str(root), EpisodeMetadata(
        robot='aloha1', task='cube', instruction='move the cube', policy_version='v0',
        episode_id=episode_id, start_time_ns=T0), max_chunk_s=60)
    for index, (topic, msgtype, data, log_ns) in enumerate(sim_messages(**options)):
        writer.add_topic(topic, msgtype)
        writer.write(topic, data, log_ns)
        if flush_every and (index + 1) % flush_every == 0:
            writer.flush()
    if finish:
        writer.finish(outcome, end_time_ns=T0 + 2 * 10**9)
    return writer


def config(tmp_path, **changes):
    options = dict(cameras=list(CAMS), image_height=4, image_width=6,
                   cache_dir=str(tmp_path / 'cache'))
    options.update(changes)
    return DatasetConfig(**options)


def test_sim_bag_becomes_an_aligned_labelled_episode(tmp_path):
    path = write_sim_bag(tmp_path / 'bags').path
    lines = []
    episodes, skipped = load_episodes(tmp_path / 'bags', config(tmp_path), log=lines.append)
    assert skipped == [] and len(episodes) == 1
    assert find_bags([path, os.path.join(path, 'episode.yaml')]) == [path, path]
    episode = episodes[0]
    assert (episode.bag_path, episode.episode_id, episode.robot, episode.task,
            episode.instruction, episode.policy_version, episode.outcome) == (
        path, 'ep1', 'aloha1', 'cube', 'move the cube', 'v0', 'success')
    np.testing.assert_array_equal(episode.tick_ns, T0 + np.arange(1, 11) * P)
    np.testing.assert_allclose(episode.joints, [joint_values(t) for t in range(10)], atol=1e-6)
    np.testing.assert_allclose(episode.actions, episode.joints + 0.5, atol=1e-6)
    assert episode.images['cam_low'].shape == (10, 4, 6, 3)
    np.testing.assert_array_equal(episode.images['cam_low'][:, 0, 0, 0], 100 + np.arange(10))
    assert (episode.success_tick, episode.sim_success, episode.dropped_ticks) == (6, True, [])
    assert episode.action_tokens.shape == (10, 28)
    assert (episode.action_tokens[5] == 5).all() and (episode.action_tokens[1] == -1).all()
    assert episode.token_versions[0] == 'v0' and episode.token_versions[5] == 'v5'
    assert episode.extra['action_source'] == 'commands'
    assert lines[-1].startswith('loaded 1 episodes (10 ticks) from 1 bags')


def test_intended_commands_are_the_clean_labels_when_recorded(tmp_path):
    write_sim_bag(tmp_path / 'clean', intended=True)
    episode = load_episodes(tmp_path / 'clean', config(tmp_path))[0][0]
    assert episode.extra['action_source'] == 'intended'
    np.testing.assert_allclose(episode.actions, episode.joints + 0.25, atol=1e-6)
    executed = load_episodes(tmp_path / 'clean', config(tmp_path, action_source='commands'))
    np.testing.assert_allclose(executed[0][0].actions, episode.joints + 0.5, atol=1e-6)
    # A bag without them falls back to what was executed, or is refused when they are required.
    write_sim_bag(tmp_path / 'plain')
    assert load_episodes(tmp_path / 'plain', config(tmp_path))[0][0].extra[
        'action_source'] == 'commands'
    episodes, skipped = load_episodes(tmp_path / 'plain',
                                      config(tmp_path, action_source='intended'))
    assert episodes == [] and 'no joint_commands/intended' in skipped[0][1]


def test_a_missing_action_inside_the_episode_is_noted_and_the_last_ticks_is_not(tmp_path):
    notes = {}
    for name, ticks in (('last', range(9)), ('inside', (*range(4), *range(5, 10)))):
        write_sim_bag(tmp_path / name, commands=set(ticks))
        lines = []
        episode = load_episodes(tmp_path / name, config(tmp_path), log=lines.append)[0][0]
        assert np.isnan(episode.actions[:, 0]).sum() == 1
        notes[name] = [line for line in lines if 'have no action' in line]
    assert notes['last'] == []  # the last command comes after most recordings stop
    assert len(notes['inside']) == 1 and '1 of 10 ticks have no action' in notes['inside'][0]


def test_missing_frames_drop_ticks_and_say_so(tmp_path):
    write_sim_bag(tmp_path / 'bags', skip_frames=[('cam_high', 3), ('cam_low', 7)])
    lines = []
    episode = load_episodes(tmp_path / 'bags', config(tmp_path), log=lines.append)[0][0]
    assert episode.dropped_ticks == [3, 7] and episode.length == 8
    np.testing.assert_array_equal(episode.images['cam_high'][:, 0, 0, 0],
                                  [0, 1, 2, 4, 5, 6, 8, 9])
    assert any('dropped 2 of 10 ticks' in line for line in lines)


def write_record_bag(path, storage, events=('start', 'end'), outcome='success'):
    """Write a `ros2 bag record` teleop bag: 50 Hz joints, 30 Hz cameras, no commands."""
    with Writer(path, version=8, storage_plugin=storage) as writer:
        conns = {name: writer.add_connection(f'/aloha2/{name}', msgtype, typestore=TS)
                 for name, msgtype in [('joint_states', JOINTS), ('episode/events', STRING),
                                       ('cameras/cam_high/image_raw', IMAGE)]}
        if 'start' in events:
            writer.write(conns['episode/events'], T0 + 5 * MS, event(
                'start', robot='aloha2', task='fold', instruction='fold it'))
        for i in range(50):  # 1 s of joints at 50 Hz
            stamp = T0 + i * 20 * MS
            writer.write(conns['joint_states'], stamp + 2 * MS, joints_cdr(stamp, [i] * 14))
        for i in range(30):  # cameras at 30 Hz, capture stamps
            stamp = T0 + i * 33 * MS
            writer.write(conns['cameras/cam_high/image_raw'], stamp + 8 * MS,
                         image_cdr(stamp, i))
        if 'end' in events:
            writer.write(conns['episode/events'], T0 + 905 * MS, event('end', outcome=outcome))


@pytest.mark.parametrize('storage', [StoragePlugin.SQLITE3, StoragePlugin.MCAP])
def test_ros2_bag_record_teleop_bag(tmp_path, storage):
    write_record_bag(tmp_path / 'teleop', storage)
    cfg = config(tmp_path, cameras=['cam_high'])
    episodes, skipped = load_episodes(tmp_path / 'teleop', cfg, log=lambda _: None)
    assert skipped == []
    episode = episodes[0]
    # start event at 5 ms -> first joint state at/after it is 20 ms; end event at 905 ms.
    np.testing.assert_array_equal(episode.tick_ns - T0, np.arange(20, 905, 100) * MS)
    np.testing.assert_array_equal(episode.joints[:, 0], np.arange(1, 46, 5))
    # Teleop: the action is the next tick's joint positions; the last tick has none.
    np.testing.assert_array_equal(episode.actions[:-1, 0], np.arange(6, 46, 5))
    assert np.isnan(episode.actions[-1]).all()
    # Frames are the latest captured at or before each tick (33 ms period).
    np.testing.assert_array_equal(episode.images['cam_high'][:, 0, 0, 0],
                                  np.arange(0, 27, 3))
    assert (episode.robot, episode.task, episode.instruction, episode.outcome) == (
        'aloha2', 'fold', 'fold it', 'success')
    assert episode.success_tick == 8 and episode.sim_success is None
    assert episode.extra['action_source'] == 'next_joints'


def test_bag_without_events_or_metadata_is_unknown_and_excluded(tmp_path):
    write_record_bag(tmp_path / 'bare_demo', StoragePlugin.MCAP, events=())
    lines = []
    episodes, skipped = load_episodes(tmp_path, config(tmp_path, cameras=['cam_high']),
                                      log=lines.append)
    assert episodes == [] and len(skipped) == 1
    assert "excluded: outcome 'unknown'" in skipped[0][1]
    kept = load_episodes(tmp_path, config(tmp_path, cameras=['cam_high'], include_failed=True),
                         log=lines.append)[0]
    assert [(e.episode_id, e.robot, e.outcome, e.success_tick) for e in kept] == [
        ('bare_demo', 'aloha2', 'unknown', None)]


def test_failed_episodes_are_excluded_unless_asked_for(tmp_path):
    write_sim_bag(tmp_path / 'bags', outcome='timeout', episode_id='late', success_from=8)
    write_sim_bag(tmp_path / 'bags', outcome='success', episode_id='good')
    episodes, skipped = load_episodes(tmp_path / 'bags', config(tmp_path), log=lambda _: None)
    assert [e.episode_id for e in episodes] == ['good']
    assert 'late' in skipped[0][0] and "outcome 'timeout'" in skipped[0][1]
    episodes, skipped = load_episodes(tmp_path / 'bags', config(tmp_path, include_failed=True),
                                      log=lambda _: None)
    assert skipped == [] and {e.episode_id: e.success_tick for e in episodes} == {
        'late': 8, 'good': 6}


def test_a_detected_success_the_simulator_denies_is_a_failure(tmp_path):
    # The live detector ended the episode as a success; sim/success was never true.
    write_sim_bag(tmp_path / 'bags', outcome='success', episode_id='fooled', success_from=None)
    lines = []
    episodes, _ = load_episodes(tmp_path / 'bags', config(tmp_path), log=lines.append)
    assert episodes[0].sim_success is None  # no sim/success stream: the outcome stands
    assert episodes[0].success_tick == 9
    write_sim_bag(tmp_path / 'sim', outcome='success', episode_id='fooled', success_from=99)
    episodes, _ = load_episodes(tmp_path / 'sim', config(tmp_path), log=lines.append)
    fooled = episodes[0]
    assert (fooled.outcome, fooled.sim_success, fooled.success_tick) == ('success', False, None)
    assert not fooled.succeeded
    assert any('treated as a failure' in line for line in lines)


def test_truncated_bag_loads_its_complete_records(tmp_path):
    writer = write_sim_bag(tmp_path / 'live', finish=False)
    writer.flush()
    crashed_copy(writer, tmp_path / 'bags' / 'crashed', 10**9)
    writer.finish('success')
    lines = []
    episodes, _ = load_episodes(tmp_path / 'bags', config(tmp_path, include_failed=True),
                                log=lines.append)
    assert episodes[0].length == 10 and episodes[0].outcome == 'unknown'
    assert any('truncated MCAP' in line for line in lines)


def test_a_finished_success_cut_in_half_is_never_cloned(tmp_path):
    done = write_sim_bag(tmp_path / 'done', success_from=None, flush_every=5)
    mcap = os.path.join(done.path, done.file_name)
    with open(mcap, 'rb') as stream:
        data = stream.read()
    with open(mcap, 'wb') as stream:
        stream.write(data[:len(data) // 2])
    lines = []
    episodes, skipped = load_episodes(tmp_path / 'done', config(tmp_path), log=lines.append)
    assert episodes == [] and "outcome 'unknown'" in skipped[0][1]
    assert any('success not trusted' in line for line in lines)
    (kept,), _ = load_episodes(tmp_path / 'done', config(tmp_path, include_failed=True),
                               log=lines.append)
    assert kept.outcome == 'unknown' and kept.success_tick is None and not kept.cloned


def test_each_kind_of_bad_bag_is_named_and_the_good_one_loads(tmp_path):
    root = tmp_path / 'bags'
    write_sim_bag(root, episode_id='good')
    write_sim_bag(root / 'no_camera', cameras=('cam_high',))
    write_sim_bag(root / 'no_joints', omit=('joint_states',))
    write_sim_bag(root / 'mono', encoding='mono8')
    write_sim_bag(root / 'seven_joints', joint_names=JOINT_NAMES[:7])
    live = write_sim_bag(tmp_path / 'live', finish=False)
    live.flush()
    crashed_copy(live, root / 'truncated' / 'bag', 40)  # the header and little else
    live.finish('success')
    lines = []
    episodes, skipped = load_episodes(root, config(tmp_path), log=lines.append)
    assert [e.episode_id for e in episodes] == ['good']
    reasons = {os.path.relpath(path, root).split(os.sep)[0]: reason for path, reason in skipped}
    assert set(reasons) == {'no_camera', 'no_joints', 'mono', 'seven_joints', 'truncated'}
    assert "camera(s) ['cam_low']" in reasons['no_camera']
    assert 'no joint_states messages' in reasons['no_joints']
    assert "encoding 'mono8' is not one of ['rgb8', 'bgr8']" in reasons['mono']
    assert '7 joint positions do not fit' in reasons['seven_joints']
    assert reasons['truncated'].startswith('truncated MCAP (no footer)')
    for path, reason in skipped:
        assert any(path in line and reason in line for line in lines)


class CountingReader:
    """Wraps episode_loader.read_bag to count the bags it decodes."""

    def __init__(self, monkeypatch):
        self.calls, self._read = [], episode_loader.read_bag
        monkeypatch.setattr(episode_loader, 'read_bag', self)

    def __call__(self, path, cfg):
        self.calls.append(path)
        return self._read(path, cfg)


def test_second_load_comes_from_the_cache_without_decoding(tmp_path, monkeypatch):
    path = write_sim_bag(tmp_path / 'bags').path
    write_sim_bag(tmp_path / 'bags' / 'bad', cameras=('cam_high',))
    reader = CountingReader(monkeypatch)
    first, skipped_first = load_episodes(tmp_path / 'bags', config(tmp_path), log=print)
    assert len(reader.calls) == 2
    # Overwrite the bag with zeros of the same size and restore its times: only a cache hit
    # can still produce the episode.
    mcap = os.path.join(path, [f for f in os.listdir(path) if f.endswith('.mcap')][0])
    stat = os.stat(mcap)
    with open(mcap, 'r+b') as stream:
        stream.write(bytes(stat.st_size))
    os.utime(mcap, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    second, skipped_second = load_episodes(tmp_path / 'bags', config(tmp_path), log=print)
    assert len(reader.calls) == 2, 'the second load decoded a bag'
    assert skipped_second == skipped_first
    a, b = first[0], second[0]
    for name in ('tick_ns', 'joints', 'actions', 'action_tokens'):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    for cam in CAMS:
        np.testing.assert_array_equal(a.images[cam], b.images[cam])
    assert (a.success_tick, a.token_versions, a.extra, a.bag_path) == (
        b.success_tick, b.token_versions, b.extra, b.bag_path)
    # A changed file (new mtime) or a different image size misses the cache.
    os.utime(mcap, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    _, skipped = load_episodes(tmp_path / 'bags', config(tmp_path), log=print)
    assert len(reader.calls) == 3 and 'truncated MCAP' in skipped[0][1]
    load_episodes(tmp_path / 'bags', config(tmp_path, image_width=5), log=print)
    assert len(reader.calls) == 5


def test_no_cache_dir_decodes_every_time(tmp_path, monkeypatch):
    write_sim_bag(tmp_path / 'bags')
    reader = CountingReader(monkeypatch)
    for _ in range(2):
        load_episodes(tmp_path / 'bags', config(tmp_path, cache_dir=''), log=print)
    assert len(reader.calls) == 2 and not (tmp_path / 'cache').exists()
