"""recorder_node: one crash-safe rosbag2 (MCAP) bag per episode.

Subscribes to every topic of the contract as serialized CDR (no decode/encode of images), opens a
bag on each `start` event and closes it on `end`, then announces the bag with a `saved` event.
Between episodes nothing is written. On shutdown an open episode is closed as 'aborted'; a
failed write (a full disk) ends the episode as a fault (`EpisodeRecorder`).
"""

import os

from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.serialization import deserialize_message
from std_msgs.msg import String

from selfimprove_ros.bag.episode_recorder import EpisodeRecorder
from selfimprove_ros.bag.recorder_config import RecorderConfig
from selfimprove_ros.core import topics
from selfimprove_ros.core.topics import QOS_CLASSES
from selfimprove_ros.nodes.parameters import declare_config
from selfimprove_ros.nodes.ros_io import message_class, qos_profile, RELIABLE_QOS, run_node


class RecorderNode(Node):
    """ROS shell around `EpisodeRecorder`."""

    def __init__(self):
        super().__init__('recorder_node')
        self.config = declare_config(self, RecorderConfig)
        robot = self.config.robot_name or self.get_namespace().strip('/') or 'robot'
        specs = topics.contract(self.config.cameras, sim=self.config.record_sim_topics)
        event_pub = self.create_publisher(String, topics.EPISODE_EVENTS, RELIABLE_QOS)
        self.recorder = EpisodeRecorder(
            self.config, robot,
            [(self.resolve_topic_name(s.name), s.msgtype, QOS_CLASSES[s.qos]) for s in specs],
            lambda text: event_pub.publish(String(data=text)), self.get_logger())
        for spec in specs:
            self.create_subscription(
                message_class(spec.msgtype), spec.name,
                lambda data, spec=spec: self.on_message(spec, data), self._subscribe_qos(spec),
                raw=True)
        # Steady time: after `end` the bag waits end_grace_s for the last frames, and /clock
        # stops between episodes in lockstep simulation.
        self.create_timer(0.05, self.recorder.poll,
                          clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.get_logger().info(f'recording {len(specs)} topics per episode into '
                               f'{os.path.abspath(self.config.bag_dir)}')

    def _subscribe_qos(self, spec):
        # A deeper queue than the publisher's keeps bursts from being dropped while we write.
        return qos_profile(spec.qos, self.config.queue_depth)

    def on_message(self, spec, data: bytes):
        """Hand one serialized message to the recorder (events first act on the episode)."""
        now_ns = self.get_clock().now().nanoseconds
        if spec.name == topics.EPISODE_EVENTS:
            self.recorder.on_event(deserialize_message(data, String).data, now_ns)
        # As `ros2 bag record` would store it: the resolved name.
        self.recorder.on_message(self.resolve_topic_name(spec.name), data, now_ns)

    def shutdown(self):
        """Close an open episode as aborted so its bag is complete."""
        self.recorder.shutdown()


def main(args=None):
    """Run recorder_node."""
    run_node(RecorderNode, args)


if __name__ == '__main__':
    main()
