"""Functional anti-aliased sampling: blur-pool, max-blur-pool and blur-upsample in 1D, 2D and 3D.

The public functions (``blur_pool2d`` ...) validate their arguments and resolve the filter on every
call; the modules in :mod:`antialias.layers.blurpool` resolve them once and call the private, scriptable
kernels below (``_blur_pool``, ``_blur_upsample``) directly.

Convention:
    Padding before the blur is ``(k - 1) // 2 + pad_off`` samples on the left/top and
    ``k // 2 + pad_off`` on the right/bottom of each spatial axis, as in the reference (Zhang, 2019), so
    the output has ``ceil(L / stride)`` samples for odd and even ``k`` (``pad_off = 0``).

    ``pad_mode="reflect"`` needs a pad smaller than the axis; on an axis too short for it (e.g. a 2x2 map
    with ``k = 7``) that call pads the short axis with ``"replicate"`` instead, the other axes keep
    ``"reflect"``. ``"circular"`` wraps as many times as needed. ``"zeros"`` pads with 0 (a constant map
    then darkens at the border).

    The blur is separable: each spatial axis is filtered with the 1D taps and subsampled in turn, which
    equals the depthwise convolution with the outer-product kernel up to float rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from antialias.filters import FilterSpec, get_taps

__all__ = [
    "PAD_MODES",
    "blur_pool1d",
    "blur_pool2d",
    "blur_pool3d",
    "blur_upsample1d",
    "blur_upsample2d",
    "blur_upsample3d",
    "max_blur_pool1d",
    "max_blur_pool2d",
    "max_blur_pool3d",
]

PAD_MODES = ("reflect", "replicate", "zeros", "circular")
_PAD_ALIASES = {"zero": "zeros", "constant": "zeros", "refl": "reflect", "repl": "replicate"}

IntOrTuple = Union[int, Sequence[int]]


# ----------------------------------------------------------------------------------------------------
# Argument checks (raised at construction by the modules, at call by the functions)


def check_pad_mode(pad_mode: str) -> str:
    """Return the canonical name of ``pad_mode`` (``"zero"`` -> ``"zeros"``), or raise ``ValueError``."""
    if not isinstance(pad_mode, str):
        raise TypeError(f"pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")
    mode = _PAD_ALIASES.get(pad_mode, pad_mode)
    if mode not in PAD_MODES:
        raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")
    return mode


def check_tuple(value: IntOrTuple, ndim: int, name: str, minimum: int = 1) -> tuple[int, ...]:
    """Expand an int or a sequence of ``ndim`` ints, each ``>= minimum``; raise a clear error otherwise."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int or a tuple of {ndim} ints, got {value!r}")
    if isinstance(value, int):
        values = (value,) * ndim
    elif isinstance(value, Sequence) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        values = tuple(value)
        if len(values) != ndim:
            raise ValueError(f"{name} must have {ndim} values, got {value!r}")
    else:
        raise TypeError(f"{name} must be an int or a tuple of {ndim} ints, got {value!r}")
    if any(v < minimum for v in values):
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return values


def check_pad_off(pad_off: int) -> int:
    if isinstance(pad_off, bool) or not isinstance(pad_off, int):
        raise TypeError(f"pad_off must be an int >= 0, got {pad_off!r}")
    if pad_off < 0:
        raise ValueError(f"pad_off must be >= 0, got {pad_off}")
    return pad_off


def check_channels(channels: Optional[int]) -> Optional[int]:
    if channels is None:
        return None
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ValueError(f"channels must be None or an int >= 1, got {channels!r}")
    return channels


def _check_input(x: Tensor, ndim: int, channels: Optional[int], name: str) -> None:
    if x.dim() != ndim + 2:
        axes = "(N, C, L)" if ndim == 1 else ("(N, C, H, W)" if ndim == 2 else "(N, C, D, H, W)")
        raise ValueError(
            f"{name} expects a {ndim + 2}D input {axes}, got a {x.dim()}D tensor of shape {list(x.shape)}"
        )
    if not x.is_floating_point():
        raise TypeError(f"{name} expects a floating-point input, got dtype {x.dtype}")
    if channels is not None and x.size(1) != channels:
        raise ValueError(f"{name} was built for {channels} channels, got an input with {x.size(1)} channels (shape {list(x.shape)})")


# ----------------------------------------------------------------------------------------------------
# Scriptable kernels


def _like_format(y: Tensor, x: Tensor) -> Tensor:
    """Return ``y`` in the memory format of ``x`` (channels_last inputs give channels_last outputs)."""
    if not x.is_contiguous():
        if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
            return y.contiguous(memory_format=torch.channels_last)
        if x.dim() == 5 and x.is_contiguous(memory_format=torch.channels_last_3d):
            return y.contiguous(memory_format=torch.channels_last_3d)
    return y.contiguous()


def _circular_pad_axis(x: Tensor, dim: int, left: int, right: int) -> Tensor:
    size = x.size(dim)
    index = torch.arange(-left, size + right, device=x.device) % size
    return x.index_select(dim, index)


def _pad(x: Tensor, pads: List[int], pad_mode: str) -> Tensor:
    """Pad the spatial axes; ``pads`` holds (left, right) per spatial axis, first axis first."""
    ndim = len(pads) // 2
    if sum(pads) == 0:
        return x
    if pad_mode == "zeros":
        flat: List[int] = []
        for d in range(ndim - 1, -1, -1):
            flat += [pads[2 * d], pads[2 * d + 1]]
        return F.pad(x, flat)
    if pad_mode == "circular":
        for d in range(ndim):
            if pads[2 * d] + pads[2 * d + 1] > 0:
                x = _circular_pad_axis(x, d + 2, pads[2 * d], pads[2 * d + 1])
        return x
    # reflect / replicate; reflect falls back to replicate on axes shorter than their padding.
    main: List[int] = []
    fallback: List[int] = []
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


def _blur_axis(x: Tensor, taps: List[float], dim: int, stride: int) -> Tensor:
    """Filter the (already padded) axis ``dim`` with ``taps`` and keep every ``stride``-th sample."""
    k = len(taps)
    out_len = (x.size(dim) - k) // stride + 1
    span = (out_len - 1) * stride + 1
    xt = x.movedim(dim, -1)
    acc = xt[..., 0:span:stride] * taps[0]
    for i in range(1, k):
        acc.add_(xt[..., i : i + span : stride], alpha=taps[i])
    return acc.movedim(-1, dim)


def _blur_pool(x: Tensor, taps: List[float], stride: List[int], pad_mode: str, pad_off: int) -> Tensor:
    """Blur every spatial axis with ``taps`` and subsample it by its stride (validated arguments)."""
    ndim = x.dim() - 2
    k = len(taps)
    left = (k - 1) // 2 + pad_off
    right = k // 2 + pad_off
    pads: List[int] = []
    for _ in range(ndim):
        pads += [left, right]
    y = _pad(x, pads, pad_mode)
    for d in range(ndim):
        y = _blur_axis(y, taps, d + 2, stride[d])
    return _like_format(y, x)


def _upsample_phases(taps: List[float], factor: int) -> Tuple[List[List[float]], List[List[int]], int, int]:
    """Split the upsampling filter into its ``factor`` polyphase parts.

    Output sample ``n = factor * j + r`` is ``factor * sum_i taps[i] * u[n - c + i]`` where ``u`` is the
    zero-stuffed input and ``c = (k + factor - 2) // 2`` centres the filter on the half-pixel grid (for
    ``k = 4`` and ``factor = 2`` this is bilinear interpolation). Only the taps with ``n - c + i`` a
    multiple of ``factor`` touch an input sample, at offset ``(r - c + i) // factor`` from ``j``.
    """
    k = len(taps)
    center = (k + factor - 2) // 2
    weights: List[List[float]] = []
    offsets: List[List[int]] = []
    lo = 0
    hi = 0
    for r in range(factor):
        w: List[float] = []
        o: List[int] = []
        for i in range(k):
            if (r - center + i) % factor == 0:
                w.append(taps[i] * factor)
                o.append((r - center + i) // factor)
        weights.append(w)
        offsets.append(o)
        for off in o:
            lo = min(lo, off)
            hi = max(hi, off)
    return weights, offsets, -lo, hi


def _upsample_axis(x: Tensor, taps: List[float], dim: int, factor: int, pad_mode: str) -> Tensor:
    weights, offsets, left, right = _upsample_phases(taps, factor)
    length = x.size(dim)
    pads: List[int] = []
    for d in range(x.dim() - 2):
        if d + 2 == dim:
            pads += [left, right]
        else:
            pads += [0, 0]
    xt = _pad(x, pads, pad_mode).movedim(dim, -1)
    phases: List[Tensor] = []
    for r in range(factor):
        acc = torch.zeros_like(xt[..., 0:length])
        for t in range(len(offsets[r])):  # index loop: TorchScript has no zip(strict=)
            off = offsets[r][t]
            acc.add_(xt[..., off + left : off + left + length], alpha=weights[r][t])
        phases.append(acc)
    y = torch.stack(phases, dim=-1).flatten(-2)
    return y.movedim(-1, dim)


def _blur_upsample(x: Tensor, taps: List[float], factor: List[int], pad_mode: str) -> Tensor:
    y = x
    for d in range(x.dim() - 2):
        y = _upsample_axis(y, taps, d + 2, factor[d], pad_mode)
    return _like_format(y, x)


def _max_pool(x: Tensor, kernel_size: List[int], padding: List[int]) -> Tensor:
    ndim = x.dim() - 2
    if ndim == 1:
        return F.max_pool1d(x, kernel_size, 1, padding)
    if ndim == 2:
        return F.max_pool2d(x, kernel_size, 1, padding)
    return F.max_pool3d(x, kernel_size, 1, padding)


# ----------------------------------------------------------------------------------------------------
# Public functions


def _blur_pool_nd(
    x: Tensor, ndim: int, filter_size: FilterSpec, stride: IntOrTuple, pad_mode: str, pad_off: int, name: str
) -> Tensor:
    taps = list(get_taps(filter_size))
    strides = list(check_tuple(stride, ndim, "stride"))
    mode = check_pad_mode(pad_mode)
    check_pad_off(pad_off)
    _check_input(x, ndim, None, name)
    return _blur_pool(x, taps, strides, mode, pad_off)


def blur_pool1d(
    input: Tensor, filter_size: FilterSpec = 4, stride: IntOrTuple = 2, pad_mode: str = "reflect", pad_off: int = 0
) -> Tensor:
    """Blur then subsample a 1D signal; see :class:`~antialias.layers.BlurPool1d`.

    Shape:
        - Input: ``(N, C, L)``; Output: ``(N, C, ceil(L / stride))`` (with ``pad_off = 0``).

    Example:
        >>> blur_pool1d(torch.tensor([[[0.0, 0.0, 8.0, 0.0]]]), filter_size=3)
        tensor([[[0., 4.]]])
    """
    return _blur_pool_nd(input, 1, filter_size, stride, pad_mode, pad_off, "blur_pool1d")


def blur_pool2d(
    input: Tensor, filter_size: FilterSpec = 4, stride: IntOrTuple = 2, pad_mode: str = "reflect", pad_off: int = 0
) -> Tensor:
    """Blur then subsample a 2D map (Zhang, ICML 2019); see :class:`~antialias.layers.BlurPool2d`.

    Shape:
        - Input: ``(N, C, H, W)``; Output: ``(N, C, ceil(H / stride), ceil(W / stride))``.

    Example:
        >>> blur_pool2d(torch.ones(1, 3, 7, 8), filter_size=4).shape
        torch.Size([1, 3, 4, 4])
    """
    return _blur_pool_nd(input, 2, filter_size, stride, pad_mode, pad_off, "blur_pool2d")


def blur_pool3d(
    input: Tensor, filter_size: FilterSpec = 4, stride: IntOrTuple = 2, pad_mode: str = "reflect", pad_off: int = 0
) -> Tensor:
    """Blur then subsample a 3D volume; see :class:`~antialias.layers.BlurPool3d`.

    Shape:
        - Input: ``(N, C, D, H, W)``; Output: ``(N, C, ceil(D / s), ceil(H / s), ceil(W / s))``.

    Example:
        >>> blur_pool3d(torch.ones(1, 2, 5, 6, 7), filter_size=3).shape
        torch.Size([1, 2, 3, 3, 4])
    """
    return _blur_pool_nd(input, 3, filter_size, stride, pad_mode, pad_off, "blur_pool3d")


def _max_blur_pool_nd(
    x: Tensor,
    ndim: int,
    kernel_size: IntOrTuple,
    filter_size: FilterSpec,
    stride: IntOrTuple,
    padding: IntOrTuple,
    pad_mode: str,
    pad_off: int,
    name: str,
) -> Tensor:
    kernel = list(check_tuple(kernel_size, ndim, "kernel_size"))
    pads = list(check_tuple(padding, ndim, "padding", minimum=0))
    taps = list(get_taps(filter_size))
    strides = list(check_tuple(stride, ndim, "stride"))
    mode = check_pad_mode(pad_mode)
    check_pad_off(pad_off)
    _check_input(x, ndim, None, name)
    return _blur_pool(_max_pool(x, kernel, pads), taps, strides, mode, pad_off)


def max_blur_pool1d(
    input: Tensor,
    kernel_size: IntOrTuple = 2,
    filter_size: FilterSpec = 4,
    stride: IntOrTuple = 2,
    padding: IntOrTuple = 0,
    pad_mode: str = "reflect",
    pad_off: int = 0,
) -> Tensor:
    """Max at stride 1, then blur-pool (1D); see :class:`~antialias.layers.MaxBlurPool1d`.

    Shape:
        - Input: ``(N, C, L)``; Output: ``(N, C, ceil((L + 2 * padding - kernel_size + 1) / stride))``.

    Example:
        >>> max_blur_pool1d(torch.zeros(1, 1, 9)).shape
        torch.Size([1, 1, 4])
    """
    return _max_blur_pool_nd(input, 1, kernel_size, filter_size, stride, padding, pad_mode, pad_off, "max_blur_pool1d")


def max_blur_pool2d(
    input: Tensor,
    kernel_size: IntOrTuple = 2,
    filter_size: FilterSpec = 4,
    stride: IntOrTuple = 2,
    padding: IntOrTuple = 0,
    pad_mode: str = "reflect",
    pad_off: int = 0,
) -> Tensor:
    """Max at stride 1, then blur-pool (2D, the paper's MaxBlurPool); see :class:`~antialias.layers.MaxBlurPool2d`.

    Shape:
        - Input: ``(N, C, H, W)``; Output: ``(N, C, ceil(H' / stride), ceil(W' / stride))`` with
          ``H' = H + 2 * padding - kernel_size + 1``.

    Example:
        >>> max_blur_pool2d(torch.zeros(1, 1, 9, 9)).shape
        torch.Size([1, 1, 4, 4])
    """
    return _max_blur_pool_nd(input, 2, kernel_size, filter_size, stride, padding, pad_mode, pad_off, "max_blur_pool2d")


def max_blur_pool3d(
    input: Tensor,
    kernel_size: IntOrTuple = 2,
    filter_size: FilterSpec = 4,
    stride: IntOrTuple = 2,
    padding: IntOrTuple = 0,
    pad_mode: str = "reflect",
    pad_off: int = 0,
) -> Tensor:
    """Max at stride 1, then blur-pool (3D); see :class:`~antialias.layers.MaxBlurPool3d`.

    Shape:
        - Input: ``(N, C, D, H, W)``; Output: each axis ``ceil((L + 2 * padding - kernel_size + 1) / stride)``.

    Example:
        >>> max_blur_pool3d(torch.zeros(1, 1, 5, 5, 5)).shape
        torch.Size([1, 1, 2, 2, 2])
    """
    return _max_blur_pool_nd(input, 3, kernel_size, filter_size, stride, padding, pad_mode, pad_off, "max_blur_pool3d")


def _blur_upsample_nd(
    x: Tensor, ndim: int, filter_size: FilterSpec, scale_factor: IntOrTuple, pad_mode: str, name: str
) -> Tensor:
    taps = list(get_taps(filter_size))
    factors = list(check_tuple(scale_factor, ndim, "scale_factor"))
    mode = check_pad_mode(pad_mode)
    _check_input(x, ndim, None, name)
    return _blur_upsample(x, taps, factors, mode)


def blur_upsample1d(
    input: Tensor, filter_size: FilterSpec = 4, scale_factor: IntOrTuple = 2, pad_mode: str = "replicate"
) -> Tensor:
    """Anti-aliased upsampling (1D): insert zeros, then blur with gain ``scale_factor``.

    See :class:`~antialias.layers.BlurUpsample1d`.

    Shape:
        - Input: ``(N, C, L)``; Output: ``(N, C, L * scale_factor)``.

    Example:
        >>> blur_upsample1d(torch.tensor([[[0.0, 4.0]]]))
        tensor([[[0., 1., 3., 4.]]])
    """
    return _blur_upsample_nd(input, 1, filter_size, scale_factor, pad_mode, "blur_upsample1d")


def blur_upsample2d(
    input: Tensor, filter_size: FilterSpec = 4, scale_factor: IntOrTuple = 2, pad_mode: str = "replicate"
) -> Tensor:
    """Anti-aliased upsampling (2D): insert zeros, then blur with gain ``scale_factor`` per axis.

    With ``filter_size=4``, ``scale_factor=2`` and replicate padding this equals bilinear interpolation
    (``align_corners=False``). See :class:`~antialias.layers.BlurUpsample2d`.

    Shape:
        - Input: ``(N, C, H, W)``; Output: ``(N, C, H * scale_factor, W * scale_factor)``.

    Example:
        >>> blur_upsample2d(torch.ones(1, 1, 2, 3)).shape
        torch.Size([1, 1, 4, 6])
    """
    return _blur_upsample_nd(input, 2, filter_size, scale_factor, pad_mode, "blur_upsample2d")


def blur_upsample3d(
    input: Tensor, filter_size: FilterSpec = 4, scale_factor: IntOrTuple = 2, pad_mode: str = "replicate"
) -> Tensor:
    """Anti-aliased upsampling (3D); see :class:`~antialias.layers.BlurUpsample3d`.

    Shape:
        - Input: ``(N, C, D, H, W)``; Output: each spatial axis times ``scale_factor``.

    Example:
        >>> blur_upsample3d(torch.ones(1, 1, 2, 2, 2)).shape
        torch.Size([1, 1, 4, 4, 4])
    """
    return _blur_upsample_nd(input, 3, filter_size, scale_factor, pad_mode, "blur_upsample3d")
