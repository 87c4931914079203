"""The demonstration collector: runs expert episodes through a running sim node graph.

For each episode it resets the simulator (next seed), announces `start` until both the recorder
(`recording`) and the expert (`acting`) have acknowledged it, watches the simulator's
success flag and the tick count, announces `end` with the outcome, and waits for the recorder's
`saved` answer. It never touches the simulator directly: commands come from expert_node and the
bag from recorder_node, exactly as on a practising robot.
"""

from dataclasses import dataclass
import json
import time

from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger

from selfimprove_ros.bag.episode_metadata import new_episode_id
from selfimprove_ros.core import topics
from selfimprove_ros.episode.progress import RunningEpisode
from selfimprove_ros.episode.events import make_event, parse_event
from selfimprove_ros.nodes.ros_io import RELIABLE_QOS, stamp_to_ns


@dataclass
class EpisodeResult:
    """What one collected episode produced."""

    episode_id: str
    seed: int
    outcome: str
    ticks: int
    bag_path: str = ''


class Collector(Node):
    """Drives episodes through the graph of one robot namespace."""

    def __init__(self, namespace: str, task: str, instruction: str, control_period_s: float,
                 policy_version: str = 'scripted_expert', extra: dict = None):
        super().__init__('collector', namespace=namespace)
        self.task, self.instruction = task, instruction
        self.period_ns = int(round(control_period_s * 1e9))
        self.policy_version = policy_version
        self.extra = extra or {}
        self.episode = None
        self.saved = {}
        self.recording = {}
        self.acting = set()
        self.reset_client = self.create_client(Trigger, topics.SIM_RESET)
        self.event_pub = self.create_publisher(String, topics.EPISODE_EVENTS, RELIABLE_QOS)
        self.create_subscription(Bool, topics.SIM_SUCCESS, self.on_success, RELIABLE_QOS)
        self.create_subscription(JointState, topics.JOINT_STATES, self.on_joints, RELIABLE_QOS)
        self.create_subscription(String, topics.EPISODE_EVENTS, self.on_event, RELIABLE_QOS)

    def on_success(self, msg: Bool):
        """Latch the simulator's success flag for the running episode."""
        if self.episode is not None:
            self.episode.success = self.episode.success or msg.data

    def on_joints(self, msg: JointState):
        """Count ticks by the robot's own stamps (sim time in lockstep); end on time.

        Counting starts with the recorder's `recording`: the episode is what its bag holds.
        """
        episode = self.episode
        if episode is None or episode.outcome or episode.episode_id not in self.recording:
            return
        if episode.observe(stamp_to_ns(msg.header.stamp), self.period_ns):
            # Ending from the callback, not a polling loop, keeps the end on the right tick.
            self.event_pub.publish(String(data=make_event(
                'end', episode_id=episode.episode_id, outcome=episode.outcome,
                cause=episode.cause)))

    def on_event(self, msg: String):
        """Collect the recorder's `recording` and `saved` and the expert's `acting` answers."""
        try:
            event = parse_event(msg.data)
        except ValueError:
            return
        if event['event'] == 'saved':
            self.saved[event['episode_id']] = event['path']
        elif event['event'] == 'recording':
            self.recording[event['episode_id']] = event['path']
        elif event['event'] == 'acting':
            self.acting.add(event['episode_id'])

    def wait_ready(self, executor, timeout_s: float, subscribers: int, check=None,
                   settle_s: float = 1.5):
        """Block until the reset service exists and `subscribers` nodes listen to events."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
            if check:
                check()
            if self.reset_client.service_is_ready() and \
                    self.event_pub.get_subscription_count() >= subscribers:
                # Our writer sees the readers, but a reader may not have matched our writer
                # yet and would drop the first `start`; give discovery a moment to finish.
                settle = time.monotonic() + settle_s
                while time.monotonic() < settle:
                    executor.spin_once(timeout_sec=0.05)
                return
        raise TimeoutError(
            f'node graph not ready after {timeout_s} s: reset service ready='
            f'{self.reset_client.service_is_ready()}, event subscribers='
            f'{self.event_pub.get_subscription_count()} of {subscribers}; see the node logs')

    def announce_start(self, executor, episode_id: str, seed: int, check=None,
                       timeout_s: float = 10.0, repeat_s: float = 0.5):
        """Publish `start` until the recorder (`recording`) and expert (`acting`) answer."""
        start = String(data=make_event(
            'start', episode_id=episode_id, robot=self.get_namespace().strip('/'),
            task=self.task, instruction=self.instruction, policy_version=self.policy_version,
            seed=seed, extra=self.extra))
        deadline = time.monotonic() + timeout_s

        def silent():
            return [node for node, answers in (('recorder_node', self.recording),
                                               ('expert_node', self.acting))
                    if episode_id not in answers]

        while silent():
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f'{" and ".join(silent())} did not acknowledge episode {episode_id} within '
                    f'{timeout_s} s; check that they run in {self.get_namespace()} (their logs)')
            self.event_pub.publish(start)
            repeat_at = time.monotonic() + repeat_s
            while silent() and time.monotonic() < repeat_at:
                executor.spin_once(timeout_sec=0.05)
                if check:
                    check()

    def run_episode(self, executor, max_ticks: int, post_success_ticks: int,
                    check=None) -> EpisodeResult:
        """Reset, start, run until success or max_ticks, end, and wait for the bag."""
        future = self.reset_client.call_async(Trigger.Request())
        executor.spin_until_future_complete(future, timeout_sec=30.0)
        if not future.done() or not future.result().success:
            raise RuntimeError('sim/reset did not answer within 30 s; is robot_node running?')
        seed = json.loads(future.result().message)['seed']
        episode = RunningEpisode(new_episode_id(), max_ticks, post_success_ticks)
        self.episode = episode
        self.announce_start(executor, episode.episode_id, seed, check)
        deadline = None
        while episode.episode_id not in self.saved:
            executor.spin_once(timeout_sec=0.1)
            if check:
                check()
            if episode.outcome and deadline is None:
                deadline = time.monotonic() + 30.0
            if deadline is not None and time.monotonic() > deadline:
                break
        self.episode = None
        return EpisodeResult(episode.episode_id, seed, episode.outcome, episode.ticks,
                             self.saved.get(episode.episode_id, ''))
