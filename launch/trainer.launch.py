"""Launch the trainer on a separate machine (GPU server or a robot's computer).

It reads the episode bags the robots record (a shared directory), trains, exports each new policy
version and announces it on /models/policy, where every robot's policy_node picks it up.
Example: ros2 launch selfimprove_ros trainer.launch.py mode:=improve bag_dirs:=/data/bags \
    model_dir:=/data/models/stage1 run_dir:=/data/runs/improve1
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from selfimprove_ros.graph.dds import dds_environment

ARGUMENTS = {
    'mode': ('improve', 'sft (Stage 1 from demonstrations) or improve (Stage 2 REINFORCE)'),
    'bag_dirs': ('runs/bags', 'Comma-separated episode-bag directories'),
    'run_dir': ('runs/improve', 'Run directory: checkpoints, state, exported versions'),
    'model_dir': ('', 'improve: the Stage-1 model directory the robots start with'),
    'settings_file': ('', "sft: YAML with 'sft' and 'dataset' sections"),
    'export_dir': ('', 'sft: model directory to export when training ends'),
    'iterations': ('0', 'improve: iterations before stopping (0 = forever)'),
    'use_sim_time': ('false', 'Follow /clock (only with a lockstep simulator on this graph)'),
}


def _trainer(context):
    value = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    parameters = {
        'mode': value['mode'], 'bag_dirs': [d for d in value['bag_dirs'].split(',') if d],
        'run_dir': value['run_dir'], 'model_dir': value['model_dir'],
        'settings_file': value['settings_file'], 'export_dir': value['export_dir'],
        'iterations': int(value['iterations']),
        'use_sim_time': value['use_sim_time'].lower() == 'true'}
    return [Node(package='selfimprove_ros', executable='trainer_node', name='trainer_node',
                 parameters=[parameters], output='screen')]


def generate_launch_description():
    """Declare the arguments, set the DDS transport, start trainer_node."""
    entities = [DeclareLaunchArgument(name, default_value=default, description=text)
                for name, (default, text) in ARGUMENTS.items()]
    entities += [SetEnvironmentVariable(k, v) for k, v in dds_environment().items()]
    entities.append(OpaqueFunction(function=_trainer))
    return LaunchDescription(entities)
