"""The ``antialias demo`` experiment: aliasing makes a small CNN shift-variant; blur-pool and APS fix it.

A few-minute version of the paper's central experiment (Zhang, ICML 2019, Figure 1 and Table 1),
runnable on a laptop CPU without downloading anything:

1. Data: scikit-learn's handwritten digits (1,797 real 8x8 scans, bundled inside the scikit-learn
   wheel), upscaled x2 (nearest) and centred on a 32x32 canvas; a fixed split of 1,347 training and
   450 test images. Optionally torchvision's CIFAR-10 (the paper's CIFAR setting), from a folder.
2. Models: :class:`DemoNet`, three conv-BN-ReLU-pool stages and global average pooling, circular
   padding everywhere, in one variant per downsampling method: the baseline (``MaxPool2d(2, 2)``),
   max-blur-pool with each filter size (:class:`~antialias.layers.MaxBlurPool2d`) and, when the
   polyphase layers are installed, adaptive polyphase sampling (APS). Every variant is trained with
   the same seeds (same initial weights and batch order per seed) and *without* shift augmentation.
3. Evaluation (:mod:`antialias.metrics`): clean accuracy, accuracy under circular shifts, consistency
   under circular shifts and under shifted crops, and the probability of the correct class along a
   diagonal shift (the paper's Figure 1). Mean and spread over the seeds.

Convention:
    Shifts span ``-max_shift..max_shift`` pixels per axis (8 by default), drawn uniformly and
    independently per axis, image and view. Circular protocol:
    :func:`~antialias.metrics.circular_consistency` rolls the 32x32 test images, first rolled by
    ``-max_shift``, by amounts from ``{0, ..., 2 * max_shift}``. Crop protocol:
    :func:`~antialias.metrics.crop_consistency` and :func:`~antialias.metrics.diagonal_shift` take
    32x32 crops at offsets ``0..2 * max_shift`` of the test images padded by ``max_shift`` pixels with
    the background value; offset ``max_shift`` is the unshifted image (reported as shift 0). On the
    digits the 16x16 digit stays whole inside every crop, so a crop shift there moves the digit over
    a constant background: the same views as the circular protocol, drawn independently.

Why this setting (measured, see issue 7): with zero padding and crop shifts the baseline and the
anti-aliased nets were about equally (in)consistent, and with random-crop training both reached
about 99.5%, leaving nothing to show. Circular padding isolates what the paper is about: the
subsampling.

Example:
    >>> from antialias.demo import DemoConfig, format_table, run_demo
    >>> result = run_demo(DemoConfig(seeds=(0,), epochs=1, filters=(4,), train_size=64,
    ...                              test_size=16, passes=1, progress=False))  # doctest: +SKIP
    >>> print(format_table(result))  # doctest: +SKIP
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import json
import logging
import math
import multiprocessing
import os
import platform
import queue
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from antialias.filters import FilterSpec, filter_name
from antialias.layers import MaxBlurPool2d, create_downsample, list_downsample_methods

__all__ = [
    "DATASETS",
    "DemoConfig",
    "DemoData",
    "DemoNet",
    "Variant",
    "evaluate_model",
    "format_table",
    "load_data",
    "make_variants",
    "run_demo",
    "train_model",
    "write_outputs",
]

logger = logging.getLogger(__name__)

DATASETS = ("digits", "cifar10")

# Metrics reported per model, in table order: (key, column title).
METRICS: tuple[tuple[str, str], ...] = (
    ("clean_accuracy", "clean acc."),
    ("shift_accuracy", "acc. under shift"),
    ("circular_consistency", "consistency (circular)"),
    ("crop_consistency", "consistency (crop)"),
    ("diagonal_stability", "same class on diagonal"),
)

# The paper's names of the binomial filters (Zhang, 2019, Table 1).
_PAPER_NAMES = {1: "no blur", 2: "Rect-2", 3: "Tri-3", 4: "Tri-4", 5: "Bin-5"}


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


@dataclass
class DemoConfig:
    """Everything that defines a demo run; stored in the results JSON.

    Args:
        dataset: ``"digits"`` (scikit-learn's bundled scans) or ``"cifar10"`` (torchvision).
        data_dir: folder of the CIFAR-10 files (``cifar-10-batches-py``); unused for digits.
        download: let torchvision download CIFAR-10 into ``data_dir`` when it is missing.
        seeds: one model per variant and seed; variants share initial weights and batch order
            per seed.
        epochs: training epochs; ``None``: 6 for digits, 15 for CIFAR-10.
        filters: max-blur-pool filter sizes, one variant each (int ``k`` for binomial, or a family
            string such as ``"box-3"``).
        baseline: include the ``MaxPool2d(2, 2)`` baseline.
        aps: include adaptive polyphase sampling: ``None`` when the ``"aps"`` downsampling method is
            registered, ``True`` requires it.
        widths: channels of the three stages; ``None``: ``(16, 32, 64)`` for digits,
            ``(32, 64, 128)`` for CIFAR-10.
        batch_size: training batch size; ``None``: 32 for digits, 128 for CIFAR-10.
        lr: peak learning rate of the one-cycle schedule (AdamW).
        weight_decay: AdamW's weight decay.
        max_shift: shifts span ``-max_shift..max_shift`` pixels per axis.
        passes: shifted pairs per test image in the consistency protocols.
        train_size: use only the first ``train_size`` training images (tests, quick looks).
        test_size: use only the first ``test_size`` test images.
        device: ``"cpu"``, ``"cuda"``, ...
        workers: processes that train models in parallel on the CPU; ``None``: one per CPU core
            (at most one per model). Ignored (one process) on other devices.
        progress: show a progress bar on stderr.
    """

    dataset: str = "digits"
    data_dir: str | None = None
    download: bool = False
    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: int | None = None
    filters: tuple[FilterSpec, ...] = (2, 3, 4, 5)
    baseline: bool = True
    aps: bool | None = None
    widths: tuple[int, int, int] | None = None
    batch_size: int | None = None
    lr: float = 0.01
    weight_decay: float = 5e-4
    max_shift: int = 8
    passes: int = 5
    train_size: int | None = None
    test_size: int | None = None
    device: str = "cpu"
    workers: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {self.dataset!r}")
        self.seeds = tuple(self.seeds)
        self.filters = tuple(self.filters)
        if not self.seeds:
            raise ValueError("seeds must name at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct, got {self.seeds}")
        for name in ("epochs", "batch_size", "passes", "train_size", "test_size", "workers"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.max_shift, bool) or not isinstance(self.max_shift, int) or self.max_shift < 1:
            raise ValueError(f"max_shift must be a positive integer number of pixels, got {self.max_shift!r}")
        if self.widths is not None:
            self.widths = tuple(self.widths)  # type: ignore[assignment]
            if len(self.widths) != 3 or any(not isinstance(w, int) or w < 1 for w in self.widths):
                raise ValueError(f"widths must be three positive channel counts, got {self.widths!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")

    @property
    def resolved_epochs(self) -> int:
        if self.epochs is not None:
            return self.epochs
        return 6 if self.dataset == "digits" else 15

    @property
    def resolved_widths(self) -> tuple[int, int, int]:
        if self.widths is not None:
            return self.widths
        return (16, 32, 64) if self.dataset == "digits" else (32, 64, 128)

    @property
    def resolved_batch_size(self) -> int:
        if self.batch_size is not None:
            return self.batch_size
        return 32 if self.dataset == "digits" else 128

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["filters"] = [f if isinstance(f, (int, str)) else _spec_name(f) for f in self.filters]
        out["epochs"] = self.resolved_epochs
        out["widths"] = list(self.resolved_widths)
        out["batch_size"] = self.resolved_batch_size
        out["seeds"] = list(self.seeds)
        return out


@dataclass(frozen=True)
class Variant:
    """One downsampling method of :class:`DemoNet`.

    Attributes:
        name: short key, e.g. ``"baseline"``, ``"blur-4"``, ``"aps"``.
        method: ``"max"`` (``MaxPool2d(2, 2)``), ``"blur"`` (max-blur-pool) or ``"aps"``.
        filter_size: the blur filter of ``"blur"``; ``None`` otherwise.
        label: a human-readable name for tables and plots.
    """

    name: str
    method: str
    filter_size: FilterSpec | None
    label: str


def _spec_name(spec: FilterSpec) -> str:
    """``4`` -> ``"4"``, ``"box-3"`` -> ``"box-3"``, taps -> ``"taps=[...]"``."""
    return spec if isinstance(spec, str) else str(spec) if isinstance(spec, int) else filter_name(spec)


def make_variants(
    filters: Iterable[FilterSpec] = (2, 3, 4, 5), *, baseline: bool = True, aps: bool | None = None
) -> list[Variant]:
    """The baseline, one max-blur-pool variant per filter, and APS (when available).

    Args:
        filters: blur filter sizes (int ``k``: binomial; or a family string).
        baseline: include the max-pool baseline.
        aps: include APS: ``None`` when the ``"aps"`` method is registered in
            :func:`antialias.layers.create_downsample`, ``True`` requires it (``ValueError`` if not).

    Example:
        >>> [v.name for v in make_variants((2, 4), aps=False)]
        ['baseline', 'blur-2', 'blur-4']
    """
    variants: list[Variant] = []
    if baseline:
        variants.append(Variant("baseline", "max", None, "MaxPool (baseline)"))
    for spec in filters:
        name = _spec_name(spec)
        paper = _PAPER_NAMES.get(spec) if isinstance(spec, int) else None
        label = f"MaxBlurPool {paper}" if paper else f"MaxBlurPool {name}"
        variants.append(Variant(f"blur-{name}", "blur", spec, label))
    available = "aps" in list_downsample_methods()
    if aps and not available:
        raise ValueError("the APS variant needs the polyphase layers (antialias.layers.polyphase), not installed")
    if aps or (aps is None and available):
        variants.append(Variant("aps", "aps", None, "MaxPool + APS"))
    if not variants:
        raise ValueError("no variant to train: give filters, or keep the baseline or APS")
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ValueError(f"filters must be distinct, got {list(filters)}")
    return variants


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


@dataclass
class DemoData:
    """Normalized tensors of one data set.

    Attributes:
        name: ``"digits"`` or ``"cifar10"``.
        train_images: ``(N, C, 32, 32)`` float32, normalized.
        train_labels: ``(N,)`` int64.
        test_images: ``(M, C, 32, 32)``, the images as trained (centred digits).
        test_labels: ``(M,)``.
        background: per-channel value of an empty (black / mean-colour) pixel after normalization,
            used to pad the test images for the crop protocols.
        classes: class names.
    """

    name: str
    train_images: Tensor
    train_labels: Tensor
    test_images: Tensor
    test_labels: Tensor
    background: Tensor
    classes: list[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        return int(self.train_images.shape[1])

    def padded_test_images(self, pad: int) -> Tensor:
        """The test images padded by ``pad`` pixels on every side with the background value."""
        n, c, h, w = self.test_images.shape
        out = self.background.view(1, c, 1, 1).expand(n, c, h + 2 * pad, w + 2 * pad).clone()
        out[:, :, pad : pad + h, pad : pad + w] = self.test_images
        return out


def _digits(canvas: int = 32, scale: int = 2) -> tuple[Tensor, Tensor, list[str]]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ImportError("the digits demo needs scikit-learn: pip install 'antialias[demo]'") from exc
    bunch = load_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    # Nearest-neighbour upscaling keeps the scans' sharp pixel edges: the high frequencies whose
    # aliasing the experiment is about (and no interpolation blurs them away before the network).
    images = F.interpolate(images, scale_factor=scale, mode="nearest")
    size = images.shape[-1]
    top = (canvas - size) // 2
    out = torch.zeros(images.shape[0], 1, canvas, canvas)
    out[:, :, top : top + size, top : top + size] = images
    labels = torch.as_tensor(bunch.target, dtype=torch.int64)
    return out, labels, [str(c) for c in bunch.target_names]


def _cifar10(root: str | None, download: bool) -> tuple[Tensor, Tensor, Tensor, Tensor, list[str]]:
    if root is None:
        raise ValueError("--dataset cifar10 needs --data DIR: the folder that holds (or will hold, with --download) cifar-10-batches-py")
    from torchvision.datasets import CIFAR10

    path = Path(root).expanduser()
    try:
        train = CIFAR10(str(path), train=True, download=download)
        test = CIFAR10(str(path), train=False, download=download)
    except RuntimeError as exc:  # torchvision: "Dataset not found or corrupted"
        raise FileNotFoundError(
            f"CIFAR-10 not found in {str(path)!r} (expected {str(path / 'cifar-10-batches-py')!r}); "
            "pass --download to fetch it (needs the internet), or point --data at a folder that has it"
        ) from exc
    except OSError as exc:  # download failed: offline
        raise FileNotFoundError(f"could not download CIFAR-10 into {str(path)!r}: {exc}") from exc

    def to_tensor(ds: Any) -> tuple[Tensor, Tensor]:
        images = torch.as_tensor(ds.data).permute(0, 3, 1, 2).float() / 255.0
        return images, torch.as_tensor(ds.targets, dtype=torch.int64)

    x_train, y_train = to_tensor(train)
    x_test, y_test = to_tensor(test)
    return x_train, y_train, x_test, y_test, list(train.classes)


def load_data(
    dataset: str = "digits",
    *,
    data_dir: str | None = None,
    download: bool = False,
    train_size: int | None = None,
    test_size: int | None = None,
) -> DemoData:
    """Load and normalize the demo's data set.

    Digits: the 1,797 scans, upscaled x2 and centred on a 32x32 canvas, split once (a fixed
    permutation, generator seed 0) into 1,347 training and 450 test images. CIFAR-10: torchvision's
    training and test sets. Both are normalized with the training set's per-channel mean and
    standard deviation.

    Args:
        dataset: ``"digits"`` or ``"cifar10"``.
        data_dir: CIFAR-10's folder.
        download: allow torchvision to download CIFAR-10.
        train_size: keep the first ``train_size`` training images.
        test_size: keep the first ``test_size`` test images.

    Raises:
        ValueError: unknown data set, or CIFAR-10 without ``data_dir``.
        FileNotFoundError: CIFAR-10 missing from ``data_dir`` (and not downloaded).
    """
    if dataset == "digits":
        images, labels, classes = _digits()
        perm = torch.randperm(labels.numel(), generator=torch.Generator().manual_seed(0))
        n_test = 450
        test_idx, train_idx = perm[:n_test], perm[n_test:]
        x_train, y_train = images[train_idx], labels[train_idx]
        x_test, y_test = images[test_idx], labels[test_idx]
    elif dataset == "cifar10":
        x_train, y_train, x_test, y_test, classes = _cifar10(data_dir, download)
    else:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    if train_size is not None:
        x_train, y_train = x_train[:train_size], y_train[:train_size]
    if test_size is not None:
        x_test, y_test = x_test[:test_size], y_test[:test_size]
    mean = x_train.mean(dim=(0, 2, 3))
    std = x_train.std(dim=(0, 2, 3)).clamp_min(1e-6)

    def norm(x: Tensor) -> Tensor:
        return ((x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)).contiguous()

    # The background of the digits is black (0); CIFAR-10 is padded with its mean colour.
    background = -mean / std if dataset == "digits" else torch.zeros_like(mean)
    return DemoData(dataset, norm(x_train), y_train, norm(x_test), y_test, background, classes)


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


def _downsample(variant: Variant, channels: int) -> nn.Module:
    if variant.method == "max":
        return nn.MaxPool2d(2, 2)
    # MaxPool2d(2, stride=1) turns 32 rows into 31 and breaks the circular structure of the map;
    # one wrapped row and column at the end keep it 32x32, so the whole network stays equivariant
    # to circular shifts (by multiples of the stride). MaxPool2d(2, 2) never reaches that row.
    wrap = nn.CircularPad2d((0, 1, 0, 1))
    if variant.method == "blur":
        if variant.filter_size is None:
            raise ValueError(f"variant {variant.name!r}: the 'blur' method needs a filter_size")
        return nn.Sequential(wrap, MaxBlurPool2d(2, channels, filter_size=variant.filter_size, pad_mode="circular"))
    if variant.method == "aps":
        aps = create_downsample("aps", 2, channels, 2, filter_size=1, pad_mode="circular")
        return nn.Sequential(wrap, nn.MaxPool2d(2, 1), aps)
    raise ValueError(f"unknown downsampling method {variant.method!r}; expected 'max', 'blur' or 'aps'")


class DemoNet(nn.Module):
    """A small CNN for 32x32 images: three conv-BN-ReLU-downsample stages, global average pooling.

    Every convolution pads circularly; each stage halves the map with the variant's downsampling
    (``MaxPool2d(2, 2)``, max-blur-pool or max + APS). The variants have the same parameters, so a
    seed gives them the same initial weights.

    Args:
        variant: the downsampling method.
        widths: channels of the three stages.
        in_channels: image channels.
        num_classes: output classes.

    Shape:
        - Input: ``(N, in_channels, H, W)``, H and W divisible by 8 for exact circular equivariance.
        - Output: ``(N, num_classes)`` logits.

    Example:
        >>> net = DemoNet(make_variants((4,), baseline=False, aps=False)[0])
        >>> net(torch.zeros(2, 1, 32, 32)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        variant: Variant,
        widths: Sequence[int] = (16, 32, 64),
        in_channels: int = 1,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        stages = []
        channels = in_channels
        for width in widths:
            stages.append(
                nn.Sequential(
                    nn.Conv2d(channels, width, 3, padding=1, padding_mode="circular", bias=False),
                    nn.BatchNorm2d(width),
                    nn.ReLU(inplace=True),
                    _downsample(variant, width),
                )
            )
            channels = width
        self.features = nn.Sequential(*stages)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x).mean(dim=(2, 3)))


# --------------------------------------------------------------------------------------------
# Training and evaluation of one model
# --------------------------------------------------------------------------------------------


def train_model(
    variant: Variant,
    seed: int,
    data: DemoData,
    config: DemoConfig,
    *,
    on_epoch: Callable[[int, float], None] | None = None,
) -> tuple[DemoNet, dict[str, Any]]:
    """Train one :class:`DemoNet` without shift augmentation.

    ``torch.manual_seed(seed)`` (in a forked RNG state) fixes the initial weights and a generator
    seeded with ``seed`` the batch order, so the variants of one seed start from the same weights and see the same batches.
    AdamW with a one-cycle learning rate, cross-entropy.

    Args:
        variant: the downsampling method.
        seed: the seed.
        data: the training data.
        config: epochs, batch size, learning rate, device.
        on_epoch: called after every epoch with ``(epoch, mean training loss)``.

    Returns:
        The model in eval mode, and ``{"train_loss": ..., "train_time_s": ...}``.
    """
    device = torch.device(config.device)
    with torch.random.fork_rng(devices=[]):  # seed the initial weights without touching the caller's RNG
        torch.manual_seed(seed)
        model = DemoNet(variant, config.resolved_widths, data.in_channels, data.num_classes).to(device)
    images = data.train_images.to(device)
    labels = data.train_labels.to(device)
    n = labels.numel()
    epochs = config.resolved_epochs
    batch_size = config.resolved_batch_size
    steps_per_epoch = math.ceil(n / batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=epochs * steps_per_epoch)
    order = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    loss_mean = float("nan")
    model.train()
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=order).to(device)
        total = torch.zeros((), device=device)
        for i in range(0, n, batch_size):
            batch = perm[i : i + batch_size]
            loss = F.cross_entropy(model(images[batch]), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.detach() * batch.numel()
        loss_mean = float(total) / n
        if on_epoch is not None:
            on_epoch(epoch, loss_mean)
    model.eval()
    return model, {"train_loss": loss_mean, "train_time_s": time.perf_counter() - start}


def _batches(images: Tensor, labels: Tensor, size: int) -> list[tuple[Tensor, Tensor]]:
    return [(images[i : i + size], labels[i : i + size]) for i in range(0, labels.numel(), size)]


def evaluate_model(model: nn.Module, data: DemoData, config: DemoConfig, seed: int) -> dict[str, Any]:
    """Clean accuracy, shift accuracy, circular and crop consistency, diagonal curve of one model.

    The random shifts come from a generator seeded with ``seed``, so the variants of one seed are
    evaluated on the same shifted views.

    Returns:
        Scalars (fractions in [0, 1]) under the keys of the table, and ``"diagonal"``: the
        ``(M, 2 * max_shift + 1)`` probability of the correct class and top-1 prediction per test
        image and diagonal shift ``(s, s)``, ``s = -max_shift..max_shift`` (content moved ``s``
        pixels down and right).
    """
    from antialias.metrics import accuracy, circular_consistency, crop_consistency, diagonal_shift

    device = torch.device(config.device)
    m = config.max_shift
    size = data.test_images.shape[-1]
    # Images per forward pass. On the CPU, few: activations of 2 MB are reused by the allocator,
    # larger ones are mapped and zeroed by the kernel again and again (measured: 30-40% of the
    # evaluation time went to page faults at 64-256 images per pass, none at 32).
    chunk = 32 if device.type == "cpu" else 4096
    clean = _batches(data.test_images, data.test_labels, chunk)
    # circular_consistency draws rolls from {0..2m}: pre-rolled by -m, the images see -m..m.
    rolled = _batches(torch.roll(data.test_images, (-m, -m), dims=(-2, -1)), data.test_labels, chunk)
    padded = _batches(data.padded_test_images(m), data.test_labels, chunk)
    top1 = accuracy(model, clean, topk=(1,), device=device)["top1"]
    circular = circular_consistency(
        model, rolled, max_shift=2 * m + 1, passes=config.passes,
        generator=torch.Generator().manual_seed(seed), device=device, chunk_size=chunk,
    )
    crop = crop_consistency(
        model, padded, crop_size=size, max_offset=2 * m + 1, passes=config.passes,
        generator=torch.Generator().manual_seed(seed + 1), device=device, chunk_size=chunk,
    )
    diagonal = diagonal_shift(model, padded, crop_size=size, max_offset=2 * m, device=device, chunk_size=chunk)
    return {
        "clean_accuracy": top1,
        "shift_accuracy": circular.accuracy,
        "circular_consistency": circular.consistency,
        "crop_consistency": crop.consistency,
        "diagonal_stability": diagonal.stability,
        # Crop offset o moves the content by m - o pixels down and right: flip to shifts -m..m.
        "diagonal": {"probabilities": diagonal.probabilities.flip(-1), "predictions": diagonal.predictions.flip(-1)},
    }


# --------------------------------------------------------------------------------------------
# The whole experiment
# --------------------------------------------------------------------------------------------

# Per-process state of the worker pool: the data set is loaded once per worker.
_WORKER: dict[str, Any] = {}


def _run_one(variant: Variant, seed: int, data: DemoData, config: DemoConfig, report: Callable[[str], None]) -> dict[str, Any]:
    model, info = train_model(variant, seed, data, config, on_epoch=lambda epoch, loss: report("epoch"))
    start = time.perf_counter()
    metrics = evaluate_model(model, data, config, seed)
    info["eval_time_s"] = time.perf_counter() - start
    report("eval")
    return {"variant": variant.name, "seed": seed, **info, **metrics}


def _worker_init(config: DemoConfig, messages: Any, threads: int, data: DemoData | None) -> None:
    torch.set_num_threads(threads)
    _WORKER["config"] = config
    _WORKER["messages"] = messages
    if data is None:
        data = load_data(
            config.dataset, data_dir=config.data_dir, download=False,
            train_size=config.train_size, test_size=config.test_size,
        )
    _WORKER["data"] = data


def _worker_task(variant: Variant, seed: int) -> dict[str, Any]:
    messages = _WORKER["messages"]
    return _run_one(variant, seed, _WORKER["data"], _WORKER["config"], messages.put)


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
    }


def run_demo(config: DemoConfig | None = None) -> dict[str, Any]:
    """Train and evaluate every variant with every seed; return the results (see :func:`write_outputs`).

    On the CPU the models are trained in ``config.workers`` processes at once (one thread each;
    small networks use one core far better than several), on other devices one after the other.
    The worker processes are started with ``spawn``, which re-imports the caller's main module: a
    script that calls this function with more than one worker must do so under
    ``if __name__ == "__main__":``. A model's numbers do not depend on the process that trained it
    (for the same number of threads: a pool worker uses one).

    Returns:
        A JSON-ready dict: ``"config"``, ``"environment"``, ``"wall_time_s"``, ``"variants"`` (per
        variant: per-seed metrics, ``"summary"`` with mean/std/min/max per metric and the mean
        diagonal curves), and ``"comparison"`` (each variant against the baseline).
    """
    config = config or DemoConfig()
    start = time.perf_counter()
    variants = make_variants(config.filters, baseline=config.baseline, aps=config.aps)
    device = torch.device(config.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {config.device!r} requested but CUDA is not available; use --device cpu")
    # Loading in the parent first surfaces data errors (and downloads) before any worker starts.
    data = load_data(
        config.dataset, data_dir=config.data_dir, download=config.download,
        train_size=config.train_size, test_size=config.test_size,
    )
    if config.dataset == "cifar10" and device.type == "cpu":
        logger.warning("CIFAR-10 on the CPU takes hours at the default size; --device cuda is recommended")
    tasks = [(v, s) for s in config.seeds for v in variants]
    epochs = config.resolved_epochs
    cores = _cpu_count()
    workers = 1 if device.type != "cpu" else min(config.workers or cores, len(tasks))
    logger.info(
        "training %d models (%d variants x %d seeds, %d epochs) on %s with %d worker(s)",
        len(tasks), len(variants), len(config.seeds), epochs, config.device, workers,
    )
    bar = _progress(config.progress, len(tasks) * (epochs + 1))
    results: list[dict[str, Any]] = []
    try:
        if workers == 1:
            threads = torch.get_num_threads()
            if device.type == "cpu":
                torch.set_num_threads(cores)
            try:
                for variant, seed in tasks:
                    bar.set_postfix_str(f"{variant.name} seed {seed}")
                    results.append(_run_one(variant, seed, data, config, lambda _: bar.update(1)))
            finally:
                torch.set_num_threads(threads)
        else:
            results = _run_pool(config, data, tasks, workers, max(1, cores // workers), bar)
    finally:
        bar.close()
    return _collect(config, variants, data, results, workers, time.perf_counter() - start)


def _progress(enabled: bool, total: int) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="antialias demo", unit="epoch", disable=not enabled, dynamic_ncols=True)


def _run_pool(
    config: DemoConfig, data: DemoData, tasks: list[tuple[Variant, int]], workers: int, threads: int, bar: Any
) -> list[dict[str, Any]]:
    # "spawn": forking a process whose OpenMP runtime is initialized can hang the child. Spawned
    # workers re-import the caller's main module, hence the ``__main__`` guard asked of scripts.
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    # The digits (7 MB) travel to the workers; a large data set is cheaper to read again from disk.
    shipped = data if data.train_images.numel() <= 2**24 else None
    results: list[dict[str, Any]] = []
    initargs = (config, messages, threads, shipped)
    with cf.ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_init, initargs=initargs) as pool:
        futures = {pool.submit(_worker_task, v, s): (v, s) for v, s in tasks}
        pending = set(futures)
        try:
            while pending:
                done, pending = cf.wait(pending, timeout=0.2, return_when=cf.FIRST_COMPLETED)
                _drain(messages, bar)
                for future in done:
                    results.append(future.result())
                    variant, seed = futures[future]
                    bar.set_postfix_str(f"{variant.name} seed {seed} done")
        except BaseException:
            # A failed model (or Ctrl-C) ends the run: do not train the queued ones first.
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        _drain(messages, bar)
    order = {(v.name, s): i for i, (v, s) in enumerate(tasks)}
    return sorted(results, key=lambda r: order[(r["variant"], r["seed"])])


def _drain(messages: Any, bar: Any) -> None:
    while True:
        try:
            messages.get_nowait()
        except queue.Empty:
            return
        bar.update(1)


def _collect(
    config: DemoConfig, variants: list[Variant], data: DemoData, results: list[dict[str, Any]], workers: int, wall: float
) -> dict[str, Any]:
    m = config.max_shift
    out_variants = []
    for variant in variants:
        runs = [r for r in results if r["variant"] == variant.name]
        probs = torch.stack([r["diagonal"]["probabilities"] for r in runs])  # (seeds, M, D)
        preds = torch.stack([r["diagonal"]["predictions"] for r in runs])
        correct = (preds == data.test_labels.view(1, -1, 1)).float()
        per_seed_prob = probs.mean(1)  # (seeds, D)
        per_seed_acc = correct.mean(1)
        summary = {key: _spread([float(r[key]) for r in runs]) for key, _ in METRICS}
        out_variants.append(
            {
                "name": variant.name,
                "label": variant.label,
                "method": variant.method,
                "filter_size": _spec_name(variant.filter_size) if variant.filter_size is not None else None,
                "seeds": [
                    {k: v for k, v in r.items() if k not in ("variant", "diagonal")} for r in runs
                ],
                "summary": summary,
                "diagonal": {
                    "shifts": list(range(-m, m + 1)),
                    "probability_mean": per_seed_prob.mean(0).tolist(),
                    "probability_std": _std0(per_seed_prob).tolist(),
                    "accuracy_mean": per_seed_acc.mean(0).tolist(),
                    "accuracy_std": _std0(per_seed_acc).tolist(),
                    # One test image's curve per seed (the paper's Figure 1 shows single images).
                    "example_image": 0,
                    "example_probability": probs[:, 0].tolist(),
                },
            }
        )
    return {
        "config": config.to_dict(),
        "data": {
            "dataset": data.name,
            "train_images": int(data.train_labels.numel()),
            "test_images": int(data.test_labels.numel()),
            "image_size": list(data.test_images.shape[1:]),
        },
        "environment": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpu_cores": _cpu_count(),
            "workers": workers,
            "device": config.device,
        },
        "wall_time_s": wall,
        "variants": out_variants,
        "comparison": _compare(out_variants),
    }


def _std0(x: Tensor) -> Tensor:
    return x.std(0) if x.shape[0] > 1 else torch.zeros_like(x[0])


def _compare(variants: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each variant against the baseline: the difference of the means and whether it exceeds the spread.

    ``exceeds_spread``: the difference is larger than the sum of the two standard deviations over
    seeds. ``ranges_disjoint``: every seed of one beats every seed of the other.
    """
    base = next((v for v in variants if v["method"] == "max"), None)
    if base is None:
        return []
    out = []
    for v in variants:
        if v is base:
            continue
        for key in ("circular_consistency", "crop_consistency", "shift_accuracy", "clean_accuracy"):
            a, b = v["summary"][key], base["summary"][key]
            diff = a["mean"] - b["mean"]
            out.append(
                {
                    "variant": v["name"],
                    "metric": key,
                    "difference": diff,
                    "spread": a["std"] + b["std"],
                    "exceeds_spread": abs(diff) > a["std"] + b["std"],
                    "ranges_disjoint": a["min"] > b["max"] or a["max"] < b["min"],
                }
            )
    return out


# --------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------


def format_table(result: dict[str, Any], *, markdown: bool = False) -> str:
    """The results as a text (or Markdown) table: mean ± standard deviation over seeds, in percent."""
    seeds = len(result["config"]["seeds"])
    spread = f"mean ± std over {seeds} seeds" if seeds > 1 else "1 seed"
    header = ["model"] + [title for _, title in METRICS]
    rows = []
    for v in result["variants"]:
        row = [v["label"]]
        for key, _ in METRICS:
            s = v["summary"][key]
            row.append(f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f}" if seeds > 1 else f"{100 * s['mean']:.1f}")
        rows.append(row)
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * len(METRICS)) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines) + f"\n\nPercent, {spread}."
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def fmt(r: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))

    lines = [fmt(header), "  ".join("-" * w for w in widths)] + [fmt(r) for r in rows]
    return "\n".join(lines) + f"\n(percent, {spread})"


def write_outputs(result: dict[str, Any], output: str | os.PathLike) -> dict[str, Path]:
    """Write ``results.json``, ``table.md``, ``consistency.png`` and ``diagonal.png`` into ``output``.

    Returns:
        ``{"json": ..., "table": ..., "consistency": ..., "diagonal": ...}``, the written paths.
    """
    folder = Path(output)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"output must be a folder, got the file {str(folder)!r}")
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": folder / "results.json",
        "table": folder / "table.md",
        "consistency": folder / "consistency.png",
        "diagonal": folder / "diagonal.png",
    }
    paths["json"].write_text(json.dumps(result, indent=1) + "\n")
    paths["table"].write_text(format_table(result, markdown=True) + "\n")
    _plot_consistency(result, paths["consistency"])
    _plot_diagonal(result, paths["diagonal"])
    return paths


def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError("the demo's plots need matplotlib: pip install 'antialias[demo]'") from exc
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)  # draw on the Agg canvas directly: no display, no change to pyplot's backend
    return fig


def _plot_consistency(result: dict[str, Any], path: Path) -> None:
    variants = result["variants"]
    seeds = len(result["config"]["seeds"])
    fig = _figure(max(6.0, 1.3 * len(variants) + 3), 4.2)
    ax = fig.subplots()
    keys = [
        ("circular_consistency", "consistency, circular shifts"),
        ("crop_consistency", "consistency, shifted crops"),
        ("shift_accuracy", "accuracy under shift"),
    ]
    width = 0.8 / len(keys)
    low = 100.0
    for j, (key, title) in enumerate(keys):
        xs = [i + (j - (len(keys) - 1) / 2) * width for i in range(len(variants))]
        means = [100 * v["summary"][key]["mean"] for v in variants]
        stds = [100 * v["summary"][key]["std"] for v in variants]
        bars = ax.bar(xs, means, width, yerr=stds if seeds > 1 else None, capsize=2, label=title)
        ax.bar_label(bars, fmt="%.1f", fontsize=7, rotation=90, padding=3)
        low = min(low, min(m - s for m, s in zip(means, stds, strict=True)))
    ax.set_xticks(range(len(variants)), [v["label"] for v in variants], rotation=20, ha="right")
    ax.set(ylabel="%", ylim=(max(0.0, math.floor(low / 5) * 5 - 5), 109))
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    spread = f"mean ± std over {seeds} seeds" if seeds > 1 else "1 seed"
    ax.set_title(
        f"Shifts of ±{result['config']['max_shift']} px, no shift augmentation "
        f"({result['data']['dataset']}, {spread})"
    )
    fig.savefig(path, format="png", bbox_inches="tight")


def _plot_diagonal(result: dict[str, Any], path: Path) -> None:
    fig = _figure(11.5, 4.2)
    ax_img, ax_mean = fig.subplots(1, 2)
    for v in result["variants"]:
        d = v["diagonal"]
        shifts = d["shifts"]
        line = ax_img.plot(shifts, d["example_probability"][0], marker=".", label=v["label"])
        mean, std = d["probability_mean"], d["probability_std"]
        ax_mean.plot(shifts, mean, color=line[0].get_color(), marker=".", label=v["label"])
        ax_mean.fill_between(
            shifts, [a - b for a, b in zip(mean, std, strict=True)], [a + b for a, b in zip(mean, std, strict=True)],
            color=line[0].get_color(), alpha=0.15, linewidth=0,
        )
    first = result["variants"][0]["diagonal"]
    ax_img.set(
        title=f"one test image (#{first['example_image']}), seed {result['config']['seeds'][0]}",
        xlabel="diagonal shift (pixels)", ylabel="probability of the correct class", ylim=(-0.02, 1.02),
    )
    ax_mean.set(title="mean over test images (band: std over seeds)", xlabel="diagonal shift (pixels)",
                ylabel="probability of the correct class")
    for ax in (ax_img, ax_mean):
        ax.grid(alpha=0.3)
    ax_img.legend(fontsize="small", loc="lower left")
    fig.suptitle("Probability of the correct class as the image shifts diagonally (cf. Zhang 2019, Figure 1)")
    fig.savefig(path, format="png", bbox_inches="tight")
