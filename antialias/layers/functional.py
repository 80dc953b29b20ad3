"""Functional anti-aliased sampling: blur-pool, max-blur-pool and blur-upsample in 1D, 2D and 3D.

The public functions (``blur_pool2d`` ...) validate their arguments and resolve the filter on every
call; the modules in :mod:`antialias.layers.blurpool` resolve them once and call the scriptable entry
points below (``_blur_pool_checked`` ...) directly. This module also holds the backend dispatch; the
argument checks and the padding are in ``_checks.py``, the CPU kernels in ``_cpu.py``, the GPU ones in
``_triton/``.

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

Performance:
    Along one axis, pad + filter + subsample (or zero-insert + filter, for upsampling) is a linear map,
    a small ``(L_out, L)`` matrix with the padding folded in. On CPU, in eager mode and TorchScript, the
    kernels apply that matrix with one matrix product per axis (cached per shape): the input is read once
    per axis and no padded copy is made. In eager mode an ``autograd.Function`` makes the backward the
    product with the transposed matrices (the adjoint: zero-insertion, then blur), saving no activation;
    channels_last 2D blur-pools of large maps run oneDNN's depthwise convolution on the unpadded map and
    recompute the few border outputs. Under ``torch.compile``/``torch.export``, on other devices and on long axes, the
    kernels pad and accumulate the taps on strided views instead, which inductor fuses into one loop and
    ONNX exports as Pad/Slice/Mul/Add. All give the same values up to float rounding. Max-blur-pool's
    stride-1 max is the maximum of shifted views in NCHW inference. ``benchmarks/run.py`` measures them.
"""

from __future__ import annotations

import os
from typing import Any, List, Optional

import torch
from torch import Tensor

from antialias.filters import FilterSpec, get_taps
from antialias.layers._checks import PAD_MODES as PAD_MODES
from antialias.layers._checks import IntOrTuple as IntOrTuple
from antialias.layers._checks import (
    check_input,
    check_size,
    check_tuple,
    check_upsample_taps,
    empty_output,
    like_format,
)
from antialias.layers._checks import check_pad_mode as check_pad_mode
from antialias.layers._checks import check_pad_off as check_pad_off
from antialias.layers._cpu import (
    blur_pool_slices,
    blur_upsample_slices,
    compiling,
    eager_blur_pool,
    eager_blur_upsample,
    max_pool,
    pool_matrix,
    separable_matmul,
    upsample_matrix,
    use_matrices,
)

__all__ = [
    "BACKENDS",
    "PAD_MODES",
    "get_backend",
    "set_backend",
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


# ----------------------------------------------------------------------------------------------------
# The kernels' entry points (validated arguments): the backend dispatch below in eager mode, the CPU
# kernels of ``_cpu`` under TorchScript scripting.


def _blur_pool(
    x: Tensor, taps: List[float], stride: List[int], pad_mode: str, pad_off: int
) -> Tensor:
    """Blur every spatial axis with ``taps`` and subsample it by its stride (validated arguments)."""
    if not torch.jit.is_scripting():
        return _dispatch_blur_pool(x, taps, stride, pad_mode, pad_off)
    if len(taps) > 1 and use_matrices(x):
        mats = [
            pool_matrix(taps, x.size(d + 2), stride[d], pad_mode, pad_off, x.dtype, x.device)
            for d in range(x.dim() - 2)
        ]
        return separable_matmul(x, mats)
    return blur_pool_slices(x, taps, stride, pad_mode, pad_off)


def _blur_upsample(x: Tensor, taps: List[float], factor: List[int], pad_mode: str) -> Tensor:
    """Zero-insert by ``factor`` and blur every spatial axis (validated arguments)."""
    if not torch.jit.is_scripting():
        return _dispatch_blur_upsample(x, taps, factor, pad_mode)
    if use_matrices(x):
        mats = [
            upsample_matrix(taps, x.size(d + 2), factor[d], pad_mode, x.dtype, x.device)
            for d in range(x.dim() - 2)
        ]
        return separable_matmul(x, mats)
    return blur_upsample_slices(x, taps, factor, pad_mode)


def _blur_upsample_axes(
    x: Tensor, taps: List[List[float]], factor: List[int], pad_mode: str
) -> Tensor:
    """:func:`_blur_upsample` with a filter per axis (from :func:`check_upsample_taps`).

    Equal filters (the common case) take one call; otherwise each axis is upsampled on its own as a 1D
    signal (an axis with factor 1 and the identity filter is left alone).
    """
    same = True
    for d in range(1, len(taps)):
        if taps[d] != taps[0]:
            same = False
    if same:
        return _blur_upsample(x, taps[0], factor, pad_mode)
    y = x
    for d in range(len(taps)):
        if factor[d] == 1 and len(taps[d]) == 1:
            continue
        z = y.movedim(d + 2, y.dim() - 1)
        shape = list(z.shape)
        z = _blur_upsample(z.reshape(shape[0], -1, shape[-1]), taps[d], [factor[d]], pad_mode)
        shape[-1] = shape[-1] * factor[d]
        y = z.reshape(shape).movedim(y.dim() - 1, d + 2)
    return like_format(y, x)


def _max_blur_pool(
    x: Tensor,
    kernel: List[int],
    padding: List[int],
    taps: List[float],
    stride: List[int],
    pad_mode: str,
    pad_off: int,
) -> Tensor:
    """Max over ``kernel`` windows at stride 1, then blur-pool (validated arguments): MaxBlurPool's one call."""
    if not torch.jit.is_scripting():
        return _dispatch_max_blur_pool(x, kernel, padding, taps, stride, pad_mode, pad_off)
    return _blur_pool(max_pool(x, kernel, padding), taps, stride, pad_mode, pad_off)


# ----------------------------------------------------------------------------------------------------
# Backend dispatch: every layer and functional twin reaches its kernel through one of the three
# ``_dispatch_*`` functions below (TorchScript scripting takes the scriptable branch of the callers).
#
# - "auto" (default): CUDA tensors -> the fused Triton kernels (``antialias.layers._triton``) when Triton
#   imports; CPU tensors in eager mode -> the matrix kernels of ``_cpu`` (strided slices on long axes);
# - "triton": the Triton kernels on any device (CPU tensors need ``TRITON_INTERPRET=1`` set before Triton is
#   imported: Triton's interpreter, how CI tests the kernels without a GPU);
# - "cpu": the eager CPU kernels as on CPU (matrix products, slices elsewhere), whatever the device;
# - "slices": always the strided-slices formulation (the traceable one).
# Under torch.compile / torch.export / tracing (ONNX) and torch.func transforms every backend gives the
# traceable slices formulation, which inductor fuses into one loop (0.235 ms for 64x256x56x56 fp32 on an
# H200, 2.2x the copy floor, issue 12). Registering the Triton kernels as ``torch.library`` custom ops
# instead was not measured (this session had no GPU): benchmarks/gpu.py measures compiled layers, and the
# choice must be revisited with its numbers.

BACKENDS = ("auto", "triton", "cpu", "slices")


def _check_backend(backend: str) -> str:
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    return backend


_BACKEND = [_check_backend(os.environ.get("ANTIALIAS_BACKEND", "auto") or "auto")]


def get_backend() -> str:
    """The kernel backend in use: ``ANTIALIAS_BACKEND`` or the last :class:`set_backend`; ``"auto"`` by default."""
    return _BACKEND[0]


class set_backend:
    """Select the kernels the blur layers run, for debugging and benchmarks (process-wide, not thread-local).

    Args:
        backend: ``"auto"`` (CUDA: Triton; CPU: the matrix kernels), ``"triton"``, ``"cpu"`` or ``"slices"``.

    Takes effect at once; as a context manager, the previous backend comes back on exit. Under
    ``torch.compile``/``torch.export``/tracing every backend runs the traceable formulation.

    Example:
        >>> with set_backend("slices"):
        ...     get_backend()
        'slices'
    """

    def __init__(self, backend: str) -> None:
        self.previous = _BACKEND[0]
        _BACKEND[0] = _check_backend(backend)

    def __enter__(self) -> set_backend:
        return self

    def __exit__(self, *exc: object) -> None:
        _BACKEND[0] = self.previous


@torch.jit.unused
def _triton_kernels() -> Any:
    from antialias.layers import _triton

    if not _triton.available():
        raise RuntimeError(
            "the 'triton' backend needs the triton package (pip install triton), which is not importable"
        )
    from antialias.layers._triton import function

    return function


_TRITON_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


@torch.jit.unused
def _choose(x: Tensor) -> str:
    """``"triton"``, ``"matrix"`` or ``"slices"`` for this call (eager mode, compile and tracing)."""
    if compiling() or torch._C._are_functorch_transforms_active():
        return "slices"
    backend = _BACKEND[0]
    if backend == "auto":
        if x.device.type == "cuda" and x.dtype in _TRITON_DTYPES:
            from antialias.layers import _triton

            if _triton.available():
                return "triton"
        backend = "cpu"
    if backend == "triton":
        if x.device.type == "cpu":
            from antialias.layers import _triton

            if not _triton.interpreting():
                raise RuntimeError(
                    "the 'triton' backend got a CPU tensor: set TRITON_INTERPRET=1 before triton is imported to run "
                    "the kernels in Triton's interpreter, or use backend 'auto'/'cpu'"
                )
        if x.dtype not in _TRITON_DTYPES:
            raise TypeError(f"the 'triton' backend takes {_TRITON_DTYPES}, got {x.dtype}")
        return "triton"
    if backend == "cpu" and use_matrices(x):
        return "matrix"
    return "slices"


@torch.jit.unused
def _dispatch_blur_pool(
    x: Tensor, taps: List[float], stride: List[int], pad_mode: str, pad_off: int
) -> Tensor:
    kind = _choose(x)
    if kind == "triton":
        return _triton_kernels().blur_pool(x, taps, stride, pad_mode, pad_off)
    if kind == "matrix" and len(taps) > 1:
        return eager_blur_pool(x, taps, stride, pad_mode, pad_off)
    return blur_pool_slices(x, taps, stride, pad_mode, pad_off)


@torch.jit.unused
def _dispatch_blur_upsample(
    x: Tensor, taps: List[float], factor: List[int], pad_mode: str
) -> Tensor:
    kind = _choose(x)
    if kind == "triton":
        return _triton_kernels().blur_upsample(x, taps, factor, pad_mode)
    if kind == "matrix":
        return eager_blur_upsample(x, taps, factor, pad_mode)
    return blur_upsample_slices(x, taps, factor, pad_mode)


@torch.jit.unused
def _dispatch_max_blur_pool(
    x: Tensor,
    kernel: List[int],
    padding: List[int],
    taps: List[float],
    stride: List[int],
    pad_mode: str,
    pad_off: int,
) -> Tensor:
    # The fused kernel keeps float32 maxima: float64 maxes first, then blurs with the Triton blur-pool.
    if x.dtype != torch.float64 and _choose(x) == "triton":
        return _triton_kernels().max_blur_pool(x, kernel, padding, taps, stride, pad_mode, pad_off)
    return _dispatch_blur_pool(max_pool(x, kernel, padding), taps, stride, pad_mode, pad_off)


# ----------------------------------------------------------------------------------------------------
# What the layers call (size checks, empty inputs), and the public functions


def _blur_pool_checked(
    x: Tensor, taps: List[float], stride: List[int], pad_mode: str, pad_off: int, name: str
) -> Tensor:
    """:func:`_blur_pool` after the size checks: an empty axis is refused, an empty batch or channel axis
    gives an empty output of the right shape."""
    check_size(x, [1] * (x.dim() - 2), name, "padding cannot extend an empty axis")
    if x.numel() == 0:
        sizes = [(x.size(d + 2) + 2 * pad_off - 1) // stride[d] + 1 for d in range(x.dim() - 2)]
        return empty_output(x, sizes)
    return _blur_pool(x, taps, stride, pad_mode, pad_off)


def _blur_upsample_checked(
    x: Tensor, taps: List[List[float]], factor: List[int], pad_mode: str, name: str
) -> Tensor:
    """:func:`_blur_upsample_axes` after the size checks (as :func:`_blur_pool_checked`)."""
    check_size(x, [1] * (x.dim() - 2), name, "an empty axis cannot be upsampled")
    if x.numel() == 0:
        sizes = [x.size(d + 2) * factor[d] for d in range(x.dim() - 2)]
        return empty_output(x, sizes)
    return _blur_upsample_axes(x, taps, factor, pad_mode)


def _max_blur_pool_checked(
    x: Tensor,
    kernel_size: List[int],
    padding: List[int],
    taps: List[float],
    stride: List[int],
    pad_mode: str,
    pad_off: int,
    name: str,
) -> Tensor:
    """Max at stride 1, then :func:`_blur_pool_checked`; an axis shorter than the max's window is refused."""
    minimum = [max(kernel_size[d] - 2 * padding[d], 1) for d in range(x.dim() - 2)]
    check_size(x, minimum, name, "kernel_size - 2 * padding, the window of the max")
    if x.numel() == 0:  # the max pool refuses an empty channel axis
        sizes = [x.size(d + 2) + 2 * padding[d] - kernel_size[d] + 1 for d in range(x.dim() - 2)]
        pooled = empty_output(x, sizes)
        return _blur_pool_checked(pooled, taps, stride, pad_mode, pad_off, name)
    return _max_blur_pool(x, kernel_size, padding, taps, stride, pad_mode, pad_off)


def _blur_pool_nd(
    x: Tensor,
    ndim: int,
    filter_size: FilterSpec,
    stride: IntOrTuple,
    pad_mode: str,
    pad_off: int,
    name: str,
) -> Tensor:
    taps = list(get_taps(filter_size))
    strides = list(check_tuple(stride, ndim, "stride"))
    mode = check_pad_mode(pad_mode)
    check_pad_off(pad_off)
    check_input(x, ndim, None, name)
    return _blur_pool_checked(x, taps, strides, mode, pad_off, name)


def blur_pool1d(
    input: Tensor,
    filter_size: FilterSpec = 4,
    stride: IntOrTuple = 2,
    pad_mode: str = "reflect",
    pad_off: int = 0,
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
    input: Tensor,
    filter_size: FilterSpec = 4,
    stride: IntOrTuple = 2,
    pad_mode: str = "reflect",
    pad_off: int = 0,
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
    input: Tensor,
    filter_size: FilterSpec = 4,
    stride: IntOrTuple = 2,
    pad_mode: str = "reflect",
    pad_off: int = 0,
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
    check_input(x, ndim, None, name)
    return _max_blur_pool_checked(x, kernel, pads, taps, strides, mode, pad_off, name)


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
    return _max_blur_pool_nd(
        input, 1, kernel_size, filter_size, stride, padding, pad_mode, pad_off, "max_blur_pool1d"
    )


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
    return _max_blur_pool_nd(
        input, 2, kernel_size, filter_size, stride, padding, pad_mode, pad_off, "max_blur_pool2d"
    )


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
    return _max_blur_pool_nd(
        input, 3, kernel_size, filter_size, stride, padding, pad_mode, pad_off, "max_blur_pool3d"
    )


def _blur_upsample_nd(
    x: Tensor,
    ndim: int,
    filter_size: Optional[FilterSpec],
    scale_factor: IntOrTuple,
    pad_mode: str,
    name: str,
) -> Tensor:
    factors = list(check_tuple(scale_factor, ndim, "scale_factor"))
    taps = check_upsample_taps(filter_size, factors, name)
    mode = check_pad_mode(pad_mode)
    check_input(x, ndim, None, name)
    return _blur_upsample_checked(x, taps, factors, mode, name)


def blur_upsample1d(
    input: Tensor,
    filter_size: Optional[FilterSpec] = None,
    scale_factor: IntOrTuple = 2,
    pad_mode: str = "replicate",
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
    input: Tensor,
    filter_size: Optional[FilterSpec] = None,
    scale_factor: IntOrTuple = 2,
    pad_mode: str = "replicate",
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
    input: Tensor,
    filter_size: Optional[FilterSpec] = None,
    scale_factor: IntOrTuple = 2,
    pad_mode: str = "replicate",
) -> Tensor:
    """Anti-aliased upsampling (3D); see :class:`~antialias.layers.BlurUpsample3d`.

    Shape:
        - Input: ``(N, C, D, H, W)``; Output: each spatial axis times ``scale_factor``.

    Example:
        >>> blur_upsample3d(torch.ones(1, 1, 2, 2, 2)).shape
        torch.Size([1, 1, 4, 4, 4])
    """
    return _blur_upsample_nd(input, 3, filter_size, scale_factor, pad_mode, "blur_upsample3d")
