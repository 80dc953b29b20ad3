"""Shift consistency of a classifier: do two shifted views of an image get the same top-1 class?

Every function takes a model and ``data``, an iterable of ``(images, labels)`` batches (a
``DataLoader`` over :func:`antialias.data.load_image_folder`, say), and returns a result whose
summary values are fractions in [0, 1] and which keeps per-image records. Random shifts come from an
explicit ``torch.Generator`` (on the CPU); ``None`` uses torch's global generator. All shifted views
of a batch are classified in as few forward passes as ``chunk_size`` (the most images per forward
pass; ``None``: all views of a batch at once) allows.

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

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from antialias.metrics._common import (
    Data,
    Render,
    check_generator,
    classify_views,
    crop_views,
    mean,
    positive_int,
    records,
    roll_views,
    summary_repr,
)

__all__ = [
    "ConsistencyResult",
    "circular_consistency",
    "crop_consistency",
    "fractional_consistency",
    "fractional_shift",
]


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
        if self.labels.numel() == 0 or bool((self.labels < 0).any()):
            return None
        return mean(self.predictions == self.labels[:, None, None])

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"consistency": self.consistency}
        if self.accuracy is not None:
            out["accuracy"] = self.accuracy
        return {**out, "images": int(self.labels.numel()), **self.params}

    def records(self) -> list[dict[str, Any]]:
        return records(
            self.labels, agree=self.agree, offsets=self.offsets, predictions=self.predictions
        )


def _consistency(
    model: nn.Module,
    data: Data,
    kind: str,
    draw: Callable[[int], torch.Tensor],
    render: Render,
    params: dict[str, Any],
    min_size: int = 0,
    **run: Any,
) -> ConsistencyResult:
    """Classify the views ``render`` makes of the ``(n, passes, 2, 2)`` offsets ``draw(n)`` gives;
    ``run`` holds ``device``, ``progress`` and ``chunk_size``."""
    passes = params["passes"]
    out = classify_views(
        model,
        data,
        draw=lambda n: draw(n).view(n, -1, 2),
        render=render,
        what=f"{kind} consistency",
        min_size=min_size,
        **run,
    )
    predictions = out["predictions"].view(-1, passes, 2)
    agree = predictions[..., 0] == predictions[..., 1]
    offsets = out["offsets"].view(-1, passes, 2, 2)
    return ConsistencyResult(mean(agree), kind, agree, offsets, predictions, out["labels"], params)


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
    positive_int("crop_size", crop_size)
    positive_int("max_offset", max_offset)
    positive_int("passes", passes)
    check_generator(generator)

    def draw(n: int) -> torch.Tensor:
        if shared_offsets:
            return (
                torch.randint(0, max_offset, (passes, 2, 2), generator=generator, device="cpu")
                .expand(n, -1, -1, -1)
                .clone()
            )
        return torch.randint(0, max_offset, (n, passes, 2, 2), generator=generator, device="cpu")

    params = {
        "crop_size": crop_size,
        "max_offset": max_offset,
        "passes": passes,
        "shared_offsets": shared_offsets,
    }
    return _consistency(
        model,
        data,
        "crop",
        draw,
        crop_views(crop_size, max_offset - 1),
        params,
        min_size=crop_size + max_offset - 1,
        device=device,
        progress=progress,
        chunk_size=chunk_size,
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
    positive_int("max_shift", max_shift)
    positive_int("passes", passes)
    check_generator(generator)

    def draw(n: int) -> torch.Tensor:
        return torch.randint(0, max_shift, (n, passes, 2, 2), generator=generator, device="cpu")

    params = {"max_shift": max_shift, "passes": passes}
    return _consistency(
        model,
        data,
        "circular",
        draw,
        roll_views,
        params,
        device=device,
        progress=progress,
        chunk_size=chunk_size,
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
        max_shift: shifts are drawn from ``[0, max_shift)`` (float pixels).
        model, data, passes, generator, device, progress, chunk_size: as for
            :func:`circular_consistency`.

    Returns:
        A :class:`ConsistencyResult` (float ``offsets``: the shifts).
    """
    if not (isinstance(max_shift, (int, float)) and max_shift > 0):
        raise ValueError(f"max_shift must be a positive number of pixels, got {max_shift!r}")
    positive_int("passes", passes)
    check_generator(generator)

    def draw(n: int) -> torch.Tensor:
        return torch.rand(
            (n, passes, 2, 2), generator=generator, dtype=torch.float64, device="cpu"
        ) * float(max_shift)

    def render(images: torch.Tensor, index: list[int], shifts: torch.Tensor) -> torch.Tensor:
        return fractional_shift(images[index], shifts)  # one batched FFT for the whole chunk

    params = {"max_shift": float(max_shift), "passes": passes}
    return _consistency(
        model,
        data,
        "fractional",
        draw,
        render,
        params,
        device=device,
        progress=progress,
        chunk_size=chunk_size,
    )
