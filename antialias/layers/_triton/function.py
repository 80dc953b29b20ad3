"""``torch.autograd.Function`` s that launch the Triton kernels and define their backward.

Blur-pool and blur-upsample are linear: the forward gathers with the op's tables, the backward with
the transposed tables (the adjoint: zero-insertion then blur, computed per input sample, so no
atomics) and is itself this Function, hence twice differentiable. Max-blur-pool saves its input: the
backward blurs the gradient back onto the max-pooled grid, then each input gathers the gradients of
the windows it wins.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
import triton
from torch import Tensor

from antialias.layers._checks import is_channels_last
from antialias.layers._triton import interpreting, kernels
from antialias.layers._triton import tables as T

__all__ = ["blur_pool", "blur_upsample", "max_blur_pool"]

_BLOCK = 512  # outputs per program on a GPU (benchmarks/gpu.py measures it)
# Triton's interpreter runs programs one after the other, each op a numpy call: one program for the
# whole tensor is fastest there.
_INTERPRETER_BLOCK_MAX = 1 << 20
_SUPPORTED = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
# One op's per-axis tables, forward and adjoint, for (D, H, W) (identity tables on missing axes).
_Tables = tuple[list[T.AxisTable], list[T.AxisTable]]


def _check(x: Tensor, name: str) -> None:
    if x.dtype not in _SUPPORTED:
        raise TypeError(f"{name}: the Triton kernels take {_SUPPORTED}, got {x.dtype}")


def _with_adjoint(fwd: list[T.AxisTable]) -> _Tables:
    pad = [T.identity_table()] * (3 - len(fwd))
    return pad + fwd, pad + [T.transpose(t) for t in fwd]


@functools.lru_cache(maxsize=512)
def _pool_tables(
    taps: tuple[float, ...],
    sizes: tuple[int, ...],
    stride: tuple[int, ...],
    pad_mode: str,
    pad_off: int,
) -> _Tables:
    return _with_adjoint(
        [T.pool_table(taps, n, s, pad_mode, pad_off) for n, s in zip(sizes, stride, strict=True)]
    )


@functools.lru_cache(maxsize=512)
def _upsample_tables(
    taps: tuple[float, ...], sizes: tuple[int, ...], factor: tuple[int, ...], pad_mode: str
) -> _Tables:
    return _with_adjoint(
        [T.upsample_table(taps, n, f, pad_mode) for n, f in zip(sizes, factor, strict=True)]
    )


@functools.lru_cache(maxsize=1024)
def _on_device(
    table: T.AxisTable, device: torch.device, dtype: torch.dtype
) -> tuple[Tensor, Tensor]:
    with torch.inference_mode(False):  # cached tables must serve later autograd graphs too
        return table[0].to(device).contiguous(), table[1].to(device, dtype).contiguous()


def _as5d(t: Tensor) -> tuple[list[int], list[int]]:
    """Sizes and strides of the logical ``(N, C, D, H, W)`` view (length-1 axes before the spatial
    ones)."""
    pad = 5 - t.dim()
    sizes = list(t.shape[:2]) + [1] * pad + list(t.shape[2:])
    return sizes, list(t.stride()[:2]) + [0] * pad + list(t.stride()[2:])


def _empty_like_format(x: Tensor, shape: Sequence[int]) -> Tensor:
    """A new tensor of ``shape`` in the memory format of ``x`` (channels_last in, channels_last
    out)."""
    fmt = torch.contiguous_format
    if is_channels_last(x):
        fmt = torch.channels_last if x.dim() == 4 else torch.channels_last_3d
    return torch.empty(list(shape), dtype=x.dtype, device=x.device, memory_format=fmt)


def _tables_and_output(
    x: Tensor, tables: list[T.AxisTable], acc: torch.dtype
) -> tuple[list[Tensor], Tensor]:
    """The (index, weight) tables of the three axes on the device, flat, and the empty output."""
    dev = [u for t in tables for u in _on_device(t, x.device, acc)]
    out_spatial = [t[0].size(0) for t in tables][3 - (x.dim() - 2) :]
    return dev, _empty_like_format(x, list(x.shape[:2]) + out_spatial)


def _launch(total: int, *ts: Tensor) -> dict[str, Any]:
    """The grid and the launch options every kernel takes: block, layout, int64 offsets."""
    block = _BLOCK
    if interpreting():
        block = min(_INTERPRETER_BLOCK_MAX, triton.next_power_of_2(max(total, 16)))
    wide = any(  # int64 offsets when any address could pass 2**31 - 1
        sum((s - 1) * abs(st) for s, st in zip(t.shape, t.stride(), strict=True)) >= 2**31 - 1
        or t.numel() >= 2**31 - 1
        for t in ts
    )
    grid = (max(1, -(-total // block)),)
    return {
        "grid": grid,
        "CHANNELS_LAST": is_channels_last(ts[-1]),
        "WIDE_INDEX": wide,
        "BLOCK": block,
    }


def _r(tables: list[T.AxisTable]) -> dict[str, int]:
    return {"R_D": tables[0][0].size(1), "R_H": tables[1][0].size(1), "R_W": tables[2][0].size(1)}


def _k(kernel: Sequence[int]) -> dict[str, int]:
    k3 = [1] * (3 - len(kernel)) + list(kernel)
    return {"K_D": k3[0], "K_H": k3[1], "K_W": k3[2]}


def _p3(padding: Sequence[int]) -> list[int]:
    return [0] * (3 - len(padding)) + list(padding)


def _separable(x: Tensor, tables: list[T.AxisTable]) -> Tensor:
    """Launch :func:`kernels.separable_kernel`; output shape from the tables, format from ``x``."""
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    dev, y = _tables_and_output(x, tables, acc)
    if y.numel() == 0:
        return y
    ys, yst = _as5d(y)
    opts = _launch(y.numel(), x, y)
    kernels.separable_kernel[opts.pop("grid")](
        x, y, *dev, y.numel(), *ys[1:], *_as5d(x)[1], *yst, **_r(tables), **opts,
        ACC_F64=acc == torch.float64,
    )  # fmt: skip
    return y


class _SeparableGather(torch.autograd.Function):
    """A linear map given by per-axis tables; the backward: this Function, the adjoint tables."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: Tensor, fwd: list[T.AxisTable], adj: list[T.AxisTable]
    ) -> Tensor:
        ctx.tables = (fwd, adj)
        return _separable(x, fwd)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:  # type: ignore[override]
        fwd, adj = ctx.tables
        return _SeparableGather.apply(grad, adj, fwd), None, None


def blur_pool(
    x: Tensor, taps: list[float], stride: list[int], pad_mode: str, pad_off: int
) -> Tensor:
    """Blur-pool on 1D/2D/3D inputs in one Triton pass (checked arguments); differentiable."""
    _check(x, "blur_pool")
    fwd, adj = _pool_tables(tuple(taps), tuple(x.shape[2:]), tuple(stride), pad_mode, pad_off)
    return _SeparableGather.apply(x, fwd, adj)


def blur_upsample(x: Tensor, taps: list[float], factor: list[int], pad_mode: str) -> Tensor:
    """Zero-insert + blur on 1D/2D/3D inputs in one Triton pass; differentiable."""
    _check(x, "blur_upsample")
    fwd, adj = _upsample_tables(tuple(taps), tuple(x.shape[2:]), tuple(factor), pad_mode)
    return _SeparableGather.apply(x, fwd, adj)


class _MaxBlurPool(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: Tensor,
        kernel: list[int],
        padding: list[int],
        fwd: list[T.AxisTable],
        adj: list[T.AxisTable],
    ) -> Tensor:
        ctx.save_for_backward(x)
        ctx.args = (kernel, padding, adj)
        dev, y = _tables_and_output(x, fwd, torch.float32)
        if y.numel() == 0:
            return y
        xs, xst = _as5d(x)
        ys, yst = _as5d(y)
        opts = _launch(y.numel(), x, y)
        kernels.max_blur_kernel[opts.pop("grid")](
            x, y, *dev, y.numel(), *ys[1:], *xs[2:], *_p3(padding), *xst, *yst,
            **_r(fwd), **_k(kernel), **opts,
        )  # fmt: skip
        return y

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: Any, grad: Tensor
    ) -> tuple[Tensor | None, None, None, None, None]:
        (x,) = ctx.saved_tensors
        kernel, padding, adj = ctx.args
        grad_max = _separable(grad, adj)  # the gradient on the stride-1 max-pooled grid
        gx = _empty_like_format(x, x.shape)
        if gx.numel() == 0:
            return gx, None, None, None, None
        xs, xst = _as5d(x)
        ms, mst = _as5d(grad_max)
        opts = _launch(gx.numel(), x, grad_max, gx)
        kernels.max_unpool_kernel[opts.pop("grid")](
            x, grad_max, gx, gx.numel(), *xs[1:], *ms[2:], *_p3(padding), *xst, *mst,
            *_as5d(gx)[1], **_k(kernel), **opts,
        )  # fmt: skip
        return gx, None, None, None, None


def max_blur_pool(
    x: Tensor,
    kernel: list[int],
    padding: list[int],
    taps: list[float],
    stride: list[int],
    pad_mode: str,
    pad_off: int,
) -> Tensor:
    """Stride-1 max pooling (``-inf`` padding), blur and subsample, fused
    (float16/bfloat16/float32).

    The fused kernel keeps float32 maxima: float64 takes the max first, then the blur-pool kernel.
    """
    if x.dtype == torch.float64:
        pooled = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[x.dim() - 3](x, kernel, 1, padding)
        return blur_pool(pooled, taps, stride, pad_mode, pad_off)
    _check(x, "max_blur_pool")
    sizes = tuple(n + 2 * p - k + 1 for n, k, p in zip(x.shape[2:], kernel, padding, strict=True))
    fwd, adj = _pool_tables(tuple(taps), sizes, tuple(stride), pad_mode, pad_off)
    return _MaxBlurPool.apply(x, list(kernel), list(padding), fwd, adj)
