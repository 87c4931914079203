"""`selfimprove practice`: a simulated fleet practises a policy while one learner improves it.

N sim stations (the robot's own cores, fleet/station.py; one per core by default) practise the
live version at temperature 1, record and label contract bags under OUT/practice; the learner
(fleet/learner.py: ImproveRun with the trainer's stopping rule) runs an iteration (REINFORCE,
or with --objective filtered_bc a fit of the successes: the detector's, and on insertion the
simulator's, as its success bonus does) once the version's on-policy decisions are in,
exports it to OUT/improve/models, and every station takes it between episodes. Run it again
with the same --out to resume.
"""

import json
import os

from selfimprove_ros.runtime.token_sampling import SAMPLERS
from selfimprove_ros.sim.aloha_sim import SUCCESS_BONUS

HELP = 'practise a policy on a simulated fleet: sim stations + one learner'

# Not the paper's REINFORCE settings (no baseline, lr 1e-4): from the shipped policy one such
# iteration fell from 18/20 to 4/20 in sim (docs/notebook/2026-11-30.md); see practice_config.
PRACTICE = {'baseline': 'step', 'lr': 3e-5, 'returns_until': 'end', 'trainable': 'action_head'}
# Success-filtered behaviour cloning (training/filtered_bc.py): an iteration per about 1,100
# episodes, whose successes (about 9,000 chunks at the shipped policy's rate) are fitted about
# 7 times over, as the run that took the shipped policy from 78 to 92/100 greedy did
# (2,500 episodes, 2,000 steps; docs/results.md).
FILTERED_BC = {'objective': 'filtered_bc', 'lr': 1e-4, 'trainable': 'policy',
               'updates_per_iteration': 1000, 'batch_size': 64,
               'decisions_per_iteration': 20_000}
OBJECTIVES = {'reinforce': {'updates_per_iteration': 16, 'batch_size': 64, **PRACTICE},
              'filtered_bc': FILTERED_BC}


def add_arguments(parser):
    """Arguments of `practice`."""
    parser.add_argument('--model', required=True,
                        help='the Stage-1 model directory to start from (policy.onnx, '
                        'policy.pt, manifest.json)')
    parser.add_argument('--reward-model', default='',
                        help='frozen Stage-1 model directory with reward.onnx (default: --model)')
    parser.add_argument('--task', default='transfer_cube', choices=tuple(SUCCESS_BONUS))
    parser.add_argument('--stations', type=int, default=os.cpu_count() or 1,
                        help='sim stations (default: one per core)')
    parser.add_argument('--episodes', type=int, default=500,
                        help='practice episodes in all (a resumed run counts those it has)')
    parser.add_argument('--out', default='runs/practice', help='bags, versions and report')
    parser.add_argument('--max-ticks', type=int, default=100, help='episode limit [ticks]')
    parser.add_argument('--first-seed', type=int, default=100_000,
                        help='simulator seed of practice episode 0 (evaluations use others)')
    parser.add_argument('--objective', choices=tuple(OBJECTIVES), default='filtered_bc',
                        help="how the learner learns from practice: 'filtered_bc' (fit the "
                        "successes, policy_gradient.episode_success; the one that paid, "
                        "docs/results.md) or "
                        "'reinforce' (the paper's; trainer_node's default)")
    parser.add_argument('--updates', type=int, default=None,
                        help="updates per iteration (default: the objective's; the paper's "
                        'REINFORCE: 16)')
    parser.add_argument('--batch', type=int, default=None,
                        help="decisions per update (default: the objective's; the paper: 64); "
                        'a REINFORCE iteration waits for updates x batch on-policy decisions')
    parser.add_argument('--temperature', type=float, default=1.0,
                        help='temperature the stations practise at; the learner trains that '
                        'tempered policy')
    parser.add_argument('--sampler', choices=SAMPLERS, default='independent',
                        help="how the stations draw a chunk's tokens: 'independent' or "
                        "'chunk_quantile' (one quantile per joint per chunk: smooth motions); "
                        'the learner uses the exact log-probability of what was drawn')
    parser.add_argument('--set', dest='overrides', nargs='*', default=[], metavar='KEY=VALUE',
                        help='REINFORCE overrides, e.g. lr=1e-4 baseline=mean')
    parser.add_argument('--frames', choices=('used', 'every_tick'), default='used',
                        help="render and record only the frames the policy and detector use "
                        "(default), or every tick's as the camera nodes do")
    parser.add_argument('--ray', default='', metavar='ADDRESS',
                        help="run the stations as Ray actors on this cluster ('local' starts "
                        'one here); the learner stays in this process')
    parser.add_argument('--robot', default='aloha1')


def practice_config(updates=None, batch=None, overrides=(), threads: int = 1,
                    objective: str = 'reinforce', task: str = 'transfer_cube'):
    """Return the practice settings of `objective` with `overrides` ('key=value') applied.

    `updates` and `batch` (None: the objective's) size an iteration. The learner records
    `task`'s success bonus, the one the stations' labels apply (graph/description.py).

    Without a baseline a failure's jump to "not within the horizon" makes most returns negative
    and pushes down whatever was sampled; the step baseline compares each chunk with the other
    episodes' at the same step. With about 15 episodes per iteration the gradient was mostly
    noise: 3 iterations with the returns shuffled cost the whole policy as much as the real
    ones (82 -> 66/100) and the action head alone 4 points (78/100), hence lr 3e-5 on the
    action head.
    """
    from selfimprove_ros.training.reinforce_config import ReinforceConfig
    from selfimprove_ros.training.sft_config import apply_overrides
    if objective not in OBJECTIVES:
        raise ValueError(f'objective must be one of {list(OBJECTIVES)}, got {objective!r}')
    sizes = {key: value for key, value in (('updates_per_iteration', updates),
                                           ('batch_size', batch)) if value is not None}
    settings = {**OBJECTIVES[objective], **sizes, 'torch_threads': threads,
                'success_bonus': SUCCESS_BONUS[task]}
    return ReinforceConfig.from_dict(apply_overrides(settings, overrides))


def check_arguments(args):
    """Refuse what cannot run, in one line each, before any station starts."""
    if not args.temperature > 0:
        raise ValueError(f'--temperature must be > 0 (greedy practice samples nothing to learn '
                         f'from), got {args.temperature}')
    for name, value, low in (('--stations', args.stations, 1), ('--episodes', args.episodes, 0),
                             ('--max-ticks', args.max_ticks, 1), ('--updates', args.updates, 1),
                             ('--batch', args.batch, 1)):
        if value is not None and value < low:
            raise ValueError(f'{name} must be >= {low}, got {value}')
    for path in (os.path.join(args.model, 'manifest.json'), os.path.join(args.model, 'policy.pt')):
        if not os.path.exists(path):
            raise ValueError(f'{path} is missing: --model must be a Stage-1 model directory '
                             'with its policy checkpoint (make models builds models/<task>/)')


def run(args) -> int:
    """Start the fleet and the learner, practise, print and save the summary."""
    from selfimprove_ros.cli.evaluate import preflight, sim_runtime_specs
    check_arguments(args)
    reward_dir = os.path.abspath(args.reward_model or args.model)
    manifest = preflight(args.model, reward_dir, 1, args.max_ticks, args.temperature)
    out = os.path.abspath(args.out)
    # One home for how practice samples: the stations' policy_node and the learner's log pi.
    sampling = [f'sampler={args.sampler}', f'temperature={args.temperature}']
    summary = practise_on_fleet(
        os.path.abspath(args.model), reward_dir, out, sim_runtime_specs(
            args.task, manifest['codec']['cameras'], args.model, reward_dir, args.robot,
            args.max_ticks, args.temperature, {'policy_node': {'sampler': args.sampler}}),
        practice_config(args.updates, args.batch, [*args.overrides, *sampling],
                        threads=min(args.stations, os.cpu_count() or 1),
                        objective=args.objective, task=args.task),
        args.episodes, args.stations, first_seed=args.first_seed, ray_address=args.ray,
        robot=args.robot, station={'frames': args.frames})
    print(json.dumps({key: value for key, value in summary.items() if key != 'faults'},
                     indent=1))
    return 0


def practise_on_fleet(model_dir, reward_dir, out, specs, config, episodes, stations,
                      first_seed=100_000, ray_address='', robot='aloha1', station=None,
                      checkpoint='', stopping=None, sample_seed=0, log=print) -> dict:
    """Practise `episodes` on a fleet with one learner in `out`; save and return the summary.

    `checkpoint` is the policy checkpoint a new run starts from (default: model_dir's);
    `stopping` the learner's StoppingConfig (default: the trainer's); `sample_seed` seeds the
    stations' sampling (each scene draws from (sample_seed, its seed)).
    """
    from selfimprove_ros.fleet.fleet import start_fleet
    from selfimprove_ros.fleet.learner import Learner
    from selfimprove_ros.fleet.practice import practise
    bag_root = os.path.join(out, 'practice')
    learner = Learner(os.path.join(out, 'improve'), config, model_dir, bag_root, checkpoint,
                      stopping, log=log)
    fleet = start_fleet({'specs': specs, 'robot': robot, 'reward_model_dir': reward_dir,
                         'station': station or {}, 'sample_seed': sample_seed}, stations,
                        ray_address, log)
    try:
        summary = practise(fleet, learner, bag_root, episodes, first_seed, log)
    finally:
        fleet.close()
    summary['versions_history'] = [
        {key: entry.get(key) for key in ('version', 'parent', 'iteration', 'model_dir',
                                         'episodes', 'rollback')}
        for entry in learner.run.state['versions']]
    with open(os.path.join(out, 'practice.json'), 'w') as handle:
        json.dump(summary, handle, indent=1)
    log(f'practice summary {os.path.join(out, "practice.json")}; faults: '
        f'{len(summary["faults"])}')
    return summary
