"""How much noise do the scripted expert's demonstrations tolerate, per task?

Demonstrations are recorded with a smooth perturbation of the arm targets (`ExpertConfig
.noise_std`) so that Stage 1 sees states off the clean path, labelled with the clean plan. Too
much, and the expert itself fails. Here the expert plays each scene in one process (physics
only, no cameras, no ROS) at each noise level, its noise seeded per scene as the demonstrations'
are; a row gives the scenes it succeeded in and those still at the task's full reward at the
end (the pose a demonstration holds after success). `selfimprove models` picks, per task, the
most noise that keeps the expert at 95 % or more (cli/models.py DEMO_NOISE_STD).

    python -m benchmarks.expert_noise --task insertion --noise 0 0.003 0.005 0.01

Writes benchmarks/results/expert_noise.json (one row per task; other tasks' rows stay).
Measurements, not tests.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import require_at_least_one, save_row  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results')


def play(sim, expert, seed: int, ticks: int):
    """Play one scene; return (succeeded, still at full reward at the end)."""
    sim.reset(seed)
    expert.plan(sim.full_qpos(), seed)
    for tick in range(ticks):
        sim.step(expert.act(tick))
    return sim.succeeded, sim.reward == sim.max_reward


def measure(task: str, noise_std: float, seeds, ticks: int) -> dict:
    """Return the expert's successes over `seeds` at `noise_std` [rad]."""
    from selfimprove_ros.sim.aloha_sim import AlohaSim, SimConfig
    from selfimprove_ros.sim.expert import ExpertConfig, ScriptedExpert
    from selfimprove_ros.training.episode_report import rate
    sim = AlohaSim(SimConfig(task=task))
    expert = ScriptedExpert(ExpertConfig(task=task, noise_std=noise_std, noise_seed=0))
    started = time.monotonic()
    outcomes = [play(sim, expert, seed, ticks) for seed in seeds]
    row = {'noise_std_rad': noise_std,
           'success': rate(sum(won for won, _ in outcomes), len(outcomes)),
           'held_at_end': sum(held for _, held in outcomes),
           'seconds': round(time.monotonic() - started, 1)}
    print(f'{task} noise {noise_std:g} rad: {row["success"]["describe"]} succeeded, '
          f'{row["held_at_end"]} still at full reward at tick {ticks}', flush=True)
    return row


def parse_args(argv=None):
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--task', default='insertion', choices=('transfer_cube', 'insertion'))
    parser.add_argument('--noise', type=float, nargs='+', default=[0.0, 0.003, 0.005, 0.01],
                        help='noise levels [rad] (ExpertConfig.noise_std)')
    parser.add_argument('--scenes', type=int, default=100, help='simulator seeds 0..N-1')
    parser.add_argument('--ticks', type=int, default=100,
                        help='ticks each scene is played (a demonstration lasts 100)')
    parser.add_argument('--results', default=os.path.join(RESULTS, 'expert_noise.json'))
    args = parser.parse_args(argv)
    require_at_least_one(parser, args, 'scenes', 'ticks')
    if any(noise < 0 for noise in args.noise):
        parser.error(f'--noise levels must be >= 0 rad, got {args.noise}')
    return args


def main(argv=None):
    """Measure each noise level on the same scenes; save the task's row."""
    args = parse_args(argv)
    levels = [measure(args.task, noise, range(args.scenes), args.ticks) for noise in args.noise]
    save_row(args.results, args.task, {'levels': levels}, args)


if __name__ == '__main__':
    main()
