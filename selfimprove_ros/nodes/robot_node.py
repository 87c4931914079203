"""robot_node: the ALOHA arms (simulated or real) behind the safety guard.

Subscribes 14-joint position commands, passes them through `SafetyGuard`, drives the backend once
per control tick and publishes joint states. With the sim backend it also publishes the full
simulator state (for the camera nodes to render), the simulator's own success flag, and, in
lockstep mode, /clock: the simulator then advances one tick as soon as the controller has
answered the newest observation, so collection and practice run faster than real time.
Real followers: `interbotix` drives them itself, `bringup` beside Trossen's running bringup.
"""

import json

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from std_srvs.srv import Trigger

from selfimprove_ros.core import topics
from selfimprove_ros.core.joints import order_by_name
from selfimprove_ros.core.safety import GuardState, SafetyConfig
from selfimprove_ros.nodes.arm_backends import make_backend
from selfimprove_ros.nodes.parameters import declare_config
from selfimprove_ros.nodes.ros_io import (run_node, LATCHED_QOS, RELIABLE_QOS, joint_state_msg,
                                          stamp_to_ns, time_msg)
from selfimprove_ros.robot.control_loop import ControlLoop
from selfimprove_ros.robot.robot_config import RobotConfig
from selfimprove_ros.robot.scheduling import request_realtime
from selfimprove_ros.sim.aloha_sim import scene_name

_LEVEL = {GuardState.OK: DiagnosticStatus.OK, GuardState.CLAMPED: DiagnosticStatus.WARN,
          GuardState.HOLD_NO_COMMAND: DiagnosticStatus.WARN}


class RobotNode(Node):
    """ROS shell around a robot backend and the control loop (`ControlLoop`)."""

    def __init__(self):
        super().__init__('robot_node')
        self.config = config = declare_config(self, RobotConfig)
        safety = declare_config(self, SafetyConfig, prefix='safety.')
        self.is_sim = config.backend == 'sim'
        self.loop = ControlLoop(config, safety, make_backend(self, config), self.is_sim)
        self.state_pub = self.create_publisher(JointState, topics.JOINT_STATES, RELIABLE_QOS)
        self.status_pub = self.create_publisher(
            DiagnosticStatus, topics.SAFETY_STATUS, RELIABLE_QOS)
        self.create_subscription(JointState, topics.JOINT_COMMANDS, self.on_command, RELIABLE_QOS)
        self.create_subscription(Bool, topics.ESTOP, self.on_estop, LATCHED_QOS)
        if self.is_sim:
            self.sim_state_pub = self.create_publisher(JointState, topics.SIM_STATE, RELIABLE_QOS)
            self.success_pub = self.create_publisher(Bool, topics.SIM_SUCCESS, RELIABLE_QOS)
            self.create_service(Trigger, topics.SIM_RESET, self.on_reset)
            self.loop.start_scene()
        if config.lockstep:
            self.clock_pub = self.create_publisher(Clock, '/clock', RELIABLE_QOS)
            self.create_timer(config.lockstep_timeout_s / 4, self.on_lockstep_timer)
            self.publish_state()
        else:
            self.create_timer(config.control_period_s, self.tick)
        granted, scheduling = request_realtime(config.realtime_priority)
        log = self.get_logger().info if granted else self.get_logger().warning
        log(f'robot_node up: backend={config.backend} lockstep={config.lockstep} '
            f'period={config.control_period_s}s {scheduling}'.rstrip())

    def now_ns(self) -> int:
        """Robot time: the simulator's own clock in lockstep, else the node clock."""
        return self.loop.now_ns(self.get_clock().now().nanoseconds)

    def on_command(self, msg: JointState):
        """Hand a command to the guard; in lockstep, an answer to the newest state steps."""
        positions, error = None, ''
        try:
            positions = order_by_name(msg.name, msg.position)
        except ValueError as bad:
            error = str(bad)
        reason, steps = self.loop.submit(positions, stamp_to_ns(msg.header.stamp),
                                         self.now_ns(), error)
        if reason:
            self.get_logger().warning(f'command refused, holding: {reason}',
                                      throttle_duration_sec=1.0)
        if steps:
            self.tick()

    def on_estop(self, msg: Bool):
        """Engage or release the e-stop."""
        change = self.loop.set_estop(msg.data)
        if change:
            (self.get_logger().error if msg.data else self.get_logger().warn)(f'e-stop {change}')

    def on_lockstep_timer(self):
        """Step anyway when the controller has not answered within lockstep_timeout_s."""
        if self.loop.overdue():
            self.tick()

    def tick(self):
        """One control tick: guard -> backend -> (sim step) -> publish."""
        decision, problem = self.loop.step(self.now_ns())
        if problem:
            self.get_logger().warning(f'not driving the arms: {problem}',
                                      throttle_duration_sec=2.0)
            return
        self.publish_state(self.loop.stamp_ns)
        self.publish_status(decision)

    def publish_state(self, stamp_ns: int = None):
        """Publish joint states (and, in sim, the full state, success and clock) at stamp_ns."""
        stamp = time_msg(self.now_ns() if stamp_ns is None else stamp_ns)
        if self.config.lockstep:
            self.clock_pub.publish(Clock(clock=stamp))
        positions, velocities = self.loop.backend.read()
        if self.is_sim:
            sim = self.loop.backend.sim
            self.success_pub.publish(Bool(data=bool(sim.succeeded)))
            state = joint_state_msg(stamp, sim.full_qpos(), names=())
            state.header.frame_id = scene_name(sim.config.task, sim.seed)
            self.sim_state_pub.publish(state)
        self.state_pub.publish(joint_state_msg(stamp, positions, velocities))

    def publish_status(self, decision):
        """Publish what the guard decided this tick."""
        status = DiagnosticStatus(
            level=_LEVEL.get(decision.state, DiagnosticStatus.ERROR), name='safety',
            message=decision.reason or decision.state.value,
            hardware_id=self.get_namespace(),
            values=[KeyValue(key='state', value=decision.state.value)])
        self.status_pub.publish(status)

    def on_reset(self, request, response):
        """Sim: start a new scene with the next seed; the guard forgets the old command."""
        seed = self.loop.reset()
        self.publish_state()
        response.success = True
        response.message = json.dumps({'seed': seed, 'time_ns': self.now_ns()})
        return response

    def shutdown(self):
        """Release the backend."""
        self.loop.backend.close()


def main(args=None):
    """Run robot_node."""
    run_node(RobotNode, args)


if __name__ == '__main__':
    main()
