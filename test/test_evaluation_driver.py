"""The sim evaluation/practice driver: faults are not counted, a broken graph is restarted."""

import os
import time

import pytest
import yaml

from selfimprove_ros.graph import sim_driver
from selfimprove_ros.graph.description import NodeSpec
from selfimprove_ros.graph.launcher import NodeDied
from selfimprove_ros.graph.sim_driver import FaultStreak, run_graph_until_labelled

pytestmark = pytest.mark.graph  # starts ROS nodes: `-m "not graph"` skips


def item(outcome, cause=''):
    return {'outcome': outcome, 'cause': cause}


def test_fault_streak_counts_only_policy_outcomes_and_spots_a_broken_graph():
    streak = FaultStreak(max_in_row=2)
    assert not streak.add(item('success'))
    assert not streak.add(item('fault', 'camera stale'))
    assert not streak.add(item('timeout'))  # a counted episode ends the streak
    assert not streak.add(item('fault'))
    assert streak.add(item('fault'))
    assert [i['outcome'] for i in streak.done] == ['success', 'timeout']
    assert len(streak.faulted) == 3 and streak.started == 5
    streak.restart()
    assert not streak.add(item('fault'))
    with pytest.raises(ValueError, match='max_in_row'):
        FaultStreak(0)


CAUSES = {'fault': 'policy stale: camera input too old',
          'aborted': 'recorder shut down during the episode'}


class FakeGraph:
    """Stands in for GraphRunner: each check() 'finishes' one episode as a closed bag."""

    outcomes = []   # per graph started: the outcomes its episodes end with
    started = []    # robot seeds and ROS domains of the graphs started
    log_dirs = []

    def __init__(self, specs, log_dir):
        robot = next(s for s in specs if s.executable == 'robot_node')
        self.bag_dir = next(s for s in specs if s.executable == 'recorder_node'
                            ).parameters['bag_dir']
        self.plan = list(FakeGraph.outcomes.pop(0))
        self.created = time.monotonic()
        FakeGraph.started.append((robot.parameters['seed'], os.environ['ROS_DOMAIN_ID']))
        FakeGraph.log_dirs.append(log_dir)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.plan:  # the episode running when the graph stops is closed as aborted
            self.plan = ['aborted']
            self.check()
        return False

    delay_s = 0.0   # how long each graph takes before it finishes its first episode

    def check(self):
        if not self.plan or time.monotonic() - self.created < FakeGraph.delay_s:
            return
        outcome = self.plan.pop(0)
        if outcome == 'die':  # mid-episode: stopping the graph will close it as aborted
            self.plan = ['aborted']
            raise NodeDied('/r/policy_node exited with code -9; last lines of its log: ...')
        name = f'bag{len(os.listdir(self.bag_dir)):03d}'
        path = os.path.join(self.bag_dir, name)
        os.makedirs(path)
        with open(os.path.join(path, 'episode.yaml'), 'w') as handle:
            yaml.safe_dump({'episode_id': name, 'outcome': outcome, 'robot': 'r', 'task': 't',
                            'outcome_cause': CAUSES.get(outcome, '')}, handle)
        meta = os.path.join(path, 'metadata.yaml')
        open(meta, 'w').close()
        os.utime(meta, (0, 0))  # closed long ago: returned without labels after the grace


@pytest.fixture
def graph(tmp_path, monkeypatch):
    import selfimprove_ros.graph.launcher as launcher
    monkeypatch.setattr(launcher, 'GraphRunner', FakeGraph)
    monkeypatch.setattr(sim_driver.time, 'sleep', lambda s: None)
    FakeGraph.started.clear()
    FakeGraph.log_dirs.clear()
    FakeGraph.delay_s = 0.0
    bags = tmp_path / 'bags'
    bags.mkdir()
    specs = [NodeSpec('robot_node', 'robot_node', 'r', {'seed': 100}),
             NodeSpec('recorder_node', 'recorder_node', 'r', {'bag_dir': str(bags)})]
    return specs


def test_a_broken_graph_is_restarted_on_the_next_scenes(graph):
    FakeGraph.outcomes = [['success', 'fault', 'fault', 'fault', 'timeout'],
                          ['timeout', 'success']]
    logged = []
    done = run_graph_until_labelled(graph, 'r', 3, 'logs', log=logged.append,
                                    max_faults_in_row=3, restarts=1)
    assert [d['outcome'] for d in done] == ['success', 'timeout', 'success']
    # The second graph starts at the scene after the four the first one used.
    assert [seed for seed, _ in FakeGraph.started] == [100, 104]
    assert FakeGraph.started[0][1] != FakeGraph.started[1][1]  # a fresh ROS domain
    assert FakeGraph.log_dirs == ['logs', os.path.join('logs', 'restart1')]
    assert any('restarting the graph' in line and 'camera input too old' in line
               for line in logged)


def test_a_graph_where_nothing_finishes_is_restarted(graph):
    # The first graph never finishes an episode (a deaf robot_node -> policy_node pair).
    FakeGraph.outcomes = [[], ['success']]
    logged = []
    done = run_graph_until_labelled(graph, 'r', 1, 'logs', log=logged.append, restarts=1,
                                    stall_s=0.05)
    assert [d['outcome'] for d in done] == ['success']
    assert [seed for seed, _ in FakeGraph.started] == [100, 100]  # no scene was used
    assert any('no episode finished in' in line for line in logged)


def test_a_restarted_graph_gets_its_own_time_allowance(graph):
    # The broken graph uses most of the allowance; the restarted one still has all of it.
    FakeGraph.outcomes = [[], ['success']]
    FakeGraph.delay_s = 0.3
    done = run_graph_until_labelled(graph, 'r', 1, 'logs', log=lambda line: None, restarts=1,
                                    stall_s=0.35, timeout_s=0.4)
    assert [d['outcome'] for d in done] == ['success']


def test_a_graph_that_keeps_faulting_is_an_error_naming_the_cause(graph):
    FakeGraph.outcomes = [['fault'] * 2, ['fault'] * 2]
    with pytest.raises(RuntimeError, match='broke 2 times.*camera input too old'):
        run_graph_until_labelled(graph, 'r', 1, 'logs', log=lambda line: None,
                                 max_faults_in_row=2, restarts=1)


def test_an_episode_a_dead_node_interrupted_is_a_fault_naming_the_node(graph):
    # policy_node killed mid-episode: the graph stops, the recorder closes the episode as
    # 'aborted'; it was a fault, and the driver restarts the graph for the rest.
    FakeGraph.outcomes = [['success', 'die'], ['success']]
    logged = []
    done = run_graph_until_labelled(graph, 'r', 2, 'logs', log=logged.append, restarts=1)
    assert [d['outcome'] for d in done] == ['success', 'success']
    bags = os.path.dirname(done[0]['path'])
    with open(os.path.join(bags, 'bag001', 'episode.yaml')) as handle:
        interrupted = yaml.safe_load(handle)
    assert interrupted['outcome'] == 'fault'
    assert interrupted['outcome_cause'].startswith('/r/policy_node exited with code -9')
    assert any('policy_node exited' in line and 'restarting' in line for line in logged)


def test_graph_domains_keep_their_dds_ports_out_of_the_ephemeral_range():
    from selfimprove_ros.graph.sim_driver import DOMAINS, next_domain_id
    domains = [next_domain_id() for _ in range(2 * DOMAINS)]
    assert len(set(domains)) == DOMAINS and domains[0] != domains[1]
    for domain in domains:
        base = 7400 + 250 * domain  # RTPS port mapping: PB + DG x domain
        assert base > 60999, domain  # above Linux's ephemeral ports (32768-60999)
        assert base + 11 + 2 * 60 <= 65535, domain  # unicast port of participant 60
