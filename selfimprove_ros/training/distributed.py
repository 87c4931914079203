"""DistributedDataParallel set-up from torchrun's environment; a no-op for one process."""

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistContext:
    """Where this process sits in a (possibly one-process) training job."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device('cpu')

    @property
    def is_main(self) -> bool:
        """Return whether this process writes checkpoints, logs and reports."""
        return self.rank == 0


def resolve_device(name: str) -> torch.device:
    """Turn 'auto' / 'cpu' / 'cuda[:N]' into a device, failing clearly if CUDA is missing."""
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if name.startswith('cuda') and not torch.cuda.is_available():
        raise RuntimeError(f'device {name!r} asked for, but torch sees no CUDA device; use '
                           "device 'cpu' or 'auto'")
    return torch.device(name)


def init_distributed(device_name: str) -> DistContext:
    """Join the process group torchrun describes (WORLD_SIZE > 1), else run alone."""
    world = int(os.environ.get('WORLD_SIZE', '1'))
    if world == 1:
        return DistContext(device=resolve_device(device_name))
    rank, local_rank = int(os.environ['RANK']), int(os.environ.get('LOCAL_RANK', '0'))
    device = resolve_device(device_name)
    if device.type == 'cuda':
        device = torch.device('cuda', local_rank)
        torch.cuda.set_device(device)
    # NCCL for GPUs; gloo runs the same code on CPUs (and in the tests here).
    dist.init_process_group('nccl' if device.type == 'cuda' else 'gloo')
    return DistContext(rank=rank, world=world, device=device)


def shutdown_distributed(ctx: DistContext):
    """Leave the process group, if there is one."""
    if ctx.world > 1 and dist.is_initialized():
        dist.destroy_process_group()
