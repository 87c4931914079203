"""Launch a real ALOHA station: followers, four cameras, recorder and the runtime.

Built on selfimprove_ros.graph.description, the same description the project's own launcher
uses, so `ros2 launch` and `selfimprove` start identical graphs. `preset` picks the station's
config: `aloha` (config/aloha.yaml: this stack drives the followers and the RealSense devices)
or `trossen` (config/trossen.yaml: beside Trossen's running ALOHA bringup, its topics only);
`config:=<file>` overrides both.
Example: ros2 launch selfimprove_ros aloha.launch.py robot:=aloha1 preset:=trossen
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetLaunchConfiguration
from launch.substitutions import LaunchConfiguration

from selfimprove_ros.graph.description import PRESETS, preset_config_path
from selfimprove_ros.graph.ros_launch import launch_entities


def select_preset(context):
    """Point `config` at the preset's file, unless `config:=` already names one."""
    if LaunchConfiguration('config', default='').perform(context):
        return []
    preset = LaunchConfiguration('preset').perform(context)
    return [SetLaunchConfiguration('config', preset_config_path(preset))]


def generate_launch_description():
    """Launch description for the preset's config (default config/aloha.yaml)."""
    return LaunchDescription([
        DeclareLaunchArgument(
            'preset', default_value='aloha', choices=sorted(PRESETS),
            description='Station preset: aloha (this stack drives the arms and cameras) or '
                        'trossen (beside Trossen\'s running ALOHA bringup)'),
        # Before launch_entities declares `config` (default ''), so a preset's path survives it.
        OpaqueFunction(function=select_preset),
        *launch_entities('aloha.yaml'),
    ])
