"""`selfimprove bag`: describe, validate, recover and import episode bags."""

import sys

import yaml

HELP = ('inspect (info), validate (check), repair (recover), judge (verdict) or import '
        '(import-act) episode bags')


def add_arguments(parser):
    """Arguments of `bag` and its verbs."""
    verbs = parser.add_subparsers(dest='verb', required=True, metavar='VERB')
    info = verbs.add_parser('info', help='topics, counts, rates, duration and episode metadata')
    info.add_argument('bags', nargs='+', help='bag directories')
    check = verbs.add_parser('check', help='report missing topics, gaps, bad encodings')
    check.add_argument('bags', nargs='+', help='bag directories, or folders of them (each bag '
                       'inside is checked)')
    check.add_argument('--expect', nargs='*', default=None,
                       help='topics that must be present (default: those in the bag)')
    check.add_argument('--max-gap-s', type=float, default=1.0,
                       help='largest allowed gap between messages of one topic [s]')
    recover = verbs.add_parser('recover', help='restore a bag whose recorder was killed')
    recover.add_argument('bags', nargs='+', help='bag directories')
    verdict = verbs.add_parser(
        'verdict', help='record whether episodes really succeeded (a person\'s word, where no '
        'simulator judged): failed ones are never cloned and can teach the reward model failure')
    verdict.add_argument('bags', nargs='+', help='bag directories')
    said = verdict.add_mutually_exclusive_group(required=True)
    said.add_argument('--failed', dest='success', action='store_false',
                      help='the task was not achieved, whatever the detector said')
    said.add_argument('--succeeded', dest='success', action='store_true',
                      help='the task was achieved')
    verdict.add_argument('--note', default='', help='why, for whoever reads the bag later')
    verdict.add_argument('--by', default='operator', help='who judged (default: operator)')
    act = verbs.add_parser('import-act', help='convert ACT / ALOHA-recorder HDF5 episodes '
                           '(raw or JPEG-compressed images) into episode bags')
    act.add_argument('source', help='directory of ACT episode_*.hdf5 files, or one file')
    act.add_argument('--out', required=True, help='directory that receives the bags')
    act.add_argument('--task', default=None,
                     help='task name (default: from the source directory, e.g. '
                     'sim_transfer_cube_scripted -> transfer_cube)')
    act.add_argument('--instruction', default=None,
                     help='instruction (default: the sim task\'s, else empty)')
    act.add_argument('--robot', default='aloha1', help='robot namespace of the topics')
    act.add_argument('--fps', type=float, default=50.0,
                     help='frame rate of the ACT recording [Hz]; subsampled to 10 Hz ticks')
    act.add_argument('--image-order', choices=('rgb', 'bgr'), default='rgb',
                     help='channel order the recorder stored (compressed files decode to it; '
                     'bgr swaps to the contract\'s rgb)')


def run(args) -> int:
    """Dispatch to the verb; exit 1 if any bag has a problem."""
    return {'info': run_info, 'check': run_check, 'recover': run_recover,
            'verdict': run_verdict, 'import-act': run_import_act}[args.verb](args)


def existing(paths) -> list:
    """Return `paths`; refuse (exit 2) before touching any if one does not exist."""
    import os
    missing = [path for path in paths if not os.path.exists(path)]
    if missing:
        raise FileNotFoundError(f'{", ".join(missing)} does not exist; nothing was changed. '
                                'Pass episode bag directories (selfimprove bag info shows one)')
    return list(paths)


def bags_to_check(paths) -> list:
    """Expand each folder of bags into its bags; a folder holding none is checked as a bag."""
    from selfimprove_ros.data.episode_loader import find_bags, is_bag_dir
    bags = []
    for path in existing(paths):
        inside = [] if is_bag_dir(path) else find_bags(path)
        bags.extend(inside or [path])
    return bags


def run_info(args) -> int:
    """Print each bag's description as YAML."""
    from selfimprove_ros.bag.inspection import bag_info
    for path in args.bags:
        print(yaml.safe_dump({path: bag_info(path)}, sort_keys=False, width=99))
    return 0


def run_check(args) -> int:
    """Print each bag's problems; exit 1 if any bag has an error (warnings only print)."""
    from selfimprove_ros.bag.inspection import check_bag
    bags = bags_to_check(args.bags)
    failed = 0
    for path in bags:
        problems = check_bag(path, expected_topics=args.expect, max_gap_s=args.max_gap_s)
        errors = [p for p in problems if p.severity == 'error']
        failed += bool(errors)
        print(f'{"PROBLEM" if errors else "OK":7s} {path}')
        for problem in problems:
            print(f'  - {problem}')
    if failed:
        print(f'{failed} of {len(bags)} bags have problems', file=sys.stderr)
    return 1 if failed else 0


def run_recover(args) -> int:
    """Recover each bag and print what was restored."""
    from selfimprove_ros.bag.recovery import recover_bag
    for path in args.bags:
        print(recover_bag(path))
    return 0


def run_verdict(args) -> int:
    """Record the verdict in each bag; exit 1 if any bag refused it (the others keep theirs)."""
    from selfimprove_ros.bag.verdict import record_verdict
    refused = 0
    for path in existing(args.bags):
        try:
            record = record_verdict(path, args.success, note=args.note, by=args.by)
        except ValueError as error:
            refused += 1
            print(f'REFUSED {path}: {error}', file=sys.stderr)
            continue
        print(f'{"succeeded" if args.success else "failed":9s} {path} (outcome was '
              f'{record.outcome}: {record.outcome_cause or "no cause recorded"})')
    return 1 if refused else 0


def run_import_act(args) -> int:
    """Convert ACT episodes into bags; exit 1 if any file failed."""
    from selfimprove_ros.data.act_hdf5 import import_act_dir
    bags, failures = import_act_dir(args.source, args.out, task=args.task,
                                    instruction=args.instruction, robot=args.robot,
                                    fps=args.fps, image_order=args.image_order)
    print(f'{len(bags)} episode bags written to {args.out}; {len(failures)} files failed')
    return 1 if failures else 0
