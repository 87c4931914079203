"""One description of the node graph, used by both the Python launcher and `ros2 launch`.

A graph is a list of `NodeSpec`s built from a config YAML keyed by node name (ROS parameter-file
layout) plus a top-level `launch` section for graph-wide settings. `launch/*.launch.py` turn the
same specs into launch_ros `Node` actions, so the two ways of starting the robot cannot drift.
"""

from dataclasses import dataclass, field, fields
import os

import yaml

from selfimprove_ros.core.observation_sync import SyncConfig
from selfimprove_ros.core.topics import CAMERA_NAMES
from selfimprove_ros.robot.robot_config import RobotConfig
from selfimprove_ros.runtime.policy_config import PolicyConfig
from selfimprove_ros.sim.aloha_sim import SUCCESS_BONUS

PACKAGE = 'selfimprove_ros'
# The source tree's config/ (three levels up: graph/ -> selfimprove_ros/ -> repository root).
CONFIG_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'config')


@dataclass
class NodeSpec:
    """One node process: executable, name, namespace and parameters."""

    executable: str
    name: str
    namespace: str
    parameters: dict = field(default_factory=dict)


def config_path(name: str) -> str:
    """Path of a shipped config file: the package share directory, else the source tree."""
    try:
        from ament_index_python.packages import get_package_share_directory
        shared = os.path.join(get_package_share_directory(PACKAGE), 'config', name)
        if os.path.exists(shared):
            return shared
    except (ImportError, LookupError, OSError):  # not installed through colcon
        pass
    return os.path.join(CONFIG_DIR, name)


def load_config(path: str) -> dict:
    """Read a graph config; ValueError names the file and what is wrong."""
    try:
        with open(path) as stream:
            config = yaml.safe_load(stream) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f'cannot read graph config {path}: {error}') from error
    if 'launch' not in config or 'robot_node' not in config:
        raise ValueError(f'{path}: a graph config needs `launch` and `robot_node` sections')
    return config


def _params(config: dict, key: str) -> dict:
    return dict((config.get(key) or {}).get('ros__parameters') or {})


# `preset:=<name>` of launch/aloha.launch.py: which shipped config a real station starts from.
PRESETS = {
    'aloha': 'aloha.yaml',      # this stack drives the followers and reads the RealSense devices
    'trossen': 'trossen.yaml',  # beside Trossen's running bringup: its topics, no second driver
}


def preset_config_path(preset: str) -> str:
    """Path of a station preset's config; ValueError lists the presets there are."""
    if preset not in PRESETS:
        raise ValueError(f'preset {preset!r} unknown; choose one of {sorted(PRESETS)} or name a '
                         'config file with config:=')
    return config_path(PRESETS[preset])


def check_camera_sections(sections):
    """Refuse a per-camera section (`<camera>_camera_node`) for a camera that does not exist.

    Such a section overrides the shared `camera_node` parameters for one camera (e.g. its input
    topic); a misspelt one would otherwise be ignored without a word.
    """
    unknown = sorted(key for key in sections if key.endswith('_camera_node')
                     and key[:-len('_camera_node')] not in CAMERA_NAMES)
    if unknown:
        raise ValueError(f'config sections {unknown} name no camera; per-camera sections are '
                         f'<camera>_camera_node with <camera> one of {list(CAMERA_NAMES)}')


RUNTIME_NODES = ('policy_node', 'reward_scorer_node', 'success_detector_node',
                 'episode_manager_node')


def build_graph(config: dict, robot: str = 'aloha1', overrides: dict = None,
                with_expert: bool = False, with_runtime: bool = False) -> list:
    """Node specs for one robot; `overrides` maps node key -> parameter changes.

    Graph-wide `launch` settings: `cameras` (names to start), `lockstep` (sim clock drives
    everyone else through use_sim_time), `recorder` (start the episode recorder), `task` and
    `control_period_s`, which every node that needs them receives, so they cannot disagree, and
    for the runtime (`with_runtime`) `model_dir` (the first policy) and `reward_model_dir` (the
    frozen Stage-1 reward model). A `<camera>_camera_node` section (in `config` or
    `overrides`) adds to `camera_node`'s parameters for that camera alone.
    """
    overrides = overrides or {}
    launch = {**config['launch'], **overrides.get('launch', {})}
    namespace = '/' + robot.strip('/')
    lockstep = bool(launch.get('lockstep', False))

    shared = {key: launch[key] for key in ('task', 'control_period_s') if key in launch}
    task = {'robot_node': 'sim.task', 'camera_node': 'sim_task', 'expert_node': 'task',
            'episode_manager_node': 'task'}
    period = {key: 'control_period_s' for key in (
        'robot_node', 'expert_node', 'policy_node', 'reward_scorer_node', 'episode_manager_node')}

    def node_params(key, extra=None):
        params = {**_params(config, key), **overrides.get(key, {}), **(extra or {})}
        if 'task' in shared and key in task:
            params[task[key]] = shared['task']
        if 'control_period_s' in shared and key in period:
            params[period[key]] = float(shared['control_period_s'])
        if lockstep and key != 'robot_node':
            params['use_sim_time'] = True
        return params

    specs = [NodeSpec('robot_node', 'robot_node', namespace,
                      node_params('robot_node', {'lockstep': lockstep}))]
    cameras = list(launch.get('cameras', CAMERA_NAMES))
    check_camera_sections(list(config) + list(overrides))
    for camera in cameras:
        name = f'{camera}_camera_node'
        # Shared `camera_node` settings, then this camera's own section (config, overrides).
        own = {**_params(config, name), **overrides.get(name, {}), 'camera_name': camera}
        specs.append(NodeSpec('camera_node', name, namespace, node_params('camera_node', own)))
    if launch.get('recorder', True):
        is_sim = _params(config, 'robot_node').get('backend', 'sim') == 'sim'
        specs.append(NodeSpec('recorder_node', 'recorder_node', namespace, node_params(
            'recorder_node', {'cameras': cameras, 'record_sim_topics': is_sim})))
    if with_expert:
        # Without a recorder nobody announces `recording`: the expert must not wait for it.
        recorded = {} if launch.get('recorder', True) else {'wait_for_recording': False}
        specs.append(NodeSpec('expert_node', 'expert_node', namespace,
                              node_params('expert_node', {'cameras': cameras, **recorded})))
    if with_runtime:
        specs += runtime_specs(launch, cameras, lockstep, namespace, node_params)
    if lockstep:
        check_lockstep_timeouts(specs)
    return specs


def largest_frame_bytes(specs: list):
    """Return the largest RGB frame [bytes] a camera_node of `specs` publishes.

    None when a camera keeps its source size (width/height 0: 640x480 in sim, the device's
    on a robot) and so may be large; 0 for a graph without cameras.
    """
    sizes = [int(spec.parameters.get('width', 0)) * int(spec.parameters.get('height', 0)) * 3
             for spec in specs if spec.executable == 'camera_node']
    if any(size == 0 for size in sizes):
        return None
    return max(sizes, default=0)


def _setting(spec: NodeSpec, config_class, name: str):
    """Return the value a node will use: its parameter, else its config's default."""
    if name in spec.parameters:
        return spec.parameters[name]
    return next(item.default for item in fields(config_class) if item.name == name)


def check_lockstep_timeouts(specs: list):
    """Refuse a lockstep graph whose simulator gives up on a controller before it may act.

    A controller that misses a camera frame acts on the rest after its `sync_timeout_s`; if the
    simulator stepped without it first, that tick is lost from the bag and the controller
    answers the next tick one observation late.
    """
    robot = next(spec for spec in specs if spec.executable == 'robot_node')
    robot_timeout_s = float(_setting(robot, RobotConfig, 'lockstep_timeout_s'))
    controllers = {'policy_node': PolicyConfig, 'expert_node': SyncConfig}
    for spec in specs:
        if spec.executable in controllers:
            sync_s = float(_setting(spec, controllers[spec.executable], 'sync_timeout_s'))
            if robot_timeout_s <= sync_s:
                raise ValueError(
                    f'robot_node.lockstep_timeout_s ({robot_timeout_s} s) must be longer than '
                    f'{spec.name}.sync_timeout_s ({sync_s} s), or the simulator steps before '
                    'a controller missing a frame may act; raise lockstep_timeout_s')


def runtime_specs(launch: dict, cameras: list, lockstep: bool, namespace: str, node_params):
    """Return the controller, reward scorer, success detector and episode manager specs."""
    models = {}
    if launch.get('model_dir'):
        models['policy_node'] = {'model_dir': launch['model_dir']}
    if launch.get('reward_model_dir'):
        models['reward_scorer_node'] = {'reward_model_dir': launch['reward_model_dir']}
    extra = {'policy_node': {'cameras': cameras, 'lockstep': lockstep},
             'reward_scorer_node': {'cameras': cameras}}
    params = {key: node_params(key, {**extra.get(key, {}), **models.get(key, {})})
              for key in RUNTIME_NODES}
    # The task's bonus for the simulator's success unless the configuration sets one; a robot's
    # episodes have no simulator verdict, so none ever earns it there.
    if 'task' in launch:
        params['reward_scorer_node'].setdefault('success_bonus',
                                                SUCCESS_BONUS.get(launch['task'], 0.0))
    # One home for the reward model: the detector reads the audited rule of the scorer's.
    scorer_dir = params['reward_scorer_node'].get('reward_model_dir')
    if scorer_dir:
        params['success_detector_node']['reward_model_dir'] = scorer_dir
    return [NodeSpec(key, key, namespace, params[key]) for key in RUNTIME_NODES]
