"""Contract messages as CDR bytes, for code that writes episode bags without ROS.

The importers (ACT/ALOHA HDF5, LeRobot) and the in-process practice harness write bags that
must read exactly like recorder_node's; these builders are the one place that says how a
joint state, a camera frame, a flag or a JSON document is serialized.
"""

import numpy as np

from selfimprove_ros.core.joints import JOINT_NAMES

from .bag_streams import BOOL, IMAGE, JOINT_STATE, STRING, typestore


def cdr(msgtype: str, **fields) -> bytes:
    """Serialize one message of `msgtype` (a rosbags ROS 2 Humble type) as CDR."""
    store = typestore()
    return store.serialize_cdr(store.types[msgtype](**fields), msgtype).tobytes()


def header(stamp_ns: int, frame_id: str = ''):
    """Return a std_msgs/Header stamped `stamp_ns` [ns]."""
    store = typestore()
    return store.types['std_msgs/msg/Header'](stamp=store.types['builtin_interfaces/msg/Time'](
        sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9), frame_id=frame_id)


def joint_state_cdr(stamp_ns: int, positions) -> bytes:
    """Return a JointState of the 14 contract joints (float32 widens to float64 exactly)."""
    return cdr(JOINT_STATE, header=header(stamp_ns), name=list(JOINT_NAMES),
               position=np.asarray(positions, dtype=np.float64), velocity=np.zeros(0),
               effort=np.zeros(0))


def image_cdr(stamp_ns: int, rgb, camera: str) -> bytes:
    """Return an rgb8 Image of frame `rgb` [H, W, 3] uint8 from `camera`."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    return cdr(IMAGE, header=header(stamp_ns, camera), height=rgb.shape[0],
               width=rgb.shape[1], encoding='rgb8', is_bigendian=0, step=rgb.shape[1] * 3,
               data=rgb.reshape(-1))


def string_cdr(text: str) -> bytes:
    """Return a std_msgs/String (episode events, JSON documents)."""
    return cdr(STRING, data=text)


def bool_cdr(value: bool) -> bytes:
    """Return a std_msgs/Bool (sim/success)."""
    return cdr(BOOL, data=bool(value))
