"""The CPU kernels of blur-pool and blur-upsample, and the stride-1 max of max-blur-pool
(private to :mod:`antialias.layers`).

Two formulations of each linear op, equal up to float rounding, reached through
``functional._choose``:

- ``*_slices``: pad, then accumulate the taps on strided views, one axis after the other. Traceable:
  inductor fuses it into one loop and ONNX exports it as Pad/Slice/Mul/Add; it runs under
  ``torch.compile``/``torch.export``/tracing, on other devices and on long axes.
- ``*_matrix`` (CPU, eager): along each axis the op is a small ``(L_out, L)`` matrix (the dense form
  of ``_triton.tables``), applied with one matrix product per axis: the input is read once per axis
  and no padded copy is made. channels_last blur-pool forwards run oneDNN's depthwise convolution
  instead (``_padded_conv``, ``_unpadded_conv``). The backward multiplies by the transposes
  (``_Linear``), saving no activation. bfloat16 runs in bfloat16 where the CPU has native bfloat16
  units (AVX512-BF16 or AMX: oneDNN's bfloat16 kernels are then the fastest), else in float32;
  float16 runs in float32. What a call needs besides its input (tables, matrices, the convolution's
  weight, border parts and padding) is a :class:`_Plan`, made once per layer and input shape.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from antialias.layers._checks import blur_pads, is_channels_last, like_format, pad, padder
from antialias.layers._triton.tables import (
    AxisTable,
    dense,
    pool_table,
    transpose,
    upsample_phases,
    upsample_table,
)

# ------------------------------------------------------------------------------------------------
# The strided slices (traceable)


def _blur_axis(x: Tensor, taps: list[float], dim: int, stride: int) -> Tensor:
    """Filter the padded axis ``dim`` with ``taps`` and keep every ``stride``-th sample."""
    span = ((x.size(dim) - len(taps)) // stride) * stride + 1
    last = x.dim() - 1  # non-negative: the legacy ONNX exporter mistranslates movedim(dim, -1)
    xt = x.movedim(dim, last)
    acc = xt[..., 0:span:stride] * taps[0]
    for i in range(1, len(taps)):
        acc.add_(xt[..., i : i + span : stride], alpha=taps[i])
    return acc.movedim(last, dim)


def blur_pool_slices(
    x: Tensor, taps: list[float], stride: list[int], pad_mode: str, pad_off: int
) -> Tensor:
    ndim = x.dim() - 2
    y = pad(x, list(blur_pads(len(taps), pad_off)) * ndim, pad_mode)
    for d in range(ndim):
        y = _blur_axis(y, taps, d + 2, stride[d])
    return like_format(y, x)


def _upsample_axis(x: Tensor, taps: list[float], dim: int, factor: int, pad_mode: str) -> Tensor:
    weights, offsets, left, right = upsample_phases(tuple(taps), factor)
    length = x.size(dim)
    pads = [0, 0] * (x.dim() - 2)
    pads[2 * (dim - 2) : 2 * (dim - 2) + 2] = [left, right]
    last = x.dim() - 1  # non-negative, as in _blur_axis
    xt = pad(x, pads, pad_mode).movedim(dim, last)
    phases = []
    for w, o in zip(weights, offsets, strict=True):
        acc = torch.zeros_like(xt[..., 0:length])
        for tap, off in zip(w, o, strict=True):
            acc.add_(xt[..., off + left : off + left + length], alpha=tap)
        phases.append(acc)
    return torch.stack(phases, dim=-1).flatten(-2).movedim(last, dim)


def blur_upsample_slices(x: Tensor, taps: list[float], factor: list[int], pad_mode: str) -> Tensor:
    y = x
    for d in range(x.dim() - 2):
        y = _upsample_axis(y, taps, d + 2, factor[d], pad_mode)
    return like_format(y, x)


# ------------------------------------------------------------------------------------------------
# The matrix products (eager CPU)

# Longest axis handled by a matrix product: each output costs L multiply-adds there instead of k,
# which beats the k memory passes of the slices up to about this length (measured with
# benchmarks/run.py; ImageNet networks blur maps of at most 112). Splitting the matrix into diagonal
# blocks loses to one wide product, badly so with more than one thread.
MATRIX_MAX_LEN = 160
_Map = Callable[[Tensor], Tensor]


def use_matrices(x: Tensor) -> bool:
    """Whether the matrix kernels apply: a non-empty CPU tensor, every spatial axis short enough."""
    return x.device.type == "cpu" and x.numel() > 0 and max(x.shape[2:]) <= MATRIX_MAX_LEN


@functools.lru_cache(maxsize=1)
def native_bf16() -> bool:
    """Whether the CPU has bfloat16 units (AVX512-BF16 or AMX), which oneDNN's bfloat16 kernels use.

    Without them bfloat16 products and convolutions are several times slower than float32 ones.
    """
    cpu: Any = torch.cpu
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(cpu, name, lambda: False)() for name in checks)


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    if dtype == torch.bfloat16 and native_bf16():
        return dtype
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


@functools.lru_cache(maxsize=1024)
def _matrix(table: AxisTable, dtype: torch.dtype) -> Tensor:
    """The contiguous ``(L_out, L)`` CPU matrix of an axis's table (cached: tables are cached too)."""
    with torch.inference_mode(False):  # cached tensors serve later autograd graphs too
        return dense(table).to(dtype)


# Locality: a product with a banded matrix multiplies every input of a row by the matrix's zeros,
# and 0 * NaN = NaN, so one NaN or Inf would spread over the whole map. The products run when the
# data are finite; otherwise the slices, which read only each output's window, redo the call. The
# smaller of input and output is checked (one sum; a sum that overflows only costs the slower path):
# a non-finite input always leaves a non-finite output, so checking a pooling's output is enough.
def _finite(t: Tensor) -> bool:
    return bool(torch.isfinite(t.sum()))


def separable_matmul(x: Tensor, mats: list[Tensor], local: _Map) -> Tensor:
    """Apply ``mats[d]`` along spatial axis ``d``, or ``local(x)`` where a NaN or Inf would spread.

    The products run in the dtype of ``x`` and ``mats`` and in the memory order of ``x`` (kept); a
    channels_last ``x`` is contracted through its contiguous ``(N, *S, C)`` view. The first axis
    goes first, except for bfloat16 NCHW maps that shrink: there the last axis (one plain product)
    goes first, so that oneDNN's batched products, the slower ones, see the smaller data (measured
    with benchmarks/run.py: 20% less time for bfloat16, 8% more for float32).
    """
    out_smaller = math.prod(m.size(0) for m in mats) <= math.prod(m.size(1) for m in mats)
    if not out_smaller and not _finite(x):
        return local(x)
    ndim, cl = x.dim() - 2, is_channels_last(x)
    z = x.permute([0, *range(2, ndim + 2), 1]) if cl else x.contiguous()
    last_first = out_smaller and not cl and x.dtype == torch.bfloat16
    order = range(ndim - 1, -1, -1) if last_first else range(ndim)
    for d in order:
        mat = mats[d]
        dim, shape = d + 1 if cl else d + 2, list(z.shape)
        before, after = math.prod(shape[:dim]), math.prod(shape[dim + 1 :])
        if after == 1:
            z = torch.mm(z.reshape(before, shape[dim]), mat.t())
        else:
            z = torch.matmul(mat, z.reshape(before, shape[dim], after))
        z = z.reshape(shape[:dim] + [mat.size(0)] + shape[dim + 1 :])
    y = z.permute([0, ndim + 1, *range(1, ndim + 1)]) if cl else z
    return local(x) if out_smaller and not _finite(y) else y


@dataclasses.dataclass(frozen=True, eq=False)
class _Plan:
    """A separable linear map on one input shape, ready to run: built once per layer and shape
    (:func:`_pool_plan`, :func:`_upsample_plan`, :func:`_adjoint`), so a call only looks it up.

    ``kernel`` names the forward: ``"products"`` (:func:`separable_matmul` with ``mats``), or the
    channels_last convolutions ``"padded"`` and ``"unpadded"`` with the arguments ``conv``.
    """

    tables: list[AxisTable]  # one per spatial axis
    local: _Map  # the map by the slices: where a NaN or Inf would spread, and for the adjoint
    shape: tuple[int, ...]  # the input's
    dtype: torch.dtype  # the compute dtype
    kernel: str = "products"
    conv: tuple[Any, ...] = ()

    @functools.cached_property
    def mats(self) -> list[Tensor]:
        """The tables' matrices in ``dtype`` (made on first use: a convolution's plan needs none)."""
        return [_matrix(t, self.dtype) for t in self.tables]


class _Linear(torch.autograd.Function):
    """The map of a :class:`_Plan`. The backward is this Function with the adjoint plan
    (:func:`_adjoint`), so it is itself differentiable; no tensor is saved. Without autograd
    ``forward`` runs alone, with ``ctx=None`` (:func:`_linear_for`): no graph node.

    Autograd through ``torch.matmul`` gets the same values but multiplies by transposed, broadcast
    views, slower than the forward; here the adjoint multiplies by contiguous transposes.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, plan: _Plan) -> Tensor:  # type: ignore[override]
        if ctx is not None:
            ctx.plan = plan
        t = x if x.dtype == plan.dtype else x.to(plan.dtype)
        # Autocast off: the kernels run in the plan's dtype (under CPU autocast the products would
        # switch to bfloat16 and the backward, outside autocast, would mix dtypes).
        autocast = torch.is_autocast_enabled(x.device.type)
        with torch.autocast(x.device.type, enabled=False) if autocast else contextlib.nullcontext():
            if plan.kernel == "padded":
                y = _padded_conv(t, *plan.conv)
            elif plan.kernel == "unpadded":
                y = _unpadded_conv(t, *plan.conv)
            else:
                y = separable_matmul(t, plan.mats, plan.local)
        y = y if y.dtype == x.dtype else y.to(x.dtype)
        if ctx is not None and y._base is not None and ctx.needs_input_grad[0]:
            # A view returned by a custom Function may not be modified in place (an activation's
            # ``mul_`` after the blur, as in timm's NFNets): hand out a tensor of its own.
            y = y.clone(memory_format=torch.preserve_format)
        return y

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        return _linear_for(grad)(grad, _adjoint(ctx.plan)), None


_forward_alone = functools.partial(_Linear.forward, None)


def _linear_for(x: Tensor) -> Callable[[Tensor, _Plan], Tensor]:
    """:class:`_Linear`'s ``apply`` where autograd records ``x``, else its forward alone."""
    return _Linear.apply if torch.is_grad_enabled() and x.requires_grad else _forward_alone


@functools.lru_cache(maxsize=1024)
def _adjoint(plan: _Plan) -> _Plan:
    """The transposed map: the products with the transposed tables and, where a NaN or Inf would
    spread, autograd through the slices."""

    def local(g: Tensor) -> Tensor:
        with torch.enable_grad():
            z = g.new_zeros(plan.shape, requires_grad=True)
            return torch.autograd.grad(plan.local(z), z, g)[0]

    shape = (*plan.shape[:2], *(t[0].size(0) for t in plan.tables))
    return _Plan([transpose(t) for t in plan.tables], local, shape, plan.dtype)


# channels_last blur-pool runs oneDNN's depthwise convolution, as the reference does: on the padded
# copy of the input while that copy is smaller than ``PADDED_COPY_MAX`` bytes (two operators, the
# fewest), else with zero padding and no copy (one pass over the input, near the memory floor) when
# that convolution's symmetric padding gives the op's output length. The other pad modes then differ
# from zero padding on a few border lines only. Along axis ``d`` the op's matrix is ``M_d = Z_d +
# B_d``, ``Z_d`` the zero-padded one and ``B_d`` nonzero on a few border rows, and ``M_1 x ... x
# M_n`` is ``Z_1 x ... x Z_n`` (the convolution) plus one part per axis ``d``: ``M`` on the axes
# before ``d``, ``B_d`` on ``d`` and ``Z`` on the axes after it. A part takes the input lines that
# ``B_d`` reads (equal weights in steps of equal length share one strided view), pads them along the
# axes before ``d``, convolves them along every axis but ``d`` and adds them to the output lines
# that ``B_d`` writes. Every part reads only its outputs' windows, so a NaN or Inf stays local.
PADDED_COPY_MAX = 6 << 20  # bytes; measured: the border parts cost more below, the copy above
_CONV = (F.conv2d, F.conv3d)
# (axis, output and input slices on it, weight, stride, padding, pre-padding) of a border part
_Part = tuple[int, slice, slice, Tensor, list[int], list[int], _Map]


@functools.lru_cache(maxsize=256)
def _depthwise(
    taps: tuple[float, ...],
    ndim: int,
    channels: int,
    dtype: torch.dtype,
    axes: tuple[int, ...] | None = None,
) -> Tensor:
    """The ``(channels, 1, k, ..., k)`` weight of the separable filter ``taps`` (length 1 on the
    spatial axes not in ``axes``)."""
    with torch.inference_mode(False):  # cached tensors serve later autograd graphs too
        t = torch.tensor(taps, dtype=torch.float64)
        factors = [t if axes is None or d in axes else t.new_ones(1) for d in range(ndim)]
        weight = functools.reduce(lambda w, f: w.unsqueeze(-1) * f, factors[1:], factors[0])
        return weight.to(dtype).expand(channels, 1, *weight.shape).contiguous()


def _padded_conv(x: Tensor, weight: Tensor, pad_fn: _Map, stride: list[int]) -> Tensor:
    """Blur-pool as the copy padded by ``pad_fn`` (from ``_checks.padder``), convolved
    with the depthwise ``weight`` (the forward only: oneDNN's bfloat16 backward lets a NaN reach
    other channels)."""
    # circular padding gathers into a contiguous copy: back to x's format for oneDNN's fast kernel
    padded = like_format(pad_fn(x), x)
    return _CONV[x.dim() - 4](padded, weight, stride=stride, groups=x.size(1))


def _lines(border: Tensor) -> list[tuple[slice, slice, float]]:
    """The nonzero entries ``(output, input, weight)`` of a border matrix as slices: entries of one
    weight whose outputs and inputs both advance in equal positive steps share one pair."""
    runs: dict[float, list[tuple[int, int]]] = {}
    for o, i in border.nonzero().tolist():
        runs.setdefault(float(border[o, i]), []).append((o, i))
    out = []
    for weight, run in runs.items():
        steps = {(b[0] - a[0], b[1] - a[1]) for a, b in zip(run, run[1:], strict=False)}
        so, si = steps.pop() if len(steps) == 1 else (0, 0)
        if so > 0 and si > 0:
            (o0, i0), (o1, i1) = run[0], run[-1]
            out.append((slice(o0, o1 + 1, so), slice(i0, i1 + 1, si), weight))
        else:
            out += [(slice(o, o + 1), slice(i, i + 1), weight) for o, i in run]
    return out


def _border_parts(
    taps: tuple[float, ...],
    sizes: tuple[int, ...],
    stride: tuple[int, ...],
    pad_mode: str,
    pad_off: int,
    channels: int,
    dtype: torch.dtype,
) -> list[_Part] | None:
    """The border parts added to the zero-padded convolution; ``None`` when that convolution has
    another output length."""
    k, ndim = len(taps), len(sizes)
    left, right = blur_pads(k, pad_off)
    axes = list(zip(sizes, stride, strict=True))
    if any((n + 2 * left - k) // s != (n + left + right - k) // s for n, s in axes):
        return None
    parts: list[_Part] = []
    with torch.inference_mode(False):  # cached tensors serve later autograd graphs too
        for d, (n, s) in enumerate(axes):
            border = dense(pool_table(taps, n, s, pad_mode, pad_off))
            border -= dense(pool_table(taps, n, s, "zeros", pad_off))
            others = tuple(e for e in range(ndim) if e != d)
            weight = _depthwise(taps, ndim, channels, dtype, others)
            conv_stride = [1 if e == d else stride[e] for e in range(ndim)]
            padding = [left if e > d else 0 for e in range(ndim)]
            pads = [p for e in range(ndim) for p in ((left, right) if e < d else (0, 0))]
            before = padder(sizes, pads, pad_mode)
            for out, inp, w in _lines(border):
                parts.append((d, out, inp, weight * w, conv_stride, padding, before))
    return parts


def _unpadded_conv(
    x: Tensor, weight: Tensor, parts: list[_Part], stride: list[int], left: int
) -> Tensor:
    """The forward as the convolution with ``left`` zeros of padding plus the border ``parts``."""
    conv, c = _CONV[x.dim() - 4], x.size(1)
    y = conv(x, weight, stride=stride, padding=left, groups=c)
    order = [0, *range(2, x.dim()), 1]  # adds run on the (N, *S, C) views: C innermost, faster
    for d, outs, ins, w, conv_stride, padding, before in parts:
        at = (slice(None),) * (d + 2)
        # the strided view copied in x's memory order, then padded (fast for that order only)
        lines = like_format(before(like_format(x[at + (ins,)], x)), x)
        part = conv(lines, w, stride=conv_stride, padding=padding, groups=c)
        y[at + (outs,)].permute(order).add_(part.permute(order))
    return y


@functools.lru_cache(maxsize=1024)
def _pool_plan(
    taps: tuple[float, ...],
    stride: tuple[int, ...],
    pad_mode: str,
    pad_off: int,
    shape: tuple[int, ...],
    dtype: torch.dtype,
    channels_last: bool,
    copy_max: int,
) -> _Plan:
    """The plan of a blur-pool in the compute ``dtype``: the matrix products, or for channels_last
    float32 and bfloat16 maps the convolution, unpadded from ``copy_max`` bytes where it can be."""
    sizes = zip(shape[2:], stride, strict=True)
    tables = [pool_table(taps, n, s, pad_mode, pad_off) for n, s in sizes]
    local = functools.partial(
        blur_pool_slices, taps=list(taps), stride=list(stride), pad_mode=pad_mode, pad_off=pad_off
    )
    plan = _Plan(tables, local, tuple(shape), dtype)
    if not channels_last or dtype not in (torch.float32, torch.bfloat16):
        return plan
    weight = _depthwise(taps, len(stride), shape[1], dtype)
    left, right = blur_pads(len(taps), pad_off)
    if math.prod(shape) * dtype.itemsize >= copy_max:
        parts = _border_parts(taps, shape[2:], stride, pad_mode, pad_off, shape[1], dtype)
        if parts is not None:
            unpadded = (weight, parts, list(stride), left)
            return dataclasses.replace(plan, kernel="unpadded", conv=unpadded)
    pad_fn = padder(shape[2:], [left, right] * len(stride), pad_mode)
    return dataclasses.replace(plan, kernel="padded", conv=(weight, pad_fn, list(stride)))


def blur_pool_matrix(
    x: Tensor, taps: list[float], stride: list[int], pad_mode: str, pad_off: int
) -> Tensor:
    if len(taps) == 1:  # plain subsampling: nothing to multiply
        return blur_pool_slices(x, taps, stride, pad_mode, pad_off)
    key = (tuple(taps), tuple(stride), pad_mode, pad_off, x.shape, _compute_dtype(x.dtype))
    return _linear_for(x)(x, _pool_plan(*key, is_channels_last(x), PADDED_COPY_MAX))


@functools.lru_cache(maxsize=1024)
def _upsample_plan(
    taps: tuple[float, ...],
    factor: tuple[int, ...],
    pad_mode: str,
    shape: tuple[int, ...],
    dtype: torch.dtype,
) -> _Plan:
    tables = [upsample_table(taps, n, f, pad_mode) for n, f in zip(shape[2:], factor, strict=True)]
    local = functools.partial(
        blur_upsample_slices, taps=list(taps), factor=list(factor), pad_mode=pad_mode
    )
    return _Plan(tables, local, tuple(shape), dtype)


def blur_upsample_matrix(x: Tensor, taps: list[float], factor: list[int], pad_mode: str) -> Tensor:
    key = (tuple(taps), tuple(factor), pad_mode, x.shape, _compute_dtype(x.dtype))
    return _linear_for(x)(x, _upsample_plan(*key))


_MAX_POOL = (F.max_pool1d, F.max_pool2d, F.max_pool3d)


def max_pool(x: Tensor, kernel_size: list[int], padding: list[int], shifted: bool) -> Tensor:
    """Max over ``kernel_size`` windows at stride 1, with implicit ``-inf`` padding.

    With ``shifted`` (eager CPU), without autograd and on contiguous (NCHW) tensors, the max is
    taken separably as the elementwise maximum of shifted views: the same values, several times
    faster than ATen's NCHW max pooling. Otherwise ATen's max pooling runs: its backward (through
    saved indices) is much faster than that of the shifted maxima, and gradients at tied maxima stay
    those of ``nn.MaxPool2d``.
    """
    ndim = x.dim() - 2
    if not shifted or not x.is_contiguous() or (torch.is_grad_enabled() and x.requires_grad):
        return _MAX_POOL[ndim - 1](x, kernel_size, 1, padding)
    y = x
    for d, (k, p) in enumerate(zip(kernel_size, padding, strict=True)):
        if k == 1 and p == 0:
            continue
        if p > 0:
            pads = [0, 0] * ndim
            pads[2 * (ndim - 1 - d) : 2 * (ndim - d)] = [p, p]
            y = F.pad(y, pads, value=float("-inf"))
        out_len = y.size(d + 2) - k + 1
        acc = y.narrow(d + 2, 0, out_len)
        for i in range(1, k):
            acc = torch.maximum(acc, y.narrow(d + 2, i, out_len))
        y = acc
    return x.clone() if y is x else y  # kernel 1: still a new tensor, as max pooling gives
