"""robot_node: the ALOHA arms (simulated or real) behind the safety guard.

Subscribes 14-joint position commands, passes them through `SafetyGuard`, drives the backend once
per control tick and publishes joint states. With the sim backend it also publishes the full
simulator state (for the camera nodes to render), the simulator's own success flag, and, in
lockstep mode, /clock: the simulator then advances one tick as soon as the controller has
answered the newest observation, so collection and practice run faster than real time.
Real followers: `interbotix` drives them itself, `bringup` beside Trossen's running bringup.
"""

import json
import time

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from std_srvs.srv import Trigger

from selfimprove_ros.core import topics
from selfimprove_ros.core.joints import order_by_name
from selfimprove_ros.core.safety import GuardState, SafetyConfig, SafetyGuard
from selfimprove_ros.nodes.bringup_arms import BringupArms
from selfimprove_ros.nodes.interbotix_arms import InterbotixBackend
from selfimprove_ros.nodes.parameters import declare_config
from selfimprove_ros.nodes.ros_io import (run_node, LATCHED_QOS, RELIABLE_QOS, joint_state_msg,
                                          stamp_to_ns, time_msg)
from selfimprove_ros.robot.backends import SimBackend
from selfimprove_ros.robot.bringup import BringupConfig
from selfimprove_ros.robot.robot_config import RobotConfig
from selfimprove_ros.sim.aloha_sim import SimConfig

_LEVEL = {GuardState.OK: DiagnosticStatus.OK, GuardState.CLAMPED: DiagnosticStatus.WARN,
          GuardState.HOLD_NO_COMMAND: DiagnosticStatus.WARN}


class RobotNode(Node):
    """ROS shell around a robot backend and the safety guard."""

    def __init__(self):
        super().__init__('robot_node')
        self.config = declare_config(self, RobotConfig)
        self.safety = declare_config(self, SafetyConfig, prefix='safety.')
        self.guard = SafetyGuard(self.safety, self.config.control_period_s)
        self.period_ns = int(round(self.config.control_period_s * 1e9))
        self.is_sim = self.config.backend == 'sim'
        if self.is_sim:
            sim_config = declare_config(self, SimConfig, prefix='sim.')
            if abs(sim_config.control_period_s - self.config.control_period_s) > 1e-9:
                sim_config = SimConfig(sim_config.task, self.config.control_period_s)
            self.backend = SimBackend(sim_config)
            # The first reset repeats the start-up scene, so episode k of a run uses seed + k.
            self.next_seed = self.config.seed
        elif self.config.backend == 'bringup':
            bringup = declare_config(self, BringupConfig, prefix='bringup.')
            self.backend = BringupArms(self, tuple(self.config.arm_names), bringup)
        else:
            self.backend = InterbotixBackend(self, tuple(self.config.arm_names))
        # Lockstep time starts at the wall time of launch so that bags carry plausible dates.
        self.sim_time_ns = time.time_ns()
        self.last_tick_wall = time.monotonic()
        self.tick_pending_since_ns = None

        self.state_pub = self.create_publisher(JointState, topics.JOINT_STATES, RELIABLE_QOS)
        self.status_pub = self.create_publisher(
            DiagnosticStatus, topics.SAFETY_STATUS, RELIABLE_QOS)
        self.create_subscription(JointState, topics.JOINT_COMMANDS, self.on_command, RELIABLE_QOS)
        self.create_subscription(Bool, topics.ESTOP, self.on_estop, LATCHED_QOS)
        if self.is_sim:
            self.sim_state_pub = self.create_publisher(JointState, topics.SIM_STATE, RELIABLE_QOS)
            self.success_pub = self.create_publisher(Bool, topics.SIM_SUCCESS, RELIABLE_QOS)
            self.create_service(Trigger, topics.SIM_RESET, self.on_reset)
            self.backend.reset(self.next_seed)
        if self.config.lockstep:
            self.clock_pub = self.create_publisher(Clock, '/clock', RELIABLE_QOS)
            self.create_timer(self.config.lockstep_timeout_s / 4, self.on_lockstep_timer)
            self.publish_state()
        else:
            self.create_timer(self.config.control_period_s, self.tick)
        self.get_logger().info(
            f'robot_node up: backend={self.config.backend} lockstep={self.config.lockstep} '
            f'period={self.config.control_period_s}s')

    def now_ns(self) -> int:
        """Robot time: the simulator's own clock in lockstep, else the node clock."""
        if self.config.lockstep:
            return self.sim_time_ns
        return self.get_clock().now().nanoseconds

    def on_command(self, msg: JointState):
        """Hand a command to the guard; in lockstep, an answer to the newest state steps."""
        try:
            positions = order_by_name(msg.name, msg.position)
        except ValueError as error:
            reason = self.guard.reject(str(error))
        else:
            reason = self.guard.submit(positions, self.now_ns() / 1e9)
        if reason:
            self.get_logger().warning(f'command refused, holding: {reason}',
                                      throttle_duration_sec=1.0)
        if self.config.lockstep and stamp_to_ns(msg.header.stamp) >= self.sim_time_ns:
            self.tick()

    def on_estop(self, msg: Bool):
        """Engage or release the e-stop."""
        if msg.data != self.guard.estop_engaged:
            log = self.get_logger().error if msg.data else self.get_logger().warn
            log(f'e-stop {"ENGAGED" if msg.data else "released"}')
        self.guard.set_estop(msg.data)

    def on_lockstep_timer(self):
        """Step anyway when the controller has not answered within lockstep_timeout_s."""
        if time.monotonic() - self.last_tick_wall >= self.config.lockstep_timeout_s:
            self.tick()

    def tick(self):
        """One control tick: guard -> backend -> (sim step) -> publish."""
        # A backend that only listens to another driver (bringup) may not hear the arms yet, or
        # no longer: then nothing is commanded and no joint state is published, so controllers
        # see stale states and the episode manager faults instead of acting on a guess.
        problem = getattr(self.backend, 'problem', lambda: '')()
        if problem:
            self.get_logger().warning(f'not driving the arms: {problem}',
                                      throttle_duration_sec=2.0)
            return
        positions, _ = self.backend.read()
        decision = self.guard.next_target(positions, self.now_ns() / 1e9)
        self.backend.command(decision.target)
        if self.is_sim:
            self.backend.advance()
            self.sim_time_ns += self.period_ns
        self.last_tick_wall = time.monotonic()
        self.publish_state()
        self.publish_status(decision)

    def publish_state(self):
        """Publish joint states (and, in sim, the full state, success and clock)."""
        stamp = time_msg(self.now_ns())
        if self.config.lockstep:
            self.clock_pub.publish(Clock(clock=stamp))
        positions, velocities = self.backend.read()
        if self.is_sim:
            sim = self.backend.sim
            self.success_pub.publish(Bool(data=bool(sim.succeeded)))
            state = joint_state_msg(stamp, sim.full_qpos(), names=())
            state.header.frame_id = f'{sim.config.task}/seed_{sim.seed}'
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
        seed = self.next_seed
        self.next_seed += 1
        self.backend.reset(seed)
        self.guard.forget_command()
        self.publish_state()
        response.success = True
        response.message = json.dumps({'seed': seed, 'time_ns': self.now_ns()})
        return response

    def shutdown(self):
        """Release the backend."""
        self.backend.close()


def main(args=None):
    """Run robot_node."""
    run_node(RobotNode, args)


if __name__ == '__main__':
    main()
