"""success_detector_node: d(o, g) <= s for k evaluations in a row ends an episode (the paper).

It runs no model of its own: reward_scorer_node's live reward/steps_to_go stream already IS the
frozen Stage-1 model's d(o, g) on the newest observation, so a second copy of the model would
only cost a core and could disagree with the rewards. The learned rule
(`core.success_detection`) is fed the running episode's values only, and is reset at each new
`start`. In simulation the simulator's own flag (sim/success) is recorded beside each detection
for evaluation; it ends an episode only with use_sim_success, and then says so ("source":
"sim"), so a learned detection and a privileged one are never confused. The rule is the one
audited for the reward model when its manifest records one (`selfimprove models`), because the
look-back that keeps one model honest silences another.
"""

import json

from rclpy.node import Node
from std_msgs.msg import Bool, String

from selfimprove_ros.core import topics
from selfimprove_ros.core.success_detection import (audited_rule, EpisodeSuccessMonitor,
                                                    SuccessConfig)
from selfimprove_ros.model.manifest import read_manifest
from selfimprove_ros.nodes.parameters import config_as_dict, declare_config
from selfimprove_ros.nodes.ros_io import event_of, run_node, RELIABLE_QOS
from selfimprove_ros.runtime.success_detector_config import SuccessDetectorConfig


class SuccessDetectorNode(Node):
    """ROS shell around `EpisodeSuccessMonitor`."""

    def __init__(self):
        super().__init__('success_detector_node')
        self.success_config = declare_config(self, SuccessConfig)
        self.config = declare_config(self, SuccessDetectorConfig)
        source = 'parameters'
        if self.config.reward_model_dir:
            rule = audited_rule(read_manifest(self.config.reward_model_dir))
            if rule is not None:
                self.success_config = rule
                source = f'audited for {self.config.reward_model_dir}'
        self.monitor = EpisodeSuccessMonitor(self.success_config, self.config.use_sim_success,
                                             self.config.learned_detection)
        self.detected_pub = self.create_publisher(String, topics.SUCCESS_DETECTED, RELIABLE_QOS)
        self.create_subscription(String, topics.EPISODE_EVENTS, self.on_event, RELIABLE_QOS)
        self.create_subscription(String, topics.STEPS_TO_GO, self.on_steps_to_go, RELIABLE_QOS)
        self.create_subscription(Bool, topics.SIM_SUCCESS, self.on_sim_success, RELIABLE_QOS)
        self.get_logger().info(f'success detector ({source}): '
                               f'{config_as_dict(self.success_config)}, '
                               f'{config_as_dict(self.config)}')

    def on_event(self, msg: String):
        """Reset at each new `start`, stop at its `end`."""
        event = event_of(self, msg)
        if event is None:
            return
        if event['event'] == 'start':
            self.monitor.start(event['episode_id'])
        elif event['event'] == 'end':
            self.monitor.end(event['episode_id'])

    def on_steps_to_go(self, msg: String):
        """Feed one live d(o, g) of the running episode to the detector."""
        try:
            doc = json.loads(msg.data)
            detection = self.monitor.steps_to_go(doc)
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            self.get_logger().error(f'bad {topics.STEPS_TO_GO} message ({error}): '
                                    f'{msg.data[:80]!r}', throttle_duration_sec=5.0)
            return
        self.publish(detection)

    def on_sim_success(self, msg: Bool):
        """Record the simulator's flag (std_msgs/Bool has no stamp: use the node clock)."""
        self.publish(self.monitor.sim_flag(msg.data, self.get_clock().now().nanoseconds))

    def publish(self, detection):
        """Publish a detection, once per episode."""
        if detection is None:
            return
        self.get_logger().info(f'success detected: {detection}')
        self.detected_pub.publish(String(data=json.dumps(detection)))


def main(args=None):
    """Run success_detector_node."""
    run_node(SuccessDetectorNode, args)


if __name__ == '__main__':
    main()
