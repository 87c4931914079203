"""Benchmarks for the foundation: simulator speed, camera delivery across processes, recorder.

Run with `make bench`; prints a table and writes benchmarks/results/foundation.json. These are
measurements, not tests: nothing here asserts a time.
"""

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
import psutil

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results')


def bench_sim(task: str, ticks: int, size, renders: int = 20) -> dict:
    """Physics per 0.1 s tick and render time per camera at `size` (mean of `renders`)."""
    from selfimprove_ros.core.topics import CAMERA_NAMES
    from selfimprove_ros.sim.aloha_sim import AlohaSim, SimConfig, SimRenderer
    sim = AlohaSim(SimConfig(task=task))
    sim.reset(0)
    target = sim.joint_positions()
    start = time.perf_counter()
    for _ in range(ticks):
        sim.step(target)
    physics_s = (time.perf_counter() - start) / ticks
    renderer = SimRenderer(task, *size)
    render_ms = {}
    for camera in CAMERA_NAMES:
        start = time.perf_counter()
        for _ in range(renders):
            renderer.render(sim.full_qpos(), camera)
        render_ms[camera] = (time.perf_counter() - start) / renders * 1e3
    renderer.close()
    return {'task': task, 'size': list(size), 'physics_ms_per_tick': physics_s * 1e3,
            'physics_real_time_factor': sim.config.control_period_s / physics_s,
            'render_ms': render_ms,
            'tick_ms_with_4_cameras_serial': physics_s * 1e3 + sum(render_ms.values())}


def bench_cameras(size, seconds: float) -> dict:
    """4 sim cameras in 4 processes at 10 Hz wall clock; a probe measures what arrives."""
    import rclpy

    from selfimprove_ros.graph.dds import dds_environment
    from selfimprove_ros.graph.description import build_graph, config_path, load_config
    from selfimprove_ros.graph.launcher import GraphRunner
    sys.path.insert(0, os.path.join(os.path.dirname(RESULTS), '..', 'test'))
    from graph_probe import GraphProbe
    cameras = ['cam_high', 'cam_low', 'cam_left_wrist', 'cam_right_wrist']
    overrides = {'launch': {'lockstep': False, 'recorder': False, 'cameras': cameras},
                 'camera_node': {'height': size[0], 'width': size[1]}}
    specs = build_graph(load_config(config_path('sim.yaml')), 'bench', overrides)
    arrivals = {cam: [] for cam in cameras}
    # The probe must use the same transport as the nodes, or it measures the UDP fallback.
    os.environ.update(dds_environment())
    rclpy.init()
    with tempfile.TemporaryDirectory() as logs, GraphRunner(specs, logs) as graph:
        probe = GraphProbe('/bench', cameras)
        probe.spin_until(lambda: all(len(f) > 3 for f in probe.frames.values()), 120,
                         graph.check)
        for cam in cameras:
            probe.frames[cam].clear()
        probe.joints.clear()
        procs = [psutil.Process(p.pid) for _, p in graph.processes.values()]
        for proc in procs:
            proc.cpu_percent()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            probe.executor_.spin_once(timeout_sec=0.05)
            now = probe.get_clock().now().nanoseconds
            for cam in cameras:
                while len(arrivals[cam]) < len(probe.frames[cam]):
                    arrivals[cam].append(now - probe.frames[cam][len(arrivals[cam])][0])
        cpu = sum(proc.cpu_percent() for proc in procs)
        ticks = len(probe.joints)
        probe.destroy_node()
    rclpy.shutdown()
    latency = np.concatenate([np.array(v) / 1e6 for v in arrivals.values()])
    received = {cam: len(v) for cam, v in arrivals.items()}
    return {'size': list(size), 'seconds': seconds, 'ticks': ticks, 'frames': received,
            # Frames of ticks just before the window can arrive inside it: clamp at zero.
            'drop_pct': max(0.0, 100.0 * (1 - sum(received.values()) / max(1, 4 * ticks))),
            'latency_ms_p50': float(np.percentile(latency, 50)) if latency.size else None,
            'latency_ms_p99': float(np.percentile(latency, 99)) if latency.size else None,
            'graph_cpu_pct': cpu}


def bench_recorder(size, messages: int) -> dict:
    """EpisodeBagWriter throughput for rgb8 images of `size`."""
    from rosbags.typesys import get_typestore, Stores

    from selfimprove_ros.bag.episode_bag import EpisodeBagWriter
    from selfimprove_ros.bag.episode_metadata import EpisodeMetadata
    store = get_typestore(Stores.ROS2_HUMBLE)
    Image, Header, Time = (store.types[n] for n in (
        'sensor_msgs/msg/Image', 'std_msgs/msg/Header', 'builtin_interfaces/msg/Time'))
    pixels = np.random.default_rng(0).integers(0, 255, size[0] * size[1] * 3, dtype=np.uint8)
    data = store.serialize_cdr(Image(Header(Time(0, 0), 'cam'), size[0], size[1], 'rgb8', 0,
                                     size[1] * 3, pixels), 'sensor_msgs/msg/Image')
    with tempfile.TemporaryDirectory() as root:
        writer = EpisodeBagWriter(root, EpisodeMetadata(robot='bench', task='transfer_cube'))
        writer.add_topic('/bench/cameras/cam_high/image_raw', 'sensor_msgs/msg/Image')
        start = time.perf_counter()
        for i in range(messages):
            writer.write('/bench/cameras/cam_high/image_raw', data, i * 25_000_000)
        writer.finish('success')
        seconds = time.perf_counter() - start
    return {'size': list(size), 'messages': messages, 'msgs_per_s': messages / seconds,
            'mb_per_s': messages * len(data) / seconds / 1e6,
            'four_cams_10hz_load_pct': 100.0 * 40 / (messages / seconds)}


def camera_size(text: str) -> tuple:
    """Parse HxW (e.g. 240x320) into (H, W)."""
    try:
        height, width = (int(part) for part in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected HxW such as 240x320, got {text!r}')
    if height < 1 or width < 1:
        raise argparse.ArgumentTypeError(f'a camera size must be positive, got {text!r}')
    return height, width


def main(argv=None):
    """Run everything and save JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--seconds', type=float, default=15.0,
                        help='camera delivery window per camera size [s]')
    parser.add_argument('--ticks', type=int, default=100,
                        help='physics ticks per task at 120x160; the 480x640 pass runs a fifth '
                        'of them (at least one)')
    parser.add_argument('--renders', type=int, default=20,
                        help='renders per camera timed in each simulator pass')
    parser.add_argument('--messages', type=int, default=300,
                        help='images written per recorder size')
    parser.add_argument('--camera-sizes', type=camera_size, nargs='+',
                        default=[(240, 320), (480, 640)], metavar='HxW',
                        help='camera image sizes of the delivery graph (default 240x320 '
                        '480x640)')
    parser.add_argument('--results', default=os.path.join(RESULTS, 'foundation.json'),
                        help='where the JSON goes')
    args = parser.parse_args(argv)
    for name in ('ticks', 'renders', 'messages'):
        if getattr(args, name) < 1:
            parser.error(f'--{name} must be >= 1, got {getattr(args, name)}')
    if args.seconds <= 0:
        parser.error(f'--seconds must be > 0, got {args.seconds}')
    tasks = ('transfer_cube', 'insertion')
    results = {'sim': [bench_sim(task, args.ticks, (120, 160), args.renders) for task in tasks],
               'sim_480x640': bench_sim('transfer_cube', max(1, args.ticks // 5), (480, 640),
                                        args.renders),
               'recorder': [bench_recorder(s, args.messages) for s in ((240, 320), (480, 640))],
               'cameras': [bench_cameras(s, args.seconds) for s in args.camera_sizes]}
    path = args.results
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'w') as stream:
        json.dump(results, stream, indent=2)
    print(json.dumps(results, indent=2))
    print(f'saved {path}')


if __name__ == '__main__':
    main()
