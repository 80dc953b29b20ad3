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

__all__ = ["max_unpool_kernel", "max_blur_kernel", "separable_kernel"]


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


@triton.jit
def _window_max(
    x_ptr, base, pd, ph, pw, Din, Hin, Win, sxd, sxh, sxw, ok,
    K_D: tl.constexpr, K_H: tl.constexpr, K_W: tl.constexpr, P_D, P_H, P_W,
):  # fmt: skip
    """Max over the stride-1 window that starts at ``(pd, ph, pw) - padding`` (``-inf`` padding).

    Returns the value and the flat ``(d, h, w)`` position of the winner: the first maximum in scan
    order, a NaN wins (the rule of ``torch.nn.functional.max_pool2d``).
    """
    best = tl.full(ok.shape, float("-inf"), tl.float32)
    arg = tl.full(ok.shape, -1, tl.int64)
    for a in tl.static_range(K_D):
        qd = pd - P_D + a
        for b in tl.static_range(K_H):
            qh = ph - P_H + b
            for e in tl.static_range(K_W):
                qw = pw - P_W + e
                inside = (qd >= 0) & (qd < Din) & (qh >= 0) & (qh < Hin) & (qw >= 0) & (qw < Win)
                valid = ok & inside
                q = x_ptr + base + qd * sxd + qh * sxh + qw * sxw
                v = tl.load(q, mask=valid, other=float("-inf")).to(tl.float32)
                take = valid & ((v > best) | (v != v) | (arg < 0))
                best = tl.where(take, v, best)
                arg = tl.where(take, (qd.to(tl.int64) * Hin + qh) * Win + qw, arg)
    return best, arg


@triton.jit
def max_blur_kernel(
    x_ptr, y_ptr, idx_d_ptr, w_d_ptr, idx_h_ptr, w_h_ptr, idx_w_ptr, w_w_ptr,
    total, C, D, H, W, Din, Hin, Win, P_D, P_H, P_W,
    sxn, sxc, sxd, sxh, sxw, syn, syc, syd, syh, syw,
    R_D: tl.constexpr, R_H: tl.constexpr, R_W: tl.constexpr,
    K_D: tl.constexpr, K_H: tl.constexpr, K_W: tl.constexpr,
    CHANNELS_LAST: tl.constexpr, WIDE_INDEX: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    """Fused max-blur-pool: each blur tap computes the stride-1 max of its window, then weighs it.

    The tables index the (never stored) max-pooled map; ``(Din, Hin, Win)`` are the input's sizes.
    """
    mask, n, c, d, h, w = _outputs(total, C, D, H, W, CHANNELS_LAST, WIDE_INDEX, BLOCK)
    base = n * sxn + c * sxc
    acc = tl.zeros([BLOCK], dtype=tl.float32)
    # Runtime loops over the taps, an unrolled window max inside (its loads independent, in flight
    # together): a 2D specialisation with 3x3 windows is about 40 KB of cubin and 2 s of compile,
    # where unrolling the taps too gives about 380 KB and 12 s (benchmarks/gpu.py --compile-cost).
    for i in range(R_D):
        src_d = tl.load(idx_d_ptr + d * R_D + i, mask=mask, other=-1)
        wt_d = tl.load(w_d_ptr + d * R_D + i, mask=mask, other=0.0)
        for j in range(R_H):
            src_h = tl.load(idx_h_ptr + h * R_H + j, mask=mask, other=-1)
            wt_dh = wt_d * tl.load(w_h_ptr + h * R_H + j, mask=mask, other=0.0)
            for m in range(R_W):
                src_w = tl.load(idx_w_ptr + w * R_W + m, mask=mask, other=-1)
                wt = wt_dh * tl.load(w_w_ptr + w * R_W + m, mask=mask, other=0.0)
                ok = mask & (src_d >= 0) & (src_h >= 0) & (src_w >= 0)
                v, _ = _window_max(x_ptr, base, src_d, src_h, src_w, Din, Hin, Win, sxd, sxh, sxw,
                                   ok, K_D, K_H, K_W, P_D, P_H, P_W)  # fmt: skip
                acc += wt * tl.where(ok, v, 0.0)
    y = y_ptr + n * syn + c * syc + d * syd + h * syh + w * syw
    tl.store(y, acc.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def max_unpool_kernel(
    x_ptr, g_ptr, y_ptr, total, C, D, H, W, Dm, Hm, Wm, P_D, P_H, P_W,
    sxn, sxc, sxd, sxh, sxw, sgn, sgc, sgd, sgh, sgw, syn, syc, syd, syh, syw,
    K_D: tl.constexpr, K_H: tl.constexpr, K_W: tl.constexpr,
    CHANNELS_LAST: tl.constexpr, WIDE_INDEX: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    """Backward of the stride-1 max: each input sums the gradients of the windows it wins.

    ``x``/``y`` have the input's sizes ``(D, H, W)``; ``g`` is the gradient of the max-pooled map
    ``(Dm, Hm, Wm)``. A window at ``q`` covers inputs ``q - padding + [0, K)``; each input
    recomputes the winners of the ``K_D * K_H * K_W`` windows that cover it (no atomics).
    """
    mask, n, c, d, h, w = _outputs(total, C, D, H, W, CHANNELS_LAST, WIDE_INDEX, BLOCK)
    base = n * sxn + c * sxc
    me = (d.to(tl.int64) * H + h) * W + w
    acc = tl.zeros([BLOCK], dtype=tl.float32)
    # Runtime loops over the windows, each window max unrolled (as in max_blur_kernel).
    for a in range(K_D):
        qd = d + P_D - a
        for b in range(K_H):
            qh = h + P_H - b
            for e in range(K_W):
                qw = w + P_W - e
                ok = mask & (qd >= 0) & (qd < Dm) & (qh >= 0) & (qh < Hm) & (qw >= 0) & (qw < Wm)
                _, arg = _window_max(x_ptr, base, qd, qh, qw, D, H, W, sxd, sxh, sxw,
                                     ok, K_D, K_H, K_W, P_D, P_H, P_W)  # fmt: skip
                g = g_ptr + n * sgn + c * sgc + qd * sgd + qh * sgh + qw * sgw
                acc += tl.load(g, mask=ok & (arg == me), other=0.0).to(tl.float32)
    y = y_ptr + n * syn + c * syc + d * syd + h * syh + w * syw
    tl.store(y, acc.to(y_ptr.dtype.element_ty), mask=mask)
