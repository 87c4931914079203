"""success_detector_node: d(o, g) <= s for k evaluations in a row ends an episode (the paper).

It runs no model of its own: reward_scorer_node's live reward/steps_to_go stream already IS the
frozen Stage-1 model's d(o, g) on the newest observation, so a second copy of the model would
only cost a core and could disagree with the rewards. The learned rule
(`core.success_detection`) is fed the running episode's values only, and is reset at each new
`start`. In simulation the simulator's own flag (sim/success) is recorded beside each detection
for evaluation; it ends an episode only with use_sim_success, and then says so ("source":
"sim"), so a learned detection and a privileged one are never confused.
"""

import json
import math

from rclpy.node import Node
from std_msgs.msg import Bool, String

from selfimprove_ros.core import topics
from selfimprove_ros.core.success_detection import SuccessConfig, SuccessDetector
from selfimprove_ros.nodes.parameters import config_as_dict, declare_config
from selfimprove_ros.nodes.ros_io import event_of, run_node, RELIABLE_QOS
from selfimprove_ros.runtime.scorer_config import DetectorConfig


class EpisodeSuccessMonitor:
    """Per-episode bookkeeping around `SuccessDetector`: which episode, sim flag, fire once."""

    def __init__(self, success: SuccessConfig, use_sim_success: bool = False):
        self.detector = SuccessDetector(success)
        self.use_sim_success = use_sim_success
        self.episode_id = None
        self.sim_success = False
        self.fired = False
        self.last_d = None

    def start(self, episode_id: str):
        """Begin a new episode (a repeated `start` of the running one changes nothing)."""
        if episode_id == self.episode_id:
            return
        self.episode_id, self.sim_success, self.fired, self.last_d = episode_id, False, False, None
        self.detector.reset()

    def end(self, episode_id: str):
        """Stop listening to an episode that ended."""
        if episode_id == self.episode_id:
            self.episode_id = None

    def steps_to_go(self, doc: dict):
        """Feed one live evaluation; return the detection to publish, or None."""
        if self.episode_id is None or doc.get('episode_id') != self.episode_id:
            return None
        d = float(doc['steps_to_go'])
        self.last_d = d
        if not self.detector.update(d) or self.fired:
            return None
        return self._fire(int(doc['stamp_ns']), d, 'learned')

    def sim_flag(self, value: bool, stamp_ns: int):
        """Record the simulator's success flag; return a detection only with use_sim_success."""
        if self.episode_id is None or not value:
            return None
        self.sim_success = True
        if not self.use_sim_success or self.fired:
            return None
        return self._fire(stamp_ns, self.last_d, 'sim')

    def _fire(self, stamp_ns: int, d, source: str) -> dict:
        self.fired = True
        return {'episode_id': self.episode_id, 'stamp_ns': stamp_ns,
                'steps_to_go': None if d is None or math.isnan(d) else d,
                'sim_success': self.sim_success, 'source': source}


class SuccessDetectorNode(Node):
    """ROS shell around `EpisodeSuccessMonitor`."""

    def __init__(self):
        super().__init__('success_detector_node')
        self.success_config = declare_config(self, SuccessConfig)
        self.config = declare_config(self, DetectorConfig)
        self.monitor = EpisodeSuccessMonitor(self.success_config, self.config.use_sim_success)
        self.detected_pub = self.create_publisher(String, topics.SUCCESS_DETECTED, RELIABLE_QOS)
        self.create_subscription(String, topics.EPISODE_EVENTS, self.on_event, RELIABLE_QOS)
        self.create_subscription(String, topics.STEPS_TO_GO, self.on_steps_to_go, RELIABLE_QOS)
        self.create_subscription(Bool, topics.SIM_SUCCESS, self.on_sim_success, RELIABLE_QOS)
        self.get_logger().info(f'success detector: {config_as_dict(self.success_config)}, '
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
