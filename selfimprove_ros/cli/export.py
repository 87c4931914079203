"""`selfimprove export`: a run's checkpoints -> policy.onnx + reward.onnx + manifest.json."""

HELP = 'export a training run as an ONNX model directory the robot loads'


def add_arguments(parser):
    """Arguments of `export`."""
    parser.add_argument('run_dir', help='run directory of `selfimprove train sft`')
    parser.add_argument('--out', required=True, help='model directory to create (must not exist)')
    parser.add_argument('--policy', default='last',
                        help="policy checkpoint: last (default: the paper trains the policy far "
                        "past its best validation loss), best_bc, a path, or '' for none")
    parser.add_argument('--reward', default='best_steps_to_go',
                        help="reward checkpoint: best_steps_to_go (default), last, a path, or ''")
    parser.add_argument('--version', default='', help='model version (default: from the run)')
    parser.add_argument('--sign-key', default='',
                        help='station key file: sign the model (manifest.sig) for robots that '
                        'only load models signed with it (policy_node.model_key_file)')


def run(args) -> int:
    """Export and print where the model went."""
    from selfimprove_ros.model.manifest import read_key, read_manifest, sign_model_dir
    from selfimprove_ros.training.run_export import export_run
    key = read_key(args.sign_key) if args.sign_key else b''  # refused before any export
    out = export_run(args.run_dir, args.out, args.policy, args.reward, args.version)
    if key:
        sign_model_dir(out, key)
    manifest = read_manifest(out)
    print(f'exported {manifest["version"]} to {out}{" (signed)" if key else ""}:')
    for name, entry in manifest['files'].items():
        print(f'  {name}: {entry["bytes"] / 1e6:.1f} MB, sha256 {entry["sha256"][:16]}..., '
              f'ORT-torch max error {manifest["parity"]["max_abs_error"][name]:.2g}')
    return 0
