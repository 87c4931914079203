"""camera_node: one named ALOHA camera as a stamped sensor_msgs/Image stream with diagnostics.

Sources: `sim` renders the simulator's published state (one frame per simulator tick, stamped
with the tick's time, or with `free_run` the newest state at `fps`, stamped when rendered),
`topic` republishes an existing image topic (e.g. realsense2_camera's), `opencv` and
`realsense` read devices in a capture thread and stamp each frame when it arrives.
"""

import threading

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Header

from selfimprove_ros.camera.camera_config import CameraConfig
from selfimprove_ros.camera.sources import OpenCVSource, RealSenseSource, resize
from selfimprove_ros.core import topics
from selfimprove_ros.core.frame_stats import FrameStats
from selfimprove_ros.nodes.parameters import declare_config
from selfimprove_ros.nodes.ros_io import (image_msg, image_to_rgb, RELIABLE_QOS, run_node,
                                          SENSOR_QOS, stamp_to_ns, time_msg)


class CameraNode(Node):
    """Publishes `cameras/<camera_name>/image_raw` and its rate/drop/age diagnostics."""

    def __init__(self):
        super().__init__('camera_node')
        self.config = declare_config(self, CameraConfig)
        cfg = self.config
        self.stats = FrameStats(expected_period_s=1.0 / cfg.fps)
        self.image_pub = self.create_publisher(Image, topics.camera_topic(cfg.camera_name),
                                               SENSOR_QOS)
        self.diag_pub = self.create_publisher(DiagnosticArray, topics.DIAGNOSTICS, RELIABLE_QOS)
        self.create_timer(cfg.diagnostics_period_s, self.publish_diagnostics)
        self.device = None
        if cfg.source == 'sim':
            from selfimprove_ros.sim.aloha_sim import SimRenderer
            self.renderer = SimRenderer(cfg.sim_task, cfg.height or 480, cfg.width or 640)
            self.sim_qpos = None
            # Every simulator tick must become a frame, so the state topic is reliable.
            self.create_subscription(JointState, topics.SIM_STATE, self.on_sim_state,
                                     RELIABLE_QOS)
            if cfg.free_run:
                self.create_timer(1.0 / cfg.fps, self.capture_sim)
        elif cfg.source == 'topic':
            self.create_subscription(Image, cfg.input_topic, self.on_image, SENSOR_QOS)
        else:
            self.device = (OpenCVSource(cfg.device, cfg.fps) if cfg.source == 'opencv'
                           else RealSenseSource(cfg.serial, cfg.width, cfg.height, cfg.fps))
            self.running = True
            self.thread = threading.Thread(target=self.capture_loop, daemon=True)
            self.thread.start()
        self.get_logger().info(f'{cfg.camera_name} from {cfg.source} on '
                               f'{self.image_pub.topic_name}')

    def on_sim_state(self, msg: JointState):
        """Render the simulated camera at the published simulator state (free run: keep it)."""
        if self.config.free_run:
            self.sim_qpos = list(msg.position)
            return
        rgb = self.renderer.render(msg.position, self.config.camera_name)
        self.publish(rgb, stamp_to_ns(msg.header.stamp))

    def capture_sim(self):
        """Free run: render the newest simulator state, stamped when ready, like a device."""
        if self.sim_qpos is not None:
            rgb = self.renderer.render(self.sim_qpos, self.config.camera_name)
            self.publish(rgb, self.get_clock().now().nanoseconds)

    def on_image(self, msg: Image):
        """Republish a frame from another driver, keeping its capture stamp."""
        try:
            rgb = image_to_rgb(msg)
        except ValueError as error:
            self.get_logger().error(f'{self.config.input_topic}: {error}',
                                    throttle_duration_sec=5.0)
            return
        self.publish(rgb, stamp_to_ns(msg.header.stamp))

    def capture_loop(self):
        """Device thread: block on the device, stamp on arrival, publish."""
        while self.running and rclpy.ok():
            frame = self.device.read()
            if frame is None:
                self.get_logger().error(f'{self.config.camera_name}: device stopped delivering')
                return
            rgb, number = frame
            self.publish(rgb, self.get_clock().now().nanoseconds, number)

    def publish(self, rgb, capture_ns: int, frame_number=None):
        """Resize if configured, publish, and account the frame in the statistics."""
        cfg = self.config
        rgb = resize(rgb, cfg.width, cfg.height)
        self.image_pub.publish(image_msg(rgb, time_msg(capture_ns), cfg.frame_id))
        now_s = self.get_clock().now().nanoseconds / 1e9
        self.stats.record(capture_ns / 1e9, now_s, frame_number)

    def publish_diagnostics(self):
        """Publish rate, drops and age over the last window."""
        now = self.get_clock().now()
        summary = self.stats.summary(now.nanoseconds / 1e9)
        level = DiagnosticStatus.OK
        if summary['frames'] == 0:
            level, message = DiagnosticStatus.ERROR, 'no frames'
        elif summary['drops']:
            level, message = DiagnosticStatus.WARN, f'{summary["drops"]} frames dropped'
        else:
            message = f'{summary["rate_hz"]:.1f} Hz'
        status = DiagnosticStatus(
            level=level, name=f'{self.get_namespace().rstrip("/")}/{self.config.camera_name}',
            message=message, hardware_id=self.config.source,
            values=[KeyValue(key=k, value=f'{v:.3f}') for k, v in summary.items()])
        self.diag_pub.publish(DiagnosticArray(header=Header(stamp=now.to_msg()), status=[status]))

    def shutdown(self):
        """Stop the capture thread and release the device or renderer."""
        if self.device is not None:
            self.running = False
            self.device.close()
        elif self.config.source == 'sim':
            self.renderer.close()


def main(args=None):
    """Run camera_node."""
    run_node(CameraNode, args)


if __name__ == '__main__':
    main()
