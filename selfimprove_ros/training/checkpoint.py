"""Checkpoints that are complete (config, codec, optimizer, history) and written atomically."""

import os

import torch

from selfimprove_ros.core.atomic_file import atomic_write

LAST, BEST_STEPS, BEST_BC = 'last.pt', 'best_steps_to_go.pt', 'best_bc.pt'
# What each checkpoint is for (the paper picks them by use, not by one validation number):
# the reward model is the best steps-to-go validation checkpoint; the policy is usually `last`,
# because BC kept improving as a policy long past its best validation loss.
ROLES = {'last': LAST, 'best_steps_to_go': BEST_STEPS, 'best_bc': BEST_BC}


def save_checkpoint(path: str, state: dict):
    """Write `state` to `path` via a temporary file and a rename (never half-written)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_write(path, binary=True) as stream:
        torch.save(state, stream)


def load_checkpoint(path: str) -> dict:
    """Load a checkpoint onto the CPU, with a clear error for missing or foreign files."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'no checkpoint at {path}; train first (selfimprove train sft)')
    try:
        # weights_only: tensors and plain data only. A checkpoint from a shared directory is
        # untrusted input, and a full unpickler would run whatever code it names.
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # noqa: B902 - torch raises many types for corrupt files
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f'checkpoint {path} cannot be read safely ({first}); it is corrupt, '
                         'not a selfimprove checkpoint, or holds objects other than tensors '
                         'and plain data') from error
    missing = [key for key in ('model', 'config', 'codec', 'step') if key not in state]
    if missing:
        raise ValueError(f'checkpoint {path} lacks {missing}; not a selfimprove checkpoint')
    return state


def resolve_checkpoint(run_dir: str, which: str) -> str:
    """Return the path of checkpoint `which` (a role in ROLES, or a file path) of a run."""
    if which in ROLES:
        return os.path.join(run_dir, 'checkpoints', ROLES[which])
    return which


def restore_model(state: dict):
    """Rebuild (model, codec, sft_config) from a checkpoint's state, in eval mode on the CPU."""
    from selfimprove_ros.model.codec import ModelCodec
    from selfimprove_ros.model.two_head_model import TwoHeadModel
    from selfimprove_ros.training.sft_config import SftConfig
    config = SftConfig.from_dict(state['config'])
    if config.model.encoder in ('resnet18', 'efficientnet_lite0'):
        # The state dict carries the trained weights; the original .pth need not be here.
        config.model.pretrained_path = ''
    codec = ModelCodec.from_dict(state['codec'], config.model)
    model = TwoHeadModel(config.model, codec.vocab.size, codec.joint_mean, codec.joint_std)
    model.load_state_dict(state['model'])
    return model.eval(), codec, config
