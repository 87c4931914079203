"""episode_manager_node: one robot's episode cycle, from reset through practice to the saved bag.

Drives `EpisodeCycle` (episode/cycle.py): resets the scene (sim/reset in simulation; on
a real station the arms go to START_POSE and an operator confirms with episode/reset_done),
starts an episode (`start` on episode/events, repeated until the recorder answers `recording`),
ends it on a detected success, the length limit, an operator abort or a fault, announces `end`,
and waits for the recorder's `saved`. Publishes the latched status the operator console reads.
Every name is relative to the node's namespace, so each robot runs its own manager.
"""

import json

from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger

from selfimprove_ros.core import topics
from selfimprove_ros.core.joints import START_POSE
from selfimprove_ros.episode.cycle import EpisodeCycle
from selfimprove_ros.episode.episode_manager_config import EpisodeManagerConfig
from selfimprove_ros.nodes.parameters import config_as_dict, declare_config
from selfimprove_ros.nodes.ros_io import (event_of, joint_state_msg, LATCHED_QOS, RELIABLE_QOS,
                                          run_node, stamp_to_ns)
from selfimprove_ros.sim.aloha_sim import INSTRUCTIONS

SERVICES = {topics.EPISODE_RESET_DONE: 'reset_done', topics.EPISODE_ABORT: 'abort',
            topics.EPISODE_START: 'start', topics.EPISODE_MARK_FAILED: 'mark_failed'}


class EpisodeManagerNode(Node):
    """ROS shell around `EpisodeCycle` for the robot of this namespace."""

    def __init__(self):
        super().__init__('episode_manager_node')
        self.config = config = declare_config(self, EpisodeManagerConfig)
        robot = config.robot_name or self.get_namespace().strip('/') or 'robot'
        instruction = config.instruction or INSTRUCTIONS.get(config.task, '')

        self.event_pub = self.create_publisher(String, topics.EPISODE_EVENTS, RELIABLE_QOS)
        self.status_pub = self.create_publisher(String, topics.EPISODE_STATUS, LATCHED_QOS)
        self.command_pub = self.create_publisher(JointState, topics.JOINT_COMMANDS,
                                                 RELIABLE_QOS)
        self.reset_client = self.create_client(Trigger, topics.SIM_RESET)
        self.cycle = EpisodeCycle(config, robot, instruction, self, self.get_logger())

        json_topics = {topics.SUCCESS_DETECTED: self.cycle.on_success,
                       topics.STEPS_TO_GO: self.cycle.on_steps_to_go,
                       topics.POLICY_TIMING: self.cycle.on_policy_timing,
                       topics.POLICY_ACTIONS: self.cycle.on_policy_actions}
        for name, handler in json_topics.items():
            self.create_subscription(
                String, name, lambda msg, name=name, handler=handler:
                self.on_json(name, msg.data, handler), RELIABLE_QOS)
        self.create_subscription(String, topics.EPISODE_EVENTS, self.on_event, RELIABLE_QOS)
        self.create_subscription(JointState, topics.JOINT_STATES, self.on_joints, RELIABLE_QOS)
        self.create_subscription(Bool, topics.SIM_SUCCESS,
                                 lambda msg: self.cycle.on_sim_success(msg.data), RELIABLE_QOS)
        self.create_subscription(DiagnosticStatus, topics.SAFETY_STATUS, self.on_safety,
                                 RELIABLE_QOS)
        self.create_subscription(Bool, topics.ESTOP, lambda msg: self.cycle.on_estop(msg.data),
                                 LATCHED_QOS)
        for name, request in SERVICES.items():
            self.create_service(Trigger, name, lambda req, response, request=request:
                                self.serve(request, response))
        # Steady time, not /clock: in lockstep simulation /clock stops between episodes.
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(config.control_period_s, self.cycle.step, clock=steady)
        self.create_timer(config.status_period_s, self.cycle.publish_status, clock=steady)
        self.get_logger().info(f'episode manager of {robot}: {config_as_dict(config)}')

    # ---------------------------------------------------------------- the cycle's io

    def publish_event(self, text: str):
        """Publish one episode event."""
        self.event_pub.publish(String(data=text))

    def publish_status(self, text: str):
        """Publish the status document (latched)."""
        self.status_pub.publish(String(data=text))

    def publish_home(self):
        """Command START_POSE; the robot's safety guard limits how fast the arms go there."""
        self.command_pub.publish(joint_state_msg(self.get_clock().now().to_msg(), START_POSE))

    def call_reset(self):
        """Call sim/reset; None when the service is not available."""
        if not self.reset_client.service_is_ready():
            return None
        return self.reset_client.call_async(Trigger.Request())

    def cancel_reset(self, future):
        """Forget a sim/reset call that took too long."""
        self.reset_client.remove_pending_request(future)

    # ---------------------------------------------------------------- messages -> cycle

    def on_json(self, topic: str, text: str, handler):
        """Parse a JSON message and hand it on; a malformed one is logged, never fatal."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError('not a JSON object')
            handler(data)
        except (ValueError, KeyError, TypeError) as error:
            self.get_logger().warning(f'ignoring a malformed message on {topic}: {error!r}',
                                      throttle_duration_sec=5.0)

    def on_event(self, msg: String):
        """Hand episode events to the cycle (it takes the recorder's answers)."""
        event = event_of(self, msg)
        if event is not None:
            self.cycle.on_event(event)

    def on_joints(self, msg: JointState):
        """Count a control tick by the robot's stamp."""
        self.cycle.on_stamp(stamp_to_ns(msg.header.stamp))

    def on_safety(self, msg: DiagnosticStatus):
        """Hand the guard's state (values['state']) to the cycle."""
        state = next((kv.value for kv in msg.values if kv.key == 'state'), '')
        self.cycle.on_safety(state, msg.message)

    def serve(self, request: str, response):
        """Answer an operator request; a refused one is success=False with the reason."""
        try:
            response.success, response.message = self.cycle.request(request)
        except Exception as error:  # the manager must outlive any single request
            self.get_logger().error(f'{request} failed: {error!r}')
            response.success, response.message = False, f'{request} failed: {error!r}'
        return response

    def shutdown(self):
        """Announce a running episode as aborted, while the graph can still hear it.

        After SIGTERM or Ctrl-C rclpy has already shut the context down, so nothing can be
        published; the recorder closes its open bag as aborted on its own shutdown.
        """
        if self.context.ok():
            self.cycle.shutdown()


def main(args=None):
    """Run episode_manager_node."""
    run_node(EpisodeManagerNode, args)


if __name__ == '__main__':
    main()
