"""One episode aligned to control ticks: the unit every dataset, label and trainer works on."""

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from selfimprove_ros.bag.verdict import recorded_verdict


@dataclass
class Episode:
    """An episode resampled to its control ticks (index t = tick t after `start`).

    Arrays share the first dimension T (ticks that could be filled; unfillable ticks are listed
    in `dropped_ticks` and removed, never invented).
    """

    bag_path: str
    episode_id: str
    robot: str
    task: str
    instruction: str
    policy_version: str
    outcome: str                      # success | timeout | aborted | fault | unknown
    tick_ns: np.ndarray               # [T] int64, ROS time of each tick [ns]
    joints: np.ndarray                # [T, 14] float32 measured positions [rad; gripper 0..1]
    actions: np.ndarray               # [T, 14] float32 commanded targets chosen at tick t
    images: dict                      # camera name -> [T, H, W, 3] uint8 RGB
    success_tick: Optional[int] = None  # first tick at which the task was achieved, if ever
    sim_success: Optional[bool] = None  # the simulator's own verdict (sim bags only)
    action_tokens: Optional[np.ndarray] = None  # [T, chunk*14] int64 tokens the policy sampled
    token_versions: Optional[list] = None  # [T] policy version that chose each tick's tokens
    dropped_ticks: list = field(default_factory=list)  # ticks that could not be filled
    # [4] float32 x, y [m] of the left and right grasp points (NaN: that gripper never closed),
    # the auxiliary target of Stage 1, and [2] int64 the ticks at which the grippers closed (-1:
    # never); see data/grasp_target.py. None: not computed.
    grasp_target: Optional[np.ndarray] = None
    grasp_ticks: Optional[np.ndarray] = None
    extra: dict = field(default_factory=dict)  # free-form metadata from the episode

    @property
    def length(self) -> int:
        """Return the number of aligned ticks T."""
        return int(len(self.tick_ns))

    @property
    def verified_success(self) -> Optional[bool]:
        """Return the simulator's verdict, else a person's (`bag verdict`), else None."""
        return self.sim_success if self.sim_success is not None else \
            recorded_verdict(self.extra)

    @property
    def cloned(self) -> bool:
        """Return whether BC may imitate it: success, and no simulator or person denies it."""
        return self.outcome == 'success' and self.verified_success is not False

    @property
    def succeeded(self) -> bool:
        """Return whether the episode reached its goal (and so has steps-to-go labels)."""
        return self.success_tick is not None
