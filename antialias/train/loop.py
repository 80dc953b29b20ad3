"""One epoch of training and one evaluation, the two loops of a run (as torchvision's references).

:func:`train_one_epoch` runs the optimiser steps of an epoch (gradient accumulation, DDP, autocast,
the gradient scaler, the per-step schedule, all optional) and stops at the first non-finite loss: the
engine and the demo (``antialias.apps.demo``) both train with it;
:func:`evaluate` measures top-1/top-5 accuracy and crop consistency on this process's share of the
validation set and sums them over the processes.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Subset

from antialias.devices import resolve_device
from antialias.train.config import TrainConfig, _num_workers
from antialias.train.distributed import DistributedContext, all_reduce_sum

__all__ = [
    "EpochStats",
    "NonFiniteLossError",
    "autocast",
    "epoch_generator",
    "evaluate",
    "train_one_epoch",
]


class NonFiniteLossError(FloatingPointError, ValueError):
    """Training stopped because the loss became NaN or infinite (the last good checkpoint is kept)."""


def autocast(amp: str, device: torch.device) -> contextlib.AbstractContextManager:
    """Mixed precision for ``amp`` (``"none"``, ``"bf16"`` or ``"fp16"``) on ``device``'s type."""
    if amp == "none":
        return contextlib.nullcontext()
    return torch.autocast(
        device_type=device.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16
    )


@dataclass
class EpochStats:
    """What one epoch on this process saw (sum over the processes with ``all_reduce_sum``).

    Attributes:
        loss_sum: the loss summed over the images (the batch mean times the batch size), float64.
        correct: images whose top-1 prediction was right.
        count: images trained on.
        seconds: wall time of the epoch.
    """

    loss_sum: float
    correct: float
    count: int
    seconds: float

    @property
    def loss(self) -> float:
        """The mean training loss per image."""
        return self.loss_sum / self.count if self.count else math.nan


def train_one_epoch(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    *,
    steps: int | None = None,
    criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    device: torch.device | None = None,
    accum_steps: int = 1,
    scaler: torch.amp.GradScaler | None = None,
    amp: str = "none",
    channels_last: bool = False,
    ddp: nn.parallel.DistributedDataParallel | None = None,
    ctx: DistributedContext | None = None,
    epoch: int = 0,
    progress: str | None = None,
) -> EpochStats:
    """Run the optimiser steps of one epoch, as torchvision's references do: forward, loss, backward, step.

    Each step reads ``accum_steps`` micro-batches and sums their gradients (DDP's all-reduce runs on
    the last one only), then steps the (scaled) optimiser and the per-step schedule. A step whose
    loss is not finite stops the epoch before the optimiser applies it (on every process).

    Args:
        model: the model to train (the DDP or compiled wrapper when there is one).
        batches: ``(images, labels)`` micro-batches: a ``DataLoader`` or any iterable.
        optimizer: the optimiser; its gradients are zeroed after each step.
        steps: optimiser steps to run; ``None``: until ``batches`` runs out.
        criterion: ``loss = criterion(output, labels)``, a batch mean.
        scheduler: stepped after every optimiser step; ``None``: none.
        device: where the batches go; ``None``: the model's device.
        accum_steps: micro-batches per optimiser step.
        scaler: the fp16 gradient scaler; ``None``: none.
        amp: autocast dtype, ``"none"``, ``"bf16"`` or ``"fp16"``.
        channels_last: feed the images in channels-last memory format.
        ddp: the ``DistributedDataParallel`` wrapper inside ``model`` (its ``no_sync`` skips all-reduces).
        ctx: the process group (the non-finite check stops every process); ``None``: one process.
        epoch: the epoch's index, for messages.
        progress: the progress bar's title (shown on rank 0); ``None``: no bar.

    Returns:
        This process's :class:`EpochStats`.

    Raises:
        NonFiniteLossError: the loss became NaN or infinite.

    Shape:
        - images: :math:`(N, C, H, W)`; labels: :math:`(N,)` class indices.
    """
    from tqdm.auto import tqdm

    dev = resolve_device(device, model=model)
    scaler = scaler or torch.amp.GradScaler(
        dev.type, enabled=False
    )  # disabled: the loss and step pass through
    model.train()
    loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
    correct = torch.zeros((), dtype=torch.float64, device=dev)
    count = 0
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    non_blocking = dev.type == "cuda"
    iterator: Iterator = iter(batches)
    world = 1 if ctx is None else ctx.world_size
    bar = tqdm(
        desc=progress,
        unit="img",
        unit_scale=True,
        dynamic_ncols=True,
        leave=False,
        disable=progress is None or (ctx is not None and not ctx.is_main),
    )
    start = time.perf_counter()
    with bar:
        index = 0
        while steps is None or index < steps:
            step_losses, counted = [], count
            for micro in range(accum_steps):
                batch = next(iterator, None)
                if batch is None:
                    if steps is None and micro == 0:
                        break
                    raise ValueError(
                        f"batches ran out at step {index + 1} of {steps or 'the epoch'}, after {micro} of its "
                        f"{accum_steps} micro-batches; give at least steps x accum_steps batches"
                    )
                images = (
                    batch[0]
                    .to(dev, non_blocking=non_blocking)
                    .contiguous(memory_format=memory_format)
                )
                labels = batch[1].to(dev, non_blocking=non_blocking)
                # Skip DDP's all-reduce on all but the last accumulation step.
                last = micro == accum_steps - 1
                with contextlib.nullcontext() if last or ddp is None else ddp.no_sync():
                    with autocast(amp, dev):
                        output = model(images)
                        loss = criterion(output, labels)
                    scaler.scale(loss / accum_steps).backward()
                step_losses.append(loss.detach().float())
                with torch.no_grad():
                    loss_sum += loss.detach().double() * labels.shape[0]
                    correct += (output.argmax(dim=1) == labels).sum().double()
                    count += labels.shape[0]
            if not step_losses:
                break
            _check_finite_loss(torch.stack(step_losses), ctx, epoch, index, optimizer)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            if scheduler is not None:
                scheduler.step()
            index += 1
            if index == 1 and steps is not None:
                bar.total = steps * count * world  # images of the epoch, over the processes
            bar.update((count - counted) * world)
            # loss.item() waits for the GPU: refresh the displayed loss only now and then.
            if not bar.disable and index % 10 in (0, 1):
                bar.set_postfix(
                    loss=f"{loss.item():.4f}", lr=f"{optimizer.param_groups[0]['lr']:.4g}"
                )
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return EpochStats(loss_sum.item(), correct.item(), count, time.perf_counter() - start)


def _check_finite_loss(
    losses: torch.Tensor,
    ctx: DistributedContext | None,
    epoch: int,
    index: int,
    optimizer: torch.optim.Optimizer,
) -> None:
    """Stop at the first NaN/inf loss, before the optimiser applies its gradients (every process stops)."""
    bad = float((~torch.isfinite(losses)).any())
    if ctx is not None and ctx.distributed:
        (bad,) = all_reduce_sum(ctx, [bad])
    if bad:
        value = next((float(v) for v in losses.tolist() if not math.isfinite(v)), float("nan"))
        raise NonFiniteLossError(
            f"training stopped: the loss is {value} (not finite) at epoch {epoch + 1}, step {index + 1} of the "
            f"epoch, with lr {optimizer.param_groups[0]['lr']:.4g}; the weights diverged (a learning rate too "
            "high for this batch size?). Nothing of this epoch was saved; the checkpoints of earlier epochs are "
            "kept: lower lr and start again, or resume from the last checkpoint"
        )


def epoch_generator(seed: int, epoch: int, rank: int) -> torch.Generator:
    """A generator for (``seed``, ``epoch``, ``rank``): off the global RNG, and the same again after a resume.

    The engine's loaders draw their workers' base seeds from it, and the consistency metric its crops.
    """
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch * 1_009 + rank)


def evaluate(
    *,
    bare: nn.Module,
    data: Any,
    config: TrainConfig,
    ctx: DistributedContext,
    epoch: int,
    val_batch: int,
) -> dict[str, float | None]:
    """Top-1/top-5 accuracy and crop consistency of ``bare`` on this process's share of ``data.val_accuracy`` and
    ``data.val_consistency``, summed over the processes: ``{"val_top1", "val_top5", "consistency"}`` (``None``: no image)."""
    from antialias.metrics import accuracy, crop_consistency

    shard = list(range(ctx.rank, len(data.val_accuracy), ctx.world_size))
    n, progress = float(len(shard)), config.progress and ctx.is_main

    def loader(dataset: Any) -> DataLoader:
        return DataLoader(
            Subset(dataset, shard),
            batch_size=val_batch,
            num_workers=_num_workers(config),
            pin_memory=ctx.device.type == "cuda",
        )

    totals = [0.0, 0.0, 0.0, 0.0, 0.0]  # top1*n, top5*n, n, consistency*n, n (consistency)
    if shard:
        with autocast(config.amp, ctx.device):
            # With fewer than 5 classes, top-5 counts every image as correct (the metric's rule).
            acc = accuracy(
                bare, loader(data.val_accuracy), topk=(1, 5), device=ctx.device, progress=progress
            )
        totals[:3] = [acc["top1"] * n, acc["top5"] * n, n]
        if config.consistency_passes > 0:
            with autocast(config.amp, ctx.device):
                result = crop_consistency(
                    bare,
                    loader(data.val_consistency),
                    crop_size=config.crop_size,
                    max_offset=config.max_offset,
                    passes=config.consistency_passes,
                    generator=epoch_generator(config.seed, epoch, ctx.rank),
                    device=ctx.device,
                    progress=progress,
                )
            totals[3:] = [result.consistency * n, n]
    top1, top5, n, cons, n_cons = all_reduce_sum(ctx, totals)
    return {
        "val_top1": top1 / n if n else None,
        "val_top5": top5 / n if n else None,
        "consistency": cons / n_cons if n_cons else None,
    }


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"
