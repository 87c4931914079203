"""Plots of docs/results.md, drawn from the JSONs under benchmarks/results/ (no new runs).

    python -m benchmarks.plot_results [--results benchmarks/results] [--out docs/img]

success_vs_demonstrations.png: greedy success on unseen scenes against the episodes a policy
was made from (demonstrations, plus practice), `practice_gain*.json` and the shipped model's
fidelity row of `practice_throughput.json`. success_vs_practice.png: from the shipped model,
greedy success before and after 2,500 practice episodes, and the success of the practice
episodes themselves in blocks of 500, real returns against shuffled ones
(`practice_pays.json`). Every point carries its 95 % Wilson interval.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results')
SHIPPED = os.path.join('models', 'transfer_cube')  # practice-pays' default --model
IMAGES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'docs', 'img')
BLOCK = 500  # practice episodes per point of the practice curve


def read(results: str, name: str) -> dict:
    """Return benchmarks/results/<name>.json, or {} when that benchmark has not run."""
    path = os.path.join(results, f'{name}.json')
    if not os.path.exists(path):
        return {}
    with open(path) as stream:
        return json.load(stream)


def interval(successes: int, trials: int) -> tuple:
    """Return (rate, rate - low, high - rate) of a 95 % Wilson interval, for error bars."""
    from selfimprove_ros.training.version_history import wilson_interval
    low, high = wilson_interval(successes, trials)
    value = successes / trials
    return value, value - low, high - value


def _errorbar(axis, x, counts, **style):
    """Draw points (x, successes / trials) with their Wilson intervals."""
    points = [interval(*count) for count in counts]
    axis.errorbar(x, [p[0] for p in points], yerr=[[p[1] for p in points], [p[2] for p in points]],
                  capsize=3, **style)


def success_vs_demonstrations(results: str, path: str) -> bool:
    """Draw BC(K), BC(2K) and K + practice against the episodes used; False without data."""
    import matplotlib.pyplot as plt
    gain = read(results, 'practice_gain')
    if not gain:
        return False
    pooled = gain['pooled']
    rows = gain['rows']
    k = min(row['demos'] for row in rows)
    practised = [row['practice_episodes'] for row in rows if row['method'] == 'k_practice']
    figure, axis = plt.subplots(figsize=(6, 4))
    bc = [(k, pooled['bc_k']), (2 * k, pooled['bc_2k'])]
    shipped = read(results, 'practice_throughput').get('fidelity', {}).get('node_graph')
    if shipped:  # the shipped model, K = 100, greedy on scenes 80000-80099 through the graph
        bc.append((100, shipped['sim_success']))
    bc.sort(key=lambda item: item[0])
    _errorbar(axis, [x for x, _ in bc], [(r['successes'], r['trials']) for _, r in bc],
              fmt='o-', color='tab:blue', label='behaviour cloning on K demonstrations')
    runs = [('practice_gain', 'temperature 1', 'tab:red'),
            ('practice_gain_t05', 'temperature 0.5', 'tab:orange')]
    for offset, (name, label, colour) in enumerate(runs):
        found = read(results, name)
        if found:
            total = found['pooled']['k_practice']
            used = k + sum(practised) / len(practised) + offset  # offset: both stay visible
            _errorbar(axis, [used], [(total['successes'], total['trials'])], fmt='s',
                      color=colour, label=f'{k} + practice at {label}')
    axis.set_xlabel('episodes the policy was made from (demonstrations + practice)')
    axis.set_ylabel('greedy success, unseen scenes')
    axis.set_ylim(0, 1)
    axis.set_title('transfer_cube: demonstrations against practice (95 % intervals)')
    axis.legend(loc='lower right', fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True


def practice_blocks(versions: dict) -> list:
    """Return [(episodes so far, successes, episodes)] of the practice episodes per BLOCK."""
    blocks, done, successes, episodes = [], 0, 0, 0
    for entry in versions.values():
        done += entry['episodes']
        successes += entry['sim_successes']
        episodes += entry['episodes']
        if episodes >= BLOCK:
            blocks.append((done, successes, episodes))
            successes = episodes = 0
    return blocks


def success_vs_practice(results: str, path: str) -> bool:
    """Draw greedy success before/after practice and practice success per block."""
    import matplotlib.pyplot as plt
    pays = read(results, 'practice_pays')
    if not pays:
        return False
    # From the shipped model only: a run from another Stage 1 starts elsewhere.
    pays = {name: entry for name, entry in pays.items()
            if os.path.normpath(entry.get('settings', {}).get('model', SHIPPED)) == SHIPPED}
    figure, (greedy, sampled) = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    colours = {('reinforce', 'real'): 'tab:red', ('reinforce', 'shuffled'): 'tab:gray',
               ('filtered_bc', 'real'): 'tab:green', ('filtered_bc', 'shuffled'): 'tab:olive'}
    start_drawn, labelled = False, set()
    for index, (name, entry) in enumerate(sorted(pays.items())):
        if not start_drawn:
            start = entry['start']['greedy']
            _errorbar(greedy, [0], [(start['successes'], start['trials'])], fmt='o',
                      color='tab:blue', label='start (shipped model)')
            start_drawn = True
        objective = entry.get('settings', {}).get('objective') or 'reinforce'
        for case in [case for case in ('real', 'shuffled') if case in entry]:
            run = entry[case]
            shift = (index - 1) * 40 + (0 if case == 'real' else 20)
            label = f'{objective}, {case}'
            _errorbar(greedy, [run['episodes'] + shift],
                      [(run['greedy']['successes'], run['greedy']['trials'])], fmt='s',
                      color=colours[objective, case],
                      label=None if label in labelled else label)
            labelled.add(label)
            blocks = practice_blocks(run['versions'])
            _errorbar(sampled, [done for done, _, _ in blocks],
                      [(s, n) for _, s, n in blocks], fmt='.-',
                      color=colours[objective, case],
                      label=f'{label}, seed {entry.get("settings", {}).get("seed", 0)}')
    greedy.set_title('greedy, 100 unseen scenes per point')
    sampled.set_title(f'practice episodes (sampled), per {BLOCK}')
    for axis in (greedy, sampled):
        axis.set_xlabel('practice episodes')
        axis.set_ylim(0, 1)
        axis.legend(loc='lower right', fontsize=8)
    greedy.set_ylabel('success (simulator), 95 % intervals')
    figure.suptitle('transfer_cube from the shipped model: chunk-quantile practice at T = 1, '
                    'REINFORCE and filtered BC')
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True


def main(argv=None):
    """Draw every plot whose results exist; print what was written."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--results', default=RESULTS, help='folder of the result JSONs')
    parser.add_argument('--out', default=IMAGES, help='folder of the PNGs')
    args = parser.parse_args(argv)
    import matplotlib
    matplotlib.use('Agg')  # files only; no display on a robot or in CI
    os.makedirs(args.out, exist_ok=True)
    for name, draw in (('success_vs_demonstrations', success_vs_demonstrations),
                       ('success_vs_practice', success_vs_practice)):
        path = os.path.join(args.out, f'{name}.png')
        print(f'{path}' if draw(args.results, path) else
              f'{name}: no results in {args.results}; run its benchmark first')


if __name__ == '__main__':
    main()
