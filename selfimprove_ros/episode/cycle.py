"""One robot's episode cycle: reset, start, watch, end, wait for the bag, and again.

`EpisodeCycle` holds the episode manager's logic without ROS. The node hands it plain values
(stamps, guard states, parsed JSON) and an `io` object that publishes events, status and home
commands and calls the simulator's reset; so the cycle is tested with a fake `io` as well as on
a live graph. Times are monotonic seconds from `clock` (wall time: /clock stops between ticks).
"""

import json
import math
import time

from selfimprove_ros.bag.episode_metadata import new_episode_id
from selfimprove_ros.bag.verdict import record_verdict
from selfimprove_ros.episode.events import make_event
from selfimprove_ros.episode.state import ENDED, EpisodeStateMachine, Phase, TransitionError
from selfimprove_ros.episode.watch import EpisodeTally, EpisodeWatch, success_cause

REQUESTS = ('reset_done', 'abort', 'start', 'mark_failed')


class EpisodeCycle:
    """Drive `EpisodeStateMachine` for one robot.

    `io` provides publish_event(text), publish_status(text), publish_home(),
    call_reset() -> future or None (service not available) and cancel_reset(future).
    """

    def __init__(self, config, robot: str, instruction: str, io, log, clock=time.monotonic):
        self.config, self.robot, self.instruction = config, robot, instruction
        self.io, self.log, self.clock = io, log, clock
        self.period_ns = int(round(config.control_period_s * 1e9))
        self.machine = EpisodeStateMachine(config.max_ticks)
        self.tally = EpisodeTally()
        self.watch = None          # EpisodeWatch of the current (or just ended) episode
        self.last_saved = None     # (episode_id, bag path) of the newest saved episode
        self.version = ''          # live policy version
        self.policy_heard_s = None  # when the policy last published [s, clock]
        self.steps_to_go = None    # newest d(o, g) of this episode [ticks]
        self.reward_live = False   # the reward scorer has published d(o, g)
        self.estop = False
        self.seed = -1             # seed of the scene the simulator last reset to
        self.needs_operator = False
        self.deadline = None       # when the recorder's answer is overdue
        self.next_start = 0.0      # when `start` is repeated
        self.home_until = 0.0      # arms go to START_POSE until then
        self.reset_call = None     # (future, deadline) of the pending sim/reset call
        self.reset_after = 0.0     # no sim/reset call before then
        self.warn_after = clock() + 5.0  # discovery takes a moment: no warning before then
        self.enter(self.machine.phase)

    # ---------------------------------------------------------------- transitions

    def apply(self, transition):
        """Log a transition (None: nothing happened), run its entry action, publish status."""
        if transition is None:
            return
        self.log.info(f'{transition.previous.value} -> {transition.phase.value}: '
                      f'{transition.cause}')
        self.enter(transition.phase)

    def enter(self, phase: Phase):
        """Do what entering `phase` requires."""
        self.needs_operator = phase is Phase.WAITING_FOR_RESET and not self.config.auto_reset
        if phase is Phase.WAITING_FOR_RESET:
            self.seed = -1
            if not self.config.auto_reset and self.config.home_s > 0:
                self.home_until = self.clock() + self.config.home_s
        elif phase is Phase.READY:
            self.home_until = 0.0
            if self.may_auto_start():
                self.apply(self.start_episode())
                return
        elif phase in ENDED:
            self.end_episode()
        self.publish_status()

    def cycle_open(self) -> bool:
        """Tell whether the automatic cycle may run another episode (max_episodes)."""
        return self.config.max_episodes == 0 or self.tally.episodes < self.config.max_episodes

    def may_auto_start(self) -> bool:
        """Tell whether a ready robot starts by itself now."""
        return self.config.auto_start and self.cycle_open() and not self.estop and \
            self.waiting_for() is None

    def waiting_for(self):
        """Name the node that must come up before an episode may start (None: none)."""
        if self.config.wait_for_policy and not self.policy_live():
            return 'a live policy (wait_for_policy); is policy_node running with a model?'
        if self.config.wait_for_reward and not self.reward_live:
            return ('the reward scorer (wait_for_reward); is reward_scorer_node running with '
                    'a reward model, and do its cameras publish?')
        return None

    def start_episode(self):
        """Start an episode from `ready`; TransitionError says why not."""
        if self.machine.phase is Phase.READY and self.estop:
            raise TransitionError('cannot start an episode while the e-stop is engaged; '
                                  'release it first')
        missing = self.waiting_for() if self.machine.phase is Phase.READY else None
        if missing:
            raise TransitionError(f'cannot start an episode before {missing}')
        episode_id = new_episode_id()
        transition = self.machine.start(episode_id)
        self.watch = EpisodeWatch(episode_id, self.seed, self.version, self.period_ns,
                                  self.config.fault_grace_ticks)
        self.steps_to_go = None
        self.deadline = self.clock() + self.config.recorder_timeout_s
        self.send_start()
        return transition

    def send_start(self):
        """Publish `start` (again, until the recorder acknowledges it)."""
        watch = self.watch
        self.io.publish_event(make_event(
            'start', episode_id=watch.episode_id, robot=self.robot, task=self.config.task,
            instruction=self.instruction, policy_version=watch.version, seed=watch.seed,
            extra={'max_ticks': self.config.max_ticks,
                   'control_period_s': self.config.control_period_s}))
        self.next_start = self.clock() + self.config.start_repeat_s

    def end_episode(self):
        """Announce the end and count it; then wait for the bag, if a recorder took it."""
        watch, machine = self.watch, self.machine
        self.io.publish_event(make_event(
            'end', episode_id=watch.episode_id, outcome=machine.outcome, cause=machine.cause,
            ticks=machine.ticks, policy_version=watch.version, sim_success=watch.sim_success))
        self.tally.record(watch.version, machine.outcome, watch.sim_success)
        self.deadline = self.clock() + self.config.saved_timeout_s
        if not watch.recording:
            self.deadline = None
            self.apply(machine.finished(
                watch.refused or 'no bag: the recorder never acknowledged the start'))

    # ---------------------------------------------------------------- periodic work

    def step(self):
        """Repeat `start`, enforce deadlines, reset the simulator, move the arms home."""
        now, phase, watch = self.clock(), self.machine.phase, self.watch
        if phase is Phase.RUNNING and not watch.recording and self.deadline is not None:
            if now > self.deadline:
                self.deadline = None
                if self.config.require_recorder:
                    self.apply(self.machine.fault(
                        f'recorder did not acknowledge within {self.config.recorder_timeout_s}'
                        ' s; is recorder_node running in this namespace?'))
            elif now >= self.next_start:
                self.send_start()
        elif phase in ENDED and self.deadline is not None and now > self.deadline:
            self.log.error(f'episode {watch.episode_id}: no `saved` from the recorder within '
                           f'{self.config.saved_timeout_s} s; its bag may be incomplete')
            self.deadline = None
            self.apply(self.machine.finished('the recorder did not confirm the bag'))
        elif phase is Phase.WAITING_FOR_RESET:
            if self.config.auto_reset:
                self.step_sim_reset(now)
            elif now < self.home_until:
                self.io.publish_home()
        elif phase is Phase.READY and self.may_auto_start():
            self.apply(self.start_episode())  # e-stop released or a policy live while ready
        elif phase is Phase.READY and self.config.auto_start and self.waiting_for() \
                and now >= self.warn_after:
            self.log.warning(f'ready, but no episode starts before {self.waiting_for()}')
            self.warn_after = now + 10.0

    def step_sim_reset(self, now: float):
        """Call sim/reset, one call at a time, again after a timeout or a failure."""
        if self.reset_call is not None:
            future, deadline = self.reset_call
            if now > deadline:
                self.io.cancel_reset(future)
                self.reset_call = None
                self.log.warning(f'sim/reset did not answer within '
                                 f'{self.config.reset_timeout_s} s; calling it again')
            return
        if self.estop or not self.cycle_open() or now < self.reset_after:
            return
        future = self.io.call_reset()
        if future is None:
            if now >= self.warn_after:
                self.log.warning('waiting for the sim/reset service (robot_node with the sim '
                                 'backend in this namespace?)')
                self.warn_after = now + 10.0
            return
        self.reset_call = (future, now + self.config.reset_timeout_s)
        future.add_done_callback(self.on_reset_answer)

    def on_reset_answer(self, future):
        """Take the simulator's new scene: ready (and started, with auto_start)."""
        if self.reset_call is None or self.reset_call[0] is not future:
            return  # timed out already
        self.reset_call = None
        try:
            response = future.result()
            if not response.success:
                raise ValueError(response.message)
            seed = int(json.loads(response.message)['seed'])
        except Exception as error:  # a broken answer must not stop the cycle
            self.log.error(f'sim/reset failed: {error}; trying again in 1 s')
            self.reset_after = self.clock() + 1.0
            return
        if self.machine.phase is Phase.WAITING_FOR_RESET:
            self.seed = seed
            self.apply(self.machine.reset_done(f'simulator reset, seed {seed}'))

    # ---------------------------------------------------------------- what the graph says

    def on_event(self, event: dict):
        """Take the recorder's `recording`, `refused` and `saved` answers for this episode."""
        watch = self.watch
        if watch is None or event['episode_id'] != watch.episode_id:
            return
        if event['event'] == 'recording' and not watch.recording:
            watch.recording = event['path']
            if self.machine.phase is Phase.RUNNING:
                self.deadline = None
            self.log.info(f'episode {watch.episode_id}: recording to {watch.recording}')
        elif event['event'] == 'refused' and self.machine.phase is Phase.RUNNING:
            # Nothing of it is being recorded: end it now, and expect no `saved`.
            watch.recording, watch.refused = '', f'recorder: {event["cause"]}'
            self.deadline = None
            self.apply(self.machine.fault(watch.refused))
        elif event['event'] == 'saved' and self.machine.phase in ENDED:
            self.last_saved = (watch.episode_id, event['path'])
            self.deadline = None
            self.apply(self.machine.finished(f'episode saved to {event["path"]}'))

    def on_stamp(self, stamp_ns: int):
        """Count control ticks by a joint state's stamp (robot time); time out at max_ticks."""
        if self.machine.phase is not Phase.RUNNING:
            return
        elapsed = self.watch.elapsed_ticks(stamp_ns)
        while self.machine.phase is Phase.RUNNING and self.machine.ticks < elapsed:
            self.apply(self.machine.tick())

    def on_success(self, data: dict):
        """End the episode on the success detector's word (for this episode only).

        The cause names d(o, g) and whether the simulator agreed; a detection whose source is
        'sim' (the detector's use_sim_success evaluation mode) says so.
        """
        if self.watch is None or data.get('episode_id') != self.watch.episode_id:
            return
        self.apply(self.machine.success(success_cause(data, self.machine.ticks)))

    def on_sim_success(self, succeeded: bool):
        """Keep whether the simulator reported success (evaluation only: it never ends one)."""
        if self.machine.phase is Phase.RUNNING and succeeded:
            self.watch.sim_success = True

    def policy_live(self) -> bool:
        """Tell whether a policy with a model was heard within policy_timeout_s."""
        return bool(self.version) and self.policy_heard_s is not None and \
            self.clock() - self.policy_heard_s <= self.config.policy_timeout_s

    def on_version(self, version: str):
        """Follow the live policy version (a sign of life too); attribute the episode to it."""
        if self.machine.phase is Phase.RUNNING:
            self.watch.observe_version(version)
        was_live = self.policy_live()
        if version:
            self.policy_heard_s = self.clock()
        if version and (version != self.version or not was_live):
            self.version = version  # new, or back to life: the status and a waiting start
            self.publish_status()
            if self.machine.phase is Phase.READY and self.may_auto_start():
                self.apply(self.start_episode())

    def on_policy_timing(self, timing: dict):
        """Follow the controller's version and state (a policy/timing document)."""
        self.on_version(str(timing.get('version') or ''))
        self.on_policy_state(str(timing.get('state', '')))

    def on_policy_actions(self, actions: dict):
        """Follow the version that sampled the tokens (a policy/action_tokens document)."""
        self.on_version(str(actions.get('version') or ''))

    def on_policy_state(self, state: str):
        """Fault on a stale controller (stale camera input makes it hold)."""
        if self.machine.phase is Phase.RUNNING:
            cause = self.watch.policy_fault(state, self.machine.ticks)
            if cause:
                self.apply(self.machine.fault(cause))

    def on_safety(self, state: str, message: str = ''):
        """Fault on a safety hold that is not the expected start of an episode."""
        if self.machine.phase is Phase.RUNNING:
            cause = self.watch.safety_fault(state, message, self.machine.ticks)
            if cause:
                self.apply(self.machine.fault(cause))
        elif self.machine.phase is Phase.READY and state == 'hold_estop':
            self.apply(self.machine.fault('safety guard hold_estop'))

    def on_estop(self, engaged: bool):
        """Fault on the e-stop; the cycle pauses until it is released."""
        if engaged != self.estop:
            self.log.warning(f'e-stop {"engaged" if engaged else "released"}')
        self.estop = bool(engaged)
        if self.estop:
            self.apply(self.machine.fault('e-stop engaged'))
        self.publish_status()

    def on_steps_to_go(self, data: dict):
        """Note that the scorer is live; keep the newest d(o, g) of this episode."""
        if not self.reward_live:
            self.reward_live = True
            self.log.info('reward scorer live')
            if self.machine.phase is Phase.READY and self.may_auto_start():
                self.apply(self.start_episode())
        episode_id = data.get('episode_id')
        if episode_id and (self.watch is None or episode_id != self.watch.episode_id):
            return
        value = data.get('steps_to_go')
        value = float(value) if isinstance(value, (int, float)) else math.nan
        self.steps_to_go = value if math.isfinite(value) else None

    # ---------------------------------------------------------------- operator and status

    def request(self, name: str):
        """Serve one of REQUESTS from the operator; return (accepted, message)."""
        if name == 'mark_failed':
            return self.mark_failed()
        try:
            transition = {'reset_done': lambda: self.machine.reset_done(
                              'operator confirmed the reset'),
                          'abort': lambda: self.machine.abort('operator abort'),
                          'start': self.start_episode}[name]()
            self.apply(transition)
            return True, transition.cause
        except TransitionError as error:
            return False, str(error)
        finally:
            self.publish_status()

    def mark_failed(self):
        """Record the operator's word that the newest saved episode failed (bag verdict).

        The manager runs beside the recorder on the robot, so it writes the bag it was told
        about. Refused while an episode runs: which one the operator means would be a guess.
        """
        if self.machine.phase is Phase.RUNNING:
            return False, 'an episode is running; mark the last one failed once this one ends'
        if self.last_saved is None:
            return False, 'no saved episode to mark yet'
        episode_id, path = self.last_saved
        try:
            record_verdict(path, False, by='operator (console)')
        except (OSError, ValueError) as error:
            return False, f'could not mark episode {episode_id} failed: {error}'
        self.log.info(f'episode {episode_id} marked failed by the operator: {path}')
        return True, f'episode {episode_id} marked failed ({path})'

    def status(self) -> dict:
        """Return the status document of the console contract (console/status.py)."""
        machine, cause = self.machine, self.machine.cause
        if machine.phase is Phase.WAITING_FOR_RESET and self.config.auto_reset \
                and not self.cycle_open():
            cause = f'{cause}; max_episodes={self.config.max_episodes} done, cycle stopped'
        if self.estop:
            cause = f'{cause}; e-stop engaged'
        elif machine.phase is Phase.READY and self.waiting_for():
            cause = f'{cause}; waiting for {self.waiting_for()}'
        return {'robot': self.robot, 'phase': machine.phase.value, 'cause': cause,
                'episode_id': machine.episode_id, 'ticks': machine.ticks,
                'max_ticks': machine.max_ticks, 'steps_to_go': self.steps_to_go,
                'policy_version': self.version, 'episodes': self.tally.episodes,
                'by_version': self.tally.as_dict(), 'needs_operator': self.needs_operator,
                'stamp_ns': time.time_ns()}

    def publish_status(self):
        """Publish the status document."""
        self.io.publish_status(json.dumps(self.status(), sort_keys=True))

    def shutdown(self):
        """Close a running episode as aborted, so its bag says why it stopped."""
        if self.machine.phase is Phase.RUNNING:
            self.machine.abort('episode manager shut down')
            self.io.publish_event(make_event(
                'end', episode_id=self.watch.episode_id, outcome='aborted',
                cause='episode manager shut down', ticks=self.machine.ticks))
