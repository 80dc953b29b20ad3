"""Training and evaluating one demo model (no shift augmentation; metrics from :mod:`antialias.metrics`)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from antialias import metrics
from antialias.apps.demo.config import DemoConfig, Variant, variant_lr
from antialias.apps.demo.data import DemoData
from antialias.apps.demo.model import build_model
from antialias.devices import resolve_device
from antialias.train import train_one_epoch

__all__ = ["evaluate_model", "train_model"]


def train_model(
    variant: Variant,
    seed: int,
    data: DemoData,
    config: DemoConfig,
    *,
    on_epoch: Callable[[int, float], None] | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Train the model of ``variant`` (``build_model``) on ``data``, no shift augmentation.

    ``torch.manual_seed(seed)`` (in a forked RNG state) fixes the initial weights and a generator
    seeded with ``seed`` the batch order, so the variants of one seed start from the same weights and
    see the same batches. AdamW with a one-cycle learning rate, cross-entropy, one
    :func:`antialias.train.train_one_epoch` per epoch (the training engine's loop); ``on_epoch`` is
    called after every epoch with ``(epoch, mean training loss)``.

    Returns:
        The model in eval mode, and ``{"train_loss": ..., "train_time_s": ..., "epoch_time_s": ...}``.
    """
    device = resolve_device(config.device)
    with torch.random.fork_rng(
        devices=[]
    ):  # seed the initial weights without touching the caller's RNG
        torch.manual_seed(seed)
        model = build_model(variant, config.resolved_widths, data.in_channels, data.num_classes).to(
            device
        )
    images, labels = data.train_images.to(device), data.train_labels.to(device)
    lr = variant_lr(variant, config)
    n, epochs, batch_size = labels.numel(), config.resolved_epochs, config.resolved_batch_size
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=config.weight_decay)
    steps = epochs * math.ceil(n / batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    order = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    loss_mean = float("nan")
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=order).to(device)
        batches = ((images[batch], labels[batch]) for batch in perm.split(batch_size))
        loss_mean = train_one_epoch(
            model, batches, optimizer, scheduler=schedule, device=device, epoch=epoch
        ).loss
        if on_epoch is not None:
            on_epoch(epoch, loss_mean)
    model.eval()
    elapsed = time.perf_counter() - start
    return model, {
        "train_loss": loss_mean,
        "train_time_s": elapsed,
        "epoch_time_s": elapsed / epochs,
    }


def _batches(images: Tensor, labels: Tensor, size: int) -> list[tuple[Tensor, Tensor]]:
    return [(images[i : i + size], labels[i : i + size]) for i in range(0, labels.numel(), size)]


def evaluate_model(
    model: nn.Module, data: DemoData, config: DemoConfig, seed: int
) -> dict[str, Any]:
    """Clean accuracy, shift accuracy, circular and crop consistency, diagonal curve of one model.

    The random shifts come from a generator seeded with ``seed``, so the variants of one seed are
    evaluated on the same shifted views. A method comparison (``config.methods``) adds the
    sub-pixel consistency (:func:`~antialias.metrics.fractional_consistency`: shifts in ``[0, 1)``
    pixel per axis, band-limited and circular) under the key ``"fractional_consistency"``.

    Returns:
        Scalars (fractions in [0, 1]) under the keys of the table, and ``"diagonal"``: the
        ``(M, 2 * max_shift + 1)`` probability of the correct class and top-1 prediction per test
        image and diagonal shift ``(s, s)``, ``s = -max_shift..max_shift`` (content moved ``s``
        pixels down and right).
    """
    device = resolve_device(config.device)
    m = config.max_shift
    size = data.test_images.shape[-1]
    # Images per forward pass. On the CPU, few: activations of 2 MB are reused by the allocator,
    # larger ones are mapped and zeroed by the kernel again and again (measured: 30-40% of the
    # evaluation time went to page faults at 64-256 images per pass, none at 32).
    chunk = 32 if device.type == "cpu" else 4096
    clean = _batches(data.test_images, data.test_labels, chunk)
    # circular_consistency draws rolls from {0..2m}: pre-rolled by -m, the images see -m..m.
    rolled = _batches(
        torch.roll(data.test_images, (-m, -m), dims=(-2, -1)), data.test_labels, chunk
    )
    padded = _batches(data.padded_test_images(m), data.test_labels, chunk)
    top1 = metrics.accuracy(model, clean, topk=(1,), device=device)["top1"]
    circular = metrics.circular_consistency(
        model,
        rolled,
        max_shift=2 * m + 1,
        passes=config.passes,
        generator=torch.Generator().manual_seed(seed),
        device=device,
        chunk_size=chunk,
    )
    crop = metrics.crop_consistency(
        model,
        padded,
        crop_size=size,
        max_offset=2 * m + 1,
        passes=config.passes,
        generator=torch.Generator().manual_seed(seed + 1),
        device=device,
        chunk_size=chunk,
    )
    diagonal = metrics.diagonal_shift(
        model, padded, crop_size=size, max_offset=2 * m, device=device, chunk_size=chunk
    )
    extra = {}
    if config.methods is not None:
        fractional = metrics.fractional_consistency(
            model,
            clean,
            max_shift=1.0,
            passes=config.passes,
            generator=torch.Generator().manual_seed(seed + 2),
            device=device,
            chunk_size=chunk,
        )
        extra["fractional_consistency"] = fractional.consistency
    return {
        "clean_accuracy": top1,
        "shift_accuracy": circular.accuracy,
        "circular_consistency": circular.consistency,
        "crop_consistency": crop.consistency,
        "diagonal_stability": diagonal.stability,
        **extra,
        # Crop offset o moves the content by m - o pixels down and right: flip to shifts -m..m.
        "diagonal": {
            "probabilities": diagonal.probabilities.flip(-1),
            "predictions": diagonal.predictions.flip(-1),
        },
    }
