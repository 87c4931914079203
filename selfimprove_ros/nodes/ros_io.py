"""Conversions between ROS messages and the core's numpy types, and the project's QoS profiles."""

import importlib

import numpy as np
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy)
from rclpy.time import Time
from sensor_msgs.msg import Image, JointState

from selfimprove_ros.core.joints import JOINT_NAMES
from selfimprove_ros.core.topics import QOS_CLASSES


def qos_profile(qos_class: str, depth: int = 0) -> QoSProfile:
    """Return the rclpy profile of a contract QoS class (topics.QOS_CLASSES), deeper if asked."""
    spec = QOS_CLASSES[qos_class]
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=max(spec['depth'], depth),
        reliability=ReliabilityPolicy.BEST_EFFORT if spec['reliability'] == 'best_effort'
        else ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if spec['durability'] == 'transient_local'
        else DurabilityPolicy.VOLATILE)


SENSOR_QOS = qos_profile('sensor')
RELIABLE_QOS = qos_profile('reliable')
LATCHED_QOS = qos_profile('latched')


def message_class(msgtype: str):
    """'sensor_msgs/msg/Image' -> the message class (rosidl_runtime_py is not always there)."""
    package, _, name = msgtype.split('/')
    return getattr(importlib.import_module(f'{package}.msg'), name)


def stamp_to_ns(stamp) -> int:
    """builtin_interfaces/Time -> nanoseconds."""
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def joint_state_msg(stamp, positions, velocities=None, names=JOINT_NAMES) -> JointState:
    """Build a JointState in contract order."""
    msg = JointState()
    msg.header.stamp = stamp
    msg.name = list(names)
    msg.position = np.asarray(positions, dtype=np.float64).tolist()
    if velocities is not None:
        msg.velocity = np.asarray(velocities, dtype=np.float64).tolist()
    return msg


def image_msg(rgb, stamp, frame_id: str) -> Image:
    """HxWx3 uint8 RGB array -> sensor_msgs/Image (rgb8)."""
    msg = Image()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(rgb.shape[0]), int(rgb.shape[1])
    msg.encoding = 'rgb8'
    msg.step = msg.width * 3
    msg.data = np.ascontiguousarray(rgb, dtype=np.uint8).tobytes()
    return msg


def image_to_rgb(msg: Image) -> np.ndarray:
    """sensor_msgs/Image (rgb8, bgr8 or mono8) -> HxWx3 uint8 RGB; ValueError otherwise."""
    data = np.frombuffer(msg.data, dtype=np.uint8)
    if msg.encoding in ('rgb8', 'bgr8'):
        image = data.reshape(msg.height, msg.step)[:, :msg.width * 3]
        image = image.reshape(msg.height, msg.width, 3)
        return image[..., ::-1] if msg.encoding == 'bgr8' else image
    if msg.encoding == 'mono8':
        image = data.reshape(msg.height, msg.step)[:, :msg.width]
        return np.repeat(image[..., None], 3, axis=2)
    raise ValueError(f'unsupported image encoding {msg.encoding!r}; '
                     'publish rgb8, bgr8 or mono8')


def time_msg(nanoseconds: int):
    """Nanoseconds -> builtin_interfaces/Time."""
    return Time(nanoseconds=nanoseconds).to_msg()


def run_node(node_class, args=None):
    """Init rclpy, spin one node until Ctrl-C, then its `shutdown()` (if any) and cleanup."""
    import rclpy
    from rclpy.executors import ExternalShutdownException
    rclpy.init(args=args)
    node = None
    try:
        node = node_class()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass  # Ctrl-C, or SIGTERM from the launcher: a normal stop, not a traceback in the log
    finally:
        if node is not None:
            getattr(node, 'shutdown', lambda: None)()
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()


def event_of(node, msg):
    """Return the episode event in a String message, or None after logging why it is bad."""
    from selfimprove_ros.episode.events import parse_event
    try:
        return parse_event(msg.data)
    except ValueError as error:
        node.get_logger().error(f'ignoring a malformed episode event: {error}')
        return None
