"""Argument checks and padding shared by the layers (private to :mod:`antialias.layers`).

Checks raise at construction in the modules and at call in the functions; ``pad`` is the one padding
rule (reflect falls back to replicate on an axis too short for it, circular wraps as often as
needed).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from antialias.filters import FilterSpec, get_taps

PAD_MODES = ("reflect", "replicate", "zeros", "circular")
_PAD_ALIASES = {"zero": "zeros", "constant": "zeros", "refl": "reflect", "repl": "replicate"}

IntOrTuple = int | Sequence[int]


def check_pad_mode(pad_mode: str) -> str:
    """Return the canonical name of ``pad_mode`` (``"zero"`` -> ``"zeros"``), or raise
    ``ValueError``."""
    if not isinstance(pad_mode, str):
        raise TypeError(f"pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")
    mode = _PAD_ALIASES.get(pad_mode, pad_mode)
    if mode not in PAD_MODES:
        raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")
    return mode


def check_tuple(value: IntOrTuple, ndim: int, name: str, minimum: int = 1) -> tuple[int, ...]:
    """Expand an int or a sequence of ``ndim`` ints, each ``>= minimum``; raise a clear error
    otherwise."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int or a tuple of {ndim} ints, got {value!r}")
    if isinstance(value, int):
        values = (value,) * ndim
    elif isinstance(value, Sequence) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        values = tuple(value)
        if len(values) != ndim:
            raise ValueError(f"{name} must have {ndim} values, got {value!r}")
    else:
        raise TypeError(f"{name} must be an int or a tuple of {ndim} ints, got {value!r}")
    if any(v < minimum for v in values):
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return values


def blur_pads(k: int, pad_off: int = 0) -> tuple[int, int]:
    """The padding of a ``k``-tap blur, ``(before, after)``: ``(k - 1) // 2`` and ``k // 2``, plus
    ``pad_off``
    each (the reference's rule; the output then has ``ceil(L / stride)`` samples for odd and even
    ``k``)."""
    return (k - 1) // 2 + pad_off, k // 2 + pad_off


def compact(values: Sequence[int]) -> int | tuple[int, ...]:
    """One int when every axis has the same value, else the tuple (for reprs: ``stride=2``,
    ``stride=(1, 2)``)."""
    return values[0] if len(set(values)) == 1 else tuple(values)


def check_pad_off(pad_off: int) -> int:
    if isinstance(pad_off, bool) or not isinstance(pad_off, int):
        raise TypeError(f"pad_off must be an int >= 0, got {pad_off!r}")
    if pad_off < 0:
        raise ValueError(f"pad_off must be >= 0, got {pad_off}")
    return pad_off


def check_channels(channels: int | None) -> int | None:
    if channels is None:
        return None
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ValueError(f"channels must be None or an int >= 1, got {channels!r}")
    return channels


def check_input(x: Tensor, ndim: int, channels: int | None, name: str) -> None:
    """Raise ``ValueError``/``TypeError`` unless ``x`` is a float ``(N, C, *spatial)`` with ``ndim``
    spatial axes
    (and ``channels`` channels, unless ``None``)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} expects a Tensor, got {type(x).__name__}")
    if x.dim() != ndim + 2:
        axes = "(N, C, L)" if ndim == 1 else ("(N, C, H, W)" if ndim == 2 else "(N, C, D, H, W)")
        raise ValueError(
            f"{name} expects a {ndim + 2}D input {axes}, "
            f"got a {x.dim()}D tensor of shape {list(x.shape)}"
        )
    if not x.is_floating_point():
        raise TypeError(f"{name} expects a floating-point input, got dtype {x.dtype}")
    if channels is not None and x.size(1) != channels:
        raise ValueError(
            f"{name} was built for {channels} channels, "
            f"got an input with {x.size(1)} channels (shape {list(x.shape)})"
        )


def empty_output(x: Tensor, sizes: list[int]) -> Tensor:
    """The empty output ``(N, C, *sizes)`` of an empty input, still attached to it for autograd."""
    return x.reshape(-1).reshape(list(x.shape[:2]) + sizes).clone()


def check_size(x: Tensor, minimum: list[int], name: str, reason: str) -> None:
    """Raise ``ValueError`` naming the shape when spatial axis ``d`` of ``x`` is shorter than
    ``minimum[d]``."""
    for d in range(len(minimum)):
        if x.size(d + 2) < minimum[d]:
            raise ValueError(
                f"{name} needs spatial axis {d} of size >= {minimum[d]} ({reason}), "
                f"got an input of shape {list(x.shape)}"
            )


def linear_taps(factor: int) -> list[float]:
    """Taps of linear interpolation by ``factor`` (``align_corners=False``), for zero-insertion
    upsampling.

    ``factor - |i - c|`` for ``2 * factor`` taps (even factors) or ``2 * factor - 1`` (odd),
    normalized: ``[1, 3, 3, 1] / 8`` (the binomial filter of 4 taps) at factor 2, ``[1, 2, 3, 2, 1]
    / 9`` at 3. Every polyphase part sums to ``1 / factor``.
    """
    length = 2 * factor - factor % 2
    center = (length - 1) / 2
    taps = [factor - abs(i - center) for i in range(length)]
    total = sum(taps)
    return [t / total for t in taps]


def check_upsample_taps(
    filter_size: FilterSpec | None, factors: Sequence[int], name: str
) -> list[list[float]]:
    """The taps of each spatial axis for a zero-insertion upsampling by ``factors``.

    ``None`` gives :func:`linear_taps` of each axis's factor (no filter on an axis of factor 1). An
    explicit filter is used on every axis and must keep a constant map constant at each factor: each
    of its ``factor`` polyphase parts must sum to ``1 / factor``; a filter that does not (e.g. 4
    binomial taps at factor 3, 3 taps at factor 4) is refused with ``ValueError``.
    """
    if filter_size is None:
        return [linear_taps(f) if f > 1 else [1.0] for f in factors]
    taps = list(get_taps(filter_size))
    for f in sorted(set(factors)):
        sums = [sum(taps[r::f]) for r in range(f)]
        if any(abs(s - 1.0 / f) > 1e-9 for s in sums):
            raise ValueError(
                f"{name}: filter_size={filter_size!r} does not keep a constant map constant "
                f"at scale factor {f}: its {f} polyphase parts sum to "
                f"{[round(s, 4) for s in sums]}, each must be 1/{f}; use filter_size=None "
                f"(linear interpolation, matched to every factor) or a filter such as 'box-{f}'"
            )
    return [taps for _ in factors]


def is_channels_last(x: Tensor) -> bool:
    """Stored as (N, *S, C) (and not also plainly contiguous, as when C == 1)."""
    if x.is_contiguous():
        return False
    if x.dim() == 4:
        return x.is_contiguous(memory_format=torch.channels_last)
    if x.dim() == 5:
        return x.is_contiguous(memory_format=torch.channels_last_3d)
    return False


def like_format(y: Tensor, x: Tensor) -> Tensor:
    """Return ``y`` in the memory format of ``x`` (channels_last in, channels_last out)."""
    if is_channels_last(x):
        if x.dim() == 4:
            return y.contiguous(memory_format=torch.channels_last)
        return y.contiguous(memory_format=torch.channels_last_3d)
    return y.contiguous()


def circular_pad_axis(x: Tensor, dim: int, left: int, right: int) -> Tensor:
    size = x.size(dim)
    index = torch.arange(-left, size + right, device=x.device) % size
    return x.index_select(dim, index)


def pad(x: Tensor, pads: list[int], pad_mode: str) -> Tensor:
    """Pad the spatial axes; ``pads`` holds (left, right) per spatial axis, first axis first."""
    ndim = len(pads) // 2
    if sum(pads) == 0:
        return x
    if pad_mode == "zeros":
        flat: list[int] = []
        for d in range(ndim - 1, -1, -1):
            flat += [pads[2 * d], pads[2 * d + 1]]
        return F.pad(x, flat)
    if pad_mode == "circular":
        for d in range(ndim):
            if pads[2 * d] + pads[2 * d + 1] > 0:
                x = circular_pad_axis(x, d + 2, pads[2 * d], pads[2 * d + 1])
        return x
    # reflect / replicate; reflect falls back to replicate on axes shorter than their padding.
    main: list[int] = []
    fallback: list[int] = []
    needs_fallback = False
    for d in range(ndim - 1, -1, -1):
        left, right = pads[2 * d], pads[2 * d + 1]
        if pad_mode == "reflect" and max(left, right) >= x.size(d + 2):
            main += [0, 0]
            fallback += [left, right]
            needs_fallback = True
        else:
            main += [left, right]
            fallback += [0, 0]
    if sum(main) > 0:
        x = F.pad(x, main, mode=pad_mode)
    if needs_fallback:
        x = F.pad(x, fallback, mode="replicate")
    return x
