"""One bag per episode, driven by episode events: the recorder node's logic without ROS.

`EpisodeRecorder` opens a bag on `start`, writes every message while it is open, closes it on
`end` and answers with `recording` and `saved`. The episode's last joint state is often
recorded before its camera frames arrive (a sim camera renders the tick after the robot
publishes it), so after `end` the bag stays open for those frames alone, at most
`end_grace_s`, and every recorded tick keeps its frames. A write that fails (a full disk, a
lost mount) ends only the episode it belongs to: the bag is abandoned as a fault with the
cause, whoever started the episode hears `refused`, earlier bags stay untouched, and the next
`start` records again once the disk takes data. The node hands it serialized messages and
publishes its events.

The first tick of an episode is observed before its `start` (the manager starts an episode on
the observation it sees), so the recorder keeps the newest observation between episodes and
opens each bag with it: the first command a controller sends answers a recorded observation.
"""

import os
import struct
import time

from selfimprove_ros.bag.episode_bag import EpisodeBagWriter
from selfimprove_ros.bag.episode_metadata import EpisodeMetadata
from selfimprove_ros.core.topics import SIM_STATE
from selfimprove_ros.episode.events import make_event, parse_event


JOINT_STATE, IMAGE = 'sensor_msgs/msg/JointState', 'sensor_msgs/msg/Image'


def header_stamp_ns(data: bytes) -> int:
    """Return the header stamp [ns] of a serialized message that starts with a std_msgs/Header.

    CDR: a 4-byte encapsulation header (its second byte 1 = little endian), then the stamp's
    int32 seconds and uint32 nanoseconds.
    """
    order = '<' if data[1] == 1 else '>'
    sec, nanosec = struct.unpack_from(order + 'iI', data, 4)
    return sec * 1_000_000_000 + nanosec


class EpisodeRecorder:
    """Record episodes into `config.bag_dir`.

    `topics` is [(name, msgtype, qos dict)] of everything recorded, `publish(text)` sends an
    episode event, `log` is a logger (info, warning, error). `writer_class` is for tests.
    """

    def __init__(self, config, robot: str, topics, publish, log, writer_class=EpisodeBagWriter,
                 clock=time.monotonic):
        self.config, self.robot, self.topics = config, robot, list(topics)
        self.publish, self.log, self.writer_class, self.clock = publish, log, writer_class, clock
        self.joint_topic = next((name for name, kind, _ in self.topics
                                 if kind == JOINT_STATE and name.endswith('joint_states')), None)
        self.cameras = {name for name, msgtype, _ in self.topics if msgtype == IMAGE}
        # sim/success is left out: a Bool has no stamp to tell this episode's from the last.
        self.observation = {self.joint_topic, *self.cameras} | {
            name for name, _, _ in self.topics if name.endswith(SIM_STATE)}
        self.between = {}     # observation topic -> (data, log_ns) newest between episodes
        self.heard_s = {}     # joint-state topic -> when its last message came [s]
        self.writer = None
        self.closing = None   # (outcome, cause, end_ns, deadline_s) while frames are awaited
        self.stamps = {}      # topic -> newest header stamp [ns] recorded in this episode
        self.unmarked = []  # abandoned bags whose episode.yaml still says 'running'

    def on_event(self, text: str, now_ns: int):
        """Open a bag on `start`, close it on `end`."""
        try:
            event = parse_event(text)
        except ValueError as error:
            self.log.error(f'ignoring malformed episode event: {error}')
            return
        if event['event'] == 'start':
            if self.closing is not None:
                self.close(*self.closing[:3])  # its last frames never came
            if self.writer is not None and \
                    self.writer.episode.episode_id == event['episode_id']:
                self.acknowledge()  # a repeated start: the first acknowledgement was lost
                return
            if self.writer is not None:
                self.close('aborted', 'a new episode started before this one ended', now_ns)
            self.open(event, now_ns)
        elif event['event'] == 'end' and self.writer is not None and self.closing is None:
            if event['episode_id'] != self.writer.episode.episode_id:
                self.log.warning(f'end event for {event["episode_id"]} while recording '
                                 f'{self.writer.episode.episode_id}; ignored')
                return
            self.closing = (event['outcome'], event.get('cause', ''), now_ns,
                            self.clock() + self.config.end_grace_s)
            self.poll()

    def on_message(self, topic: str, data: bytes, now_ns: int):
        """Write one serialized message into the open episode, if any."""
        if topic == self.joint_topic:
            self.heard_s[topic] = self.clock()
        if self.writer is None and topic in self.observation:
            self.between[topic] = (data, now_ns)
        if self.writer is None or (self.closing is not None and topic not in self.cameras):
            return
        try:
            self.writer.write(topic, data, now_ns)
        except (OSError, RuntimeError) as error:  # RuntimeError: the flusher thread's OSError
            self.fail(error)
            return
        if topic == self.joint_topic or topic in self.cameras:
            self.stamps[topic] = max(header_stamp_ns(data), self.stamps.get(topic, 0))
        if self.closing is not None:
            self.poll()

    def poll(self):
        """After `end`: close the bag once the last joint state's frames are in (or time's up)."""
        if self.closing is None:
            return
        last_ns = self.stamps.get(self.joint_topic)
        waiting = [cam for cam in self.cameras if last_ns is not None and
                   self.stamps.get(cam, -1) < last_ns]
        if waiting and self.clock() < self.closing[3]:
            return
        if waiting:
            self.log.warning(f'episode {self.writer.episode.episode_id}: no frame of its last '
                             f'tick from {sorted(waiting)} within end_grace_s')
        self.close(*self.closing[:3])

    def open(self, event: dict, now_ns: int):
        """Start a bag for the episode announced by `event`."""
        self.mark_abandoned()
        episode = EpisodeMetadata(
            robot=self.robot, task=event['task'], instruction=event.get('instruction', ''),
            policy_version=event.get('policy_version', ''), episode_id=event['episode_id'],
            seed=event.get('seed'), start_time_ns=now_ns, extra=event.get('extra', {}))
        try:
            self.writer = self.writer_class(self.config.bag_dir, episode,
                                            max_chunk_s=self.config.max_chunk_s)
            for name, msgtype, qos in self.topics:
                self.writer.add_topic(name, msgtype, qos)
        except OSError as error:
            self.refuse(episode.episode_id, f'cannot open a bag in '
                        f'{os.path.abspath(self.config.bag_dir)}: {error}; free space there '
                        'or point bag_dir elsewhere')
            if self.writer is not None:
                self.writer.abandon(f'recorder could not start the bag: {error}')
                self.writer = None
            return
        self.log.info(f'episode {episode.episode_id}: recording to {self.writer.path}')
        self.write_first_observation(now_ns)
        self.acknowledge()

    def write_first_observation(self, now_ns: int):
        """Write the observation the episode starts from into the new bag.

        That is the newest joint state, if it came at most a second before `start`, and the
        frames and simulator state stamped at or after it.
        """
        cached, self.between = self.between, {}
        joints = cached.get(self.joint_topic)
        if joints is None or now_ns - joints[1] > 1_000_000_000:
            return
        tick_ns = header_stamp_ns(joints[0])
        for topic, (data, log_ns) in sorted(cached.items(), key=lambda item: item[1][1]):
            if header_stamp_ns(data) >= tick_ns:
                self.on_message(topic, data, log_ns)

    def acknowledge(self):
        """Tell the episode's starter that the bag is open, once the robot is heard.

        Until a joint state arrived within `config.input_timeout_s` (a reader can match a
        publisher seconds after start-up) the bag records what comes, but the starter, which
        repeats `start` until answered, hears nothing and nobody acts yet. A silent camera does
        not hold the episode back: the controller refuses stale frames itself.
        """
        episode_id = self.writer.episode.episode_id
        heard_s = self.heard_s.get(self.joint_topic)
        if self.joint_topic and (heard_s is None or
                                 self.clock() - heard_s > self.config.input_timeout_s):
            self.log.warning(f'episode {episode_id}: not acknowledged yet, no message on '
                             f'{self.joint_topic} for {self.config.input_timeout_s:g} s')
            return
        self.publish(make_event('recording', episode_id=episode_id,
                                path=os.path.abspath(self.writer.path)))

    def close(self, outcome: str, cause: str, now_ns: int):
        """Finish the open bag and announce where it is."""
        writer, self.closing, self.stamps = self.writer, None, {}
        try:
            path = writer.finish(outcome, cause, end_time_ns=now_ns)
        except (OSError, RuntimeError) as error:
            self.fail(error)
            return
        self.writer = None
        self.log.info(f'episode {writer.episode.episode_id}: {outcome} -> {path}')
        self.publish(make_event('saved', episode_id=writer.episode.episode_id,
                                path=os.path.abspath(path), outcome=outcome))

    def fail(self, error: Exception):
        """Abandon the open bag after a failed write; the episode ends as a fault."""
        writer, self.writer, self.closing, self.stamps = self.writer, None, None, {}
        cause = f'recorder could not write {writer.path}: {error}'
        if not writer.abandon(cause):
            self.unmarked.append(writer)
        self.refuse(writer.episode.episode_id, f'{cause}; its complete chunks are kept '
                    f'(`selfimprove bag recover {writer.path}`), earlier bags are untouched')

    def refuse(self, episode_id: str, cause: str):
        """Tell the episode's starter that this episode is not being recorded, and why."""
        self.log.error(f'episode {episode_id}: {cause}')
        self.publish(make_event('refused', episode_id=episode_id, cause=cause))

    def mark_abandoned(self):
        """Write 'fault' into abandoned bags now that the disk may take it."""
        self.unmarked = [writer for writer in self.unmarked if not writer.mark_fault()]

    def shutdown(self):
        """Close an open episode as aborted so its bag is complete (an ended one as it ended)."""
        if self.closing is not None:
            self.close(*self.closing[:3])
        if self.writer is not None:
            self.writer.finish('aborted', 'recorder shut down during the episode')
            self.writer = None
