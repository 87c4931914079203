"""Look inside an episode bag: `bag_info` summarises it, `check_bag` lists what is wrong.

Works on bags from EpisodeBagWriter and on `ros2 bag record` bags (sqlite3 or MCAP) through
rosbags' reader when metadata.yaml is there, and on damaged or metadata-less single-file MCAP
bags through the tolerant scan that recovery uses.
"""

import dataclasses
import glob
import os
from pathlib import Path

import yaml
from mcap.records import Channel, Message, Schema

from .episode_bag import is_being_written
from .episode_metadata import METADATA_FILE, read_episode_file
from .recovery import is_complete_mcap, metadata_problem, TolerantScan

# Bytes per pixel of sensor_msgs/Image encodings (sensor_msgs/image_encodings.hpp).
IMAGE_ENCODINGS = {
    'rgb8': 3, 'bgr8': 3, 'rgba8': 4, 'bgra8': 4, 'mono8': 1, 'mono16': 2, 'rgb16': 6,
    'bgr16': 6, 'rgba16': 8, 'bgra16': 8, '8UC1': 1, '8UC3': 3, '8UC4': 4, '16UC1': 2,
    '16SC1': 2, '32FC1': 4, '64FC1': 8, 'bayer_rggb8': 1, 'bayer_bggr8': 1, 'bayer_gbrg8': 1,
    'bayer_grbg8': 1, 'yuv422': 2, 'uyvy': 2, 'yuyv': 2,
}
IMAGE_TYPE = 'sensor_msgs/msg/Image'
SCHEMA_ENCODINGS = ('ros2msg', 'ros2idl')
_typestore = None


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing wrong with a bag: a `kind` code, a message for humans, maybe a topic."""

    kind: str
    message: str
    topic: str = None
    severity: str = 'error'

    def __str__(self):
        """Return '<severity>: <message>'."""
        return f'{self.severity}: {self.message}'


def bag_info(bag_dir):
    """Return duration, per-topic type/count/rate/QoS and the episode metadata of a bag.

    Rates are averages over the bag's duration.
    """
    bag_dir = _require_dir(bag_dir)
    reader = BagReader(bag_dir)
    if reader.counts_known:
        topics = reader.topics
    else:  # no index: count what is readable
        for _ in reader.messages():
            pass
        topics = reader.topics
    duration_s = max(reader.end_ns - reader.start_ns, 0) / 1e9
    out = {name: {'type': t['type'], 'count': t['count'], 'qos': t['qos'],
                  'serialization_format': t['serialization_format'],
                  'rate_hz': t['count'] / duration_s if duration_s > 0 else None}
           for name, t in topics.items()}
    try:
        episode = read_episode_file(bag_dir)
        episode = episode.to_dict() if episode else None
    except ValueError as err:
        episode = {'error': str(err)}
    return {'path': bag_dir, 'storage': reader.storage, 'files': reader.files,
            'complete': reader.complete, 'has_metadata': _has_metadata(bag_dir),
            'start_ns': reader.start_ns, 'end_ns': reader.end_ns, 'duration_s': duration_s,
            'message_count': sum(t['count'] for t in topics.values()), 'topics': out,
            'episode': episode}


class BagReader:
    """Topics and messages of a bag, from rosbags or from a tolerant MCAP scan."""

    def __init__(self, bag_dir):
        self.bag_dir = bag_dir
        mcaps = sorted(glob.glob(os.path.join(glob.escape(bag_dir), '*.mcap')))
        self.use_rosbags = _has_metadata(bag_dir) and all(is_complete_mcap(f) for f in mcaps)
        self.topics, self.start_ns, self.end_ns = {}, 0, 0
        if self.use_rosbags:
            self._load_rosbags()
        elif len(mcaps) == 1:
            self.path, self.storage, self.files = mcaps[0], 'mcap', [os.path.basename(mcaps[0])]
            self.counts_known, self.complete = False, is_complete_mcap(mcaps[0])
        else:
            raise FileNotFoundError(
                f'{bag_dir} has no readable {METADATA_FILE} and {len(mcaps)} .mcap files; '
                f'expected a rosbag2 bag directory or one EpisodeBagWriter .mcap file '
                f'(a ros2 bag record bag without metadata.yaml: run `ros2 bag reindex`)')

    def _load_rosbags(self):
        from rosbags.rosbag2 import Reader
        with Reader(Path(self.bag_dir)) as reader:
            for conn in reader.connections:
                self.topics[conn.topic] = _topic(
                    conn.msgtype, conn.ext.serialization_format, conn.msgcount,
                    [_qos_dict(q) for q in conn.ext.offered_qos_profiles])
            meta = _metadata_yaml(self.bag_dir)
            self.files = [os.path.basename(p) for p in meta['relative_file_paths']]
            self.storage = meta['storage_identifier']
            if reader.message_count:
                self.start_ns, self.end_ns = reader.start_time, reader.end_time - 1
        self.counts_known = self.complete = True

    def messages(self):
        """Yield (topic, msgtype, log_time_ns, raw CDR bytes) in file order."""
        if self.use_rosbags:
            from rosbags.rosbag2 import Reader
            with Reader(Path(self.bag_dir)) as reader:
                for conn, stamp, raw in reader.messages():
                    yield conn.topic, conn.msgtype, stamp, raw
            return
        yield from self._scan()

    def _scan(self):
        from rosbags.rosbag2.metadata import parse_qos
        schemas, channels = {}, {}
        for record in TolerantScan(self.path):
            if isinstance(record, Schema):
                schemas.setdefault(record.id, record)
            elif isinstance(record, Channel) and record.id not in channels:
                schema = schemas.get(record.schema_id)
                qos = parse_qos(record.metadata.get('offered_qos_profiles', ''))
                channels[record.id] = self.topics.setdefault(record.topic, _topic(
                    schema.name if schema else '', record.message_encoding, 0,
                    [_qos_dict(q) for q in qos], schema.encoding if schema else ''))
                channels[record.id]['topic'] = record.topic
            elif isinstance(record, Message) and record.channel_id in channels:
                topic = channels[record.channel_id]
                topic['count'] += 1
                self.start_ns = min(self.start_ns or record.log_time, record.log_time)
                self.end_ns = max(self.end_ns, record.log_time)
                yield topic['topic'], topic['type'], record.log_time, record.data


def _metadata_yaml(bag_dir):
    with open(os.path.join(bag_dir, METADATA_FILE), encoding='utf-8') as stream:
        return yaml.safe_load(stream)['rosbag2_bagfile_information']


def _topic(msgtype, fmt, count, qos, schema_encoding='ros2msg'):
    return {'type': msgtype, 'serialization_format': fmt, 'count': count, 'qos': qos,
            'schema_encoding': schema_encoding}


def _qos_dict(qos):
    """Turn a rosbags Qos into plain data: enum names in lower case, times as {sec, nsec}."""
    out = {}
    for key, value in qos._asdict().items():
        if hasattr(value, 'name'):
            value = value.name.lower()
        elif hasattr(value, 'nsec'):
            value = {'sec': value.sec, 'nsec': value.nsec}
        out[key] = value
    return out


def _require_dir(bag_dir):
    bag_dir = os.path.abspath(bag_dir)
    if not os.path.isdir(bag_dir):
        raise FileNotFoundError(f'{bag_dir} is not a directory; pass a bag directory')
    return bag_dir


def _has_metadata(bag_dir):
    return os.path.exists(os.path.join(bag_dir, METADATA_FILE))


def unreadable_reason(bag_dir: str, error: Exception) -> str:
    """One line on why a bag cannot be read, naming the file at fault and the fix."""
    problem = metadata_problem(bag_dir)
    if problem and glob.glob(os.path.join(glob.escape(bag_dir), '*.mcap')):
        return f'{problem}; `selfimprove bag recover {bag_dir}` rebuilds it from the MCAP'
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return f'{bag_dir} cannot be read: {first}'


def check_bag(bag_dir, expected_topics=None, max_gap_s=1.0, image_encodings=None):
    """Return the list of Problems found in the bag at `bag_dir` (empty when all is well).

    `expected_topics` must each have messages; no topic may go silent for more than
    `max_gap_s` [s] inside the bag's time span; images must have a known encoding
    (`image_encodings`, default IMAGE_ENCODINGS) and a data size matching step * height.
    """
    bag_dir = os.path.abspath(bag_dir)
    if not os.path.isdir(bag_dir):
        return [Problem('unreadable', f'{bag_dir} is not a directory; pass a bag directory')]
    problems = _file_problems(bag_dir)
    if any(p.kind == 'recording' for p in problems):
        return problems  # a live recording is incomplete by nature; check it when it ends
    problems += _episode_problems(bag_dir)
    try:
        reader = BagReader(bag_dir)
        times, images = _read_all(reader, image_encodings or IMAGE_ENCODINGS)
    except Exception as err:  # noqa: B902 - any reader failure is reported, not raised
        return problems + [Problem('unreadable', unreadable_reason(bag_dir, err))]
    problems += images
    problems += _topic_problems(reader, times, expected_topics or ())
    problems += _gap_problems(times, max_gap_s)
    return problems


def _file_problems(bag_dir):
    recover = f'run `selfimprove bag recover {bag_dir}`'
    problems = []
    for path in sorted(glob.glob(os.path.join(glob.escape(bag_dir), '*.mcap'))):
        if is_being_written(path):
            return [Problem('recording', f'{path} is still being recorded; check it once the '
                            f'episode has ended', severity='warning')]
        if not is_complete_mcap(path):
            problems.append(Problem('truncated', f'{path} has no MCAP footer/index: the '
                                    f'recorder probably crashed; {recover} to rebuild it'))
    if not _has_metadata(bag_dir):
        problems.append(Problem('missing_metadata', f'{bag_dir} has no {METADATA_FILE}, so '
                                f'`ros2 bag info/play` cannot open it; {recover}'))
    return problems


def _episode_problems(bag_dir):
    try:
        episode = read_episode_file(bag_dir)
    except ValueError as err:
        return [Problem('bad_episode', f'{err}')]
    if episode is None:
        return [Problem('missing_episode', f'{bag_dir} has no episode.yaml; outcome and task '
                        f'are unknown (fine for plain `ros2 bag record` bags)', None, 'warning')]
    if not episode.is_final:
        return [Problem('episode_running', f'episode {episode.episode_id} is still marked '
                        f"'running': the recorder died before finishing; run `selfimprove bag "
                        f'recover {bag_dir}` to mark it unknown')]
    return []


def _read_all(reader, encodings):
    """Read every message once: per-topic receive times and the image problems."""
    times, bad = {}, {}
    for topic, msgtype, stamp, raw in reader.messages():
        times.setdefault(topic, []).append(stamp)
        if msgtype == IMAGE_TYPE:
            error = _image_error(raw, encodings)
            if error:
                bad.setdefault(topic, []).append(error)
    problems = [Problem('bad_image', f'{topic}: {len(errors)} of {len(times[topic])} images '
                        f'are malformed, e.g. {errors[0]}', topic)
                for topic, errors in bad.items()]
    return times, problems


def _image_error(raw, encodings):
    global _typestore
    if _typestore is None:
        from rosbags.typesys import get_typestore, Stores
        _typestore = get_typestore(Stores.ROS2_HUMBLE)
    try:
        img = _typestore.deserialize_cdr(raw, IMAGE_TYPE)
    except Exception as err:  # noqa: B902 - corrupt CDR raises anything from struct to numpy
        return f'not a valid CDR sensor_msgs/msg/Image ({type(err).__name__}: {err})'
    size = (f'{img.width}x{img.height}', len(img.data))
    if img.encoding not in encodings:
        return f'encoding {img.encoding!r} is not one of {sorted(encodings)}'
    if img.width == 0 or img.height == 0:
        return f'empty image ({size[0]})'
    if img.step < img.width * encodings[img.encoding]:
        return (f'step {img.step} is less than width {img.width} x '
                f'{encodings[img.encoding]} bytes per {img.encoding} pixel')
    if img.step * img.height != size[1]:
        return (f'step*height = {img.step}*{img.height} = {img.step * img.height} bytes but '
                f'data holds {size[1]} ({size[0]} {img.encoding})')
    return None


def _topic_problems(reader, times, expected):
    problems = []
    for name, topic in reader.topics.items():
        if topic['serialization_format'] != 'cdr':
            problems.append(Problem('bad_encoding', f'{name}: serialization format '
                                    f"{topic['serialization_format']!r}, expected 'cdr'", name))
        if topic['schema_encoding'] not in SCHEMA_ENCODINGS:
            problems.append(Problem('bad_encoding', f"{name}: schema encoding "
                                    f"{topic['schema_encoding']!r}, expected one of "
                                    f'{SCHEMA_ENCODINGS}', name))
        count = len(times.get(name, ()))
        if reader.counts_known and count != topic['count']:
            problems.append(Problem('count_mismatch', f'{name}: metadata says '
                                    f"{topic['count']} messages, the file holds {count}", name))
        if not count and name not in expected:
            problems.append(Problem('empty_topic', f'{name} has no messages', name, 'warning'))
    for name in expected:
        if not times.get(name):
            where = 'has no messages' if name in reader.topics else 'is not in the bag'
            problems.append(Problem('missing_topic', f'expected topic {name} {where}; check '
                                    f'that its publisher ran and the recorder subscribed to '
                                    f'it', name))
    return problems


# Topics that carry events, not streams: silence on them is normal, so no gap check.
EVENT_TOPIC_SUFFIXES = ('episode/events', 'estop', 'policy/action_tokens')


def _gap_problems(times, max_gap_s):
    """Flag streams silent for longer than `max_gap_s`, also at the start or end of the bag."""
    stamps = [t for series in times.values() for t in series]
    if not stamps:
        return []
    start, end = min(stamps), max(stamps)
    problems = []
    for name, series in times.items():
        if name.endswith(EVENT_TOPIC_SUFFIXES):
            continue
        edges = [start] + sorted(series) + [end]
        gaps = [(b - a, a) for a, b in zip(edges, edges[1:]) if b - a > max_gap_s * 1e9]
        if gaps:
            longest, at = max(gaps)
            problems.append(Problem('gap', f'{name}: {len(gaps)} gap(s) longer than '
                                    f'{max_gap_s:g} s, longest {longest / 1e9:.2f} s starting '
                                    f'{(at - start) / 1e9:.2f} s into the bag', name))
    return problems
