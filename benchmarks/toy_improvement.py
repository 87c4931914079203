"""Self-improvement on the point-mass task: success per iteration, and what each phase costs.

Records the scripted demonstrations, trains and exports Stage 1, then practises with the
project's loop (fleet/practice_loop.py) and evaluates every policy version on the same
start states with the simulator's success flag, at temperature 1 and greedily. Writes
benchmarks/results/toy_improvement.json. Measurements, not tests: nothing here asserts.

    .venv/bin/python -m benchmarks.toy_improvement --iterations 6
"""

import argparse
import json
import os
import tempfile
import time

import numpy as np

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results')


def stage_one(root: str, seed: int, log, demonstrations: int = None,
              sft_steps: int = None) -> tuple:
    """Record demonstrations, train and export Stage 1; return (model_dir, seconds by phase).

    `demonstrations` and `sft_steps` default to the task's recipe (point_mass.DEMONSTRATIONS,
    point_mass.SFT).
    """
    from selfimprove_ros.model.model_config import ModelConfig
    from selfimprove_ros.sim import point_mass as pm
    from selfimprove_ros.fleet.practice_loop import (EpisodeSpec, record_demonstrations,
                                                     train_stage_one)
    from selfimprove_ros.training.sft_config import SftConfig
    env, seconds = pm.PointMass(), {}
    started = time.monotonic()
    first = 20_000 + 1000 * seed
    demos = record_demonstrations(env, pm.HesitantDemonstrator(env), os.path.join(root, 'demos'),
                                  EpisodeSpec(instruction=pm.INSTRUCTION,
                                              max_ticks=pm.DEMONSTRATION_TICKS),
                                  range(first, first + (demonstrations or pm.DEMONSTRATIONS)),
                                  env.cameras)
    seconds['demonstrations'] = time.monotonic() - started
    log(f'{sum(ok for _, ok in demos)} of {len(demos)} demonstrations succeeded')
    started = time.monotonic()
    # The trainer validates and checkpoints at its last step whatever the intervals say.
    config = SftConfig(model=ModelConfig(**pm.MODEL),
                       **dict(pm.SFT, seed=seed, steps=sft_steps or pm.SFT['steps']))
    model_dir = train_stage_one(os.path.join(root, 'demos'), os.path.join(root, 'sft'), config,
                                os.path.join(root, 'stage1'), log=lambda *_: None)
    seconds['stage1_train_and_export'] = time.monotonic() - started
    return model_dir, seconds


def run(args) -> dict:
    """Run the whole benchmark in a temporary directory; return the results."""
    from selfimprove_ros.sim import point_mass as pm
    from selfimprove_ros.fleet.practice_loop import EpisodeSpec, evaluate, PracticeLoop
    from selfimprove_ros.training.reinforce_config import ReinforceConfig
    with tempfile.TemporaryDirectory(prefix='toy-improvement-') as root:
        stage1, seconds = stage_one(root, args.seed, print, args.demonstrations,
                                    args.sft_steps)
        env = pm.PointMass()
        spec = EpisodeSpec(instruction=pm.INSTRUCTION, max_ticks=pm.PRACTICE_TICKS)
        config = ReinforceConfig(**dict(pm.REINFORCE, seed=args.seed))
        loop = PracticeLoop(env, stage1, os.path.join(root, 'improve'),
                            os.path.join(root, 'practice'), config, spec, seed=args.seed,
                            log=lambda *_: None)
        seeds = range(10_000, 10_000 + args.evaluation_episodes)

        def measure(entry: dict) -> dict:
            for name, temperature in (('success_rate', 1.0), ('greedy_success_rate', 0.0)):
                entry[name] = float(np.mean(evaluate(env, loop.slot.live, seeds, spec,
                                                     temperature, sample_seed=1)))
            print(json.dumps(entry))
            return entry

        history = [measure({'iteration': 0, 'version': loop.slot.live.version})]
        for number in range(1, args.iterations + 1):
            started = time.monotonic()
            entry = loop.iteration(args.episodes)
            entry = {'iteration': number, 'version': entry['version'],
                     'practice_success': entry['practice_success'],
                     'decisions': entry['decisions'],
                     'mean_return': entry['metrics']['mean_return'],
                     'iteration_s': time.monotonic() - started}
            history.append(measure(entry))
    return {'seed': args.seed, 'demonstrations': args.demonstrations or pm.DEMONSTRATIONS,
            'sft_steps': args.sft_steps or pm.SFT['steps'],
            'episodes_per_iteration': args.episodes,
            'evaluation_episodes': args.evaluation_episodes,
            'practice_ticks': pm.PRACTICE_TICKS, 'reinforce': config.to_dict(),
            'seconds': seconds, 'history': history}


def main(argv=None):
    """Parse arguments, run, save JSON."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--iterations', type=int, default=6)
    parser.add_argument('--episodes', type=int, default=32, help='practice episodes per '
                        'iteration')
    parser.add_argument('--evaluation-episodes', type=int, default=200)
    parser.add_argument('--demonstrations', type=int, default=None,
                        help='scripted demonstrations for Stage 1 (default: the recipe\'s 40)')
    parser.add_argument('--sft-steps', type=int, default=None,
                        help='Stage-1 SFT steps (default: the recipe\'s 400)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', default=os.path.join(RESULTS, 'toy_improvement.json'))
    args = parser.parse_args(argv)
    for name in ('iterations', 'episodes', 'evaluation_episodes', 'demonstrations',
                 'sft_steps'):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1, got {value}')
    results = run(args)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as stream:
        json.dump(results, stream, indent=2)
    print(f'saved {args.out}')


if __name__ == '__main__':
    main()
