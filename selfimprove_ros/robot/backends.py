"""Robot backends behind one interface: the simulated ALOHA, and the real one's calibration.

A backend only moves joints and reads them back; safety, timing and ROS live elsewhere. The
real followers' backend talks ROS through Interbotix, so it lives in the shell
(`nodes/interbotix_arms.py`); its gripper conversions are here, tested without hardware.
"""

from typing import Protocol

import numpy as np

from selfimprove_ros.sim.aloha_sim import AlohaSim, SimConfig

# ALOHA follower gripper calibration (aloha/constants.py): finger slide [m] and gripper motor
# angle [rad] at fully closed and fully open.
FOLLOWER_FINGER_CLOSED_M = 0.01844
FOLLOWER_FINGER_OPEN_M = 0.05800
FOLLOWER_GRIPPER_JOINT_CLOSED_RAD = -0.6213
FOLLOWER_GRIPPER_JOINT_OPEN_RAD = 1.4910


class RobotBackend(Protocol):
    """What the robot node needs from a robot."""

    def read(self) -> tuple:
        """Return (positions[14], velocities[14]) in contract order and units."""

    def command(self, target) -> None:
        """Send a 14-joint position target (already checked by the safety guard)."""

    def close(self) -> None:
        """Release the hardware."""


class SimBackend:
    """The simulated ALOHA; `advance()` moves physics one control period."""

    def __init__(self, config: SimConfig):
        self.sim = AlohaSim(config)
        self._target = None

    def reset(self, seed: int):
        """Start a new scene from `seed`."""
        self.sim.reset(seed)
        self._target = self.sim.joint_positions()

    def read(self):
        """Return the simulated joint positions and velocities."""
        return self.sim.joint_positions(), self.sim.joint_velocities()

    def command(self, target):
        """Store the target that the next `advance()` holds."""
        self._target = np.asarray(target, dtype=np.float64)

    def advance(self):
        """Hold the current target for one control period."""
        self.sim.step(self._target)

    def close(self):
        """Nothing to release."""


def gripper_opening_from_finger(finger_m):
    """Follower finger slide [m] -> normalised opening [0 closed, 1 open]."""
    return ((finger_m - FOLLOWER_FINGER_CLOSED_M)
            / (FOLLOWER_FINGER_OPEN_M - FOLLOWER_FINGER_CLOSED_M))


def gripper_joint_from_opening(opening):
    """Normalised opening [0, 1] -> follower gripper motor angle [rad]."""
    return (FOLLOWER_GRIPPER_JOINT_CLOSED_RAD
            + opening * (FOLLOWER_GRIPPER_JOINT_OPEN_RAD - FOLLOWER_GRIPPER_JOINT_CLOSED_RAD))
