"""A station's settings, read from the same node graph description the sim graph launches.

A station runs the cores of robot_node, camera_node, policy_node, reward_scorer_node,
success_detector_node and episode_manager_node in one process, so it takes each core's config
from that node's parameters in `graph.description.build_graph` (config/sim.yaml plus the run's
overrides): a change to sim.yaml changes the graph and the stations alike.
"""

from dataclasses import dataclass, field, fields

from selfimprove_ros.camera.camera_config import CameraConfig
from selfimprove_ros.core.config import config_from_dict, require, setting
from selfimprove_ros.core.safety import SafetyConfig
from selfimprove_ros.core.success_detection import SuccessConfig
from selfimprove_ros.episode.episode_manager_config import EpisodeManagerConfig
from selfimprove_ros.robot.robot_config import RobotConfig
from selfimprove_ros.runtime.policy_config import PolicyConfig
from selfimprove_ros.runtime.reward_scorer_config import RewardScorerConfig
from selfimprove_ros.runtime.success_detector_config import SuccessDetectorConfig
from selfimprove_ros.sim.aloha_sim import INSTRUCTIONS


@dataclass
class StationConfig:
    """What a station does beyond the nodes' own settings (how much it renders and records)."""

    frames: str = setting(
        'used', "Which camera frames are rendered and recorded: 'used' = those the policy and "
        "the success detector look at (every decision, and the episode's last tick), about 4x "
        "faster; 'every_tick' = every tick, as the camera nodes publish, so the detector also "
        'evaluates every tick as success_detector_node does')
    dense_within_steps: float = setting(
        10.0, "With frames 'used': once the detector's last d(o, g) was at most this many "
        'ticks, every tick is rendered and scored until it rises again, so a success streak '
        'is judged tick by tick as in the graph; between sparse evaluations the detector holds '
        'the last d. Keep it a chunk or more above the success threshold')
    post_success_ticks: int = setting(
        0, 'Ticks an episode runs on after its success before it ends (the collector\'s rule '
        'for demonstrations, so they show the goal held); 0 = end at once, as '
        'episode_manager_node does')
    label: bool = setting(
        True, "Label each finished bag with the frozen reward model, as reward_scorer_node "
        'does after every episode')

    def __post_init__(self):
        require(self.frames in ('used', 'every_tick'),
                f"frames must be 'used' or 'every_tick', got {self.frames!r}")
        require(self.post_success_ticks >= 0,
                f'post_success_ticks must be >= 0, got {self.post_success_ticks!r}')
        require(self.dense_within_steps >= 0,
                f'dense_within_steps must be >= 0 ticks, got {self.dense_within_steps!r}')


@dataclass
class StationSettings:
    """Every core's config for one station, as the node graph would run it."""

    robot: str
    task: str
    instruction: str
    cameras: list
    camera_size: tuple                  # (height, width) [px] the camera nodes publish
    robot_config: RobotConfig
    safety: SafetyConfig
    policy: PolicyConfig
    scorer: RewardScorerConfig
    success: SuccessConfig
    detector: SuccessDetectorConfig
    episodes: EpisodeManagerConfig
    station: StationConfig = field(default_factory=StationConfig)

    @property
    def period_ns(self) -> int:
        """Return the control period [ns]."""
        return int(round(self.robot_config.control_period_s * 1e9))


def _pick(config_class, params: dict, what: str, prefix: str = ''):
    """Build `config_class` from the node parameters it declares (under `prefix`)."""
    names = {item.name for item in fields(config_class)}
    chosen = {key[len(prefix):]: value for key, value in params.items()
              if key.startswith(prefix) and key[len(prefix):] in names}
    return config_from_dict(config_class, chosen, what)


def settings_from_graph(specs, robot: str, station: StationConfig = None) -> StationSettings:
    """Return the station settings of the sim graph `specs` (graph.description.build_graph)."""
    params = {spec.executable: spec.parameters for spec in specs}
    cameras = [spec.parameters['camera_name'] for spec in specs
               if spec.executable == 'camera_node']
    missing = [name for name in ('robot_node', 'policy_node', 'reward_scorer_node',
                                 'success_detector_node', 'episode_manager_node')
               if name not in params]
    require(not missing, f'a station needs the sim graph with its runtime nodes; {missing} '
            'missing (build_graph(..., with_runtime=True))')
    robot_config = _pick(RobotConfig, params['robot_node'], 'robot_node')
    require(robot_config.backend == 'sim' and robot_config.lockstep,
            f'a station is a simulated robot in lockstep; robot_node has backend '
            f'{robot_config.backend!r}, lockstep {robot_config.lockstep}')
    camera = _pick(CameraConfig, params['camera_node'], 'camera_node')
    episodes = _pick(EpisodeManagerConfig, params['episode_manager_node'],
                     'episode_manager_node')
    task = params['robot_node'].get('sim.task', episodes.task)
    return StationSettings(
        robot=robot, task=task,
        instruction=episodes.instruction or INSTRUCTIONS.get(task, task), cameras=cameras,
        camera_size=(camera.height, camera.width), robot_config=robot_config,
        safety=_pick(SafetyConfig, params['robot_node'], 'robot_node', 'safety.'),
        policy=_pick(PolicyConfig, params['policy_node'], 'policy_node'),
        scorer=_pick(RewardScorerConfig, params['reward_scorer_node'], 'reward_scorer_node'),
        success=_pick(SuccessConfig, params['success_detector_node'], 'success_detector_node'),
        detector=_pick(SuccessDetectorConfig, params['success_detector_node'],
                       'success_detector_node'),
        episodes=episodes, station=station or StationConfig())
