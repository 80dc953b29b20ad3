"""Functional anti-aliased sampling: blur-pool, max-blur-pool and blur-upsample in 1D, 2D and 3D.

Each op is one linear map per spatial axis (max-blur-pool: a stride-1 max, then blur-pool). The
public functions check their arguments, then call the op's entry (``_blur_pool``,
``_blur_upsample``, ``_max_blur_pool``; the modules call it with the arguments they checked at
construction), which checks the input and reaches its kernel through ``_choose``, the one backend
choice (:class:`set_backend`).

Convention:
    Padding and output sizes as in the reference (Zhang, 2019): see :class:`.BlurPool2d`. The blur
    is separable: each axis is filtered and subsampled in turn (the depthwise convolution with the
    outer-product kernel, up to float rounding).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from antialias.filters import FilterSpec, get_taps
from antialias.layers import _cpu, _triton
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

__all__ = ["BACKENDS", "PAD_MODES", "check_backend", "get_backend", "set_backend"]
__all__ += ["blur_pool1d", "blur_pool2d", "blur_pool3d", "blur_upsample1d", "blur_upsample2d"]
__all__ += ["blur_upsample3d", "max_blur_pool1d", "max_blur_pool2d", "max_blur_pool3d"]

BACKENDS = ("auto", "triton", "cpu", "slices")
# Checked where it is used: a bad environment value must not break ``import antialias``.
_BACKEND = [os.environ.get("ANTIALIAS_BACKEND") or "auto"]
_TRITON_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _check_backend(backend: str, name: str = "backend") -> str:
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"{name} must be one of {BACKENDS}, got {backend!r}")
    return backend


def get_backend() -> str:
    """The kernel backend: the last :class:`set_backend`, else ``ANTIALIAS_BACKEND``, else
    ``"auto"``."""
    return _check_backend(_BACKEND[0], "ANTIALIAS_BACKEND")


class set_backend:
    """Select the kernels the blur layers run (process-wide; ``ANTIALIAS_BACKEND`` sets the first).

    Takes effect at once; as a context manager, the previous backend comes back on exit.
    ``benchmarks/run.py`` measures them.

    Args:
        backend: ``"auto"``: Triton for CUDA tensors when Triton imports, else the matrix kernels
            of ``_cpu`` in eager mode (the slices on axes longer than ``_cpu.MATRIX_MAX_LEN``).
            ``"triton"``: Triton (CPU tensors need ``TRITON_INTERPRET=1`` before Triton is
            imported: its interpreter, how the tests run it). ``"cpu"``: the CPU kernels on any
            device. ``"slices"``: the strided slices. Under ``torch.compile``, ``torch.export``,
            tracing (ONNX) and ``torch.func`` transforms every backend runs the traceable slices,
            which inductor fuses into one loop.

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


def compiling() -> bool:
    """True while torch.compile or torch.export traces, or the tracer runs (``torch.jit.trace``,
    ONNX)."""
    return bool(torch.compiler.is_compiling()) or torch.jit.is_tracing()


def check_backend(device: torch.device | str) -> None:
    """Check that the selected backend (:func:`get_backend`) can run on ``device``, so that a
    program can refuse a wrong ``ANTIALIAS_BACKEND`` before any work.

    Raises:
        ValueError: ``ANTIALIAS_BACKEND`` is not a backend, or ``"triton"`` is forced without the
            triton package or for a CPU device outside Triton's interpreter.
    """
    if get_backend() != "triton":
        return
    if not _triton.available():
        raise ValueError("the 'triton' backend needs the triton package (pip install triton)")
    if torch.device(device).type == "cpu" and not _triton.interpreting():
        raise ValueError(
            "the 'triton' backend cannot run on the CPU: set TRITON_INTERPRET=1 before triton is "
            "imported (Triton's interpreter), or use backend 'auto' or 'cpu'"
        )


def _choose(x: Tensor) -> str:
    """The one backend choice: ``"triton"``, ``"matrix"`` or ``"slices"`` for this input."""
    backend = get_backend()
    if compiling() or torch._C._are_functorch_transforms_active():
        return "slices"
    if backend == "auto":
        cuda = x.device.type == "cuda" and x.dtype in _TRITON_DTYPES
        backend = "triton" if cuda and _triton.available() else "cpu"
    if backend == "triton":
        check_backend(x.device)
        if x.dtype not in _TRITON_DTYPES:
            raise TypeError(f"the 'triton' backend takes {_TRITON_DTYPES}, got {x.dtype}")
        return "triton"
    return "matrix" if backend == "cpu" and _cpu.use_matrices(x) else "slices"


def _kernel(op: str, x: Tensor) -> Callable[..., Tensor]:
    """The kernel of ``op`` (``"blur_pool"`` or ``"blur_upsample"``) for ``x``."""
    kind = _choose(x)
    if kind == "triton":
        from antialias.layers._triton import function

        return getattr(function, op)
    return getattr(_cpu, f"{op}_{kind}")


# The ops' entries: arguments checked by the caller; the input is checked here. An empty spatial
# axis (or one shorter than the max's window) is refused; an empty batch or channel axis gives an
# empty output.


def _blur_pool(
    x: Tensor,
    taps: Sequence[float],
    stride: Sequence[int],
    pad_mode: str,
    pad_off: int,
    name: str = "blur_pool",
    channels: int | None = None,
) -> Tensor:
    """Blur every spatial axis with ``taps`` and subsample it by its stride."""
    check_input(x, len(stride), channels, name)
    check_size(x, [1] * len(stride), name, "padding cannot extend an empty axis")
    if x.numel() == 0:
        sizes = [(n + 2 * pad_off - 1) // s + 1 for n, s in zip(x.shape[2:], stride, strict=True)]
        return empty_output(x, sizes)
    return _kernel("blur_pool", x)(x, list(taps), list(stride), pad_mode, pad_off)


def _blur_upsample(
    x: Tensor,
    taps: Sequence[Sequence[float]],
    factor: Sequence[int],
    pad_mode: str,
    name: str = "blur_upsample",
    channels: int | None = None,
) -> Tensor:
    """Zero-insert by ``factor`` and blur axis ``d`` with ``taps[d]`` (see ``check_upsample_taps``):
    equal filters in one call, else each axis on its own as a 1D signal."""
    check_input(x, len(factor), channels, name)
    check_size(x, [1] * len(factor), name, "an empty axis cannot be upsampled")
    if x.numel() == 0:
        return empty_output(x, [n * f for n, f in zip(x.shape[2:], factor, strict=True)])
    if all(list(t) == list(taps[0]) for t in taps):
        return _kernel("blur_upsample", x)(x, list(taps[0]), list(factor), pad_mode)
    y = x
    for d, (t, f) in enumerate(zip(taps, factor, strict=True)):
        if f == 1 and len(t) == 1:
            continue
        last = y.dim() - 1  # non-negative: the legacy ONNX exporter mistranslates movedim(d, -1)
        z = y.movedim(d + 2, last)
        flat = z.reshape(z.size(0), -1, z.size(-1))
        out = _kernel("blur_upsample", flat)(flat, list(t), [f], pad_mode)
        y = out.reshape(list(z.shape[:-1]) + [-1]).movedim(last, d + 2)
    return like_format(y, x)


def _max_blur_pool(
    x: Tensor,
    kernel: Sequence[int],
    padding: Sequence[int],
    taps: Sequence[float],
    stride: Sequence[int],
    pad_mode: str,
    pad_off: int,
    name: str = "max_blur_pool",
    channels: int | None = None,
) -> Tensor:
    """Max over ``kernel`` windows at stride 1 (``-inf`` padding), then blur-pool."""
    check_input(x, len(stride), channels, name)
    minimum = [max(k - 2 * p, 1) for k, p in zip(kernel, padding, strict=True)]
    check_size(x, minimum, name, "kernel_size - 2 * padding, the window of the max")
    if x.numel() == 0:  # the max pool refuses an empty channel axis
        sizes = [n + 2 * p - k + 1 for n, k, p in zip(x.shape[2:], kernel, padding, strict=True)]
        return _blur_pool(empty_output(x, sizes), taps, stride, pad_mode, pad_off, name)
    pooled = _cpu.max_pool(x, list(kernel), list(padding), shifted=_choose(x) == "matrix")
    return _kernel("blur_pool", pooled)(pooled, list(taps), list(stride), pad_mode, pad_off)


# The public functions: check the arguments, call the entry.


def _pool_args(
    ndim: int, filter_size: FilterSpec, stride: IntOrTuple, pad_mode: str, pad_off: int
) -> tuple[list[float], list[int], str, int]:
    strides = list(check_tuple(stride, ndim, "stride"))
    return list(get_taps(filter_size)), strides, check_pad_mode(pad_mode), check_pad_off(pad_off)


def _max_args(
    ndim: int, kernel_size: IntOrTuple, padding: IntOrTuple, *pool: Any
) -> tuple[list[int], list[int], list[float], list[int], str, int]:
    kernel = list(check_tuple(kernel_size, ndim, "kernel_size"))  # ``pool``: as ``_pool_args``
    return kernel, list(check_tuple(padding, ndim, "padding", minimum=0)), *_pool_args(ndim, *pool)


def _upsample_args(
    ndim: int, filter_size: FilterSpec | None, scale_factor: IntOrTuple, pad_mode: str
) -> tuple[list[list[float]], list[int], str, str]:
    factors, name = list(check_tuple(scale_factor, ndim, "scale_factor")), f"blur_upsample{ndim}d"
    return check_upsample_taps(filter_size, factors, name), factors, check_pad_mode(pad_mode), name


def blur_pool1d(
    input: Tensor,
    filter_size: FilterSpec = 4,
    stride: IntOrTuple = 2,
    pad_mode: str = "reflect",
    pad_off: int = 0,
) -> Tensor:
    """Blur-pool of ``(N, C, L)`` signals to ``(N, C, ceil(L / stride))``; see
    :func:`blur_pool2d`."""
    return _blur_pool(input, *_pool_args(1, filter_size, stride, pad_mode, pad_off), "blur_pool1d")


def blur_pool2d(
    input: Tensor,
    filter_size: FilterSpec = 4,
    stride: IntOrTuple = 2,
    pad_mode: str = "reflect",
    pad_off: int = 0,
) -> Tensor:
    """Blur then subsample a 2D map (Zhang, ICML 2019); see :class:`~antialias.layers.BlurPool2d`
    for the arguments.

    Shape:
        ``(N, C, H, W)`` -> ``(N, C, ceil(H / stride), ceil(W / stride))`` (with ``pad_off = 0``).

    Example:
        >>> blur_pool2d(torch.ones(1, 3, 7, 8), filter_size=4).shape
        torch.Size([1, 3, 4, 4])
    """
    return _blur_pool(input, *_pool_args(2, filter_size, stride, pad_mode, pad_off), "blur_pool2d")


def blur_pool3d(
    input: Tensor,
    filter_size: FilterSpec = 4,
    stride: IntOrTuple = 2,
    pad_mode: str = "reflect",
    pad_off: int = 0,
) -> Tensor:
    """Blur-pool of ``(N, C, D, H, W)`` volumes, each axis to ``ceil(L / s)``; see
    :func:`blur_pool2d`."""
    return _blur_pool(input, *_pool_args(3, filter_size, stride, pad_mode, pad_off), "blur_pool3d")


def max_blur_pool1d(
    input: Tensor,
    kernel_size: IntOrTuple = 2,
    filter_size: FilterSpec = 4,
    stride: IntOrTuple = 2,
    padding: IntOrTuple = 0,
    pad_mode: str = "reflect",
    pad_off: int = 0,
) -> Tensor:
    """Max-blur-pool of ``(N, C, L)`` signals to ``ceil((L + 2 * padding - kernel_size + 1) /
    stride)`` samples; see :func:`max_blur_pool2d`."""
    args = _max_args(1, kernel_size, padding, filter_size, stride, pad_mode, pad_off)
    return _max_blur_pool(input, *args, "max_blur_pool1d")


def max_blur_pool2d(
    input: Tensor,
    kernel_size: IntOrTuple = 2,
    filter_size: FilterSpec = 4,
    stride: IntOrTuple = 2,
    padding: IntOrTuple = 0,
    pad_mode: str = "reflect",
    pad_off: int = 0,
) -> Tensor:
    """Max at stride 1, then blur-pool (2D, the paper's MaxBlurPool); see
    :class:`~antialias.layers.MaxBlurPool2d` for the arguments.

    Shape:
        ``(N, C, H, W)`` -> ``(N, C, ceil(H' / stride), ceil(W' / stride))`` with ``H' = H + 2 *
        padding - kernel_size + 1``.

    Example:
        >>> max_blur_pool2d(torch.zeros(1, 1, 9, 9)).shape
        torch.Size([1, 1, 4, 4])
    """
    args = _max_args(2, kernel_size, padding, filter_size, stride, pad_mode, pad_off)
    return _max_blur_pool(input, *args, "max_blur_pool2d")


def max_blur_pool3d(
    input: Tensor,
    kernel_size: IntOrTuple = 2,
    filter_size: FilterSpec = 4,
    stride: IntOrTuple = 2,
    padding: IntOrTuple = 0,
    pad_mode: str = "reflect",
    pad_off: int = 0,
) -> Tensor:
    """Max-blur-pool of ``(N, C, D, H, W)`` volumes, each axis to ``ceil((L + 2 * padding -
    kernel_size + 1) / stride)``; see :func:`max_blur_pool2d`."""
    args = _max_args(3, kernel_size, padding, filter_size, stride, pad_mode, pad_off)
    return _max_blur_pool(input, *args, "max_blur_pool3d")


def blur_upsample1d(
    input: Tensor,
    filter_size: FilterSpec | None = None,
    scale_factor: IntOrTuple = 2,
    pad_mode: str = "replicate",
) -> Tensor:
    """Anti-aliased upsampling of ``(N, C, L)`` signals to ``(N, C, L * scale_factor)``; see
    :func:`blur_upsample2d`."""
    return _blur_upsample(input, *_upsample_args(1, filter_size, scale_factor, pad_mode))


def blur_upsample2d(
    input: Tensor,
    filter_size: FilterSpec | None = None,
    scale_factor: IntOrTuple = 2,
    pad_mode: str = "replicate",
) -> Tensor:
    """Anti-aliased upsampling (2D): insert zeros, then blur with gain ``scale_factor`` per axis.

    With ``filter_size=4``, ``scale_factor=2`` and replicate padding this equals bilinear
    interpolation (``align_corners=False``). See :class:`~antialias.layers.BlurUpsample2d`.

    Shape:
        ``(N, C, H, W)`` -> ``(N, C, H * scale_factor, W * scale_factor)``.

    Example:
        >>> blur_upsample2d(torch.ones(1, 1, 2, 3)).shape
        torch.Size([1, 1, 4, 6])
    """
    return _blur_upsample(input, *_upsample_args(2, filter_size, scale_factor, pad_mode))


def blur_upsample3d(
    input: Tensor,
    filter_size: FilterSpec | None = None,
    scale_factor: IntOrTuple = 2,
    pad_mode: str = "replicate",
) -> Tensor:
    """Anti-aliased upsampling of ``(N, C, D, H, W)`` volumes, each axis times
    ``scale_factor``; see :func:`blur_upsample2d`."""
    return _blur_upsample(input, *_upsample_args(3, filter_size, scale_factor, pad_mode))
