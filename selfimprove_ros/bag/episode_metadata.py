"""Metadata kept beside the messages: the episode record and rosbag2's metadata.yaml.

The episode record (robot, task, policy, outcome, times) lives in three places so that it
survives whatever happens to the others: `episode.yaml` in the bag directory (written at start
with outcome 'running', rewritten at the end), an MCAP Metadata record named 'episode', and,
for metadata versions >= 6, `custom_data` in metadata.yaml.
"""

import dataclasses
import datetime
import json
import os
import re
import uuid

import yaml

from selfimprove_ros.core.atomic_file import write_yaml_atomic

OUTCOMES = ('running', 'success', 'timeout', 'aborted', 'fault', 'failure', 'unknown')
FINAL_OUTCOMES = tuple(o for o in OUTCOMES if o != 'running')
EPISODE_FILE = 'episode.yaml'
METADATA_FILE = 'metadata.yaml'
SUPPORTED_METADATA_VERSIONS = (5, 6, 7, 8)
SCHEMA_VERSION = 1

# episode_id goes into a directory name, so it may only hold characters every filesystem and
# shell accepts unquoted.
_ID_PATTERN = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]*$')


def new_episode_id():
    """Return a fresh random episode id (12 hex digits)."""
    return uuid.uuid4().hex[:12]


def format_utc(time_ns):
    """Return `time_ns` [ns since the Unix epoch] as an ISO 8601 UTC string."""
    stamp = datetime.datetime.fromtimestamp(time_ns / 1e9, tz=datetime.timezone.utc)
    return stamp.isoformat(timespec='milliseconds').replace('+00:00', 'Z')


@dataclasses.dataclass(frozen=True)
class EpisodeMetadata:
    """Description of one recorded episode; validated on construction."""

    robot: str
    task: str
    instruction: str = ''
    policy_version: str = ''
    episode_id: str = dataclasses.field(default_factory=new_episode_id)
    seed: int = None
    outcome: str = 'running'
    outcome_cause: str = ''
    start_time_ns: int = None
    end_time_ns: int = None
    extra: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        """Reject values that would make the record ambiguous or the bag path unusable."""
        for name in ('robot', 'task'):
            _require_text(name, getattr(self, name), allow_empty=False)
        for name in ('instruction', 'policy_version', 'outcome_cause'):
            _require_text(name, getattr(self, name), allow_empty=True)
        if not isinstance(self.episode_id, str) or not _ID_PATTERN.match(self.episode_id):
            raise ValueError(
                f'EpisodeMetadata.episode_id must be letters, digits, ".", "_" or "-" '
                f'(it names the bag directory), got {self.episode_id!r}')
        if self.outcome not in OUTCOMES:
            raise ValueError(
                f'EpisodeMetadata.outcome must be one of {list(OUTCOMES)}, got {self.outcome!r}')
        if self.seed is not None and (isinstance(self.seed, bool)
                                      or not isinstance(self.seed, int)):
            raise ValueError(f'EpisodeMetadata.seed must be an int or None, got {self.seed!r}')
        for name in ('start_time_ns', 'end_time_ns'):
            _require_time(name, getattr(self, name))
        if (self.start_time_ns is not None and self.end_time_ns is not None
                and self.end_time_ns < self.start_time_ns):
            raise ValueError(
                f'EpisodeMetadata.end_time_ns {self.end_time_ns} is before start_time_ns '
                f'{self.start_time_ns}; pass times in ns since the Unix epoch')
        _require_extra(self.extra)

    @property
    def is_final(self):
        """Whether the outcome is known (anything but 'running')."""
        return self.outcome != 'running'

    def replace(self, **changes):
        """Return a validated copy with `changes` applied."""
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        """Return a plain dict (YAML/JSON-safe); ISO times are added for humans only."""
        data = {'schema_version': SCHEMA_VERSION}
        data.update({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})
        data['extra'] = dict(self.extra)
        for name in ('start_time', 'end_time'):
            value = getattr(self, f'{name}_ns')
            data[f'{name}_utc'] = None if value is None else format_utc(value)
        return data

    @classmethod
    def from_dict(cls, data):
        """Build from `to_dict` output; derived and unknown keys are ignored."""
        if not isinstance(data, dict):
            raise ValueError(f'episode metadata must be a mapping, got {data!r}')
        names = {f.name for f in dataclasses.fields(cls)}
        missing = [n for n in ('robot', 'task') if n not in data]
        if missing:
            raise ValueError(f'episode metadata lacks required keys {missing}: {data!r}')
        kwargs = {k: v for k, v in data.items() if k in names}
        if kwargs.get('extra') is None:
            kwargs['extra'] = {}
        return cls(**kwargs)

    def to_mcap_metadata(self):
        """Return the flat str->str mapping an MCAP Metadata record holds."""
        data = self.to_dict()
        data['extra'] = json.dumps(self.extra, sort_keys=True)
        return {k: '' if v is None else str(v) for k, v in data.items()}

    @classmethod
    def from_mcap_metadata(cls, record):
        """Invert `to_mcap_metadata`."""
        data = {k: (v if v != '' else None) for k, v in record.items()}
        for name in ('instruction', 'policy_version', 'outcome_cause'):
            data[name] = data.get(name) or ''
        for name in ('seed', 'start_time_ns', 'end_time_ns'):
            if data.get(name) is not None:
                data[name] = int(data[name])
        data['extra'] = json.loads(data['extra']) if data.get('extra') else {}
        return cls.from_dict(data)


def _require_text(name, value, allow_empty):
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        kind = 'a string' if allow_empty else 'a non-empty string'
        raise ValueError(f'EpisodeMetadata.{name} must be {kind}, got {value!r}')


def _require_time(name, value):
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(
            f'EpisodeMetadata.{name} must be None or an int >= 0 [ns since the Unix epoch], '
            f'got {value!r}')


def _require_extra(extra):
    if not isinstance(extra, dict):
        raise ValueError(f'EpisodeMetadata.extra must be a dict, got {extra!r}')
    bad_keys = [k for k in extra if not isinstance(k, str)]
    if bad_keys:
        raise ValueError(f'EpisodeMetadata.extra keys must be strings, got {bad_keys!r}')
    try:
        yaml.safe_dump(extra)
        json.dumps(extra)
    except (yaml.YAMLError, TypeError, ValueError) as err:
        raise ValueError(
            f'EpisodeMetadata.extra must hold plain data (str, numbers, bools, lists, dicts), '
            f'got {extra!r}: {err}') from None


def write_episode_file(bag_dir, episode):
    """Atomically (re)write `<bag_dir>/episode.yaml`."""
    write_yaml_atomic(os.path.join(bag_dir, EPISODE_FILE), episode.to_dict())


def read_episode_file(bag_dir):
    """Return the EpisodeMetadata in `<bag_dir>/episode.yaml`, or None if there is none."""
    path = os.path.join(bag_dir, EPISODE_FILE)
    if not os.path.exists(path):
        return None
    with open(path, encoding='utf-8') as stream:
        try:
            data = yaml.safe_load(stream)
        except yaml.YAMLError as err:
            raise ValueError(f'{path} is not valid YAML ({err}); fix or delete it') from None
    try:
        return EpisodeMetadata.from_dict(data)
    except (TypeError, ValueError) as err:
        raise ValueError(f'{path} does not hold valid episode metadata: {err}') from None


# rmw enum values as rosbag2 <= v8 stores them (Humble's numbering; best_available is Jazzy's).
_QOS_ENUMS = {
    'history': {'system_default': 0, 'keep_last': 1, 'keep_all': 2, 'unknown': 3},
    'reliability': {'system_default': 0, 'reliable': 1, 'best_effort': 2, 'unknown': 3,
                    'best_available': 4},
    'durability': {'system_default': 0, 'transient_local': 1, 'volatile': 2, 'unknown': 3,
                   'best_available': 4},
    'liveliness': {'system_default': 0, 'automatic': 1, 'manual_by_node': 2,
                   'manual_by_topic': 3, 'unknown': 4, 'best_available': 5},
}
_QOS_TIMES = ('deadline', 'lifespan', 'liveliness_lease_duration')
# rmw_qos_profile_default; a time of 0 s 0 ns means "unspecified".
_QOS_DEFAULT = {'history': 1, 'depth': 10, 'reliability': 1, 'durability': 2,
                'deadline': 0, 'lifespan': 0, 'liveliness': 0,
                'liveliness_lease_duration': 0, 'avoid_ros_namespace_conventions': False}


def qos_to_yaml(profiles):
    """Return rosbag2's `offered_qos_profiles` string for a QoS dict, a list of them, or None.

    Policies may be rmw ints or names ('reliable', 'KEEP_LAST'); times may be ns or
    {'sec', 'nsec'}. Missing keys take rmw_qos_profile_default values.
    """
    if profiles is None:
        return ''
    if isinstance(profiles, dict):
        profiles = [profiles]
    return yaml.safe_dump([_normalize_qos(p) for p in profiles], default_flow_style=False,
                          sort_keys=False)


def _normalize_qos(profile):
    unknown = set(profile) - set(_QOS_DEFAULT)
    if unknown:
        raise ValueError(f'unknown QoS keys {sorted(unknown)} in {profile!r}; '
                         f'use {list(_QOS_DEFAULT)}')
    out = dict(_QOS_DEFAULT, **profile)
    out.update({key: _qos_enum(key, out[key]) for key in _QOS_ENUMS})
    out.update({key: _qos_time(key, out[key]) for key in _QOS_TIMES})
    out['depth'] = int(out['depth'])
    out['avoid_ros_namespace_conventions'] = bool(out['avoid_ros_namespace_conventions'])
    return out


def _qos_enum(key, value):
    names = _QOS_ENUMS[key]
    if isinstance(value, str):
        # Accept rclpy's enum names too ('RMW_QOS_POLICY_RELIABILITY_RELIABLE').
        value = names.get(value.lower().removeprefix(f'rmw_qos_policy_{key}_'), value)
    if isinstance(value, bool) or not isinstance(value, int) or value not in names.values():
        raise ValueError(f'QoS {key} must be one of {list(names)} or its rmw int, '
                         f'got {value!r}')
    return value


def _qos_time(key, value):
    if isinstance(value, dict):
        return {'sec': int(value['sec']), 'nsec': int(value['nsec'])}
    if isinstance(value, int) and value >= 0:
        return {'sec': value // 10**9, 'nsec': value % 10**9}
    raise ValueError(f'QoS {key} must be ns >= 0 or {{sec, nsec}}, got {value!r}')


def check_metadata_version(version):
    """Reject metadata.yaml versions that Humble or Jazzy cannot both read."""
    if version not in SUPPORTED_METADATA_VERSIONS:
        raise ValueError(f'metadata_version must be one of {SUPPORTED_METADATA_VERSIONS} '
                         f'(9 changes the QoS format and Humble cannot read it), got {version!r}')


def rosbag2_metadata(file_name, topics, episode, version=5):
    """Return the `rosbag2_bagfile_information` mapping for a one-file MCAP bag."""
    check_metadata_version(version)
    firsts = [t.first_ns for t in topics if t.count]
    start = min(firsts) if firsts else getattr(episode, 'start_time_ns', None) or 0
    duration = max((t.last_ns for t in topics if t.count), default=start) - start
    count = sum(t.count for t in topics)
    info = {
        'version': version,
        'storage_identifier': 'mcap',
        'duration': {'nanoseconds': duration},
        'starting_time': {'nanoseconds_since_epoch': start},
        'message_count': count,
        'topics_with_message_count': [_topic_entry(t, version) for t in topics],
        'compression_format': '',
        'compression_mode': '',
        'relative_file_paths': [file_name],
        'files': [{'path': file_name, 'starting_time': {'nanoseconds_since_epoch': start},
                   'duration': {'nanoseconds': duration}, 'message_count': count}],
    }
    if version >= 6:  # Jazzy requires the key from version 6 on, even when empty
        info['custom_data'] = {f'episode.{k}': v for k, v in
                               (episode.to_mcap_metadata() if episode else {}).items()}
    if version >= 8:
        info['ros_distro'] = os.environ.get('ROS_DISTRO', '')
    return info


def _topic_entry(topic, version):
    meta = {'name': topic.topic, 'type': topic.msgtype, 'serialization_format': 'cdr',
            'offered_qos_profiles': topic.qos_yaml}
    if version >= 7:
        meta['type_description_hash'] = topic.type_hash
    return {'topic_metadata': meta, 'message_count': topic.count}


def write_bag_metadata(bag_dir, info):
    """Atomically write `<bag_dir>/metadata.yaml`."""
    write_yaml_atomic(os.path.join(bag_dir, METADATA_FILE),
                      {'rosbag2_bagfile_information': info})
