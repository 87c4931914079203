"""DDS transport settings that carry four 480x640 camera streams without drops.

Fast DDS's default transport (shared memory with 512 KB segments, then UDP) fragments each 900 KB
image and, under best effort, loses about half of them. Jazzy and newer ship the LARGE_DATA
builtin transport (UDP discovery; shared memory between processes on one host, TCP across
hosts); Humble's Fast DDS 2.6 lacks it, so there an XML profile gives the shared-memory
transport a segment large enough for several frames.

LARGE_DATA is only chosen where frames need it. With it (Fast DDS 3.2, PyPI wheels), 4 of 37
fresh sim graphs came up partly deaf (one reader never matched one writer), while DEFAULT
started 60 of 60 whole (docs/architecture.md). Small sim frames (160x120, 58 KB) fit DEFAULT's
shared memory, so sim graphs use it.
"""

import os

from selfimprove_ros.graph.description import config_path

HUMBLE_PROFILE = 'fastdds_humble_shm.xml'
# Frames up to this size [bytes] travel whole in DEFAULT's shared memory or one UDP datagram.
SMALL_FRAME_BYTES = 65_000


def dds_environment(ros_distro: str = None, largest_frame_bytes: int = None) -> dict:
    """Environment variables for the node processes of `ros_distro` (default: $ROS_DISTRO).

    On Jazzy and newer the builtin transport is DEFAULT when every camera frame of the graph
    is known to be small (`largest_frame_bytes`, see `description.largest_frame_bytes`), else
    LARGE_DATA; a FASTDDS_BUILTIN_TRANSPORTS already set is kept.
    """
    distro = (ros_distro or os.environ.get('ROS_DISTRO') or '').lower()
    env = {'RMW_IMPLEMENTATION': 'rmw_fastrtps_cpp'}
    if distro in ('humble', 'iron'):
        env['FASTRTPS_DEFAULT_PROFILES_FILE'] = config_path(HUMBLE_PROFILE)
    else:
        small = largest_frame_bytes is not None and largest_frame_bytes <= SMALL_FRAME_BYTES
        # A transport the user chose (e.g. UDPv4 for robots on several hosts) is kept.
        env['FASTDDS_BUILTIN_TRANSPORTS'] = os.environ.get(
            'FASTDDS_BUILTIN_TRANSPORTS', 'DEFAULT' if small else 'LARGE_DATA')
    return env
