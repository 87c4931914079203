"""Demonstrations through a running sim graph: start it, drive expert episodes, stop it.

`selfimprove collect` and the demo call `collect_episodes`; the episodes themselves are the
Collector node's (nodes/collector.py), the bags recorder_node's, the commands expert_node's.
"""

import os
import time


def collect_episodes(specs, robot: str, task: str, instruction: str, period_s: float,
                     episodes: int, max_ticks: int, post_success_ticks: int, extra: dict,
                     log_dir: str, report=print) -> list:
    """Run `episodes` expert episodes in a fresh graph of `specs`; return the EpisodeResults."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from selfimprove_ros.graph.dds import dds_environment
    from selfimprove_ros.graph.description import largest_frame_bytes
    from selfimprove_ros.graph.launcher import GraphRunner
    from selfimprove_ros.nodes.collector import Collector

    # The collector in this process talks to the graph over the transport the graph uses.
    os.environ.update(dds_environment(largest_frame_bytes=largest_frame_bytes(specs)))
    rclpy.init()
    results = []
    try:
        with GraphRunner(specs, log_dir) as graph:
            collector = Collector(robot, task, instruction, period_s, extra=extra)
            executor = SingleThreadedExecutor()
            executor.add_node(collector)
            collector.wait_ready(executor, timeout_s=120.0, subscribers=2, check=graph.check)
            for index in range(episodes):
                start = time.monotonic()
                result = collector.run_episode(executor, max_ticks, post_success_ticks,
                                               check=graph.check)
                results.append(result)
                report(f'[{index + 1}/{episodes}] seed {result.seed}: {result.outcome:8s} '
                       f'{result.ticks:3d} ticks {time.monotonic() - start:5.1f} s  '
                       f'{result.bag_path or "(no bag saved!)"}', flush=True)
            executor.remove_node(collector)
            collector.destroy_node()
    finally:
        rclpy.shutdown()
    return results
