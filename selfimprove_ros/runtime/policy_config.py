"""Settings of the policy controller (policy_node)."""

from dataclasses import dataclass
import os

from selfimprove_ros.core.config import require, require_cameras, setting
from selfimprove_ros.core.observation_sync import SyncConfig
from selfimprove_ros.core.topics import MODEL_ANNOUNCE
from selfimprove_ros.runtime.onnx_model import PROVIDERS
from selfimprove_ros.runtime.token_sampling import SAMPLERS


@dataclass
class PolicyConfig(SyncConfig):
    """How the controller observes, decides and swaps models.

    The observation settings every controller shares (cameras, sync_timeout_s,
    wait_for_recording) are SyncConfig's.
    """

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
    instruction: str = setting('', 'Goal instruction when the start event carries none')
    control_period_s: float = setting(0.1, 'Control tick [s]; the paper acts at 10 Hz')
    lockstep: bool = setting(
        False, 'Simulation: the simulator waits for each answer, so a tick waits up to '
        'sync_timeout_s for its frames; false (a robot): the period is the deadline, see '
        'decision_deadline_s')
    decision_deadline_s: float = setting(
        0.05, 'Robot (not lockstep): each robot tick (joint state) is answered as soon as every '
        'camera has a frame captured at or after it, so the arm acts on the freshest frames, '
        'or this long [s] after the tick arrived, on the newest frames at hand. Keep it under '
        'control_period_s minus inference so the command reaches the robot before its next tick')
    frame_tolerance_s: float = setting(
        0.005, 'Robot (not lockstep): a frame captured at most this long [s] before the robot\'s '
        'tick counts as of that tick, rather than waiting a camera period for the next: clocks '
        'and exposures never line up exactly, and at ALOHA arm speeds 5 ms is a few millimetres')
    max_observation_age_s: float = setting(
        0.2, 'Oldest camera frame or joint state [s before the tick] the policy may act on; '
        'older input holds the arm and reports the controller stale')
    temperature: float = setting(1.0, 'Sampling temperature: 1 = the trained policy (practice), '
                                 '0 = greedy (evaluation)')
    sampler: str = setting(
        'independent', "How a chunk's tokens are drawn at temperature > 0: 'independent' (each "
        "token on its own) or 'chunk_quantile' (one quantile per joint for the whole chunk: a "
        'smooth deviation, not jitter; runtime/token_sampling.py). Practice must tell the '
        'learner the same (ReinforceConfig.sampler)')
    actions_per_chunk: int = setting(
        0, 'Actions of each sampled chunk executed before the policy is queried again: 0 = the '
        'whole chunk (the paper, and what practice must use: the learner credits whole chunks); '
        '1..chunk = a receding horizon for evaluation, correcting from newer frames. A policy '
        'trained on whole chunks lost by it: insertion 31 -> 14/100 greedy at 1 (2026-12-06)')
    seed: int = setting(0, 'Seed of action sampling')
    providers: str = setting('auto', f'ONNX Runtime providers, one of {list(PROVIDERS)}')
    inference_budget_s: float = setting(
        0.08, 'A model slower than this per inference [s] is rejected at load')
    swap_during_episode: bool = setting(
        False, 'Swap a new model in at the next tick even during an episode (else at its end)')

    def __post_init__(self):
        super().__post_init__()
        require_cameras(self.cameras)
        require(self.control_period_s > 0,
                f'control_period_s must be > 0 s, got {self.control_period_s!r}')
        require(self.max_observation_age_s > 0, 'max_observation_age_s must be > 0 s, got '
                f'{self.max_observation_age_s!r}')
        require(0 <= self.frame_tolerance_s < self.control_period_s,
                f'frame_tolerance_s must be in [0, control_period_s), got '
                f'{self.frame_tolerance_s!r}')
        require(0 < self.decision_deadline_s < self.control_period_s,
                f'decision_deadline_s must be in (0, control_period_s = '
                f'{self.control_period_s}), got {self.decision_deadline_s!r}')
        require(self.actions_per_chunk >= 0, 'actions_per_chunk must be >= 0 (0 = the whole '
                f'chunk), got {self.actions_per_chunk!r}')
        require(self.temperature >= 0, f'temperature must be >= 0, got {self.temperature!r}')
        require(self.sampler in SAMPLERS,
                f'sampler must be one of {list(SAMPLERS)}, got {self.sampler!r}')
        require(self.providers in PROVIDERS,
                f'providers must be one of {list(PROVIDERS)}, got {self.providers!r}')
        require(0 < self.inference_budget_s <= self.control_period_s,
                f'inference_budget_s must be in (0, control_period_s], got '
                f'{self.inference_budget_s!r}')

    @property
    def wait_s(self) -> float:
        """Return how long [s] a tick waits for its frames before deciding on what arrived."""
        return self.sync_timeout_s if self.lockstep else self.decision_deadline_s

    @property
    def tolerance_s(self) -> float:
        """Return how long [s] before a tick a frame may be captured and still count as of it."""
        return 0.0 if self.lockstep else self.frame_tolerance_s


def model_roots(config: PolicyConfig) -> list:
    """Return where models may load from: model_roots, model_dir's parent and watch_dir."""
    roots = list(config.model_roots)
    if config.model_dir:
        roots.append(os.path.dirname(os.path.abspath(config.model_dir)))
    if config.watch_dir:
        roots.append(config.watch_dir)
    return roots
