"""The console's ROS side: discover robots, follow their status, call their Trigger services.

Everything runs in the thread that spins this node; the service calls are asynchronous and end
in a message for the operator: the manager's answer, or why there was none.
"""

import contextlib
import os
import time

from rclpy.node import Node
from std_msgs.msg import String
from std_srvs.srv import Trigger

from selfimprove_ros.console.controls import answer_message, missing_message, timeout_message
from selfimprove_ros.console.status import (EPISODE_STATUS, robot_name, robot_namespace,
                                            service_name, status_namespace)
from selfimprove_ros.nodes.ros_io import LATCHED_QOS

STATUS_TYPE = 'std_msgs/msg/String'


class _Call:
    """One service request on its way: waiting for the server, then for the answer."""

    def __init__(self, robot, service, client, deadline):
        self.robot, self.service, self.client, self.deadline = robot, service, client, deadline
        self.future = None


class ConsoleClient(Node):
    """Follow `<ns>/episode/status` of every robot (or only `robots`) and call their services.

    `fleet` receives every status, `report(text)` every outcome of a service call; times come
    from `clock` [s, monotonic].
    """

    def __init__(self, fleet, report, robots=None, scan_period_s: float = 2.0,
                 call_timeout_s: float = 3.0, clock=time.monotonic):
        super().__init__(f'selfimprove_console_{os.getpid()}')
        self.fleet, self.report, self.clock = fleet, report, clock
        self.call_timeout_s = call_timeout_s
        self._status_subs, self._triggers, self._calls = {}, {}, []
        if robots:
            for robot in robots:
                self.watch(robot_namespace(robot))
        else:
            self.rescan()
            self.create_timer(scan_period_s, self.rescan)
        self.create_timer(0.1, self.expire_calls)

    def rescan(self):
        """Follow every status topic on the graph that is not followed yet."""
        for topic, types in self.get_topic_names_and_types():
            namespace = status_namespace(topic)
            if namespace is not None and STATUS_TYPE in types:
                self.watch(namespace)

    def watch(self, namespace: str):
        """Subscribe to one robot's latched status."""
        robot = robot_name(namespace)
        self.fleet.expect(robot)
        if robot in self._status_subs:
            return
        topic = namespace.rstrip('/') + '/' + EPISODE_STATUS
        self._status_subs[robot] = self.create_subscription(
            String, topic, lambda msg: self.fleet.ingest(robot, msg.data, self.clock()),
            LATCHED_QOS)

    def send(self, action):
        """Call `action.service` on each of `action.robots`; answers arrive through report()."""
        for robot in action.robots:
            name = service_name(robot, action.service)
            if name not in self._triggers:
                self._triggers[name] = self.create_client(Trigger, name)
            call = _Call(robot, action.service, self._triggers[name],
                         self.clock() + self.call_timeout_s)
            self._calls.append(call)
            self._try_send(call)

    def _try_send(self, call: _Call):
        if call.future is None and call.client.service_is_ready():
            call.future = call.client.call_async(Trigger.Request())
            call.future.add_done_callback(lambda future: self._answered(call, future))

    def _answered(self, call: _Call, future):
        if call not in self._calls:
            return  # already reported as timed out
        self._calls.remove(call)
        error = None if future.cancelled() else future.exception()
        if future.cancelled() or error is not None:
            self.report(f'{call.robot}: service {call.client.service_name} failed: '
                        f'{error or "cancelled"}')
            return
        response = future.result()
        self.report(answer_message(call.robot, call.service, response.success,
                                   response.message))

    def expire_calls(self):
        """Send the calls whose server has appeared; report those past their deadline."""
        now = self.clock()
        for call in list(self._calls):
            if now < call.deadline:
                self._try_send(call)
                continue
            self._calls.remove(call)
            if call.future is None:
                self.report(missing_message(call.robot, call.client.service_name))
            else:
                call.client.remove_pending_request(call.future)
                self.report(timeout_message(call.robot, call.client.service_name,
                                            self.call_timeout_s))

    @property
    def pending_calls(self) -> int:
        """Return how many service calls still wait for an answer."""
        return len(self._calls)


@contextlib.contextmanager
def console_session(fleet, post, robots=None):
    """Yield (ConsoleClient, spin_once(timeout_s)) in a ROS context that closes on exit.

    Ctrl-C (or the context shutting down) leaves as KeyboardInterrupt.
    """
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    rclpy.init()
    node = executor = None
    try:
        node = ConsoleClient(fleet, post, robots=robots)
        executor = SingleThreadedExecutor()
        executor.add_node(node)

        def spin_once(timeout_s):
            executor.spin_once(timeout_sec=timeout_s)
        try:
            yield node, spin_once
        except ExternalShutdownException as error:
            raise KeyboardInterrupt from error
    finally:
        if executor is not None:
            executor.shutdown()
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
