"""Settings of the policy controller (policy_node)."""

from dataclasses import dataclass
import os

from selfimprove_ros.core.config import require, require_cameras, setting
from selfimprove_ros.core.topics import CAMERA_NAMES, MODEL_ANNOUNCE
from selfimprove_ros.runtime.onnx_model import PROVIDERS


@dataclass
class PolicyConfig:
    """How the controller observes, decides and swaps models."""

    model_dir: str = setting('', 'Model directory to start with (manifest.json + policy.onnx); '
                             'empty = wait for an announcement')
    model_topic: str = setting(MODEL_ANNOUNCE, 'Latched topic announcing new policy versions')
    watch_dir: str = setting('', 'Directory scanned every 2 s for new model directories; '
                             'empty = only announcements')
    model_roots: list = setting(
        ['models', 'runs'], 'Directories policy models may come from (relative: from the '
        "node's working directory); an announced or watched model elsewhere is refused. The "
        "parent of model_dir and watch_dir are always allowed. Any node on the DDS domain can "
        'announce a path, so this decides which ones are believed')
    model_key_file: str = setting(
        '', "Station key file: only models signed with it (manifest.sig, signed by the trainer "
        "holding the same key) are loaded; empty = the seal and sha256 checks only")
    cameras: list = setting(list(CAMERA_NAMES), 'Cameras this robot runs (the model uses a '
                            'subset, checked at load)')
    instruction: str = setting('', 'Goal instruction when the start event carries none')
    control_period_s: float = setting(0.1, 'Control tick [s]; the paper acts at 10 Hz')
    lockstep: bool = setting(False, 'Answer each joint-state tick once its frames arrived '
                             '(simulation) instead of a timer on ROS time (robot)')
    sync_timeout_s: float = setting(0.5, 'Lockstep: wall time [s] to wait for a tick\'s frames '
                                    'before deciding on what arrived')
    max_observation_age_s: float = setting(
        0.2, 'Oldest camera frame or joint state [s before the tick] the policy may act on; '
        'older input holds the arm and reports the controller stale')
    temperature: float = setting(1.0, 'Sampling temperature: 1 = the trained policy (practice), '
                                 '0 = greedy (evaluation)')
    seed: int = setting(0, 'Seed of action sampling')
    providers: str = setting('auto', f'ONNX Runtime providers, one of {list(PROVIDERS)}')
    inference_budget_s: float = setting(
        0.08, 'A model slower than this per inference [s] is rejected at load')
    wait_for_recording: bool = setting(
        True, "Act only once the recorder acknowledged the episode (`recording`), so every bag "
        'holds its episode from the first tick and no practice goes unrecorded')
    swap_during_episode: bool = setting(
        False, 'Swap a new model in at the next tick even during an episode (else at its end)')

    def __post_init__(self):
        require_cameras(self.cameras)
        require(self.control_period_s > 0,
                f'control_period_s must be > 0 s, got {self.control_period_s!r}')
        require(self.max_observation_age_s > 0, 'max_observation_age_s must be > 0 s, got '
                f'{self.max_observation_age_s!r}')
        require(self.sync_timeout_s > 0, f'sync_timeout_s must be > 0, got {self.sync_timeout_s}')
        require(self.temperature >= 0, f'temperature must be >= 0, got {self.temperature!r}')
        require(self.providers in PROVIDERS,
                f'providers must be one of {list(PROVIDERS)}, got {self.providers!r}')
        require(0 < self.inference_budget_s <= self.control_period_s,
                f'inference_budget_s must be in (0, control_period_s], got '
                f'{self.inference_budget_s!r}')


def model_roots(config: PolicyConfig) -> list:
    """Return where models may load from: model_roots, model_dir's parent and watch_dir."""
    roots = list(config.model_roots)
    if config.model_dir:
        roots.append(os.path.dirname(os.path.abspath(config.model_dir)))
    if config.watch_dir:
        roots.append(config.watch_dir)
    return roots
