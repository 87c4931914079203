"""`selfimprove bag`: describe, validate and recover episode bags."""

import sys

import yaml

HELP = 'inspect (info), validate (check) or repair (recover) episode bags'


def add_arguments(parser):
    """Arguments of `bag` and its verbs."""
    verbs = parser.add_subparsers(dest='verb', required=True, metavar='VERB')
    info = verbs.add_parser('info', help='topics, counts, rates, duration and episode metadata')
    info.add_argument('bags', nargs='+', help='bag directories')
    check = verbs.add_parser('check', help='report missing topics, gaps, bad encodings')
    check.add_argument('bags', nargs='+', help='bag directories')
    check.add_argument('--expect', nargs='*', default=None,
                       help='topics that must be present (default: those in the bag)')
    check.add_argument('--max-gap-s', type=float, default=1.0,
                       help='largest allowed gap between messages of one topic [s]')
    recover = verbs.add_parser('recover', help='restore a bag whose recorder was killed')
    recover.add_argument('bags', nargs='+', help='bag directories')


def run(args) -> int:
    """Dispatch to the verb; exit 1 if any bag has a problem."""
    return {'info': run_info, 'check': run_check, 'recover': run_recover}[args.verb](args)


def run_info(args) -> int:
    """Print each bag's description as YAML."""
    from selfimprove_ros.bag.inspection import bag_info
    for path in args.bags:
        print(yaml.safe_dump({path: bag_info(path)}, sort_keys=False, width=99))
    return 0


def run_check(args) -> int:
    """Print each bag's problems; exit 1 if any bag has an error (warnings only print)."""
    from selfimprove_ros.bag.inspection import check_bag
    failed = 0
    for path in args.bags:
        problems = check_bag(path, expected_topics=args.expect, max_gap_s=args.max_gap_s)
        errors = [p for p in problems if p.severity == 'error']
        failed += bool(errors)
        print(f'{"PROBLEM" if errors else "OK":7s} {path}')
        for problem in problems:
            print(f'  - {problem}')
    if failed:
        print(f'{failed} of {len(args.bags)} bags have problems', file=sys.stderr)
    return 1 if failed else 0


def run_recover(args) -> int:
    """Recover each bag and print what was restored."""
    from selfimprove_ros.bag.recovery import recover_bag
    for path in args.bags:
        print(recover_bag(path))
    return 0
