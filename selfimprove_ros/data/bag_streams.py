"""Read one episode bag into decoded, time-stamped streams, or say why it cannot be used.

Reads rosbag2 bags in MCAP or sqlite3 storage through rosbags (the readers of
`bag/inspection.py`), and MCAP files without footer (a killed recorder) through the tolerant
scan recovery uses, keeping every complete record. Topics are matched by suffix against the
topic contract, so `/aloha1/joint_states` and `/joint_states` are both the joint states.
Frames are resized as they are decoded, so memory holds small frames only.
"""

from dataclasses import dataclass, field
import glob
import os
import re

import numpy as np

from selfimprove_ros.bag.episode_bag import is_being_written
from selfimprove_ros.bag.episode_metadata import read_episode_file
from selfimprove_ros.bag.inspection import BagReader
from selfimprove_ros.core import topics
from selfimprove_ros.episode.events import parse_event
from selfimprove_ros.core.joints import NUM_JOINTS, order_by_name

from .images import image_to_rgb, resize_rgb
from .labels import parse_token_message

JOINT_STATE, IMAGE = 'sensor_msgs/msg/JointState', 'sensor_msgs/msg/Image'
BOOL, STRING = 'std_msgs/msg/Bool', 'std_msgs/msg/String'
ROLES = {'joints': (topics.JOINT_STATES, JOINT_STATE),
         'commands': (topics.JOINT_COMMANDS, JOINT_STATE),
         'intended': (topics.JOINT_COMMANDS_INTENDED, JOINT_STATE),
         'events': (topics.EPISODE_EVENTS, STRING),
         'success': (topics.SIM_SUCCESS, BOOL),
         'tokens': (topics.POLICY_ACTIONS, STRING)}
_typestore = None


class BadBag(Exception):
    """A bag that cannot become an episode; the message says why."""


@dataclass
class BagStreams:
    """What an episode bag holds, decoded; stamps are header stamps [ns] unless noted."""

    path: str
    meta: dict                          # robot, task, instruction, policy_version, ...
    joint_stamps: np.ndarray            # [N] int64
    joints: np.ndarray                  # [N, 14] float32, contract order
    camera_stamps: dict                 # camera -> [M] int64
    frames: dict                        # camera -> [M, H, W, 3] uint8, already resized
    command_stamps: np.ndarray = None   # [C] int64 (None: the bag has no joint_commands)
    commands: np.ndarray = None         # [C, 14] float32
    intended_stamps: np.ndarray = None  # [I] int64 (None: no joint_commands/intended)
    intended: np.ndarray = None         # [I, 14] float32 what the demonstrator meant
    success_log_ns: np.ndarray = None   # [S] int64 receive times (Bool has no header)
    success_values: np.ndarray = None   # [S] bool (None: no sim/success topic)
    tokens: list = field(default_factory=list)  # [(stamp_ns, version, tokens)]
    start_ns: int = None                # receive time of the `start` event, if recorded
    end_ns: int = None                  # receive time of the `end` event, if recorded
    complete: bool = True               # False: read from an MCAP without footer
    notes: list = field(default_factory=list)


def typestore():
    """Return the shared ROS 2 Humble message types (built on first use)."""
    global _typestore
    if _typestore is None:
        from rosbags.typesys import get_typestore, Stores
        _typestore = get_typestore(Stores.ROS2_HUMBLE)
    return _typestore


def topic_role(topic: str, cameras) -> tuple:
    """Return (role, robot namespace) of a fully qualified topic, or (None, None)."""
    wanted = dict(ROLES)
    wanted.update({f'camera:{cam}': (topics.camera_topic(cam), IMAGE) for cam in cameras})
    for role, (name, _) in wanted.items():
        if topic == f'/{name}' or topic.endswith(f'/{name}'):
            return role, topic[:-len(name) - 1].strip('/')
    return None, None


def expected_type(role: str) -> str:
    """Return the message type a role's topic must have."""
    return IMAGE if role.startswith('camera:') else ROLES[role][1]


def read_bag(path, config) -> BagStreams:
    """Decode the streams of the bag directory `path` that `config` needs; raise BadBag."""
    path = os.path.abspath(path)
    if not os.path.isdir(path):
        raise BadBag('not a directory')
    if any(is_being_written(f) for f in glob.glob(os.path.join(glob.escape(path), '*.mcap'))):
        raise BadBag('still being recorded (a live writer holds the .mcap); load it later')
    try:
        reader = BagReader(path)
    except Exception as error:  # noqa: B902 - every reader failure makes the bag unusable
        raise BadBag(f'unreadable: {error}') from error
    acc = _Accumulator(config)
    try:
        for topic, msgtype, log_ns, raw in reader.messages():
            acc.add(topic, msgtype, log_ns, raw)
    except BadBag:
        raise
    except Exception as error:  # noqa: B902 - a reader failing mid-file (corrupt sqlite...)
        raise BadBag(f'unreadable after {acc.count} messages: {error}') from error
    return acc.finish(path, reader.complete)


class _Accumulator:
    """Collects decoded messages per role while a bag is read once, in file order."""

    def __init__(self, config):
        self.config = config
        self.roles, self.topic_of = {}, {}
        self.data = {'joints': [], 'commands': [], 'intended': [], 'success': [], 'tokens': [],
                     'events': []}
        self.data.update({f'camera:{cam}': [] for cam in config.cameras})
        self.namespaces = set()
        self.count = 0

    def add(self, topic, msgtype, log_ns, raw):
        """Decode one message if its topic plays a role."""
        self.count += 1
        if topic not in self.roles:
            self.roles[topic] = self._claim(topic, msgtype)
        role = self.roles[topic]
        if role is None:
            return
        try:
            msg = typestore().deserialize_cdr(raw, msgtype)
        except Exception as error:  # noqa: B902 - any decoder error means a corrupt message
            raise BadBag(f'{topic}: a message is not valid {msgtype} CDR ({error})') from error
        try:
            self.data[role].append(self._decode(role, msg, log_ns))
        except ValueError as error:
            raise BadBag(f'{topic}: {error}') from error

    def _claim(self, topic, msgtype):
        role, namespace = topic_role(topic, self.config.cameras)
        if role is None:
            return None
        if role in self.topic_of:
            raise BadBag(f'topics {self.topic_of[role]} and {topic} both match '
                         f'{role}; one robot per bag')
        if msgtype != expected_type(role):
            raise BadBag(f'{topic} has type {msgtype}, expected {expected_type(role)}')
        self.topic_of[role] = topic
        self.namespaces.add(namespace)
        return role

    def _decode(self, role, msg, log_ns):
        if role in ('joints', 'commands', 'intended'):
            stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            try:
                return stamp, order_by_name(list(msg.name), msg.position)
            except ValueError as error:
                raise ValueError(f'{len(msg.position)} joint positions do not fit the '
                                 f'{NUM_JOINTS}-joint contract: {error}') from error
        if role.startswith('camera:'):
            stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            return stamp, resize_rgb(image_to_rgb(msg), self.config.image_height,
                                     self.config.image_width)
        if role == 'success':
            return log_ns, bool(msg.data)
        if role == 'tokens':
            return parse_token_message(msg.data)
        try:
            return log_ns, parse_event(msg.data)
        except ValueError:
            return None  # a malformed event says nothing about this episode

    def finish(self, path, complete) -> BagStreams:
        """Check the required streams and return them as arrays."""
        truncated = '' if complete else 'truncated MCAP (no footer) and '
        if not self.data['joints']:
            raise BadBag(f'{truncated}no {topics.JOINT_STATES} messages')
        missing = [cam for cam in self.config.cameras if not self.data[f'camera:{cam}']]
        if missing:
            raise BadBag(f'{truncated}no messages from camera(s) {missing} '
                         f'(on {[topics.camera_topic(c) for c in missing]})')
        stamps, joints = _columns(self.data['joints'])
        streams = BagStreams(path, {}, stamps, joints.astype(np.float32), {}, {},
                             complete=complete, tokens=self.data['tokens'])
        for cam in self.config.cameras:
            streams.camera_stamps[cam], streams.frames[cam] = _columns(self.data[f'camera:{cam}'])
        if self.data['commands']:
            stamps, commands = _columns(self.data['commands'])
            streams.command_stamps, streams.commands = stamps, commands.astype(np.float32)
        if self.data['intended']:
            stamps, intended = _columns(self.data['intended'])
            streams.intended_stamps, streams.intended = stamps, intended.astype(np.float32)
        if 'success' in self.topic_of:
            streams.success_log_ns, values = _columns(self.data['success'])
            streams.success_values = values.astype(bool)
        if not complete:
            streams.notes.append('truncated MCAP (no footer): read its complete records')
        events = [e for e in self.data['events'] if e is not None]
        streams.meta, streams.start_ns, streams.end_ns = episode_meta(
            path, events, sorted(self.namespaces)[0] if self.namespaces else '', streams.notes)
        return streams


def _columns(pairs):
    """Turn [(stamp, value)] into (int64 stamps [N], stacked values [N, ...])."""
    stamps = np.array([p[0] for p in pairs], dtype=np.int64)
    if not pairs:
        return stamps, np.zeros((0,))
    return stamps, np.stack([p[1] for p in pairs]) if isinstance(pairs[0][1], np.ndarray) \
        else np.array([p[1] for p in pairs])


def episode_meta(path, events, namespace, notes):
    """Return (meta, start_ns, end_ns) from episode.yaml, else the events, else the path.

    `events` are [(receive time [ns], event dict)]. A recording whose episode.yaml still
    says 'running' (its recorder died) counts as outcome 'unknown'.
    """
    try:
        record = read_episode_file(path)
    except ValueError as error:
        notes.append(f'episode.yaml ignored: {error}')
        record = None
    starts = [(t, e) for t, e in events if e['event'] == 'start']
    if record is not None:
        starts = [(t, e) for t, e in starts if e['episode_id'] == record.episode_id] or starts
    start_ns, start = starts[0] if starts else (None, {})
    ends = [(t, e) for t, e in events if e['event'] == 'end'
            and e['episode_id'] == start.get('episode_id', e['episode_id'])
            and (start_ns is None or t >= start_ns)]
    end_ns, end = ends[0] if ends else (None, {})
    if record is not None:
        meta = record.to_dict()
        if meta['outcome'] == 'running':
            meta['outcome'] = 'unknown'
            notes.append('episode.yaml says running (the recorder died): outcome unknown')
    else:
        notes.append('no episode.yaml: metadata from the episode events' if start
                     else 'no episode.yaml and no start event: outcome unknown')
        meta = {key: start.get(key, '') for key in ('robot', 'task', 'instruction',
                                                    'policy_version', 'seed', 'extra')}
        meta['episode_id'] = start.get('episode_id') or _safe_id(os.path.basename(path))
        meta['outcome'] = end.get('outcome', 'unknown')
        meta['outcome_cause'] = end.get('cause', '')
    meta['robot'] = meta.get('robot') or namespace
    meta['extra'] = dict(meta.get('extra') or {})
    return meta, start_ns, end_ns


def _safe_id(name: str) -> str:
    return re.sub(r'[^A-Za-z0-9._-]+', '-', name).strip('-') or 'episode'
