"""policy_node: the 10 Hz controller that runs the exported policy with ONNX Runtime.

Each tick it takes the newest frame of each camera the model uses and the newest joint state,
refuses stale input (holds the arm where it is and reports `stale`), queries the policy once per
chunk, publishes the joint target of the tick, the sampled tokens with the version that chose
them, and its own timing. New models arrive on a latched topic (or in a watched directory), are
verified and warmed up in a background thread, and swapped in between ticks, between episodes
unless asked otherwise; a service rolls back.
"""

import json
import os
import time

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger

from selfimprove_ros.core import topics
from selfimprove_ros.core.joints import order_by_name
from selfimprove_ros.core.observation_sync import ObservationSync
from selfimprove_ros.nodes.parameters import declare_config
from selfimprove_ros.nodes.ros_io import (event_of, image_to_rgb, joint_state_msg, LATCHED_QOS,
                                          RELIABLE_QOS, run_node, SENSOR_QOS, stamp_to_ns,
                                          time_msg)
from selfimprove_ros.model.manifest import read_key
from selfimprove_ros.runtime.controller_config import (ControllerConfig, model_roots,
                                                       stale_inputs)
from selfimprove_ros.runtime.model_loader import ModelLoader, newest_unseen_model
from selfimprove_ros.runtime.model_slot import ModelSlot
from selfimprove_ros.runtime.policy_runtime import PolicyRuntime


# Lockstep robot_node publishes at least every lockstep_timeout_s (1 s); this is long silence.
_SILENT_ROBOT_S = 5.0


class PolicyNode(Node):
    """ROS shell around PolicyRuntime, ModelSlot and ModelLoader."""

    def __init__(self):
        super().__init__('policy_node')
        self.config = config = declare_config(self, ControllerConfig)
        self.period_ns = int(round(config.control_period_s * 1e9))
        self.max_age_ns = int(config.max_observation_age_s * 1e9)
        self.slot, self.runtime = ModelSlot(), PolicyRuntime(config.instruction,
                                                             config.temperature, config.seed)
        key = read_key(config.model_key_file) if config.model_key_file else b''
        self.loader = ModelLoader('policy.onnx', config.cameras, config.providers,
                                  config.inference_budget_s, model_roots(config), key)
        self.episode, self.recorded = None, False
        self.frames, self.frame_wall = {}, {}  # camera -> (stamp_ns, rgb msg), arrival [s]
        self.joints = None                     # (stamp_ns, positions [14])
        self.joint_wall = time.monotonic()     # arrival of the newest joint state [s]
        self.sync = ObservationSync(['joint_states', *config.cameras])
        self.answered_ns, self.last_tick = None, None
        self.requested, self.last_rejection = set(), ''
        self.command_pub = self.create_publisher(JointState, topics.JOINT_COMMANDS, RELIABLE_QOS)
        self.tokens_pub = self.create_publisher(String, topics.POLICY_ACTIONS, RELIABLE_QOS)
        self.timing_pub = self.create_publisher(String, topics.POLICY_TIMING, RELIABLE_QOS)
        self.create_subscription(String, topics.EPISODE_EVENTS, self.on_event, RELIABLE_QOS)
        self.create_subscription(String, topics.EPISODE_STATUS, self.on_status, LATCHED_QOS)
        self.create_subscription(String, config.model_topic, self.on_announce, LATCHED_QOS)
        self.create_subscription(JointState, topics.JOINT_STATES, self.on_joints, RELIABLE_QOS)
        for camera in config.cameras:
            self.create_subscription(Image, topics.camera_topic(camera),
                                     lambda msg, cam=camera: self.on_image(cam, msg), SENSOR_QOS)
        self.create_service(Trigger, topics.POLICY_ROLLBACK, self.on_rollback)
        self.create_service(Trigger, topics.POLICY_SWAP_NOW, self.on_swap_now)
        if config.lockstep:
            self.create_timer(config.sync_timeout_s / 4, self.on_sync_timer)
        else:
            self.create_timer(config.control_period_s, self.on_timer)
        if config.watch_dir:
            self.create_timer(2.0, self.scan_watch_dir)
        if config.model_dir:
            self.request(config.model_dir)

    # Inputs -----------------------------------------------------------------------------------
    def on_joints(self, msg: JointState):
        """Keep the newest joint state; in lockstep a new one is a new tick."""
        stamp = stamp_to_ns(msg.header.stamp)
        self.joints = (stamp, order_by_name(msg.name, msg.position))
        self.sync.add('joint_states', stamp)
        self.joint_wall = time.monotonic()
        self.try_lockstep(force=False)

    def on_image(self, camera: str, msg: Image):
        """Keep the newest frame of each camera (decoded only when the policy needs it)."""
        stamp = stamp_to_ns(msg.header.stamp)
        self.frames[camera] = (stamp, msg)
        self.frame_wall[camera] = time.monotonic()
        self.sync.add(camera, stamp)
        self.try_lockstep(force=False)

    def on_event(self, msg: String):
        """Act only inside episodes; swap a waiting model in when one ends."""
        event = event_of(self, msg)
        if event is None:
            return
        if event['event'] == 'start':
            if self.episode and self.episode['episode_id'] == event['episode_id']:
                if 'task' not in self.episode:  # started from the status: take the goal now
                    self.episode = event
                    self.runtime.instruction = event.get('instruction') or \
                        self.config.instruction
                return  # a repeated start until the recorder acknowledged
            self.episode = event
            self.recorded = not self.config.wait_for_recording
            self.runtime.instruction = event.get('instruction') or self.config.instruction
            self.runtime.reset()
        elif event['event'] == 'recording' and self.episode and \
                event['episode_id'] == self.episode['episode_id']:
            self.recorded = True
        elif event['event'] == 'end' and self.episode and \
                event['episode_id'] == self.episode['episode_id']:
            self.episode = None
            self.runtime.reset()
            if self.slot.between_episodes():
                self.get_logger().info(f'swapped in policy {self.slot.live.version}')

    def on_status(self, msg: String):
        """Follow the manager's latched status too: a `start` missed during discovery."""
        try:
            status = json.loads(msg.data)
            phase, episode_id = status['phase'], status['episode_id']
        except (ValueError, KeyError, TypeError):
            return
        current = self.episode['episode_id'] if self.episode else None
        if phase == 'running' and episode_id and episode_id != current:
            self.get_logger().warning(f'episode {episode_id} runs but its start event never '
                                      'arrived; acting on the manager\'s status')
            self.episode = {'event': 'start', 'episode_id': episode_id}
            self.recorded = True  # its `recording` answer went by with the missed start
            self.runtime.reset()
        elif phase != 'running' and current and current == episode_id:
            self.on_event(String(data=json.dumps({'event': 'end', 'episode_id': current,
                                                  'outcome': phase})))

    # Models -----------------------------------------------------------------------------------
    def request(self, model_dir: str):
        """Queue a model directory for verification and loading."""
        self.requested.add(os.path.abspath(model_dir))
        self.loader.request(model_dir)

    def on_announce(self, msg: String):
        """Load an announced model unless it is already live."""
        try:
            announce = json.loads(msg.data)
            model_dir = announce['model_dir']
        except (ValueError, KeyError, TypeError):
            self.get_logger().error(f'ignoring malformed model announcement {msg.data[:200]!r}')
            return
        live = self.slot.live
        if live is None or announce.get('version') != live.version:
            self.request(model_dir)

    def scan_watch_dir(self):
        """Request the newest model directory in watch_dir that was not seen yet."""
        fresh = newest_unseen_model(self.config.watch_dir, self.requested)
        if fresh:
            self.request(fresh)

    def apply_loads(self):
        """Take finished loads: offer verified models to the slot, report rejections."""
        for result in self.loader.poll():
            if isinstance(result, Exception):
                self.last_rejection = str(result)
                self.get_logger().error(f'{result}; keeping '
                                        f'{self.slot.live.version if self.slot.live else "none"}')
                continue
            self.last_rejection = ''
            if self.slot.offer(result, self.episode is not None,
                               self.config.swap_during_episode):
                self.runtime.reset()
                self.get_logger().info(f'policy {result.version} live ({result.providers[0]}, '
                                       f'{result.inference_s * 1e3:.1f} ms per inference)')
            elif self.slot.pending is result:
                self.get_logger().info(f'policy {result.version} waits for the episode to end')

    def on_rollback(self, request, response):
        """Return to the previous policy."""
        try:
            model = self.slot.rollback()
        except ValueError as error:
            response.success, response.message = False, str(error)
            return response
        self.runtime.reset()
        response.success, response.message = True, f'rolled back to {model.version}'
        self.get_logger().warning(response.message)
        return response

    def on_swap_now(self, request, response):
        """Swap a waiting model in immediately."""
        self.apply_loads()
        response.success = self.slot.between_episodes()
        if response.success:
            self.runtime.reset()
        response.message = (f'policy {self.slot.live.version} live' if response.success
                            else 'no policy is waiting to be swapped in')
        return response

    # Ticks ------------------------------------------------------------------------------------
    def on_timer(self):
        """Realtime: one tick per control period of ROS time."""
        self.tick(self.get_clock().now().nanoseconds)

    def try_lockstep(self, force: bool):
        """Lockstep: answer the newest joint-state tick once its frames are in."""
        if not self.config.lockstep or self.joints is None:
            return
        stamp = self.joints[0]
        if stamp == self.answered_ns or (not force and not self.sync.complete(stamp)):
            return
        self.answered_ns = stamp
        self.tick(stamp)

    def on_sync_timer(self):
        """Lockstep: decide on what arrived if a tick's frames are late."""
        silent_s = time.monotonic() - self.joint_wall
        if silent_s > _SILENT_ROBOT_S:
            # In lockstep nothing else makes this node tick, so say why it is quiet.
            self.get_logger().warning(
                f'no joint_states on {self.resolve_topic_name(topics.JOINT_STATES)} for '
                f'{silent_s:.0f} s: is robot_node running in this ROS domain and transport?',
                throttle_duration_sec=10.0)
        if self.joints is not None and self.joints[0] != self.answered_ns and \
                silent_s > self.config.sync_timeout_s:
            self.try_lockstep(force=True)

    def tick(self, tick_ns: int):
        """Run one control tick at ROS time tick_ns."""
        started = time.monotonic()
        self.apply_loads()
        model = self.slot.live
        if self.episode is None or model is None or not self.recorded:
            state = 'no_model' if model is None else 'idle' if self.episode is None \
                else 'waiting_for_recorder'
            self.publish_timing(tick_ns, state, started)
            return
        stamps = {'joint_states': self.joints[0] if self.joints else None}
        stamps.update({cam: self.frames[cam][0] if cam in self.frames else None
                       for cam in model.codec.config.cameras})
        stale = stale_inputs(tick_ns, stamps, self.max_age_ns)
        if stale:
            self.hold(tick_ns, stale, started)
            return
        inference_s = 0.0
        if self.runtime.needs_decision:
            frames = {cam: image_to_rgb(self.frames[cam][1]) for cam in model.codec.config.cameras}
            decision = self.runtime.decide(model, frames, self.joints[1], tick_ns)
            inference_s = decision.inference_s
            self.tokens_pub.publish(String(data=json.dumps({
                'stamp_ns': tick_ns, 'version': decision.version,
                'episode_id': self.episode['episode_id'], 'tokens': decision.tokens.tolist(),
                'log_prob': decision.log_prob})))
        target = self.runtime.next_target()
        self.command_pub.publish(joint_state_msg(time_msg(tick_ns), target))
        self.publish_timing(tick_ns, 'ok', started, stamps, inference_s, model.codec.config)

    def hold(self, tick_ns: int, stale: list, started: float):
        """Hold the arm at its measured position and report which input is stale."""
        self.runtime.reset()
        if self.joints is not None:
            self.command_pub.publish(joint_state_msg(time_msg(tick_ns),
                                                     np.asarray(self.joints[1])))
        self.get_logger().warning(f'holding: stale or missing {stale} at tick {tick_ns}',
                                  throttle_duration_sec=2.0)
        self.publish_timing(tick_ns, 'stale', started, cause=f'stale input: {stale}')

    def publish_timing(self, tick_ns, state, started, stamps=None, inference_s=0.0,
                       model_config=None, cause=''):
        """Publish tick period, observation age, inference time and image-to-command latency."""
        period_s = (tick_ns - self.last_tick) / 1e9 if self.last_tick else 0.0
        self.last_tick = tick_ns
        timing = {'stamp_ns': tick_ns, 'state': state, 'cause': cause or self.last_rejection,
                  'version': self.slot.live.version if self.slot.live else '',
                  'pending_version': self.slot.pending.version if self.slot.pending else '',
                  'tick_period_s': period_s, 'inference_s': inference_s,
                  'compute_s': time.monotonic() - started}
        if stamps:
            timing['observation_age_s'] = max((tick_ns - s) / 1e9 for s in stamps.values())
            # From the arrival of the oldest frame the decision used: the honest worst case.
            oldest = min(self.frame_wall[cam] for cam in model_config.cameras)
            timing['latency_s'] = time.monotonic() - oldest
        self.timing_pub.publish(String(data=json.dumps(timing)))

    def shutdown(self):
        """Stop the loader thread."""
        self.loader.stop()


def main(args=None):
    """Run policy_node."""
    run_node(PolicyNode, args)


if __name__ == '__main__':
    main()
