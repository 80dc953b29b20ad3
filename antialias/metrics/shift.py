"""Accuracy and shift-invariance of a classifier: the paper's protocols and the later ones.

Every function takes a model and ``data``, an iterable of ``(images, labels)`` batches (a
``DataLoader`` over :func:`antialias.data.load_image_folder`, say), and returns a result whose
summary values are fractions in [0, 1] and which keeps per-image records. Random shifts come from an
explicit ``torch.Generator`` (on the CPU); ``None`` uses torch's global generator.

All shifted views of a batch are rendered together and classified in as few forward passes as
``chunk_size`` (the most images per forward pass; ``None``: all views of a batch at once) allows.

Convention:
    Offsets and shifts are ``(dy, dx)`` = (rows, columns). A crop at offset ``(dy, dx)`` is
    ``image[..., y0 + dy : y0 + dy + crop_size, x0 + dx : x0 + dx + crop_size]``, where the window
    ``(y0, x0)`` is centred in the image: ``y0 = (H - crop_size - span) // 2`` with ``span`` the
    largest offset, so an image of exactly ``crop_size + span`` (the reference's 256 for 224
    crops) has ``y0 = 0``, as in the reference. A circular shift by ``(dy, dx)`` is
    ``torch.roll(image, (dy, dx), dims=(-2, -1))``: content moves down and right.
    Means are over all images of all batches (a batch of 3 counts 3 times as much as a batch of 1).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from antialias.metrics._common import (
    check_batch,
    check_generator,
    check_labels,
    check_logits,
    draw_float,
    draw_int,
    eval_mode,
    forward_views,
    iterate,
    resolve_device,
    summary_repr,
)

__all__ = [
    "AccuracyResult",
    "ConsistencyResult",
    "DiagonalResult",
    "WorstCaseResult",
    "accuracy",
    "circular_consistency",
    "crop_consistency",
    "diagonal_shift",
    "evaluate_accuracy",
    "fractional_consistency",
    "fractional_shift",
    "worst_case_accuracy",
]

logger = logging.getLogger(__name__)

Data = Iterable[tuple[torch.Tensor, torch.Tensor]]


def _positive_int(name: str, value: int, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _labelled(labels: torch.Tensor) -> bool:
    return labels.numel() > 0 and bool((labels >= 0).all())


def _mean(values: torch.Tensor) -> float:
    return float(values.float().mean()) if values.numel() else float("nan")


# --------------------------------------------------------------------------------------------
# Sub-pixel shift
# --------------------------------------------------------------------------------------------


def fractional_shift(x: torch.Tensor, shift: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """Shift images circularly by real amounts, band-limited (Fourier phase ramp).

    The shift theorem: multiplying the 2-D DFT by ``exp(-2 pi i (f_y dy + f_x dx))`` moves the
    content by ``(dy, dx)`` pixels, treating the image as one period of a band-limited signal.
    Integer shifts equal ``torch.roll(x, (dy, dx), dims=(-2, -1))`` (up to float rounding);
    fractional ones are the ideal (sinc) interpolation, the sub-pixel shift of Michaeli et al.
    (CVPR 2023). On even sizes the Nyquist row/column is kept real (its phase factor becomes
    ``cos(pi d)``), so the output stays real.

    Args:
        x: float images.
        shift: ``(dy, dx)`` for all images, or an ``(N, 2)`` tensor of one shift per leading index.

    Returns:
        The shifted images, same shape and dtype as ``x``.

    Shape:
        - x: :math:`(N, *, H, W)` (or :math:`(*, H, W)` with a single shift).
        - shift: :math:`(2,)` or :math:`(N, 2)`.
        - Output: same as ``x``.

    Example:
        >>> x = torch.arange(16.0).view(1, 1, 4, 4)
        >>> rolled = torch.roll(x, (1, 2), dims=(-2, -1))
        >>> torch.allclose(fractional_shift(x, (1, 2)), rolled, atol=1e-5)
        True
    """
    if not torch.is_floating_point(x):
        raise TypeError(f"fractional_shift needs a float tensor, got {x.dtype}")
    if x.dim() < 2:
        raise ValueError(f"x must have at least 2 dims (H, W), got shape {tuple(x.shape)}")
    s = torch.as_tensor(shift, dtype=torch.float64, device=x.device)
    height, width = x.shape[-2:]
    # Phases in float64: 2*pi*f*d reaches ~100 rad for 32-pixel shifts, too coarse in float32.
    fy = torch.fft.fftfreq(height, dtype=torch.float64, device=x.device)
    fx = torch.fft.fftfreq(width, dtype=torch.float64, device=x.device)
    if s.shape == (2,):
        phase = fy[:, None] * s[0] + fx[None, :] * s[1]
    elif s.dim() == 2 and s.shape[1] == 2 and x.dim() >= 3 and s.shape[0] == x.shape[0]:
        phase = fy[None, :, None] * s[:, 0, None, None] + fx[None, None, :] * s[:, 1, None, None]
        phase = phase.view(s.shape[0], *([1] * (x.dim() - 3)), height, width)
    else:
        raise ValueError(
            f"shift must have shape (2,) or ({x.shape[0]}, 2) for x of shape {tuple(x.shape)}, "
            f"got {tuple(s.shape)}"
        )
    # Half precision has no FFT on every device: compute in float32 and cast back.
    work = x if x.dtype in (torch.float32, torch.float64) else x.float()
    complex_dtype = torch.complex128 if work.dtype == torch.float64 else torch.complex64
    ramp = torch.polar(torch.ones_like(phase), -2 * math.pi * phase).to(complex_dtype)
    return torch.fft.ifft2(torch.fft.fft2(work) * ramp).real.to(x.dtype)


# --------------------------------------------------------------------------------------------
# Accuracy
# --------------------------------------------------------------------------------------------


@dataclass
class AccuracyResult:
    """Top-k accuracy with per-image records.

    Attributes:
        topk: the k values, in the order of ``correct``'s columns.
        correct: ``(N, len(topk))`` bool, whether the label is among the top k.
        predictions: ``(N,)`` top-1 class.
        labels: ``(N,)``.
    """

    __repr__ = summary_repr

    topk: tuple[int, ...]
    correct: torch.Tensor
    predictions: torch.Tensor
    labels: torch.Tensor

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            f"top{k}": _mean(self.correct[:, i]) for i, k in enumerate(self.topk)
        }
        out["images"] = int(self.labels.numel())
        return out

    def records(self) -> list[dict[str, Any]]:
        return [
            {
                "index": i,
                "label": int(self.labels[i]),
                "prediction": int(self.predictions[i]),
                **{f"top{k}": bool(self.correct[i, j]) for j, k in enumerate(self.topk)},
            }
            for i in range(self.labels.numel())
        ]


def evaluate_accuracy(
    model: nn.Module,
    data: Data,
    *,
    topk: Sequence[int] = (1, 5),
    device: torch.device | str | None = None,
    progress: bool = False,
) -> AccuracyResult:
    """Top-k accuracy of ``model`` on ``data``, with per-image records (see :func:`accuracy`)."""
    ks = tuple(_positive_int("topk", int(k)) for k in topk)
    if not ks:
        raise ValueError("topk must name at least one k")
    dev = resolve_device(device, model=model)
    correct, preds, labels_all = [], [], []
    with eval_mode(model):
        for batch in iterate(data, progress, "accuracy"):
            images, labels = check_batch(batch)

            def rows(a: int, b: int, images: torch.Tensor = images) -> torch.Tensor:
                return images[a:b]

            logits = forward_views(model, rows, images.shape[0], None, dev)
            check_labels(logits, labels, "accuracy")
            # k above the number of classes means "any class": always correct.
            kmax = min(max(ks), logits.shape[1])
            top = logits.topk(kmax, dim=1).indices.cpu()
            hit = top == labels[:, None]
            correct.append(torch.stack([hit[:, : min(k, kmax)].any(1) for k in ks], dim=1))
            preds.append(top[:, 0])
            labels_all.append(labels)
    if not labels_all:
        raise ValueError("data yielded no batch")
    return AccuracyResult(ks, torch.cat(correct), torch.cat(preds), torch.cat(labels_all))


def accuracy(
    model: nn.Module,
    data: Data,
    *,
    topk: Sequence[int] = (1, 5),
    device: torch.device | str | None = None,
    progress: bool = False,
) -> dict[str, float]:
    """Top-k accuracy: the fraction of images whose label is among the k highest logits.

    The protocol of the paper feeds Resize(256) + CenterCrop(224) images
    (:func:`antialias.data.eval_transform`).

    Args:
        model: a classifier returning ``(N, classes)`` logits.
        data: ``(images, labels)`` batches.
        topk: the k values to report.
        device: where to run; default the model's device.
        progress: show a progress bar.

    Returns:
        ``{"top1": ..., "top5": ...}``, fractions in [0, 1] (a k larger than the number of classes
        counts every image as correct).

    Example:
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
        >>> data = [(torch.zeros(2, 1, 2, 2), torch.tensor([0, 1]))]
        >>> sorted(accuracy(model, data, topk=(1, 3)))
        ['top1', 'top3']
    """
    result = evaluate_accuracy(model, data, topk=topk, device=device, progress=progress)
    summary = result.summary()
    return {f"top{k}": summary[f"top{k}"] for k in result.topk}


# --------------------------------------------------------------------------------------------
# Consistency: two shifted views of each image, do their top-1 classes agree?
# --------------------------------------------------------------------------------------------


@dataclass
class ConsistencyResult:
    """Agreement of the top-1 class between pairs of shifted views.

    Attributes:
        consistency: fraction of view pairs whose top-1 classes agree, in [0, 1].
        kind: ``"crop"``, ``"circular"`` or ``"fractional"``.
        agree: ``(N, passes)`` bool, per image and pass.
        offsets: ``(N, passes, 2, 2)``: per image, pass and view, the ``(dy, dx)`` offset (crop) or
            shift (circular, fractional; float for fractional).
        predictions: ``(N, passes, 2)`` top-1 class of each view.
        labels: ``(N,)`` (``-1`` for unlabelled images).
        params: the protocol's parameters (crop size, offset range, ...).
    """

    __repr__ = summary_repr

    consistency: float
    kind: str
    agree: torch.Tensor
    offsets: torch.Tensor
    predictions: torch.Tensor
    labels: torch.Tensor
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def accuracy(self) -> float | None:
        """Fraction of all shifted views classified correctly; None without labels."""
        if not _labelled(self.labels):
            return None
        return _mean(self.predictions == self.labels[:, None, None])

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"consistency": self.consistency}
        if self.accuracy is not None:
            out["accuracy"] = self.accuracy
        out["images"] = int(self.labels.numel())
        out.update(self.params)
        return out

    def records(self) -> list[dict[str, Any]]:
        return [
            {
                "index": i,
                "label": int(self.labels[i]),
                "agree": self.agree[i].tolist(),
                "offsets": self.offsets[i].tolist(),
                "predictions": self.predictions[i].tolist(),
            }
            for i in range(self.labels.numel())
        ]


def _consistency_loop(
    model: nn.Module,
    data: Data,
    *,
    kind: str,
    passes: int,
    min_size: tuple[int, int] | None,
    draw: Any,
    render_views: Any,
    device: torch.device | str | None,
    progress: bool,
    chunk_size: int | None,
    params: dict[str, Any],
) -> ConsistencyResult:
    """Shared loop: ``draw(batch_size)`` gives (B, passes, 2, 2) offsets; ``render_views(images,
    image_indices, offsets)`` renders a chunk of views; all 2 * passes views of a batch go through
    the model together (or ``chunk_size`` at a time)."""
    dev = resolve_device(device, model=model)
    agree_all, offsets_all, preds_all, labels_all = [], [], [], []
    with eval_mode(model):
        for batch in iterate(data, progress, f"{kind} consistency"):
            images, labels = check_batch(batch, min_size, f"{kind} consistency")
            images = images.to(dev)
            n = images.shape[0]
            offsets = draw(n)
            flat = offsets.reshape(-1, 2)  # view order: image, pass, view
            per_image = 2 * passes

            def render(start: int, stop: int, images=images, flat=flat, per_image=per_image):
                index = [i // per_image for i in range(start, stop)]
                return render_views(images, index, flat[start:stop])

            logits = forward_views(model, render, n * per_image, chunk_size, dev)
            check_logits(logits)  # labels are not needed: unlabelled images are fine
            preds = logits.argmax(1).cpu().view(n, passes, 2)
            agree_all.append(preds[..., 0] == preds[..., 1])
            offsets_all.append(offsets)
            preds_all.append(preds)
            labels_all.append(labels)
    if not labels_all:
        raise ValueError("data yielded no batch")
    agree = torch.cat(agree_all)
    labels = torch.cat(labels_all)
    return ConsistencyResult(
        consistency=_mean(agree),
        kind=kind,
        agree=agree,
        offsets=torch.cat(offsets_all),
        predictions=torch.cat(preds_all),
        labels=labels,
        params=params,
    )


def crop_consistency(
    model: nn.Module,
    data: Data,
    *,
    crop_size: int = 224,
    max_offset: int = 32,
    passes: int = 5,
    generator: torch.Generator | None = None,
    shared_offsets: bool = False,
    device: torch.device | str | None = None,
    progress: bool = False,
    chunk_size: int | None = None,
) -> ConsistencyResult:
    """Crop consistency, the paper's shift-invariance measure (reference ``-es``).

    For each image and pass, two ``crop_size`` crops are taken at offsets ``(dy, dx)`` drawn
    uniformly and independently from ``{0, ..., max_offset - 1}`` per axis; the pair agrees when
    both crops get the same top-1 class. Labels are not used (but crop accuracy is reported when
    present). The paper: images Resize(256) + CenterCrop(256)
    (:func:`antialias.data.consistency_transform`), ``crop_size=224``, ``max_offset=32``,
    ``passes=5``.

    Convention:
        The reference draws one pair of offsets per batch (batch 8), shared by its images, from
        unseeded global randomness. By default offsets are drawn per image, from ``generator``;
        ``shared_offsets=True`` reproduces the reference's sharing. Both estimate the same
        expectation; per-image draws have lower variance. Per batch, offsets come from one call
        ``torch.randint(0, max_offset, (B, passes, 2, 2))`` (shared: ``(passes, 2, 2)``). The
        result is the mean over all ``N * passes`` pairs, which equals the reference's
        batch-size-weighted average over passes.

    Args:
        model: classifier returning ``(N, classes)`` logits.
        data: ``(images, labels)`` batches of images at least ``crop_size + max_offset - 1``
            pixels high and wide (the reference feeds exactly ``crop_size + max_offset``).
        crop_size: side of the square crops.
        max_offset: offsets are drawn from ``{0, ..., max_offset - 1}``.
        passes: crop pairs per image (the reference's passes over the data set).
        generator: CPU random generator for the offsets; None: torch's global one.
        shared_offsets: one pair of offsets per batch and pass, as the reference.
        device: where to run; default the model's device.
        progress: show a progress bar.
        chunk_size: most crops per forward pass; None: all ``2 * passes`` crops of every image of a
            batch in one pass.

    Returns:
        A :class:`ConsistencyResult` (``offsets`` are crop offsets).

    Shape:
        - images: :math:`(B, C, H, W)` with :math:`H, W \\ge crop\\_size + max\\_offset - 1`.
    """
    _positive_int("crop_size", crop_size)
    _positive_int("max_offset", max_offset)
    _positive_int("passes", passes)
    check_generator(generator)
    span = max_offset - 1

    def draw(n: int) -> torch.Tensor:
        if shared_offsets:
            return draw_int(0, max_offset, (passes, 2, 2), generator).expand(n, -1, -1, -1).clone()
        return draw_int(0, max_offset, (n, passes, 2, 2), generator)

    def render_views(images: torch.Tensor, index: list[int], offsets: torch.Tensor) -> torch.Tensor:
        base_y = (images.shape[-2] - crop_size - span) // 2
        base_x = (images.shape[-1] - crop_size - span) // 2
        views = []
        for i, (dy, dx) in zip(index, offsets.tolist(), strict=True):
            y0, x0 = base_y + dy, base_x + dx
            views.append(images[i, :, y0 : y0 + crop_size, x0 : x0 + crop_size])
        return torch.stack(views)

    need = crop_size + span
    return _consistency_loop(
        model,
        data,
        kind="crop",
        passes=passes,
        min_size=(need, need),
        draw=draw,
        render_views=render_views,
        device=device,
        progress=progress,
        chunk_size=chunk_size,
        params={
            "crop_size": crop_size,
            "max_offset": max_offset,
            "passes": passes,
            "shared_offsets": shared_offsets,
        },
    )


def circular_consistency(
    model: nn.Module,
    data: Data,
    *,
    max_shift: int = 32,
    passes: int = 5,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    progress: bool = False,
    chunk_size: int | None = None,
) -> ConsistencyResult:
    """Circular-shift consistency (APS, LPS, AFC): agreement under ``torch.roll`` of the input.

    For each image and pass, two circular shifts ``(dy, dx)`` are drawn uniformly from
    ``{0, ..., max_shift - 1}`` per axis (the relative shift then spans the same range as in
    :func:`crop_consistency`). No content enters or leaves the image, so a model with circular
    padding and polyphase sampling (APS, LPS) scores exactly 1.

    Args:
        model: classifier returning ``(N, classes)`` logits.
        data: ``(images, labels)`` batches of the images as the model sees them (e.g. 224x224).
        max_shift: shifts are drawn from ``{0, ..., max_shift - 1}``.
        passes: shift pairs per image.
        generator: CPU random generator; None: torch's global one.
        device: where to run; default the model's device.
        progress: show a progress bar.
        chunk_size: most views per forward pass; None: all views of a batch at once.

    Returns:
        A :class:`ConsistencyResult` (``offsets`` are roll amounts).
    """
    _positive_int("max_shift", max_shift)
    _positive_int("passes", passes)
    check_generator(generator)

    def draw(n: int) -> torch.Tensor:
        return draw_int(0, max_shift, (n, passes, 2, 2), generator)

    def render_views(images: torch.Tensor, index: list[int], shifts: torch.Tensor) -> torch.Tensor:
        return torch.stack(
            [
                torch.roll(images[i], (dy, dx), dims=(-2, -1))
                for i, (dy, dx) in zip(index, shifts.tolist(), strict=True)
            ]
        )

    return _consistency_loop(
        model,
        data,
        kind="circular",
        passes=passes,
        min_size=None,
        draw=draw,
        render_views=render_views,
        device=device,
        progress=progress,
        chunk_size=chunk_size,
        params={"max_shift": max_shift, "passes": passes},
    )


def fractional_consistency(
    model: nn.Module,
    data: Data,
    *,
    max_shift: float = 1.0,
    passes: int = 5,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    progress: bool = False,
    chunk_size: int | None = None,
) -> ConsistencyResult:
    """Sub-pixel shift consistency (AFC, Michaeli et al. CVPR 2023).

    For each image and pass, two shifts ``(dy, dx)`` are drawn uniformly from ``[0, max_shift)``
    per axis and applied with :func:`fractional_shift` (band-limited, circular). With the default
    ``max_shift=1`` only sub-pixel shifts occur: the part of shift-invariance that integer
    (circular) consistency cannot see.

    Args:
        model: classifier returning ``(N, classes)`` logits.
        data: ``(images, labels)`` batches of the images as the model sees them.
        max_shift: shifts are drawn from ``[0, max_shift)`` (float pixels).
        passes: shift pairs per image.
        generator: CPU random generator; None: torch's global one.
        device: where to run; default the model's device.
        progress: show a progress bar.
        chunk_size: most views per forward pass; None: all views of a batch at once.

    Returns:
        A :class:`ConsistencyResult` (float ``offsets``: the shifts).
    """
    if not (isinstance(max_shift, (int, float)) and max_shift > 0):
        raise ValueError(f"max_shift must be a positive number of pixels, got {max_shift!r}")
    _positive_int("passes", passes)
    check_generator(generator)

    def draw(n: int) -> torch.Tensor:
        return draw_float(float(max_shift), (n, passes, 2, 2), generator)

    def render_views(images: torch.Tensor, index: list[int], shifts: torch.Tensor) -> torch.Tensor:
        # One batched FFT for the whole chunk of views.
        return fractional_shift(images[index], shifts)

    return _consistency_loop(
        model,
        data,
        kind="fractional",
        passes=passes,
        min_size=None,
        draw=draw,
        render_views=render_views,
        device=device,
        progress=progress,
        chunk_size=chunk_size,
        params={"max_shift": float(max_shift), "passes": passes},
    )


# --------------------------------------------------------------------------------------------
# Diagonal: the paper's Figure 1 curves
# --------------------------------------------------------------------------------------------


@dataclass
class DiagonalResult:
    """Classification along a diagonal shift (the paper's Figure 1).

    Attributes:
        offsets: ``(D,)`` the diagonal offsets ``o`` (crop at ``(o, o)``), ``0..max_offset``.
        probabilities: ``(N, D)`` softmax probability of the correct class.
        predictions: ``(N, D)`` top-1 class.
        labels: ``(N,)``.
    """

    __repr__ = summary_repr

    offsets: torch.Tensor
    probabilities: torch.Tensor
    predictions: torch.Tensor
    labels: torch.Tensor
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def correct(self) -> torch.Tensor:
        """``(N, D)`` bool: top-1 correct per image and offset."""
        return self.predictions == self.labels[:, None]

    @property
    def accuracy_per_offset(self) -> torch.Tensor:
        """``(D,)`` fraction of images classified correctly at each offset."""
        return self.correct.float().mean(0)

    @property
    def probability_per_offset(self) -> torch.Tensor:
        """``(D,)`` mean probability of the correct class at each offset."""
        return self.probabilities.mean(0)

    @property
    def stability(self) -> float:
        """Fraction of images whose top-1 class is the same at every offset."""
        return _mean((self.predictions == self.predictions[:, :1]).all(1))

    def summary(self) -> dict[str, Any]:
        return {
            "accuracy": _mean(self.correct),
            "probability": _mean(self.probabilities),
            "stability": self.stability,
            "images": int(self.labels.numel()),
            "offsets": self.offsets.tolist(),
            "accuracy_per_offset": self.accuracy_per_offset.tolist(),
            "probability_per_offset": self.probability_per_offset.tolist(),
            **self.params,
        }

    def records(self) -> list[dict[str, Any]]:
        return [
            {
                "index": i,
                "label": int(self.labels[i]),
                "probabilities": self.probabilities[i].tolist(),
                "predictions": self.predictions[i].tolist(),
            }
            for i in range(self.labels.numel())
        ]


def diagonal_shift(
    model: nn.Module,
    data: Data,
    *,
    crop_size: int = 224,
    max_offset: int = 32,
    device: torch.device | str | None = None,
    progress: bool = False,
    chunk_size: int | None = None,
) -> DiagonalResult:
    """Accuracy and probability of the correct class along a diagonal shift (reference ``-ed``).

    For each image, ``max_offset + 1`` crops at offsets ``(o, o)``, ``o = 0..max_offset`` (33
    crops of 224 from a 256 image in the paper): per offset, whether the top-1 class is correct
    and the softmax probability of the correct class. A shift-invariant model gives flat curves.

    Args:
        model: classifier returning ``(N, classes)`` logits.
        data: labelled ``(images, labels)`` batches of images at least ``crop_size + max_offset``
            pixels high and wide.
        crop_size: side of the crops.
        max_offset: the largest offset (inclusive).
        device: where to run; default the model's device.
        progress: show a progress bar.
        chunk_size: most crops per forward pass; None: all crops of a batch at once.

    Returns:
        A :class:`DiagonalResult`.
    """
    _positive_int("crop_size", crop_size)
    _positive_int("max_offset", max_offset, minimum=0)
    dev = resolve_device(device, model=model)
    count = max_offset + 1
    need = crop_size + max_offset
    probs_all, preds_all, labels_all = [], [], []
    with eval_mode(model):
        for batch in iterate(data, progress, "diagonal"):
            images, labels = check_batch(batch, (need, need), "the diagonal shift")
            images = images.to(dev)
            n = images.shape[0]
            y0 = (images.shape[-2] - need) // 2
            x0 = (images.shape[-1] - need) // 2

            def render(start: int, stop: int, images=images, y0=y0, x0=x0):
                views = []
                for i in range(start, stop):
                    o = i % count
                    views.append(
                        images[
                            i // count, :, y0 + o : y0 + o + crop_size, x0 + o : x0 + o + crop_size
                        ]
                    )
                return torch.stack(views)

            logits = forward_views(model, render, n * count, chunk_size, dev)
            check_labels(logits, labels, "the diagonal shift")
            probs = logits.softmax(1).cpu().view(n, count, -1)
            target = labels.view(n, 1, 1).expand(n, count, 1)
            probs_all.append(probs.gather(2, target).squeeze(2))
            preds_all.append(probs.argmax(2))
            labels_all.append(labels)
    if not labels_all:
        raise ValueError("data yielded no batch")
    return DiagonalResult(
        offsets=torch.arange(count),
        probabilities=torch.cat(probs_all),
        predictions=torch.cat(preds_all),
        labels=torch.cat(labels_all),
        params={"crop_size": crop_size, "max_offset": max_offset},
    )


# --------------------------------------------------------------------------------------------
# Worst case over all shifts
# --------------------------------------------------------------------------------------------


@dataclass
class WorstCaseResult:
    """Accuracy under the worst (adversarial) shift in a range.

    Attributes:
        shifts_y: ``(Sy,)`` the row shifts (circular) or offsets (crop).
        shifts_x: ``(Sx,)`` the column shifts / offsets.
        correct: ``(N, Sy, Sx)`` bool, top-1 correct per image and shift.
        predictions: ``(N, Sy, Sx)`` top-1 class.
        labels: ``(N,)``.
        mode: ``"circular"`` or ``"crop"``.
    """

    __repr__ = summary_repr

    shifts_y: torch.Tensor
    shifts_x: torch.Tensor
    correct: torch.Tensor
    predictions: torch.Tensor
    labels: torch.Tensor
    mode: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def worst_case_accuracy(self) -> float:
        """Fraction of images classified correctly under every shift of the range."""
        return _mean(self.correct.flatten(1).all(1))

    @property
    def accuracy_per_shift(self) -> torch.Tensor:
        """``(Sy, Sx)`` accuracy at each shift."""
        return self.correct.float().mean(0)

    @property
    def unshifted_accuracy(self) -> float:
        """Accuracy at shift (0, 0)."""
        iy = int((self.shifts_y == 0).nonzero()[0])
        ix = int((self.shifts_x == 0).nonzero()[0])
        return _mean(self.correct[:, iy, ix])

    @property
    def stability(self) -> float:
        """Fraction of images whose top-1 class is the same under every shift."""
        flat = self.predictions.flatten(1)
        return _mean((flat == flat[:, :1]).all(1))

    def summary(self) -> dict[str, Any]:
        return {
            "worst_case_accuracy": self.worst_case_accuracy,
            "mean_accuracy": _mean(self.correct),
            "unshifted_accuracy": self.unshifted_accuracy,
            "stability": self.stability,
            "images": int(self.labels.numel()),
            "mode": self.mode,
            **self.params,
        }

    def records(self) -> list[dict[str, Any]]:
        return [
            {
                "index": i,
                "label": int(self.labels[i]),
                "correct_all": bool(self.correct[i].all()),
                "correct_shifts": int(self.correct[i].sum()),
            }
            for i in range(self.labels.numel())
        ]


def worst_case_accuracy(
    model: nn.Module,
    data: Data,
    *,
    max_shift: int = 4,
    mode: Literal["circular", "crop"] = "circular",
    crop_size: int = 224,
    step: int = 1,
    device: torch.device | str | None = None,
    progress: bool = False,
    chunk_size: int | None = None,
) -> WorstCaseResult:
    """Worst-case (adversarial) shift accuracy: correct under every integer shift of a range.

    An image counts as correct only if it is classified correctly under all shifts, the protocol
    of AFC (Michaeli et al., CVPR 2023). Every shift is evaluated, so the cost is
    ``(number of shifts)^2`` forward passes per image.

    Convention:
        ``mode="circular"``: shifts ``(dy, dx)`` in ``{-max_shift, ..., max_shift}`` (by ``step``)
        per axis, applied with ``torch.roll`` to the images as given.
        ``mode="crop"``: ``crop_size`` crops at offsets ``{0, ..., max_shift}`` (by ``step``) per
        axis of images at least ``crop_size + max_shift`` wide (window centred, as the diagonal).

    Args:
        model: classifier returning ``(N, classes)`` logits.
        data: labelled ``(images, labels)`` batches.
        max_shift: the range's bound (see Convention).
        mode: ``"circular"`` or ``"crop"``.
        crop_size: crop side (``mode="crop"`` only).
        step: spacing of the shifts.
        device: where to run; default the model's device.
        progress: show a progress bar.
        chunk_size: most views per forward pass; None: all views of a batch at once.

    Returns:
        A :class:`WorstCaseResult`.
    """
    _positive_int("max_shift", max_shift, minimum=0)
    _positive_int("step", step)
    if mode not in ("circular", "crop"):
        raise ValueError(f"mode must be 'circular' or 'crop', got {mode!r}")
    if mode == "circular":
        shifts = torch.arange(-max_shift, max_shift + 1, step)
        if 0 not in shifts.tolist():  # keep the unshifted view in the grid
            shifts = torch.unique(torch.cat([shifts, torch.zeros(1, dtype=shifts.dtype)]))
        need = None
    else:
        _positive_int("crop_size", crop_size)
        shifts = torch.arange(0, max_shift + 1, step)
        need = (crop_size + max_shift, crop_size + max_shift)
    count = shifts.numel()
    grid = torch.stack(torch.meshgrid(shifts, shifts, indexing="ij"), dim=-1).view(-1, 2)
    per_image = grid.shape[0]
    dev = resolve_device(device, model=model)
    correct_all, preds_all, labels_all = [], [], []
    with eval_mode(model):
        for batch in iterate(data, progress, f"worst-case ({mode})"):
            images, labels = check_batch(batch, need, "the worst-case shift")
            images = images.to(dev)
            n = images.shape[0]

            def render(start: int, stop: int, images=images):
                views = []
                for i in range(start, stop):
                    image = images[i // per_image]
                    dy, dx = (int(v) for v in grid[i % per_image])
                    if mode == "circular":
                        views.append(torch.roll(image, (dy, dx), dims=(-2, -1)))
                    else:
                        y0 = (image.shape[-2] - need[0]) // 2 + dy  # type: ignore[index]
                        x0 = (image.shape[-1] - need[1]) // 2 + dx  # type: ignore[index]
                        views.append(image[:, y0 : y0 + crop_size, x0 : x0 + crop_size])
                return torch.stack(views)

            logits = forward_views(model, render, n * per_image, chunk_size, dev)
            check_labels(logits, labels, "worst-case accuracy")
            preds = logits.argmax(1).cpu().view(n, count, count)
            preds_all.append(preds)
            correct_all.append(preds == labels.view(n, 1, 1))
            labels_all.append(labels)
    if not labels_all:
        raise ValueError("data yielded no batch")
    params: dict[str, Any] = {"max_shift": max_shift, "step": step}
    if mode == "crop":
        params["crop_size"] = crop_size
    return WorstCaseResult(
        shifts_y=shifts,
        shifts_x=shifts,
        correct=torch.cat(correct_all),
        predictions=torch.cat(preds_all),
        labels=torch.cat(labels_all),
        mode=mode,
        params=params,
    )
