"""Does a policy use what its camera shows? Its action error with the scene's own image against
another scene's image at the same tick.

On held-out successful episodes, at a few ticks, the exported policy (greedy tokens, first
action of the chunk) is given the episode's own joint state with (a) the episode's own camera
frames and (b) those of another episode at the same tick, where the object lies elsewhere. A
policy that locates the object does much worse with (b); one that ignores it does the same.
"Hold" is the error of repeating the current joint positions, a policy that does nothing.
Errors are mean absolute joint errors [rad] of one arm against the recorded action.
Measurements, not tests; writes benchmarks/results/policy_vision_<model version>.json.
"""

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results')
ARMS = {'left': slice(0, 6), 'right': slice(7, 13)}  # joints without the grippers


def first_action(model, episode, frames_from, tick: int, ids) -> np.ndarray:
    """Return the greedy first action [14] for `episode`'s joints and `frames_from`'s frames."""
    cameras = model.codec.config.cameras
    images = np.stack([frames_from.images[cam][tick] for cam in cameras])[None]
    joints = np.asarray(episode.joints[tick], dtype=np.float32)[None]
    logits = np.asarray(model.run(images, joints, ids)[0])[0]
    return model.codec.decode_tokens(logits.argmax(-1)[None])[0][0]


def measure(model, episodes, ticks, arm: slice) -> list:
    """Return one row per tick: errors with own frames, another scene's frames, and hold."""
    ids = model.codec.encode_instructions([episodes[0].instruction])[0][None]
    rows = []
    for tick in ticks:
        own, other, hold = [], [], []
        usable = [e for e in episodes if e.length > tick]
        for index, episode in enumerate(usable):
            swap = usable[(index + 1) % len(usable)]
            truth = episode.actions[tick]
            if len(usable) < 2 or np.isnan(truth).any():
                continue
            own.append(np.abs(first_action(model, episode, episode, tick, ids) - truth)[arm])
            other.append(np.abs(first_action(model, episode, swap, tick, ids) - truth)[arm])
            hold.append(np.abs(episode.joints[tick] - truth)[arm])
        if own:
            rows.append({'tick': tick, 'episodes': len(own), 'own_frames': float(np.mean(own)),
                         'other_scene_frames': float(np.mean(other)),
                         'hold': float(np.mean(hold))})
    return rows


def load_policy(model_dir: str):
    """Return the exported policy of `model_dir`."""
    from selfimprove_ros.core.topics import CAMERA_NAMES
    from selfimprove_ros.runtime.onnx_model import load_model
    return load_model(model_dir, 'policy.onnx', cameras=list(CAMERA_NAMES))


def successful_episodes(model, bags: str, count: int) -> list:
    """Return the successful episodes among the first `count` bags, as `model` sees them."""
    from selfimprove_ros.data.episode_loader import find_bags, load_episode
    from selfimprove_ros.data.episode_labelling import labelling_dataset_config
    config = labelling_dataset_config(model)
    episodes = [load_episode(bag, config) for bag in find_bags(bags)[:count]]
    episodes = [e for e in episodes if e.succeeded]
    if len(episodes) < 2:
        raise SystemExit(f'need >= 2 successful episodes under {bags}, got {len(episodes)}')
    return episodes


def main(argv=None):
    """Load the policy and the episodes; print and save the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', required=True, help='exported model directory (policy.onnx)')
    parser.add_argument('--bags', required=True, help='held-out successful episode bags')
    parser.add_argument('--episodes', type=int, default=12,
                        help='bags to read (the successful ones among them are measured)')
    parser.add_argument('--ticks', type=int, nargs='+', default=[10, 20, 30, 40])
    parser.add_argument('--arm', choices=sorted(ARMS), default='right',
                        help='the arm that does the task (transfer_cube: right grasps)')
    parser.add_argument('--results', help='where the JSON goes (default benchmarks/results/'
                        'policy_vision_<model version>.json)')
    args = parser.parse_args(argv)
    if args.episodes < 2:
        parser.error(f'--episodes must be >= 2 (each is compared with another), got '
                     f'{args.episodes}')
    if min(args.ticks) < 0:
        parser.error(f'--ticks must be >= 0, got {min(args.ticks)}')
    model = load_policy(args.model)
    episodes = successful_episodes(model, args.bags, args.episodes)
    rows = measure(model, episodes, args.ticks, ARMS[args.arm])
    print(f'{model.version}, {args.arm} arm, {len(episodes)} episodes; error [rad]')
    print(f'{"tick":>5} {"own frames":>11} {"other scene":>12} {"hold":>8}')
    for row in rows:
        print(f'{row["tick"]:>5} {row["own_frames"]:>11.4f} {row["other_scene_frames"]:>12.4f} '
              f'{row["hold"]:>8.4f}')
    path = args.results or os.path.join(RESULTS, f'policy_vision_{model.version}.json')
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'w') as stream:
        json.dump({'model': model.version, 'bags': os.path.abspath(args.bags), 'arm': args.arm,
                   'rows': rows}, stream, indent=1)
    print(f'wrote {path}')


if __name__ == '__main__':
    main()
