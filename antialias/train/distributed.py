"""Process-group setup for runs launched by ``torchrun`` (or any launcher that sets its variables).

The engine never launches processes itself: run ``torchrun --nproc_per_node N -m antialias train ...``
(``python -m torch.distributed.run`` is the same program) and every process reads its rank from the
environment. Without those variables the run is a single process and no process group is created.

Convention:
    NCCL on CUDA devices, Gloo on CPU. Process ``LOCAL_RANK`` uses ``cuda:LOCAL_RANK``. Rank 0 is the
    only process that writes files and shows progress bars.
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from antialias.devices import resolve_device

__all__ = [
    "DistributedContext",
    "all_gather_objects",
    "all_reduce_sum",
    "barrier",
    "init_distributed",
    "shutdown_distributed",
]

logger = logging.getLogger(__name__)

_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in the run.

    Attributes:
        rank: global rank, 0-based.
        world_size: number of processes.
        local_rank: rank on this machine (selects the GPU).
        device: the device this process trains on.
        backend: ``"nccl"``, ``"gloo"`` or ``None`` for a single process without a process group.
        owns_group: the process group was created by :func:`init_distributed` (and is destroyed by
            :func:`shutdown_distributed`); False when the caller had created it.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that logs and writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when a process group is in use."""
        return self.backend is not None


def _env_int(name: str) -> int:
    value = os.environ[name]
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} is not an integer") from None


def init_distributed(device: str | None = None, *, timeout_s: float = 1800.0) -> DistributedContext:
    """Join the process group described by torchrun's environment, or run as a single process.

    Args:
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``..., or ``None`` for CUDA when available.
        timeout_s: how long collective operations wait for the other processes.

    Returns:
        This process's :class:`DistributedContext`.

    Raises:
        ValueError: the launcher's variables are incomplete or not integers, or ``device`` is bad.
    """
    world_size = _env_int("WORLD_SIZE") if "WORLD_SIZE" in os.environ else 1
    if world_size <= 1:
        local_rank = _env_int("LOCAL_RANK") if "LOCAL_RANK" in os.environ else 0
        return DistributedContext(device=resolve_device(device, local_rank=local_rank))
    missing = [name for name in _ENV if name not in os.environ]
    if missing:
        raise ValueError(
            f"WORLD_SIZE={world_size} but {missing} are not set; launch with torchrun, which sets "
            f"{list(_ENV)} for every process"
        )
    rank, local_rank = _env_int("RANK"), _env_int("LOCAL_RANK")
    resolved = resolve_device(device, local_rank=local_rank)
    backend = "nccl" if resolved.type == "cuda" else "gloo"
    if resolved.type == "cuda":
        torch.cuda.set_device(resolved)
    owns_group = not dist.is_initialized()
    if owns_group:
        # Binding the group to the device lets NCCL set up eagerly and silences a warning.
        kwargs: dict[str, Any] = {"device_id": resolved} if resolved.type == "cuda" else {}
        dist.init_process_group(
            backend=backend, timeout=datetime.timedelta(seconds=timeout_s), **kwargs
        )
    else:
        backend = str(dist.get_backend())  # the caller's group, used as it is
    logger.debug(f"rank {rank}/{world_size} (local {local_rank}) on {resolved} with {backend}")
    return DistributedContext(rank, world_size, local_rank, resolved, backend, owns_group)


def shutdown_distributed(ctx: DistributedContext) -> None:
    """Leave the process group joined by :func:`init_distributed` (no-op for a single process)."""
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistributedContext) -> None:
    """Wait until every process gets here (no-op for a single process)."""
    if ctx.distributed:
        dist.barrier(device_ids=[ctx.device.index] if ctx.backend == "nccl" else None)


def all_reduce_sum(ctx: DistributedContext, values: list[float]) -> list[float]:
    """Sum ``values`` element-wise over all processes (float64, on the collective's device)."""
    if not ctx.distributed:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=ctx.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def all_gather_objects(ctx: DistributedContext, obj: Any) -> list[Any]:
    """Gather one picklable object from every process, in rank order, on every process."""
    if not ctx.distributed:
        return [obj]
    gathered: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(gathered, obj)
    return gathered
