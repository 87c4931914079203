"""recorder_node: one crash-safe rosbag2 (MCAP) bag per episode.

Subscribes to every topic of the contract as serialized CDR (no decode/encode of images), opens a
bag on each `start` event and closes it on `end`, then announces the bag with a `saved` event.
Between episodes nothing is written. On shutdown an open episode is closed as 'aborted'.
"""

import os

from rclpy.node import Node
from rclpy.serialization import deserialize_message
from rclpy.qos import QoSProfile
from std_msgs.msg import String

from selfimprove_ros.bag.episode_bag import EpisodeBagWriter
from selfimprove_ros.bag.episode_metadata import EpisodeMetadata
from selfimprove_ros.bag.recorder_config import RecorderConfig
from selfimprove_ros.core import topics
from selfimprove_ros.core.episode_events import make_event, parse_event
from selfimprove_ros.nodes.parameters import declare_config
from selfimprove_ros.nodes.ros_io import run_node, message_class, QOS, RELIABLE_QOS

_BAG_QOS = {
    'sensor': {'history': 'keep_last', 'depth': 1, 'reliability': 'best_effort',
               'durability': 'volatile'},
    'reliable': {'history': 'keep_last', 'depth': 10, 'reliability': 'reliable',
                 'durability': 'volatile'},
    'latched': {'history': 'keep_last', 'depth': 1, 'reliability': 'reliable',
                'durability': 'transient_local'},
}


class RecorderNode(Node):
    """ROS shell around `EpisodeBagWriter`."""

    def __init__(self):
        super().__init__('recorder_node')
        self.config = declare_config(self, RecorderConfig)
        self.robot = self.config.robot_name or self.get_namespace().strip('/') or 'robot'
        self.specs = topics.contract(self.config.cameras, sim=self.config.record_sim_topics)
        self.writer = None
        self.event_pub = self.create_publisher(String, topics.EPISODE_EVENTS, RELIABLE_QOS)
        for spec in self.specs:
            self.create_subscription(
                message_class(spec.msgtype), spec.name,
                lambda data, spec=spec: self.on_message(spec, data), self._subscribe_qos(spec),
                raw=True)
        self.get_logger().info(f'recording {len(self.specs)} topics per episode into '
                               f'{os.path.abspath(self.config.bag_dir)}')

    def _subscribe_qos(self, spec):
        # A deeper queue than the publisher's keeps bursts from being dropped while we write.
        qos = QOS[spec.qos]
        return QoSProfile(history=qos.history, depth=max(qos.depth, self.config.queue_depth),
                          reliability=qos.reliability, durability=qos.durability)

    def full_name(self, spec) -> str:
        """Return the resolved topic name, as `ros2 bag record` would store it."""
        return self.resolve_topic_name(spec.name)

    def on_message(self, spec, data: bytes):
        """Write one serialized message into the open episode (and react to events)."""
        now_ns = self.get_clock().now().nanoseconds
        if spec.name == topics.EPISODE_EVENTS:
            self.on_event(deserialize_message(data, String).data, now_ns)
        if self.writer is not None:
            self.writer.write(self.full_name(spec), data, now_ns)

    def on_event(self, text: str, now_ns: int):
        """Open a bag on `start`, close it on `end`."""
        try:
            event = parse_event(text)
        except ValueError as error:
            self.get_logger().error(f'ignoring malformed episode event: {error}')
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
                self.get_logger().warning(f'end event for {event["episode_id"]} while recording '
                                          f'{self.writer.episode.episode_id}; ignored')
                return
            self.close(event['outcome'], event.get('cause', ''), now_ns)

    def open(self, event: dict, now_ns: int):
        """Start a bag for the episode announced by `event`."""
        episode = EpisodeMetadata(
            robot=self.robot, task=event['task'], instruction=event.get('instruction', ''),
            policy_version=event.get('policy_version', ''), episode_id=event['episode_id'],
            seed=event.get('seed'), start_time_ns=now_ns, extra=event.get('extra', {}))
        self.writer = EpisodeBagWriter(self.config.bag_dir, episode,
                                       max_chunk_s=self.config.max_chunk_s)
        for spec in self.specs:
            self.writer.add_topic(self.full_name(spec), spec.msgtype, _BAG_QOS[spec.qos])
        self.get_logger().info(f'episode {episode.episode_id}: recording to {self.writer.path}')
        self.acknowledge()

    def acknowledge(self):
        """Tell the episode's starter that the bag is open."""
        self.event_pub.publish(String(data=make_event(
            'recording', episode_id=self.writer.episode.episode_id,
            path=os.path.abspath(self.writer.path))))

    def close(self, outcome: str, cause: str, now_ns: int):
        """Finish the open bag and announce where it is."""
        writer, self.writer = self.writer, None
        path = writer.finish(outcome, cause, end_time_ns=now_ns)
        self.get_logger().info(f'episode {writer.episode.episode_id}: {outcome} -> {path}')
        self.event_pub.publish(String(data=make_event(
            'saved', episode_id=writer.episode.episode_id, path=os.path.abspath(path),
            outcome=outcome)))

    def shutdown(self):
        """Close an open episode as aborted so its bag is complete."""
        if self.writer is not None:
            self.writer.finish('aborted', 'recorder shut down during the episode')


def main(args=None):
    """Run recorder_node."""
    run_node(RecorderNode, args)


if __name__ == '__main__':
    main()
