"""ImageNet-P: stability under perturbation sequences (Hendrycks & Dietterich, ICLR 2019).

Layout: ``root/<perturbation>/<class>/<sequence>``, a sequence being a video file (``.mp4``, the
published format, decoded with OpenCV) or a folder of frame images
(:class:`antialias.datasets.SequenceFolder`). The flip probability ``FP`` is the fraction of frame
pairs whose top-1 class differs: for noise perturbations each frame against the first, for the
others consecutive frames (``difficulty`` frames apart); averaged per sequence, then over
sequences. ``FR = FP / FP^AlexNet``; mFR is the mean over the 10 perturbations. The top-5 distance
``T5D`` compares the top-5 rankings of the same frame pairs; mT5D likewise.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from antialias.datasets import SequenceFolder, collate_sequences
from antialias.devices import resolve_device
from antialias.metrics._common import (
    benchmark_folders,
    eval_mode,
    forward_views,
    iterate,
    score_datasets,
)
from antialias.metrics._common import mean as _mean

__all__ = [
    "IMAGENET_P_PERTURBATIONS",
    "ImageNetPResult",
    "flip_probability",
    "imagenet_p_rates",
    "imagenet_p_scores",
    "top5_distance",
]

#: The 10 ImageNet-P perturbations that mFR and mT5D average.
IMAGENET_P_PERTURBATIONS: tuple[str, ...] = (
    "gaussian_noise",
    "shot_noise",
    "motion_blur",
    "zoom_blur",
    "snow",
    "brightness",
    "translate",
    "rotate",
    "tilt",
    "scale",
)


def _pairs(length: int, noise: bool, difficulty: int) -> list[tuple[int, int]]:
    """Frame index pairs compared in one sequence (see the module docstring); at least one."""
    if difficulty < 1:
        raise ValueError(f"difficulty must be >= 1, got {difficulty}")
    pairs = [(0, j) for j in range(1, length)] if noise else []
    for start in range(0 if noise else difficulty):
        frames = list(range(start, length, difficulty))
        pairs += list(zip(frames[:-1], frames[1:], strict=True))
    if not pairs:
        raise ValueError(f"a sequence of {length} frames has no frame pair to compare")
    return pairs


def _check_sequences(sequences: Sequence[torch.Tensor] | torch.Tensor, what: str) -> None:
    if len(sequences) == 0:
        raise ValueError(f"{what}: no sequence given")


def flip_probability(
    predictions: Sequence[torch.Tensor] | torch.Tensor,
    *,
    noise: bool,
    difficulty: int = 1,
) -> float:
    """ImageNet-P flip probability of top-1 predictions over perturbation sequences.

    Args:
        predictions: per sequence, the ``(T,)`` top-1 class of each frame (or a ``(V, T)`` tensor).
        noise: noise perturbations compare every frame with the first; the others compare frames
            ``difficulty`` apart, consecutively.
        difficulty: frame step for non-noise perturbations (1, 2 or 3 in ImageNet-P).

    Returns:
        The mean over sequences of the fraction of compared frame pairs whose top-1 differs.

    Example:
        >>> flip_probability([torch.tensor([0, 0, 1, 1])], noise=False)  # 1 flip in 3 pairs
        0.3333333333333333
    """
    _check_sequences(predictions, "flip_probability")
    rates = []
    for preds in predictions:
        preds = torch.as_tensor(preds)
        rates.append(
            _mean(float(preds[a] != preds[b]) for a, b in _pairs(preds.shape[0], noise, difficulty))
        )
    return _mean(rates)


def _top5_pair_distance(reference: torch.Tensor, other: torch.Tensor) -> int:
    """Top-5 distance between the rankings of two logit vectors (Hendrycks & Dietterich).

    For the k-th class of the reference's top 5 (k = 0..4) with 0-based rank r_k in ``other``:
    ``sum_k |k - min(r_k, 5)|``. Ties are ranked in index order (an ordinal ranking).
    """
    k = min(5, reference.numel())
    # Stable ascending sort of the negated logits: ties keep index order (ordinal ranks).
    order_ref = torch.sort(-reference, stable=True).indices
    order_other = torch.sort(-other, stable=True).indices
    rank_other = torch.empty_like(order_other)
    rank_other[order_other] = torch.arange(order_other.numel())
    ranks = rank_other[order_ref[:k]].clamp(max=k)
    return int((ranks - torch.arange(k)).abs().sum())


def top5_distance(
    logits: Sequence[torch.Tensor],
    *,
    noise: bool,
    difficulty: int = 1,
) -> float:
    """ImageNet-P top-5 distance over perturbation sequences.

    Args:
        logits: per sequence, the ``(T, classes)`` logits (or any scores) of its frames.
        noise: see :func:`flip_probability`.
        difficulty: see :func:`flip_probability`.

    Returns:
        The mean over sequences of the mean top-5 distance of the compared frame pairs (0 when the
        top-5 rankings never change; at most 15).
    """
    _check_sequences(logits, "top5_distance")
    per_sequence = []
    for seq in logits:
        seq = torch.as_tensor(seq)
        if seq.dim() != 2:
            raise ValueError(f"each sequence's logits must be (T, classes), got {tuple(seq.shape)}")
        pairs = _pairs(seq.shape[0], noise, difficulty)
        per_sequence.append(_mean(_top5_pair_distance(seq[a], seq[b]) for a, b in pairs))
    return _mean(per_sequence)


@dataclass
class ImageNetPResult:
    """ImageNet-P scores.

    Attributes:
        flip_probability: ``{perturbation: FP}``, in [0, 1].
        top5_distance: ``{perturbation: T5D}``.
        flip_rate: ``{perturbation: FP / FP_AlexNet}`` where AlexNet's is known.
        top5_rate: ``{perturbation: T5D / T5D_AlexNet}`` where known.
        mfr: mean flip rate (None without AlexNet references).
        mt5d: mean normalized top-5 distance (None without references).
        complete: all 10 perturbations normalized.
    """

    flip_probability: dict[str, float]
    top5_distance: dict[str, float]
    flip_rate: dict[str, float]
    top5_rate: dict[str, float]
    mfr: float | None
    mt5d: float | None
    complete: bool
    params: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "mfr": self.mfr,
            "mt5d": self.mt5d,
            "mean_flip_probability": _mean(self.flip_probability.values()),
            "mean_top5_distance": _mean(self.top5_distance.values()),
            "complete": self.complete,
            "flip_probability": self.flip_probability,
            "top5_distance": self.top5_distance,
            "flip_rate": self.flip_rate,
            "top5_rate": self.top5_rate,
            **self.params,
        }

    def records(self) -> list[dict[str, Any]]:
        return []


def imagenet_p_scores(
    rates: Mapping[str, Mapping[str, float]],
    *,
    alexnet: Mapping[str, Mapping[str, float]] | None = None,
) -> ImageNetPResult:
    """FR, mFR, normalized T5D and mT5D from raw rates (a pure function).

    Args:
        rates: ``{perturbation: {"flip_probability": FP, "top5_distance": T5D}}`` of the model,
            e.g. from :func:`imagenet_p_rates`.
        alexnet: the same for AlexNet, evaluated on the same sequences (the normalizer of mFR and
            mT5D). Without it only the raw rates are reported.

    Returns:
        An :class:`ImageNetPResult`.
    """
    fp = {p: float(r["flip_probability"]) for p, r in rates.items()}
    t5d = {p: float(r["top5_distance"]) for p, r in rates.items()}
    fr: dict[str, float] = {}
    t5r: dict[str, float] = {}
    for p in rates:
        ref = (alexnet or {}).get(p)
        if ref is None:
            continue
        if ref["flip_probability"] > 0:
            fr[p] = fp[p] / float(ref["flip_probability"])
        if ref["top5_distance"] > 0:
            t5r[p] = t5d[p] / float(ref["top5_distance"])
    return ImageNetPResult(
        flip_probability=fp,
        top5_distance=t5d,
        flip_rate=fr,
        top5_rate=t5r,
        mfr=_mean(fr.values()) if fr else None,
        mt5d=_mean(t5r.values()) if t5r else None,
        complete=set(IMAGENET_P_PERTURBATIONS) <= set(fr)
        and set(IMAGENET_P_PERTURBATIONS) <= set(t5r),
    )


def imagenet_p_rates(
    model: nn.Module,
    root: str | os.PathLike,
    *,
    perturbations: Sequence[str] | None = None,
    difficulty: int = 1,
    transform: Callable | None = None,
    batch_size: int = 4,
    num_workers: int = 0,
    chunk_size: int | None = None,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> dict[str, dict[str, float]]:
    """Flip probability and top-5 distance of ``model`` on ImageNet-P sequences.

    Args:
        model: classifier returning ``(N, classes)`` logits.
        root: ``root/<perturbation>/<class>/<sequence>``; noise perturbations at ``difficulty``
            d > 1 are read from ``root/<perturbation>_<d>`` (the published layout).
        perturbations: which to score; default every perturbation folder in ``root``.
        difficulty: 1, 2 or 3 (frame step for non-noise perturbations).
        transform: frame transform; default ToTensor + ImageNet Normalize (published frames
            are already 224x224).
        batch_size: sequences per batch (all their frames go through the model together).
        num_workers: DataLoader worker processes.
        chunk_size: most frames per forward pass; None: all frames of a batch.
        device: where to run; default the model's device.
        progress: show progress bars.

    Returns:
        ``{perturbation: {"flip_probability": FP, "top5_distance": T5D}}``.
    """
    from torchvision import transforms

    from antialias.data import IMAGENET_MEAN, IMAGENET_STD

    if difficulty not in (1, 2, 3):
        raise ValueError(f"difficulty must be 1, 2 or 3, got {difficulty}")
    base, names = benchmark_folders(
        root, "ImageNet-P", "perturbation", perturbations, skip=("_2", "_3")
    )
    tf = transform or transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize(list(IMAGENET_MEAN), list(IMAGENET_STD))]
    )
    dev = resolve_device(device, model=model)

    def rates(name: str, loader: DataLoader) -> dict[str, float]:
        logits: list[torch.Tensor] = []
        with eval_mode(model):
            for sequences in iterate(loader, progress, name):
                # Sequences may differ in length: run their frames together, split after.
                flat = torch.cat(sequences)

                def frames(a: int, b: int, flat: torch.Tensor = flat) -> torch.Tensor:
                    return flat[a:b]

                out = forward_views(model, frames, flat.shape[0], chunk_size, dev)
                logits += out.cpu().split([seq.shape[0] for seq in sequences])
        noise = "noise" in name
        return {
            "flip_probability": flip_probability(
                [seq.argmax(1) for seq in logits], noise=noise, difficulty=difficulty
            ),
            "top5_distance": top5_distance(logits, noise=noise, difficulty=difficulty),
        }

    def folder(name: str) -> Path:  # noise perturbations of difficulty d > 1 live in <name>_<d>
        return base / (f"{name}_{difficulty}" if "noise" in name and difficulty > 1 else name)

    return score_datasets(
        ((name, SequenceFolder(folder(name), tf)) for name in names),
        rates,
        desc="ImageNet-P",
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=collate_sequences,
    )
