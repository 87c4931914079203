"""Launch the simulated ALOHA: robot, four rendered cameras, recorder, runtime (or expert).

Built on selfimprove_ros.graph.description, the same description the project's own launcher
uses, so `ros2 launch` and `selfimprove` start identical graphs.
Example: ros2 launch selfimprove_ros sim.launch.py robot:=aloha1 task:=transfer_cube
"""

from launch import LaunchDescription

from selfimprove_ros.graph.ros_launch import launch_entities


def generate_launch_description():
    """Launch description for config/sim.yaml."""
    return LaunchDescription(launch_entities('sim.yaml'))
