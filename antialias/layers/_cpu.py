"""The CPU kernels of blur-pool, blur-upsample and the stride-1 max (private to :mod:`antialias.layers`).

Two formulations of pad + filter + subsample along each axis, equal up to float rounding (see
:mod:`antialias.layers.functional`'s Performance note): the strided slices (``blur_pool_slices``,
``blur_upsample_slices``), which inductor fuses and ONNX exports, and a small ``(L_out, L)`` matrix per
axis (``pool_matrix``, ``upsample_matrix``) applied with one matrix product, which the eager CPU path
runs through ``_SeparableLinear`` (a hand-written adjoint, locality kept on non-finite data).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from antialias.layers._checks import blur_pads, is_channels_last, like_format, pad


def _blur_axis(x: Tensor, taps: List[float], dim: int, stride: int) -> Tensor:
    """Filter the (already padded) axis ``dim`` with ``taps`` and keep every ``stride``-th sample."""
    k = len(taps)
    out_len = (x.size(dim) - k) // stride + 1
    span = (out_len - 1) * stride + 1
    last = (
        x.dim() - 1
    )  # a non-negative axis: the legacy ONNX exporter mistranslates movedim(dim, -1)
    xt = x.movedim(dim, last)
    acc = xt[..., 0:span:stride] * taps[0]
    for i in range(1, k):
        acc.add_(xt[..., i : i + span : stride], alpha=taps[i])
    return acc.movedim(last, dim)


def blur_pool_slices(
    x: Tensor, taps: List[float], stride: List[int], pad_mode: str, pad_off: int
) -> Tensor:
    """Pad, then accumulate the taps on strided views, one axis after the other (the fusable formulation)."""
    ndim = x.dim() - 2
    left, right = blur_pads(len(taps), pad_off)
    pads: List[int] = []
    for _ in range(ndim):
        pads += [left, right]
    y = pad(x, pads, pad_mode)
    for d in range(ndim):
        y = _blur_axis(y, taps, d + 2, stride[d])
    return like_format(y, x)


# Longest axis handled by a matrix product: each output sample costs L multiply-adds there instead of k,
# which beats the k memory passes of the strided formulation up to about this length (measured on CPU
# with benchmarks/run.py; ImageNet-sized networks blur maps of at most 112). Longer axes use the strided
# formulation. Splitting the matrix into diagonal blocks was measured too: the many small batched
# products it needs lose to one wide product, badly so with more than one thread.
MATRIX_MAX_LEN = 160


def source_index(
    pos: Tensor, length: int, pad_mode: str, left: int, right: int
) -> Tuple[Tensor, Tensor]:
    """Map positions on a padded axis (input coordinates, possibly outside ``[0, length)``) to input samples.

    Returns the sample index and a mask that is False where zero padding contributes nothing. The rules are
    those of :func:`pad`: reflect falls back to replicate when the axis is not longer than its padding.
    """
    valid = torch.ones_like(pos, dtype=torch.bool)
    if pad_mode == "circular":
        return pos.remainder(length), valid
    if pad_mode == "zeros":
        valid = (pos >= 0) & (pos < length)
        return pos.clamp(0, length - 1), valid
    if pad_mode == "reflect" and max(left, right) < length:
        pos = pos.abs()
        return torch.where(pos >= length, 2 * (length - 1) - pos, pos), valid
    return pos.clamp(0, length - 1), valid


def pool_sources(
    k: int, length: int, stride: int, pad_mode: str, pad_off: int
) -> Tuple[Tensor, Tensor]:
    """Pad + filter + subsample along an axis of ``length`` samples: the sample each of the ``k`` taps of each
    output reads, and whether it is a real one (not zero padding); both ``(L_out, k)``."""
    left, right = blur_pads(k, pad_off)
    out_len = (length + left + right - k) // stride + 1
    pos = torch.arange(out_len).unsqueeze(1) * stride + torch.arange(k).unsqueeze(0) - left
    return source_index(pos, length, pad_mode, left, right)


def pool_matrix(
    taps: List[float],
    length: int,
    stride: int,
    pad_mode: str,
    pad_off: int,
    dtype: torch.dtype,
    device: torch.device,
) -> Tensor:
    """The ``(L_out, length)`` matrix of pad + filter + subsample along one axis (built in float64)."""
    index, valid = pool_sources(len(taps), length, stride, pad_mode, pad_off)
    weight = torch.tensor(taps, dtype=torch.float64).unsqueeze(0) * valid.to(torch.float64)
    # Taps that land on the same sample (reflected or replicated borders) add up: scatter_add.
    mat = torch.zeros(index.size(0), length, dtype=torch.float64).scatter_add_(1, index, weight)
    return mat.to(device=device, dtype=dtype)


def upsample_sources(
    taps: List[float], length: int, factor: int, pad_mode: str
) -> Tuple[Tensor, Tensor, Tensor]:
    """Zero-insert by ``factor`` + filter along an axis of ``length`` samples (see :func:`_upsample_axis`): per
    output, the sample each of its taps reads, whether that is a real sample (not zero padding nor an unused
    slot), and the tap's weight; all ``(length * factor, W)``."""
    weights, offsets, left, right = upsample_phases(taps, factor)
    width = 1
    for o in offsets:
        width = max(width, len(o))
    j = torch.arange(length)
    index = torch.zeros(length, factor, width, dtype=torch.long)
    valid = torch.zeros(length, factor, width, dtype=torch.bool)
    weight = torch.zeros(length, factor, width, dtype=torch.float64)
    for r in range(factor):
        for t in range(len(offsets[r])):
            source, real = source_index(j + offsets[r][t], length, pad_mode, left, right)
            index[:, r, t] = source
            valid[:, r, t] = real
            weight[:, r, t] = weights[r][t]
    n = length * factor
    return index.reshape(n, width), valid.reshape(n, width), weight.reshape(n, width)


def upsample_matrix(
    taps: List[float],
    length: int,
    factor: int,
    pad_mode: str,
    dtype: torch.dtype,
    device: torch.device,
) -> Tensor:
    """The ``(length * factor, length)`` matrix of zero-insertion + filter along one axis (built in float64)."""
    index, valid, weight = upsample_sources(taps, length, factor, pad_mode)
    mat = torch.zeros(index.size(0), length, dtype=torch.float64).scatter_add_(
        1, index, weight * valid.to(torch.float64)
    )
    return mat.to(device=device, dtype=dtype)


@torch.jit.unused
def compiling() -> bool:
    """True while torch.compile, torch.export or the TorchScript tracer (legacy ONNX export) traces.

    Never reached from TorchScript scripting.
    """
    compiler = torch.compiler
    if hasattr(compiler, "is_compiling"):
        compiling = bool(compiler.is_compiling())
    else:  # torch < 2.3
        from torch._dynamo import is_compiling as dynamo_is_compiling

        compiling = bool(dynamo_is_compiling())
    return compiling or torch.jit.is_tracing()


def use_matrices(x: Tensor, max_len: int = MATRIX_MAX_LEN) -> bool:
    """Whether the matrix formulation applies: CPU, eager or TorchScript, every spatial axis short enough."""
    if x.device.type != "cpu" or x.numel() == 0:
        return False
    for d in range(2, x.dim()):
        if x.size(d) > max_len:
            return False
    if torch.jit.is_scripting():
        return True
    # torch.compile/export get the fusable strided formulation; torch.func transforms cannot see
    # through the eager kernel's autograd.Function.
    return not (compiling() or torch._C._are_functorch_transforms_active())


def _apply_axis(z: Tensor, mat: Tensor, dim: int) -> Tensor:
    """Contract axis ``dim`` of the contiguous ``z`` with ``mat`` of shape ``(L_out, L)``; contiguous result."""
    shape = list(z.shape)
    length = shape[dim]
    before = 1
    for s in shape[:dim]:
        before *= s
    after = 1
    for s in shape[dim + 1 :]:
        after *= s
    if after == 1:
        y = torch.mm(z.reshape(before, length), mat.t())
    else:
        y = torch.matmul(mat, z.reshape(before, length, after))
    shape[dim] = mat.size(0)
    return y.reshape(shape)


def separable_matmul(x: Tensor, mats: List[Tensor]) -> Tensor:
    """Apply ``mats[d]`` along spatial axis ``d``, working in the memory order of ``x`` (kept in the output)."""
    ndim = x.dim() - 2
    if is_channels_last(x):
        # (N, C, *S) stored as (N, *S, C): contract the spatial axes of that contiguous view, permute back.
        z = x.permute([0] + list(range(2, ndim + 2)) + [1])
        for d in range(ndim):
            z = _apply_axis(z, mats[d], d + 1)
        return z.permute([0, ndim + 1] + list(range(1, ndim + 1)))
    z = x.contiguous()
    for d in range(ndim):
        z = _apply_axis(z, mats[d], d + 2)
    return z


# ----------------------------------------------------------------------------------------------------
# Eager CPU kernel: matrix products with a hand-written adjoint (not part of the TorchScript graph)

# Per axis: the matrix and its transpose, both contiguous (the adjoint then runs as fast as the forward).
# (Cutting long axes into row blocks, each multiplied with the band of inputs it reads, was measured too:
# no faster on 112-sample axes, slower on shorter ones.)
_AxisMats = Tuple[Tensor, Tensor]


def _axis_mats(mat: Tensor, dtype: torch.dtype, device: torch.device) -> _AxisMats:
    # Built outside inference mode: matrices first made under torch.inference_mode() must still be usable
    # when autograd records a later training step.
    with torch.inference_mode(False):
        return mat.to(device, dtype), mat.t().contiguous().to(device, dtype)


@functools.lru_cache(maxsize=1024)
def _pool_mats(
    taps: Tuple[float, ...],
    length: int,
    stride: int,
    pad_mode: str,
    pad_off: int,
    dtype: torch.dtype,
    device: torch.device,
) -> _AxisMats:
    mat = pool_matrix(
        list(taps), length, stride, pad_mode, pad_off, torch.float64, torch.device("cpu")
    )
    return _axis_mats(mat, dtype, device)


@functools.lru_cache(maxsize=1024)
def _upsample_mats(
    taps: Tuple[float, ...],
    length: int,
    factor: int,
    pad_mode: str,
    dtype: torch.dtype,
    device: torch.device,
) -> _AxisMats:
    mat = upsample_matrix(list(taps), length, factor, pad_mode, torch.float64, torch.device("cpu"))
    return _axis_mats(mat, dtype, device)


# channels_last 2D blur-pool forward: oneDNN's depthwise convolution reads channels_last natively and is
# the fastest CPU kernel for it (measured: about 1.7x the matrix products in float32, 3x in bfloat16),
# but it only pads with zeros. It computes every output whose window lies inside the map; the few border
# rows and columns are then recomputed exactly with the axis matrices on thin slabs of the input (one
# gather, two small products and one scatter per axis: few operators, as each costs a thread wake-up).
# Below this map size the border work costs more than the matrix products save (measured: 28x28 maps
# are faster with the products, 56x56 ones with the convolution).
CONV_MIN_SIZE = 40
# Per axis: (first interior output, end of interior outputs, border outputs, inputs they read, weights).
_ConvAxis = Tuple[int, int, Tensor, Tensor, Tensor]
_ConvPlan = Tuple[Tensor, List[int], List[int], List[_ConvAxis]]


def _conv_axis(
    taps: List[float],
    length: int,
    stride: int,
    pad_mode: str,
    pad_off: int,
    dtype: torch.dtype,
    device: torch.device,
) -> Optional[_ConvAxis]:
    k = len(taps)
    left = blur_pads(k, pad_off)[0]
    mat = pool_matrix(taps, length, stride, pad_mode, pad_off, torch.float64, torch.device("cpu"))
    out_len = mat.size(0)
    conv_len = (length + 2 * left - k) // stride + 1  # the convolution pads ``left`` on both sides
    start = -(-left // stride)  # first output whose window starts inside the map
    end = min(conv_len, (length - k + left) // stride + 1)
    if start >= end:
        return None
    rows = torch.cat([torch.arange(0, start), torch.arange(end, out_len)])
    cols = (mat[rows] != 0).any(0).nonzero().flatten()
    if cols.numel() == 0:  # border outputs made of zero padding only
        cols = torch.zeros(1, dtype=torch.long)
    weights = mat[rows][:, cols]
    return start, end, rows.to(device), cols.to(device), weights.to(device, dtype)


@functools.lru_cache(maxsize=512)
def _conv_plan(
    taps: Tuple[float, ...],
    channels: int,
    height: int,
    width: int,
    stride: Tuple[int, int],
    pad_mode: str,
    pad_off: int,
    dtype: torch.dtype,
    device: torch.device,
) -> Optional[_ConvPlan]:
    with torch.inference_mode(False):  # see _axis_mats
        axes: List[_ConvAxis] = []
        for length, s in ((height, stride[0]), (width, stride[1])):
            axis = _conv_axis(list(taps), length, s, pad_mode, pad_off, dtype, device)
            if axis is None:  # a map too small to have interior outputs
                return None
            axes.append(axis)
        t = torch.tensor(taps, dtype=torch.float64)
        weight = (
            (t[:, None] * t[None, :])
            .to(device, dtype)
            .expand(channels, 1, len(taps), len(taps))
            .contiguous()
        )
    left = blur_pads(len(taps), pad_off)[0]
    return weight, list(stride), [left, left], axes


def _conv_blur_pool(x: Tensor, plan: _ConvPlan, mats: List[Tensor]) -> Tensor:
    weight, stride, padding, (rows, cols) = plan
    y = F.conv2d(x, weight, None, stride, padding, 1, x.size(1))
    out_h, out_w = mats[0].size(0), mats[1].size(0)
    if y.size(2) != out_h or y.size(3) != out_w:  # even filters on odd maps: one more row or column
        full = torch.empty(
            (y.size(0), y.size(1), out_h, out_w),
            dtype=y.dtype,
            device=y.device,
            memory_format=torch.channels_last,
        )
        full[:, :, : y.size(2), : y.size(3)] = y
        y = full
    # Work on the (N, H, W, C) views, which are contiguous: slabs keep long contiguous rows.
    z = x.permute(0, 2, 3, 1)
    out = y.permute(0, 2, 3, 1)
    start, end, out_rows, in_rows, row_weights = rows
    slab = _apply_axis(_apply_axis(z.index_select(1, in_rows), row_weights, 1), mats[1], 2)
    out.index_copy_(1, out_rows, slab)
    _, _, out_cols, in_cols, col_weights = cols
    slab = _apply_axis(
        _apply_axis(z.index_select(2, in_cols), mats[0][start:end], 1), col_weights, 2
    )
    out[:, start:end].index_copy_(2, out_cols, slab)
    return y


# Locality (STYLE 26): a product with a banded matrix multiplies every input of a row by the matrix's zeros,
# and 0 * NaN = NaN, so one NaN or Inf would spread over the whole map. The products run when the data are
# finite; otherwise the strided (slices) formulation, which only reads each output's window, redoes the call.
# Which side is checked: the smaller of input and output (a sum, one pass; a sum that overflows only costs
# the slower path). A finite input gives a local result; a non-finite input always leaves a non-finite output
# (every output of its matrix row gets the NaN), so checking the output of a pooling is enough.
# (forward, adjoint) of the local formulation of one linear map:
_LocalPair = Tuple[Callable[[Tensor], Tensor], Callable[[Tensor], Tensor]]


def _finite(t: Tensor) -> bool:
    acc = torch.float32 if t.dtype in (torch.float16, torch.bfloat16) else t.dtype
    return bool(torch.isfinite(t.sum(dtype=acc)))


def _output_smaller(mats: List[Tensor]) -> bool:
    out_n, in_n = 1, 1
    for m in mats:
        out_n *= m.size(0)
        in_n *= m.size(1)
    return out_n <= in_n


def _local_pair(fn: Callable[[Tensor], Tensor], in_shape: List[int]) -> _LocalPair:
    """``fn`` (a linear map in the local formulation) and its adjoint, by autograd through ``fn``."""

    def adjoint(grad: Tensor) -> Tensor:
        with torch.enable_grad():
            z = torch.zeros(in_shape, dtype=grad.dtype, device=grad.device, requires_grad=True)
            (out,) = torch.autograd.grad(fn(z), z, grad)
        return out

    return fn, adjoint


class _SeparableLinear(torch.autograd.Function):
    """``y = x`` contracted with one matrix per spatial axis; the backward is the adjoint.

    Autograd through ``torch.matmul`` would get the same values, but it multiplies by a transposed,
    broadcast view of each matrix, which is slower than the forward; here the backward multiplies by the
    contiguous transposes (for blur-pool: zero-insertion, then blur). No tensor is saved, and the backward
    is itself differentiable (it calls this Function).
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: Tensor,
        mats: List[Tensor],
        adjoint: List[Tensor],
        conv: Optional[_ConvPlan] = None,
        local: Optional[_LocalPair] = None,
    ) -> Tensor:
        ctx.mats = mats
        ctx.adjoint = adjoint
        ctx.local = local
        # Autocast off: the products run in the dtype of ``x`` and of the matrices made for it (under CPU
        # autocast they would switch to bfloat16 and the backward, outside autocast, would mix dtypes).
        with torch.autocast(x.device.type, enabled=False):
            if local is not None and not _output_smaller(mats) and not _finite(x):
                return local[0](x)
            y = _conv_blur_pool(x, conv, mats) if conv is not None else separable_matmul(x, mats)
            if local is not None and _output_smaller(mats) and not _finite(y):
                return local[0](x)  # a NaN/Inf went through the products (0 * NaN): redo it locally
        if y._base is not None and ctx.needs_input_grad[0]:
            # A view returned by a custom Function may not be modified in place (an activation's
            # ``mul_`` after the blur, as in timm's NFNets): hand out a tensor of its own, same strides.
            y = y.clone(memory_format=torch.preserve_format)
        return y

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tuple[Tensor, None, None, None, None]:  # type: ignore[override]
        local = None if ctx.local is None else (ctx.local[1], ctx.local[0])
        grad = grad.to(
            ctx.adjoint[0].dtype
        )  # e.g. a bfloat16 gradient of a float32 (autocast) forward
        return (
            _SeparableLinear.apply(grad, ctx.adjoint, ctx.mats, None, local),
            None,
            None,
            None,
            None,
        )


# Half precision on the CPU: the products run in float32 (one conversion each way, one rounding of the
# result). CPU matrix products and depthwise convolutions in bfloat16 are several times slower than in
# float32 without AMX (measured: 16x256x56x56 blur-pool forward 1319 ms in bfloat16 vs 244 ms through
# float32, NCHW; 7448 vs 204 ms channels_last; benchmarks/run.py gives the current ratios).
_HALF = (torch.float16, torch.bfloat16)


@torch.jit.unused
def eager_blur_pool(
    x: Tensor, taps: List[float], stride: List[int], pad_mode: str, pad_off: int
) -> Tensor:
    if x.dtype in _HALF:
        return eager_blur_pool(x.float(), taps, stride, pad_mode, pad_off).to(x.dtype)
    key = tuple(taps)
    mats = [
        _pool_mats(key, x.size(d + 2), stride[d], pad_mode, pad_off, x.dtype, x.device)
        for d in range(x.dim() - 2)
    ]
    conv: Optional[_ConvPlan] = None
    # channels_last only: in NCHW oneDNN's depthwise convolution is slower than the matrix products.
    if (
        x.dim() == 4
        and pad_mode != "circular"
        and x.dtype in (torch.float32, torch.bfloat16)
        and min(x.size(2), x.size(3)) >= CONV_MIN_SIZE
        and is_channels_last(x)
    ):
        conv = _conv_plan(
            key,
            x.size(1),
            x.size(2),
            x.size(3),
            (stride[0], stride[1]),
            pad_mode,
            pad_off,
            x.dtype,
            x.device,
        )
    local = _local_pair(
        lambda t: blur_pool_slices(t, taps, stride, pad_mode, pad_off), list(x.shape)
    )
    return _SeparableLinear.apply(x, [m[0] for m in mats], [m[1] for m in mats], conv, local)


@torch.jit.unused
def eager_blur_upsample(x: Tensor, taps: List[float], factor: List[int], pad_mode: str) -> Tensor:
    if x.dtype in _HALF:
        return eager_blur_upsample(x.float(), taps, factor, pad_mode).to(x.dtype)
    key = tuple(taps)
    mats = [
        _upsample_mats(key, x.size(d + 2), factor[d], pad_mode, x.dtype, x.device)
        for d in range(x.dim() - 2)
    ]
    local = _local_pair(lambda t: blur_upsample_slices(t, taps, factor, pad_mode), list(x.shape))
    return _SeparableLinear.apply(x, [m[0] for m in mats], [m[1] for m in mats], None, local)


def upsample_phases(
    taps: List[float], factor: int
) -> Tuple[List[List[float]], List[List[int]], int, int]:
    """Split the upsampling filter into its ``factor`` polyphase parts.

    Output sample ``n = factor * j + r`` is ``factor * sum_i taps[i] * u[n - c + i]`` where ``u`` is the
    zero-stuffed input and ``c = (k + factor - 2) // 2`` centres the filter on the half-pixel grid (for
    ``k = 4`` and ``factor = 2`` this is bilinear interpolation). Only the taps with ``n - c + i`` a
    multiple of ``factor`` touch an input sample, at offset ``(r - c + i) // factor`` from ``j``.
    """
    k = len(taps)
    center = (k + factor - 2) // 2
    weights: List[List[float]] = []
    offsets: List[List[int]] = []
    lo = 0
    hi = 0
    for r in range(factor):
        w: List[float] = []
        o: List[int] = []
        for i in range(k):
            if (r - center + i) % factor == 0:
                w.append(taps[i] * factor)
                o.append((r - center + i) // factor)
        weights.append(w)
        offsets.append(o)
        for off in o:
            lo = min(lo, off)
            hi = max(hi, off)
    return weights, offsets, -lo, hi


def _upsample_axis(x: Tensor, taps: List[float], dim: int, factor: int, pad_mode: str) -> Tensor:
    weights, offsets, left, right = upsample_phases(taps, factor)
    length = x.size(dim)
    pads: List[int] = []
    for d in range(x.dim() - 2):
        if d + 2 == dim:
            pads += [left, right]
        else:
            pads += [0, 0]
    last = x.dim() - 1  # non-negative, as in _blur_axis
    xt = pad(x, pads, pad_mode).movedim(dim, last)
    phases: List[Tensor] = []
    for r in range(factor):
        acc = torch.zeros_like(xt[..., 0:length])
        for t in range(len(offsets[r])):  # index loop: TorchScript has no zip(strict=)
            off = offsets[r][t]
            acc.add_(xt[..., off + left : off + left + length], alpha=weights[r][t])
        phases.append(acc)
    y = torch.stack(phases, dim=-1).flatten(-2)
    return y.movedim(last, dim)


def blur_upsample_slices(x: Tensor, taps: List[float], factor: List[int], pad_mode: str) -> Tensor:
    y = x
    for d in range(x.dim() - 2):
        y = _upsample_axis(y, taps, d + 2, factor[d], pad_mode)
    return like_format(y, x)


def max_pool(x: Tensor, kernel_size: List[int], padding: List[int]) -> Tensor:
    """Max over ``kernel_size`` windows at stride 1, with implicit ``-inf`` padding.

    Without autograd (inference), on contiguous (NCHW) CPU tensors in eager mode and TorchScript, the max
    is taken separably as the elementwise maximum of shifted views: the same values, several times
    faster than ATen's NCHW max pooling. When autograd records, ATen's max pooling runs: its backward
    (routing the gradient through saved indices) is much faster than that of the shifted maxima, and
    gradients at tied maxima stay those of ``nn.MaxPool2d``.
    """
    ndim = x.dim() - 2
    shifted = (
        x.device.type == "cpu"
        and x.is_contiguous()
        and not (torch.is_grad_enabled() and x.requires_grad)
    )
    if shifted and not torch.jit.is_scripting():
        shifted = not compiling()
    if shifted:
        y = x
        for d in range(ndim):
            k = kernel_size[d]
            p = padding[d]
            dim = d + 2
            if k == 1 and p == 0:
                continue
            if p > 0:
                pads: List[int] = []
                for e in range(ndim - 1, -1, -1):
                    pads += [p, p] if e == d else [0, 0]
                y = F.pad(y, pads, value=float("-inf"))
            out_len = y.size(dim) - k + 1
            acc = y.narrow(dim, 0, out_len)
            for i in range(1, k):
                acc = torch.maximum(acc, y.narrow(dim, i, out_len))
            y = acc
        if y is x:  # kernel 1: still return a new tensor, as max pooling does
            y = x.clone()
        return y
    if ndim == 1:
        return F.max_pool1d(x, kernel_size, 1, padding)
    if ndim == 2:
        return F.max_pool2d(x, kernel_size, 1, padding)
    return F.max_pool3d(x, kernel_size, 1, padding)
