"""A test-side rclpy node that records what a running graph publishes."""

import time

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState

from selfimprove_ros.core import topics
from selfimprove_ros.nodes.ros_io import RELIABLE_QOS, SENSOR_QOS, stamp_to_ns


class GraphProbe(Node):
    """Subscribes to joint states, safety status and camera images of one namespace."""

    def __init__(self, namespace: str, cameras):
        super().__init__('graph_probe', namespace=namespace)
        self.joints = []        # (stamp_ns, positions)
        self.safety = []        # guard state strings
        self.frames = {cam: [] for cam in cameras}
        self.command_pub = self.create_publisher(JointState, topics.JOINT_COMMANDS, RELIABLE_QOS)
        self.create_subscription(JointState, topics.JOINT_STATES, self.on_joints, RELIABLE_QOS)
        self.create_subscription(DiagnosticStatus, topics.SAFETY_STATUS,
                                 lambda msg: self.safety.append(msg.values[0].value),
                                 RELIABLE_QOS)
        for cam in cameras:
            self.create_subscription(
                Image, topics.camera_topic(cam),
                lambda msg, cam=cam: self.frames[cam].append(
                    (stamp_to_ns(msg.header.stamp), msg.height, msg.width)), SENSOR_QOS)
        self.executor_ = SingleThreadedExecutor()
        self.executor_.add_node(self)

    def on_joints(self, msg: JointState):
        """Keep every joint state."""
        self.joints.append((stamp_to_ns(msg.header.stamp), np.array(msg.position)))

    def spin_until(self, condition, timeout_s: float, check=None) -> bool:
        """Spin until `condition()` holds or the timeout passes; returns condition()."""
        return spin_executor_until(self.executor_, condition, timeout_s, check)


def spin_executor_until(executor, condition, timeout_s: float, check=None,
                        period_s: float = 0.05) -> bool:
    """Spin `executor` until `condition()` holds or the timeout passes; return condition().

    `check()`, if given, runs after each spin (a GraphRunner's check fails on a dead node).
    """
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=period_s)
        if check:
            check()
    return condition()


def init_ros():
    """rclpy.init once per test module."""
    if not rclpy.ok():
        rclpy.init()
