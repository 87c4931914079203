"""The 14-joint ALOHA contract: names, order, units and limits.

Every topic, bag and model in the project uses this order: the left arm first, then the right,
each as waist, shoulder, elbow, forearm_roll, wrist_angle, wrist_rotate, gripper.

Units: the six arm joints are angles [rad]; the gripper is the normalised finger opening
[0 = closed, 1 = open], as the ALOHA teleoperation scripts and ACT datasets record it, so that
demonstrations from either source share one scale.
"""

import numpy as np

ARM_JOINTS = ('waist', 'shoulder', 'elbow', 'forearm_roll', 'wrist_angle', 'wrist_rotate',
              'gripper')
SIDES = ('left', 'right')
JOINT_NAMES = tuple(f'{side}_{joint}' for side in SIDES for joint in ARM_JOINTS)
NUM_JOINTS = len(JOINT_NAMES)
GRIPPER_INDICES = (6, 13)

# vx300s limits [rad] (from the Interbotix URDF, identical in gym-aloha's MJCF); gripper [0, 1].
_ARM_LOWER = (-3.14158, -1.85005, -1.76278, -3.14158, -1.8675, -3.14158, 0.0)
_ARM_UPPER = (3.14158, 1.25664, 1.6057, 3.14158, 2.23402, 3.14158, 1.0)
LOWER_LIMITS = np.array(_ARM_LOWER * 2, dtype=np.float64)
UPPER_LIMITS = np.array(_ARM_UPPER * 2, dtype=np.float64)

# ALOHA's sleep-free start pose: arms raised over the table, grippers nearly closed.
START_POSE = np.array([0.0, -0.96, 1.16, 0.0, -0.3, 0.0, 0.1] * 2, dtype=np.float64)


def order_by_name(names, values):
    """Return `values` reordered into JOINT_NAMES order.

    An empty `names` means the values are already in contract order. Raises ValueError naming
    the missing or unknown joints otherwise.
    """
    values = np.asarray(values, dtype=np.float64)
    if len(names) == 0:
        if values.shape != (NUM_JOINTS,):
            raise ValueError(
                f'expected {NUM_JOINTS} positions in contract order, got {values.shape[0]}; '
                f'send all of {list(JOINT_NAMES)} or name them')
        return values
    if len(names) != len(values):
        raise ValueError(f'{len(names)} joint names but {len(values)} positions')
    index = {name: i for i, name in enumerate(names)}
    missing = [name for name in JOINT_NAMES if name not in index]
    if missing:
        raise ValueError(f'command lacks joints {missing}; all 14 are required')
    return np.array([values[index[name]] for name in JOINT_NAMES], dtype=np.float64)
