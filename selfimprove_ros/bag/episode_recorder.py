"""One bag per episode, driven by episode events: the recorder node's logic without ROS.

`EpisodeRecorder` opens a bag on `start`, writes every message while it is open, closes it on
`end` and answers with `recording` and `saved`. A write that fails (a full disk, a lost mount)
ends only the episode it belongs to: the bag is abandoned as a fault with the cause, whoever
started the episode hears `refused`, earlier bags stay untouched, and the next `start` records
again once the disk takes data. The node hands it serialized messages and publishes its events.
"""

import os

from selfimprove_ros.bag.episode_bag import EpisodeBagWriter
from selfimprove_ros.bag.episode_metadata import EpisodeMetadata
from selfimprove_ros.episode.events import make_event, parse_event


class EpisodeRecorder:
    """Record episodes into `config.bag_dir`.

    `topics` is [(name, msgtype, qos dict)] of everything recorded, `publish(text)` sends an
    episode event, `log` is a logger (info, warning, error). `writer_class` is for tests.
    """

    def __init__(self, config, robot: str, topics, publish, log, writer_class=EpisodeBagWriter):
        self.config, self.robot, self.topics = config, robot, list(topics)
        self.publish, self.log, self.writer_class = publish, log, writer_class
        self.writer = None
        self.unmarked = []  # abandoned bags whose episode.yaml still says 'running'

    def on_event(self, text: str, now_ns: int):
        """Open a bag on `start`, close it on `end`."""
        try:
            event = parse_event(text)
        except ValueError as error:
            self.log.error(f'ignoring malformed episode event: {error}')
            return
        if event['event'] == 'start':
            if self.writer is not None and \
                    self.writer.episode.episode_id == event['episode_id']:
                self.acknowledge()  # a repeated start: the first acknowledgement was lost
                return
            if self.writer is not None:
                self.close('aborted', 'a new episode started before this one ended', now_ns)
            self.open(event, now_ns)
        elif event['event'] == 'end' and self.writer is not None:
            if event['episode_id'] != self.writer.episode.episode_id:
                self.log.warning(f'end event for {event["episode_id"]} while recording '
                                 f'{self.writer.episode.episode_id}; ignored')
                return
            self.close(event['outcome'], event.get('cause', ''), now_ns)

    def on_message(self, topic: str, data: bytes, now_ns: int):
        """Write one serialized message into the open episode, if any."""
        if self.writer is None:
            return
        try:
            self.writer.write(topic, data, now_ns)
        except (OSError, RuntimeError) as error:  # RuntimeError: the flusher thread's OSError
            self.fail(error)

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
        self.acknowledge()

    def acknowledge(self):
        """Tell the episode's starter that the bag is open."""
        self.publish(make_event('recording', episode_id=self.writer.episode.episode_id,
                                path=os.path.abspath(self.writer.path)))

    def close(self, outcome: str, cause: str, now_ns: int):
        """Finish the open bag and announce where it is."""
        writer = self.writer
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
        writer, self.writer = self.writer, None
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
        """Close an open episode as aborted so its bag is complete."""
        if self.writer is not None:
            self.writer.finish('aborted', 'recorder shut down during the episode')
            self.writer = None
