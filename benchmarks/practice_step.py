"""How far does one REINFORCE iteration move a policy? Replay it offline for several settings.

Practice time is the scarce resource (robot hours, or sim minutes per episode), and one
iteration with a learning rate too large for the model can undo what SFT learned before any
evaluation notices. This replays the first iteration offline: the same recorded practice bags
of the Stage-1 version, the same decisions and returns, for each (lr, baseline), and measures
each result the way `policy_vision` does: the grasping arm's greedy first-action error [rad]
on held-out successful demonstrations. A setting that makes that error much worse moves the
policy away from everything that succeeded; it should not be the one practice starts with.
Measurements, not tests; writes benchmarks/results/practice_step_<stage-1 version>.json.
"""

import argparse
import json
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import policy_vision, require_at_least_one  # noqa: E402

RESULTS = policy_vision.RESULTS


def replay(stage1: str, bags: str, out: str, lr: float, baseline: str, args) -> str:
    """Train one iteration from `stage1` on its practice in `bags`; return the new model dir."""
    from selfimprove_ros.training.improve_run import ImproveRun
    from selfimprove_ros.training.reinforce_config import ReinforceConfig
    shutil.rmtree(out, ignore_errors=True)
    config = ReinforceConfig(updates_per_iteration=args.updates, batch_size=args.batch, lr=lr,
                             baseline=baseline, torch_threads=1)
    run = ImproveRun(out, config, stage1, log=lambda *_: None)
    pending = run.pending([bags])
    if not pending:
        raise SystemExit(f'no labelled practice bags of {run.version} under {bags}')
    return run.iterate(pending, run.decisions(pending))


def main(argv=None):
    """Replay the iteration per setting; print and save the error table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--stage1', required=True, help='exported Stage-1 model directory')
    parser.add_argument('--practice', required=True,
                        help='practice bags recorded by that version (labelled)')
    parser.add_argument('--demos', required=True, help='held-out successful demonstrations')
    parser.add_argument('--lrs', type=float, nargs='+', default=[1e-4, 3e-5, 1e-5])
    parser.add_argument('--baselines', nargs='+', choices=('none', 'mean', 'step'),
                        default=['none', 'mean'])
    parser.add_argument('--updates', type=int, default=16, help='updates per iteration, N')
    parser.add_argument('--batch', type=int, default=16, help='decisions per update, B')
    parser.add_argument('--episodes', type=int, default=20, help='demonstrations to measure on')
    parser.add_argument('--ticks', type=int, nargs='+', default=[10, 20, 25, 30, 40])
    parser.add_argument('--arm', choices=sorted(policy_vision.ARMS), default='right')
    parser.add_argument('--out', default=os.path.join('runs', 'practice_step'),
                        help='scratch folder for the replayed runs')
    parser.add_argument('--results', help='where the JSON goes (default benchmarks/results/'
                        'practice_step_<stage-1 version>.json)')
    args = parser.parse_args(argv)
    require_at_least_one(parser, args, 'updates', 'batch')
    if args.episodes < 2:
        parser.error(f'--episodes must be >= 2 (policy_vision compares episodes), got '
                     f'{args.episodes}')
    if min(args.lrs) <= 0:
        parser.error(f'--lrs must be > 0, got {min(args.lrs)}')
    if min(args.ticks) < 0:
        parser.error(f'--ticks must be >= 0, got {min(args.ticks)}')
    arm = policy_vision.ARMS[args.arm]
    model = policy_vision.load_policy(args.stage1)
    episodes = policy_vision.successful_episodes(model, args.demos, args.episodes)
    rows = [{'lr': None, 'baseline': None, 'model': model.version,
             'errors': policy_vision.measure(model, episodes, args.ticks, arm)}]
    for lr in args.lrs:
        for baseline in args.baselines:
            folder = os.path.join(args.out, f'lr{lr:g}_{baseline}')
            changed = policy_vision.load_policy(
                replay(args.stage1, args.practice, folder, lr, baseline, args))
            rows.append({'lr': lr, 'baseline': baseline, 'model': folder,
                         'errors': policy_vision.measure(changed, episodes, args.ticks, arm)})
    reference = np.mean([e['own_frames'] for e in rows[0]['errors']])
    print(f'{model.version}, {args.arm} arm, {len(episodes)} demonstrations; own-frame error '
          '[rad] per tick after one replayed iteration')
    print(f'{"lr":>8} {"baseline":>9} ' + ' '.join(f'{t:>7}' for t in args.ticks)
          + f' {"vs Stage 1":>10}')
    for row in rows:
        mean = np.mean([e['own_frames'] for e in row['errors']])
        row['ratio_to_stage1'] = float(mean / reference)
        print(f'{row["lr"] or "Stage 1":>8} {row["baseline"] or "-":>9} '
              + ' '.join(f'{e["own_frames"]:>7.4f}' for e in row['errors'])
              + f' {row["ratio_to_stage1"]:>9.2f}x')
    path = args.results or os.path.join(RESULTS, f'practice_step_{model.version}.json')
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'w') as stream:
        json.dump({'stage1': os.path.abspath(args.stage1), 'argv': argv or sys.argv[1:],
                   'practice': os.path.abspath(args.practice), 'rows': rows}, stream, indent=1)
    print(f'wrote {path}')


if __name__ == '__main__':
    main()
