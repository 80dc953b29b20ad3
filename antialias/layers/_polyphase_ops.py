"""Polyphase sampling internals: argument checks and the validated, scriptable-style kernels.

The rule, the tie-breaking and the exactness conventions are documented in :mod:`antialias.layers.polyphase`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from antialias.filters import FilterSpec, get_taps
from antialias.layers._checks import (
    IntOrTuple,
    blur_pads,
    check_size,
    check_tuple,
    check_upsample_taps,
    circular_pad_axis,
    pad,
)

NORMS = ("l2", "l1")
"""The selection rules of APS: the component with the largest sum of squares or of absolute values."""

# ----------------------------------------------------------------------------------------------------
# Argument checks


def check_norm(norm: str) -> str:
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    return norm


def check_tau(tau: float) -> float:
    if (
        isinstance(tau, bool)
        or not isinstance(tau, (int, float))
        or not math.isfinite(tau)
        or tau <= 0
    ):
        raise ValueError(
            f"tau (the Gumbel-softmax temperature) must be a finite number > 0, got {tau!r}"
        )
    return float(tau)


def check_phase(phase: Tensor, batch: int, phases: int, name: str) -> None:
    if not isinstance(phase, Tensor):
        raise TypeError(
            f"{name}: phase must be a tensor of component indices (N,) or weights (N, P), got {type(phase).__name__}"
        )
    if phase.is_floating_point():
        if phase.shape != (batch, phases):
            raise ValueError(
                f"{name}: phase weights must have shape ({batch}, {phases}) (batch, components), got {list(phase.shape)}"
            )
        return
    if phase.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise TypeError(
            f"{name}: phase must hold integer indices or float weights, got dtype {phase.dtype}"
        )
    if phase.shape != (batch,):
        raise ValueError(
            f"{name}: phase indices must have shape ({batch},) (one per sample), got {list(phase.shape)}"
        )
    if phase.numel() and (int(phase.min()) < 0 or int(phase.max()) >= phases):
        raise ValueError(
            f"{name}: phase indices must lie in [0, {phases}), got values in [{int(phase.min())}, {int(phase.max())}]"
        )


def check_polyphase_size(x: Tensor, name: str) -> None:
    check_size(x, [1] * (x.dim() - 2), name, "an empty axis has no polyphase components")


def check_up_taps(filter_size: FilterSpec, stride: Sequence[int], name: str) -> list[float]:
    """The interpolation taps of an up layer: ``1`` (placement only) or a filter that keeps a constant
    map constant at every stride (see :func:`~antialias.layers.functional.check_upsample_taps`)."""
    taps = list(get_taps(filter_size))
    return taps if len(taps) == 1 else check_upsample_taps(filter_size, stride, name)[0]


# ----------------------------------------------------------------------------------------------------
# Kernels (validated arguments)


def _wrap_to_multiple(x: Tensor, stride: Sequence[int]) -> Tensor:
    """Extend every spatial axis circularly at its end to a multiple of its stride."""
    for d, s in enumerate(stride):
        extra = (-x.size(d + 2)) % s
        if extra:
            x = circular_pad_axis(x, d + 2, 0, extra)
    return x


def _grid(x: Tensor, stride: Sequence[int]) -> list[int]:
    """The spatial size of every component of ``x`` (already a multiple of ``stride``)."""
    return [x.size(d + 2) // s for d, s in enumerate(stride)]


def _split_shape(x: Tensor, stride: Sequence[int]) -> list[int]:
    """``(N, C, L_1, s_1, ..., L_d, s_d)``: the view that exposes the phase of every axis."""
    shape = [x.size(0), x.size(1)]
    for d, s in enumerate(stride):
        shape += [x.size(d + 2) // s, s]
    return shape


def _components(x: Tensor, stride: Sequence[int]) -> Tensor:
    """All polyphase components, ``(N, P, C, L_1, ..., L_d)`` with the flat phase order of the module doc."""
    ndim = len(stride)
    view = x.reshape(_split_shape(x, stride))
    perm = [0] + [3 + 2 * d for d in range(ndim)] + [1] + [2 + 2 * d for d in range(ndim)]
    comps = view.permute(perm)
    return comps.reshape([x.size(0), math.prod(stride), x.size(1)] + _grid(x, stride))


def _merge(comps: Tensor, stride: Sequence[int]) -> Tensor:
    """Inverse of :func:`_components`: interleave ``(N, P, C, L...)`` back into ``(N, C, L_1 * s_1, ...)``."""
    ndim = len(stride)
    n, c = comps.size(0), comps.size(2)
    grid = list(comps.shape[3:])
    view = comps.reshape([n] + list(stride) + [c] + grid)
    # view dims: 0 = N, 1..d = s_k, d+1 = C, d+2.. = L_k; target (N, C, L_1, s_1, ..., L_d, s_d)
    perm = [0, ndim + 1]
    for d in range(ndim):
        perm += [ndim + 2 + d, 1 + d]
    return view.permute(perm).reshape([n, c] + [g * s for g, s in zip(grid, stride, strict=True)])


def _unravel(index: Tensor, stride: Sequence[int]) -> list[Tensor]:
    """Per-axis phases of flat component indices."""
    phases: list[Tensor] = []
    rest = index
    for s in reversed(list(stride)):
        phases.append(rest % s)
        rest = rest // s
    phases.reverse()
    return phases


def _lowest_argmax(values: Tensor) -> Tensor:
    """Index of the largest value along the last axis; ties go to the lowest index.

    A NaN wins over every number (the lowest NaN index among several): a NaN in the input must reach
    the output, not be stepped around by choosing a clean component.
    """
    nan = values.isnan()
    # +Inf stays +Inf (nan_to_num alone would make it the largest finite number, matching nothing).
    top = torch.where(nan, torch.full_like(values, -math.inf), values).amax(-1, keepdim=True)
    has_nan = nan.any(-1, keepdim=True)
    hit = (has_nan & nan) | (
        ~has_nan & (values == top)
    )  # logical ops: ONNX Runtime has no boolean Where
    positions = torch.arange(values.size(-1), device=values.device).expand_as(values)
    sentinel = torch.full_like(positions, values.size(-1))
    return torch.where(hit, positions, sentinel).amin(-1)


def tree_sum(values: Tensor, dim: int) -> Tensor:
    """Sum over ``dim`` by pairwise elementwise additions.

    Every output element gets the same sequence of exactly rounded additions, wherever it lies in the
    tensor. Torch's reductions do not promise that: vectorized lanes and tails, or the thread split,
    can add one position's values in another order than its neighbour's, so a shifted map would not
    give bitwise the shifted energies.
    """
    dim = dim % values.dim()
    if values.size(dim) == 0:
        return values.sum(dim)  # an empty channel axis: zeros
    while values.size(dim) > 1:
        n = values.size(dim)
        half = n // 2
        paired = values.narrow(dim, 0, half) + values.narrow(dim, half, half)
        values = torch.cat([paired, values.narrow(dim, 2 * half, 1)], dim) if n % 2 else paired
    return values.squeeze(dim)


def order_free_sum(values: Tensor) -> Tensor:
    """Sum over the last axis, independent of the order of its elements.

    A circular shift of a component permutes its positions; a plain sum would add them in another
    order and could round differently, so that two nearly tied components swap rank. Sorting first
    makes the sum a function of the multiset of values only.
    """
    return tree_sum(values.sort(-1).values, -1)


def aps_norms(x: Tensor, stride: Sequence[int], norm: str) -> Tensor:
    """``(N, P)`` l2 (sum of squares) or l1 norms of the components, over channels and positions.

    Each sample is first divided by a power of two no smaller than its largest finite magnitude
    (exact, and the same for every shift of the map), so that no square or sum overflows: a
    component holding a larger value always has the larger norm, and one holding an infinity has
    an infinite norm.
    """
    work = x if x.dtype in (torch.float32, torch.float64) else x.float()
    if work.numel() > 0:
        # In place on temporaries: on large maps each fresh full-size tensor costs more than its op.
        largest = work.abs().nan_to_num_(nan=0.0, posinf=0.0).flatten(1).amax(1)  # largest finite
        exponent = torch.where(
            largest > 0, torch.ceil(torch.log2(largest)), torch.zeros_like(largest)
        )
        low, high = (-126, 127) if work.dtype == torch.float32 else (-1022, 1023)
        exponent = exponent.clamp(low, high)  # 2**exponent stays a normal number
        scale = torch.pow(torch.full_like(largest, 2.0), exponent)
        work = work / scale.reshape([-1] + [1] * (work.dim() - 1))  # a new tensor
        energy = work.abs_() if norm == "l1" else work.mul_(work)
    else:
        energy = work.abs() if norm == "l1" else work * work
    per_position = tree_sum(energy, 1).unsqueeze(1)  # the same additions at every position
    comps = _components(per_position, stride)  # (N, P, 1, L...)
    return order_free_sum(comps.flatten(2))


def _select(x: Tensor, stride: Sequence[int], phase: Tensor) -> Tensor:
    """The component(s) given by ``phase``: hard indices pick one, weights mix all of them."""
    if phase.is_floating_point():
        comps = _components(x, stride)
        weights = phase.to(x.dtype).reshape(list(phase.shape) + [1] * (comps.dim() - 2))
        return (comps * weights).sum(1)
    view = x.reshape(_split_shape(x, stride))
    batch = torch.arange(x.size(0), device=x.device)
    index: list[Any] = [batch, slice(None)]
    for p in _unravel(phase.to(device=x.device, dtype=torch.int64), stride):
        index += [slice(None), p]
    # The advanced indices are separated by slices, so the batch axis comes first: (N, C, L_1, ..., L_d).
    return view[tuple(index)]


def _blur(x: Tensor, taps: list[float], pad_mode: str, gain: float = 1.0) -> Tensor:
    """Low-pass filter at stride 1 (the blur of "blur, then subsample"); one tap is the identity.

    Written as separate elementwise multiplications and additions, in tap order, so that every
    position gets the same exactly rounded operations: a fused multiply-add (as in ``add_(alpha=)``)
    may be used for some positions and not others, and then a shifted input is not blurred into
    bitwise the shifted output, which APS's exact norm comparison needs.
    """
    if len(taps) == 1:
        return x
    ndim = x.dim() - 2
    k = len(taps)
    left, right = blur_pads(k)
    if pad_mode == "circular" and all(right <= x.size(d + 2) for d in range(ndim)):
        y = F.pad(x, [left, right] * ndim, mode="circular")  # one copy; wraps at most once here
    else:
        y = pad(x, [left, right] * ndim, pad_mode)
    for d in range(ndim):
        length = y.size(d + 2) - k + 1
        acc = y.narrow(d + 2, 0, length) * taps[0]
        for i in range(1, k):
            acc.add_(y.narrow(d + 2, i, length) * taps[i])
        y = acc
    return y if gain == 1.0 else y * gain


def _gumbel_softmax(
    logits: Tensor, tau: float, hard: bool, generator: torch.Generator | None
) -> Tensor:
    """Gumbel-softmax weights; ``hard`` gives one-hot weights with the soft gradient (straight-through)."""
    exp = torch.empty_like(logits).exponential_(generator=generator)
    gumbels = -exp.clamp_min(torch.finfo(logits.dtype).tiny).log()
    soft = ((logits + gumbels) / tau).softmax(-1)
    if not hard:
        return soft
    one_hot = torch.zeros_like(soft).scatter_(-1, _lowest_argmax(soft).unsqueeze(-1), 1.0)
    return one_hot + (soft - soft.detach())  # exactly one-hot forward, the soft gradient backward


def _place(y: Tensor, stride: Sequence[int], phase: Tensor) -> Tensor:
    """Put ``y`` back at ``phase`` in a map ``stride`` times larger (zeros at the other phases)."""
    n, c = y.size(0), y.size(1)
    grid = list(y.shape[2:])
    if phase.is_floating_point():
        weights = phase.to(y.dtype).reshape([n, phase.size(1)] + [1] * (y.dim() - 1))
        return _merge(weights * y.unsqueeze(1), stride)
    shape = [n, c]
    for g, s in zip(grid, stride, strict=True):
        shape += [g, s]
    out = y.new_zeros(shape)
    index: list[Any] = [torch.arange(n, device=y.device), slice(None)]
    for p in _unravel(phase.to(device=y.device, dtype=torch.int64), stride):
        index += [slice(None), p]
    out[tuple(index)] = y
    return out.reshape([n, c] + [g * s for g, s in zip(grid, stride, strict=True)])


def aps_down(
    x: Tensor,
    stride: list[int],
    norm: str,
    taps: list[float],
    pad_mode: str,
    phase: Tensor | None,
) -> tuple[Tensor, Tensor]:
    x = _wrap_to_multiple(_blur(x, taps, pad_mode), stride)
    if phase is None:
        phase = _lowest_argmax(aps_norms(x, stride, norm))
    return _select(x, stride, phase), phase


def _lps_logits(x: Tensor, stride: list[int], scorer: Any) -> Tensor:
    """``(N, P)`` scores: the scorer sees every component as a separate sample (shared weights)."""
    comps = _components(x, stride)
    scores = scorer(comps.flatten(0, 1))
    if scores.dim() > 1:
        scores = scores.flatten(1)
        if scores.size(1) != 1:
            raise ValueError(
                f"the LPS scorer must return one score per component, got shape {list(scores.shape)}"
            )
    return scores.reshape(x.size(0), math.prod(stride))


def lps_down(
    x: Tensor,
    stride: list[int],
    scorer: Any,
    tau: float,
    training: bool,
    hard: bool,
    taps: list[float],
    pad_mode: str,
    phase: Tensor | None,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    x = _wrap_to_multiple(_blur(x, taps, pad_mode), stride)
    if phase is None:
        logits = _lps_logits(x, stride, scorer)
        phase = (
            _gumbel_softmax(logits, tau, hard, generator) if training else _lowest_argmax(logits)
        )
    return _select(x, stride, phase), phase


def polyphase_up(
    y: Tensor,
    phase: Tensor,
    stride: list[int],
    taps: list[float],
    pad_mode: str,
    output_size: list[int] | None,
) -> Tensor:
    # Pure placement keeps the values; an interpolating filter needs gain prod(stride) to fill the zeros.
    gain = float(math.prod(stride)) if len(taps) > 1 else 1.0
    out = _blur(_place(y, stride, phase), taps, pad_mode, gain=gain)
    if output_size is not None:
        out = out[(Ellipsis,) + tuple(slice(0, size) for size in output_size)]
    return out


def check_output_size(
    output_size: IntOrTuple | None,
    ndim: int,
    grid: Sequence[int],
    stride: Sequence[int],
    name: str,
) -> list[int] | None:
    if output_size is None:
        return None
    sizes = list(check_tuple(output_size, ndim, "output_size"))
    for size, g, s in zip(sizes, grid, stride, strict=True):
        if not g * s - s < size <= g * s:
            raise ValueError(
                f"{name}: output_size {tuple(sizes)} does not fit an input of spatial size {tuple(grid)} at stride "
                f"{tuple(stride)}; each size must be in (L * s - s, L * s]"
            )
    return sizes
