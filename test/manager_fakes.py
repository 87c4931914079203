"""The episode manager's neighbours, played by one test-side node per robot namespace."""

import json

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger

from graph_probe import spin_executor_until
from selfimprove_ros.console.status import parse_status
from selfimprove_ros.core import topics
from selfimprove_ros.episode.events import make_event, parse_event
from selfimprove_ros.nodes.ros_io import LATCHED_QOS, RELIABLE_QOS, time_msg


class FakeNeighbours(Node):
    """Recorder, simulator reset, robot, policy and success detector of one namespace."""

    def __init__(self, namespace: str, executor, period_ns: int = 100_000_000):
        super().__init__('manager_neighbours', namespace=namespace)
        self.executor_ = executor
        executor.add_node(self)
        self.recorder_answers = True
        self.next_seed = 100
        self.stamp_ns, self.period_ns = 1_000_000_000, period_ns
        self.starts, self.ends, self.statuses, self.commands = [], [], [], []
        self.seeds = []
        pub = self.create_publisher
        self.event_pub = pub(String, topics.EPISODE_EVENTS, RELIABLE_QOS)
        self.joint_pub = pub(JointState, topics.JOINT_STATES, RELIABLE_QOS)
        self.safety_pub = pub(DiagnosticStatus, topics.SAFETY_STATUS, RELIABLE_QOS)
        self.sim_success_pub = pub(Bool, topics.SIM_SUCCESS, RELIABLE_QOS)
        self.json_pubs = {name: pub(String, name, RELIABLE_QOS) for name in (
            topics.SUCCESS_DETECTED, topics.STEPS_TO_GO, topics.POLICY_TIMING)}
        self.create_subscription(String, topics.EPISODE_EVENTS, self.on_event, RELIABLE_QOS)
        self.create_subscription(String, topics.EPISODE_STATUS,
                                 lambda msg: self.statuses.append(msg.data), LATCHED_QOS)
        self.create_subscription(JointState, topics.JOINT_COMMANDS,
                                 lambda msg: self.commands.append(list(msg.position)),
                                 RELIABLE_QOS)
        self.create_service(Trigger, topics.SIM_RESET, self.on_reset)
        self.clients_ = {name: self.create_client(Trigger, name) for name in (
            topics.EPISODE_RESET_DONE, topics.EPISODE_ABORT, topics.EPISODE_START)}

    # ---------------------------------------------------------------- playing the neighbours

    def on_event(self, msg: String):
        """Answer like recorder_node: `recording` for each start, `saved` for each end."""
        event = parse_event(msg.data)
        if event['event'] == 'start':
            if not any(start['episode_id'] == event['episode_id'] for start in self.starts):
                self.starts.append(event)
            if self.recorder_answers:
                self.event_pub.publish(String(data=make_event(
                    'recording', episode_id=event['episode_id'], path='/bags/x')))
        elif event['event'] == 'end':
            self.ends.append(event)
            if self.recorder_answers:
                self.event_pub.publish(String(data=make_event(
                    'saved', episode_id=event['episode_id'], path='/bags/x',
                    outcome=event['outcome'])))

    def on_reset(self, request, response):
        """Answer like robot_node's sim/reset: the next seed."""
        self.seeds.append(self.next_seed)
        response.success = True
        response.message = json.dumps({'seed': self.next_seed, 'time_ns': self.stamp_ns})
        self.next_seed += 1
        return response

    def tick(self, count: int = 1):
        """Publish `count` joint states, one control tick apart (stamps), 20 per second."""
        for _ in range(count):
            msg = JointState()
            msg.header.stamp = time_msg(self.stamp_ns)
            self.joint_pub.publish(msg)
            self.stamp_ns += self.period_ns
            # A burst longer than the queue depth (10) would lose the first stamps.
            self.spin_until(lambda: False, 0.05)

    def safety(self, state: str, message: str = ''):
        """Publish one guard decision."""
        self.safety_pub.publish(DiagnosticStatus(
            name='safety', message=message, values=[KeyValue(key='state', value=state)]))

    def publish_json(self, topic: str, **fields):
        """Publish a JSON document on one of the String topics."""
        self.json_pubs[topic].publish(String(data=json.dumps(fields)))

    # ---------------------------------------------------------------- waiting and asking

    def spin_until(self, condition, timeout_s: float, check=None) -> bool:
        """Spin until `condition()` holds or the timeout passes; return condition()."""
        return spin_executor_until(self.executor_, condition, timeout_s, check)

    def status(self) -> dict:
        """Return the newest status document, validated by the console's parser."""
        parse_status(self.statuses[-1])
        return json.loads(self.statuses[-1])

    def wait_status(self, timeout_s: float, check=None, **fields) -> dict:
        """Wait for a status with the given field values; return it."""
        def matches():
            return self.statuses and all(self.status()[k] == v for k, v in fields.items())
        assert self.spin_until(matches, timeout_s, check), \
            f'no status with {fields}; newest: {self.statuses[-1:]}'
        return self.status()

    def running_episode(self, timeout_s: float, check=None) -> dict:
        """Wait for an episode that runs and was acknowledged; return its `start` event."""
        def running():
            return (self.statuses and self.starts and self.status()['phase'] == 'running'
                    and self.status()['episode_id'] == self.starts[-1]['episode_id']
                    and self.starts[-1]['episode_id'] not in self.ended())
        assert self.spin_until(running, timeout_s, check), \
            f'no running episode; newest status: {self.statuses[-1:]}'
        return self.starts[-1]

    def ended(self) -> dict:
        """Return the end events by episode id."""
        return {end['episode_id']: end for end in self.ends}

    def wait_end(self, episode_id: str, timeout_s: float, check=None) -> dict:
        """Wait for the `end` of one episode; return it."""
        assert self.spin_until(lambda: episode_id in self.ended(), timeout_s, check), \
            f'episode {episode_id} did not end; newest status: {self.statuses[-1:]}'
        return self.ended()[episode_id]

    def call(self, service: str, timeout_s: float = 5.0, check=None):
        """Call one of the manager's Trigger services; return the response."""
        client = self.clients_[service]
        assert self.spin_until(client.service_is_ready, timeout_s, check), service
        future = client.call_async(Trigger.Request())
        assert self.spin_until(future.done, timeout_s, check), f'{service} did not answer'
        return future.result()

    def wait_matched(self, timeout_s: float, check=None):
        """Wait until the manager listens to every topic this node publishes."""
        pubs = [self.joint_pub, self.safety_pub, self.sim_success_pub, *self.json_pubs.values()]

        def matched():  # events: this node listens too
            return self.event_pub.get_subscription_count() >= 2 and \
                all(pub.get_subscription_count() >= 1 for pub in pubs)
        assert self.spin_until(matched, timeout_s, check), 'the manager does not subscribe yet'
