"""Settings of the episode manager: how one robot's episodes are reset, started and ended."""

from dataclasses import dataclass

from selfimprove_ros.core.config import require, setting


@dataclass
class EpisodeManagerConfig:
    """One robot's episode cycle; defaults suit the simulator (config/aloha.yaml: real arms)."""

    task: str = setting('transfer_cube', 'Task name written into every `start` event')
    instruction: str = setting(
        '', "Language goal g of the episodes; empty = the task's standard instruction")
    robot_name: str = setting('', 'Robot name in `start` events and status; empty = namespace')
    control_period_s: float = setting(
        0.1, 'Control tick [s]: joint_states stamps this far apart count as one tick')
    max_ticks: int = setting(
        300, 'Episode length limit [control ticks] (paper: 1500 steps at 50 Hz = 300 at 10 Hz)')
    max_episodes: int = setting(
        0, 'Episodes the automatic cycle runs before it stops; 0 = forever')
    auto_reset: bool = setting(
        True, 'Reset by calling the simulator (sim/reset); false = the operator resets the '
        'scene and confirms with episode/reset_done')
    auto_start: bool = setting(
        True, 'Start the next episode as soon as the scene is reset; false = episode/start')
    home_s: float = setting(
        3.0, 'Operator reset: command START_POSE for this long [s] on entering '
        'waiting_for_reset (the safety guard limits the speed); 0 = do not move the arms')
    require_recorder: bool = setting(
        True, "Wait for the recorder's `recording` answer; without it an episode ends as a "
        'fault (practice that is not recorded is wasted)')
    recorder_timeout_s: float = setting(
        10.0, 'Wall time [s] the recorder has to acknowledge `start`')
    start_repeat_s: float = setting(
        0.5, 'Repeat `start` this often [s] until the recorder acknowledges it')
    saved_timeout_s: float = setting(
        30.0, 'Wall time [s] to wait for the bag after `end` before moving on (logged)')
    reset_timeout_s: float = setting(
        10.0, 'Wall time [s] the simulator has to answer sim/reset before it is called again')
    fault_grace_ticks: int = setting(
        10, 'Ticks [control ticks] at the start of an episode during which a command watchdog '
        'hold or a stale policy is not yet a fault (unless the controller has already acted)')
    wait_for_policy: bool = setting(
        False, 'Start episodes only once a policy version is live (policy/timing or '
        'policy/action_tokens name one), so no episode is spent while the model loads')
    policy_timeout_s: float = setting(
        3.0, 'With wait_for_policy: a policy not heard on policy/timing or policy/action_tokens '
        'for this long [s, wall] is not live (its node died or hangs), so no episode starts '
        'until it is heard again; it ticks at least every second, idle or not')
    wait_for_reward: bool = setting(
        False, 'Start episodes only once the reward scorer has published d(o, g) '
        '(reward/steps_to_go), so no practice episode runs without success detection')
    status_period_s: float = setting(1.0, 'Status refresh period [s] between changes')

    def __post_init__(self):
        require(bool(self.task), 'task must name the task, e.g. transfer_cube')
        require(self.control_period_s > 0,
                f'control_period_s must be > 0 s, got {self.control_period_s!r}')
        require(self.max_ticks >= 1, f'max_ticks must be >= 1, got {self.max_ticks!r}')
        require(self.max_episodes >= 0,
                f'max_episodes must be >= 0 (0 = forever), got {self.max_episodes!r}')
        require(self.home_s >= 0, f'home_s must be >= 0 s, got {self.home_s!r}')
        require(self.policy_timeout_s > 0,
                f'policy_timeout_s must be > 0 s, got {self.policy_timeout_s!r}')
        require(self.fault_grace_ticks >= 0,
                f'fault_grace_ticks must be >= 0, got {self.fault_grace_ticks!r}')
        for name in ('recorder_timeout_s', 'start_repeat_s', 'saved_timeout_s',
                     'reset_timeout_s', 'status_period_s'):
            require(getattr(self, name) > 0, f'{name} must be > 0 s, got {getattr(self, name)!r}')
        require(self.start_repeat_s < self.recorder_timeout_s,
                f'start_repeat_s ({self.start_repeat_s}) must be shorter than '
                f'recorder_timeout_s ({self.recorder_timeout_s}) or `start` is sent only once')
