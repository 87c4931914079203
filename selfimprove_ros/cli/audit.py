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
                        help='success when d <= this many control ticks (default: the rule the '
                        f'manifest records, else {SuccessConfig.threshold_steps:g})')
    parser.add_argument('--consecutive', type=int,
                        help='...for this many ticks in a row (default: the manifest\'s, else '
                        f'{SuccessConfig.consecutive})')
    parser.add_argument('--recovery-ticks', type=int,
                        help='...not starting within this many ticks of a d at or above '
                        f'{SuccessConfig.failure_steps:g} ("not within the horizon"); 0 = off '
                        f'(default: the manifest\'s, else {SuccessConfig.recovery_ticks})')
    parser.add_argument('--choose-rule', action='store_true',
                        help='also audit each candidate recovery_ticks and show the one '
                        '`selfimprove models` would record (best recall, <= 5 %% false)')
    parser.add_argument('--control-period-s', type=float, default=0.1,
                        help='control tick [s] the bags are aligned to')
    parser.add_argument('--out', default='', help='also write the verdicts and summary as JSON')


def run(args) -> int:
    """Audit every bag; print a table by policy version; exit 1 if no bag could be audited."""
    from selfimprove_ros.training.detector_audit import (audit_episode, audit_table, summarise,
                                                         verdict_rows)
    from selfimprove_ros.training.rule_choice import choose_rule

    version, scored, skipped = score_bags(args.reward_model, args.bags, args.control_period_s)
    config, source = rule_of(args)
    verdicts = [audit_episode(episode, d, config) for episode, d in scored]
    print(f'reward model {version}; rule ({source}) d <= {config.threshold_steps} for '
          f'{config.consecutive} ticks, approached (no d >= {config.failure_steps:g} in the '
          f'{config.recovery_ticks} ticks before); {len(verdicts)} episodes audited, '
          f'{len(skipped)} skipped')
    if not verdicts:
        return 1
    print(audit_table(verdicts))
    if args.choose_rule:
        print('candidate rules (recovery_ticks):\n' + choose_rule(scored, config).describe())
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as stream:
            json.dump({'reward_model': version, 'rule': vars(config),
                       'summary': summarise(verdicts), 'episodes': verdict_rows(verdicts),
                       'skipped': skipped}, stream, indent=1)
        print(f'wrote {args.out}')
    return 0


def rule_of(args):
    """Return (the rule to audit, its source): the options, else the manifest's, else defaults."""
    from dataclasses import replace

    from selfimprove_ros.core.success_detection import audited_rule
    from selfimprove_ros.model.manifest import read_manifest
    rule = audited_rule(read_manifest(args.reward_model))
    config, source = (rule, 'audited, from the manifest') if rule else (SuccessConfig(),
                                                                        'default')
    given = {name: getattr(args, name) for name in
             ('threshold_steps', 'consecutive', 'recovery_ticks')
             if getattr(args, name) is not None}
    if given:
        config, source = replace(config, **given), f'{source}, with {given}'
    return config, source


def score_bags(reward_model_dir: str, bag_dirs, control_period_s: float = 0.1):
    """Return (model version, [(episode, d per aligned tick)], [(bag, why skipped)])."""
    from selfimprove_ros.core.topics import CAMERA_NAMES
    from selfimprove_ros.data.bag_streams import BadBag
    from selfimprove_ros.data.episode_loader import find_bags, load_episode
    from selfimprove_ros.data.episode_labelling import (episode_inputs,
                                                        labelling_dataset_config,
                                                        predict_steps_to_go)
    from selfimprove_ros.runtime.onnx_model import load_model
    model = load_model(reward_model_dir, 'reward.onnx', cameras=list(CAMERA_NAMES))
    data_config = labelling_dataset_config(model, control_period_s)
    bags = find_bags(bag_dirs)
    if not bags:
        raise ValueError(f'no episode bags under {bag_dirs}')
    scored, skipped = [], []
    for bag in bags:
        try:
            episode = load_episode(bag, data_config)
            if episode.verified_success is None:
                raise ValueError('no ground truth: no sim/success stream and no verdict; record '
                                 'one with `selfimprove bag verdict --failed` or `--succeeded`')
            scored.append((episode, predict_steps_to_go(
                model, *episode_inputs(episode, model.codec))))
        except (BadBag, ValueError) as error:
            skipped.append((bag, str(error)))
            print(f'skipping {bag}: {error}')
    return model.version, scored, skipped
