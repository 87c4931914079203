"""Test isolation: each pytest process gets its own ROS domain, discovery stays on this host."""

import os

from selfimprove_ros.graph.dds import dds_environment
from selfimprove_ros.graph.description import (build_graph, config_path, largest_frame_bytes,
                                               load_config)

# Domains 1..100 keyed by pid: parallel test runs on one machine do not hear each other.
os.environ.setdefault('ROS_DOMAIN_ID', str(1 + os.getpid() % 100))
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ.setdefault('MUJOCO_GL', 'egl')
# The test process talks to the nodes over the transport they use: the graph tests start
# config/sim.yaml's cameras.
_SIM = build_graph(load_config(config_path('sim.yaml')), 'test')
os.environ.update(dds_environment(largest_frame_bytes=largest_frame_bytes(_SIM)))
