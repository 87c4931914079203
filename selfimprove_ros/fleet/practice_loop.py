"""The fleet with one station, in this process: practice, record, label, REINFORCE, hot-swap.

The toy tasks' self-improvement loop (test/test_self_improvement.py, `bench toy`) on any
tick-based environment with `reset(seed)`, `observe() -> (frames, joints [14])`,
`step(target [14])`, a latched `succeeded` flag and `cameras` (sim.point_mass.PointMass is
one), through the same `Station` and `Learner` a fleet runs:

1. practice: the station drives episodes with the live version at temperature 1 through
   `PolicyController`, the robot's `ControlLoop` and the episode manager's rules, records each
   as a contract bag and labels it with the frozen Stage-1 reward.onnx (never replaced);
2. learn: `Learner.iterate_now`: `ImproveRun` on the live version's episodes, a new version
   exported whose manifest names its parent;
3. swap: the station verifies the new policy.onnx and its controller takes it between
   episodes, as policy_node does.

A toy's episodes end at the environment's own success (the detector's use_sim_success mode,
plus `post_success_ticks`), which is also what evaluation counts; the learned steps-to-go only
ever shapes the reward.
"""

from dataclasses import dataclass
import json
import os

import numpy as np

from selfimprove_ros.bag.episode_metadata import new_episode_id
from selfimprove_ros.core import topics
from selfimprove_ros.core.safety import SafetyConfig
from selfimprove_ros.core.success_detection import SuccessConfig
from selfimprove_ros.episode.episode_manager_config import EpisodeManagerConfig
from selfimprove_ros.fleet.learner import Learner
from selfimprove_ros.fleet.scripted_controller import ScriptedController
from selfimprove_ros.fleet.station import Station
from selfimprove_ros.fleet.station_settings import StationConfig, StationSettings
from selfimprove_ros.fleet.worlds import EnvWorld
from selfimprove_ros.robot.robot_config import RobotConfig
from selfimprove_ros.runtime.onnx_model import load_model
from selfimprove_ros.runtime.policy_config import PolicyConfig
from selfimprove_ros.runtime.reward_scorer_config import RewardScorerConfig
from selfimprove_ros.runtime.success_detector_config import SuccessDetectorConfig
from selfimprove_ros.training.run_export import export_run
from selfimprove_ros.training.sft_data import load_sft_data
from selfimprove_ros.training.sft_trainer import SftTrainer


@dataclass
class EpisodeSpec:
    """Who practises what, and when a toy episode ends."""

    robot: str = 'toy1'
    task: str = 'point_mass'
    instruction: str = ''
    max_ticks: int = 20            # timeout after this many ticks [control ticks]
    post_success_ticks: int = 2    # the episode ends this many ticks after success
    control_period_s: float = 0.1  # tick [s] of the recorded (simulated) clock


def toy_settings(spec: EpisodeSpec, cameras, temperature: float = 1.0,
                 reward_model_dir: str = '', label: bool = True) -> StationSettings:
    """Return the station settings of a toy environment (no sim graph to read them from).

    A toy's joints are a puck's coordinates and its gripper a switch, so the safety guard's
    speed limits are opened (ALOHA's would slow the toy's dynamics); episodes end at the
    environment's own success.
    """
    cameras, period = list(cameras), spec.control_period_s
    return StationSettings(
        robot=spec.robot, task=spec.task, instruction=spec.instruction, cameras=cameras,
        camera_size=(0, 0), robot_config=RobotConfig(lockstep=True, control_period_s=period),
        safety=SafetyConfig(max_arm_speed_rad_s=100.0, max_gripper_speed_per_s=100.0),
        policy=PolicyConfig(cameras=cameras, lockstep=True, control_period_s=period,
                            inference_budget_s=period, temperature=temperature),
        scorer=RewardScorerConfig(reward_model_dir=reward_model_dir or '-', cameras=cameras,
                                  control_period_s=period),
        success=SuccessConfig(),
        detector=SuccessDetectorConfig(use_sim_success=True, learned_detection=False),
        episodes=EpisodeManagerConfig(task=spec.task, instruction=spec.instruction,
                                      max_ticks=spec.max_ticks, control_period_s=period),
        station=StationConfig(frames='every_tick', post_success_ticks=spec.post_success_ticks,
                              label=label))


def toy_station(env, spec: EpisodeSpec, reward_model=None, temperature: float = 1.0,
                sample_seed: int = 0, actor=None) -> Station:
    """Return a station around `env`; `actor` (a scripted demonstrator) replaces the policy."""
    cameras = list(getattr(env, 'cameras', topics.CAMERA_NAMES))
    settings = toy_settings(spec, cameras, temperature,
                            reward_model.model_dir if reward_model else '')
    return Station(settings, EnvWorld(env), reward_model, sample_seed=sample_seed,
                   controller=ScriptedController(actor) if actor is not None else None)


def record_demonstrations(env, actor, bag_root: str, spec: EpisodeSpec, seeds,
                          cameras=None) -> list:
    """Record one episode of a scripted `actor` per seed; return their (bag_dir, succeeded).

    Episode ids follow the seeds, so the Stage-1 train/validation split (a hash of the ids)
    and the loading order are the same on every run.
    """
    station = toy_station(env, spec, actor=actor)
    results = [station.run_episode(seed, f'demo-{number:05d}-{seed}', bag_root)
               for number, seed in enumerate(seeds)]
    return [(result.bag, result.sim_success) for result in results]


def evaluate(env, model, seeds, spec: EpisodeSpec, temperature: float = 1.0,
             sample_seed: int = 0) -> list:
    """Return, per seed, whether the environment reported success in an unrecorded episode."""
    station = toy_station(env, spec, temperature=temperature, sample_seed=sample_seed)
    station.offer(model)
    return [station.run_episode(int(seed), f'eval-{int(seed)}').sim_success for seed in seeds]


def train_stage_one(bags, run_dir: str, sft_config, model_dir: str, log=print) -> str:
    """Train Stage 1 on demonstration bags; export its policy and reward to `model_dir`."""
    data = load_sft_data(bags, run_dir, sft_config, {}, log)
    SftTrainer(data, run_dir, sft_config, log).run()
    return export_run(run_dir, model_dir)


class PracticeLoop:
    """One station's self-improvement: live policy, frozen reward model, one learner."""

    def __init__(self, env, stage1_dir: str, run_dir: str, bag_root: str, config,
                 spec: EpisodeSpec, seed: int = 0, log=print):
        self.env, self.spec, self.config, self.bag_root = env, spec, config, bag_root
        self.seed, self.log, self.bags = seed, log, []
        self.cameras = list(getattr(env, 'cameras', topics.CAMERA_NAMES))
        # The frozen Stage-1 copy scores every practice episode, whichever version is live.
        reward = load_model(stage1_dir, 'reward.onnx', self.cameras, providers='cpu')
        self.learner = Learner(run_dir, config, stage1_dir, bag_root, log=log)
        self.station = toy_station(env, spec, reward, temperature=1.0, sample_seed=seed)
        self.station.offer(self.load_policy(self.learner.model_dir))

    @property
    def run(self):
        """Return the learner's ImproveRun."""
        return self.learner.run

    @property
    def slot(self):
        """Return the live and waiting versions (the controller's ModelSlot)."""
        return self.station.controller.slot

    def load_policy(self, model_dir: str):
        """Verify and open a policy.onnx on the CPU."""
        return load_model(model_dir, 'policy.onnx', self.cameras, providers='cpu')

    def practise(self, episodes: int) -> list:
        """Run and label `episodes` with the live policy; return their (bag, succeeded)."""
        version, iteration = self.slot.live.version, self.run.state['iteration']
        results = []
        for number in range(episodes):
            seed = (self.seed * 1000 + iteration) * 100_000 + number
            # Bags sort by start second, then id: numbered ids keep the practice order, so
            # the learner sees the same decisions in the same order on every run.
            result = self.station.run_episode(
                seed, f'it{iteration}-{number:05d}-{new_episode_id()[:6]}',
                os.path.join(self.bag_root, version))
            results.append((result.bag, result.sim_success))
        self.bags += [bag for bag, _ in results]
        return results

    def iteration(self, episodes: int) -> dict:
        """Practise, learn one REINFORCE iteration, swap the new version in; describe it."""
        parent = self.run.version
        practised = self.practise(episodes)
        model_dir, pending, decisions = self.learner.iterate_now()
        self.station.offer(self.load_policy(model_dir))  # between episodes, as on a robot
        if self.slot.live.version != self.run.version:
            raise RuntimeError(f'new version {self.run.version} was not swapped in (live: '
                               f'{self.slot.live.version})')
        return {'parent': parent, 'version': self.run.version, 'model_dir': model_dir,
                'episodes': pending, 'decisions': decisions,
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
