"""Settings of the robot node that are not safety limits or simulator settings."""

from dataclasses import dataclass

from selfimprove_ros.core.config import require, setting

# bringup: beside Trossen's running ALOHA bringup, topics only (robot/bringup.py).
BACKENDS = ('sim', 'interbotix', 'bringup')


@dataclass
class RobotConfig:
    """How the robot node runs its control loop."""

    backend: str = setting('sim', f'Robot backend, one of {list(BACKENDS)}')
    control_period_s: float = setting(
        0.1, 'Control tick [s]; each command is held this long (paper: 10 Hz)')
    lockstep: bool = setting(
        False, 'Sim only: publish /clock and step as soon as the controller answers each tick '
        '(faster than real time); false runs at wall-clock rate')
    lockstep_timeout_s: float = setting(
        1.0, 'Sim lockstep: wall time [s] to wait for a command before stepping anyway; '
        'longer than the controllers\' sync_timeout_s, so one that misses a frame still acts')
    seed: int = setting(
        0, 'Sim: seed of the start-up scene; the first reset repeats it, later ones count up')
    realtime_priority: int = setting(
        0, 'SCHED_FIFO priority (1-99) for the control tick, so it keeps its period on a busy '
        'machine (needs CAP_SYS_NICE, see robot/scheduling.py); 0 = normal scheduling')
    arm_names: list = setting(['follower_left', 'follower_right'],
                              'interbotix, bringup: follower robot names, left first')

    def __post_init__(self):
        require(self.backend in BACKENDS,
                f'backend={self.backend!r}; choose one of {list(BACKENDS)}')
        require(self.control_period_s > 0,
                f'control_period_s must be > 0, got {self.control_period_s!r}')
        require(self.lockstep_timeout_s > 0,
                f'lockstep_timeout_s must be > 0, got {self.lockstep_timeout_s!r}')
        require(not (self.lockstep and self.backend != 'sim'),
                'lockstep=true needs backend=sim: real hardware cannot wait for the controller')
        require(0 <= self.realtime_priority <= 99,
                f'realtime_priority must be 0 (off) or a SCHED_FIFO priority 1-99, got '
                f'{self.realtime_priority!r}')
        require(len(self.arm_names) == 2,
                f'arm_names needs the left and right follower, got {self.arm_names!r}')
