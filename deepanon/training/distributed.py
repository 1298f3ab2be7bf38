"""One process per device: torchrun's environment -> process group (nccl on GPU, gloo on CPU); one process otherwise."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Process:
    """This process's place in the job; ``world_size`` 1 without torchrun."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> this process's CUDA device when there is one, else CPU; ``cuda`` -> cuda:<local rank>."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda but CUDA is not available")
        return torch.device("cuda", local_rank)
    return torch.device(name)


def start(device: str) -> Process:
    """Join the torchrun job described by RANK/WORLD_SIZE/LOCAL_RANK, or run alone when they are absent."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    resolved = resolve_device(device, local_rank)
    if resolved.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed batch and crop sizes: let cuDNN pick the fastest kernels
    if world_size > 1 and not dist.is_initialized():
        if resolved.type == "cuda":
            torch.cuda.set_device(resolved)
        dist.init_process_group("nccl" if resolved.type == "cuda" else "gloo", rank=rank, world_size=world_size)
    return Process(rank, world_size, resolved)


def any_process(process: Process, flag: bool) -> bool:
    """Whether ``flag`` is true in any process of the job (every process calls this at the same step)."""
    if not process.distributed:
        return flag
    value = torch.tensor([float(flag)], device=process.device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def stop(process: Process) -> None:
    if process.distributed and dist.is_initialized():
        dist.destroy_process_group()
