"""EpisodeRecorder: a full disk ends only its episode, loses no earlier bag, and passes."""

import errno
import json
import logging
import os

from selfimprove_ros.bag.episode_bag import EpisodeBagWriter
from selfimprove_ros.bag.episode_metadata import read_episode_file
from selfimprove_ros.bag.episode_recorder import EpisodeRecorder
from selfimprove_ros.bag.inspection import check_bag
from selfimprove_ros.bag.recorder_config import RecorderConfig
from selfimprove_ros.bag.recovery import recover_bag
from selfimprove_ros.data.bag_messages import string_cdr
from selfimprove_ros.episode.events import make_event

TOPIC = '/aloha1/chatter'
T0 = 1_700_000_000_000_000_000


class Disk:
    """Whether the disk is full; writers made while it is raise ENOSPC where a disk would."""

    full = False

    @classmethod
    def check(cls):
        if cls.full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class FillingWriter(EpisodeBagWriter):
    """A bag writer on a disk that can fill up."""

    def __init__(self, *args, **kwargs):
        Disk.check()
        super().__init__(*args, **kwargs)

    def write(self, *args, **kwargs):
        Disk.check()
        super().write(*args, **kwargs)

    def mark_fault(self):
        if Disk.full:
            return False
        return super().mark_fault()


def make_recorder(tmp_path):
    Disk.full = False
    events = []
    config = RecorderConfig(bag_dir=str(tmp_path / 'bags'), max_chunk_s=0.05)
    recorder = EpisodeRecorder(config, 'aloha1', [(TOPIC, 'std_msgs/msg/String', None)],
                               lambda text: events.append(json.loads(text)),
                               logging.getLogger('test'), writer_class=FillingWriter)
    return recorder, events


def episode(recorder, events, name, messages=20, disk_full_at=None):
    recorder.on_event(make_event('start', episode_id=name, robot='aloha1', task='t'), T0)
    for i in range(messages):
        if i == disk_full_at:
            Disk.full = True
        recorder.on_message(TOPIC, string_cdr(str(i)), T0 + i * 10**8)
        if i % 5 == 4 and recorder.writer is not None:
            recorder.writer.flush()
    recorder.on_event(make_event('end', episode_id=name, outcome='success'), T0 + 10**10)
    return [e for e in events if e['episode_id'] == name]


def test_a_full_disk_ends_its_episode_as_a_fault_and_the_next_records_again(tmp_path):
    recorder, events = make_recorder(tmp_path)
    first = episode(recorder, events, 'ep1')
    assert [e['event'] for e in first] == ['recording', 'saved']
    full = episode(recorder, events, 'ep2', disk_full_at=12)
    assert [e['event'] for e in full] == ['recording', 'refused']
    assert 'No space left on device' in full[1]['cause'] and 'bag recover' in full[1]['cause']
    abandoned = full[0]['path']
    assert read_episode_file(abandoned).outcome == 'running'  # the disk took nothing more
    while_full = episode(recorder, events, 'ep3')
    assert [e['event'] for e in while_full] == ['refused']
    assert 'cannot open a bag' in while_full[0]['cause']
    Disk.full = False  # space is back
    again = episode(recorder, events, 'ep4')
    assert [e['event'] for e in again] == ['recording', 'saved']
    # The earlier bag is intact, the abandoned one a fault with its cause and complete chunks.
    assert not [p for p in check_bag(first[1]['path']) if p.severity == 'error']
    marked = read_episode_file(abandoned)
    assert marked.outcome == 'fault' and 'No space left on device' in marked.outcome_cause
    recovered = recover_bag(abandoned)
    # Chunks 0-4 and 5-9 were flushed; 10 and 11 only if the background flusher came first.
    assert 10 <= recovered.messages <= 12 and recovered.outcome == 'fault'
    assert not [p for p in check_bag(again[1]['path']) if p.severity == 'error']


JOINTS, CAMERA = '/aloha1/joint_states', '/aloha1/cameras/cam_high/image_raw'


def make_tick_recorder(tmp_path, clock):
    events = []
    config = RecorderConfig(bag_dir=str(tmp_path / 'bags'), end_grace_s=0.5)
    recorder = EpisodeRecorder(
        config, 'aloha1', [(JOINTS, 'sensor_msgs/msg/JointState', None),
                           (CAMERA, 'sensor_msgs/msg/Image', None),
                           (TOPIC, 'std_msgs/msg/String', None)],
        lambda text: events.append(json.loads(text)), logging.getLogger('test'),
        clock=lambda: clock[0])
    return recorder, events


def observe(recorder, stamp_ns, frame=True):
    import numpy as np

    from selfimprove_ros.data.bag_messages import image_cdr, joint_state_cdr
    recorder.on_message(JOINTS, joint_state_cdr(stamp_ns, np.zeros(14)), stamp_ns)
    if frame:
        recorder.on_message(CAMERA, image_cdr(stamp_ns, np.zeros((4, 6, 3), np.uint8),
                                              'cam_high'), stamp_ns)


def recorded(path):
    from selfimprove_ros.bag.inspection import BagReader
    return [(topic, log_ns) for topic, _, log_ns, _ in BagReader(path).messages()]


def test_the_last_ticks_frames_arriving_after_end_are_recorded_and_nothing_else(tmp_path):
    clock = [0.0]
    recorder, events = make_tick_recorder(tmp_path, clock)
    observe(recorder, T0)
    recorder.on_event(make_event('start', episode_id='e1', robot='aloha1', task='t'), T0)
    observe(recorder, T0 + 10**8)
    observe(recorder, T0 + 2 * 10**8, frame=False)  # its frame is still being rendered
    recorder.on_event(make_event('end', episode_id='e1', outcome='success'), T0 + 2 * 10**8)
    assert [e['event'] for e in events] == ['recording']  # waits for the last frame
    recorder.on_message(TOPIC, string_cdr('late'), T0 + 3 * 10**8)  # not the episode's
    observe(recorder, T0 + 2 * 10**8, frame=True)  # the frame, and the joint state again
    assert [e['event'] for e in events] == ['recording', 'saved']
    messages = recorded(events[-1]['path'])
    assert [t for t, _ in messages].count(CAMERA) == 3 and TOPIC not in [t for t, _ in messages]
    assert [t for t, _ in messages].count(JOINTS) == 3  # T0 (before start), 0.1 s, 0.2 s
    assert read_episode_file(events[-1]['path']).outcome == 'success'


def test_a_last_frame_that_never_comes_closes_the_bag_after_the_grace(tmp_path):
    clock = [0.0]
    recorder, events = make_tick_recorder(tmp_path, clock)
    observe(recorder, T0)
    recorder.on_event(make_event('start', episode_id='e2', robot='aloha1', task='t'), T0)
    observe(recorder, T0 + 10**8, frame=False)
    recorder.on_event(make_event('end', episode_id='e2', outcome='timeout'), T0 + 10**8)
    recorder.poll()
    assert [e['event'] for e in events] == ['recording']
    clock[0] = 0.6
    recorder.poll()
    assert [e['event'] for e in events] == ['recording', 'saved']
    assert events[-1]['outcome'] == 'timeout'


def test_a_bag_opens_with_the_observation_its_start_answers(tmp_path):
    clock = [0.0]
    recorder, events = make_tick_recorder(tmp_path, clock)
    observe(recorder, T0 - 10**8)  # the end of an earlier scene: not this episode's
    observe(recorder, T0)          # the reset scene, observed before `start`
    recorder.on_event(make_event('start', episode_id='e3', robot='aloha1', task='t'), T0)
    observe(recorder, T0 + 10**8)
    recorder.on_event(make_event('end', episode_id='e3', outcome='success'), T0 + 10**8)
    messages = recorded(events[-1]['path'])
    assert [t for t, _ in messages].count(JOINTS) == 2  # T0 and T0 + 0.1 s
    assert [t for t, _ in messages].count(CAMERA) == 2
    assert min(log_ns for _, log_ns in messages) == T0


def test_start_is_acknowledged_only_once_the_robot_is_heard(tmp_path):
    clock = [0.0]
    recorder, events = make_tick_recorder(tmp_path, clock)
    start = make_event('start', episode_id='e4', robot='aloha1', task='t')
    recorder.on_message(CAMERA, b'\x00\x01\x00\x00' + bytes(8), T0)  # a camera, no robot
    recorder.on_event(start, T0)
    assert events == []  # no joint state heard yet (DDS still matching): no `recording`
    observe(recorder, T0 + 10**8, frame=False)
    recorder.on_event(start, T0 + 10**8)  # the starter repeats `start` until answered
    assert [e['event'] for e in events] == ['recording']
    clock[0] = 5.0  # silent again for longer than input_timeout_s
    recorder.on_event(start, T0 + 3 * 10**8)
    assert [e['event'] for e in events] == ['recording']
