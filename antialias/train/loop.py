"""One epoch of training and one evaluation, the two loops of a run (as torchvision's references).

:func:`train_one_epoch` runs the optimiser steps of an epoch (gradient accumulation, DDP, autocast,
the gradient scaler, the per-step schedule) and stops at the first non-finite loss;
:func:`evaluate` measures top-1/top-5 accuracy and crop consistency on this process's share of the
validation set and sums them over the processes.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from antialias.train.config import TrainConfig, _num_workers
from antialias.train.distributed import DistributedContext, all_reduce_sum
from antialias.train.recipes import Recipe

__all__ = ["NonFiniteLossError", "evaluate", "train_one_epoch"]


class NonFiniteLossError(FloatingPointError, ValueError):
    """Training stopped because the loss became NaN or infinite (the last good checkpoint is kept)."""


def _autocast(config: TrainConfig, device: torch.device) -> contextlib.AbstractContextManager:
    if config.amp == "none":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if config.amp == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


class _Epoch:
    """Running sums of one epoch on this process."""

    def __init__(self, device: torch.device) -> None:
        self.loss = torch.zeros((), dtype=torch.float64, device=device)
        self.correct = torch.zeros((), dtype=torch.float64, device=device)
        self.count = 0


def train_one_epoch(
    *,
    model: nn.Module,
    ddp: nn.parallel.DistributedDataParallel | None,
    loader: DataLoader,
    steps: int,
    config: TrainConfig,
    recipe: Recipe,
    ctx: DistributedContext,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    criterion: nn.Module,
    epoch: int,
) -> tuple[_Epoch, float]:
    from tqdm.auto import tqdm

    model.train()
    sums = _Epoch(ctx.device)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    bar = tqdm(
        total=steps * recipe.batch_size,
        desc=f"epoch {epoch + 1}/{recipe.epochs}",
        unit="img",
        unit_scale=True,
        dynamic_ncols=True,
        disable=not (config.progress and ctx.is_main),
        leave=False,
    )
    batches: Iterator = iter(loader)
    non_blocking = ctx.device.type == "cuda"
    start = time.perf_counter()
    with bar:
        for index in range(steps):
            step_losses = []
            for micro in range(config.accum_steps):
                images, labels = next(batches)
                images = images.to(ctx.device, non_blocking=non_blocking).contiguous(
                    memory_format=memory_format
                )
                labels = labels.to(ctx.device, non_blocking=non_blocking)
                last = micro == config.accum_steps - 1
                # Skip DDP's all-reduce on all but the last accumulation step.
                sync = contextlib.nullcontext() if last or ddp is None else ddp.no_sync()
                with sync:
                    with _autocast(config, ctx.device):
                        output = model(images)
                        loss = criterion(output, labels)
                    scaler.scale(loss / config.accum_steps).backward()
                step_losses.append(loss.detach().float())
                with torch.no_grad():
                    sums.loss += loss.detach().double() * labels.shape[0]
                    sums.correct += (output.argmax(dim=1) == labels).sum().double()
                    sums.count += labels.shape[0]
            _check_finite_loss(torch.stack(step_losses), ctx, epoch, index, optimizer)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            bar.update(recipe.batch_size)
            # loss.item() waits for the GPU: refresh the displayed loss only now and then.
            if not bar.disable and (bar.n // recipe.batch_size) % 10 in (0, 1):
                bar.set_postfix(
                    loss=f"{loss.item():.4f}", lr=f"{optimizer.param_groups[0]['lr']:.4g}"
                )
    if ctx.device.type == "cuda":
        torch.cuda.synchronize(ctx.device)
    return sums, time.perf_counter() - start


def _check_finite_loss(
    losses: torch.Tensor,
    ctx: DistributedContext,
    epoch: int,
    index: int,
    optimizer: torch.optim.Optimizer,
) -> None:
    """Stop at the first NaN/inf loss, before the optimiser applies its gradients (every process stops)."""
    bad = float((~torch.isfinite(losses)).any())
    if ctx.distributed:
        (bad,) = all_reduce_sum(ctx, [bad])
    if bad:
        value = next((float(v) for v in losses.tolist() if not math.isfinite(v)), float("nan"))
        raise NonFiniteLossError(
            f"training stopped: the loss is {value} (not finite) at epoch {epoch + 1}, step {index + 1} of the "
            f"epoch, with lr {optimizer.param_groups[0]['lr']:.4g}; the weights diverged (a learning rate too "
            "high for this batch size?). Nothing of this epoch was saved; the checkpoints of earlier epochs are "
            "kept: lower lr and start again, or resume from the last checkpoint"
        )


def evaluate(
    *,
    bare: nn.Module,
    data: Any,  # engine._Data: val_accuracy, val_consistency
    config: TrainConfig,
    ctx: DistributedContext,
    epoch: int,
    val_batch: int,
) -> dict[str, float | None]:
    from antialias.metrics import accuracy, crop_consistency

    shard = list(range(ctx.rank, len(data.val_accuracy), ctx.world_size))
    workers, pin_memory = _num_workers(config), ctx.device.type == "cuda"
    progress = config.progress and ctx.is_main
    totals = [0.0, 0.0, 0.0, 0.0, 0.0]  # top1*n, top5*n, n, consistency*n, n (consistency)
    if shard:
        loader = DataLoader(
            Subset(data.val_accuracy, shard), batch_size=val_batch, num_workers=workers, pin_memory=pin_memory
        )
        with _autocast(config, ctx.device):
            # With fewer than 5 classes, top-5 counts every image as correct (the metric's rule).
            acc = accuracy(bare, loader, topk=(1, 5), device=ctx.device, progress=progress)
        totals[0] = acc["top1"] * len(shard)
        totals[1] = acc["top5"] * len(shard)
        totals[2] = float(len(shard))
        if config.consistency_passes > 0:
            loader = DataLoader(
                Subset(data.val_consistency, shard), batch_size=val_batch, num_workers=workers, pin_memory=pin_memory
            )
            generator = torch.Generator().manual_seed(
                config.seed * 1_000_003 + epoch * 1_009 + ctx.rank
            )
            with _autocast(config, ctx.device):
                result = crop_consistency(
                    bare,
                    loader,
                    crop_size=config.crop_size,
                    max_offset=config.max_offset,
                    passes=config.consistency_passes,
                    generator=generator,
                    device=ctx.device,
                    progress=progress,
                )
            totals[3] = result.consistency * len(shard)
            totals[4] = float(len(shard))
    top1, top5, n, cons, n_cons = all_reduce_sum(ctx, totals)
    return {
        "val_top1": top1 / n if n else None,
        "val_top5": top5 / n if n else None,
        "consistency": cons / n_cons if n_cons else None,
    }


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"
