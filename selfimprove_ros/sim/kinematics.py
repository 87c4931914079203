"""Forward kinematics of ALOHA's two vx300s arms: arm joints -> grasp point [m, world frame].

The MJCF that the simulator loads models the same arms at the same base poses as a real ALOHA
station, so this serves recorded robot episodes as well as simulated ones: a grasp position
computed here exists on any robot that records its joints.
"""

from functools import lru_cache

import mujoco
import numpy as np

from selfimprove_ros.sim.aloha_sim import task_xml_path

# Grasp point in the gripper_link frame [m]: between the finger pads, 2 cm short of the tips
# (the point that ACT's mocap weld held).
TCP_OFFSET_M = np.array([0.135, 0.0, 0.0])
# First qpos/dof index of each arm's six hinges in gym-aloha's models.
ARM_QPOS_ADR = {'left': 0, 'right': 8}
SIDES = ('left', 'right')


class ArmKinematics:
    """Grasp-point positions of both arms, computed on a private copy of the ALOHA model."""

    def __init__(self, task: str = 'transfer_cube'):
        self.model = mujoco.MjModel.from_xml_path(task_xml_path(task))
        self.data = mujoco.MjData(self.model)
        self.bodies = {side: self.model.body(f'vx300s_{side}/gripper_link').id for side in SIDES}

    def grasp_point(self, side: str, arm_joints) -> np.ndarray:
        """Return the grasp point [m] of arm `side` with its six joints at `arm_joints` [rad]."""
        if side not in SIDES:
            raise ValueError(f'side must be one of {SIDES}, got {side!r}')
        arm_joints = np.asarray(arm_joints, dtype=np.float64)
        if arm_joints.shape != (6,):
            raise ValueError(f'arm_joints must hold the 6 arm joints [rad], got shape '
                             f'{arm_joints.shape}')
        adr = ARM_QPOS_ADR[side]
        self.data.qpos[adr:adr + 6] = arm_joints
        mujoco.mj_kinematics(self.model, self.data)
        body = self.bodies[side]
        rotation = self.data.xmat[body].reshape(3, 3)
        return self.data.xpos[body] + rotation @ TCP_OFFSET_M


@lru_cache(maxsize=1)
def shared_kinematics() -> ArmKinematics:
    """Return one process-wide ArmKinematics (loading the MJCF takes tens of milliseconds)."""
    return ArmKinematics()
