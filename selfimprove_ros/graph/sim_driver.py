"""Drive a sim node graph until enough episodes are labelled: the evaluations' and demo's engine.

Completion is read from the recorder's bag directory, faults are set apart from counted
episodes, a broken graph (faults in a row, a stall, a node that died) is restarted in a fresh
ROS domain, and an episode a dead node interrupted is recorded as the fault it was.
"""

import os
import time

# Domains whose DDS ports (7400 + 250 x domain + ...) lie above Linux's ephemeral port range
# (32768-60999), so no other socket on the machine can already hold them (ROS 2's "About
# Domain ID": 215-232 for up to ~60 participants), and apart from the 1-100 the tests use.
FIRST_DOMAIN, DOMAINS = 215, 18
_DOMAINS = {'next': None}


def next_domain_id() -> int:
    """Return a ROS domain id for the next graph, cycling through 215..232."""
    if _DOMAINS['next'] is None:
        start = int(os.environ.get('ROS_DOMAIN_ID', '0') or 0)
        _DOMAINS['next'] = (start + os.getpid()) % DOMAINS
    offset = _DOMAINS['next']
    _DOMAINS['next'] = (offset + 1) % DOMAINS
    return FIRST_DOMAIN + offset


def finished_bags(bag_dir: str, exclude, grace_s: float = 15.0) -> list:
    """Return bags under bag_dir that are labelled, or closed `grace_s` ago without labels.

    A closed bag the reward scorer could not label (its log says why) still ends an episode:
    waiting for it would hang the evaluation, so it is returned and reported as unlabelled.
    """
    from selfimprove_ros.data.episode_labelling import LABELS_FILE
    if not os.path.isdir(bag_dir):
        return []
    found = []
    for name in os.listdir(bag_dir):
        path = os.path.join(bag_dir, name)
        if name in exclude or not os.path.exists(os.path.join(path, 'metadata.yaml')):
            continue
        labels = os.path.join(path, LABELS_FILE)
        if os.path.exists(labels):
            found.append((os.path.getmtime(labels), path))
        elif time.time() - os.path.getmtime(os.path.join(path, 'metadata.yaml')) > grace_s:
            found.append((os.path.getmtime(os.path.join(path, 'metadata.yaml')), path))
    return [path for _, path in sorted(found)]


def describe_bag(path: str) -> dict:
    """Return {'episode_id', 'path', 'outcome', 'cause', 'labelled', 'sim_success'} of a bag."""
    import yaml

    from selfimprove_ros.data.episode_labelling import BadLabels, read_labels
    with open(os.path.join(path, 'episode.yaml')) as handle:
        meta = yaml.safe_load(handle) or {}
    item = {'episode_id': meta.get('episode_id', ''), 'path': path,
            'outcome': meta.get('outcome', 'unknown'), 'cause': meta.get('outcome_cause', ''),
            'labelled': False, 'sim_success': None}
    try:
        labels = read_labels(path)
    except BadLabels:
        return item
    return {**item, 'episode_id': labels.episode_id, 'outcome': labels.outcome,
            'labelled': True, 'sim_success': labels.sim_success}


class FaultStreak:
    """Episodes of one graph, split into counted ones and faults; spots a broken graph.

    A fault (stale input, safety hold, e-stop) says nothing about the policy, so it is not
    counted. Several in a row mean the graph itself is broken (we saw a camera->policy pair
    that never matched, every episode then faulting at once); the driver restarts it.
    """

    def __init__(self, max_in_row: int = 3):
        if max_in_row < 1:
            raise ValueError(f'max_in_row must be >= 1, got {max_in_row!r}')
        self.max_in_row = max_in_row
        self.done, self.faulted = [], []
        self.in_row = 0

    def add(self, item: dict) -> bool:
        """Record a finished episode; return True when the graph should be restarted."""
        if item['outcome'] == 'fault':
            self.faulted.append(item)
            self.in_row += 1
        else:
            self.done.append(item)
            self.in_row = 0
        return self.in_row >= self.max_in_row

    def restart(self):
        """Start counting the streak afresh for a new graph."""
        self.in_row = 0

    @property
    def started(self) -> int:
        """Episodes the simulator has used a scene for (counted and faulted)."""
        return len(self.done) + len(self.faulted)


def run_graph_until_labelled(specs, robot, episodes, log_dir, log=print, timeout_s=None,
                             stop_when=None, max_faults_in_row=3, restarts=2, stall_s=120.0):
    """Start `specs`, wait for `episodes` finished episodes, stop; return them in order.

    Each graph has `timeout_s` (default 120 s + 60 s per episode still to do) before it is an
    error.

    Completion is read from the recorder's bag directory (a bag with its steps_to_go.npz), not
    from DDS in this process: the graph's own nodes talk over DDS, but a driver that comes and
    goes between graphs is the one participant we saw miss messages. Each returned item is
    {'episode_id', 'path', 'outcome', 'cause', 'labelled', 'sim_success'}; faulted episodes
    are logged but neither returned nor counted.

    A graph is broken when `max_faults_in_row` episodes in a row fault, or when no episode
    finishes for `stall_s` seconds (we saw a robot_node -> policy_node pair that never matched:
    policy_node then never ticks and the manager waits for it forever). A broken graph is
    restarted in a fresh ROS domain, at most `restarts` times, continuing with the next
    simulator seeds. `stop_when(done, item)`, called after each counted episode, can end the
    wait early.
    """
    bag_dir = next(spec.parameters['bag_dir'] for spec in specs
                   if spec.executable == 'recorder_node')
    seen = set(os.listdir(bag_dir)) if os.path.isdir(bag_dir) else set()
    streak = FaultStreak(max_faults_in_row)
    for attempt in range(restarts + 1):
        # Each graph gets the whole allowance for the episodes still to do.
        remaining = episodes - len(streak.done)
        deadline = time.monotonic() + (timeout_s or 120 + 60 * min(remaining, 1000))
        graph_specs = _continue_seeds(specs, streak.started)
        # A restarted graph logs beside the broken one, whose logs say what went wrong.
        graph_logs = os.path.join(log_dir, f'restart{attempt}') if attempt else log_dir
        broken = _run_one_graph(graph_specs, bag_dir, seen, episodes, graph_logs, log, deadline,
                                streak, stop_when, stall_s)
        if not broken:
            return streak.done
        # The episode the broken graph was running is closed as 'aborted' when it stops: not
        # a result, so it must not count in the next graph.
        seen.update(os.listdir(bag_dir) if os.path.isdir(bag_dir) else ())
        if attempt < restarts:
            log(f'  {broken}: restarting the graph in a fresh ROS domain (restart '
                f'{attempt + 1} of {restarts})')
        streak.restart()
    raise RuntimeError(f'the graph broke {restarts + 1} times, the last time because {broken}; '
                       f'see the node logs in {log_dir} and its restart*/ folders')


def _continue_seeds(specs, started: int):
    """Specs whose simulator starts `started` scenes after the first graph's first scene."""
    import dataclasses
    if not started:
        return specs
    return [dataclasses.replace(spec, parameters={**spec.parameters, 'seed': int(
        spec.parameters.get('seed', 0)) + started}) if spec.executable == 'robot_node' else spec
        for spec in specs]


def _run_one_graph(specs, bag_dir, seen, episodes, log_dir, log, deadline, streak, stop_when,
                   stall_s):
    """Run one graph; return '' when finished, else why it must be restarted."""
    from selfimprove_ros.graph.launcher import GraphRunner, NodeDied
    # A fresh ROS domain per graph keeps it apart from the participants of the last one.
    os.environ['ROS_DOMAIN_ID'] = str(next_domain_id())
    try:
        return _watch_graph(GraphRunner(specs, log_dir), bag_dir, seen, episodes, log_dir, log,
                            deadline, streak, stop_when, stall_s)
    except NodeDied as died:
        # Stopping the graph closed the running episode as 'aborted'; it ended because a
        # node died, which is a fault (and says which node).
        reason = str(died).splitlines()[0]
        for path in interrupted_bags(bag_dir, seen):
            mark_fault(path, reason)
        return reason


def interrupted_bags(bag_dir: str, seen) -> list:
    """Return bags under bag_dir not in `seen` that the recorder closed at its shutdown."""
    import yaml
    found = []
    for name in sorted(os.listdir(bag_dir)) if os.path.isdir(bag_dir) else ():
        path = os.path.join(bag_dir, name)
        try:
            with open(os.path.join(path, 'episode.yaml')) as handle:
                meta = yaml.safe_load(handle) or {}
        except OSError:
            continue
        if name not in seen and meta.get('outcome') == 'aborted' and \
                'recorder shut down' in str(meta.get('outcome_cause', '')):
            found.append(path)
    return found


def mark_fault(path: str, reason: str):
    """Record in a bag's episode.yaml that it ended as a fault because `reason`."""
    from selfimprove_ros.bag.episode_metadata import read_episode_file, write_episode_file
    episode = read_episode_file(path)
    write_episode_file(path, episode.replace(outcome='fault', outcome_cause=(
        f'{reason} during the episode')))


def _watch_graph(runner, bag_dir, seen, episodes, log_dir, log, deadline, streak, stop_when,
                 stall_s):
    """Run the graph of `runner` until done; return '' or why it must be restarted."""
    with runner as graph:
        progress_at = time.monotonic()
        while len(streak.done) < episodes:
            now = time.monotonic()
            if now > deadline:
                raise TimeoutError(f'only {len(streak.done)} of {episodes} episodes were '
                                   f'labelled in {bag_dir}; see the node logs in {log_dir}')
            if now - progress_at > stall_s:
                return f'no episode finished in {stall_s:.0f} s'
            graph.check()
            time.sleep(0.5)
            for path in finished_bags(bag_dir, seen):
                seen.add(os.path.basename(path))
                progress_at = time.monotonic()
                item = describe_bag(path)
                broken = streak.add(item)
                log(f'  {_describe(item, len(streak.done))}')
                if broken:
                    return (f'{streak.in_row} episodes in a row ended as faults (last: '
                            f'{item["cause"] or "no cause given"})')
                if item['outcome'] != 'fault' and stop_when and \
                        stop_when(len(streak.done), item):
                    return ''
    return ''


def _describe(item: dict, counted: int) -> str:
    """One log line for a finished episode."""
    if item['outcome'] == 'fault':
        return f'fault, not counted: {item["cause"] or "no cause given"}'
    sim = '' if item['sim_success'] is None else \
        f', simulator {"success" if item["sim_success"] else "failure"}'
    unlabelled = '' if item['labelled'] else \
        ' (NOT LABELLED: see reward_scorer_node\'s log; left out of the report)'
    return f'episode {counted}: {item["outcome"]}{sim}{unlabelled}'
