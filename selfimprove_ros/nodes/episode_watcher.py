"""An in-process observer of a robot's episodes: counts ended, saved and labelled episodes.

Used by graph tests to know when a running graph has produced what they asked for, without
driving anything itself (the episode manager does). `selfimprove eval` and the demo read the
bag directory instead (see graph/sim_driver.py for why).
"""

import time

from rclpy.node import Node
from std_msgs.msg import String

from selfimprove_ros.core import topics
from selfimprove_ros.episode.events import parse_event
from selfimprove_ros.nodes.ros_io import RELIABLE_QOS


class EpisodeWatcher(Node):
    """Collect `end`, `saved` and `labelled` events of one namespace."""

    def __init__(self, namespace: str):
        super().__init__('episode_watcher', namespace=namespace)
        self.ended, self.saved, self.labelled = {}, {}, {}
        self.create_subscription(String, topics.EPISODE_EVENTS, self.on_event, RELIABLE_QOS)

    def on_event(self, msg: String):
        """Remember each episode's outcome, bag and labels."""
        try:
            event = parse_event(msg.data)
        except ValueError:
            return
        book = {'end': self.ended, 'saved': self.saved, 'labelled': self.labelled}.get(
            event['event'])
        if book is not None:
            book[event['episode_id']] = event

    def wait_for_labelled(self, executor, count: int, timeout_s: float, check=None,
                          progress=None) -> list:
        """Spin until `count` episodes are labelled; return their saved events in order.

        `progress(done, saved)` is called after each labelled episode with the recorder's
        `saved` event of that episode (it carries the outcome); True ends the wait.
        """
        deadline = time.monotonic() + timeout_s
        reported = 0
        while len(self.labelled) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f'only {len(self.labelled)} of {count} episodes were labelled '
                                   f'within {timeout_s:.0f} s; see the node logs')
            executor.spin_once(timeout_sec=0.1)
            if check:
                check()
            if progress and len(self.labelled) > reported:
                reported = len(self.labelled)
                latest = list(self.labelled)[-1]
                if progress(reported, self.saved.get(latest, {})):
                    break
        done = [eid for eid in self.saved if eid in self.labelled][:count]
        return [self.saved[eid] for eid in done]
