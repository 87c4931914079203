"""`selfimprove bag`: describe, validate, recover and import episode bags."""

import sys

import yaml

HELP = ('inspect (info), validate (check), repair (recover), judge (verdict), import '
        '(import-act, import-lerobot) or export (export-lerobot) episode bags')


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
    export = verbs.add_parser('export-lerobot', help='write episode bags (demonstrations and '
                              'practice episodes) as a LeRobot v3.0 dataset')
    export.add_argument('bags', nargs='+', help='bag directories, or folders of them')
    export.add_argument('--out', required=True, help='new directory for the dataset')
    export.add_argument('--fps', type=int, default=10,
                        help='control rate the bags are aligned to [Hz]: one frame per tick')
    export.add_argument('--cameras', nargs='+', default=None,
                        help='cameras to export (default: those of the first bag)')
    export.add_argument('--image-size', default=None, metavar='HxW',
                        help='resize frames to H x W px (default: the first camera\'s size)')
    export.add_argument('--codec', choices=('libsvtav1', 'libx264'), default=None,
                        help='video codec (default: libsvtav1 if ffmpeg has it, else libx264)')
    export.add_argument('--crf', type=int, default=30,
                        help='video quality: lower is closer to the frames and larger '
                        '(LeRobot\'s default 30)')
    lerobot = verbs.add_parser('import-lerobot', help='convert a LeRobot v3.0 ALOHA dataset '
                               '(14 joints, cam_high/cam_low/wrist cameras) into episode bags')
    lerobot.add_argument('dataset', help='dataset root (the directory holding meta/info.json)')
    lerobot.add_argument('--out', required=True, help='directory that receives the bags')
    lerobot.add_argument('--robot', default=None,
                         help='robot namespace (default: the exported one, else aloha1)')
    lerobot.add_argument('--task', default=None,
                         help='task name (default: the exported one, else the dataset\'s '
                         'directory name)')
    lerobot.add_argument('--camera', action='append', default=[], metavar='NAME=CAM',
                         help='map image feature NAME (e.g. top or observation.images.top) '
                         'to contract camera CAM; NAME= leaves it out (repeatable)')
    lerobot.add_argument('--joint-order', choices=('names', 'contract'), default='names',
                         help='names: reorder by the features\' joint names; contract: the '
                         'values are already in the contract order')
    lerobot.add_argument('--control-period-s', type=float, default=0.1,
                         help='tick period [s]; a dataset recorded faster is subsampled')
    lerobot.add_argument('--outcome', default='success',
                         help='outcome of episodes of datasets not exported here (LeRobot '
                         'datasets are demonstrations; unknown for mixed ones)')


def run(args) -> int:
    """Dispatch to the verb; exit 1 if any bag has a problem."""
    return {'info': run_info, 'check': run_check, 'recover': run_recover,
            'verdict': run_verdict, 'import-act': run_import_act,
            'export-lerobot': run_export_lerobot,
            'import-lerobot': run_import_lerobot}[args.verb](args)


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


def image_size(text):
    """Return (height, width) [px] of 'HxW'; None for None."""
    if text is None:
        return None, None
    try:
        height, width = (int(part) for part in text.lower().split('x'))
    except ValueError:
        raise ValueError(f'--image-size must be HxW in px, e.g. 480x640, got {text!r}') from None
    return height, width


def run_export_lerobot(args) -> int:
    """Export bags as a LeRobot dataset; exit 1 if any bag was skipped."""
    from selfimprove_ros.data.lerobot_export import export_lerobot
    height, width = image_size(args.image_size)
    report = export_lerobot(existing(args.bags), args.out, fps=args.fps, cameras=args.cameras,
                            image_height=height, image_width=width, codec=args.codec,
                            crf=args.crf)
    print(f'{report.episodes} episodes ({report.frames} frames, {report.codec}) written to '
          f'{report.out_dir} in {report.seconds:.1f} s; {len(report.skipped)} bags skipped')
    return 1 if report.skipped else 0


def camera_map(pairs) -> dict:
    """Return {name: camera} of NAME=CAM arguments."""
    mapping = {}
    for pair in pairs:
        name, sep, cam = pair.partition('=')
        if not sep or not name:
            raise ValueError(f'--camera takes NAME=CAM (e.g. top=cam_high), got {pair!r}')
        mapping[name] = cam
    return mapping


def run_import_lerobot(args) -> int:
    """Convert a LeRobot dataset into bags; exit 1 if any episode failed."""
    from selfimprove_ros.data.lerobot_import import import_lerobot
    bags, failures = import_lerobot(args.dataset, args.out, robot=args.robot, task=args.task,
                                    cameras=camera_map(args.camera),
                                    joint_order_mode=args.joint_order,
                                    control_period_s=args.control_period_s,
                                    outcome=args.outcome)
    print(f'{len(bags)} episode bags written to {args.out}; {len(failures)} episodes failed')
    return 1 if failures else 0
