"""`selfimprove audit`: how often the learned success detector is right on sim bags.

Replays a reward model's success rule over recorded simulator episodes and counts how often it
agrees with the simulator (training/detector_audit.py); robot bags count where a person recorded
a verdict (`selfimprove bag verdict`). Run it on the current policy's rollouts
(e.g. the bags of `selfimprove eval`) before practising: a detector that calls failures
successes makes practice optimise its error.
"""

import json
import os

from selfimprove_ros.core.success_detection import SuccessConfig

HELP = ('replay a reward model\'s success detector over sim episode bags and report its false '
        'positives and recall against the simulator (or recorded verdicts)')


def add_arguments(parser):
    """Arguments of `audit`."""
    parser.add_argument('bags', nargs='+', help='bag directories, or directories holding bags')
    parser.add_argument('--reward-model', required=True,
                        help='model directory with reward.onnx (the frozen Stage-1 model)')
    parser.add_argument('--threshold-steps', type=float,
                        default=SuccessConfig.threshold_steps,
                        help='success when d <= this many control ticks (as success_detector)')
    parser.add_argument('--consecutive', type=int, default=SuccessConfig.consecutive,
                        help='...for this many ticks in a row')
    parser.add_argument('--recovery-ticks', type=int, default=SuccessConfig.recovery_ticks,
                        help='...not starting within this many ticks of a d at or above '
                        f'{SuccessConfig.failure_steps:g} ("not within the horizon"); 0 = off')
    parser.add_argument('--control-period-s', type=float, default=0.1,
                        help='control tick [s] the bags are aligned to')
    parser.add_argument('--out', default='', help='also write the verdicts and summary as JSON')


def run(args) -> int:
    """Audit every bag; print a table by policy version; exit 1 if no bag could be audited."""
    from selfimprove_ros.core.topics import CAMERA_NAMES
    from selfimprove_ros.data.bag_streams import BadBag
    from selfimprove_ros.data.episode_loader import find_bags, load_episode
    from selfimprove_ros.runtime.episode_labelling import (episode_inputs,
                                                           labelling_dataset_config,
                                                           predict_steps_to_go)
    from selfimprove_ros.runtime.onnx_model import load_model
    from selfimprove_ros.training.detector_audit import (audit_episode, audit_table, summarise,
                                                         verdict_rows)

    config = SuccessConfig(args.threshold_steps, args.consecutive,
                           recovery_ticks=args.recovery_ticks)
    model = load_model(args.reward_model, 'reward.onnx', cameras=list(CAMERA_NAMES))
    data_config = labelling_dataset_config(model, args.control_period_s)
    bags = find_bags(args.bags)
    if not bags:
        raise ValueError(f'no episode bags under {args.bags}')
    verdicts, skipped = [], []
    for bag in bags:
        try:
            episode = load_episode(bag, data_config)
            d = predict_steps_to_go(model, *episode_inputs(episode, model.codec))
            verdicts.append(audit_episode(episode, d, config))
        except (BadBag, ValueError) as error:
            skipped.append((bag, str(error)))
            print(f'skipping {bag}: {error}')
    print(f'reward model {model.version}; rule d <= {config.threshold_steps} for '
          f'{config.consecutive} ticks, approached (no d >= {config.failure_steps:g} in the '
          f'{config.recovery_ticks} ticks before); {len(verdicts)} episodes audited, '
          f'{len(skipped)} skipped')
    if not verdicts:
        return 1
    print(audit_table(verdicts))
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as stream:
            json.dump({'reward_model': model.version, 'rule': vars(config),
                       'summary': summarise(verdicts), 'episodes': verdict_rows(verdicts),
                       'skipped': skipped}, stream, indent=1)
        print(f'wrote {args.out}')
    return 0
