"""``torch.autograd.Function`` s that launch the Triton kernels and define their backward.

Blur-pool and blur-upsample are linear: the forward gathers with the op's tables, the backward with
the transposed tables (the adjoint: zero-insertion then blur, computed per input sample, so no
atomics) and is itself this Function, hence twice differentiable. The arguments are checked by the
caller (``functional``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import torch
import triton
from torch import Tensor

from antialias.layers._checks import is_channels_last, memory_format
from antialias.layers._triton import interpreting, kernels
from antialias.layers._triton import tables as T

__all__ = ["blur_pool", "blur_upsample"]

_BLOCK = 512  # outputs per program on a GPU (benchmarks/gpu.py measures it)
# Triton's interpreter runs programs one after the other, each op a numpy call: one program for the
# whole tensor is fastest there.
_INTERPRETER_BLOCK_MAX = 1 << 20
_Tables = list[T.AxisTable]  # one table per axis (D, H, W)


@functools.lru_cache(maxsize=512)
def _tables(
    op: str, taps: tuple[float, ...], sizes: tuple[int, ...], steps: tuple[int, ...], *args: Any
) -> tuple[_Tables, _Tables]:
    """The forward and adjoint tables of ``op`` on (D, H, W), identity tables on missing axes."""
    make = T.pool_table if op == "pool" else T.upsample_table
    fwd = [make(taps, n, s, *args) for n, s in zip(sizes, steps, strict=True)]
    fwd = [T.identity_table()] * (3 - len(fwd)) + fwd
    return fwd, [T.transpose(t) for t in fwd]


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
    return [*t.shape[:2], *[1] * pad, *t.shape[2:]], [*t.stride()[:2], *[0] * pad, *t.stride()[2:]]


def _empty(x: Tensor, spatial: Sequence[int]) -> Tensor:
    """An empty ``(N, C, *spatial)`` tensor in the memory format of ``x``."""
    shape = [*x.shape[:2], *spatial]
    return torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=memory_format(x))


def _output(x: Tensor, tables: _Tables, acc: torch.dtype) -> tuple[Tensor, list[Tensor]]:
    """The empty output (sizes from the tables, format from ``x``) and the tables on device."""
    y = _empty(x, [t[0].size(0) for t in tables][5 - x.dim() :])
    return y, [u for t in tables for u in _on_device(t, x.device, acc)]


def _launch(kernel: Any, out: Tensor, *args: Any, **constexprs: Any) -> Tensor:
    """Run ``kernel`` over the outputs of ``out``, a block per program, in ``out``'s memory order;
    int64 offsets where an address could pass 2**31 - 1."""
    total = out.numel()
    if total == 0:
        return out
    block = _BLOCK
    if interpreting():
        block = min(_INTERPRETER_BLOCK_MAX, triton.next_power_of_2(max(total, 16)))
    wide = any(
        sum((s - 1) * abs(st) for s, st in zip(t.shape, t.stride(), strict=True)) >= 2**31 - 1
        or t.numel() >= 2**31 - 1
        for t in args
        if isinstance(t, Tensor)
    )
    layout = {"CHANNELS_LAST": is_channels_last(out), "WIDE_INDEX": wide, "BLOCK": block}
    kernel[(-(-total // block),)](*args, **constexprs, **layout)
    return out


def _r(tables: _Tables) -> dict[str, int]:
    return {"R_D": tables[0][0].size(1), "R_H": tables[1][0].size(1), "R_W": tables[2][0].size(1)}


class _SeparableGather(torch.autograd.Function):
    """A linear map given by per-axis tables; the backward: this Function, the adjoint tables."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: Tensor, fwd: _Tables, adj: _Tables
    ) -> Tensor:
        """Launch :func:`kernels.separable_kernel`: output shape from the tables, format from
        ``x``."""
        ctx.tables = (fwd, adj)
        acc = torch.float64 if x.dtype == torch.float64 else torch.float32
        y, dev = _output(x, fwd, acc)
        ys, yst = _as5d(y)
        return _launch(
            kernels.separable_kernel, y, x, y, *dev, y.numel(), *ys[1:], *_as5d(x)[1], *yst,
            **_r(fwd), ACC_F64=acc == torch.float64,
        )  # fmt: skip

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:  # type: ignore[override]
        fwd, adj = ctx.tables
        return _SeparableGather.apply(grad, adj, fwd), None, None


def blur_pool(
    x: Tensor, taps: list[float], stride: list[int], pad_mode: str, pad_off: int
) -> Tensor:
    """Blur-pool on 1D/2D/3D inputs in one Triton pass (checked arguments); differentiable."""
    key = (tuple(taps), tuple(x.shape[2:]), tuple(stride), pad_mode, pad_off)
    return _SeparableGather.apply(x, *_tables("pool", *key))


def blur_upsample(x: Tensor, taps: list[float], factor: list[int], pad_mode: str) -> Tensor:
    """Zero-insert + blur on 1D/2D/3D inputs in one Triton pass; differentiable."""
    key = (tuple(taps), tuple(x.shape[2:]), tuple(factor), pad_mode)
    return _SeparableGather.apply(x, *_tables("upsample", *key))
