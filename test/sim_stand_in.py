"""The sim graph's part played by the point-mass task in this process, for benchmark smoke runs.

`collect_episodes` and `run_graph_until_labelled` take the arguments of the real ones
(selfimprove_ros.graph.collection, selfimprove_ros.graph.sim_driver) and read the same graph
specs: where the recorder puts bags, which model acts at which temperature and seed, which
reward model labels, the episode limit and the simulator seeds. Instead of starting ROS nodes
around MuJoCo they run point-mass episodes (sim.point_mass) through the pieces the nodes use
(a toy sim station, fleet/practice_loop.py: PolicyController, contract bags, label_bag), so
everything after the
graph (datasets, SFT, reports, ImproveRun) reads real labelled bags. `install` puts both in
place with pytest's monkeypatch, after checking that each call fits the real signature.
"""

import inspect

from selfimprove_ros.bag.episode_metadata import new_episode_id, read_episode_file
from selfimprove_ros.data.episode_labelling import read_labels
from selfimprove_ros.fleet.practice_loop import EpisodeSpec, toy_station
from selfimprove_ros.runtime.onnx_model import load_model
from selfimprove_ros.sim import point_mass as pm

MOST_EPISODES = 100  # a stop_when that never ends the wait is a broken benchmark, not a long run


def parameters(specs, executable: str) -> dict:
    """Return the parameters of the node `executable` in `specs` ({} if it is not there)."""
    return next((s.parameters for s in specs if s.executable == executable), {})


def collect_episodes(specs, robot: str, task: str, instruction: str, period_s: float,
                     episodes: int, max_ticks: int, post_success_ticks: int, extra: dict,
                     log_dir: str, report=print) -> list:
    """Record `episodes` scripted point-mass demonstrations where the recorder would."""
    from selfimprove_ros.nodes.collector import EpisodeResult
    bag_dir = parameters(specs, 'recorder_node')['bag_dir']
    first = int(parameters(specs, 'robot_node').get('seed', 0))
    env = pm.PointMass()
    spec = EpisodeSpec(robot=robot, task=task, instruction=instruction,
                       max_ticks=max_ticks, post_success_ticks=post_success_ticks,
                       control_period_s=period_s)
    station = toy_station(env, spec, actor=pm.HesitantDemonstrator(env))
    results = []
    for seed in range(first, first + episodes):
        bag = station.run_episode(seed, f'demo-{seed}', bag_dir).bag
        meta = read_episode_file(bag)
        results.append(EpisodeResult(meta.episode_id, seed, meta.outcome, 0, bag))
        report(f'  stand-in demonstration {seed}: {meta.outcome}')
    return results


def run_graph_until_labelled(specs, robot, episodes, log_dir, log=print, timeout_s=None,
                             stop_when=None, max_faults_in_row=3, restarts=2, stall_s=120.0):
    """Practise or evaluate the specs' policy on point-mass episodes; return them labelled."""
    from selfimprove_ros.sim.aloha_sim import INSTRUCTIONS
    env = pm.PointMass()
    policy_node = parameters(specs, 'policy_node')
    scorer = parameters(specs, 'reward_scorer_node')
    manager = parameters(specs, 'episode_manager_node')
    bag_dir = parameters(specs, 'recorder_node')['bag_dir']
    first = int(parameters(specs, 'robot_node').get('seed', 0))
    task = manager.get('task', 'transfer_cube')
    period_s = float(manager.get('control_period_s', 0.1))
    spec = EpisodeSpec(robot=robot, task=task, instruction=INSTRUCTIONS.get(task, task),
                       max_ticks=int(manager['max_ticks']), control_period_s=period_s)
    policy = load_model(policy_node['model_dir'], 'policy.onnx', env.cameras, providers='cpu')
    reward = load_model(scorer['reward_model_dir'], 'reward.onnx', env.cameras, providers='cpu')
    station = toy_station(env, spec, reward, float(policy_node.get('temperature', 1.0)),
                          int(policy_node.get('seed', 0)))
    station.offer(policy)
    done = []
    for number in range(min(episodes, MOST_EPISODES)):
        bag = station.run_episode(first + number, new_episode_id(), bag_dir).bag
        labels = read_labels(bag)
        item = {'episode_id': labels.episode_id, 'path': bag, 'outcome': labels.outcome,
                'cause': '', 'labelled': True, 'sim_success': labels.sim_success}
        done.append(item)
        if stop_when is not None and stop_when(done, item):
            return done
    if len(done) < episodes:
        raise RuntimeError(f'stand-in graph: still not done after {len(done)} episodes')
    return done


def checked(real, stand_in):
    """Return `stand_in`, refusing every call the real function would not accept."""
    signature = inspect.signature(real)

    def call(*args, **kwargs):
        signature.bind(*args, **kwargs)
        return stand_in(*args, **kwargs)
    return call


class NoGraph:
    """Stands in for GraphRunner: a smoke run on the stand-ins must never start a node."""

    def __init__(self, specs, *args, **kwargs):
        raise AssertionError('a real graph was started: ' + ', '.join(s.name for s in specs))


def install(monkeypatch):
    """Replace the sim graph by the point-mass stand-ins for this test."""
    from selfimprove_ros.graph import launcher, sim_driver
    from selfimprove_ros.graph import collection
    monkeypatch.setattr(collection, 'collect_episodes',
                        checked(collection.collect_episodes, collect_episodes))
    monkeypatch.setattr(sim_driver, 'run_graph_until_labelled',
                        checked(sim_driver.run_graph_until_labelled, run_graph_until_labelled))
    monkeypatch.setattr(launcher, 'GraphRunner', NoGraph)
