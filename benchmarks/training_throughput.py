"""Training throughput: SFT samples per second on this machine and the share spent on data.

Runs the real SftTrainer on synthetic episodes at the model's input size for the default
small-CNN model and a ResNet-18 one (encoder trained and frozen), and reports samples/s and
the fraction of each step spent assembling the batch. Writes
benchmarks/results/training_throughput.json. Measurements, not tests.
"""

import argparse
import json
import os
import sys
import tempfile
import time

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results')
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                'test'))


def measure(encoder: str, freeze: bool, steps: int, batch: int, episodes: int,
            threads: int = 0) -> dict:
    """Train `steps` steps of the default-size model; return samples/s and data wait share."""
    from episode_factory import synthetic_episode
    from selfimprove_ros.data.sft_samples import SftSamples
    from selfimprove_ros.model.model_config import ModelConfig
    from selfimprove_ros.training.sft_config import SftConfig
    from selfimprove_ros.training.sft_data import SftData
    from selfimprove_ros.training.sft_trainer import SftTrainer
    model = ModelConfig(encoder=encoder, freeze_encoder=freeze)
    eps = [synthetic_episode(i, ticks=66, height=model.image_height, width=model.image_width)
           for i in range(episodes)]
    data = SftData(SftSamples(eps, model.chunk_length, ['cam_high']), [], eps, [], [], {},
                   {'train': [], 'val': []})
    config = SftConfig(steps=steps + 3, batch_size=batch, eval_every=10**6, eval_batches=1,
                       checkpoint_every=10**6, device='cpu', model=model,
                       torch_threads=threads)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = SftTrainer(data, run_dir, config, log=lambda *_: None)
        for _ in range(3):  # warm-up: allocator, first-call overheads
            trainer.train_step()
        trainer.wait_s = trainer.compute_s = 0.0
        started = time.perf_counter()
        for _ in range(steps):
            trainer.train_step()
        elapsed = time.perf_counter() - started
    return {'encoder': encoder, 'freeze_encoder': freeze, 'batch_size': batch, 'steps': steps,
            'torch_threads': threads or __import__('torch').get_num_threads(),
            'image_size': [model.image_height, model.image_width],
            'samples_per_s': steps * batch / elapsed, 'ms_per_step': elapsed / steps * 1e3,
            'data_wait_fraction': trainer.wait_s / (trainer.wait_s + trainer.compute_s)}


def main(argv=None):
    """Run the measurements, print a table, save JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--steps', type=int, default=30,
                        help='timed steps of small_cnn; ResNet-18 runs a quarter (at least 5)')
    parser.add_argument('--batch', type=int, default=64, help='samples per step (even)')
    parser.add_argument('--quick', action='store_true', help='small_cnn only')
    parser.add_argument('--threads', type=int, default=0,
                        help='torch threads (0 = torch default); 1 is far faster on a busy '
                        '2-core machine')
    parser.add_argument('--results', default=os.path.join(RESULTS, 'training_throughput.json'),
                        help='where the JSON goes')
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f'--steps must be >= 1, got {args.steps}')
    if args.batch < 2 or args.batch % 2:
        parser.error(f'--batch must be even and >= 2 (half BC, half steps-to-go), got '
                     f'{args.batch}')
    if args.threads < 0:
        parser.error(f'--threads must be >= 0, got {args.threads}')
    cases = [('small_cnn', False)] + ([] if args.quick else [('resnet18', True),
                                                             ('resnet18', False)])
    rows = [measure(enc, frz, args.steps if enc == 'small_cnn' else max(5, args.steps // 4),
                    args.batch, episodes=12, threads=args.threads) for enc, frz in cases]
    for row in rows:
        print(f'{row["encoder"]:10s} frozen={row["freeze_encoder"]!s:5s} '
              f'{row["samples_per_s"]:8.1f} samples/s  {row["ms_per_step"]:7.1f} ms/step  '
              f'data wait {row["data_wait_fraction"] * 100:4.1f}%')
    os.makedirs(os.path.dirname(os.path.abspath(args.results)), exist_ok=True)
    with open(args.results, 'w') as handle:
        json.dump({'cpu_count': os.cpu_count(), 'load_average': os.getloadavg(), 'rows': rows},
                  handle, indent=1)


if __name__ == '__main__':
    main()
