"""Settings of reward_scorer_node."""

from dataclasses import dataclass

from selfimprove_ros.core.config import require, require_cameras, setting
from selfimprove_ros.core.topics import CAMERA_NAMES
from selfimprove_ros.runtime.onnx_model import PROVIDERS


@dataclass
class RewardScorerConfig:
    """What reward_scorer_node loads, how often it scores live and how it labels episodes."""

    reward_model_dir: str = setting(
        '', 'Model directory of the FROZEN Stage-1 reward model (manifest.json + reward.onnx); '
        'loaded once at start-up and never replaced by practice')
    cameras: list = setting(
        list(CAMERA_NAMES), 'Cameras this robot runs; the model must find all of its own here')
    live_rate_hz: float = setting(
        10.0, 'Live scoring rate [Hz] on ROS time (/clock in lockstep simulation); each '
        'evaluation takes the newest complete observation, frames that arrive while busy are '
        'skipped, never queued')
    max_skew_s: float = setting(
        0.25, 'Largest spread [s] between the newest joint state and camera frames that still '
        'counts as one observation (a stalled camera stops live scoring instead of lying)')
    instruction: str = setting(
        '', 'Goal instruction when neither the start event nor the bag carries one')
    control_period_s: float = setting(
        0.1, 'Control tick period [s] that episode bags are aligned to for labelling')
    batch_size: int = setting(32, 'Ticks per reward-model call when labelling an episode')
    success_bonus: float = setting(
        0.0, 'Reward [ticks] added at the last tick of an episode whose simulator reported '
        'success (the paper: a small constant for an insertion the cameras cannot see)')
    providers: str = setting(
        'auto', f'ONNX Runtime execution providers, one of {list(PROVIDERS)} (auto = GPU when '
        'installed, else CPU)')
    threads: int = setting(1, 'ONNX Runtime intra-op threads (1 leaves cores for the robot)')

    def __post_init__(self):
        require(bool(self.reward_model_dir),
                'reward_model_dir must name the Stage-1 model directory (manifest.json + '
                'reward.onnx), got an empty string')
        require_cameras(self.cameras)
        require(self.live_rate_hz > 0, f'live_rate_hz must be > 0 Hz, got {self.live_rate_hz!r}')
        require(self.max_skew_s > 0, f'max_skew_s must be > 0 s, got {self.max_skew_s!r}')
        require(self.control_period_s > 0,
                f'control_period_s must be > 0 s, got {self.control_period_s!r}')
        require(isinstance(self.batch_size, int) and self.batch_size >= 1,
                f'batch_size must be an int >= 1, got {self.batch_size!r}')
        require(self.success_bonus >= 0,
                f'success_bonus must be >= 0 ticks, got {self.success_bonus!r}')
        require(self.providers in PROVIDERS,
                f'providers must be one of {list(PROVIDERS)}, got {self.providers!r}')
        require(isinstance(self.threads, int) and self.threads >= 1,
                f'threads must be an int >= 1, got {self.threads!r}')

    @property
    def live_period_s(self) -> float:
        """Return the live scoring period [s]."""
        return 1.0 / self.live_rate_hz
