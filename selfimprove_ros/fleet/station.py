"""A sim station: one simulated robot running the robot's own cores in one process, no ROS.

Per tick, in the order the lockstep node graph runs them:
1. robot_node's `ControlLoop` has a joint state at robot time t (the simulator's clock);
   episode_manager_node's rules count the tick (`EpisodeStateMachine`, `EpisodeWatch`);
2. policy_node's `PolicyController` answers it (tick locked to the robot, model slot, tokens
   document with the sampling version); its frames are rendered only if it decides on them;
3. reward_scorer_node's `LiveScorer` scores each observation whose frames exist, and
   success_detector_node's `EpisodeSuccessMonitor` ends the episode at a detection, with the
   rule the reward model's manifest records (skipping the frames nobody rendered, as the
   paper's detector skips frames);
4. recorder_node's bag gets the tick's messages (`EpisodeRecording`);
5. the command goes through the `SafetyGuard` to the simulator, which steps.
After the episode the bag is labelled with the frozen reward model, as reward_scorer_node
labels every saved bag. The simulator's success is recorded for judging; it never ends or
scores an episode (unless the detector's use_sim_success evaluation mode says so, as in the
graph).
"""

from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
import json
import logging
import time
from typing import Optional

import numpy as np

from selfimprove_ros.bag.episode_metadata import EpisodeMetadata
from selfimprove_ros.core.success_detection import audited_rule, EpisodeSuccessMonitor
from selfimprove_ros.data.episode_labelling import label_bag
from selfimprove_ros.episode.events import make_event
from selfimprove_ros.episode.state import EpisodeStateMachine, Phase
from selfimprove_ros.episode.watch import EpisodeWatch, success_cause
from selfimprove_ros.fleet.recording import EpisodeRecording, NoRecording
from selfimprove_ros.fleet.worlds import LazyFrame, render_lazy, TickFrames
from selfimprove_ros.robot.control_loop import ControlLoop
from selfimprove_ros.runtime.policy_controller import PolicyController
from selfimprove_ros.runtime.reward_scoring import LiveScorer

JOINTS = 'joint_states'
PHASES = ('physics', 'render', 'inference', 'detection', 'bag', 'labelling')


@dataclass
class EpisodeResult:
    """What a station reports of one episode (plain data: it crosses process boundaries)."""

    episode_id: str
    seed: int
    bag: str
    outcome: str              # the episode manager's: success | timeout | fault
    cause: str
    ticks: int
    sim_success: bool         # the simulator's verdict, for judging only
    version: str              # the policy version that acted
    decisions: int            # chunks sampled
    labelled: bool
    phases: dict = field(default_factory=dict)  # seconds spent per PHASES entry

    def as_dict(self) -> dict:
        """Return the result as a plain dict."""
        return asdict(self)


@dataclass
class StationEpisode:
    """The episode a station runs: its bag, the manager's bookkeeping, what happened so far."""

    recording: object                 # EpisodeRecording (or NoRecording)
    machine: EpisodeStateMachine
    watch: EpisodeWatch
    decisions: int = 0                # chunks sampled
    success: Optional[tuple] = None   # (tick, cause) of the first detection


class Phases:
    """Seconds spent per phase of the station's work."""

    def __init__(self):
        self.seconds = dict.fromkeys(PHASES, 0.0)

    @contextmanager
    def timed(self, name: str):
        """Add the time the block takes to phase `name`."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - started


class TimedWorld:
    """A world whose physics steps and renders are timed into `phases`."""

    def __init__(self, world, phases: Phases):
        self.world, self.phases = world, phases

    def __getattr__(self, name):
        return getattr(self.world, name)

    def advance(self):
        """Step physics one control period."""
        with self.phases.timed('physics'):
            self.world.advance()

    def render(self, camera: str):
        """Render one frame of the current state."""
        with self.phases.timed('render'):
            return self.world.render(camera)


class Station:
    """One simulated robot: the robot's cores around a world, a policy and a reward model.

    `settings` is a StationSettings (fleet/station_settings.py), `world` a fleet/worlds.py
    world, `reward_model` the frozen Stage-1 reward.onnx (a runtime.onnx_model.LoadedModel).
    """

    def __init__(self, settings, world, reward_model, log=None, sample_seed: int = 0,
                 controller=None):
        self.settings, self.reward_model = settings, reward_model
        self.log = log or logging.getLogger('station')
        self.phases = Phases()
        self.world = TimedWorld(world, self.phases)
        self.loop = ControlLoop(settings.robot_config, settings.safety, self.world, is_sim=True)
        policy = replace(settings.policy, lockstep=True, instruction=settings.instruction)
        # policy_node's core, or a scripted demonstrator in its place (expert_node's role).
        self.controller = controller or PolicyController(policy, self.log, decode=render_lazy)
        self.sample_seed = sample_seed
        # No reward model (scripted demonstrations before there is one): no scoring, no labels.
        self.scorer = reward_model and LiveScorer(
            reward_model, replace(settings.scorer, instruction=settings.instruction),
            decode=lambda frame: frame, log=self.log)
        # As success_detector_node: the rule audited for this reward model, else the settings.
        self.rule = (reward_model and audited_rule(reward_model.manifest)) or settings.success
        self.monitor = EpisodeSuccessMonitor(self.rule, settings.detector.use_sim_success,
                                             settings.detector.learned_detection)

    @property
    def cameras(self) -> list:
        """Return the cameras this station's robot has."""
        return list(self.world.cameras)

    @property
    def version(self) -> str:
        """Return the live policy's version string (empty before any)."""
        live = self.controller.slot.live
        return live.version if live else ''

    def offer(self, result):
        """Hand the controller a loaded model, or the ModelRejected saying why there is none.

        Between episodes a verified model goes live at once; a rejected one is logged and the
        live model kept, as policy_node does.
        """
        self.controller.on_loads([result])

    def run_episode(self, seed: int, episode_id: str, bag_root: str = None) -> EpisodeResult:
        """Reset to the scene of `seed`, run one episode, record and label it; describe it.

        Without a `bag_root` nothing is recorded or labelled (an evaluation that only needs
        the simulator's verdict).
        """
        self.phases = self.world.phases = Phases()
        self.loop.next_seed = int(seed)
        self.loop.reset()
        metadata = EpisodeMetadata(
            robot=self.settings.robot, task=self.settings.task,
            instruction=self.settings.instruction, policy_version=self.version,
            episode_id=episode_id, seed=int(seed), start_time_ns=self.loop.sim_time_ns)
        with self.phases.timed('bag'):
            recording = EpisodeRecording(bag_root, metadata, self.cameras) if bag_root \
                else NoRecording(metadata)
            recording.start(self.loop.sim_time_ns)
        try:
            episode = self._begin(recording, int(seed))
            while self._tick(episode):
                pass
        except Exception as error:  # noqa: B902 - whatever broke, the bag says so
            recording.abandon(f'station error: {type(error).__name__}: {error}')
            self._follow({'event': 'end', 'episode_id': episode_id})
            raise
        return self._finish(episode)

    def _begin(self, recording, seed: int) -> StationEpisode:
        """Start the episode manager's bookkeeping and tell every core the episode started."""
        episodes, episode_id = self.settings.episodes, recording.metadata.episode_id
        machine = EpisodeStateMachine(episodes.max_ticks)
        machine.reset_done(f'simulator reset, seed {seed}')
        machine.start(episode_id)
        watch = EpisodeWatch(episode_id, seed, self.version, self.settings.period_ns,
                             episodes.fault_grace_ticks)
        # Each scene draws its own samples, whichever station runs it, in whatever order.
        runtime = getattr(self.controller, 'runtime', None)  # a scripted one has none
        if runtime is not None:
            runtime.rng = np.random.default_rng([self.sample_seed, seed])
        self._follow(json_event('start', episode_id=episode_id, robot=self.settings.robot,
                                task=self.settings.task, instruction=self.settings.instruction,
                                policy_version=self.version, seed=seed))
        self.controller.on_event({'event': 'recording', 'episode_id': episode_id})
        return StationEpisode(recording, machine, watch)

    def _tick(self, episode: StationEpisode) -> bool:
        """Run one tick of `episode`; return whether it goes on."""
        machine, watch = episode.machine, episode.watch
        stamp = self.loop.sim_time_ns
        joints = self.world.read()[0]
        frames = self._frames()
        sim_success = self.world.succeeded
        watch.sim_success = watch.sim_success or sim_success
        # Ticks count by the joint state's stamp, as the episode manager counts them; the
        # observation at max_ticks ends the episode unanswered (a success seen in it counts).
        elapsed = watch.elapsed_ticks(stamp)
        last = elapsed >= machine.max_ticks
        while machine.phase is Phase.RUNNING and machine.ticks < min(elapsed,
                                                                     machine.max_ticks - 1):
            machine.tick()
        command, tokens = self._act(machine, watch, stamp, joints, frames) if not last \
            else (None, None)
        if last or machine.phase is not Phase.RUNNING:
            frames.all()  # the last observation's frames: its label needs them
        detection = self._detect(stamp, joints, frames, sim_success)
        if detection and episode.success is None:
            episode.success = (machine.ticks, success_cause(detection, machine.ticks))
        post = self.settings.station.post_success_ticks
        if episode.success and (last or machine.ticks >= episode.success[0] + post):
            machine.success(episode.success[1])
            frames.all()
        elif last:
            machine.tick()  # the timeout
        with self.phases.timed('bag'):
            episode.recording.observation(stamp, frames.rendered, joints, sim_success)
            if machine.phase is not Phase.RUNNING:
                return False
            episode.recording.action(stamp, command, tokens)
        episode.decisions += tokens is not None
        self.loop.submit(command, stamp, stamp)
        decision, _ = self.loop.step(stamp)
        fault = watch.safety_fault(decision.state.value, decision.reason, machine.ticks)
        if fault:
            machine.fault(fault)
        return True

    def _frames(self) -> TickFrames:
        """Return this tick's frames; near a success the scorer's are rendered for every tick."""
        frames = TickFrames(self.world, self.cameras,
                            self.settings.station.frames == 'every_tick')
        if self.scorer and self.near_success():
            for camera in self.scorer.cameras:
                frames.get(camera)
        return frames

    def _act(self, machine, watch, stamp: int, joints, frames: TickFrames):
        """Let the controller answer the tick; return (command, tokens document or None)."""
        if machine.phase is not Phase.RUNNING:
            return None, None
        self.controller.on_joints(stamp, joints)
        for camera in self.cameras:
            self.controller.on_frame(camera, stamp, LazyFrame(frames, camera))
        out = self.controller.tick(stamp)
        self.phases.seconds['inference'] += out.timing.get('inference_s', 0.0)
        fault = watch.policy_fault(out.timing['state'], machine.ticks)
        if fault:
            machine.fault(fault)
        return out.command, out.tokens

    def near_success(self) -> bool:
        """Tell whether the detector's last d(o, g) is close enough to score every tick."""
        last = self.monitor.last_d
        return last is not None and last <= self.settings.station.dense_within_steps

    def _detect(self, stamp: int, joints, frames: TickFrames, sim_success: bool):
        """Score the tick's observation, or hold the last score; return a detection or None.

        The detector takes one d per tick, as in the graph: a tick whose frames nobody
        rendered (far from success, see `near_success`) repeats the last d.
        """
        detection = self.monitor.sim_flag(sim_success, stamp)
        doc = None
        if self.scorer is None:
            return detection
        if all(camera in frames.rendered for camera in self.scorer.cameras):
            with self.phases.timed('detection'):
                self.scorer.sync.add(JOINTS, stamp, np.asarray(joints, dtype=np.float64))
                for camera in self.scorer.cameras:
                    self.scorer.sync.add(camera, stamp, frames.rendered[camera])
                doc = self.scorer.score_newest()
        elif self.monitor.last_d is not None:
            doc = {'episode_id': self.monitor.episode_id, 'stamp_ns': stamp,
                   'steps_to_go': self.monitor.last_d}
        if doc is not None:
            detection = self.monitor.steps_to_go(doc) or detection
        return detection

    def _follow(self, event: dict):
        """Hand an episode event to the controller, the scorer and the detector."""
        self.controller.on_event(event)
        if self.scorer:
            self.scorer.on_event(event)
        if event['event'] == 'start':
            self.monitor.start(event['episode_id'])
        elif event['event'] == 'end':
            self.monitor.end(event['episode_id'])

    def _finish(self, episode: StationEpisode) -> EpisodeResult:
        """Close and label the bag; describe the episode."""
        recording, machine, watch = episode.recording, episode.machine, episode.watch
        episode_id = recording.metadata.episode_id
        end_ns = self.loop.sim_time_ns + 5_000_000
        with self.phases.timed('bag'):
            bag = recording.finish(end_ns, machine.outcome, machine.cause)
        self._follow({'event': 'end', 'episode_id': episode_id})
        labelled = False
        if bag and self.scorer and self.settings.station.label:
            scorer = self.settings.scorer
            with self.phases.timed('labelling'):
                label_bag(bag, self.reward_model, scorer.control_period_s, scorer.success_bonus,
                          scorer.batch_size, self.settings.instruction)
            labelled = True
        return EpisodeResult(
            episode_id=episode_id, seed=watch.seed, bag=bag, outcome=machine.outcome,
            cause=machine.cause, ticks=machine.ticks, sim_success=bool(watch.sim_success),
            version=recording.metadata.policy_version, decisions=episode.decisions,
            labelled=labelled,
            phases=dict(self.phases.seconds))

    def close(self):
        """Release the world (the renderer's GL context)."""
        self.world.close()


def json_event(kind: str, **fields) -> dict:
    """Return a validated episode event as the dict the cores take."""
    return json.loads(make_event(kind, **fields))
