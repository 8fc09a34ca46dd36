"""torchrun support: process group set-up, rank facts, and small collectives.

`torchrun --nproc_per_node N train.py ...` sets RANK, LOCAL_RANK and
WORLD_SIZE; without them the run is a single process and every helper here is
a no-op. Gloo is used on CPU, NCCL on CUDA.
"""
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device_choice: str) -> DistInfo:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_choice != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(rank, world_size, local_rank)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def all_gather_objects(info: DistInfo, value) -> list:
    """Every rank's `value`, in rank order (a one-element list when not distributed)."""
    if not info.enabled:
        return [value]
    gathered = [None] * info.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def average_gradients(info: DistInfo, tensors) -> None:
    """All-reduce the .grad of tensors that DDP does not own (GPP's indicators)."""
    if not info.enabled:
        return
    for tensor in tensors:
        if tensor.grad is not None:
            dist.all_reduce(tensor.grad)
            tensor.grad /= info.world_size


def broadcast_flag(info: DistInfo, flag: bool) -> bool:
    """True on every rank if any rank says True (a NaN loss on one rank stops them all)."""
    if not info.enabled:
        return flag
    value = torch.tensor([1.0 if flag else 0.0])
    if dist.get_backend() == "nccl":
        value = value.cuda()
    dist.all_reduce(value)
    return bool(value.item() > 0)


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
