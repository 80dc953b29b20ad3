"""Per-axis index tables: what each output sample reads, with the padding, stride and taps folded in.

Along one axis, blur-pool (pad + filter + subsample) and blur-upsample (zero-insert + filter) are linear maps
in which output ``o`` is ``sum_r weight[o, r] * input[index[o, r]]``. The tables hold those ``(index, weight)``
pairs, ``R`` per output (``R = k`` for blur-pool), ``index = -1`` marking an unused slot (zero padding, or a
row shorter than ``R``). The adjoint (the backward) is the transposed map, tabulated per *input* sample.

The kernels read the tables instead of padding: no padded copy is made, and an output reads exactly the
inputs of its window (a NaN or Inf stays local). The rules are those of the CPU kernels
(:func:`antialias.layers._cpu.source_index`): reflect falls back to replicate on an axis not longer
than its padding, circular wraps as often as needed.
"""

from __future__ import annotations

import functools
from typing import Tuple

import torch
from torch import Tensor

from antialias.layers._cpu import pool_sources, upsample_sources

__all__ = ["AxisTable", "identity_table", "pool_table", "transpose", "upsample_table"]

# (index int32 (L_out, R), weight float64 (L_out, R), input length)
AxisTable = Tuple[Tensor, Tensor, int]


@functools.lru_cache(maxsize=1024)
def pool_table(
    taps: Tuple[float, ...], length: int, stride: int, pad_mode: str, pad_off: int
) -> AxisTable:
    """Pad + filter + subsample along an axis of ``length`` samples: ``R = len(taps)`` pairs per output."""
    index, valid = pool_sources(len(taps), length, stride, pad_mode, pad_off)
    index = torch.where(valid, index, torch.full_like(index, -1))
    weight = torch.tensor(taps, dtype=torch.float64).expand(index.shape).clone()
    return index.to(torch.int32), weight, length


@functools.lru_cache(maxsize=1024)
def upsample_table(taps: Tuple[float, ...], length: int, factor: int, pad_mode: str) -> AxisTable:
    """Zero-insert by ``factor`` + filter (gain ``factor``), the phases of ``_cpu.upsample_phases``."""
    index, valid, weight = upsample_sources(list(taps), length, factor, pad_mode)
    return torch.where(valid, index, torch.full_like(index, -1)).to(torch.int32), weight, length


def transpose(table: AxisTable) -> AxisTable:
    """The adjoint's table: per input sample, the outputs that read it and with which weight."""
    idx, w, length = table
    idx = idx.long()
    out_len = idx.size(0)
    rows = torch.arange(out_len).unsqueeze(1).expand_as(idx)
    used = idx >= 0
    src, dst, wt = idx[used], rows[used], w[used]
    order = torch.argsort(src * (out_len + 1) + dst, stable=True)  # by input sample, then by output
    src, dst, wt = src[order], dst[order], wt[order]
    counts = torch.bincount(src, minlength=length)
    width = max(1, int(counts.max())) if counts.numel() else 1
    first = torch.cumsum(counts, 0) - counts
    slot = torch.arange(src.numel()) - first[src]
    t_index = torch.full((length, width), -1, dtype=torch.long)
    t_weight = torch.zeros(length, width, dtype=torch.float64)
    t_index[src, slot] = dst
    t_weight[src, slot] = wt
    return t_index.to(torch.int32), t_weight, out_len


def identity_table() -> AxisTable:
    """A length-1 axis mapped onto itself (how 1D and 2D inputs run on the 3D kernel)."""
    return torch.zeros(1, 1, dtype=torch.int32), torch.ones(1, 1, dtype=torch.float64), 1
