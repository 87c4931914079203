"""The policy controller's logic without ROS: observations in, one decision per tick out.

policy_node hands it stamped joint states and camera frames, episode events, the manager's
status and finished model loads. A tick is the robot's: each joint state is answered once, as
soon as every camera has a frame stamped at or after it (`RobotTicks`), so the arm acts on the
freshest frames; `tick` returns what to publish: the joint target of the tick
(or a hold at the measured position when an input is stale), the sampled tokens of a new chunk,
and the timing document. Frames stay undecoded until a decision needs them (`decode`).
"""

from dataclasses import dataclass
import time
from typing import Optional

import numpy as np

from selfimprove_ros.core.observation_sync import ObservationSync
from selfimprove_ros.runtime.controller import (EpisodeFollower, RobotTicks, Throttle,
                                                TimingReport)
from selfimprove_ros.runtime.model_slot import ModelSlot
from selfimprove_ros.runtime.policy_runtime import PolicyRuntime

JOINTS = 'joint_states'


@dataclass
class TickOutput:
    """What one tick publishes."""

    timing: dict                          # policy/timing
    command: Optional[np.ndarray] = None  # joint target [14] stamped with the tick
    tokens: Optional[dict] = None         # policy/action_tokens of a new chunk


class PolicyController:
    """Episode gating, staleness, ticks locked to the robot and model swaps around PolicyRuntime.

    `config` is a PolicyConfig; `log` has info/warning/error; `decode(frame)` turns a
    stored camera frame into RGB [H, W, 3] uint8.
    """

    def __init__(self, config, log, decode, clock=time.monotonic):
        self.config, self.log, self.decode, self.clock = config, log, decode, clock
        self.max_age_ns = int(config.max_observation_age_s * 1e9)
        self.slot = ModelSlot()
        self.runtime = PolicyRuntime(config.instruction, config.temperature, config.seed,
                                     config.sampler, config.actions_per_chunk)
        self.follower = EpisodeFollower(config.wait_for_recording)
        self.sync = ObservationSync([JOINTS, *config.cameras])
        self.period_ns = int(round(config.control_period_s * 1e9))
        # On a robot, joint states closer than 3/4 of a period (a faster driver) are one tick.
        self.ticks = RobotTicks(self.sync, config.wait_s, int(config.tolerance_s * 1e9),
                                0 if config.lockstep else self.period_ns * 3 // 4, clock)
        self.unheard_tick_ns = None  # the last tick made up while the robot was silent
        self.started_s = clock()     # silence from the robot is counted from here
        self.timing = TimingReport(clock)
        self.throttle = Throttle(2.0, clock)
        self.last_rejection = ''

    # Inputs -----------------------------------------------------------------------------------
    def on_joints(self, stamp_ns: int, positions):
        """Keep the newest joint state (a robot tick); return the tick now due, else None."""
        self.sync.add(JOINTS, stamp_ns, np.asarray(positions, dtype=np.float64), self.clock())
        return self.due()

    def on_frame(self, camera: str, stamp_ns: int, frame):
        """Keep the newest frame of `camera`; return the tick now due, else None."""
        self.sync.add(camera, stamp_ns, frame, self.clock())
        return self.due()

    def due(self, force: bool = False):
        """Return the robot's newest tick if its observation is complete (or forced), else None."""
        return self.ticks.due(self.sync.stamp(JOINTS), force)

    def overdue(self):
        """Return the newest tick once its frames were awaited `wait_s` in vain, else None."""
        return self.ticks.overdue(self.sync.stamp(JOINTS))

    def robot_silence_s(self) -> float:
        """Return how long [s] no joint state has arrived (since start-up before the first)."""
        arrived = self.sync.arrived(JOINTS)
        return self.clock() - (self.started_s if arrived is None else arrived)

    def unheard_tick(self, now_ns: int):
        """On a robot: a tick at `now_ns` when no joint state came for two periods, else None.

        Such a tick holds (its joint state is stale) and reports why, once per period, so a
        silent robot shows on policy/timing instead of silencing the controller too. In
        lockstep the simulator's silence is time standing still: no tick.
        """
        silent = self.robot_silence_s() > 2 * self.config.control_period_s
        if self.config.lockstep or not silent:
            return None
        if self.unheard_tick_ns is not None and now_ns - self.unheard_tick_ns < self.period_ns:
            return None
        self.unheard_tick_ns = now_ns
        return now_ns

    def on_event(self, event: dict):
        """Act only inside recorded episodes; swap a waiting model in when one ends."""
        change = self.follower.on_event(event)
        if change in ('started', 'goal'):
            self.runtime.instruction = event.get('instruction') or self.config.instruction
        if change == 'started':
            self.runtime.reset()
        elif change == 'ended':
            self.runtime.reset()
            if self.slot.between_episodes():
                self.log.info(f'swapped in policy {self.slot.live.version}')

    def on_status(self, phase: str, episode_id: str):
        """Follow the manager's latched status: an episode whose events went by unheard."""
        change = self.follower.on_status(phase, episode_id)
        if change == 'started':
            self.log.warning(f'episode {episode_id} runs but its start event never arrived; '
                             "acting on the manager's status")
            self.runtime.reset()
        elif change == 'ended':
            self.on_event({'event': 'end', 'episode_id': episode_id})

    # Models -----------------------------------------------------------------------------------
    def on_loads(self, results):
        """Take finished loads: offer verified models to the slot, remember rejections."""
        for result in results:
            if isinstance(result, Exception):
                self.last_rejection = str(result)
                live = self.slot.live.version if self.slot.live else 'none'
                self.log.error(f'{result}; keeping {live}')
                continue
            self.last_rejection = ''
            if self.slot.offer(result, self.follower.episode is not None,
                               self.config.swap_during_episode):
                self.runtime.reset()
                self.log.info(f'policy {result.version} live ({result.providers[0]}, '
                              f'{result.inference_s * 1e3:.1f} ms per inference)')
            elif self.slot.pending is result:
                self.log.info(f'policy {result.version} waits for the episode to end')

    def wants(self, version: str) -> bool:
        """Tell whether an announced `version` is worth loading (it is not the live one)."""
        return self.slot.live is None or version != self.slot.live.version

    def rollback(self) -> str:
        """Return to the previous policy; ValueError when there is none."""
        model = self.slot.rollback()
        self.runtime.reset()
        self.log.warning(f'rolled back to {model.version}')
        return f'rolled back to {model.version}'

    def swap_now(self) -> bool:
        """Swap a waiting model in immediately; return whether there was one."""
        swapped = self.slot.between_episodes()
        if swapped:
            self.runtime.reset()
        return swapped

    # Ticks ------------------------------------------------------------------------------------
    def tick(self, tick_ns: int, now_ns: int = None) -> TickOutput:
        """Run one control tick: answer the robot's tick `tick_ns` at ROS time `now_ns`.

        `now_ns` (default `tick_ns`, as in lockstep where time stands still) dates the
        observation's age.
        """
        started = self.clock()
        model = self.slot.live
        if model is None or not self.follower.acting:
            state = 'no_model' if model is None else 'idle' if self.follower.episode is None \
                else 'waiting_for_recorder'
            return TickOutput(self._timing(tick_ns, state, started))
        cameras = list(model.codec.config.cameras)
        stale = self.sync.stale(tick_ns, self.max_age_ns, [JOINTS, *cameras])
        if stale:
            return self.hold(tick_ns, stale, started)
        stamps = {name: self.sync.stamp(name) for name in (JOINTS, *cameras)}
        tokens, inference_s = None, 0.0
        if self.runtime.needs_decision:
            frames = {cam: self.decode(self.sync.latest(cam)) for cam in cameras}
            decision = self.runtime.decide(model, frames, self.sync.latest(JOINTS), tick_ns)
            inference_s = decision.inference_s
            tokens = {'stamp_ns': tick_ns, 'version': decision.version,
                      'episode_id': self.follower.episode_id,
                      'tokens': decision.tokens.tolist(), 'log_prob': decision.log_prob}
        arrivals = [self.sync.arrived(cam) for cam in cameras]
        timing = self._timing(tick_ns, 'ok', started, stamps, inference_s, arrivals, now_ns)
        return TickOutput(timing, self.runtime.next_target(), tokens)

    def hold(self, tick_ns: int, stale: list, started: float) -> TickOutput:
        """Hold the arm at its measured position and report which input is stale."""
        self.runtime.reset()
        if self.throttle.ready('stale'):
            self.log.warning(f'holding: stale or missing {stale} at tick {tick_ns}')
        return TickOutput(self._timing(tick_ns, 'stale', started,
                                       cause=f'stale input: {stale}'),
                          command=self.sync.latest(JOINTS))

    def _timing(self, tick_ns, state, started, stamps=None, inference_s=0.0, arrivals=(),
                now_ns=None, cause=''):
        slot = self.slot
        return self.timing.report(
            tick_ns, state, started, version=slot.live.version if slot.live else '',
            pending_version=slot.pending.version if slot.pending else '',
            cause=cause or self.last_rejection, stamps=stamps, inference_s=inference_s,
            arrivals_s=arrivals, now_ns=now_ns)
