"""One robot's control tick without ROS: safety guard -> backend -> (sim) physics and clock.

robot_node hands it commands and asks it to tick; it decides what the arms get, keeps the
simulator's lockstep clock and the scene seeds, and says when a lockstep tick is due.
"""

import time

from selfimprove_ros.core.safety import SafetyGuard


class ControlLoop:
    """The guard, a backend and, in lockstep simulation, the simulated clock [ns].

    `backend` is a RobotBackend (read, command, optionally advance, reset and problem);
    `clock` is monotonic wall time [s], `wall_ns` the date lockstep time starts from.
    """

    def __init__(self, config, safety, backend, is_sim: bool, clock=time.monotonic,
                 wall_ns=time.time_ns):
        self.config, self.backend, self.is_sim, self.clock = config, backend, is_sim, clock
        self.guard = SafetyGuard(safety, config.control_period_s)
        self.period_ns = int(round(config.control_period_s * 1e9))
        # Lockstep time starts at the wall time of launch so that bags carry plausible dates.
        self.sim_time_ns = wall_ns()
        self.last_tick_s = clock()
        self.stamp_ns = None  # the stamp of the last tick's joint state [ns]
        # The first reset repeats the start-up scene, so episode k of a run uses seed + k.
        self.next_seed = config.seed

    def now_ns(self, ros_now_ns: int) -> int:
        """Robot time: the simulator's own clock in lockstep, else the node's (`ros_now_ns`)."""
        return self.sim_time_ns if self.config.lockstep else ros_now_ns

    def submit(self, positions, stamp_ns: int, now_ns: int, error: str = ''):
        """Hand a command (or why it could not be read) to the guard.

        Returns (refusal reason or '', whether it answers the newest lockstep tick, so the
        simulator steps now).
        """
        reason = self.guard.reject(error) if error else \
            self.guard.submit(positions, now_ns / 1e9)
        return reason, self.config.lockstep and stamp_ns >= self.sim_time_ns

    def set_estop(self, engaged: bool) -> str:
        """Engage or release the e-stop; return 'ENGAGED' or 'released' on a change, else ''."""
        changed = engaged != self.guard.estop_engaged
        self.guard.set_estop(engaged)
        return ('ENGAGED' if engaged else 'released') if changed else ''

    def overdue(self) -> bool:
        """Lockstep: tell whether no controller answered within lockstep_timeout_s."""
        return self.clock() - self.last_tick_s >= self.config.lockstep_timeout_s

    def step(self, now_ns: int):
        """Run one tick at robot time `now_ns`: the guard's target to the backend, sim physics on.

        Returns (the guard's decision, ''), or (None, why the arms cannot be driven now). The
        tick's stamp is then `stamp_ns`: on a wall clock the time the tick started, so that how
        long physics or the arms take does not jitter the period controllers see.
        """
        # A backend that only listens to another driver (bringup) may not hear the arms yet, or
        # no longer: then nothing is commanded and no joint state is published, so controllers
        # see stale states and the episode manager faults instead of acting on a guess.
        problem = getattr(self.backend, 'problem', lambda: '')()
        if problem:
            return None, problem
        positions, _ = self.backend.read()
        decision = self.guard.next_target(positions, now_ns / 1e9)
        self.backend.command(decision.target)
        if self.is_sim:
            self.backend.advance()
            self.sim_time_ns += self.period_ns
        self.last_tick_s = self.clock()
        self.stamp_ns = self.sim_time_ns if self.config.lockstep else now_ns
        return decision, ''

    def start_scene(self):
        """Sim: set up the start-up scene (`config.seed`; the first reset repeats it)."""
        self.backend.reset(self.next_seed)

    def reset(self) -> int:
        """Sim: start the next scene; the guard forgets the old command. Returns its seed."""
        seed = self.next_seed
        self.next_seed += 1
        self.backend.reset(seed)
        self.guard.forget_command()
        return seed
