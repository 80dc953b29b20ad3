"""Functional anti-aliased sampling: blur-pool, max-blur-pool and blur-upsample in 1D, 2D and 3D.

The public functions (``blur_pool2d`` ...) validate their arguments and resolve the filter on every
call; the modules in :mod:`antialias.layers.blurpool` resolve them once and call the private, scriptable
kernels below (``_blur_pool``, ``_blur_upsample``) directly.

Convention:
    Padding before the blur is ``(k - 1) // 2 + pad_off`` samples on the left/top and
    ``k // 2 + pad_off`` on the right/bottom of each spatial axis, as in the reference (Zhang, 2019), so
    the output has ``ceil(L / stride)`` samples for odd and even ``k`` (``pad_off = 0``).

    ``pad_mode="reflect"`` needs a pad smaller than the axis; on an axis too short for it (e.g. a 2x2 map
    with ``k = 7``) that call pads the short axis with ``"replicate"`` instead, the other axes keep
    ``"reflect"``. ``"circular"`` wraps as many times as needed. ``"zeros"`` pads with 0 (a constant map
    then darkens at the border).

    The blur is separable: each spatial axis is filtered with the 1D taps and subsampled in turn, which
    equals the depthwise convolution with the outer-product kernel up to float rounding.

Performance:
    Along one axis, pad + filter + subsample (or zero-insert + filter, for upsampling) is a linear map,
    a small ``(L_out, L)`` matrix with the padding folded in. On CPU, in eager mode and TorchScript, the
    kernels apply that matrix with one matrix product per axis (cached per shape): the input is read once
    per axis and no padded copy is made. In eager mode an ``autograd.Function`` makes the backward the
    product with the transposed matrices (the adjoint: zero-insertion, then blur), saving no activation;
    channels_last 2D blur-pools of large maps run oneDNN's depthwise convolution on the unpadded map and
    recompute the few border outputs. Under ``torch.compile``/``torch.export``, on other devices and on long axes, the
    kernels pad and accumulate the taps on strided views instead, which inductor fuses into one loop and
    ONNX exports as Pad/Slice/Mul/Add. All give the same values up to float rounding. Max-blur-pool's
    stride-1 max is the maximum of shifted views in NCHW inference. ``benchmarks/run.py`` measures them.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from typing import Any, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from antialias.filters import FilterSpec, get_taps

__all__ = [
    "BACKENDS",
    "PAD_MODES",
    "get_backend",
    "set_backend",
    "blur_pool1d",
    "blur_pool2d",
    "blur_pool3d",
    "blur_upsample1d",
    "blur_upsample2d",
    "blur_upsample3d",
    "max_blur_pool1d",
    "max_blur_pool2d",
    "max_blur_pool3d",
]

PAD_MODES = ("reflect", "replicate", "zeros", "circular")
_PAD_ALIASES = {"zero": "zeros", "constant": "zeros", "refl": "reflect", "repl": "replicate"}

IntOrTuple = Union[int, Sequence[int]]


# ----------------------------------------------------------------------------------------------------
# Argument checks (raised at construction by the modules, at call by the functions)


def check_pad_mode(pad_mode: str) -> str:
    """Return the canonical name of ``pad_mode`` (``"zero"`` -> ``"zeros"``), or raise ``ValueError``."""
    if not isinstance(pad_mode, str):
        raise TypeError(f"pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")
    mode = _PAD_ALIASES.get(pad_mode, pad_mode)
    if mode not in PAD_MODES:
        raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")
    return mode


def check_tuple(value: IntOrTuple, ndim: int, name: str, minimum: int = 1) -> tuple[int, ...]:
    """Expand an int or a sequence of ``ndim`` ints, each ``>= minimum``; raise a clear error otherwise."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int or a tuple of {ndim} ints, got {value!r}")
    if isinstance(value, int):
        values = (value,) * ndim
    elif isinstance(value, Sequence) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        values = tuple(value)
        if len(values) != ndim:
            raise ValueError(f"{name} must have {ndim} values, got {value!r}")
    else:
        raise TypeError(f"{name} must be an int or a tuple of {ndim} ints, got {value!r}")
    if any(v < minimum for v in values):
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return values


def check_pad_off(pad_off: int) -> int:
    if isinstance(pad_off, bool) or not isinstance(pad_off, int):
        raise TypeError(f"pad_off must be an int >= 0, got {pad_off!r}")
    if pad_off < 0:
        raise ValueError(f"pad_off must be >= 0, got {pad_off}")
    return pad_off


def check_channels(channels: Optional[int]) -> Optional[int]:
    if channels is None:
        return None
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ValueError(f"channels must be None or an int >= 1, got {channels!r}")
    return channels


def _check_input(x: Tensor, ndim: int, channels: Optional[int], name: str) -> None:
    if x.dim() != ndim + 2:
        axes = "(N, C, L)" if ndim == 1 else ("(N, C, H, W)" if ndim == 2 else "(N, C, D, H, W)")
        raise ValueError(
            f"{name} expects a {ndim + 2}D input {axes}, got a {x.dim()}D tensor of shape {list(x.shape)}"
        )
    if not x.is_floating_point():
        raise TypeError(f"{name} expects a floating-point input, got dtype {x.dtype}")
    if channels is not None and x.size(1) != channels:
        raise ValueError(f"{name} was built for {channels} channels, got an input with {x.size(1)} channels (shape {list(x.shape)})")


def _empty_output(x: Tensor, sizes: List[int]) -> Tensor:
    """The empty output ``(N, C, *sizes)`` of an empty input, still attached to it for autograd."""
    return x.reshape(-1).reshape(list(x.shape[:2]) + sizes).clone()


def _check_size(x: Tensor, minimum: List[int], name: str, reason: str) -> None:
    """Raise ``ValueError`` naming the shape when spatial axis ``d`` of ``x`` is shorter than ``minimum[d]``."""
    for d in range(len(minimum)):
        if x.size(d + 2) < minimum[d]:
            raise ValueError(
                f"{name} needs spatial axis {d} of size >= {minimum[d]} ({reason}), "
                f"got an input of shape {list(x.shape)}"
            )


def linear_taps(factor: int) -> List[float]:
    """Taps of linear interpolation by ``factor`` (``align_corners=False``), for zero-insertion upsampling.

    ``factor - |i - c|`` for ``2 * factor`` taps (even factors) or ``2 * factor - 1`` (odd), normalized:
    ``[1, 3, 3, 1] / 8`` (the binomial filter of 4 taps) at factor 2, ``[1, 2, 3, 2, 1] / 9`` at 3. Every
    polyphase part sums to ``1 / factor``.
    """
    length = 2 * factor - factor % 2
    center = (length - 1) / 2
    taps = [factor - abs(i - center) for i in range(length)]
    total = sum(taps)
    return [t / total for t in taps]


def check_upsample_taps(filter_size: Optional[FilterSpec], factors: Sequence[int], name: str) -> List[List[float]]:
    """The taps of each spatial axis for a zero-insertion upsampling by ``factors``.

    ``None`` gives :func:`linear_taps` of each axis's factor (no filter on an axis of factor 1). An
    explicit filter is used on every axis and must keep a constant map constant at each factor: each of
    its ``factor`` polyphase parts must sum to ``1 / factor``; a filter that does not (e.g. 4 binomial
    taps at factor 3, 3 taps at factor 4) is refused with ``ValueError``.
    """
    if filter_size is None:
        return [linear_taps(f) if f > 1 else [1.0] for f in factors]
    taps = list(get_taps(filter_size))
    for f in sorted(set(factors)):
        sums = [sum(taps[r::f]) for r in range(f)]
        if any(abs(s - 1.0 / f) > 1e-9 for s in sums):
            raise ValueError(
                f"{name}: filter_size={filter_size!r} does not keep a constant map constant at scale factor {f}: "
                f"its {f} polyphase parts sum to {[round(s, 4) for s in sums]}, each must be 1/{f}; use "
                f"filter_size=None (linear interpolation, matched to every factor) or a filter such as 'box-{f}'"
            )
    return [taps for _ in factors]


# ----------------------------------------------------------------------------------------------------
# Scriptable kernels


def _like_format(y: Tensor, x: Tensor) -> Tensor:
    """Return ``y`` in the memory format of ``x`` (channels_last inputs give channels_last outputs)."""
    if not x.is_contiguous():
        if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
            return y.contiguous(memory_format=torch.channels_last)
        if x.dim() == 5 and x.is_contiguous(memory_format=torch.channels_last_3d):
            return y.contiguous(memory_format=torch.channels_last_3d)
    return y.contiguous()


def _circular_pad_axis(x: Tensor, dim: int, left: int, right: int) -> Tensor:
    size = x.size(dim)
    index = torch.arange(-left, size + right, device=x.device) % size
    return x.index_select(dim, index)


def _pad(x: Tensor, pads: List[int], pad_mode: str) -> Tensor:
    """Pad the spatial axes; ``pads`` holds (left, right) per spatial axis, first axis first."""
    ndim = len(pads) // 2
    if sum(pads) == 0:
        return x
    if pad_mode == "zeros":
        flat: List[int] = []
        for d in range(ndim - 1, -1, -1):
            flat += [pads[2 * d], pads[2 * d + 1]]
        return F.pad(x, flat)
    if pad_mode == "circular":
        for d in range(ndim):
            if pads[2 * d] + pads[2 * d + 1] > 0:
                x = _circular_pad_axis(x, d + 2, pads[2 * d], pads[2 * d + 1])
        return x
    # reflect / replicate; reflect falls back to replicate on axes shorter than their padding.
    main: List[int] = []
    fallback: List[int] = []
    needs_fallback = False
    for d in range(ndim - 1, -1, -1):
        left, right = pads[2 * d], pads[2 * d + 1]
        if pad_mode == "reflect" and max(left, right) >= x.size(d + 2):
            main += [0, 0]
            fallback += [left, right]
            needs_fallback = True
        else:
            main += [left, right]
            fallback += [0, 0]
    if sum(main) > 0:
        x = F.pad(x, main, mode=pad_mode)
    if needs_fallback:
        x = F.pad(x, fallback, mode="replicate")
    return x


def _blur_axis(x: Tensor, taps: List[float], dim: int, stride: int) -> Tensor:
    """Filter the (already padded) axis ``dim`` with ``taps`` and keep every ``stride``-th sample."""
    k = len(taps)
    out_len = (x.size(dim) - k) // stride + 1
    span = (out_len - 1) * stride + 1
    last = x.dim() - 1  # a non-negative axis: the legacy ONNX exporter mistranslates movedim(dim, -1)
    xt = x.movedim(dim, last)
    acc = xt[..., 0:span:stride] * taps[0]
    for i in range(1, k):
        acc.add_(xt[..., i : i + span : stride], alpha=taps[i])
    return acc.movedim(last, dim)


def _blur_pool_slices(x: Tensor, taps: List[float], stride: List[int], pad_mode: str, pad_off: int) -> Tensor:
    """Pad, then accumulate the taps on strided views, one axis after the other (the fusable formulation)."""
    ndim = x.dim() - 2
    k = len(taps)
    left = (k - 1) // 2 + pad_off
    right = k // 2 + pad_off
    pads: List[int] = []
    for _ in range(ndim):
        pads += [left, right]
    y = _pad(x, pads, pad_mode)
    for d in range(ndim):
        y = _blur_axis(y, taps, d + 2, stride[d])
    return _like_format(y, x)


# Longest axis handled by a matrix product: each output sample costs L multiply-adds there instead of k,
# which beats the k memory passes of the strided formulation up to about this length (measured on CPU
# with benchmarks/run.py; ImageNet-sized networks blur maps of at most 112). Longer axes use the strided
# formulation. Splitting the matrix into diagonal blocks was measured too: the many small batched
# products it needs lose to one wide product, badly so with more than one thread.
_MATRIX_MAX_LEN = 160


def _source_index(pos: Tensor, length: int, pad_mode: str, left: int, right: int) -> Tuple[Tensor, Tensor]:
    """Map positions on a padded axis (input coordinates, possibly outside ``[0, length)``) to input samples.

    Returns the sample index and a mask that is False where zero padding contributes nothing. The rules are
    those of :func:`_pad`: reflect falls back to replicate when the axis is not longer than its padding.
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


def _pool_matrix(
    taps: List[float], length: int, stride: int, pad_mode: str, pad_off: int, dtype: torch.dtype, device: torch.device
) -> Tensor:
    """The ``(L_out, length)`` matrix of pad + filter + subsample along one axis (built in float64)."""
    k = len(taps)
    left = (k - 1) // 2 + pad_off
    right = k // 2 + pad_off
    out_len = (length + left + right - k) // stride + 1
    pos = torch.arange(out_len).unsqueeze(1) * stride + torch.arange(k).unsqueeze(0) - left
    index, valid = _source_index(pos, length, pad_mode, left, right)
    weight = torch.tensor(taps, dtype=torch.float64).unsqueeze(0) * valid.to(torch.float64)
    # Taps that land on the same sample (reflected or replicated borders) add up: scatter_add.
    mat = torch.zeros(out_len, length, dtype=torch.float64).scatter_add_(1, index, weight)
    return mat.to(device=device, dtype=dtype)


def _upsample_matrix(
    taps: List[float], length: int, factor: int, pad_mode: str, dtype: torch.dtype, device: torch.device
) -> Tensor:
    """The ``(length * factor, length)`` matrix of zero-insertion + filter along one axis (see :func:`_upsample_axis`)."""
    weights, offsets, left, right = _upsample_phases(taps, factor)
    j = torch.arange(length)
    mat = torch.zeros(length, factor, length, dtype=torch.float64)
    for r in range(factor):
        rows = mat[:, r]
        for t in range(len(offsets[r])):
            index, valid = _source_index(j + offsets[r][t], length, pad_mode, left, right)
            rows.scatter_add_(1, index.unsqueeze(1), (valid.to(torch.float64) * weights[r][t]).unsqueeze(1))
    return mat.reshape(length * factor, length).to(device=device, dtype=dtype)


@torch.jit.unused
def _compiling() -> bool:
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


def _use_matrices(x: Tensor, max_len: int = _MATRIX_MAX_LEN) -> bool:
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
    return not (_compiling() or torch._C._are_functorch_transforms_active())


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


def _channels_last(x: Tensor) -> bool:
    """Stored as (N, *S, C) (and not also plainly contiguous, as when C == 1)."""
    if x.is_contiguous():
        return False
    if x.dim() == 4:
        return x.is_contiguous(memory_format=torch.channels_last)
    if x.dim() == 5:
        return x.is_contiguous(memory_format=torch.channels_last_3d)
    return False


def _separable_matmul(x: Tensor, mats: List[Tensor]) -> Tensor:
    """Apply ``mats[d]`` along spatial axis ``d``, working in the memory order of ``x`` (kept in the output)."""
    ndim = x.dim() - 2
    if _channels_last(x):
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
    taps: Tuple[float, ...], length: int, stride: int, pad_mode: str, pad_off: int, dtype: torch.dtype, device: torch.device
) -> _AxisMats:
    mat = _pool_matrix(list(taps), length, stride, pad_mode, pad_off, torch.float64, torch.device("cpu"))
    return _axis_mats(mat, dtype, device)


@functools.lru_cache(maxsize=1024)
def _upsample_mats(
    taps: Tuple[float, ...], length: int, factor: int, pad_mode: str, dtype: torch.dtype, device: torch.device
) -> _AxisMats:
    mat = _upsample_matrix(list(taps), length, factor, pad_mode, torch.float64, torch.device("cpu"))
    return _axis_mats(mat, dtype, device)


# channels_last 2D blur-pool forward: oneDNN's depthwise convolution reads channels_last natively and is
# the fastest CPU kernel for it (measured: about 1.7x the matrix products in float32, 3x in bfloat16),
# but it only pads with zeros. It computes every output whose window lies inside the map; the few border
# rows and columns are then recomputed exactly with the axis matrices on thin slabs of the input (one
# gather, two small products and one scatter per axis: few operators, as each costs a thread wake-up).
# Below this map size the border work costs more than the matrix products save (measured: 28x28 maps
# are faster with the products, 56x56 ones with the convolution).
_CONV_MIN_SIZE = 40
# Per axis: (first interior output, end of interior outputs, border outputs, inputs they read, weights).
_ConvAxis = Tuple[int, int, Tensor, Tensor, Tensor]
_ConvPlan = Tuple[Tensor, List[int], List[int], List[_ConvAxis]]


def _conv_axis(taps: List[float], length: int, stride: int, pad_mode: str, pad_off: int, dtype: torch.dtype,
               device: torch.device) -> Optional[_ConvAxis]:
    k = len(taps)
    left = (k - 1) // 2 + pad_off
    mat = _pool_matrix(taps, length, stride, pad_mode, pad_off, torch.float64, torch.device("cpu"))
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
def _conv_plan(taps: Tuple[float, ...], channels: int, height: int, width: int, stride: Tuple[int, int], pad_mode: str,
               pad_off: int, dtype: torch.dtype, device: torch.device) -> Optional[_ConvPlan]:
    with torch.inference_mode(False):  # see _axis_mats
        axes: List[_ConvAxis] = []
        for length, s in ((height, stride[0]), (width, stride[1])):
            axis = _conv_axis(list(taps), length, s, pad_mode, pad_off, dtype, device)
            if axis is None:  # a map too small to have interior outputs
                return None
            axes.append(axis)
        t = torch.tensor(taps, dtype=torch.float64)
        weight = (t[:, None] * t[None, :]).to(device, dtype).expand(channels, 1, len(taps), len(taps)).contiguous()
    left = (len(taps) - 1) // 2 + pad_off
    return weight, list(stride), [left, left], axes


def _conv_blur_pool(x: Tensor, plan: _ConvPlan, mats: List[Tensor]) -> Tensor:
    weight, stride, padding, (rows, cols) = plan
    y = F.conv2d(x, weight, None, stride, padding, 1, x.size(1))
    out_h, out_w = mats[0].size(0), mats[1].size(0)
    if y.size(2) != out_h or y.size(3) != out_w:  # even filters on odd maps: one more row or column
        full = torch.empty((y.size(0), y.size(1), out_h, out_w), dtype=y.dtype, device=y.device,
                           memory_format=torch.channels_last)
        full[:, :, : y.size(2), : y.size(3)] = y
        y = full
    # Work on the (N, H, W, C) views, which are contiguous: slabs keep long contiguous rows.
    z = x.permute(0, 2, 3, 1)
    out = y.permute(0, 2, 3, 1)
    start, end, out_rows, in_rows, row_weights = rows
    slab = _apply_axis(_apply_axis(z.index_select(1, in_rows), row_weights, 1), mats[1], 2)
    out.index_copy_(1, out_rows, slab)
    _, _, out_cols, in_cols, col_weights = cols
    slab = _apply_axis(_apply_axis(z.index_select(2, in_cols), mats[0][start:end], 1), col_weights, 2)
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
        ctx: Any, x: Tensor, mats: List[Tensor], adjoint: List[Tensor], conv: Optional[_ConvPlan] = None,
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
            y = _conv_blur_pool(x, conv, mats) if conv is not None else _separable_matmul(x, mats)
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
        grad = grad.to(ctx.adjoint[0].dtype)  # e.g. a bfloat16 gradient of a float32 (autocast) forward
        return _SeparableLinear.apply(grad, ctx.adjoint, ctx.mats, None, local), None, None, None, None


# Half precision on the CPU: the products run in float32 (one conversion each way, one rounding of the
# result). CPU matrix products and depthwise convolutions in bfloat16 are several times slower than in
# float32 without AMX (measured: 16x256x56x56 blur-pool forward 1319 ms in bfloat16 vs 244 ms through
# float32, NCHW; 7448 vs 204 ms channels_last; benchmarks/run.py gives the current ratios).
_HALF = (torch.float16, torch.bfloat16)


@torch.jit.unused
def _eager_blur_pool(x: Tensor, taps: List[float], stride: List[int], pad_mode: str, pad_off: int) -> Tensor:
    if x.dtype in _HALF:
        return _eager_blur_pool(x.float(), taps, stride, pad_mode, pad_off).to(x.dtype)
    key = tuple(taps)
    mats = [_pool_mats(key, x.size(d + 2), stride[d], pad_mode, pad_off, x.dtype, x.device) for d in range(x.dim() - 2)]
    conv: Optional[_ConvPlan] = None
    # channels_last only: in NCHW oneDNN's depthwise convolution is slower than the matrix products.
    if (
        x.dim() == 4
        and pad_mode != "circular"
        and x.dtype in (torch.float32, torch.bfloat16)
        and min(x.size(2), x.size(3)) >= _CONV_MIN_SIZE
        and _channels_last(x)
    ):
        conv = _conv_plan(key, x.size(1), x.size(2), x.size(3), (stride[0], stride[1]), pad_mode, pad_off, x.dtype, x.device)
    local = _local_pair(lambda t: _blur_pool_slices(t, taps, stride, pad_mode, pad_off), list(x.shape))
    return _SeparableLinear.apply(x, [m[0] for m in mats], [m[1] for m in mats], conv, local)


@torch.jit.unused
def _eager_blur_upsample(x: Tensor, taps: List[float], factor: List[int], pad_mode: str) -> Tensor:
    if x.dtype in _HALF:
        return _eager_blur_upsample(x.float(), taps, factor, pad_mode).to(x.dtype)
    key = tuple(taps)
    mats = [_upsample_mats(key, x.size(d + 2), factor[d], pad_mode, x.dtype, x.device) for d in range(x.dim() - 2)]
    local = _local_pair(lambda t: _blur_upsample_slices(t, taps, factor, pad_mode), list(x.shape))
    return _SeparableLinear.apply(x, [m[0] for m in mats], [m[1] for m in mats], None, local)


def _blur_pool(x: Tensor, taps: List[float], stride: List[int], pad_mode: str, pad_off: int) -> Tensor:
    """Blur every spatial axis with ``taps`` and subsample it by its stride (validated arguments)."""
    if not torch.jit.is_scripting():
        return _dispatch_blur_pool(x, taps, stride, pad_mode, pad_off)
    if len(taps) > 1 and _use_matrices(x):
        mats = [_pool_matrix(taps, x.size(d + 2), stride[d], pad_mode, pad_off, x.dtype, x.device) for d in range(x.dim() - 2)]
        return _separable_matmul(x, mats)
    return _blur_pool_slices(x, taps, stride, pad_mode, pad_off)


def _upsample_phases(taps: List[float], factor: int) -> Tuple[List[List[float]], List[List[int]], int, int]:
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
    weights, offsets, left, right = _upsample_phases(taps, factor)
    length = x.size(dim)
    pads: List[int] = []
    for d in range(x.dim() - 2):
        if d + 2 == dim:
            pads += [left, right]
        else:
            pads += [0, 0]
    last = x.dim() - 1  # non-negative, as in _blur_axis
    xt = _pad(x, pads, pad_mode).movedim(dim, last)
    phases: List[Tensor] = []
    for r in range(factor):
        acc = torch.zeros_like(xt[..., 0:length])
        for t in range(len(offsets[r])):  # index loop: TorchScript has no zip(strict=)
            off = offsets[r][t]
            acc.add_(xt[..., off + left : off + left + length], alpha=weights[r][t])
        phases.append(acc)
    y = torch.stack(phases, dim=-1).flatten(-2)
    return y.movedim(last, dim)


def _blur_upsample_slices(x: Tensor, taps: List[float], factor: List[int], pad_mode: str) -> Tensor:
    y = x
    for d in range(x.dim() - 2):
        y = _upsample_axis(y, taps, d + 2, factor[d], pad_mode)
    return _like_format(y, x)


def _blur_upsample(x: Tensor, taps: List[float], factor: List[int], pad_mode: str) -> Tensor:
    """Zero-insert by ``factor`` and blur every spatial axis (validated arguments)."""
    if not torch.jit.is_scripting():
        return _dispatch_blur_upsample(x, taps, factor, pad_mode)
    if _use_matrices(x):
        mats = [_upsample_matrix(taps, x.size(d + 2), factor[d], pad_mode, x.dtype, x.device) for d in range(x.dim() - 2)]
        return _separable_matmul(x, mats)
    return _blur_upsample_slices(x, taps, factor, pad_mode)


def _blur_upsample_checked(x: Tensor, taps: List[List[float]], factor: List[int], pad_mode: str, name: str) -> Tensor:
    """:func:`_blur_upsample_axes` after the size checks (as :func:`_blur_pool_checked`)."""
    _check_size(x, [1] * (x.dim() - 2), name, "an empty axis cannot be upsampled")
    if x.numel() == 0:
        sizes = [x.size(d + 2) * factor[d] for d in range(x.dim() - 2)]
        return _empty_output(x, sizes)
    return _blur_upsample_axes(x, taps, factor, pad_mode)


def _blur_upsample_axes(x: Tensor, taps: List[List[float]], factor: List[int], pad_mode: str) -> Tensor:
    """:func:`_blur_upsample` with a filter per axis (from :func:`check_upsample_taps`).

    Equal filters (the common case) take one call; otherwise each axis is upsampled on its own as a 1D
    signal (an axis with factor 1 and the identity filter is left alone).
    """
    same = True
    for d in range(1, len(taps)):
        if taps[d] != taps[0]:
            same = False
    if same:
        return _blur_upsample(x, taps[0], factor, pad_mode)
    y = x
    for d in range(len(taps)):
        if factor[d] == 1 and len(taps[d]) == 1:
            continue
        z = y.movedim(d + 2, y.dim() - 1)
        shape = list(z.shape)
        z = _blur_upsample(z.reshape(shape[0], -1, shape[-1]), taps[d], [factor[d]], pad_mode)
        shape[-1] = shape[-1] * factor[d]
        y = z.reshape(shape).movedim(y.dim() - 1, d + 2)
    return _like_format(y, x)


def _max_pool(x: Tensor, kernel_size: List[int], padding: List[int]) -> Tensor:
    """Max over ``kernel_size`` windows at stride 1, with implicit ``-inf`` padding.

    Without autograd (inference), on contiguous (NCHW) CPU tensors in eager mode and TorchScript, the max
    is taken separably as the elementwise maximum of shifted views: the same values, several times
    faster than ATen's NCHW max pooling. When autograd records, ATen's max pooling runs: its backward
    (routing the gradient through saved indices) is much faster than that of the shifted maxima, and
    gradients at tied maxima stay those of ``nn.MaxPool2d``.
    """
    ndim = x.dim() - 2
    shifted = x.device.type == "cpu" and x.is_contiguous() and not (torch.is_grad_enabled() and x.requires_grad)
    if shifted and not torch.jit.is_scripting():
        shifted = not _compiling()
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


def _max_blur_pool(
    x: Tensor, kernel: List[int], padding: List[int], taps: List[float], stride: List[int], pad_mode: str, pad_off: int
) -> Tensor:
    """Max over ``kernel`` windows at stride 1, then blur-pool (validated arguments): MaxBlurPool's one call."""
    if not torch.jit.is_scripting():
        return _dispatch_max_blur_pool(x, kernel, padding, taps, stride, pad_mode, pad_off)
    return _blur_pool(_max_pool(x, kernel, padding), taps, stride, pad_mode, pad_off)


# ----------------------------------------------------------------------------------------------------
# Backend dispatch: every layer and functional twin reaches its kernel through one of the three
# ``_dispatch_*`` functions below (TorchScript scripting takes the scriptable branch of the callers).
#
# - "auto" (default): CUDA tensors -> the fused Triton kernels (``antialias.layers._triton``) when Triton
#   imports; CPU tensors in eager mode -> the matrix kernels above (strided slices on long axes);
# - "triton": the Triton kernels on any device (CPU tensors need ``TRITON_INTERPRET=1`` set before Triton is
#   imported: Triton's interpreter, how CI tests the kernels without a GPU);
# - "cpu": the eager CPU kernels as on CPU (matrix products, slices elsewhere), whatever the device;
# - "slices": always the strided-slices formulation (the traceable one).
# Under torch.compile / torch.export / tracing (ONNX) and torch.func transforms every backend gives the
# traceable slices formulation, which inductor fuses into one loop (0.235 ms for 64x256x56x56 fp32 on an
# H200, 2.2x the copy floor, issue 12). Registering the Triton kernels as ``torch.library`` custom ops
# instead was not measured (this session had no GPU): benchmarks/gpu.py measures compiled layers, and the
# choice must be revisited with its numbers.

BACKENDS = ("auto", "triton", "cpu", "slices")


def _check_backend(backend: str) -> str:
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    return backend


_BACKEND = [_check_backend(os.environ.get("ANTIALIAS_BACKEND", "auto") or "auto")]


def get_backend() -> str:
    """The kernel backend in use: ``ANTIALIAS_BACKEND`` or the last :class:`set_backend`; ``"auto"`` by default."""
    return _BACKEND[0]


class set_backend:
    """Select the kernels the blur layers run, for debugging and benchmarks (process-wide, not thread-local).

    Args:
        backend: ``"auto"`` (CUDA: Triton; CPU: the matrix kernels), ``"triton"``, ``"cpu"`` or ``"slices"``.

    Takes effect at once; as a context manager, the previous backend comes back on exit. Under
    ``torch.compile``/``torch.export``/tracing every backend runs the traceable formulation.

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


@torch.jit.unused
def _triton_kernels() -> Any:
    from antialias.layers import _triton

    if not _triton.available():
        raise RuntimeError("the 'triton' backend needs the triton package (pip install triton), which is not importable")
    from antialias.layers._triton import function

    return function


_TRITON_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


@torch.jit.unused
def _choose(x: Tensor) -> str:
    """``"triton"``, ``"matrix"`` or ``"slices"`` for this call (eager mode, compile and tracing)."""
    if _compiling() or torch._C._are_functorch_transforms_active():
        return "slices"
    backend = _BACKEND[0]
    if backend == "auto":
        if x.device.type == "cuda" and x.dtype in _TRITON_DTYPES:
            from antialias.layers import _triton

            if _triton.available():
                return "triton"
        backend = "cpu"
    if backend == "triton":
        if x.device.type == "cpu":
            from antialias.layers import _triton

            if not _triton.interpreting():
                raise RuntimeError(
                    "the 'triton' backend got a CPU tensor: set TRITON_INTERPRET=1 before triton is imported to run "
                    "the kernels in Triton's interpreter, or use backend 'auto'/'cpu'"
                )
        if x.dtype not in _TRITON_DTYPES:
            raise TypeError(f"the 'triton' backend takes {_TRITON_DTYPES}, got {x.dtype}")
        return "triton"
    if backend == "cpu" and _use_matrices(x):
        return "matrix"
    return "slices"


@torch.jit.unused
def _dispatch_blur_pool(x: Tensor, taps: List[float], stride: List[int], pad_mode: str, pad_off: int) -> Tensor:
    kind = _choose(x)
    if kind == "triton":
        return _triton_kernels().blur_pool(x, taps, stride, pad_mode, pad_off)
    if kind == "matrix" and len(taps) > 1:
        return _eager_blur_pool(x, taps, stride, pad_mode, pad_off)
    return _blur_pool_slices(x, taps, stride, pad_mode, pad_off)


@torch.jit.unused
def _dispatch_blur_upsample(x: Tensor, taps: List[float], factor: List[int], pad_mode: str) -> Tensor:
    kind = _choose(x)
    if kind == "triton":
        return _triton_kernels().blur_upsample(x, taps, factor, pad_mode)
    if kind == "matrix":
        return _eager_blur_upsample(x, taps, factor, pad_mode)
    return _blur_upsample_slices(x, taps, factor, pad_mode)


@torch.jit.unused
def _dispatch_max_blur_pool(
    x: Tensor, kernel: List[int], padding: List[int], taps: List[float], stride: List[int], pad_mode: str, pad_off: int
) -> Tensor:
    # The fused kernel keeps float32 maxima: float64 maxes first, then blurs with the Triton blur-pool.
    if x.dtype != torch.float64 and _choose(x) == "triton":
        return _triton_kernels().max_blur_pool(x, kernel, padding, taps, stride, pad_mode, pad_off)
    return _dispatch_blur_pool(_max_pool(x, kernel, padding), taps, stride, pad_mode, pad_off)


# ----------------------------------------------------------------------------------------------------
# Public functions


def _blur_pool_checked(x: Tensor, taps: List[float], stride: List[int], pad_mode: str, pad_off: int, name: str) -> Tensor:
    """:func:`_blur_pool` after the size checks: an empty axis is refused, an empty batch or channel axis
    gives an empty output of the right shape."""
    _check_size(x, [1] * (x.dim() - 2), name, "padding cannot extend an empty axis")
    if x.numel() == 0:
        sizes = [(x.size(d + 2) + 2 * pad_off - 1) // stride[d] + 1 for d in range(x.dim() - 2)]
        return _empty_output(x, sizes)
    return _blur_pool(x, taps, stride, pad_mode, pad_off)


def _max_blur_pool_checked(
    x: Tensor, kernel_size: List[int], padding: List[int], taps: List[float], stride: List[int], pad_mode: str,
    pad_off: int, name: str,
) -> Tensor:
    """Max at stride 1, then :func:`_blur_pool_checked`; an axis shorter than the max's window is refused."""
    minimum = [max(kernel_size[d] - 2 * padding[d], 1) for d in range(x.dim() - 2)]
    _check_size(x, minimum, name, "kernel_size - 2 * padding, the window of the max")
    if x.numel() == 0:  # the max pool refuses an empty channel axis
        sizes = [x.size(d + 2) + 2 * padding[d] - kernel_size[d] + 1 for d in range(x.dim() - 2)]
        pooled = _empty_output(x, sizes)
        return _blur_pool_checked(pooled, taps, stride, pad_mode, pad_off, name)
    return _max_blur_pool(x, kernel_size, padding, taps, stride, pad_mode, pad_off)


def _blur_pool_nd(
    x: Tensor, ndim: int, filter_size: FilterSpec, stride: IntOrTuple, pad_mode: str, pad_off: int, name: str
) -> Tensor:
    taps = list(get_taps(filter_size))
    strides = list(check_tuple(stride, ndim, "stride"))
    mode = check_pad_mode(pad_mode)
    check_pad_off(pad_off)
    _check_input(x, ndim, None, name)
    return _blur_pool_checked(x, taps, strides, mode, pad_off, name)


def blur_pool1d(
    input: Tensor, filter_size: FilterSpec = 4, stride: IntOrTuple = 2, pad_mode: str = "reflect", pad_off: int = 0
) -> Tensor:
    """Blur then subsample a 1D signal; see :class:`~antialias.layers.BlurPool1d`.

    Shape:
        - Input: ``(N, C, L)``; Output: ``(N, C, ceil(L / stride))`` (with ``pad_off = 0``).

    Example:
        >>> blur_pool1d(torch.tensor([[[0.0, 0.0, 8.0, 0.0]]]), filter_size=3)
        tensor([[[0., 4.]]])
    """
    return _blur_pool_nd(input, 1, filter_size, stride, pad_mode, pad_off, "blur_pool1d")


def blur_pool2d(
    input: Tensor, filter_size: FilterSpec = 4, stride: IntOrTuple = 2, pad_mode: str = "reflect", pad_off: int = 0
) -> Tensor:
    """Blur then subsample a 2D map (Zhang, ICML 2019); see :class:`~antialias.layers.BlurPool2d`.

    Shape:
        - Input: ``(N, C, H, W)``; Output: ``(N, C, ceil(H / stride), ceil(W / stride))``.

    Example:
        >>> blur_pool2d(torch.ones(1, 3, 7, 8), filter_size=4).shape
        torch.Size([1, 3, 4, 4])
    """
    return _blur_pool_nd(input, 2, filter_size, stride, pad_mode, pad_off, "blur_pool2d")


def blur_pool3d(
    input: Tensor, filter_size: FilterSpec = 4, stride: IntOrTuple = 2, pad_mode: str = "reflect", pad_off: int = 0
) -> Tensor:
    """Blur then subsample a 3D volume; see :class:`~antialias.layers.BlurPool3d`.

    Shape:
        - Input: ``(N, C, D, H, W)``; Output: ``(N, C, ceil(D / s), ceil(H / s), ceil(W / s))``.

    Example:
        >>> blur_pool3d(torch.ones(1, 2, 5, 6, 7), filter_size=3).shape
        torch.Size([1, 2, 3, 3, 4])
    """
    return _blur_pool_nd(input, 3, filter_size, stride, pad_mode, pad_off, "blur_pool3d")


def _max_blur_pool_nd(
    x: Tensor,
    ndim: int,
    kernel_size: IntOrTuple,
    filter_size: FilterSpec,
    stride: IntOrTuple,
    padding: IntOrTuple,
    pad_mode: str,
    pad_off: int,
    name: str,
) -> Tensor:
    kernel = list(check_tuple(kernel_size, ndim, "kernel_size"))
    pads = list(check_tuple(padding, ndim, "padding", minimum=0))
    taps = list(get_taps(filter_size))
    strides = list(check_tuple(stride, ndim, "stride"))
    mode = check_pad_mode(pad_mode)
    check_pad_off(pad_off)
    _check_input(x, ndim, None, name)
    return _max_blur_pool_checked(x, kernel, pads, taps, strides, mode, pad_off, name)


def max_blur_pool1d(
    input: Tensor,
    kernel_size: IntOrTuple = 2,
    filter_size: FilterSpec = 4,
    stride: IntOrTuple = 2,
    padding: IntOrTuple = 0,
    pad_mode: str = "reflect",
    pad_off: int = 0,
) -> Tensor:
    """Max at stride 1, then blur-pool (1D); see :class:`~antialias.layers.MaxBlurPool1d`.

    Shape:
        - Input: ``(N, C, L)``; Output: ``(N, C, ceil((L + 2 * padding - kernel_size + 1) / stride))``.

    Example:
        >>> max_blur_pool1d(torch.zeros(1, 1, 9)).shape
        torch.Size([1, 1, 4])
    """
    return _max_blur_pool_nd(input, 1, kernel_size, filter_size, stride, padding, pad_mode, pad_off, "max_blur_pool1d")


def max_blur_pool2d(
    input: Tensor,
    kernel_size: IntOrTuple = 2,
    filter_size: FilterSpec = 4,
    stride: IntOrTuple = 2,
    padding: IntOrTuple = 0,
    pad_mode: str = "reflect",
    pad_off: int = 0,
) -> Tensor:
    """Max at stride 1, then blur-pool (2D, the paper's MaxBlurPool); see :class:`~antialias.layers.MaxBlurPool2d`.

    Shape:
        - Input: ``(N, C, H, W)``; Output: ``(N, C, ceil(H' / stride), ceil(W' / stride))`` with
          ``H' = H + 2 * padding - kernel_size + 1``.

    Example:
        >>> max_blur_pool2d(torch.zeros(1, 1, 9, 9)).shape
        torch.Size([1, 1, 4, 4])
    """
    return _max_blur_pool_nd(input, 2, kernel_size, filter_size, stride, padding, pad_mode, pad_off, "max_blur_pool2d")


def max_blur_pool3d(
    input: Tensor,
    kernel_size: IntOrTuple = 2,
    filter_size: FilterSpec = 4,
    stride: IntOrTuple = 2,
    padding: IntOrTuple = 0,
    pad_mode: str = "reflect",
    pad_off: int = 0,
) -> Tensor:
    """Max at stride 1, then blur-pool (3D); see :class:`~antialias.layers.MaxBlurPool3d`.

    Shape:
        - Input: ``(N, C, D, H, W)``; Output: each axis ``ceil((L + 2 * padding - kernel_size + 1) / stride)``.

    Example:
        >>> max_blur_pool3d(torch.zeros(1, 1, 5, 5, 5)).shape
        torch.Size([1, 1, 2, 2, 2])
    """
    return _max_blur_pool_nd(input, 3, kernel_size, filter_size, stride, padding, pad_mode, pad_off, "max_blur_pool3d")


def _blur_upsample_nd(
    x: Tensor, ndim: int, filter_size: Optional[FilterSpec], scale_factor: IntOrTuple, pad_mode: str, name: str
) -> Tensor:
    factors = list(check_tuple(scale_factor, ndim, "scale_factor"))
    taps = check_upsample_taps(filter_size, factors, name)
    mode = check_pad_mode(pad_mode)
    _check_input(x, ndim, None, name)
    return _blur_upsample_checked(x, taps, factors, mode, name)


def blur_upsample1d(
    input: Tensor, filter_size: Optional[FilterSpec] = None, scale_factor: IntOrTuple = 2, pad_mode: str = "replicate"
) -> Tensor:
    """Anti-aliased upsampling (1D): insert zeros, then blur with gain ``scale_factor``.

    See :class:`~antialias.layers.BlurUpsample1d`.

    Shape:
        - Input: ``(N, C, L)``; Output: ``(N, C, L * scale_factor)``.

    Example:
        >>> blur_upsample1d(torch.tensor([[[0.0, 4.0]]]))
        tensor([[[0., 1., 3., 4.]]])
    """
    return _blur_upsample_nd(input, 1, filter_size, scale_factor, pad_mode, "blur_upsample1d")


def blur_upsample2d(
    input: Tensor, filter_size: Optional[FilterSpec] = None, scale_factor: IntOrTuple = 2, pad_mode: str = "replicate"
) -> Tensor:
    """Anti-aliased upsampling (2D): insert zeros, then blur with gain ``scale_factor`` per axis.

    With ``filter_size=4``, ``scale_factor=2`` and replicate padding this equals bilinear interpolation
    (``align_corners=False``). See :class:`~antialias.layers.BlurUpsample2d`.

    Shape:
        - Input: ``(N, C, H, W)``; Output: ``(N, C, H * scale_factor, W * scale_factor)``.

    Example:
        >>> blur_upsample2d(torch.ones(1, 1, 2, 3)).shape
        torch.Size([1, 1, 4, 6])
    """
    return _blur_upsample_nd(input, 2, filter_size, scale_factor, pad_mode, "blur_upsample2d")


def blur_upsample3d(
    input: Tensor, filter_size: Optional[FilterSpec] = None, scale_factor: IntOrTuple = 2, pad_mode: str = "replicate"
) -> Tensor:
    """Anti-aliased upsampling (3D); see :class:`~antialias.layers.BlurUpsample3d`.

    Shape:
        - Input: ``(N, C, D, H, W)``; Output: each spatial axis times ``scale_factor``.

    Example:
        >>> blur_upsample3d(torch.ones(1, 1, 2, 2, 2)).shape
        torch.Size([1, 1, 4, 4, 4])
    """
    return _blur_upsample_nd(input, 3, filter_size, scale_factor, pad_mode, "blur_upsample3d")
