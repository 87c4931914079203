"""DDS transport settings that carry four 480x640 camera streams without drops.

Fast DDS's default UDP transport fragments each 900 KB image and, under best effort, loses about
half of them. Jazzy and newer ship the LARGE_DATA builtin transport (shared memory between
processes on one host, TCP across hosts); Humble's Fast DDS 2.6 lacks it, so there an XML
profile gives the shared-memory transport a segment large enough for several frames.
"""

import os

from selfimprove_ros.graph.description import config_path

HUMBLE_PROFILE = 'fastdds_humble_shm.xml'


def dds_environment(ros_distro: str = None) -> dict:
    """Environment variables for the node processes of `ros_distro` (default: $ROS_DISTRO).

    On Jazzy and newer the builtin transport is LARGE_DATA unless FASTDDS_BUILTIN_TRANSPORTS is
    already set.
    """
    distro = (ros_distro or os.environ.get('ROS_DISTRO') or '').lower()
    env = {'RMW_IMPLEMENTATION': 'rmw_fastrtps_cpp'}
    if distro in ('humble', 'iron'):
        env['FASTRTPS_DEFAULT_PROFILES_FILE'] = config_path(HUMBLE_PROFILE)
    else:
        # A transport the user chose (e.g. UDPv4 for robots on several hosts) is kept.
        env['FASTDDS_BUILTIN_TRANSPORTS'] = os.environ.get('FASTDDS_BUILTIN_TRANSPORTS',
                                                           'LARGE_DATA')
    return env
