"""Accuracy of a classifier, unshifted and along every shift of a range (the diagonal, the worst case).

Every function takes a model and ``data``, labelled ``(images, labels)`` batches, and returns a
result whose summary values are fractions in [0, 1] and which keeps per-image records. Shifted views
follow the conventions of :mod:`antialias.metrics.shift` (crop windows centred, ``torch.roll`` for
circular shifts); all views of a batch go through the model in as few forward passes as
``chunk_size`` (None: all at once) allows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from antialias.metrics._common import (
    Data,
    Render,
    classify_views,
    crop_views,
    mean,
    positive_int,
    records,
    roll_views,
    summary_repr,
)

__all__ = [
    "AccuracyResult",
    "DiagonalResult",
    "WorstCaseResult",
    "accuracy",
    "diagonal_shift",
    "evaluate_accuracy",
    "worst_case_accuracy",
]


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
        out: dict[str, Any] = {f"top{k}": mean(self.correct[:, i]) for i, k in enumerate(self.topk)}
        return {**out, "images": int(self.labels.numel())}

    def records(self) -> list[dict[str, Any]]:
        hits = {f"top{k}": self.correct[:, i] for i, k in enumerate(self.topk)}
        return records(self.labels, prediction=self.predictions, **hits)


def _unshifted(n: int) -> torch.Tensor:
    return torch.zeros(n, 1, 2, dtype=torch.long)


def evaluate_accuracy(
    model: nn.Module,
    data: Data,
    *,
    topk: Sequence[int] = (1, 5),
    device: torch.device | str | None = None,
    progress: bool = False,
) -> AccuracyResult:
    """Top-k accuracy of ``model`` on ``data``, with per-image records (see :func:`accuracy`)."""
    ks = tuple(positive_int("topk", int(k)) for k in topk)
    if not ks:
        raise ValueError("topk must name at least one k")

    def reduce(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        # k above the number of classes means "any class": always correct.
        kmax = min(max(ks), logits.shape[2])
        top = logits[:, 0].topk(kmax, dim=1).indices
        hit = top == labels[:, None]
        correct = torch.stack([hit[:, : min(k, kmax)].any(1) for k in ks], dim=1)
        return {"correct": correct, "predictions": top[:, 0]}

    out = classify_views(
        model,
        data,
        draw=_unshifted,
        render=lambda images, index, _: images[index],
        what="accuracy",
        labelled=True,
        reduce=reduce,
        device=device,
        progress=progress,
        chunk_size=None,
    )
    return AccuracyResult(ks, out["correct"], out["predictions"], out["labels"])


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
        return mean((self.predictions == self.predictions[:, :1]).all(1))

    def summary(self) -> dict[str, Any]:
        return {
            "accuracy": mean(self.correct),
            "probability": mean(self.probabilities),
            "stability": self.stability,
            "images": int(self.labels.numel()),
            "offsets": self.offsets.tolist(),
            "accuracy_per_offset": self.accuracy_per_offset.tolist(),
            "probability_per_offset": self.probability_per_offset.tolist(),
            **self.params,
        }

    def records(self) -> list[dict[str, Any]]:
        return records(self.labels, probabilities=self.probabilities, predictions=self.predictions)


def _correct_class(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """Top-1 class and softmax probability of the label, per view."""
    probs = logits.softmax(2)
    target = labels.view(-1, 1, 1).expand(*probs.shape[:2], 1)
    return {"probabilities": probs.gather(2, target).squeeze(2), "predictions": probs.argmax(2)}


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
    positive_int("crop_size", crop_size)
    positive_int("max_offset", max_offset, minimum=0)
    diagonal = torch.arange(max_offset + 1)[:, None].expand(-1, 2)
    out = classify_views(
        model,
        data,
        draw=lambda n: diagonal.expand(n, -1, -1),
        render=crop_views(crop_size, max_offset),
        what="the diagonal shift",
        min_size=crop_size + max_offset,
        labelled=True,
        reduce=_correct_class,
        device=device,
        progress=progress,
        chunk_size=chunk_size,
    )
    return DiagonalResult(
        offsets=torch.arange(max_offset + 1),
        probabilities=out["probabilities"],
        predictions=out["predictions"],
        labels=out["labels"],
        params={"crop_size": crop_size, "max_offset": max_offset},
    )


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
        return mean(self.correct.flatten(1).all(1))

    @property
    def accuracy_per_shift(self) -> torch.Tensor:
        """``(Sy, Sx)`` accuracy at each shift."""
        return self.correct.float().mean(0)

    @property
    def unshifted_accuracy(self) -> float:
        """Accuracy at shift (0, 0)."""
        iy = int((self.shifts_y == 0).nonzero()[0])
        ix = int((self.shifts_x == 0).nonzero()[0])
        return mean(self.correct[:, iy, ix])

    @property
    def stability(self) -> float:
        """Fraction of images whose top-1 class is the same under every shift."""
        flat = self.predictions.flatten(1)
        return mean((flat == flat[:, :1]).all(1))

    def summary(self) -> dict[str, Any]:
        return {
            "worst_case_accuracy": self.worst_case_accuracy,
            "mean_accuracy": mean(self.correct),
            "unshifted_accuracy": self.unshifted_accuracy,
            "stability": self.stability,
            "images": int(self.labels.numel()),
            "mode": self.mode,
            **self.params,
        }

    def records(self) -> list[dict[str, Any]]:
        flat = self.correct.flatten(1)
        return records(self.labels, correct_all=flat.all(1), correct_shifts=flat.sum(1))


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
    positive_int("max_shift", max_shift, minimum=0)
    positive_int("step", step)
    if mode not in ("circular", "crop"):
        raise ValueError(f"mode must be 'circular' or 'crop', got {mode!r}")
    params: dict[str, Any] = {"max_shift": max_shift, "step": step}
    render: Render
    if mode == "circular":
        shifts = torch.arange(-max_shift, max_shift + 1, step)
        if 0 not in shifts.tolist():  # keep the unshifted view in the grid
            shifts = torch.unique(torch.cat([shifts, torch.zeros(1, dtype=shifts.dtype)]))
        render, min_size = roll_views, 0
    else:
        params["crop_size"] = positive_int("crop_size", crop_size)
        shifts = torch.arange(0, max_shift + 1, step)
        render, min_size = crop_views(crop_size, max_shift), crop_size + max_shift
    grid = torch.stack(torch.meshgrid(shifts, shifts, indexing="ij"), dim=-1).view(-1, 2)
    out = classify_views(
        model,
        data,
        draw=lambda n: grid.expand(n, -1, -1),
        render=render,
        what="worst-case accuracy",
        min_size=min_size,
        labelled=True,
        device=device,
        progress=progress,
        chunk_size=chunk_size,
    )
    predictions = out["predictions"].view(-1, shifts.numel(), shifts.numel())
    return WorstCaseResult(
        shifts_y=shifts,
        shifts_x=shifts,
        correct=predictions == out["labels"].view(-1, 1, 1),
        predictions=predictions,
        labels=out["labels"],
        mode=mode,
        params=params,
    )
