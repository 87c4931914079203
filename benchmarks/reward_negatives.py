"""Practice with a reward model that has seen failure: evaluate, practise, evaluate again.

The sample-efficiency benchmark's Stage-1 reward model only ever saw demonstrations, and called
most failed policy episodes successes (`selfimprove audit`). This experiment takes a Stage-1
model trained on the same K demonstrations plus simulator-verified failed rollouts of earlier
policies (`dataset.failed_steps_to_go`, docs/sample_efficiency.md gives the commands), and runs
the benchmark's own phases on it, on the benchmark's scenes of that seed:

    greedy evaluation of the new Stage-1 policy -> practice (K/4 episodes, on-policy REINFORCE,
    rewards and success detection from the new reward model) -> greedy evaluation per version

Folders under --case follow the benchmark's layout (eval/, si_*/); a finished phase is reused.
Writes a JSON beside the benchmark's results. Measurements, not tests.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import sample_efficiency as bench  # noqa: E402

REWARD = 'demonstrations + sim-verified failures'


def main(argv=None):
    """Evaluate the Stage-1 model, practise from it, evaluate each version; save the rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--stage1', required=True, help='exported Stage-1 model directory')
    parser.add_argument('--case', required=True, help='folder of this experiment\'s runs')
    parser.add_argument('--reward', default='', help='model directory whose reward head scores '
                        'practice and evaluation (default: --stage1)')
    parser.add_argument('--results', default=os.path.join(bench.RESULTS, 'reward_negatives.json'))
    own, rest = parser.parse_known_args(argv)
    args = bench.parse_args(rest)
    task, seed = args.tasks[0], args.seeds[0]
    stage1, case = os.path.abspath(own.stage1), os.path.abspath(own.case)
    reward = os.path.abspath(own.reward) if own.reward else stage1
    started = time.time()
    times = bench.PhaseTimes(os.path.join(case, 'timings.json'))
    report = times.run('eval_stage1', bench.evaluation, stage1, reward, case, seed, task, args)
    # The benchmark's method names, so its table reads the rows; `reward` tells them apart.
    rows = [bench.result_row(task, seed, args, 'bc_k', report, args.k, reward=REWARD)]
    run = times.run('practice', bench.practise, stage1, case, seed, task, args, reward)
    used = 0
    for entry in (e for e in run.state['versions'] if e['iteration'] > 0):
        used += entry['episodes']
        report = times.run(f'eval_it{entry["iteration"]}', bench.evaluation, entry['model_dir'],
                           reward, case, seed, task, args)
        rows.append(bench.result_row(task, seed, args, 'k_si', report, args.k, reward=REWARD,
                                     practice_episodes=used, iteration=entry['iteration'],
                                     train_metrics=entry.get('metrics', {})))
    bench.print_table(rows)
    os.makedirs(os.path.dirname(os.path.abspath(own.results)), exist_ok=True)
    with open(own.results, 'w') as stream:
        json.dump({'stage1': stage1, 'reward': reward, 'argv': argv or sys.argv[1:], 'rows': rows,
                   'practice_outcomes': run.history.to_dict(), 'timings_s': times.times,
                   'wall_s': round(time.time() - started, 1), 'machine': bench.machine()},
                  stream, indent=1, default=str)
    print(f'wrote {own.results}')


if __name__ == '__main__':
    main()
