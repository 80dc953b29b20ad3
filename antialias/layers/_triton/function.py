"""``torch.autograd.Function`` s that launch the Triton kernels and define their backward.

Blur-pool and blur-upsample are linear: the forward gathers with the op's tables, the backward with the
transposed tables (the adjoint: zero-insertion then blur, computed per input sample, so no atomics) and is
itself this Function, hence twice differentiable. Max-blur-pool saves its input: the backward blurs the
gradient back onto the max-pooled grid, then each input gathers the gradients of the windows it wins.
"""

from __future__ import annotations

import functools
from typing import Any, List, Optional, Sequence, Tuple

import torch
import triton
from torch import Tensor

from antialias.layers._checks import is_channels_last
from antialias.layers._triton import interpreting, kernels
from antialias.layers._triton import tables as T

__all__ = ["blur_pool", "blur_upsample", "max_blur_pool"]

_BLOCK = 512  # outputs per program on a GPU (to be tuned with benchmarks/gpu.py)
# Triton's interpreter runs programs one after the other, each op as a numpy call: one program for the
# whole tensor is fastest there.
_INTERPRETER_BLOCK_MAX = 1 << 20
_SUPPORTED = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
# One op's per-axis tables, forward and adjoint, for (D, H, W) (identity tables on missing axes).
_Tables = Tuple[List[T.AxisTable], List[T.AxisTable]]


def _check(x: Tensor, name: str) -> None:
    if x.dtype not in _SUPPORTED:
        raise TypeError(f"{name}: the Triton kernels take {_SUPPORTED}, got {x.dtype}")


def _pad_axes(tables: List[T.AxisTable]) -> List[T.AxisTable]:
    return [T.identity_table()] * (3 - len(tables)) + list(tables)


@functools.lru_cache(maxsize=512)
def _pool_tables(
    taps: Tuple[float, ...],
    sizes: Tuple[int, ...],
    stride: Tuple[int, ...],
    pad_mode: str,
    pad_off: int,
) -> _Tables:
    fwd = [T.pool_table(taps, n, s, pad_mode, pad_off) for n, s in zip(sizes, stride, strict=True)]
    return _pad_axes(fwd), _pad_axes([T.transpose(t) for t in fwd])


@functools.lru_cache(maxsize=512)
def _upsample_tables(
    taps: Tuple[float, ...], sizes: Tuple[int, ...], factor: Tuple[int, ...], pad_mode: str
) -> _Tables:
    fwd = [T.upsample_table(taps, n, f, pad_mode) for n, f in zip(sizes, factor, strict=True)]
    return _pad_axes(fwd), _pad_axes([T.transpose(t) for t in fwd])


@functools.lru_cache(maxsize=1024)
def _on_device(
    table: T.AxisTable, device: torch.device, dtype: torch.dtype
) -> Tuple[Tensor, Tensor]:
    with torch.inference_mode(False):  # cached tables must serve later autograd graphs too
        return table[0].to(device).contiguous(), table[1].to(device, dtype).contiguous()


def _as5d(t: Tensor) -> Tuple[List[int], List[int]]:
    """Sizes and strides of the logical ``(N, C, D, H, W)`` view (length-1 axes added in front of the spatial ones)."""
    pad = 5 - t.dim()
    sizes = list(t.shape[:2]) + [1] * pad + list(t.shape[2:])
    strides = list(t.stride()[:2]) + [0] * pad + list(t.stride()[2:])
    return sizes, strides


def _empty_like_format(x: Tensor, shape: Sequence[int]) -> Tensor:
    """A new tensor of ``shape`` in the memory format of ``x`` (channels_last in, channels_last out)."""
    fmt = torch.contiguous_format
    if is_channels_last(x):
        fmt = torch.channels_last if x.dim() == 4 else torch.channels_last_3d
    return torch.empty(list(shape), dtype=x.dtype, device=x.device, memory_format=fmt)


def _tables_and_output(
    x: Tensor, tables: List[T.AxisTable], acc: torch.dtype
) -> Tuple[List[Tensor], Tensor]:
    """The (index, weight) tables of the three axes on the device, flat, and the empty output they define."""
    dev = [u for t in tables for u in _on_device(t, x.device, acc)]
    out_spatial = [t[0].size(0) for t in tables][3 - (x.dim() - 2) :]
    return dev, _empty_like_format(x, list(x.shape[:2]) + out_spatial)


def _block(total: int) -> int:
    if interpreting():
        return min(_INTERPRETER_BLOCK_MAX, triton.next_power_of_2(max(total, 16)))
    return _BLOCK


def _grid(total: int, block: int) -> Tuple[int]:
    return (max(1, -(-total // block)),)


def _wide(*ts: Tensor) -> bool:
    """int64 offsets when any address could pass 2**31 - 1."""
    return any(
        sum((s - 1) * abs(st) for s, st in zip(t.shape, t.stride(), strict=True)) >= 2**31 - 1
        or t.numel() >= 2**31 - 1
        for t in ts
    )


def _separable(x: Tensor, tables: List[T.AxisTable]) -> Tensor:
    """Launch :func:`kernels.separable_kernel`; output shape from the tables, format from ``x``."""
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    dev, y = _tables_and_output(x, tables, acc)
    if y.numel() == 0:
        return y
    xs, xst = _as5d(x)
    ys, yst = _as5d(y)
    block = _block(y.numel())
    kernels.separable_kernel[_grid(y.numel(), block)](
        x,
        y,
        *dev,
        y.numel(),
        ys[1],
        ys[2],
        ys[3],
        ys[4],
        *xst,
        *yst,
        R_D=tables[0][0].size(1),
        R_H=tables[1][0].size(1),
        R_W=tables[2][0].size(1),
        CHANNELS_LAST=is_channels_last(y),
        WIDE_INDEX=_wide(x, y),
        ACC_F64=acc == torch.float64,
        BLOCK=block,
    )
    return y


class _SeparableGather(torch.autograd.Function):
    """A linear map given by per-axis tables; the backward is the same Function with the adjoint tables."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, fwd: List[T.AxisTable], adj: List[T.AxisTable]) -> Tensor:  # type: ignore[override]
        ctx.tables = (fwd, adj)
        return _separable(x, fwd)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tuple[Tensor, None, None]:  # type: ignore[override]
        fwd, adj = ctx.tables
        return _SeparableGather.apply(grad, adj, fwd), None, None


def blur_pool(
    x: Tensor, taps: List[float], stride: List[int], pad_mode: str, pad_off: int
) -> Tensor:
    """Blur-pool on 1D/2D/3D inputs in one Triton pass (validated arguments); differentiable."""
    _check(x, "blur_pool")
    fwd, adj = _pool_tables(tuple(taps), tuple(x.shape[2:]), tuple(stride), pad_mode, pad_off)
    return _SeparableGather.apply(x, fwd, adj)


def blur_upsample(x: Tensor, taps: List[float], factor: List[int], pad_mode: str) -> Tensor:
    """Zero-insert + blur on 1D/2D/3D inputs in one Triton pass (validated arguments); differentiable."""
    _check(x, "blur_upsample")
    fwd, adj = _upsample_tables(tuple(taps), tuple(x.shape[2:]), tuple(factor), pad_mode)
    return _SeparableGather.apply(x, fwd, adj)


def _max_sizes(x: Tensor, kernel: List[int], padding: List[int]) -> Tuple[int, ...]:
    return tuple(n + 2 * p - k + 1 for n, k, p in zip(x.shape[2:], kernel, padding, strict=True))


def _pad3(values: Sequence[int], fill: int) -> List[int]:
    return [fill] * (3 - len(values)) + list(values)


class _MaxBlurPool(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        kernel: List[int],
        padding: List[int],
        fwd: List[T.AxisTable],  # type: ignore[override]
        adj: List[T.AxisTable],
    ) -> Tensor:
        ctx.save_for_backward(x)
        ctx.args = (kernel, padding, adj)
        dev, y = _tables_and_output(x, fwd, torch.float32)
        if y.numel() == 0:
            return y
        xs, xst = _as5d(x)
        ys, yst = _as5d(y)
        k3, p3 = _pad3(kernel, 1), _pad3(padding, 0)
        block = _block(y.numel())
        kernels.max_blur_kernel[_grid(y.numel(), block)](
            x,
            y,
            *dev,
            y.numel(),
            ys[1],
            ys[2],
            ys[3],
            ys[4],
            xs[2],
            xs[3],
            xs[4],
            p3[0],
            p3[1],
            p3[2],
            *xst,
            *yst,
            R_D=fwd[0][0].size(1),
            R_H=fwd[1][0].size(1),
            R_W=fwd[2][0].size(1),
            K_D=k3[0],
            K_H=k3[1],
            K_W=k3[2],
            CHANNELS_LAST=is_channels_last(y),
            WIDE_INDEX=_wide(x, y),
            BLOCK=block,
        )
        return y

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tuple[Optional[Tensor], None, None, None, None]:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        kernel, padding, adj = ctx.args
        grad_max = _separable(grad, adj)  # the gradient on the stride-1 max-pooled grid
        gx = _empty_like_format(x, x.shape)
        if gx.numel() == 0:
            return gx, None, None, None, None
        xs, xst = _as5d(x)
        ms, mst = _as5d(grad_max)
        _, gst = _as5d(gx)
        k3, p3 = _pad3(kernel, 1), _pad3(padding, 0)
        block = _block(gx.numel())
        kernels.max_unpool_kernel[_grid(gx.numel(), block)](
            x,
            grad_max,
            gx,
            gx.numel(),
            xs[1],
            xs[2],
            xs[3],
            xs[4],
            ms[2],
            ms[3],
            ms[4],
            p3[0],
            p3[1],
            p3[2],
            *xst,
            *mst,
            *gst,
            K_D=k3[0],
            K_H=k3[1],
            K_W=k3[2],
            CHANNELS_LAST=is_channels_last(gx),
            WIDE_INDEX=_wide(x, grad_max, gx),
            BLOCK=block,
        )
        return gx, None, None, None, None


def max_blur_pool(
    x: Tensor,
    kernel: List[int],
    padding: List[int],
    taps: List[float],
    stride: List[int],
    pad_mode: str,
    pad_off: int,
) -> Tensor:
    """Stride-1 max pooling (``-inf`` padding), blur and subsample, fused (float16/bfloat16/float32)."""
    if x.dtype not in (torch.float16, torch.bfloat16, torch.float32):
        raise TypeError(
            f"max_blur_pool: the fused Triton kernel takes float16/bfloat16/float32, got {x.dtype}"
        )
    fwd, adj = _pool_tables(
        tuple(taps), _max_sizes(x, kernel, padding), tuple(stride), pad_mode, pad_off
    )
    return _MaxBlurPool.apply(x, list(kernel), list(padding), fwd, adj)
