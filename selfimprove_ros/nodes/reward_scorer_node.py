"""reward_scorer_node: the frozen Stage-1 reward model, live on the robot and after each episode.

Live: a timer on the node's clock scores the newest complete observation (joint states plus the
model's cameras) once, if it is newer than the last one scored, and publishes d(o, g) [control
ticks] on reward/steps_to_go; frames that arrive while it is busy are skipped, never queued
(App. F: success detection runs asynchronously on the latest observation). In lockstep
simulation the node clock is /clock, so the scorer sees every simulated tick, as it sees every
tick of a real robot, however fast the simulator runs. success_detector_node turns this stream
into detected successes.

After each episode: the recorder's `saved` event hands the bag to a worker thread that labels
every aligned tick (data/episode_labelling.py), writes steps_to_go.npz beside the bag and
answers with a `labelled` event. Nothing real-time waits for labels, so the worker only has to
keep out of the live loop's way. The model is loaded once and never replaced: rewards must come
from the same frozen model for the whole of practice, unlike the policy, which is hot-swapped.
"""

import json

from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String

from selfimprove_ros.core import topics
from selfimprove_ros.episode.events import make_event
from selfimprove_ros.core.joints import order_by_name
from selfimprove_ros.nodes.parameters import config_as_dict, declare_config
from selfimprove_ros.nodes.ros_io import (event_of, image_to_rgb, RELIABLE_QOS, run_node,
                                          SENSOR_QOS, stamp_to_ns)
from selfimprove_ros.runtime.onnx_model import load_model, ModelRejected
from selfimprove_ros.runtime.reward_scoring import JOINTS, LabellingWorker, LiveScorer
from selfimprove_ros.runtime.reward_scorer_config import RewardScorerConfig

LABELS_PERIOD_S = 0.1  # how often finished label files are announced [s]


class RewardScorerNode(Node):
    """ROS shell around LiveScorer and LabellingWorker (the frozen reward model)."""

    def __init__(self):
        super().__init__('reward_scorer_node')
        self.config = config = declare_config(self, RewardScorerConfig)
        try:
            model = load_model(config.reward_model_dir, 'reward.onnx', cameras=config.cameras,
                               providers=config.providers, threads=config.threads)
        except ModelRejected as error:
            self.get_logger().fatal(f'cannot start without a reward model: {error}')
            raise
        self.scorer = LiveScorer(model, config, image_to_rgb, self.get_logger())
        self.worker = LabellingWorker(model, config)
        self.d_pub = self.create_publisher(String, topics.STEPS_TO_GO, RELIABLE_QOS)
        self.event_pub = self.create_publisher(String, topics.EPISODE_EVENTS, RELIABLE_QOS)
        self.create_subscription(String, topics.EPISODE_EVENTS, self.on_event, RELIABLE_QOS)
        self.create_subscription(JointState, topics.JOINT_STATES, self.on_joints, RELIABLE_QOS)
        for camera in self.scorer.cameras:
            self.create_subscription(Image, topics.camera_topic(camera), lambda msg, cam=camera:
                                     self.scorer.sync.add(cam, stamp_to_ns(msg.header.stamp),
                                                          msg), SENSOR_QOS)
        self.create_timer(config.live_period_s, self.score_newest)
        # Steady time: under lockstep /clock may stop between episodes, labels must still go out.
        self.create_timer(LABELS_PERIOD_S, self.publish_labelled,
                          clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.get_logger().info(
            f'reward model {model.version} ({model.providers[0]}, '
            f'{model.inference_s * 1e3:.1f} ms) on cameras {self.scorer.cameras}; '
            f'config {config_as_dict(config)}')

    def on_event(self, msg: String):
        """Track the running episode; queue each saved bag for labelling."""
        event = event_of(self, msg)
        if event is None:
            return
        self.scorer.on_event(event)
        if event['event'] == 'saved':
            self.worker.submit(event['episode_id'], event['path'])

    def on_joints(self, msg: JointState):
        """Keep the newest joint positions in contract order."""
        try:
            positions = order_by_name(msg.name, msg.position)
        except ValueError as error:
            self.get_logger().error(f'joint_states: {error}', throttle_duration_sec=5.0)
            return
        self.scorer.sync.add(JOINTS, stamp_to_ns(msg.header.stamp), positions)

    def score_newest(self):
        """Score the newest complete observation, once, and publish d(o, g)."""
        scored = self.scorer.score_newest()
        if scored is not None:
            self.d_pub.publish(String(data=json.dumps(scored)))

    def publish_labelled(self):
        """Announce each finished label file with a `labelled` event (on the executor thread)."""
        for episode_id, bag_dir, path, error in self.worker.finished():
            if path is None:
                self.get_logger().error(f'episode {episode_id}: cannot label {bag_dir}: {error}')
                continue
            self.get_logger().info(f'episode {episode_id}: labelled -> {path}')
            self.event_pub.publish(String(data=make_event('labelled', episode_id=episode_id,
                                                          path=path)))

    def shutdown(self):
        """Stop the worker after the bag it is labelling (if any)."""
        self.worker.stop()


def main(args=None):
    """Run reward_scorer_node."""
    run_node(RewardScorerNode, args)


if __name__ == '__main__':
    main()
