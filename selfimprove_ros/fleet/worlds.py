"""What a station drives: a simulated robot backend that can also draw its cameras on demand.

A world is a `robot.backends.RobotBackend` with the simulator's extras: `reset(seed)`,
`advance()` (one control period of physics), `succeeded` (the simulator's latched verdict,
recorded for judging only) and `render(camera)` (one RGB frame [H, W, 3] uint8 of the current
state). The camera nodes render every tick; a station renders only the frames somebody uses
(`TickFrames`), which is most of its speed.
"""

import numpy as np

from selfimprove_ros.robot.backends import SimBackend
from selfimprove_ros.sim.aloha_sim import SimConfig, SimRenderer


class AlohaWorld(SimBackend):
    """The simulated ALOHA of robot_node's sim backend, with the camera nodes' renderer."""

    def __init__(self, task: str, control_period_s: float, cameras, height: int, width: int):
        super().__init__(SimConfig(task=task, control_period_s=control_period_s))
        self.cameras = list(cameras)
        self.renderer = SimRenderer(task, height, width)

    @property
    def succeeded(self) -> bool:
        """Return the simulator's own success flag (latched within an episode)."""
        return bool(self.sim.succeeded)

    def render(self, camera: str) -> np.ndarray:
        """Draw `camera` at the current simulator state, as camera_node does."""
        return self.renderer.render(self.sim.full_qpos(), camera)

    def close(self):
        """Free the renderer's GL context (before exit, so no teardown error is printed)."""
        self.renderer.close()


class EnvWorld:
    """A tick-based environment as a world; sim.point_mass.PointMass is one.

    The environment has `reset(seed)`, `observe() -> (frames, joints [14])`, `step(target)`,
    `succeeded` and `cameras`.
    """

    def __init__(self, env):
        self.env = env
        self.cameras = list(env.cameras)
        self._target = None

    @property
    def succeeded(self) -> bool:
        """Return the environment's success flag."""
        return bool(self.env.succeeded)

    def reset(self, seed: int):
        """Start the scene of `seed`; hold the start position until commanded."""
        self.env.reset(seed)
        self._target = self.read()[0]

    def read(self):
        """Return (positions [14], velocities [14], zero here)."""
        joints = self.env.observe()[1]
        return np.asarray(joints, dtype=np.float64), np.zeros(len(joints))

    def command(self, target):
        """Store the target the next `advance()` holds."""
        self._target = np.asarray(target, dtype=np.float64)

    def advance(self):
        """Step the environment one tick towards the stored target."""
        self.env.step(self._target)

    def render(self, camera: str) -> np.ndarray:
        """Return the environment's picture from `camera`."""
        return self.env.observe()[0][camera]

    def close(self):
        """Nothing to release."""


class TickFrames:
    """The frames of one tick, each rendered at most once and only when first asked for."""

    def __init__(self, world, cameras, render_all: bool = False):
        self.world, self.cameras = world, list(cameras)
        self.rendered = {}
        if render_all:
            for camera in self.cameras:
                self.get(camera)

    def get(self, camera: str) -> np.ndarray:
        """Return `camera`'s frame of this tick (rendering it now if nobody has yet)."""
        if camera not in self.rendered:
            self.rendered[camera] = self.world.render(camera)
        return self.rendered[camera]

    def complete(self) -> bool:
        """Tell whether every camera's frame of this tick has been rendered."""
        return len(self.rendered) == len(self.cameras)

    def all(self) -> dict:
        """Render what is missing; return {camera: frame}."""
        return {camera: self.get(camera) for camera in self.cameras}


class LazyFrame:
    """A camera frame the controller stores but renders only if it decides on it."""

    def __init__(self, frames: TickFrames, camera: str):
        self.frames, self.camera = frames, camera

    def __call__(self) -> np.ndarray:
        """Render (once) and return the frame."""
        return self.frames.get(self.camera)


def render_lazy(frame) -> np.ndarray:
    """Decode for the controller: render a LazyFrame; an array is already a frame."""
    return frame() if callable(frame) else frame
