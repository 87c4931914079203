"""Dataset throughput: Stage-1 samples per second from episode bags, cold and cached.

Cold = decode the bags (CDR, frames, resize), align and write the cache; cached = the same
load served from the cache; then SftSamples item access. Synthetic sim-like episodes are
written first (4 cameras, one frame per 10 Hz tick), or pass --bags to measure real ones.
Writes benchmarks/results/dataset_throughput.json. Measurements, not tests.
"""

import argparse
import json
import os
import tempfile
import time

import numpy as np

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results')
CAMERAS = ['cam_high', 'cam_low', 'cam_left_wrist', 'cam_right_wrist']


def write_bags(root: str, episodes: int, ticks: int, size) -> list:
    """Write `episodes` lockstep-sim-like bags with textured `size` (H, W) frames."""
    from rosbags.typesys import get_typestore, Stores

    from selfimprove_ros.bag.episode_bag import EpisodeBagWriter
    from selfimprove_ros.bag.episode_metadata import EpisodeMetadata
    from selfimprove_ros.core.joints import JOINT_NAMES
    ts = get_typestore(Stores.ROS2_HUMBLE)
    Header, Time = ts.types['std_msgs/msg/Header'], ts.types['builtin_interfaces/msg/Time']
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (size[0], size[1], 3), dtype=np.uint8)
    paths = []
    for number in range(episodes):
        t0 = 1_700_000_000_000_000_000 + number * 10**12
        writer = EpisodeBagWriter(root, EpisodeMetadata(
            robot='bench', task='transfer_cube', instruction='hand over the cube',
            episode_id=f'bench{number}', start_time_ns=t0), max_chunk_s=1.0)
        for tick in range(ticks):
            stamp = t0 + (tick + 1) * 100_000_000
            head = Header(stamp=Time(sec=stamp // 10**9, nanosec=stamp % 10**9), frame_id='')
            joints = ts.types['sensor_msgs/msg/JointState'](
                header=head, name=list(JOINT_NAMES), position=rng.normal(size=14),
                velocity=np.zeros(0), effort=np.zeros(0))
            data = ts.serialize_cdr(joints, 'sensor_msgs/msg/JointState')
            for topic in ('joint_states', 'joint_commands'):
                writer.add_topic(f'/bench/{topic}', 'sensor_msgs/msg/JointState')
                writer.write(f'/bench/{topic}', data, stamp)
            for cam in CAMERAS:
                pixels = np.roll(base, tick, axis=1).reshape(-1)
                image = ts.types['sensor_msgs/msg/Image'](
                    header=head, height=size[0], width=size[1], encoding='rgb8',
                    is_bigendian=0, step=size[1] * 3, data=pixels)
                topic = f'/bench/cameras/{cam}/image_raw'
                writer.add_topic(topic, 'sensor_msgs/msg/Image')
                writer.write(topic, ts.serialize_cdr(image, 'sensor_msgs/msg/Image'), stamp)
        paths.append(writer.finish('success', end_time_ns=stamp))
    return paths


def timed(function):
    """Return (result, seconds) of calling `function`."""
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def bench_load(bags, cameras, cache_dir: str, chunk_length: int) -> dict:
    """Load `bags` cold then cached, and read every sample; return the rates."""
    from selfimprove_ros.data.dataset_config import DatasetConfig
    from selfimprove_ros.data.episode_loader import load_episodes
    from selfimprove_ros.data.sft_samples import SftSamples
    config = DatasetConfig(cameras=cameras, cache_dir=cache_dir, include_failed=True)
    quiet = lambda _: None  # noqa: E731
    (episodes, _), cold_s = timed(lambda: load_episodes(bags, config, log=quiet))
    (episodes, _), cached_s = timed(lambda: load_episodes(bags, config, log=quiet))
    samples = SftSamples(episodes, chunk_length)
    order = np.random.default_rng(0).permutation(len(samples))
    _, read_s = timed(lambda: [samples[int(i)] for i in order])
    count = len(samples)
    return {'episodes': len(episodes), 'ticks': sum(e.length for e in episodes),
            'samples': count, 'cameras': len(cameras),
            'size_in': None, 'size_out': [config.image_height, config.image_width],
            'cold_load_s': cold_s, 'cached_load_s': cached_s, 'getitem_s': read_s,
            'cold_samples_per_s': count / (cold_s + read_s),
            'cached_samples_per_s': count / (cached_s + read_s),
            'getitem_samples_per_s': count / read_s}


def main(argv=None):
    """Run the benchmark and save JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--bags', default=None, help='measure these bags instead')
    parser.add_argument('--cameras', nargs='*', default=CAMERAS)
    parser.add_argument('--episodes', type=int, default=4,
                        help='synthetic episodes per image size')
    parser.add_argument('--ticks', type=int, default=80, help='ticks per synthetic episode')
    parser.add_argument('--chunk-length', type=int, default=5)
    parser.add_argument('--results', default=os.path.join(RESULTS, 'dataset_throughput.json'),
                        help='where the JSON goes')
    args = parser.parse_args(argv)
    for name in ('episodes', 'ticks', 'chunk_length'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1, got {getattr(args, name)}')
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.bags:
            runs = [(None, args.bags)]
        else:
            runs = [(size, write_bags(os.path.join(tmp, f'{size[0]}x{size[1]}'),
                                      args.episodes, args.ticks, size))
                    for size in ((120, 160), (480, 640))]
        for number, (size, bags) in enumerate(runs):
            result = bench_load(bags, args.cameras, os.path.join(tmp, f'cache{number}'),
                                args.chunk_length)
            result['size_in'] = list(size) if size else 'recorded'
            results.append(result)
            print(json.dumps(result))
    path = args.results
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'w') as stream:
        json.dump({'bags': args.bags or 'synthetic', 'runs': results}, stream, indent=2)
    print(f'saved {path}')


if __name__ == '__main__':
    main()
