"""Multi-process training with PyTorch DDP, started by ``torchrun`` (nothing home-made).

``torchrun --nproc_per_node N -m edgeecg train ...`` starts N copies of the CLI with ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK`` set. Each loads the data, :func:`setup` joins them into one
process group (``nccl`` on GPUs, ``gloo`` on CPUs), :func:`edgeecg.train.train_model` wraps the
model in ``DistributedDataParallel`` and gives each rank its share of every global batch, and only
rank 0 writes the run directory (:func:`edgeecg.run.save_run`); the others get its metrics.
Without ``WORLD_SIZE`` > 1 nothing here changes anything: one process, as before.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass

import torch

from edgeecg.errors import EdgeECGError


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def env_context() -> Context:
    """Rank, world size and local rank from ``torchrun``'s environment (one process without it)."""
    try:
        return Context(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                       int(os.environ.get("LOCAL_RANK", 0)))
    except ValueError:
        raise EdgeECGError("RANK, WORLD_SIZE and LOCAL_RANK must be integers (as torchrun sets them)") from None


def initialized() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def is_main() -> bool:
    """Whether this process writes outputs: rank 0, or the only process."""
    return not initialized() or torch.distributed.get_rank() == 0


def setup(device_name: str) -> tuple[Context, torch.device]:
    """Join the process group (once) and pick this rank's device: ``cuda:LOCAL_RANK`` where CUDA is
    wanted (``auto`` with a GPU, or ``cuda``), else the CPU."""
    ctx = env_context()
    wants_cuda = device_name == "cuda" or (device_name == "auto" and torch.cuda.is_available())
    if device_name == "cuda" and not torch.cuda.is_available():
        raise EdgeECGError("--device cuda: no CUDA device is available")
    if ctx.world == 1:
        return ctx, torch.device("cuda" if wants_cuda else "cpu")
    if wants_cuda:
        if ctx.local_rank >= torch.cuda.device_count():
            raise EdgeECGError(f"LOCAL_RANK {ctx.local_rank}: only {torch.cuda.device_count()} GPU(s) on this node "
                               f"(--nproc_per_node at most the GPU count)")
        torch.cuda.set_device(ctx.local_rank)
        device = torch.device("cuda", ctx.local_rank)
    else:
        device = torch.device("cpu")
    if not initialized():
        torch.distributed.init_process_group(backend="nccl" if wants_cuda else "gloo")
        atexit.register(cleanup)
    return ctx, device


def cleanup() -> None:
    if initialized():
        torch.distributed.destroy_process_group()


def broadcast(obj, src: int = 0):
    """``obj`` of rank ``src`` on every rank (picklable objects; a no-op in one process)."""
    if not initialized():
        return obj
    box = [obj]
    torch.distributed.broadcast_object_list(box, src=src)
    return box[0]


def sync_buffers(module: torch.nn.Module, src: int = 0) -> None:
    """Every buffer (BatchNorm statistics, ...) of ``module`` as rank ``src`` holds it."""
    if initialized():
        for b in module.buffers():
            torch.distributed.broadcast(b.data, src=src)
