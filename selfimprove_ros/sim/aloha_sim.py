"""Simulated bimanual ALOHA: gym-aloha's MuJoCo scenes and tasks behind a tick-based interface.

gym-aloha's own `step()` renders three 480x640 images on every 20 ms control step (~157 ms per
step on a 2-core CPU). Here physics and rendering are separate: `AlohaSim` only steps physics, and
`SimRenderer` draws just the cameras asked for, at the size asked for, with shadows off. A
renderer can live in another process and draw from the full `qpos` that the simulator publishes,
which is how the camera nodes render the simulated cameras in parallel.
"""

from dataclasses import dataclass
import os

import numpy as np

from selfimprove_ros.core.config import setting
from selfimprove_ros.core.joints import GRIPPER_INDICES, NUM_JOINTS, START_POSE

# gym-aloha's control step [s]; its position actuators are tuned for it.
SIM_CONTROL_DT_S = 0.02
# Names of the four ALOHA cameras -> cameras in gym-aloha's MJCF.
SIM_CAMERAS = {
    'cam_high': 'top',
    'cam_low': 'angle',
    'cam_left_wrist': 'left_wrist',
    'cam_right_wrist': 'right_wrist',
}
TASKS = ('transfer_cube', 'insertion')
# The goal g of each task, as the instruction the models are conditioned on.
INSTRUCTIONS = {
    'transfer_cube': 'pick up the red cube with the right arm and hand it to the left arm',
    'insertion': 'pick up the peg and the socket and insert the peg into the socket',
}
# Reward [control ticks] added at the last tick of an episode the simulator calls a success
# (the paper's small bonus): a full insertion is hidden from the cameras, so steps-to-go, which
# only sees them, cannot reward it. About 10 % of a whole episode's shaped return (~55 ticks).
SUCCESS_BONUS = {'transfer_cube': 0.0, 'insertion': 5.0}
_TASK_XML = {
    'transfer_cube': 'bimanual_viperx_transfer_cube.xml',
    'insertion': 'bimanual_viperx_insertion.xml',
}
# Finger slide-joint range [m] that gym-aloha maps to the normalised gripper [0, 1].
_FINGER_CLOSED_M = 0.01844
_FINGER_OPEN_M = 0.05800
_ARM_QPOS = (slice(0, 6), slice(8, 14))
_FINGER_QPOS = (6, 14)


def task_xml_path(task):
    """Return the MJCF path of a sim task, raising ValueError for an unknown task."""
    if task not in _TASK_XML:
        raise ValueError(f'unknown sim task {task!r}; choose one of {list(TASKS)}')
    import gym_aloha
    return os.path.join(os.path.dirname(gym_aloha.__file__), 'assets', _TASK_XML[task])


def normalise_gripper(finger_m):
    """Finger slide position [m] -> normalised opening [0 closed, 1 open]."""
    return (finger_m - _FINGER_CLOSED_M) / (_FINGER_OPEN_M - _FINGER_CLOSED_M)


def scene_name(task: str, seed) -> str:
    """Name one scene, `task/seed_N`: robot_node stamps it on each sim/state (frame_id)."""
    return f'{task}/seed_{seed}'


def scene_matches(name: str, seed: int) -> bool:
    """Tell whether the scene `name` (from scene_name) is the one of `seed`.

    An unknown seed (below 0, as on a robot) or a name without a seed matches any scene.
    """
    if seed < 0 or '/seed_' not in name:
        return True
    return name.rsplit('/seed_', 1)[1] == str(seed)


@dataclass
class SimConfig:
    """Configuration of the simulated ALOHA."""

    task: str = setting('transfer_cube', f'Sim task, one of {list(TASKS)}')
    control_period_s: float = setting(
        0.1, 'One robot tick [s]: each position command is held this long (paper: 10 Hz)')

    def __post_init__(self):
        task_xml_path(self.task)
        steps = self.control_period_s / SIM_CONTROL_DT_S
        if self.control_period_s <= 0 or abs(steps - round(steps)) > 1e-6:
            raise ValueError(
                f'control_period_s={self.control_period_s} must be a positive multiple of the '
                f'simulator control step {SIM_CONTROL_DT_S} s (e.g. 0.02, 0.1)')


class AlohaSim:
    """Physics of one simulated ALOHA station; no rendering."""

    def __init__(self, config: SimConfig):
        from dm_control import mujoco as dm_mujoco
        from gym_aloha.tasks import sim as aloha_tasks

        self.config = config
        self._task_module = aloha_tasks
        self.physics = dm_mujoco.Physics.from_xml_path(task_xml_path(config.task))
        task_class = (aloha_tasks.TransferCubeTask if config.task == 'transfer_cube'
                      else aloha_tasks.InsertionTask)
        self._task = task_class(random=np.random.RandomState(0))
        self._substeps = int(round(SIM_CONTROL_DT_S / self.physics.timestep()))
        self._control_steps = int(round(config.control_period_s / SIM_CONTROL_DT_S))
        self.reward = 0
        self.succeeded = False
        self.max_reward = self._task.max_reward
        self.seed = None
        self.tick = 0

    @property
    def model(self):
        """Return the underlying `mujoco.MjModel`."""
        return self.physics.model.ptr

    @property
    def data(self):
        """Return the underlying `mujoco.MjData`."""
        return self.physics.data.ptr

    def reset(self, seed: int):
        """Place the arms at the start pose and the objects at the seed's random poses."""
        from gym_aloha import utils
        if self.config.task == 'transfer_cube':
            pose = utils.sample_box_pose(seed)
        else:
            pose = np.concatenate(utils.sample_insertion_pose(seed))
        # gym-aloha's tasks read the object pose from this module-level slot.
        self._task_module.BOX_POSE[0] = pose
        self.physics.reset()
        self._task.initialize_episode(self.physics)
        self.physics.forward()
        self._apply(START_POSE)
        self.seed = seed
        self.tick = 0
        self.reward = 0
        self.succeeded = False

    def step(self, target):
        """Hold the 14-joint position target for one control period and advance physics."""
        target = np.asarray(target, dtype=np.float64)
        if target.shape != (NUM_JOINTS,) or not np.all(np.isfinite(target)):
            raise ValueError(f'sim target must be 14 finite values, got {target!r}')
        self._apply(target)
        best = 0
        for _ in range(self._control_steps):
            self.physics.step(self._substeps)
            best = max(best, self._task.get_reward(self.physics))
        self.reward = best
        # Latched, as ACT scores episodes: the peg touching the pin can be a brief contact.
        self.succeeded = self.succeeded or best == self.max_reward
        self.tick += 1

    def _apply(self, target):
        self._task.before_step(target, self.physics)

    @property
    def time_s(self) -> float:
        """Return the simulated time since reset [s]."""
        return self.tick * self.config.control_period_s

    def joint_positions(self):
        """Return the 14 joint positions in contract order [rad, gripper 0..1]."""
        return joints_from_qpos(self.data.qpos)

    def joint_velocities(self):
        """Return the 14 joint velocities [rad/s, gripper opening/s]."""
        qvel = self.data.qvel
        out = np.empty(NUM_JOINTS)
        span = _FINGER_OPEN_M - _FINGER_CLOSED_M
        for arm, (arm_slice, finger) in enumerate(zip(_ARM_QPOS, _FINGER_QPOS)):
            out[arm * 7:arm * 7 + 6] = qvel[arm_slice]
            out[GRIPPER_INDICES[arm]] = qvel[finger] / span
        return out

    def full_qpos(self):
        """Return every generalised position (arms, fingers, objects): enough to render."""
        return self.data.qpos.copy()


def joints_from_qpos(qpos):
    """Map the simulator's full qpos to the 14 contract joints."""
    out = np.empty(NUM_JOINTS)
    for arm, (arm_slice, finger) in enumerate(zip(_ARM_QPOS, _FINGER_QPOS)):
        out[arm * 7:arm * 7 + 6] = qpos[arm_slice]
        out[GRIPPER_INDICES[arm]] = normalise_gripper(qpos[finger])
    return out


class SimRenderer:
    """Offscreen renderer of a sim task's cameras, independent of any running physics."""

    def __init__(self, task: str, height: int, width: int):
        import mujoco
        if height <= 0 or width <= 0:
            raise ValueError(f'render size must be positive, got {height}x{width}')
        self._mujoco = mujoco
        self.model = mujoco.MjModel.from_xml_path(task_xml_path(task))
        # Shadows cost most of the render time on a software renderer and add nothing to learn.
        self.model.light_castshadow[:] = 0
        self.model.vis.global_.offwidth = max(self.model.vis.global_.offwidth, width)
        self.model.vis.global_.offheight = max(self.model.vis.global_.offheight, height)
        self.data = mujoco.MjData(self.model)
        self._renderer = mujoco.Renderer(self.model, height, width)

    def render(self, qpos, camera: str):
        """Render ALOHA camera `camera` (e.g. 'cam_high') at the state `qpos`; HxWx3 uint8 RGB."""
        if camera not in SIM_CAMERAS:
            raise ValueError(f'unknown sim camera {camera!r}; choose from {list(SIM_CAMERAS)}')
        qpos = np.asarray(qpos, dtype=np.float64)
        if qpos.shape != (self.model.nq,):
            raise ValueError(f'sim state has {qpos.shape[0]} values, the model needs '
                             f'{self.model.nq}: is the camera configured for the same task?')
        self.data.qpos[:] = qpos
        # Targeting cameras and lights need mj_camlight, which mj_kinematics alone skips.
        self._mujoco.mj_fwdPosition(self.model, self.data)
        self._renderer.update_scene(self.data, camera=SIM_CAMERAS[camera])
        return self._renderer.render()

    def close(self):
        """Free the GL context."""
        self._renderer.close()
