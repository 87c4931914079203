"""expert_node: plays the scripted sim expert through the node graph, like any controller.

It plans each episode from the newest simulator state once the episode has started and the
recorder has announced `recording` for it (wait_for_recording; an unrecorded command is a
demonstration lost), then answers every observation tick (joint states plus the configured
cameras, matched by stamp) with the planned joint targets, stamped with the observation they
answer. It stops commanding at `end`.
"""

import time

from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String

from selfimprove_ros.core import topics
from selfimprove_ros.episode.events import make_event
from selfimprove_ros.core.observation_sync import ObservationSync, SyncConfig
from selfimprove_ros.nodes.parameters import declare_config
from selfimprove_ros.nodes.ros_io import (event_of, joint_state_msg, RELIABLE_QOS, run_node,
                                          SENSOR_QOS, stamp_to_ns, time_msg)
from selfimprove_ros.runtime.controller import EpisodeFollower, RobotTicks
from selfimprove_ros.sim.aloha_sim import scene_matches
from selfimprove_ros.sim.expert import ExpertConfig, ScriptedExpert


class ExpertNode(Node):
    """ROS shell around `ScriptedExpert`, following episodes like every controller."""

    def __init__(self):
        super().__init__('expert_node')
        self.expert_config = declare_config(self, ExpertConfig)
        self.sync_config = declare_config(self, SyncConfig)
        self.expert = ScriptedExpert(self.expert_config)
        self.period_ns = int(round(self.expert_config.control_period_s * 1e9))
        self.sync = ObservationSync(['joint_states', *self.sync_config.cameras])
        self.ticks = RobotTicks(self.sync, self.sync_config.sync_timeout_s)
        self.follower = EpisodeFollower(self.sync_config.wait_for_recording)
        self.plan_start_ns = None
        self.state_ns = None       # newest simulator state awaiting an answer
        self.state_qpos = None     # its full qpos, to plan from
        self.state_scene = ''      # its scene, `task/seed_N` (robot_node's frame_id)
        self.state_wall_s = 0.0
        self.command_pub = self.create_publisher(JointState, topics.JOINT_COMMANDS, RELIABLE_QOS)
        self.intended_pub = self.create_publisher(JointState, topics.JOINT_COMMANDS_INTENDED,
                                                  RELIABLE_QOS)
        self.event_pub = self.create_publisher(String, topics.EPISODE_EVENTS, RELIABLE_QOS)
        self.create_subscription(String, topics.EPISODE_EVENTS, self.on_event, RELIABLE_QOS)
        self.create_subscription(JointState, topics.SIM_STATE, self.on_sim_state, RELIABLE_QOS)
        self.create_subscription(JointState, topics.JOINT_STATES, lambda msg: self.on_input(
            'joint_states', msg), RELIABLE_QOS)
        for camera in self.sync_config.cameras:
            self.create_subscription(Image, topics.camera_topic(camera),
                                     lambda msg, cam=camera: self.on_input(cam, msg), SENSOR_QOS)
        self.create_timer(self.sync_config.sync_timeout_s / 4, self.on_sync_timer)

    def on_event(self, msg: String):
        """Start planning at `start` (once recorded), stop commanding at `end`."""
        event = event_of(self, msg)
        if event is None:
            return
        change = self.follower.on_event(event)
        if change == 'started':
            self.plan_start_ns = None
        if change in ('started', 'recorded'):
            self.try_plan()
            self.try_act(force=False)
        elif change == 'repeat' and self.plan_start_ns is not None:
            self.acknowledge()  # the earlier answer may have been lost

    def acknowledge(self):
        """Answer `acting` for the running episode: recorded, planned, commanding.

        Only then: the starter repeats `start` until this answer, and each repeat draws the
        recorder's `recording` again, so a `recording` lost while the two were still matching
        (seen under load: the first episode timed out with the arms still) is sent again.
        """
        self.event_pub.publish(String(data=make_event(
            'acting', episode_id=self.follower.episode_id, controller=self.get_name())))

    def on_sim_state(self, msg: JointState):
        """Remember which tick awaits an answer; plan from it if the episode may begin."""
        self.state_ns = stamp_to_ns(msg.header.stamp)
        self.state_qpos = list(msg.position)
        self.state_scene = msg.header.frame_id
        self.state_wall_s = time.monotonic()
        self.try_plan()
        self.try_act(force=False)

    def try_plan(self):
        """Plan the episode from the newest state once it started and is being recorded."""
        if not self.follower.acting or self.plan_start_ns is not None or self.state_ns is None:
            return
        seed = self.follower.episode.get('seed')
        seed = -1 if seed is None else int(seed)
        if not scene_matches(self.state_scene, seed):
            return  # the reset's first state has not arrived: planning now misses the objects
        # The simulator seed of the episode also seeds its noise.
        self.expert.plan(self.state_qpos, max(seed, 0))
        self.plan_start_ns = self.state_ns
        self.get_logger().info(f'episode {self.follower.episode_id}: planned '
                               f'{self.expert.episode_ticks} ticks')
        self.acknowledge()

    def on_input(self, source: str, msg):
        """Count a joint state or camera frame as one input of the observation."""
        self.sync.add(source, stamp_to_ns(msg.header.stamp))
        self.try_act(force=False)

    def on_sync_timer(self):
        """Act on an incomplete observation rather than stall the episode."""
        if self.state_ns is not None and \
                time.monotonic() - self.state_wall_s > self.sync_config.sync_timeout_s:
            self.try_act(force=True)

    def try_act(self, force: bool):
        """Answer the pending tick once its observation is complete (or on timeout)."""
        if not self.follower.acting or self.plan_start_ns is None:
            return
        missing = self.sync.missing(self.state_ns) if self.state_ns is not None else []
        stamp_ns = self.ticks.due(self.state_ns, force)
        if stamp_ns is None:
            return
        if force and missing:
            self.get_logger().warning(f'acting without {missing} at {stamp_ns} ns',
                                      throttle_duration_sec=5.0)
        tick = (stamp_ns - self.plan_start_ns) // self.period_ns
        # What the expert meant beside what it did: the noise-free plan is Stage 1's clean label.
        self.intended_pub.publish(joint_state_msg(time_msg(stamp_ns), self.expert.intended(tick)))
        self.command_pub.publish(joint_state_msg(time_msg(stamp_ns), self.expert.act(tick)))


def main(args=None):
    """Run expert_node."""
    run_node(ExpertNode, args)


if __name__ == '__main__':
    main()
