"""Where each gripper grasped in a demonstration: the auxiliary target that makes Stage 1 look.

Behaviour cloning alone lets a policy ignore the object: the joint state predicts most labels,
and only the first decisions of an episode need the image. Asking the camera features to say
where the grasp will happen forces them to locate the object. The target is the grasp point of
each arm, by forward kinematics of the recorded joints at the tick its gripper command closes:
it lies on the object (within millimetres) and exists on a real robot, unlike the simulator's
object pose.
"""

import numpy as np

from selfimprove_ros.core.joints import GRIPPER_INDICES, NUM_JOINTS

# Normalised gripper opening [0 closed, 1 open] below which a command counts as closed.
CLOSED_BELOW = 0.5
# Contract indices of each arm's six joints (the gripper follows them).
ARM_JOINTS = {'left': slice(0, 6), 'right': slice(7, 13)}
SIDES = ('left', 'right')
# Values per target: x, y [m] of the left then the right grasp point; height is left out, as
# the tabletop fixes it and a camera above cannot see it well.
TARGET_SIZE = 4


def closing_tick(gripper_commands) -> int:
    """Return the first tick whose command closes an opened gripper, or -1 if none does.

    The start pose holds the grippers nearly closed, so a close only counts after the gripper
    was commanded open; NaN (no command recorded) never opens or closes.
    """
    commands = np.asarray(gripper_commands, dtype=np.float64)
    opened = np.maximum.accumulate(np.nan_to_num(commands, nan=0.0) >= CLOSED_BELOW)
    closes = opened[:-1] & (commands[1:] < CLOSED_BELOW)
    ticks = np.flatnonzero(closes)
    return int(ticks[0]) + 1 if len(ticks) else -1


def grasp_target(joints, actions, kinematics=None):
    """Return (target float32 [4], closing ticks int64 [2]) of the left and right arm.

    target holds (x, y) [m, world] of each arm's grasp point, NaN if it never closes (tick -1).
    `joints` [T, 14] are the measured positions, `actions` [T, 14] the commands (the label
    source of the episode) in contract order. Until its closing tick the object still lies where
    the arm will grasp it, so only those ticks' images can show the target (`visible_target`).
    """
    joints = np.asarray(joints, dtype=np.float64)
    actions = np.asarray(actions, dtype=np.float64)
    if joints.ndim != 2 or joints.shape[1] != NUM_JOINTS or actions.shape != joints.shape:
        raise ValueError(f'joints and actions must both be [T, {NUM_JOINTS}], got '
                         f'{joints.shape} and {actions.shape}')
    if kinematics is None:
        from selfimprove_ros.sim.kinematics import shared_kinematics
        kinematics = shared_kinematics()
    target = np.full(TARGET_SIZE, np.nan, dtype=np.float32)
    ticks = np.full(len(SIDES), -1, dtype=np.int64)
    for number, (side, gripper) in enumerate(zip(SIDES, GRIPPER_INDICES)):
        ticks[number] = tick = closing_tick(actions[:, gripper])
        if tick >= 0:
            point = kinematics.grasp_point(side, joints[tick, ARM_JOINTS[side]])
            target[2 * number:2 * number + 2] = point[:2]
    return target, ticks


def visible_target(target, closing_ticks, tick: int) -> np.ndarray:
    """Return `target` [4] with NaN for each arm that has already grasped at `tick`.

    After the grasp the object moves with the gripper: the picture no longer shows where the
    grasp happened, so asking for it there would only teach the mean.
    """
    out = np.array(target, dtype=np.float32)
    for number, closes in enumerate(np.asarray(closing_ticks).reshape(-1)):
        if tick > closes:
            out[2 * number:2 * number + 2] = np.nan
    return out
