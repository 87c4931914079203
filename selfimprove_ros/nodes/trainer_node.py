"""trainer_node: Stage 1 or Stage 2 training beside the robots, announcing every new policy.

Training runs in a worker thread (the node only spins for its status and announcements); on a
GPU server this is the learner of the paper's infrastructure, which trains and broadcasts new
weights while the robots practise.
"""

import json
import os
import threading

from rclpy.node import Node
from std_msgs.msg import String

from selfimprove_ros.core import topics
from selfimprove_ros.nodes.parameters import declare_config
from selfimprove_ros.nodes.ros_io import LATCHED_QOS, run_node
from selfimprove_ros.training.reinforce_config import ReinforceConfig
from selfimprove_ros.training.trainer_config import TrainerConfig


class TrainerNode(Node):
    """ROS shell around the SFT trainer and the improvement loop."""

    def __init__(self):
        super().__init__('trainer_node')
        self.config = declare_config(self, TrainerConfig)
        self.reinforce = declare_config(self, ReinforceConfig, prefix='reinforce.')
        self.stop = threading.Event()
        self.announce_pub = self.create_publisher(String, self.config.announce_topic,
                                                  LATCHED_QOS)
        self.status_pub = self.create_publisher(String, topics.TRAINER_STATUS, LATCHED_QOS)
        self.status = {'mode': self.config.mode, 'state': 'starting', 'models': []}
        self.worker = threading.Thread(target=self.work, name='trainer', daemon=True)
        self.worker.start()

    def publish_status(self, **changes):
        """Update and publish the latched status."""
        self.status.update(changes)
        self.status_pub.publish(String(data=json.dumps(self.status)))

    def announce(self, model_dir: str):
        """Tell every controller about a new policy version."""
        from selfimprove_ros.model.manifest import read_key, read_manifest, sign_model_dir
        if self.config.model_key_file:
            sign_model_dir(model_dir, read_key(self.config.model_key_file))
        version = read_manifest(model_dir)['version']
        self.announce_pub.publish(String(data=json.dumps(
            {'model_dir': os.path.abspath(model_dir), 'version': version})))
        self.publish_status(models=self.status['models'] + [version], version=version)
        self.get_logger().info(f'announced policy {version} ({model_dir})')

    def work(self):
        """Run the configured stage; report failures on the status topic and the log."""
        try:
            self.publish_status(state='training')
            if self.config.mode == 'sft':
                self.run_sft()
            else:
                self.run_improve()
            self.publish_status(state='done')
        except Exception as error:  # noqa: B902 - the node reports, the operator decides
            self.get_logger().error(f'training failed: {error}')
            self.publish_status(state='failed', error=str(error))

    def run_sft(self):
        """Train Stage 1 and export when configured."""
        from selfimprove_ros.training.run_export import export_run
        from selfimprove_ros.training.sft_config import load_settings, SftConfig
        from selfimprove_ros.training.sft_trainer import train_sft
        settings = load_settings(self.config.settings_file or None, [])
        train_sft(self.config.bag_dirs, self.config.run_dir,
                  SftConfig.from_dict(settings.get('sft', {})), settings.get('dataset', {}),
                  log=self.get_logger().info)
        if self.config.export_dir:
            self.announce(export_run(self.config.run_dir, self.config.export_dir))

    def run_improve(self):
        """Iterate REINFORCE on on-policy practice; announce each new version."""
        from selfimprove_ros.training.improve_loop import improve_forever
        cfg = self.config
        for model_dir in improve_forever(cfg.bag_dirs, cfg.run_dir, self.reinforce, cfg.model_dir,
                                         iterations=cfg.iterations, poll_s=cfg.poll_s,
                                         log=self.get_logger().info,
                                         should_stop=self.stop.is_set):
            self.announce(model_dir)

    def shutdown(self):
        """Ask the worker to stop at its next poll."""
        self.stop.set()


def main(args=None):
    """Run trainer_node."""
    run_node(TrainerNode, args)


if __name__ == '__main__':
    main()
