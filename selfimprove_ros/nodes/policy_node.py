"""policy_node: the 10 Hz controller that runs the exported policy with ONNX Runtime.

Each robot tick (joint state) it waits for a fresh frame of each camera the model uses, at most
until decision_deadline_s (on a robot) or sync_timeout_s (lockstep), refuses stale input
(holds the arm where it is and reports `stale`), queries the policy once per chunk, publishes
the joint target of the tick, the sampled tokens with the version that chose them, and its own
timing. New models arrive on a latched topic (or in a watched directory), are verified and
warmed up in a background thread, and swapped in between ticks, between episodes unless asked
otherwise; a service rolls back. The decisions are `PolicyController`'s.
"""

import json

from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger

from selfimprove_ros.core import topics
from selfimprove_ros.core.joints import order_by_name
from selfimprove_ros.model.manifest import read_key
from selfimprove_ros.nodes.parameters import declare_config
from selfimprove_ros.nodes.ros_io import (event_of, image_to_rgb, joint_state_msg, LATCHED_QOS,
                                          RELIABLE_QOS, run_node, SENSOR_QOS, stamp_to_ns,
                                          time_msg)
from selfimprove_ros.runtime.policy_config import PolicyConfig, model_roots
from selfimprove_ros.runtime.model_loader import ModelLoader
from selfimprove_ros.runtime.policy_controller import PolicyController

# Lockstep robot_node publishes at least every lockstep_timeout_s (1 s); this is long silence.
_SILENT_ROBOT_S = 5.0


class PolicyNode(Node):
    """ROS shell around PolicyController and ModelLoader."""

    def __init__(self):
        super().__init__('policy_node')
        self.config = config = declare_config(self, PolicyConfig)
        self.core = PolicyController(config, self.get_logger(), image_to_rgb)
        key = read_key(config.model_key_file) if config.model_key_file else b''
        self.loader = ModelLoader('policy.onnx', config.cameras, config.providers,
                                  config.inference_budget_s, model_roots(config), key)
        self.command_pub = self.create_publisher(JointState, topics.JOINT_COMMANDS, RELIABLE_QOS)
        self.tokens_pub = self.create_publisher(String, topics.POLICY_ACTIONS, RELIABLE_QOS)
        self.timing_pub = self.create_publisher(String, topics.POLICY_TIMING, RELIABLE_QOS)
        self.create_subscription(String, topics.EPISODE_EVENTS, self.on_event, RELIABLE_QOS)
        self.create_subscription(String, topics.EPISODE_STATUS, self.on_status, LATCHED_QOS)
        self.create_subscription(String, config.model_topic, self.on_announce, LATCHED_QOS)
        self.create_subscription(JointState, topics.JOINT_STATES, self.on_joints, RELIABLE_QOS)
        for camera in config.cameras:
            self.create_subscription(Image, topics.camera_topic(camera),
                                     lambda msg, cam=camera: self.on_image(cam, msg), SENSOR_QOS)
        self.create_service(Trigger, topics.POLICY_ROLLBACK, self.on_rollback)
        self.create_service(Trigger, topics.POLICY_SWAP_NOW, self.on_swap_now)
        self.create_timer(config.wait_s / 4, self.on_sync_timer)
        if config.watch_dir:
            self.create_timer(2.0, lambda: self.loader.request_newest(config.watch_dir))
        if config.model_dir:
            self.loader.request(config.model_dir)

    def on_joints(self, msg: JointState):
        """Keep the newest joint state: a new robot tick, answered once its frames arrived."""
        self.tick(self.core.on_joints(stamp_to_ns(msg.header.stamp),
                                      order_by_name(msg.name, msg.position)))

    def on_image(self, camera: str, msg: Image):
        """Keep the newest frame of each camera (decoded only when the policy needs it)."""
        self.tick(self.core.on_frame(camera, stamp_to_ns(msg.header.stamp), msg))

    def on_event(self, msg: String):
        """Hand episode events to the controller."""
        event = event_of(self, msg)
        if event is not None:
            self.core.on_event(event)

    def on_status(self, msg: String):
        """Follow the manager's latched status too: a `start` missed during discovery."""
        try:
            status = json.loads(msg.data)
            self.core.on_status(str(status['phase']), status['episode_id'])
        except (ValueError, KeyError, TypeError):
            return

    def on_announce(self, msg: String):
        """Load an announced model unless it is already live."""
        try:
            announce = json.loads(msg.data)
            model_dir = announce['model_dir']
        except (ValueError, KeyError, TypeError):
            self.get_logger().error(f'ignoring malformed model announcement {msg.data[:200]!r}')
            return
        if self.core.wants(announce.get('version')):
            self.loader.request(model_dir)

    def on_rollback(self, request, response):
        """Return to the previous policy."""
        try:
            response.success, response.message = True, self.core.rollback()
        except ValueError as error:
            response.success, response.message = False, str(error)
        return response

    def on_swap_now(self, request, response):
        """Swap a waiting model in immediately."""
        self.core.on_loads(self.loader.poll())
        response.success = self.core.swap_now()
        response.message = (f'policy {self.core.slot.live.version} live' if response.success
                            else 'no policy is waiting to be swapped in')
        return response

    def on_sync_timer(self):
        """Decide on what arrived if a tick's frames are late; say why the robot is quiet."""
        silent_s = self.core.robot_silence_s()
        if silent_s > _SILENT_ROBOT_S:
            self.get_logger().warning(
                f'no joint_states on {self.resolve_topic_name(topics.JOINT_STATES)} for '
                f'{silent_s:.0f} s: is robot_node running in this ROS domain and transport?',
                throttle_duration_sec=10.0)
        self.tick(self.core.overdue())
        self.tick(self.core.unheard_tick(self.get_clock().now().nanoseconds))

    def tick(self, tick_ns):
        """Answer the robot's tick at ROS time tick_ns (None: no tick is due) and publish it."""
        if tick_ns is None:
            return
        self.core.on_loads(self.loader.poll())
        now_ns = None if self.config.lockstep else self.get_clock().now().nanoseconds
        out = self.core.tick(tick_ns, now_ns)
        if out.tokens is not None:
            self.tokens_pub.publish(String(data=json.dumps(out.tokens)))
        if out.command is not None:
            self.command_pub.publish(joint_state_msg(time_msg(tick_ns), out.command))
        self.timing_pub.publish(String(data=json.dumps(out.timing)))

    def shutdown(self):
        """Stop the loader thread."""
        self.loader.stop()


def main(args=None):
    """Run policy_node."""
    run_node(PolicyNode, args)


if __name__ == '__main__':
    main()
