"""Per-axis index tables: what each output sample reads, with the padding, stride and taps folded
in.

Along one axis, blur-pool (pad + filter + subsample) and blur-upsample (zero-insert + filter) are
linear maps in which output ``o`` is ``sum_r weight[o, r] * input[index[o, r]]``. The tables hold
those ``(index, weight)`` pairs, ``R`` per output, ``index = -1`` marking an unused slot (zero
padding, or a row shorter than ``R``). The Triton kernels read them; the CPU kernels apply their
dense form (:func:`dense`). An output reads exactly the inputs of its window, so a NaN or Inf stays
local. The padding rule is the one of ``_checks.pad``. This module imports no Triton.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from antialias.layers._checks import blur_pads

__all__ = ["AxisTable", "dense", "identity_table", "pool_table", "transpose", "upsample_table"]

# (index int32 (L_out, R), weight float64 (L_out, R), input length)
AxisTable = tuple[Tensor, Tensor, int]


def _source(pos: Tensor, length: int, pad_mode: str, pad: int) -> Tensor:
    """The input sample each padded position reads; -1 where zero padding contributes nothing."""
    if pad_mode == "circular":
        return pos.remainder(length)
    if pad_mode == "zeros":
        return torch.where((pos >= 0) & (pos < length), pos, -1)
    if pad_mode == "reflect" and pad < length:
        pos = pos.abs()
        return torch.where(pos >= length, 2 * (length - 1) - pos, pos)
    return pos.clamp(0, length - 1)


@functools.lru_cache(maxsize=1024)
def pool_table(
    taps: tuple[float, ...], length: int, stride: int, pad_mode: str, pad_off: int
) -> AxisTable:
    """Pad + filter + subsample along an axis of ``length`` samples: ``len(taps)`` pairs per
    output."""
    left, right = blur_pads(len(taps), pad_off)
    out_len = (length + left + right - len(taps)) // stride + 1
    pos = torch.arange(out_len).unsqueeze(1) * stride + torch.arange(len(taps)) - left
    index = _source(pos, length, pad_mode, max(left, right))
    weight = torch.tensor(taps, dtype=torch.float64).expand(index.shape).clone()
    return index.to(torch.int32), weight, length


def upsample_phases(
    taps: tuple[float, ...], factor: int
) -> tuple[list[list[float]], list[list[int]], int, int]:
    """Split the upsampling filter into its ``factor`` polyphase parts: weights, offsets, left,
    right.

    Output ``n = factor * j + r`` is ``factor * sum_i taps[i] * u[n - c + i]``, ``u`` the
    zero-stuffed input and ``c = (k + factor - 2) // 2`` centring the filter on the half-pixel grid
    (``k = 4`` at factor 2 is bilinear interpolation). Only taps with ``n - c + i`` a multiple of
    ``factor`` touch an input sample, at offset ``(r - c + i) // factor`` from ``j``.
    """
    center = (len(taps) + factor - 2) // 2
    weights: list[list[float]] = [[] for _ in range(factor)]
    offsets: list[list[int]] = [[] for _ in range(factor)]
    for r in range(factor):
        for i, tap in enumerate(taps):
            if (r - center + i) % factor == 0:
                weights[r].append(tap * factor)
                offsets[r].append((r - center + i) // factor)
    flat = [o for part in offsets for o in part] + [0]
    return weights, offsets, -min(flat), max(flat)


@functools.lru_cache(maxsize=1024)
def upsample_table(taps: tuple[float, ...], length: int, factor: int, pad_mode: str) -> AxisTable:
    """Zero-insert by ``factor`` + filter (gain ``factor``): output ``j * factor + r`` reads phase
    ``r``."""
    weights, offsets, left, right = upsample_phases(taps, factor)
    width = max(len(o) for o in offsets)
    index = torch.full((length, factor, width), -1, dtype=torch.long)
    weight = torch.zeros(length, factor, width, dtype=torch.float64)
    for r in range(factor):
        for t, (off, w) in enumerate(zip(offsets[r], weights[r], strict=True)):
            index[:, r, t] = _source(torch.arange(length) + off, length, pad_mode, max(left, right))
            weight[:, r, t] = w
    n = length * factor
    return index.reshape(n, width).to(torch.int32), weight.reshape(n, width), length


def dense(table: AxisTable) -> Tensor:
    """The ``(L_out, L)`` float64 matrix of a table (taps landing on one sample add up)."""
    index, weight, length = table
    mat = torch.zeros(index.size(0), length, dtype=torch.float64)
    return mat.scatter_add_(1, index.long().clamp(min=0), weight * (index >= 0))


@functools.lru_cache(maxsize=1024)
def transpose(table: AxisTable) -> AxisTable:
    """The adjoint's table: per input sample, the outputs that read it and with which weight
    (cached, as the tables it takes)."""
    idx, w, length = table
    idx, out_len = idx.long(), idx.size(0)
    used = idx >= 0
    src, dst, wt = idx[used], torch.arange(out_len).unsqueeze(1).expand_as(idx)[used], w[used]
    order = torch.argsort(src * (out_len + 1) + dst, stable=True)  # by input sample, then output
    src, dst, wt = src[order], dst[order], wt[order]
    counts = torch.bincount(src, minlength=length)
    width = max(1, int(counts.max())) if counts.numel() else 1
    slot = torch.arange(src.numel()) - (torch.cumsum(counts, 0) - counts)[src]
    t_index = torch.full((length, width), -1, dtype=torch.long)
    t_weight = torch.zeros(length, width, dtype=torch.float64)
    t_index[src, slot], t_weight[src, slot] = dst, wt
    return t_index.to(torch.int32), t_weight, out_len


def identity_table() -> AxisTable:
    """A length-1 axis mapped onto itself (how 1D and 2D inputs run on the 3D kernel)."""
    return torch.zeros(1, 1, dtype=torch.int32), torch.ones(1, 1, dtype=torch.float64), 1
