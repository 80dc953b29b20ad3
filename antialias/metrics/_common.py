"""Plumbing shared by the metrics: devices, eval mode, progress bars, chunked forward passes."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator

import torch
from torch import nn

from antialias.devices import (
    resolve_device as resolve_device,  # re-exported: the metrics use this one
)

__all__: list[str] = ["NonFiniteLogitsError"]

logger = logging.getLogger(__name__)

Batch = tuple[torch.Tensor, torch.Tensor]


class NonFiniteLogitsError(ValueError):
    """The model returned NaN or infinite logits: a score over them would be meaningless, so none is given."""


def summary_repr(result: object) -> str:
    """``Name(field=value, ...)`` with every tensor shown by its shape and dtype, not its values.

    The ``repr`` of the metric results: a result holds per-image tensors (thousands of rows on
    ImageNet), which a plain dataclass ``repr`` would print in full.
    """
    import dataclasses

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


def mean_or_nan(values: Iterable[float]) -> float:
    """The mean of ``values``; NaN when there are none."""
    values = list(values)
    return float(sum(values) / len(values)) if values else float("nan")


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


def check_batch(batch: object, min_size: tuple[int, int] | None = None, what: str = "") -> Batch:
    """Validate one ``(images, labels)`` batch and return it."""
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
    if min_size is not None:
        height, width = images.shape[-2:]
        if height < min_size[0] or width < min_size[1]:
            raise ValueError(
                f"images are {height}x{width} but {what} needs at least "
                f"{min_size[0]}x{min_size[1]}; feed larger images (e.g. Resize+CenterCrop to "
                f"{max(min_size)}) or lower the crop size / shift range"
            )
    return images, labels.long()


def check_logits(logits: torch.Tensor) -> None:
    """Fail clearly when the model does not return ``(N, classes)`` logits."""
    if logits.dim() != 2:
        raise ValueError(
            f"the model must return (N, classes) logits, got shape {tuple(logits.shape)}"
        )


def check_labels(logits: torch.Tensor, labels: torch.Tensor, what: str) -> None:
    """Fail clearly when labels are missing (-1) or beyond the model's classes."""
    check_logits(logits)
    if labels.numel() == 0:
        return
    if int(labels.min()) < 0:
        raise ValueError(
            f"{what} needs labelled images: the data has no class folders (labels are -1)"
        )
    if int(labels.max()) >= logits.shape[1]:
        raise ValueError(
            f"the data has label {int(labels.max())} but the model outputs only "
            f"{logits.shape[1]} classes"
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
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive number of images, got {chunk_size}")
    step = total if chunk_size is None else chunk_size
    outputs = []
    for start in range(0, total, max(step, 1)):
        stop = min(start + step, total)
        views = render(start, stop).to(device, non_blocking=True)
        logits = model(views)
        if isinstance(logits, (tuple, list)):  # e.g. Inception's aux outputs: keep the main head
            logits = logits[0]
        if isinstance(logits, torch.Tensor) and logits.is_floating_point():
            finite = torch.isfinite(logits.reshape(logits.shape[0], -1)).all(dim=1) if logits.dim() else torch.isfinite(logits)
            if not bool(finite.all()):
                # argmax of NaN logits is arbitrary (a constant index): it would score as "consistent".
                raise NonFiniteLogitsError(
                    f"the model returned non-finite logits (NaN or inf) for {int((~finite).sum())} of "
                    f"{int(finite.numel())} inputs (images or their shifted views); no metric is computed from them (check the weights and the inputs)"
                )
        outputs.append(logits.float())
    return torch.cat(outputs) if outputs else torch.empty(0)


def draw_int(
    low: int, high: int, size: tuple[int, ...], generator: torch.Generator | None
) -> torch.Tensor:
    """Integers uniform in ``low..high-1`` from ``generator`` (or the global RNG), on CPU."""
    return torch.randint(low, high, size, generator=generator, device="cpu")


def draw_float(
    high: float, size: tuple[int, ...], generator: torch.Generator | None
) -> torch.Tensor:
    """Floats uniform in ``[0, high)`` from ``generator`` (or the global RNG), on CPU, float64."""
    return torch.rand(size, generator=generator, dtype=torch.float64, device="cpu") * high


def check_generator(generator: torch.Generator | None) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )
    if generator is not None and generator.device.type != "cpu":
        raise ValueError(
            f"generator must live on the CPU (offsets are drawn there), got {generator.device}"
        )
