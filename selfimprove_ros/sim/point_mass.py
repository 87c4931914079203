"""A point mass on a plane: the smallest task on which self-improvement must visibly work.

The mass is a puck that the left gripper drags: its x is the offset of `left_waist` and its y
the offset of `left_shoulder` from `START_POSE` [rad], and it follows the commanded joint
targets (position targets, as on ALOHA) by at most `speed` per tick, but only while the
commanded `left_gripper` is closed (below `grip_below`); otherwise the puck rests. Every other
joint stays at the start pose whatever is commanded. The camera `cam_high` sees a small RGB
picture: the goal as a green disk of the goal radius, the puck as a red blob. The task is
achieved once the puck comes within `goal_radius` of the goal, and stays achieved (a latched
flag, like the simulator's `sim/success`).

The scripted demonstrator is imperfect in a way imitation reproduces faithfully: it always aims
at the goal, but it hesitates (opens the gripper) on 55% of the ticks. Every demonstration
succeeds, given time, and behaviour cloning learns the same habit (two sharp gripper tokens,
45:55), so the cloned policy sampled at temperature 1 reaches the goal within a short time limit
only some of the time, and decoded greedily (always the majority, "open") never. Only a reward
that prefers progress, such as the paper's steps-to-go, teaches it to hold on.

Pure numpy; no ROS.
"""

from dataclasses import dataclass

import numpy as np

from selfimprove_ros.core.config import require, setting
from selfimprove_ros.core.joints import START_POSE

# The joints that carry the puck's x and y, and the gripper that must hold it to move it.
X_JOINT, Y_JOINT, GRIPPER_JOINT = 0, 1, 6
CAMERA = 'cam_high'
INSTRUCTION = 'move the red dot onto the green disk'
_BACKGROUND = np.array([25, 25, 35], dtype=np.float32)
_GOAL_COLOUR = np.array([40, 200, 60], dtype=np.float32)
_MASS_COLOUR = np.array([240, 40, 40], dtype=np.float32)


@dataclass
class PointMassConfig:
    """Geometry, speed and picture of the point-mass task; lengths are joint offsets [rad]."""

    speed: float = setting(0.1, 'Largest move of the puck per tick [rad]')
    grip_below: float = setting(
        0.1, 'The puck moves only while the commanded left gripper is below this [0 closed, '
        '1 open]: a half-closed gripper does not hold it')
    goal: list = setting([0.45, 0.0], 'Goal centre (x, y) [rad from START_POSE]')
    goal_jitter: float = setting(0.0, 'Goal moved by up to this much per episode [rad]')
    goal_radius: float = setting(0.1, 'Success when the puck is this close to the goal [rad]')
    start_x: list = setting([-0.55, -0.4], 'Range of the initial x [rad from START_POSE]')
    start_y: list = setting([-0.3, 0.3], 'Range of the initial y [rad from START_POSE]')
    extent: list = setting([0.7, 0.5], 'Half-width, half-height of the workspace and picture '
                           '[rad]; the puck cannot leave it')
    image_height: int = setting(24, 'Picture height [px]')
    image_width: int = setting(32, 'Picture width [px]')

    def __post_init__(self):
        require(self.speed > 0, f'speed must be > 0 rad per tick, got {self.speed!r}')
        require(0 < self.grip_below <= 1, f'grip_below must be in (0, 1], got '
                f'{self.grip_below!r}')
        require(self.goal_radius > 0, f'goal_radius must be > 0 rad, got {self.goal_radius!r}')
        require(self.goal_jitter >= 0, f'goal_jitter must be >= 0 rad, got {self.goal_jitter!r}')
        for name in ('goal', 'start_x', 'start_y', 'extent'):
            require(len(getattr(self, name)) == 2,
                    f'{name} must hold two numbers, got {getattr(self, name)!r}')
        require(min(self.extent) > 0, f'extent must be > 0 rad, got {self.extent!r}')
        require(self.image_height >= 4 and self.image_width >= 4,
                f'the picture must be at least 4x4 px, got {self.image_height}x'
                f'{self.image_width}')


class PointMass:
    """The toy simulator: reset(seed), observe(), step(target), succeeded."""

    cameras = (CAMERA,)

    def __init__(self, config: PointMassConfig = None):
        self.config = config or PointMassConfig()
        cfg = self.config
        self.extent = np.asarray(cfg.extent, dtype=np.float64)
        # Pixel centres in joint coordinates: x grows to the right, y upwards.
        self._xs = np.linspace(-self.extent[0], self.extent[0], cfg.image_width)
        self._ys = np.linspace(self.extent[1], -self.extent[1], cfg.image_height)
        self._pixel = 2 * self.extent[0] / (cfg.image_width - 1)
        self.position = np.zeros(2)
        self.goal = np.asarray(cfg.goal, dtype=np.float64)
        self.succeeded = False
        self.ticks = 0

    def reset(self, seed: int):
        """Start an episode: a random start on the far side, the goal (jittered if asked)."""
        cfg = self.config
        rng = np.random.default_rng(seed)
        self.position = np.array([rng.uniform(*cfg.start_x), rng.uniform(*cfg.start_y)])
        self.goal = np.asarray(cfg.goal, dtype=np.float64) + \
            rng.uniform(-cfg.goal_jitter, cfg.goal_jitter, 2)
        self.ticks = 0
        self.succeeded = False
        self._check_success()

    def joints(self) -> np.ndarray:
        """Return the 14 joint positions [rad; gripper 0..1] in contract order."""
        joints = START_POSE.copy()
        joints[[X_JOINT, Y_JOINT]] += self.position
        return joints

    def observe(self):
        """Return (frames {camera: uint8 RGB [H, W, 3]}, joints [14])."""
        return {CAMERA: self.render()}, self.joints()

    def step(self, target):
        """Drag the puck towards the joint target [14] by at most `speed` if gripped; tick."""
        target = np.asarray(target, dtype=np.float64)
        if target.shape != START_POSE.shape or not np.all(np.isfinite(target)):
            raise ValueError(f'target must be 14 finite joint positions, got {target!r}')
        self.ticks += 1
        if target[GRIPPER_JOINT] >= self.config.grip_below:
            return  # an open gripper lets the puck rest
        wanted = target[[X_JOINT, Y_JOINT]] - START_POSE[[X_JOINT, Y_JOINT]] - self.position
        distance = float(np.hypot(*wanted))
        if distance > self.config.speed:
            wanted *= self.config.speed / distance
        self.position = np.clip(self.position + wanted, -self.extent, self.extent)
        self._check_success()

    def distance_to_goal(self) -> float:
        """Return the distance of the puck from the goal centre [rad]."""
        return float(np.hypot(*(self.goal - self.position)))

    def _check_success(self):
        self.succeeded = self.succeeded or self.distance_to_goal() <= self.config.goal_radius

    def render(self) -> np.ndarray:
        """Draw the goal disk and the puck (a blob, so sub-pixel motion shows) [H, W, 3]."""
        gx = (self._xs[None, :] - self.goal[0]) ** 2 + (self._ys[:, None] - self.goal[1]) ** 2
        mx = (self._xs[None, :] - self.position[0]) ** 2 + \
            (self._ys[:, None] - self.position[1]) ** 2
        goal = np.clip((self.config.goal_radius - np.sqrt(gx)) / self._pixel + 0.5, 0, 1)
        mass = np.exp(-mx / (2 * (0.8 * self._pixel) ** 2))
        image = _BACKGROUND + goal[..., None] * (_GOAL_COLOUR - _BACKGROUND)
        image = image + mass[..., None] * (_MASS_COLOUR - image)
        return np.clip(np.rint(image), 0, 255).astype(np.uint8)


class HesitantDemonstrator:
    """Scripted demonstrations: aim at the goal, but let go of the puck on many ticks.

    Every tick it commands the goal as the target, with the gripper open with probability
    `hesitation` and closed otherwise. It knows the goal from the simulator, like the
    privileged scripted experts of ACT. The targets carry no noise on purpose: noise that never
    matters would only add tokens whose log-probabilities are pure noise to every REINFORCE
    gradient, drowning the one choice that matters.
    """

    def __init__(self, env: PointMass, hesitation: float = 0.55, seed: int = 0):
        if not 0 <= hesitation < 1:
            raise ValueError(f'hesitation must be in [0, 1), got {hesitation!r}')
        self.env, self.hesitation = env, hesitation
        self.rng = np.random.default_rng(seed)

    def reset(self, seed: int):
        """Reseed the demonstrator's own randomness for a new episode."""
        self.rng = np.random.default_rng([seed, 1])

    def act(self, frames=None, joints=None, stamp_ns=0):
        """Return (the next joint target [14], None): the actor interface of practice_loop."""
        target = START_POSE.copy()
        target[[X_JOINT, Y_JOINT]] += self.env.goal
        target[GRIPPER_JOINT] = 1.0 if self.rng.random() < self.hesitation else 0.0
        return target, None


# A recipe with which the whole loop shows its effect in about a minute on two CPUs; plain
# values so that this module needs no torch: ModelConfig(**MODEL), SftConfig(model=...,
# **SFT), ReinforceConfig(**REINFORCE). test/test_self_improvement.py explains each choice.
MODEL = dict(cameras=[CAMERA], image_height=24, image_width=32, hidden_dim=32, chunk_length=2,
             action_bins=32, steps_to_go_max=48, steps_to_go_bins=49, max_instruction_tokens=8)
SFT = dict(steps=400, batch_size=32, lr=3e-3, warmup_steps=20, eval_every=100, eval_batches=2,
           checkpoint_every=400, device='cpu', torch_threads=1)
REINFORCE = dict(gamma=0.9, loss_scale=0.05, lr=2e-3, updates_per_iteration=4, batch_size=64,
                 device='cpu', torch_threads=1)
DEMONSTRATIONS = 40         # scripted episodes for Stage 1
DEMONSTRATION_TICKS = 60    # the demonstrator's time limit; it hardly ever needs it
PRACTICE_TICKS = 17         # the practising policy's time limit [control ticks]
EPISODES_PER_ITERATION = 32
