"""Argument checks and padding shared by the layers (private to :mod:`antialias.layers`).

Checks raise at construction in the modules and at call in the functions; ``pad`` is the one padding
rule (reflect falls back to replicate on an axis too short for it, circular wraps as often as
needed).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from antialias.filters import FilterSpec, get_taps

PAD_MODES = ("reflect", "replicate", "zeros", "circular")
_PAD_ALIASES = {"zero": "zeros", "constant": "zeros", "refl": "reflect", "repl": "replicate"}

IntOrTuple = int | Sequence[int]
_CHANNELS_LAST = {4: torch.channels_last, 5: torch.channels_last_3d}


def check_pad_mode(pad_mode: str) -> str:
    """The canonical name of ``pad_mode`` (``"zero"`` -> ``"zeros"``)."""
    mode = _PAD_ALIASES.get(pad_mode, pad_mode) if isinstance(pad_mode, str) else None
    if mode not in PAD_MODES:
        error = ValueError if isinstance(pad_mode, str) else TypeError
        raise error(f"pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")
    return mode


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_tuple(value: IntOrTuple, ndim: int, name: str, minimum: int = 1) -> tuple[int, ...]:
    """Expand an int or a sequence of ``ndim`` ints, each ``>= minimum``."""
    if _is_int(value) or (isinstance(value, Sequence) and all(_is_int(v) for v in value)):
        values = (value,) * ndim if isinstance(value, int) else tuple(value)
    else:
        raise TypeError(f"{name} must be an int or a tuple of {ndim} ints, got {value!r}")
    if len(values) != ndim:
        raise ValueError(f"{name} must have {ndim} values, got {value!r}")
    if any(v < minimum for v in values):
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return values


def blur_pads(k: int, pad_off: int = 0) -> tuple[int, int]:
    """The padding of a ``k``-tap blur, ``(before, after)``: ``(k - 1) // 2`` and ``k // 2``, plus
    ``pad_off`` each (the reference's rule: ``ceil(L / stride)`` outputs for odd and even ``k``)."""
    return (k - 1) // 2 + pad_off, k // 2 + pad_off


def compact(values: Sequence[int]) -> int | tuple[int, ...]:
    """One int when every axis has the same value, else the tuple (``stride=2``, ``(1, 2)``)."""
    return values[0] if len(set(values)) == 1 else tuple(values)


def check_pad_off(pad_off: int) -> int:
    if not _is_int(pad_off):
        raise TypeError(f"pad_off must be an int >= 0, got {pad_off!r}")
    if pad_off < 0:
        raise ValueError(f"pad_off must be >= 0, got {pad_off}")
    return pad_off


def check_channels(channels: int | None) -> int | None:
    if channels is not None and (not _is_int(channels) or channels < 1):
        raise ValueError(f"channels must be None or an int >= 1, got {channels!r}")
    return channels


def check_input(x: Tensor, ndim: int, channels: int | None, name: str) -> None:
    """Raise unless ``x`` is a float ``(N, C, *spatial)`` with ``ndim`` spatial axes (and
    ``channels`` channels, unless ``None``)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} expects a Tensor, got {type(x).__name__}")
    if x.dim() != ndim + 2:
        axes = ("(N, C, L)", "(N, C, H, W)", "(N, C, D, H, W)")[ndim - 1]
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
    """Raise ``ValueError`` naming the shape when spatial axis ``d`` is shorter than
    ``minimum[d]``."""
    for d, m in enumerate(minimum):
        if x.size(d + 2) < m:
            raise ValueError(
                f"{name} needs spatial axis {d} of size >= {m} ({reason}), "
                f"got an input of shape {list(x.shape)}"
            )


def linear_taps(factor: int) -> list[float]:
    """Taps of linear interpolation by ``factor`` (``align_corners=False``) after zero insertion:
    ``factor - |i - c|`` for ``2 * factor`` taps (``2 * factor - 1`` for odd factors), normalized
    (``[1, 3, 3, 1] / 8`` at 2, ``[1, 2, 3, 2, 1] / 9`` at 3)."""
    length = 2 * factor - factor % 2
    taps = [factor - abs(i - (length - 1) / 2) for i in range(length)]
    return [t / sum(taps) for t in taps]


def check_upsample_taps(
    filter_size: FilterSpec | None, factors: Sequence[int], name: str
) -> list[list[float]]:
    """The taps of each spatial axis for a zero-insertion upsampling by ``factors``.

    ``None`` gives :func:`linear_taps` of each axis's factor (no filter on an axis of factor 1). An
    explicit filter is used on every axis and must keep a constant map constant at each factor: each
    of its ``factor`` polyphase parts must sum to ``1 / factor`` (else ``ValueError``).
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
    if x.is_contiguous() or x.dim() not in (4, 5):
        return False
    return x.is_contiguous(memory_format=_CHANNELS_LAST[x.dim()])


def memory_format(x: Tensor) -> torch.memory_format:
    """The memory format of ``x``: channels_last (or its 3D twin), else contiguous."""
    return _CHANNELS_LAST[x.dim()] if is_channels_last(x) else torch.contiguous_format


def like_format(y: Tensor, x: Tensor) -> Tensor:
    """Return ``y`` in the memory format of ``x`` (channels_last in, channels_last out)."""
    return y.contiguous(memory_format=memory_format(x))


def circular_pad_axis(x: Tensor, dim: int, left: int, right: int) -> Tensor:
    size = x.size(dim)
    return x.index_select(dim, torch.arange(-left, size + right, device=x.device) % size)


def pad(x: Tensor, pads: list[int], pad_mode: str) -> Tensor:
    """Pad the spatial axes; ``pads`` holds (left, right) per spatial axis, first axis first."""
    return x if sum(pads) == 0 else padder(x.shape[2:], pads, pad_mode)(x)


def padder(sizes: Sequence[int], pads: list[int], pad_mode: str) -> Callable[[Tensor], Tensor]:
    """:func:`pad` for maps of spatial ``sizes``, worked out once: reflect falls back to replicate
    on axes not longer than their padding, circular wraps as often as needed."""
    axes = range(len(pads) // 2)
    if pad_mode == "circular":
        return functools.partial(_wrap, pads=pads)
    short = [pad_mode == "reflect" and max(pads[2 * d : 2 * d + 2]) >= sizes[d] for d in axes]
    # F.pad lists the last axis first
    main = [p for d in reversed(axes) for p in ((0, 0) if short[d] else pads[2 * d : 2 * d + 2])]
    rest = [p for d in reversed(axes) for p in (pads[2 * d : 2 * d + 2] if short[d] else (0, 0))]
    calls = [(main, "constant" if pad_mode == "zeros" else pad_mode), (rest, "replicate")]
    return functools.partial(_pad_calls, calls=[(p, mode) for p, mode in calls if sum(p) > 0])


def _pad_calls(x: Tensor, calls: list[tuple[list[int], str]]) -> Tensor:
    for p, mode in calls:
        x = F.pad(x, p, mode=mode)
    return x


def _wrap(x: Tensor, pads: list[int]) -> Tensor:
    for d in range(len(pads) // 2):
        if pads[2 * d] + pads[2 * d + 1] > 0:
            x = circular_pad_axis(x, d + 2, pads[2 * d], pads[2 * d + 1])
    return x
