"""Plumbing shared by the metrics: checks, the loop that classifies shifted views, per-image records."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from antialias.devices import resolve_device

__all__: list[str] = ["NonFiniteLogitsError"]

logger = logging.getLogger(__name__)

Batch = tuple[torch.Tensor, torch.Tensor]
Data = Iterable[Batch]
#: ``render(images, image_index, offsets)``: one view per ``(image_index[j], offsets[j])``, stacked.
Render = Callable[[torch.Tensor, list[int], torch.Tensor], torch.Tensor]
#: ``reduce(logits, labels)``: per-image tensors from the ``(n, views, classes)`` CPU logits of a batch.
Reduce = Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]


class NonFiniteLogitsError(ValueError):
    """The model returned NaN or infinite logits: a score over them would be meaningless, so none is given."""


def summary_repr(result: object) -> str:
    """``Name(field=value, ...)`` with every tensor shown by its shape and dtype, not its values.

    The ``repr`` of the metric results: a result holds per-image tensors (thousands of rows on
    ImageNet), which a plain dataclass ``repr`` would print in full.
    """

    def short(value: object) -> str:
        if isinstance(value, torch.Tensor):
            return f"<tensor {tuple(value.shape)} {str(value.dtype).removeprefix('torch.')}>"
        if isinstance(value, (list, tuple)) and len(value) > 8:
            return f"<{type(value).__name__} of {len(value)}>"
        if isinstance(value, dict) and any(isinstance(v, torch.Tensor) for v in value.values()):
            return "{" + ", ".join(f"{k!r}: {short(v)}" for k, v in value.items()) + "}"
        return repr(value)

    fields = dataclasses.fields(result)  # type: ignore[arg-type]
    shown = ", ".join(f"{f.name}={short(getattr(result, f.name))}" for f in fields if f.repr)
    return f"{type(result).__name__}({shown})"


def records(labels: torch.Tensor, **per_image: torch.Tensor) -> list[dict[str, Any]]:
    """One ``{"index", "label", **per_image}`` dict per image, tensors as Python values (``tolist``)."""
    return [
        {"index": i, "label": int(labels[i]), **{k: v[i].tolist() for k, v in per_image.items()}}
        for i in range(labels.numel())
    ]


def mean(values: torch.Tensor | Iterable[float]) -> float:
    """The mean of ``values`` (a tensor of any dtype, or numbers); NaN when there are none."""
    if isinstance(values, torch.Tensor):
        return float(values.float().mean()) if values.numel() else float("nan")
    values = list(values)
    return float(sum(values) / len(values)) if values else float("nan")


def positive_int(name: str, value: int, minimum: int = 1) -> int:
    """``value`` when it is an integer (not a bool) of at least ``minimum``; else ValueError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_chunk_size(chunk_size: int | None) -> None:
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive number of images, got {chunk_size}")


def check_generator(generator: torch.Generator | None) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )
    if generator is not None and generator.device.type != "cpu":
        raise ValueError(
            f"generator must live on the CPU (offsets are drawn there), got {generator.device}"
        )


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Put ``model`` in eval mode and no-grad for the block; restore its training flag after."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def iterate(data: Iterable, progress: bool, desc: str) -> Iterator:
    """Iterate ``data``, with a tqdm bar (stderr, with ETA when ``len(data)`` is known)."""
    if not progress:
        yield from data
        return
    from tqdm.auto import tqdm

    try:
        total = len(data)  # type: ignore[arg-type]
    except TypeError:
        total = None
    with tqdm(data, total=total, desc=desc, unit="batch", dynamic_ncols=True, leave=False) as bar:
        yield from bar


def check_batch(batch: object, min_size: int = 0, what: str = "", labelled: bool = False) -> Batch:
    """Validate one ``(images, labels)`` batch of images at least ``min_size`` square and return it
    (``labelled``: the labels must be integer class indices)."""
    if not isinstance(batch, (tuple, list)) or len(batch) < 2:
        raise TypeError(f"data must yield (images, labels) batches, got {type(batch).__name__}")
    images, labels = batch[0], batch[1]
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a (N, C, H, W) tensor, got {shape}")
    labels = torch.as_tensor(labels)
    if labels.dim() != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(
            f"labels must be a ({images.shape[0]},) tensor matching the images, "
            f"got shape {tuple(labels.shape)}"
        )
    if labelled and (
        labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool
    ):
        # Truncating 1.9 to class 1 would score a wrong label; even 1.0 is refused, so that a
        # caller's labels are never silently converted.
        raise TypeError(
            f"labels must be an integer tensor of class indices, got dtype {labels.dtype}"
            + (f" (values such as {labels.flatten()[0].item()!r})" if labels.numel() else "")
            + "; pass labels.long() when they hold whole class numbers"
        )
    height, width = images.shape[-2:]
    if height < min_size or width < min_size:
        raise ValueError(
            f"images are {height}x{width} but {what} needs at least {min_size}x{min_size}; feed "
            f"larger images (e.g. Resize+CenterCrop to {min_size}) or lower the crop size / shift range"
        )
    return images, labels.long()


def check_logits(logits: torch.Tensor, labels: torch.Tensor | None = None, what: str = "") -> None:
    """Fail clearly when the model does not return ``(N, classes)`` logits or, with ``labels``, when
    they are missing (-1) or beyond the model's classes."""
    if logits.dim() != 2:
        raise ValueError(
            f"the model must return (N, classes) logits, got shape {tuple(logits.shape)}"
        )
    if labels is None or labels.numel() == 0:
        return
    if int(labels.min()) < 0:
        raise ValueError(
            f"{what} needs labelled images: the data has no class folders (labels are -1)"
        )
    if int(labels.max()) >= logits.shape[1]:
        raise ValueError(
            f"the data has label {int(labels.max())} but the model outputs only {logits.shape[1]} classes"
        )


def forward_views(
    model: nn.Module,
    render: Callable[[int, int], torch.Tensor],
    total: int,
    chunk_size: int | None,
    device: torch.device,
) -> torch.Tensor:
    """Run ``model`` over ``total`` views, ``chunk_size`` at a time (None: all in one pass).

    ``render(start, stop)`` materialises views ``start..stop-1`` as one batch. Returns the logits of
    all views, float32 on ``device``.
    """
    check_chunk_size(chunk_size)
    step = total if chunk_size is None else chunk_size
    outputs = []
    for start in range(0, total, max(step, 1)):
        views = render(start, min(start + step, total)).to(device, non_blocking=True)
        logits = model(views)
        if isinstance(logits, (tuple, list)):  # e.g. Inception's aux outputs: keep the main head
            logits = logits[0]
        if isinstance(logits, torch.Tensor) and logits.is_floating_point():
            finite = (
                torch.isfinite(logits.reshape(logits.shape[0], -1)).all(dim=1)
                if logits.dim()
                else torch.isfinite(logits)
            )
            if not bool(finite.all()):
                # argmax of NaN logits is arbitrary (a constant index): it would score as "consistent".
                raise NonFiniteLogitsError(
                    f"the model returned non-finite logits (NaN or inf) for {int((~finite).sum())} of "
                    f"{int(finite.numel())} inputs (images or their shifted views); no metric is computed from them (check the weights and the inputs)"
                )
        outputs.append(logits.float())
    return torch.cat(outputs) if outputs else torch.empty(0)


def _top1(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"predictions": logits.argmax(2)}


def classify_views(
    model: nn.Module,
    data: Data,
    *,
    draw: Callable[[int], torch.Tensor],
    render: Render,
    what: str,
    min_size: int = 0,
    labelled: bool = False,
    reduce: Reduce = _top1,
    device: torch.device | str | None,
    progress: bool,
    chunk_size: int | None,
) -> dict[str, torch.Tensor]:
    """The loop of every image metric: per batch, draw the views' offsets, render, classify, reduce.

    For a batch of ``n`` images, ``draw(n)`` gives ``(n, V, 2)`` offsets; view ``j`` of image ``i`` is
    ``render(images, [i], offsets[i, j:j+1])``. All ``n * V`` views go through the model together
    (or ``chunk_size`` at a time), image by image. ``labelled`` checks the labels against the logits.

    Returns:
        ``labels`` ``(N,)``, ``offsets`` ``(N, V, 2)`` and what ``reduce`` gave (default the top-1
        ``predictions`` ``(N, V)``), concatenated over the batches, on the CPU.

    Raises:
        ValueError: ``data`` yielded no batch.
    """
    dev = resolve_device(device, model=model)
    out: dict[str, list[torch.Tensor]] = {}
    with eval_mode(model):
        for batch in iterate(data, progress, what):
            images, labels = check_batch(batch, min_size, what, labelled)
            images = images.to(dev)
            n = images.shape[0]
            offsets = draw(n)
            per_image = offsets.shape[1]
            flat = offsets.flatten(0, 1)  # view order: image, then view

            def views(start: int, stop: int, images=images, flat=flat, per_image=per_image):
                index = [i // per_image for i in range(start, stop)]
                return render(images, index, flat[start:stop])

            logits = forward_views(model, views, n * per_image, chunk_size, dev)
            check_logits(logits, labels if labelled else None, what)
            reduced = reduce(logits.cpu().view(n, per_image, -1), labels)
            for key, value in {"labels": labels, "offsets": offsets, **reduced}.items():
                out.setdefault(key, []).append(value)
    if not out:
        raise ValueError("data yielded no batch")
    return {key: torch.cat(values) for key, values in out.items()}


def crop_views(crop_size: int, span: int) -> Render:
    """Render ``crop_size`` crops at offsets ``(dy, dx)`` of a ``crop_size + span`` window centred in
    each image: ``y0 = (H - crop_size - span) // 2 + dy``, likewise ``x0``."""

    def render(images: torch.Tensor, index: list[int], offsets: torch.Tensor) -> torch.Tensor:
        base_y = (images.shape[-2] - crop_size - span) // 2
        base_x = (images.shape[-1] - crop_size - span) // 2
        return torch.stack(
            [
                images[
                    i,
                    :,
                    base_y + dy : base_y + dy + crop_size,
                    base_x + dx : base_x + dx + crop_size,
                ]
                for i, (dy, dx) in zip(index, offsets.tolist(), strict=True)
            ]
        )

    return render


def roll_views(images: torch.Tensor, index: list[int], shifts: torch.Tensor) -> torch.Tensor:
    """Render circular shifts: ``torch.roll(images[i], (dy, dx), dims=(-2, -1))`` per view."""
    return torch.stack(
        [
            torch.roll(images[i], (dy, dx), dims=(-2, -1))
            for i, (dy, dx) in zip(index, shifts.tolist(), strict=True)
        ]
    )


def benchmark_folders(
    root: str | os.PathLike,
    benchmark: str,
    kind: str,
    names: Sequence[str] | None,
    skip: Sequence[str] = (),
) -> tuple[Path, list[str]]:
    """``root`` and the condition folders to score: ``names``, or every folder of ``root`` whose name
    does not end with one of ``skip``."""
    base = Path(root)
    if not base.is_dir():
        raise FileNotFoundError(f"{benchmark} folder {str(root)!r} does not exist")
    if names is None:
        names = sorted(
            p.name for p in base.iterdir() if p.is_dir() and not p.name.endswith(tuple(skip))
        )
    if not names:
        raise ValueError(f"no {kind} folder in {benchmark} folder {str(root)!r}")
    return base, list(names)


def score_datasets(
    datasets: Iterable[tuple[Any, Dataset]],
    score: Callable[[Any, DataLoader], Any],
    *,
    desc: str,
    batch_size: int,
    num_workers: int,
    collate_fn: Callable | None = None,
) -> dict[Any, Any]:
    """The benchmarks' loop: ``{key: score(key, loader)}`` over ``(key, data set)`` pairs, each data
    set read in order by a ``DataLoader``; a data set is built only when its turn comes."""
    scores = {}
    for key, dataset in datasets:
        loader = DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=False,
            num_workers=num_workers,
            collate_fn=collate_fn,
        )
        scores[key] = score(key, loader)
        logger.info("%s/%s: %s", desc, key, scores[key])
    return scores
