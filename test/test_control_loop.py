"""ControlLoop: robot_node's tick without ROS (guard, backend, lockstep clock, scene seeds)."""

import numpy as np

from hand_clock import Clock
from selfimprove_ros.core.joints import START_POSE
from selfimprove_ros.core.safety import GuardState, SafetyConfig
from selfimprove_ros.robot.control_loop import ControlLoop
from selfimprove_ros.robot.robot_config import RobotConfig

MS = 1_000_000


class FakeArms:
    """A backend that remembers what it was told."""

    def __init__(self, problem=''):
        self.positions = np.asarray(START_POSE, dtype=np.float64)
        self.commands, self.advanced, self.seeds, self.trouble = [], 0, [], problem

    def read(self):
        return self.positions.copy(), np.zeros(14)

    def command(self, target):
        self.commands.append(np.asarray(target))

    def advance(self):
        self.advanced += 1

    def reset(self, seed):
        self.seeds.append(seed)

    def problem(self):
        return self.trouble


def loop(lockstep=True, arms=None, seed=5):
    clock = Clock(10.0)
    config = RobotConfig(lockstep=lockstep, seed=seed)
    return ControlLoop(config, SafetyConfig(), arms or FakeArms(), True, clock,
                       wall_ns=lambda: 1000 * MS), clock


def test_lockstep_steps_on_an_answer_to_the_newest_tick_and_advances_its_clock():
    control, clock = loop()
    assert control.now_ns(5) == 1000 * MS  # simulated time, not the node's
    target = np.asarray(START_POSE) + 0.01
    assert control.submit(target, 900 * MS, 1000 * MS) == ('', False)  # an older tick's answer
    assert control.submit(target, 1000 * MS, 1000 * MS) == ('', True)
    decision, problem = control.step(1000 * MS)
    assert problem == '' and decision.state == GuardState.OK
    np.testing.assert_allclose(control.backend.commands[-1], target)
    assert control.backend.advanced == 1 and control.sim_time_ns == 1100 * MS
    assert not control.overdue()
    clock.now += 1.0  # lockstep_timeout_s without an answer
    assert control.overdue()


def test_an_unreadable_command_holds_and_a_silent_backend_is_not_driven():
    arms = FakeArms(problem='no joint states from follower_left for 2.0 s')
    control, _ = loop(lockstep=False, arms=arms)
    reason, steps = control.submit(None, 0, 0, error='joint names do not match')
    assert 'joint names do not match' in reason and not steps
    assert control.now_ns(123) == 123  # wall-clock robot: the node's time
    assert control.step(0) == (None, 'no joint states from follower_left for 2.0 s')
    assert arms.commands == [] and arms.advanced == 0


def test_scenes_count_up_from_the_start_up_seed_and_the_estop_reports_changes():
    control, _ = loop(seed=5)
    control.start_scene()
    assert [control.reset(), control.reset()] == [5, 6]
    assert control.backend.seeds == [5, 5, 6]  # the first reset repeats the start-up scene
    assert control.set_estop(True) == 'ENGAGED' and control.set_estop(True) == ''
    assert control.step(0)[0].state == GuardState.HOLD_ESTOP
    assert control.set_estop(False) == 'released'


def test_a_wall_clock_tick_is_stamped_when_it_started_and_a_lockstep_one_with_sim_time():
    control, _ = loop(lockstep=False)
    control.step(5_000 * MS)
    assert control.stamp_ns == 5_000 * MS
    lockstep, _ = loop(lockstep=True)
    lockstep.step(1000 * MS)
    assert lockstep.stamp_ns == 1100 * MS  # the state after one simulated period


def test_real_time_scheduling_is_asked_for_and_a_refusal_says_how_to_grant_it(monkeypatch):
    from selfimprove_ros.robot import scheduling
    assert scheduling.request_realtime(0) == (True, '')

    def refuse(*args):
        raise PermissionError(1, 'Operation not permitted')
    monkeypatch.setattr(scheduling.os, 'sched_setscheduler', refuse)
    granted, message = scheduling.request_realtime(50)
    assert not granted and 'limits.conf' in message and 'priority 50 refused' in message
