"""reward_scorer_node: the frozen Stage-1 reward model, live on the robot and after each episode.

Live: a timer on the node's clock scores the newest complete observation (joint states plus the
model's cameras) once, if it is newer than the last one scored, and publishes d(o, g) [control
ticks] on reward/steps_to_go; frames that arrive while it is busy are skipped, never queued
(App. F: success detection runs asynchronously on the latest observation). In lockstep
simulation the node clock is /clock, so the scorer sees every simulated tick, as it sees every
tick of a real robot, however fast the simulator runs. success_detector_node turns this stream
into detected successes.

After each episode: the recorder's `saved` event hands the bag to a worker thread that labels
every aligned tick (runtime/episode_labelling.py), writes steps_to_go.npz beside the bag and
answers with a `labelled` event. Nothing real-time waits for labels, so the worker only has to
keep out of the live loop's way. The model is loaded once and never replaced: rewards must come
from the same frozen model for the whole of practice, unlike the policy, which is hot-swapped.
"""

import json
import queue
import threading

from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String

from selfimprove_ros.core import topics
from selfimprove_ros.core.episode_events import make_event
from selfimprove_ros.core.joints import order_by_name
from selfimprove_ros.nodes.parameters import config_as_dict, declare_config
from selfimprove_ros.nodes.ros_io import (event_of, image_to_rgb, RELIABLE_QOS, run_node,
                                          SENSOR_QOS, stamp_to_ns)
from selfimprove_ros.runtime.episode_labelling import label_bag
from selfimprove_ros.runtime.onnx_model import load_model, ModelRejected
from selfimprove_ros.runtime.policy_runtime import observation_inputs
from selfimprove_ros.runtime.scorer_config import ScorerConfig

JOINTS = 'joint_states'
LABELS_PERIOD_S = 0.1  # how often finished label files are announced [s]


class RewardScorerNode(Node):
    """ROS shell around the frozen reward model: live d(o, g) and per-episode labels."""

    def __init__(self):
        super().__init__('reward_scorer_node')
        self.config = declare_config(self, ScorerConfig)
        try:
            self.model = load_model(self.config.reward_model_dir, 'reward.onnx',
                                    cameras=self.config.cameras,
                                    providers=self.config.providers, threads=self.config.threads)
        except ModelRejected as error:
            self.get_logger().fatal(f'cannot start without a reward model: {error}')
            raise
        self.cameras = list(self.model.codec.config.cameras)
        self.latest = {}  # input name -> (stamp [ns], joint positions or Image message)
        self.episode_id = ''
        self.instruction_ids = self.encode(self.config.instruction)
        self.scored_ns = None  # stamp of the last observation scored
        self.jobs, self.done = queue.Queue(), queue.Queue()
        self.worker = threading.Thread(target=self.label_jobs, name='labelling', daemon=True)
        self.worker.start()

        self.d_pub = self.create_publisher(String, topics.STEPS_TO_GO, RELIABLE_QOS)
        self.event_pub = self.create_publisher(String, topics.EPISODE_EVENTS, RELIABLE_QOS)
        self.create_subscription(String, topics.EPISODE_EVENTS, self.on_event, RELIABLE_QOS)
        self.create_subscription(JointState, topics.JOINT_STATES, self.on_joints, RELIABLE_QOS)
        for camera in self.cameras:
            self.create_subscription(Image, topics.camera_topic(camera),
                                     lambda msg, cam=camera: self.on_image(cam, msg), SENSOR_QOS)
        self.create_timer(self.config.live_period_s, self.score_newest)
        # Steady time: under lockstep /clock may stop between episodes, labels must still go out.
        self.create_timer(LABELS_PERIOD_S, self.publish_labelled,
                          clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.get_logger().info(
            f'reward model {self.model.version} ({self.model.providers[0]}, '
            f'{self.model.inference_s * 1e3:.1f} ms) on cameras {self.cameras}; '
            f'config {config_as_dict(self.config)}')

    def encode(self, instruction: str):
        """Return the model's word ids of an instruction."""
        return self.model.codec.encode_instructions([instruction])[0]

    def on_event(self, msg: String):
        """Track the running episode; queue each saved bag for labelling."""
        event = event_of(self, msg)
        if event is None:
            return
        kind = event['event']
        if kind == 'start' and event['episode_id'] != self.episode_id:
            self.episode_id = event['episode_id']
            self.instruction_ids = self.encode(event.get('instruction') or
                                               self.config.instruction)
        elif kind == 'end' and event['episode_id'] == self.episode_id:
            self.episode_id = ''
        elif kind == 'saved':
            self.jobs.put((event['episode_id'], event['path']))

    def on_joints(self, msg: JointState):
        """Keep the newest joint positions in contract order."""
        try:
            positions = order_by_name(msg.name, msg.position)
        except ValueError as error:
            self.get_logger().error(f'joint_states: {error}', throttle_duration_sec=5.0)
            return
        self.keep(JOINTS, stamp_to_ns(msg.header.stamp), positions)

    def on_image(self, camera: str, msg: Image):
        """Keep the newest frame (decoded only when it is scored)."""
        self.keep(camera, stamp_to_ns(msg.header.stamp), msg)

    def keep(self, name: str, stamp_ns: int, value):
        """Hold the newest sample of one input; an older one (reordered delivery) is dropped."""
        if name not in self.latest or stamp_ns >= self.latest[name][0]:
            self.latest[name] = (stamp_ns, value)

    def observation_stamp(self):
        """Return the stamp of the newest complete observation [ns] (its oldest input), or None."""
        if len(self.latest) < 1 + len(self.cameras):
            return None
        stamps = {name: stamp for name, (stamp, _) in self.latest.items()}
        newest = max(stamps.values())
        lagging = [name for name, stamp in stamps.items()
                   if newest - stamp > self.config.max_skew_s * 1e9]
        if lagging:
            self.get_logger().warning(f'not scoring: {lagging} lag the newest input by more than '
                                      f'{self.config.max_skew_s} s', throttle_duration_sec=5.0)
            return None
        return min(stamps.values())

    def score_newest(self):
        """Score the newest complete observation, once."""
        stamp_ns = self.observation_stamp()
        if stamp_ns is None or (self.scored_ns is not None and stamp_ns <= self.scored_ns):
            return
        self.scored_ns = stamp_ns
        try:
            frames = {cam: image_to_rgb(self.latest[cam][1]) for cam in self.cameras}
            inputs = observation_inputs(self.model, frames, self.latest[JOINTS][1],
                                        self.instruction_ids)
            steps_to_go = float(self.model.run(*inputs)[1][0])
        except Exception as error:  # noqa: B902 - a bad frame must not stop scoring (ORT too)
            self.get_logger().error(f'cannot score the observation at {stamp_ns}: {error}',
                                    throttle_duration_sec=5.0)
            return
        self.d_pub.publish(String(data=json.dumps({
            'stamp_ns': stamp_ns, 'steps_to_go': steps_to_go, 'version': self.model.version,
            'episode_id': self.episode_id})))

    def label_jobs(self):
        """Worker thread: label saved bags one by one until shutdown queues None."""
        while True:
            job = self.jobs.get()
            if job is None:
                return
            episode_id, bag_dir = job
            try:
                path = label_bag(bag_dir, self.model, self.config.control_period_s,
                                 self.config.success_bonus, self.config.batch_size,
                                 self.config.instruction)
            except Exception as error:  # noqa: B902 - a bad bag must not stop the worker
                self.done.put((episode_id, bag_dir, None, f'{type(error).__name__}: {error}'))
            else:
                self.done.put((episode_id, bag_dir, path, ''))

    def publish_labelled(self):
        """Announce each finished label file with a `labelled` event (on the executor thread)."""
        while True:
            try:
                episode_id, bag_dir, path, error = self.done.get_nowait()
            except queue.Empty:
                return
            if path is None:
                self.get_logger().error(f'episode {episode_id}: cannot label {bag_dir}: {error}')
                continue
            self.get_logger().info(f'episode {episode_id}: labelled -> {path}')
            self.event_pub.publish(String(data=make_event('labelled', episode_id=episode_id,
                                                          path=path)))

    def shutdown(self):
        """Stop the worker after the bag it is labelling (if any)."""
        self.jobs.put(None)
        self.worker.join(timeout=30.0)


def main(args=None):
    """Run reward_scorer_node."""
    run_node(RewardScorerNode, args)


if __name__ == '__main__':
    main()
