"""Self-improvement in one process: practice, record, label, REINFORCE, export, hot-swap.

The robots' loop without ROS, built from the pieces the nodes use, for tests and benchmarks on
any tick-based environment with `reset(seed)`, `observe() -> (frames, joints [14])`,
`step(target [14])`, a latched `succeeded` flag and optionally `cameras`
(sim.point_mass.PointMass is one):

1. practice: the live policy version drives episodes at temperature 1 through
   `PolicyController`, the core policy_node runs (episode events, observations, lockstep
   ticks, model slot); each is written as a contract bag (`EpisodeRecording`) with the
   tokens document policy_node publishes on `policy/action_tokens`, as recorder_node would
   write it in a lockstep simulation;
2. label: `label_bag` with the frozen Stage-1 reward.onnx, which is never replaced;
3. learn: `ImproveRun.pending/decisions/iterate`: episodes of the live version only, the buffer
   cleared every iteration, a new version exported whose manifest names its parent;
4. swap: `load_model` verifies the new policy.onnx and the controller takes it between
   episodes, as policy_node does.

Success for evaluation is the environment's own flag (the simulator's ground truth); the
learned steps-to-go only ever shapes the reward.
"""

from dataclasses import dataclass
import json
import logging
import os
import time

import numpy as np

from selfimprove_ros.bag.episode_bag import EpisodeBagWriter
from selfimprove_ros.bag.episode_metadata import EpisodeMetadata, new_episode_id
from selfimprove_ros.core import topics
from selfimprove_ros.episode.events import make_event
from selfimprove_ros.episode.progress import RunningEpisode
from selfimprove_ros.core.topics import QOS_CLASSES
from selfimprove_ros.data.bag_messages import bool_cdr, image_cdr, joint_state_cdr, string_cdr
from selfimprove_ros.runtime.episode_labelling import label_bag
from selfimprove_ros.runtime.onnx_model import load_model
from selfimprove_ros.runtime.policy_config import PolicyConfig
from selfimprove_ros.runtime.policy_controller import PolicyController
from selfimprove_ros.training.improve_run import ImproveRun
from selfimprove_ros.training.run_export import export_run
from selfimprove_ros.training.sft_data import load_sft_data
from selfimprove_ros.training.sft_trainer import SftTrainer

_MS = 1_000_000


@dataclass
class EpisodeSpec:
    """Who practises what, and when an episode ends (the episode manager's rules)."""

    robot: str = 'toy1'
    task: str = 'point_mass'
    instruction: str = ''
    max_ticks: int = 20            # timeout after this many ticks [control ticks]
    post_success_ticks: int = 2    # the episode ends this many ticks after success
    control_period_s: float = 0.1  # tick [s] of the recorded (simulated) clock

    @property
    def period_ns(self) -> int:
        """Return the control period [ns]."""
        return int(round(self.control_period_s * 1e9))


class EpisodeRecording:
    """One episode written as a contract bag: the topics and stamps recorder_node records."""

    def __init__(self, bag_root: str, metadata: EpisodeMetadata, cameras):
        self.metadata, self.cameras = metadata, list(cameras)
        self.writer = EpisodeBagWriter(bag_root, metadata, max_chunk_s=5.0)
        # A topic is declared on its first message, as `ros2 bag record` does: a scripted
        # episode then has no empty policy/action_tokens.
        self.specs = {spec.name: spec for spec in topics.contract(self.cameras, sim=True)}

    def _write(self, name: str, data: bytes, log_ns: int):
        topic, spec = f'/{self.metadata.robot}/{name}', self.specs.pop(name, None)
        if spec is not None:
            self.writer.add_topic(topic, spec.msgtype, QOS_CLASSES.get(spec.qos))
        self.writer.write(topic, data, log_ns)

    def _event(self, stamp_ns: int, kind: str, **fields):
        text = make_event(kind, episode_id=self.metadata.episode_id, **fields)
        self._write(topics.EPISODE_EVENTS, string_cdr(text), stamp_ns)

    def start(self, stamp_ns: int):
        """Record the `start` event [ns of the simulated clock]."""
        meta = self.metadata
        self._event(stamp_ns, 'start', robot=meta.robot, task=meta.task,
                    instruction=meta.instruction, policy_version=meta.policy_version,
                    seed=meta.seed)

    def observation(self, stamp_ns: int, frames: dict, joints, success: bool):
        """Record the tick's joint state, camera frames and the simulator's success flag."""
        self._write(topics.JOINT_STATES, joint_state_cdr(stamp_ns, joints), stamp_ns)
        for cam in self.cameras:
            self._write(topics.camera_topic(cam), image_cdr(stamp_ns, frames[cam], cam),
                        stamp_ns)
        self._write(topics.SIM_SUCCESS, bool_cdr(success), stamp_ns)

    def action(self, stamp_ns: int, target, tokens: dict = None):
        """Record the command answering tick `stamp_ns` and, at a decision, its tokens document.

        `tokens` is what policy_node publishes on policy/action_tokens (PolicyController's),
        recorded under this bag's episode id.
        """
        if tokens is not None:
            text = json.dumps(dict(tokens, episode_id=self.metadata.episode_id))
            self._write(topics.POLICY_ACTIONS, string_cdr(text), stamp_ns + _MS)
        self._write(topics.JOINT_COMMANDS, joint_state_cdr(stamp_ns, target), stamp_ns + 2 * _MS)

    def finish(self, stamp_ns: int, outcome: str, cause: str) -> str:
        """Record the `end` event, close the bag; return its directory."""
        self._event(stamp_ns, 'end', outcome=outcome, cause=cause)
        return self.writer.finish(outcome, cause, end_time_ns=stamp_ns)


class PolicyActor:
    """Acts with a policy through PolicyController, as policy_node does in lockstep.

    An actor has `reset(seed)` and `act(frames, joints, stamp_ns) -> (target [14], tokens
    document or None)`; a scripted demonstrator (sim.point_mass.HesitantDemonstrator) is
    another. Each reset ends the controller's episode and starts the next; a model offered
    (`offer`) during an episode goes live when it ends, as on a robot.
    """

    def __init__(self, model, spec: 'EpisodeSpec', temperature: float = 1.0, seed: int = 0,
                 log=None):
        config = PolicyConfig(
            cameras=list(model.codec.config.cameras), lockstep=True, wait_for_recording=False,
            instruction=spec.instruction, control_period_s=spec.control_period_s,
            inference_budget_s=spec.control_period_s, temperature=temperature, seed=seed)
        self.core = PolicyController(config, log or logging.getLogger('practice'),
                                     decode=lambda frame: frame)
        self.period_ns = int(round(spec.control_period_s * 1e9))
        # The controller, like a robot, lives on one clock that only moves forward; episodes
        # here restart theirs (evaluation at 0, practice at a wall-clock date that earlier
        # simulated episodes may have run past), so each is shifted past the one before.
        self.shift_ns, self.last_ns = None, 0
        self.episodes = 0
        self.offer(model)

    def offer(self, model):
        """Hand the controller a loaded model (live at once between episodes)."""
        self.core.on_loads([model])

    def end_episode(self):
        """End the controller's episode, if any (a model waiting in the slot goes live)."""
        if self.core.follower.episode_id is not None:
            self.core.on_event({'event': 'end', 'episode_id': self.core.follower.episode_id})

    def reset(self, seed: int):
        """End the controller's episode, if any, and start the next."""
        self.end_episode()
        self.shift_ns = None
        self.episodes += 1
        self.core.on_event({'event': 'start', 'episode_id': f'episode-{self.episodes}',
                            'seed': seed})

    def act(self, frames: dict, joints, stamp_ns: int):
        """Answer the observation of tick `stamp_ns`: (joint target [14], tokens or None)."""
        if self.shift_ns is None:
            self.shift_ns = self.last_ns + self.period_ns - stamp_ns
        tick_ns = self.last_ns = stamp_ns + self.shift_ns
        self.core.on_joints(tick_ns, joints)
        for camera, frame in frames.items():
            if camera in self.core.config.cameras:
                self.core.on_frame(camera, tick_ns, frame)
        out = self.core.tick(tick_ns)
        if out.timing['state'] != 'ok':
            raise RuntimeError(f'the policy did not act at {stamp_ns}: {out.timing}')
        tokens = out.tokens and dict(out.tokens, stamp_ns=stamp_ns)
        return out.command, tokens


def run_episode(env, actor, seed: int, spec: EpisodeSpec, recording=None, start_ns: int = 0):
    """Run one episode in lockstep; return its RunningEpisode (outcome, cause, ticks).

    Tick k is stamped start + (k + 1) periods. The actor answers every observation until the
    episode ends (`post_success_ticks` after the first success, or at `max_ticks`); that last
    observation is recorded but not acted on.
    """
    env.reset(seed)
    actor.reset(seed)
    progress = RunningEpisode(recording.metadata.episode_id if recording else '',
                              spec.max_ticks, spec.post_success_ticks)
    for tick in range(spec.max_ticks + 1):
        stamp = start_ns + (tick + 1) * spec.period_ns
        frames, joints = env.observe()
        progress.success = progress.success or bool(env.succeeded)
        if recording is not None:
            recording.observation(stamp, frames, joints, env.succeeded)
        if progress.observe(stamp, spec.period_ns):
            break
        target, tokens = actor.act(frames, joints, stamp)
        if recording is not None:
            recording.action(stamp, target, tokens)
        env.step(target)
    if recording is not None:
        recording.finish(stamp + 5 * _MS, progress.outcome, progress.cause)
    return progress


def record_episode(env, actor, bag_root: str, spec: EpisodeSpec, seed: int,
                   policy_version: str, cameras, episode_id: str = ''):
    """Run one episode into a new bag under `bag_root`; return (bag_dir, succeeded)."""
    start_ns = time.time_ns()
    recording = EpisodeRecording(bag_root, EpisodeMetadata(
        robot=spec.robot, task=spec.task, instruction=spec.instruction,
        policy_version=policy_version, episode_id=episode_id or new_episode_id(),
        seed=int(seed), start_time_ns=start_ns), cameras)
    recording.start(start_ns)
    progress = run_episode(env, actor, seed, spec, recording, start_ns)
    return recording.writer.path, progress.success


def record_demonstrations(env, actor, bag_root: str, spec: EpisodeSpec, seeds, cameras) -> list:
    """Record one episode of a scripted `actor` per seed; return their (bag_dir, succeeded).

    Episode ids follow the seeds, so the Stage-1 train/validation split (a hash of the ids)
    and the loading order are the same on every run.
    """
    return [record_episode(env, actor, bag_root, spec, seed, 'scripted', cameras,
                           f'demo-{number:05d}-{seed}') for number, seed in enumerate(seeds)]


def run_practice_episode(env, actor: PolicyActor, bag_root: str, spec: EpisodeSpec, seed: int,
                         episode_id: str = ''):
    """Practise one episode with the actor's live model; return (bag_dir, succeeded)."""
    model = actor.core.slot.live
    return record_episode(env, actor, bag_root, spec, seed, model.version,
                          model.codec.config.cameras, episode_id)


def evaluate(env, model, seeds, spec: EpisodeSpec, temperature: float = 1.0,
             sample_seed: int = 0) -> list:
    """Return, per seed, whether the environment reported success in an unrecorded episode."""
    actor = PolicyActor(model, spec, temperature, sample_seed)
    return [run_episode(env, actor, int(seed), spec).success for seed in seeds]


def train_stage_one(bags, run_dir: str, sft_config, model_dir: str, log=print) -> str:
    """Train Stage 1 on demonstration bags; export its policy and reward to `model_dir`."""
    data = load_sft_data(bags, run_dir, sft_config, {}, log)
    SftTrainer(data, run_dir, sft_config, log).run()
    return export_run(run_dir, model_dir)


class PracticeLoop:
    """One station's self-improvement: live policy, frozen reward model, improvement run."""

    def __init__(self, env, stage1_dir: str, run_dir: str, bag_root: str, config,
                 spec: EpisodeSpec, seed: int = 0, log=print):
        self.env, self.spec, self.config, self.bag_root = env, spec, config, bag_root
        self.seed, self.log, self.bags = seed, log, []
        self.cameras = list(getattr(env, 'cameras', topics.CAMERA_NAMES))
        # The frozen Stage-1 copy scores every practice episode, whichever version is live.
        self.reward = load_model(stage1_dir, 'reward.onnx', self.cameras, providers='cpu')
        self.run = ImproveRun(run_dir, config, initial_model_dir=stage1_dir, log=log)
        live_dir = [entry['model_dir'] for entry in self.run.state['versions']
                    if entry['version'] == self.run.version][-1]
        self.actor = PolicyActor(self.load_policy(live_dir), spec, temperature=1.0, seed=seed)

    @property
    def slot(self):
        """Return the live and waiting versions (the controller's ModelSlot)."""
        return self.actor.core.slot

    def load_policy(self, model_dir: str):
        """Verify and open a policy.onnx on the CPU."""
        return load_model(model_dir, 'policy.onnx', self.cameras, providers='cpu')

    def practise(self, episodes: int) -> list:
        """Run and label `episodes` with the live policy; return their (bag, succeeded)."""
        model, iteration = self.slot.live, self.run.state['iteration']
        results = []
        for number in range(episodes):
            seed = (self.seed * 1000 + iteration) * 100_000 + number
            # Bags sort by start second, then id: numbered ids keep the practice order, so
            # the learner sees the same decisions in the same order on every run.
            bag, success = run_practice_episode(
                self.env, self.actor, os.path.join(self.bag_root, model.version),
                self.spec, seed, f'it{iteration}-{number:05d}-{new_episode_id()[:6]}')
            label_bag(bag, self.reward, self.spec.control_period_s, self.config.success_bonus,
                      instruction=self.spec.instruction)
            results.append((bag, success))
        self.bags += [bag for bag, _ in results]
        return results

    def iteration(self, episodes: int) -> dict:
        """Practise, learn one REINFORCE iteration, swap the new version in; describe it."""
        parent = self.run.version
        practised = self.practise(episodes)
        pending = self.run.pending(self.bag_root)
        decisions = self.run.decisions(pending)
        self.run.record_outcomes(pending)  # the version's success count, as the learner keeps
        model_dir = self.run.iterate(pending, decisions)
        self.actor.end_episode()  # between episodes, where a robot takes a new model
        self.actor.offer(self.load_policy(model_dir))
        if self.slot.live.version != self.run.version:
            raise RuntimeError(f'new version {self.run.version} was not swapped in (live: '
                               f'{self.slot.live.version})')
        return {'parent': parent, 'version': self.run.version, 'model_dir': model_dir,
                'episodes': len(pending), 'decisions': len(decisions),
                'practice_success': float(np.mean([ok for _, ok in practised])),
                'metrics': self.run.state['versions'][-1]['metrics']}


def improve(loop: PracticeLoop, iterations: int, episodes: int, evaluation_seeds=(),
            temperature: float = 1.0) -> list:
    """Run `iterations` of `episodes` each; evaluate every version on `evaluation_seeds`.

    Returns one dict for the starting version and one per iteration (PracticeLoop.iteration's),
    with 'success_rate' over the evaluation episodes when there are any.
    """
    def measure():
        if not len(evaluation_seeds):
            return {}
        results = evaluate(loop.env, loop.slot.live, evaluation_seeds, loop.spec, temperature,
                           sample_seed=loop.seed + 1)
        return {'success_rate': float(np.mean(results)), 'successes': int(np.sum(results)),
                'evaluated': len(results)}

    history = [{'version': loop.slot.live.version, **measure()}]
    for _ in range(iterations):
        history.append({**loop.iteration(episodes), **measure()})
        loop.log(json.dumps({k: v for k, v in history[-1].items() if k != 'metrics'}))
    return history
