"""One rosbag2 bag (metadata.yaml + one MCAP file) per robot episode, safe against crashes.

Format choices, so `ros2 bag info` on Humble and Jazzy, Foxglove, `mcap` and rosbags read it:

- MCAP profile 'ros2', schema encoding 'ros2msg' holding the full definition with its
  dependencies (the text rosbag2_storage_mcap writes), message encoding 'cdr', and channel
  metadata `offered_qos_profiles` as the YAML string of rosbag2 metadata versions <= 8.
- metadata.yaml version 5 by default: Humble's reader knows versions up to 5 and Jazzy reads
  every older version. Version 9 (Jazzy's own) changes the QoS to a YAML list, which Humble
  rejects ("bad conversion"). Versions 6-8 add custom_data, type_description_hash and
  ros_distro; Humble's decoder skips keys it does not know, but that is untested here, so
  they are opt-in (`metadata_version=8`). The same mapping goes into an MCAP Metadata record
  'rosbag2', from which Jazzy's MCAP plugin takes the version it parses the channel QoS with.
- Chunks close at least every `max_chunk_s` and the file is flushed to the OS then, so a
  SIGKILL loses at most that much; `recovery.recover_bag` rebuilds the index afterwards.
  The writer holds an flock on the file, so recovery can tell a live recording from a dead one.
"""

import dataclasses
import fcntl
import os
import re
import threading
import time

import yaml
from mcap.writer import CompressionType, Writer

from selfimprove_ros.core.atomic_file import fsync_dir

from .episode_metadata import (check_metadata_version, FINAL_OUTCOMES, qos_to_yaml,
                               rosbag2_metadata, write_bag_metadata, write_episode_file)

LIBRARY = 'selfimprove_ros episode_bag'
COMPRESSIONS = {'zstd': CompressionType.ZSTD, 'lz4': CompressionType.LZ4,
                'none': CompressionType.NONE}
IDL_PREFIX = '=' * 80 + '\nIDL: '


@dataclasses.dataclass
class TopicInfo:
    """One topic of a bag and what has been written to it."""

    topic: str
    msgtype: str
    qos_yaml: str = ''
    type_hash: str = ''
    channel_id: int = 0
    count: int = 0
    first_ns: int = None
    last_ns: int = None

    def record(self, log_time_ns):
        """Account for one message received at `log_time_ns`."""
        self.count += 1
        if self.first_ns is None or log_time_ns < self.first_ns:
            self.first_ns = log_time_ns
        if self.last_ns is None or log_time_ns > self.last_ns:
            self.last_ns = log_time_ns


def close_mcap(writer, stream, episode, info):
    """Write the 'episode' (unless None) and 'rosbag2' Metadata records, the summary; close."""
    if episode is not None:
        writer.add_metadata('episode', episode.to_mcap_metadata())
    # Jazzy's MCAP plugin reads the bag's metadata version from this record; without it it
    # assumes version 9 and misreads the channels' integer QoS policies.
    serialized = yaml.safe_dump(info, sort_keys=False)
    writer.add_metadata('rosbag2', {'serialized_metadata': serialized})
    writer.finish()
    stream.flush()
    os.fsync(stream.fileno())
    stream.close()


def open_mcap(stream, compression='zstd', chunk_size=4 * 2**20):
    """Return a started MCAP writer on `stream` with the ros2 profile."""
    if compression not in COMPRESSIONS:
        raise ValueError(f'compression must be one of {list(COMPRESSIONS)}, '
                         f'got {compression!r}')
    # Ending a chunk on demand is the whole crash-safety story; fail early without it.
    if not callable(getattr(Writer, 'flush', None)):
        raise RuntimeError('the installed mcap package has no Writer.flush(); '
                           'install mcap>=1.6 (pip install "mcap>=1.6")')
    writer = Writer(stream, chunk_size=chunk_size, compression=COMPRESSIONS[compression])
    writer.start(profile='ros2', library=LIBRARY)
    return writer


def is_being_written(path):
    """Return True while a live writer holds `path` (an .mcap) open.

    Writers take an exclusive flock, which the kernel drops when the process dies, even on
    SIGKILL; so a held lock means "recording", not "crashed".
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def bag_dir_name(episode):
    """Return `<robot>_<task>_<UTC start>_<episode_id>` with unsafe characters replaced."""
    stamp = time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(episode.start_time_ns / 1e9))
    parts = [re.sub(r'[^A-Za-z0-9._-]+', '-', p).strip('-') or 'x'
             for p in (episode.robot, episode.task)]
    return '_'.join(parts + [stamp, episode.episode_id])


def create_bag_dir(root_dir, episode):
    """Create the episode's bag directory; never reuse one that exists."""
    os.makedirs(root_dir, exist_ok=True)
    path = os.path.join(root_dir, bag_dir_name(episode))
    try:
        os.mkdir(path)
    except FileExistsError:
        raise FileExistsError(
            f'bag directory {path} already exists; refusing to reuse it so no recording is '
            f'overwritten. Start the episode with a new episode_id (leave it unset for a '
            f'random one).') from None
    fsync_dir(root_dir)
    return path


class EpisodeBagWriter:
    """Record one episode from already-serialized CDR messages; thread-safe."""

    def __init__(self, root_dir, episode, max_chunk_s=0.5, compression='zstd',
                 chunk_size=4 * 2**20, metadata_version=5, typestore=None, fsync=False):
        """Create the bag directory, write episode.yaml ('running') and start the MCAP file.

        `fsync=True` also forces every closed chunk to disk (survives power loss, costs
        latency); by default chunks reach the OS, which survives a process crash.
        """
        if not max_chunk_s > 0:
            raise ValueError(f'max_chunk_s must be > 0 s, got {max_chunk_s!r}')
        check_metadata_version(metadata_version)
        self.episode = episode.replace(start_time_ns=episode.start_time_ns or time.time_ns(),
                                       outcome='running', outcome_cause='', end_time_ns=None)
        self.max_chunk_s = max_chunk_s
        self.metadata_version = metadata_version
        self._typestore = typestore
        self._fsync = fsync
        self.path = create_bag_dir(root_dir, self.episode)
        write_episode_file(self.path, self.episode)
        self.file_name = f'{os.path.basename(self.path)}_0.mcap'
        self._stream = open(os.path.join(self.path, self.file_name), 'xb')
        fcntl.flock(self._stream.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._writer = open_mcap(self._stream, compression, chunk_size)
        self._stream.flush()
        self._topics = {}
        self._schemas = {}
        self._lock = threading.Lock()
        self._pending_since = None
        self._pending_log_ns = None
        self._error = None
        self._closed = False
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, name='bag-flush', daemon=True)
        self._flusher.start()

    @property
    def topics(self):
        """Return a snapshot of the topics and their message counts."""
        with self._lock:
            return {k: dataclasses.replace(v) for k, v in self._topics.items()}

    def add_topic(self, topic, msgtype, qos_profile=None, msgdef=None):
        """Declare `topic` of `msgtype` ('pkg/msg/Name'); repeating an identical call is fine.

        `msgdef` is the full ros2msg text; by default it comes from the rosbags typestore.
        """
        if not topic.startswith('/'):
            raise ValueError(f'topic must be an absolute ROS name like "/camera", '
                             f'got {topic!r}')
        with self._lock:
            self._check_open()
            known = self._topics.get(topic)
            if known is not None:
                if known.msgtype != msgtype:
                    raise ValueError(f'topic {topic} is already recorded as {known.msgtype}, '
                                     f'cannot add it again as {msgtype}')
                return
            info = TopicInfo(topic, msgtype, qos_to_yaml(qos_profile))
            text, info.type_hash = self._definition(msgtype, msgdef)
            if msgtype not in self._schemas:
                encoding = 'ros2idl' if text.startswith(IDL_PREFIX) else 'ros2msg'
                self._schemas[msgtype] = self._writer.register_schema(
                    msgtype, encoding, text.encode())
            meta = {'offered_qos_profiles': info.qos_yaml}
            if info.type_hash:
                meta['topic_type_hash'] = info.type_hash
            info.channel_id = self._writer.register_channel(topic, 'cdr',
                                                            self._schemas[msgtype], meta)
            self._topics[topic] = info

    def _definition(self, msgtype, msgdef):
        store = self._typestore
        if store is None:
            from rosbags.typesys import Stores, get_typestore  # heavy import, only when needed
            store = self._typestore = get_typestore(Stores.ROS2_HUMBLE)
        try:
            type_hash = store.hash_rihs01(msgtype)
            text = msgdef if msgdef is not None else store.generate_msgdef(msgtype,
                                                                           ros_version=2)[0]
        except KeyError:
            if msgdef is None:
                raise ValueError(f'message type {msgtype!r} is not in the typestore; pass '
                                 f'msgdef= (its full .msg text) or a typestore that has it'
                                 ) from None
            type_hash, text = '', msgdef
        return text, type_hash

    def write(self, topic, data, log_time_ns, publish_time_ns=None, sequence=0):
        """Append one serialized message; `log_time_ns` is its receive time [ns]."""
        info = self._topics.get(topic)
        if info is None and not self._closed:
            raise KeyError(f'topic {topic!r} was not added; call add_topic({topic!r}, msgtype) '
                           f'first (known: {sorted(self._topics)})')
        if not isinstance(data, bytes):
            data = bytes(data)
        with self._lock:
            self._check_open()
            self._writer.add_message(info.channel_id, log_time_ns, data,
                                     publish_time_ns or log_time_ns, sequence)
            info.record(log_time_ns)
            now = time.monotonic()
            if self._pending_since is None:
                self._pending_since = now
                self._pending_log_ns = log_time_ns
            # Bounded in wall time and in log time: a simulator in lockstep runs its clock
            # faster than the wall, and the loss that matters is episode time.
            elif now - self._pending_since >= self.max_chunk_s or \
                    log_time_ns - self._pending_log_ns >= self.max_chunk_s * 1e9:
                self._flush_locked()

    def flush(self):
        """Close the current chunk and hand everything to the OS now."""
        with self._lock:
            self._check_open()
            self._flush_locked()

    def _flush_locked(self):
        self._writer.flush()
        if self._fsync:
            os.fsync(self._stream.fileno())
        self._pending_since = None

    def _flush_loop(self):
        # Ticking at a quarter period and flushing data older than three quarters keeps every
        # message's time in memory under max_chunk_s even when no further message arrives.
        period = self.max_chunk_s / 4
        while not self._stop.wait(period):
            try:
                with self._lock:
                    since = self._pending_since
                    if since is not None and time.monotonic() - since >= 3 * period:
                        self._flush_locked()
            except Exception as err:  # noqa: B902 - reported to the caller by write/finish
                self._error = err
                return

    def _check_open(self):
        # Called under the lock so that no write can slip in behind finish().
        if self._closed:
            raise RuntimeError(f'bag {self.path} is already finished; start a new '
                               f'EpisodeBagWriter for a new episode')
        if self._error is not None:
            raise RuntimeError(f'writing bag {self.path} failed in the background: '
                               f'{self._error!r}; free disk space or fix the cause, then run '
                               f'`selfimprove bag recover {self.path}`') from self._error

    def finish(self, outcome, cause='', end_time_ns=None):
        """End the episode with `outcome`: write the MCAP summary, metadata.yaml, episode.yaml.

        Returns the bag directory.
        """
        if outcome not in FINAL_OUTCOMES:
            raise ValueError(f'finish() outcome must be one of {list(FINAL_OUTCOMES)}, '
                             f'got {outcome!r}')
        self._stop.set()
        self._flusher.join()
        with self._lock:
            self._check_open()
            end = max(end_time_ns or time.time_ns(), self.episode.start_time_ns)
            self.episode = self.episode.replace(outcome=outcome, outcome_cause=cause,
                                                end_time_ns=end)
            info = rosbag2_metadata(self.file_name, list(self._topics.values()), self.episode,
                                    self.metadata_version)
            self._closed = True
            close_mcap(self._writer, self._stream, self.episode, info)
            write_bag_metadata(self.path, info)
            write_episode_file(self.path, self.episode)
        return self.path

    def abandon(self, cause: str) -> bool:
        """Stop writing after a failure (a full disk): close the file as it is, without summary.

        Every complete chunk stays readable (`selfimprove bag recover` rebuilds the index).
        episode.yaml is set to 'fault' with `cause` if the disk still takes that much; returns
        whether it did, so the caller can try again once space is back (`mark_fault`).
        """
        self._stop.set()
        self._flusher.join()
        with self._lock:
            if self._closed:
                return True
            self._closed = True
            try:
                self._stream.close()
            except OSError:
                pass  # the unflushed tail is lost either way; the complete chunks are on disk
        self.episode = self.episode.replace(outcome='fault', outcome_cause=cause,
                                            end_time_ns=time.time_ns())
        return self.mark_fault()

    def mark_fault(self) -> bool:
        """Write the abandoned episode's 'fault' into episode.yaml; return whether it worked."""
        try:
            write_episode_file(self.path, self.episode)
        except OSError:
            return False
        return True

    def __enter__(self):
        """Return self; the bag is already open."""
        return self

    def __exit__(self, exc_type, exc, traceback):
        """Finish the bag if the block did not: 'aborted' on Ctrl-C, 'fault' on an error."""
        if self._closed:
            return False
        if exc_type is None:
            self.finish('unknown', 'recorder closed without reporting an outcome')
        else:
            outcome = 'aborted' if issubclass(exc_type, KeyboardInterrupt) else 'fault'
            try:
                self.finish(outcome, f'recorder raised {exc_type.__name__}: {exc}')
            except Exception:  # noqa: B902 - keep the original error; recover_bag can fix it
                pass
        return False
