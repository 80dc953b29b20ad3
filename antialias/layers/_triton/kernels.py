"""The ``@triton.jit`` kernels: pure index arithmetic on pointers, one program per block of outputs.

Every tensor is addressed through its strides on a logical ``(N, C, D, H, W)`` view (1D and 2D
inputs get length-1 axes), so NCHW, channels_last, channels_last_3d and any strided view run
unchanged. Outputs are numbered in the memory order of the output tensor (``CHANNELS_LAST``:
channels fastest), so neighbouring lanes store to neighbouring addresses. Accumulation is in float32
(float64 for float64 tensors).
"""

from __future__ import annotations

import triton
import triton.language as tl

__all__ = ["separable_kernel"]


@triton.jit
def _outputs(
    total, C, D, H, W, CHANNELS_LAST: tl.constexpr, WIDE_INDEX: tl.constexpr, BLOCK: tl.constexpr
):
    """This program's outputs: their mask and ``(n, c, d, h, w)``, numbered in memory order."""
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    if WIDE_INDEX:
        offs = offs.to(tl.int64)
    if CHANNELS_LAST:
        c, t = offs % C, offs // C
        w, t = t % W, t // W
        h, t = t % H, t // H
        d, n = t % D, t // D
    else:
        w, t = offs % W, offs // W
        h, t = t % H, t // H
        d, t = t % D, t // D
        c, n = t % C, t // C
    return offs < total, n, c, d, h, w


@triton.jit
def separable_kernel(
    x_ptr, y_ptr, idx_d_ptr, w_d_ptr, idx_h_ptr, w_h_ptr, idx_w_ptr, w_w_ptr,
    total, C, D, H, W, sxn, sxc, sxd, sxh, sxw, syn, syc, syd, syh, syw,
    R_D: tl.constexpr, R_H: tl.constexpr, R_W: tl.constexpr, CHANNELS_LAST: tl.constexpr,
    WIDE_INDEX: tl.constexpr, ACC_F64: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    """``y[n, c, d, h, w] = sum w_d[d, i] w_h[h, j] w_w[w, l] x[n, c, idx_d[d, i], ...]``.

    One kernel for blur-pool and blur-upsample, forward and backward: the tables (``tables.py``) say
    which inputs each output reads; ``idx < 0`` slots read nothing (zero padding), so no padded copy
    exists and an output never touches an input outside its window. ``(D, H, W)`` are the output's
    sizes.
    """
    mask, n, c, d, h, w = _outputs(total, C, D, H, W, CHANNELS_LAST, WIDE_INDEX, BLOCK)
    base = n * sxn + c * sxc
    acc_t = tl.float64 if ACC_F64 else tl.float32
    # Nested per-axis sums (sum_i w_d * sum_j w_h * sum_l w_w * x): one rounding per tap and axis,
    # fewer multiplies than weighting each term with the product of three taps.
    acc = tl.zeros([BLOCK], dtype=acc_t)
    for i in tl.static_range(R_D):
        src_d = tl.load(idx_d_ptr + d * R_D + i, mask=mask, other=-1)
        ok_d = mask & (src_d >= 0)
        acc_d = tl.zeros([BLOCK], dtype=acc_t)
        for j in tl.static_range(R_H):
            src_h = tl.load(idx_h_ptr + h * R_H + j, mask=mask, other=-1)
            ok_dh = ok_d & (src_h >= 0)
            row = base + src_d * sxd + src_h * sxh
            acc_h = tl.zeros([BLOCK], dtype=acc_t)
            for m in tl.static_range(R_W):
                src_w = tl.load(idx_w_ptr + w * R_W + m, mask=mask, other=-1)
                wt_w = tl.load(w_w_ptr + w * R_W + m, mask=mask, other=0.0)
                v = tl.load(x_ptr + row + src_w * sxw, mask=ok_dh & (src_w >= 0), other=0.0)
                acc_h += wt_w * v.to(acc_t)
            acc_d += tl.load(w_h_ptr + h * R_H + j, mask=mask, other=0.0) * acc_h
        acc += tl.load(w_d_ptr + d * R_D + i, mask=mask, other=0.0) * acc_d
    y = y_ptr + n * syn + c * syc + d * syd + h * syh + w * syw
    tl.store(y, acc.to(y_ptr.dtype.element_ty), mask=mask)
