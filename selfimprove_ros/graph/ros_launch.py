"""Turn the graph description into `ros2 launch` actions (used by launch/*.launch.py).

Only imported under `ros2 launch`, where the launch and launch_ros packages exist.
"""

from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from selfimprove_ros.graph.dds import dds_environment
from selfimprove_ros.graph.description import (build_graph, config_path, largest_frame_bytes,
                                               load_config, PACKAGE)

ARGUMENTS = {
    'robot': ('aloha1', 'Robot namespace; one per station on a shared ROS graph'),
    'task': ('transfer_cube', 'Task: transfer_cube or insertion'),
    'config': ('', 'Graph config YAML (default: the one this launch file names)'),
    'bag_dir': ('', 'Where episode bags go (default: the config\'s recorder bag_dir)'),
    'with_expert': ('false', 'Sim: also start the scripted expert controller'),
    'with_runtime': ('true', 'Start the policy controller, reward scorer, success detector and '
                     'episode manager'),
    'model_dir': ('', 'First policy model directory (default: the config\'s; later versions '
                  'arrive on /models/policy)'),
    'reward_model_dir': ('', 'Frozen Stage-1 model directory with reward.onnx (default: the '
                         'config\'s)'),
    'use_sim_time': ('', 'Follow /clock: true/false (default: the config\'s lockstep setting)'),
}


def launch_entities(default_config: str):
    """Launch arguments, and an OpaqueFunction that sets the DDS environment and the nodes."""
    entities = [DeclareLaunchArgument(name, default_value=default, description=text)
                for name, (default, text) in ARGUMENTS.items()]
    entities.append(OpaqueFunction(function=_nodes, args=[default_config]))
    return entities


def _nodes(context, default_config):
    value = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    config = load_config(value['config'] or config_path(default_config))
    overrides = {'launch': {'task': value['task']}}
    for key in ('model_dir', 'reward_model_dir'):
        if value[key]:
            overrides['launch'][key] = value[key]
    if value['use_sim_time']:
        overrides['launch']['lockstep'] = value['use_sim_time'].lower() == 'true'
    if value['bag_dir']:
        overrides['recorder_node'] = {'bag_dir': value['bag_dir']}
    specs = build_graph(config, value['robot'], overrides,
                        with_expert=value['with_expert'].lower() == 'true',
                        with_runtime=value['with_runtime'].lower() == 'true')
    # The transport depends on the frame sizes, so it is set here, before any node starts.
    transport = dds_environment(largest_frame_bytes=largest_frame_bytes(specs))
    return [SetEnvironmentVariable(key, env) for key, env in transport.items()] + [
        Node(package=PACKAGE, executable=spec.executable, name=spec.name,
             namespace=spec.namespace, parameters=[spec.parameters], output='screen')
        for spec in specs]
