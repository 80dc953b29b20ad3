"""Truly shift-invariant subsampling: adaptive and learnable polyphase sampling (APS, LPS).

Blur-pool reduces aliasing; it does not remove it. A subsampling by ``s`` keeps one of the ``s ** d``
*polyphase components* of a ``d``-dimensional map (component ``(p_1, ..., p_d)`` is
``x[..., p_1::s_1, ..., p_d::s_d]``), always the same one, so a shift of the input by one sample
changes which samples survive. Polyphase sampling chooses the component from the content instead:

- :class:`ApsDown2d` (adaptive polyphase sampling, Chaman & Dokmanic, CVPR 2021) keeps the component
  with the largest l2 (or l1) norm, taken over all channels and positions of each sample.
- :class:`LpsDown2d` (learnable polyphase sampling, Rojas-Gomez et al., NeurIPS 2022) scores every
  component with a small network shared by all components (:class:`LpsScorer`) and keeps the best one:
  a Gumbel-softmax mixture with temperature ``tau`` in training, the hard argmax in evaluation.
- :class:`PolyphaseUp2d` is the counterpart for decoders: it puts the features back at the phase the
  down layer chose (zeros elsewhere, optionally interpolated), so encoder-decoders stay equivariant.

A circular shift of the input permutes the components and circularly shifts each of them, so their
norms (and scores) are permuted, the same content is selected, and the output is a circular shift of
the unshifted output. With circular padding in every convolution and a global pooling at the end, a
whole network of these layers gives the same output for every circular shift of its input.

Convention:
    The phase of a sample is its flat component index ``p = (p_1 * s_2 + p_2) * s_3 + p_3 ...``
    (row-major over the spatial axes), an ``int64`` tensor of shape ``(N,)``. In LPS training it is
    instead a float tensor ``(N, s_1 * ... * s_d)`` of mixture weights that sum to 1 per sample; every
    function that takes a phase accepts both forms.

    Ties: when several components share the largest norm (or score), the one with the lowest flat
    index wins. A NaN norm (or score) wins over every number, so a NaN in the input reaches the output. A component and its circular shift get bitwise the same norm: every position adds its
    channels with the same sequence of elementwise additions, and the per-position energies are sorted
    before they are added (the optional blur, too, rounds every position alike). So a circular shift of
    the input permutes the norms exactly, and rounding cannot change the choice. Exact invariance needs
    a unique maximum or tied components that are circular shifts of one another: for a map with period
    ``s`` (e.g. ``[1, -1, 1, -1]``) two different components tie and a shift by one sample changes
    the lowest-index winner.

    An axis of length ``L`` not divisible by its stride is first extended circularly at its end to
    ``ceil(L / s) * s`` samples, so the output has ``ceil(L / s)`` samples like blur-pool. Exact
    invariance needs every axis to be divisible by its stride at every subsampling step (for a
    ResNet, an input size divisible by 32).

    Residual blocks subsample twice (main path and shortcut): both must keep the same phase, or the
    two paths shift by different amounts and the sum is no longer a shifted copy.
    :meth:`~ApsDown2d.follow` (and :func:`link_residual_phases` for a whole model, which
    :func:`antialias.convert` and the zoo call) make a layer reuse the phase another layer chose in the
    same forward pass. The link is per module instance: ``nn.DataParallel``'s replicas do not keep it
    (use ``DistributedDataParallel``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any, ClassVar, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from antialias.filters import FilterSpec, filter_name, get_taps
from antialias.layers import functional as AF
from antialias.layers.factory import register_downsample
from antialias.layers.functional import IntOrTuple

__all__ = [
    "NORMS",
    "ApsDown1d",
    "ApsDown2d",
    "ApsDown3d",
    "LpsDown1d",
    "LpsDown2d",
    "LpsDown3d",
    "LpsScorer",
    "PolyphaseUp1d",
    "PolyphaseUp2d",
    "PolyphaseUp3d",
    "aps_down1d",
    "aps_down2d",
    "aps_down3d",
    "link_residual_phases",
    "lps_down1d",
    "lps_down2d",
    "lps_down3d",
    "polyphase_up1d",
    "polyphase_up2d",
    "polyphase_up3d",
    "set_lps_temperature",
]

logger = logging.getLogger(__name__)

NORMS = ("l2", "l1")
"""The selection rules of APS: the component with the largest sum of squares or of absolute values."""

# ----------------------------------------------------------------------------------------------------
# Argument checks


def _check_norm(norm: str) -> str:
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    return norm


def _check_tau(tau: float) -> float:
    if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not math.isfinite(tau) or tau <= 0:
        raise ValueError(f"tau (the Gumbel-softmax temperature) must be a finite number > 0, got {tau!r}")
    return float(tau)


def _check_phase(phase: Tensor, batch: int, phases: int, name: str) -> None:
    if not isinstance(phase, Tensor):
        raise TypeError(f"{name}: phase must be a tensor of component indices (N,) or weights (N, P), got {type(phase).__name__}")
    if phase.is_floating_point():
        if phase.shape != (batch, phases):
            raise ValueError(
                f"{name}: phase weights must have shape ({batch}, {phases}) (batch, components), got {list(phase.shape)}"
            )
        return
    if phase.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise TypeError(f"{name}: phase must hold integer indices or float weights, got dtype {phase.dtype}")
    if phase.shape != (batch,):
        raise ValueError(f"{name}: phase indices must have shape ({batch},) (one per sample), got {list(phase.shape)}")
    if phase.numel() and (int(phase.min()) < 0 or int(phase.max()) >= phases):
        raise ValueError(f"{name}: phase indices must lie in [0, {phases}), got values in [{int(phase.min())}, {int(phase.max())}]")


def _check_polyphase_size(x: Tensor, name: str) -> None:
    AF._check_size(x, [1] * (x.dim() - 2), name, "an empty axis has no polyphase components")


def _check_up_taps(filter_size: FilterSpec, stride: Sequence[int], name: str) -> List[float]:
    """The interpolation taps of an up layer: ``1`` (placement only) or a filter that keeps a constant
    map constant at every stride (see :func:`~antialias.layers.functional.check_upsample_taps`)."""
    taps = list(get_taps(filter_size))
    return taps if len(taps) == 1 else AF.check_upsample_taps(filter_size, stride, name)[0]


# ----------------------------------------------------------------------------------------------------
# Kernels (validated arguments)


def _wrap_to_multiple(x: Tensor, stride: Sequence[int]) -> Tensor:
    """Extend every spatial axis circularly at its end to a multiple of its stride."""
    for d, s in enumerate(stride):
        extra = (-x.size(d + 2)) % s
        if extra:
            x = AF._circular_pad_axis(x, d + 2, 0, extra)
    return x


def _grid(x: Tensor, stride: Sequence[int]) -> List[int]:
    """The spatial size of every component of ``x`` (already a multiple of ``stride``)."""
    return [x.size(d + 2) // s for d, s in enumerate(stride)]


def _split_shape(x: Tensor, stride: Sequence[int]) -> List[int]:
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


def _unravel(index: Tensor, stride: Sequence[int]) -> List[Tensor]:
    """Per-axis phases of flat component indices."""
    phases: List[Tensor] = []
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
    top = values.nan_to_num(nan=-math.inf).amax(-1, keepdim=True)
    has_nan = nan.any(-1, keepdim=True)
    hit = (has_nan & nan) | (~has_nan & (values == top))  # logical ops: ONNX Runtime has no boolean Where
    positions = torch.arange(values.size(-1), device=values.device).expand_as(values)
    sentinel = torch.full_like(positions, values.size(-1))
    return torch.where(hit, positions, sentinel).amin(-1)


def _tree_sum(values: Tensor, dim: int) -> Tensor:
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


def _order_free_sum(values: Tensor) -> Tensor:
    """Sum over the last axis, independent of the order of its elements.

    A circular shift of a component permutes its positions; a plain sum would add them in another
    order and could round differently, so that two nearly tied components swap rank. Sorting first
    makes the sum a function of the multiset of values only.
    """
    return _tree_sum(values.sort(-1).values, -1)


def _aps_norms(x: Tensor, stride: Sequence[int], norm: str) -> Tensor:
    """``(N, P)`` l2 (sum of squares) or l1 norms of the components, over channels and positions."""
    work = x if x.dtype in (torch.float32, torch.float64) else x.float()
    energy = work.abs() if norm == "l1" else work * work
    per_position = _tree_sum(energy, 1).unsqueeze(1)  # the same additions at every position
    comps = _components(per_position, stride)  # (N, P, 1, L...)
    return _order_free_sum(comps.flatten(2))


def _select(x: Tensor, stride: Sequence[int], phase: Tensor) -> Tensor:
    """The component(s) given by ``phase``: hard indices pick one, weights mix all of them."""
    if phase.is_floating_point():
        comps = _components(x, stride)
        weights = phase.to(x.dtype).reshape(list(phase.shape) + [1] * (comps.dim() - 2))
        return (comps * weights).sum(1)
    view = x.reshape(_split_shape(x, stride))
    batch = torch.arange(x.size(0), device=x.device)
    index: List[Any] = [batch, slice(None)]
    for p in _unravel(phase.to(device=x.device, dtype=torch.int64), stride):
        index += [slice(None), p]
    # The advanced indices are separated by slices, so the batch axis comes first: (N, C, L_1, ..., L_d).
    return view[tuple(index)]


def _blur(x: Tensor, taps: List[float], pad_mode: str, gain: float = 1.0) -> Tensor:
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
    left, right = (k - 1) // 2, k // 2
    if pad_mode == "circular" and all(right <= x.size(d + 2) for d in range(ndim)):
        y = F.pad(x, [left, right] * ndim, mode="circular")  # one copy; wraps at most once here
    else:
        y = AF._pad(x, [left, right] * ndim, pad_mode)
    for d in range(ndim):
        length = y.size(d + 2) - k + 1
        acc = y.narrow(d + 2, 0, length) * taps[0]
        for i in range(1, k):
            acc.add_(y.narrow(d + 2, i, length) * taps[i])
        y = acc
    return y if gain == 1.0 else y * gain


def _gumbel_softmax(logits: Tensor, tau: float, hard: bool, generator: Optional[torch.Generator]) -> Tensor:
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
    index: List[Any] = [torch.arange(n, device=y.device), slice(None)]
    for p in _unravel(phase.to(device=y.device, dtype=torch.int64), stride):
        index += [slice(None), p]
    out[tuple(index)] = y
    return out.reshape([n, c] + [g * s for g, s in zip(grid, stride, strict=True)])


def _aps_down(
    x: Tensor, stride: List[int], norm: str, taps: List[float], pad_mode: str, phase: Optional[Tensor]
) -> Tuple[Tensor, Tensor]:
    x = _wrap_to_multiple(_blur(x, taps, pad_mode), stride)
    if phase is None:
        phase = _lowest_argmax(_aps_norms(x, stride, norm))
    return _select(x, stride, phase), phase


def _lps_logits(x: Tensor, stride: List[int], scorer: Any) -> Tensor:
    """``(N, P)`` scores: the scorer sees every component as a separate sample (shared weights)."""
    comps = _components(x, stride)
    scores = scorer(comps.flatten(0, 1))
    if scores.dim() > 1:
        scores = scores.flatten(1)
        if scores.size(1) != 1:
            raise ValueError(f"the LPS scorer must return one score per component, got shape {list(scores.shape)}")
    return scores.reshape(x.size(0), math.prod(stride))


def _lps_down(
    x: Tensor,
    stride: List[int],
    scorer: Any,
    tau: float,
    training: bool,
    hard: bool,
    taps: List[float],
    pad_mode: str,
    phase: Optional[Tensor],
    generator: Optional[torch.Generator] = None,
) -> Tuple[Tensor, Tensor]:
    x = _wrap_to_multiple(_blur(x, taps, pad_mode), stride)
    if phase is None:
        logits = _lps_logits(x, stride, scorer)
        phase = _gumbel_softmax(logits, tau, hard, generator) if training else _lowest_argmax(logits)
    return _select(x, stride, phase), phase


def _polyphase_up(
    y: Tensor,
    phase: Tensor,
    stride: List[int],
    taps: List[float],
    pad_mode: str,
    output_size: Optional[List[int]],
) -> Tensor:
    # Pure placement keeps the values; an interpolating filter needs gain prod(stride) to fill the zeros.
    gain = float(math.prod(stride)) if len(taps) > 1 else 1.0
    out = _blur(_place(y, stride, phase), taps, pad_mode, gain=gain)
    if output_size is not None:
        out = out[(Ellipsis,) + tuple(slice(0, size) for size in output_size)]
    return out


def _check_output_size(output_size: Optional[IntOrTuple], ndim: int, grid: Sequence[int], stride: Sequence[int], name: str) -> Optional[List[int]]:
    if output_size is None:
        return None
    sizes = list(AF.check_tuple(output_size, ndim, "output_size"))
    for size, g, s in zip(sizes, grid, stride, strict=True):
        if not g * s - s < size <= g * s:
            raise ValueError(
                f"{name}: output_size {tuple(sizes)} does not fit an input of spatial size {tuple(grid)} at stride "
                f"{tuple(stride)}; each size must be in (L * s - s, L * s]"
            )
    return sizes


# ----------------------------------------------------------------------------------------------------
# Functions


def _aps_down_nd(
    x: Tensor, ndim: int, stride: IntOrTuple, norm: str, filter_size: FilterSpec, pad_mode: str,
    return_phase: bool, name: str,
) -> Union[Tensor, Tuple[Tensor, Tensor]]:
    strides = list(AF.check_tuple(stride, ndim, "stride"))
    _check_norm(norm)
    taps = list(get_taps(filter_size))
    mode = AF.check_pad_mode(pad_mode)
    AF._check_input(x, ndim, None, name)
    _check_polyphase_size(x, name)
    y, phase = _aps_down(x, strides, norm, taps, mode, None)
    y = AF._like_format(y, x)
    return (y, phase) if return_phase else y


def aps_down1d(
    input: Tensor,
    *,
    stride: IntOrTuple = 2,
    filter_size: FilterSpec = 1,
    pad_mode: str = "circular",
    norm: str = "l2",
    return_phase: bool = False,
) -> Union[Tensor, Tuple[Tensor, Tensor]]:
    """Adaptive polyphase sampling of a 1D signal; see :class:`ApsDown1d`.

    Shape:
        - Input: ``(N, C, L)``; Output: ``(N, C, ceil(L / stride))`` and, with ``return_phase``, the
          chosen phase ``(N,)``.

    Example:
        >>> aps_down1d(torch.tensor([[[1.0, 5.0, 2.0, -6.0]]]), return_phase=True)
        (tensor([[[ 5., -6.]]]), tensor([1]))
    """
    return _aps_down_nd(input, 1, stride, norm, filter_size, pad_mode, return_phase, "aps_down1d")


def aps_down2d(
    input: Tensor,
    *,
    stride: IntOrTuple = 2,
    filter_size: FilterSpec = 1,
    pad_mode: str = "circular",
    norm: str = "l2",
    return_phase: bool = False,
) -> Union[Tensor, Tuple[Tensor, Tensor]]:
    """Adaptive polyphase sampling (Chaman & Dokmanic, CVPR 2021) of a 2D map; see :class:`ApsDown2d`.

    Shape:
        - Input: ``(N, C, H, W)``; Output: ``(N, C, ceil(H / s_h), ceil(W / s_w))`` and, with
          ``return_phase``, the chosen phase ``(N,)`` (``p_h * s_w + p_w``).

    Example:
        >>> x = torch.zeros(1, 1, 4, 6); x[0, 0, 1, 2] = 1.0
        >>> aps_down2d(x, return_phase=True)[1]
        tensor([2])
    """
    return _aps_down_nd(input, 2, stride, norm, filter_size, pad_mode, return_phase, "aps_down2d")


def aps_down3d(
    input: Tensor,
    *,
    stride: IntOrTuple = 2,
    filter_size: FilterSpec = 1,
    pad_mode: str = "circular",
    norm: str = "l2",
    return_phase: bool = False,
) -> Union[Tensor, Tuple[Tensor, Tensor]]:
    """Adaptive polyphase sampling of a volume; see :class:`ApsDown3d`.

    Shape:
        - Input: ``(N, C, D, H, W)``; Output: each spatial axis ``ceil(L / stride)``.

    Example:
        >>> aps_down3d(torch.randn(2, 3, 4, 4, 6)).shape
        torch.Size([2, 3, 2, 2, 3])
    """
    return _aps_down_nd(input, 3, stride, norm, filter_size, pad_mode, return_phase, "aps_down3d")


def _lps_down_nd(
    x: Tensor, ndim: int, scorer: Any, stride: IntOrTuple, tau: float, training: bool, hard: bool,
    filter_size: FilterSpec, pad_mode: str, return_phase: bool, generator: Optional[torch.Generator], name: str,
) -> Union[Tensor, Tuple[Tensor, Tensor]]:
    if not callable(scorer):
        raise TypeError(f"{name}: scorer must be a callable (an nn.Module such as LpsScorer), got {type(scorer).__name__}")
    strides = list(AF.check_tuple(stride, ndim, "stride"))
    _check_tau(tau)
    taps = list(get_taps(filter_size))
    mode = AF.check_pad_mode(pad_mode)
    AF._check_input(x, ndim, None, name)
    _check_polyphase_size(x, name)
    y, phase = _lps_down(x, strides, scorer, tau, training, hard, taps, mode, None, generator)
    y = AF._like_format(y, x)
    return (y, phase) if return_phase else y


def lps_down1d(
    input: Tensor,
    scorer: Any,
    *,
    stride: IntOrTuple = 2,
    filter_size: FilterSpec = 1,
    pad_mode: str = "circular",
    tau: float = 1.0,
    training: bool = False,
    hard: bool = False,
    return_phase: bool = False,
    generator: Optional[torch.Generator] = None,
) -> Union[Tensor, Tuple[Tensor, Tensor]]:
    """Learnable polyphase sampling of a 1D signal; see :class:`LpsDown1d`.

    ``scorer`` maps ``(B, C, L')`` components to ``B`` scores. ``training=True`` mixes the components
    with Gumbel-softmax weights (``generator`` draws the noise), otherwise the best one is kept.

    Shape:
        - Input: ``(N, C, L)``; Output: ``(N, C, ceil(L / stride))``; phase ``(N,)`` in evaluation,
          ``(N, stride)`` weights in training.

    Example:
        >>> energy = lambda comps: comps.pow(2).flatten(1).sum(1)
        >>> lps_down1d(torch.tensor([[[1.0, 5.0, 2.0, -6.0]]]), energy)
        tensor([[[ 5., -6.]]])
    """
    return _lps_down_nd(input, 1, scorer, stride, tau, training, hard, filter_size, pad_mode, return_phase, generator, "lps_down1d")


def lps_down2d(
    input: Tensor,
    scorer: Any,
    *,
    stride: IntOrTuple = 2,
    filter_size: FilterSpec = 1,
    pad_mode: str = "circular",
    tau: float = 1.0,
    training: bool = False,
    hard: bool = False,
    return_phase: bool = False,
    generator: Optional[torch.Generator] = None,
) -> Union[Tensor, Tuple[Tensor, Tensor]]:
    """Learnable polyphase sampling (Rojas-Gomez et al., NeurIPS 2022) of a 2D map; see :class:`LpsDown2d`.

    Shape:
        - Input: ``(N, C, H, W)``; Output: ``(N, C, ceil(H / s_h), ceil(W / s_w))``; phase ``(N,)`` in
          evaluation, ``(N, s_h * s_w)`` weights in training.

    Example:
        >>> scorer = LpsScorer(2, channels=3)
        >>> lps_down2d(torch.randn(2, 3, 8, 6), scorer).shape
        torch.Size([2, 3, 4, 3])
    """
    return _lps_down_nd(input, 2, scorer, stride, tau, training, hard, filter_size, pad_mode, return_phase, generator, "lps_down2d")


def lps_down3d(
    input: Tensor,
    scorer: Any,
    *,
    stride: IntOrTuple = 2,
    filter_size: FilterSpec = 1,
    pad_mode: str = "circular",
    tau: float = 1.0,
    training: bool = False,
    hard: bool = False,
    return_phase: bool = False,
    generator: Optional[torch.Generator] = None,
) -> Union[Tensor, Tuple[Tensor, Tensor]]:
    """Learnable polyphase sampling of a volume; see :class:`LpsDown3d`.

    Shape:
        - Input: ``(N, C, D, H, W)``; Output: each spatial axis ``ceil(L / stride)``.

    Example:
        >>> lps_down3d(torch.randn(1, 2, 4, 4, 4), LpsScorer(3, channels=2)).shape
        torch.Size([1, 2, 2, 2, 2])
    """
    return _lps_down_nd(input, 3, scorer, stride, tau, training, hard, filter_size, pad_mode, return_phase, generator, "lps_down3d")


def _polyphase_up_nd(
    y: Tensor, ndim: int, phase: Tensor, stride: IntOrTuple, filter_size: FilterSpec, pad_mode: str,
    output_size: Optional[IntOrTuple], name: str,
) -> Tensor:
    strides = list(AF.check_tuple(stride, ndim, "stride"))
    taps = _check_up_taps(filter_size, strides, name)
    mode = AF.check_pad_mode(pad_mode)
    AF._check_input(y, ndim, None, name)
    _check_polyphase_size(y, name)
    _check_phase(phase, y.size(0), math.prod(strides), name)
    sizes = _check_output_size(output_size, ndim, list(y.shape[2:]), strides, name)
    return AF._like_format(_polyphase_up(y, phase, strides, taps, mode, sizes), y)


def polyphase_up1d(
    input: Tensor,
    phase: Tensor,
    *,
    stride: IntOrTuple = 2,
    filter_size: FilterSpec = 1,
    pad_mode: str = "circular",
    output_size: Optional[IntOrTuple] = None,
) -> Tensor:
    """Place a 1D signal back at the phase a polyphase down layer chose; see :class:`PolyphaseUp1d`.

    Shape:
        - Input: ``(N, C, L)`` and phase ``(N,)`` or ``(N, stride)``; Output: ``(N, C, L * stride)``
          (or ``output_size``).

    Example:
        >>> polyphase_up1d(torch.tensor([[[5.0, -6.0]]]), torch.tensor([1]))
        tensor([[[ 0.,  5.,  0., -6.]]])
    """
    return _polyphase_up_nd(input, 1, phase, stride, filter_size, pad_mode, output_size, "polyphase_up1d")


def polyphase_up2d(
    input: Tensor,
    phase: Tensor,
    *,
    stride: IntOrTuple = 2,
    filter_size: FilterSpec = 1,
    pad_mode: str = "circular",
    output_size: Optional[IntOrTuple] = None,
) -> Tensor:
    """Place a 2D map back at the phase a polyphase down layer chose; see :class:`PolyphaseUp2d`.

    Shape:
        - Input: ``(N, C, H, W)`` and phase ``(N,)`` or ``(N, s_h * s_w)``; Output:
          ``(N, C, H * s_h, W * s_w)`` (or ``output_size``).

    Example:
        >>> polyphase_up2d(torch.ones(1, 1, 1, 2), torch.tensor([3]))
        tensor([[[[0., 0., 0., 0.],
                  [0., 1., 0., 1.]]]])
    """
    return _polyphase_up_nd(input, 2, phase, stride, filter_size, pad_mode, output_size, "polyphase_up2d")


def polyphase_up3d(
    input: Tensor,
    phase: Tensor,
    *,
    stride: IntOrTuple = 2,
    filter_size: FilterSpec = 1,
    pad_mode: str = "circular",
    output_size: Optional[IntOrTuple] = None,
) -> Tensor:
    """Place a volume back at the phase a polyphase down layer chose; see :class:`PolyphaseUp3d`.

    Shape:
        - Input: ``(N, C, D, H, W)`` and phase; Output: each spatial axis times its stride.

    Example:
        >>> polyphase_up3d(torch.ones(1, 1, 2, 2, 2), torch.tensor([0])).shape
        torch.Size([1, 1, 4, 4, 4])
    """
    return _polyphase_up_nd(input, 3, phase, stride, filter_size, pad_mode, output_size, "polyphase_up3d")


# ----------------------------------------------------------------------------------------------------
# Modules


class _PhaseLinked(nn.Module):
    """Shared machinery: optional blur, stride, and the leader/follower link of phases.

    A leader publishes the phase it chose in each forward pass; its followers read it instead of
    choosing themselves. The link is a plain attribute, not a submodule, so ``state_dict``, ``to()``
    and ``modules()`` see every layer once; ``copy.deepcopy`` of the model keeps the link.
    """

    _ndim: ClassVar[int] = 2
    stride: List[int]
    taps: List[float]

    def __init__(
        self,
        channels: Optional[int],
        stride: IntOrTuple,
        filter_size: FilterSpec,
        pad_mode: str,
    ) -> None:
        super().__init__()
        self.dims: int = self._ndim
        self.channels = AF.check_channels(channels)
        self.stride = list(AF.check_tuple(stride, self._ndim, "stride"))
        self.filter_size = filter_size
        self.taps = list(get_taps(filter_size))
        self.pad_mode = AF.check_pad_mode(pad_mode)
        self._name = type(self).__name__
        self.__dict__["_leader"] = None
        self._n_followers = 0
        self._published: Optional[Tuple[Tensor, List[int]]] = None
        self._reads = 0

    def __getstate__(self) -> dict[str, Any]:
        # A phase published in a pass that never reached its followers (an exception, a partial
        # forward) is not state: copies and pickles drop it (a non-leaf tensor could not be deep-copied).
        state = self.__dict__.copy()
        state["_published"] = None
        state["_reads"] = 0
        return state

    @property
    def leader(self) -> Optional[_PolyphaseDownNd]:
        """The layer whose phase this one reuses (``None``: it chooses its own)."""
        return self.__dict__["_leader"]

    def _attach(self, leader: Optional[_PolyphaseDownNd]) -> None:
        old = self.__dict__["_leader"]
        if old is not None:
            old._n_followers -= 1
        if leader is not None:
            if not isinstance(leader, _PolyphaseDownNd):
                raise TypeError(f"{self._name} can only follow an APS or LPS down layer, got {type(leader).__name__}")
            while leader.leader is not None:  # follow the root, so chains stay one hop
                leader = leader.leader
            if leader is self:
                raise ValueError(f"{self._name} cannot follow itself")
            if leader.dims != self.dims or leader.stride != self.stride:
                raise ValueError(
                    f"{self._name}(stride={tuple(self.stride)}) cannot follow {leader._name}(stride={tuple(leader.stride)}): "
                    "the number of spatial axes and the strides must match"
                )
            leader._n_followers += 1
        self.__dict__["_leader"] = leader

    def _publish(self, phase: Tensor, grid: List[int]) -> None:
        if self._n_followers > 0:
            self._published = (phase, grid)
            self._reads = 0

    def _read_leader(self, batch: int, grid: List[int]) -> Tensor:
        leader = self.leader
        assert leader is not None
        published = leader._published
        if published is None:
            raise RuntimeError(
                f"{self._name} follows a {leader._name} that has not run yet in this forward pass: the leader "
                "(e.g. the main path of a residual block) must run before its followers (the shortcut)"
            )
        phase, leader_grid = published
        if phase.size(0) != batch or leader_grid != grid:
            raise RuntimeError(
                f"{self._name} follows a {leader._name} that chose phases for a batch of {phase.size(0)} with components "
                f"of size {tuple(leader_grid)}, but its own input has a batch of {batch} and components of size {tuple(grid)}"
            )
        leader._reads += 1
        if leader._reads >= leader._n_followers:
            leader._published = None  # every follower has read it: never reuse it in a later pass
        return phase

    def _sampling_repr(self) -> str:
        stride = self.stride[0] if len(set(self.stride)) == 1 else tuple(self.stride)
        return (
            f"channels={self.channels}, stride={stride}"
            + (f", filter_size={filter_name(self.filter_size)}" if len(self.taps) > 1 else "")
            + f", pad_mode={self.pad_mode!r}"
        )


class _PolyphaseDownNd(_PhaseLinked):
    return_phase: bool

    def follow(self, leader: Optional[_PolyphaseDownNd]) -> _PolyphaseDownNd:
        """Reuse the phase ``leader`` chose in the same forward pass instead of choosing one.

        Residual blocks subsample the main path and the shortcut; both must keep the same phase for
        the block to stay shift-equivariant. The leader must run first (torchvision's and timm's
        blocks run the main path before the shortcut). ``None`` unlinks. An LPS follower drops its own
        scorer, which would otherwise get no gradient. Returns ``self``.
        """
        self._attach(leader)
        return self

    def _choose(self, x: Tensor, phase: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        raise NotImplementedError

    def forward(self, input: Tensor) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        AF._check_input(input, self.dims, self.channels, self._name)
        _check_polyphase_size(input, self._name)
        phase: Optional[Tensor] = None
        if self.leader is not None:
            grid = [-(-input.size(d + 2) // s) for d, s in enumerate(self.stride)]
            phase = self._read_leader(input.size(0), grid)
        y, phase = self._choose(input, phase)
        self._publish(phase, list(y.shape[2:]))
        y = AF._like_format(y, input)
        return (y, phase) if self.return_phase else y


class _ApsDownNd(_PolyphaseDownNd):
    def __init__(
        self,
        channels: Optional[int] = None,
        *,
        stride: IntOrTuple = 2,
        filter_size: FilterSpec = 1,
        pad_mode: str = "circular",
        norm: str = "l2",
        return_phase: bool = False,
    ) -> None:
        super().__init__(channels, stride, filter_size, pad_mode)
        self.norm = _check_norm(norm)
        self.return_phase = bool(return_phase)

    def _choose(self, x: Tensor, phase: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        return _aps_down(x, self.stride, self.norm, self.taps, self.pad_mode, phase)

    def extra_repr(self) -> str:
        s = f"{self._sampling_repr()}, norm={self.norm!r}"
        if self.return_phase:
            s += ", return_phase=True"
        return s + (", follows a leader" if self.leader is not None else "")


_APS_DOC = """Adaptive polyphase sampling (APS, Chaman & Dokmanic, CVPR 2021) for {what}.

    Optionally blurs at stride 1, then keeps, for every sample, the polyphase component with the largest
    ``norm`` over all channels and positions. A circular shift of the input circularly shifts the
    output: with circular padding elsewhere, the network becomes exactly invariant to circular shifts.
    Ties go to the lowest component index (see the module documentation).

    Args:
        channels: number of input channels, checked at call; ``None`` accepts any. The other
            arguments are keyword-only.
        stride: subsampling factor, an int or one per axis (any value >= 1).
        filter_size: low-pass filter applied before the selection (``1``: none, plain APS; ``4``: the
            "APS + LPF" variant); an int ``k`` (binomial), a family string or taps.
        pad_mode: padding of that blur; ``"circular"`` (default) keeps the exact invariance.
        norm: ``"l2"`` (default) or ``"l1"``.
        return_phase: also return the chosen phase, for :class:`PolyphaseUp{d}d`.

    Shape:
        - Input: ``{inp}``
        - Output: ``{out}`` with ``L_out = ceil(L / stride)`` on every axis; with ``return_phase``, a
          tuple ``(output, phase)`` with ``phase`` of shape ``(N,)`` (int64).

    Example:
{example}
    """


class ApsDown1d(_ApsDownNd):
    __doc__ = _APS_DOC.format(
        what="1D signals", d=1, inp="(N, C, L)", out="(N, C, L_out)",
        example="""        >>> aps = ApsDown1d(return_phase=True)
        >>> aps(torch.tensor([[[1.0, 5.0, 2.0, -6.0]]]))
        (tensor([[[ 5., -6.]]]), tensor([1]))""",
    )
    _ndim = 1


class ApsDown2d(_ApsDownNd):
    __doc__ = _APS_DOC.format(
        what="2D maps", d=2, inp="(N, C, H, W)", out="(N, C, H_out, W_out)",
        example="""        >>> aps = ApsDown2d(channels=64, stride=2)
        >>> aps(torch.randn(2, 64, 32, 24)).shape
        torch.Size([2, 64, 16, 12])
        >>> aps
        ApsDown2d(channels=64, stride=2, pad_mode='circular', norm='l2')""",
    )
    _ndim = 2


class ApsDown3d(_ApsDownNd):
    __doc__ = _APS_DOC.format(
        what="volumes", d=3, inp="(N, C, D, H, W)", out="(N, C, D_out, H_out, W_out)",
        example="""        >>> ApsDown3d(stride=(1, 2, 2))(torch.randn(1, 2, 4, 6, 6)).shape
        torch.Size([1, 2, 4, 3, 3])""",
    )
    _ndim = 3


_CONVS = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


class LpsScorer(nn.Module):
    """The scoring network of LPS (Rojas-Gomez et al., NeurIPS 2022): one logit per polyphase component.

    ``conv(k) -> ReLU -> conv(k)``, then the mean over channels and positions. Every component is scored
    by the same weights, and the convolutions pad circularly, so a circular shift of a component does
    not change its score and a shift of the input permutes the scores. As for APS's norms, the mean
    adds the positions in sorted order, so the permutation is exact.

    Args:
        ndim: number of spatial axes (1, 2 or 3).
        channels: input channels.
        hidden_channels: width of the hidden layer (``None``: ``channels``, as in the paper's ResNets).
        kernel_size: odd kernel size of both convolutions.
        padding_mode: padding of the convolutions; ``"circular"`` keeps the invariance.
        device: device of the parameters.
        dtype: dtype of the parameters.

    Shape:
        - Input: ``(B, C, *spatial)`` (the components of all samples, stacked); Output: ``(B,)``.

    Example:
        >>> LpsScorer(2, channels=8)(torch.randn(4, 8, 5, 5)).shape
        torch.Size([4])
    """

    def __init__(
        self,
        ndim: int,
        channels: int,
        hidden_channels: Optional[int] = None,
        kernel_size: int = 3,
        padding_mode: str = "circular",
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if ndim not in _CONVS:
            raise ValueError(f"ndim must be 1, 2 or 3, got {ndim!r}")
        if AF.check_channels(channels) is None:
            raise ValueError("LpsScorer needs the number of input channels, got None")
        hidden = channels if hidden_channels is None else AF.check_channels(hidden_channels)
        if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be an odd int >= 1, got {kernel_size!r}")
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError(f"padding_mode must be one of ('zeros', 'reflect', 'replicate', 'circular'), got {padding_mode!r}")
        conv = _CONVS[ndim]
        pad = kernel_size // 2
        factory = {"device": device, "dtype": dtype}
        self.conv1 = conv(channels, hidden, kernel_size, padding=pad, padding_mode=padding_mode, **factory)
        self.relu = nn.ReLU()
        self.conv2 = conv(hidden, hidden, kernel_size, padding=pad, padding_mode=padding_mode, **factory)

    def forward(self, input: Tensor) -> Tensor:
        h = self.conv2(self.relu(self.conv1(input)))
        per_position = _tree_sum(h, 1).flatten(1)  # the same additions at every position
        return _order_free_sum(per_position) / math.prod(h.shape[1:])


class _LpsDownNd(_PolyphaseDownNd):
    def __init__(
        self,
        channels: Optional[int] = None,
        *,
        stride: IntOrTuple = 2,
        filter_size: FilterSpec = 1,
        pad_mode: str = "circular",
        hidden_channels: Optional[int] = None,
        tau: float = 1.0,
        hard: bool = False,
        return_phase: bool = False,
        scorer: Optional[nn.Module] = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if channels is None and scorer is None:
            raise ValueError(f"{type(self).__name__} needs channels (the width of its scorer's input), got None")
        super().__init__(channels, stride, filter_size, pad_mode)
        self._tau = _check_tau(tau)
        self.hard = bool(hard)
        self.return_phase = bool(return_phase)
        if scorer is None:
            scorer = LpsScorer(self._ndim, channels, hidden_channels, device=device, dtype=dtype)
        self.scorer: Optional[nn.Module] = scorer

    @property
    def tau(self) -> float:
        """Gumbel-softmax temperature used in training (lower: closer to a hard choice)."""
        return self._tau

    @tau.setter
    def tau(self, value: float) -> None:
        self._tau = _check_tau(value)

    def follow(self, leader: Optional[_PolyphaseDownNd]) -> _LpsDownNd:
        super().follow(leader)
        if leader is not None:
            self.scorer = None
        return self

    def _choose(self, x: Tensor, phase: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        if phase is None and self.scorer is None:
            raise RuntimeError(f"{self._name} has no scorer (it was a follower); link it to a leader with follow()")
        return _lps_down(x, self.stride, self.scorer, self._tau, self.training, self.hard, self.taps, self.pad_mode, phase)

    def extra_repr(self) -> str:
        s = f"{self._sampling_repr()}, tau={self._tau:g}"
        if self.hard:
            s += ", hard=True"
        if self.return_phase:
            s += ", return_phase=True"
        return s + (", follows a leader" if self.leader is not None else "")


_LPS_DOC = """Learnable polyphase sampling (LPS, Rojas-Gomez et al., NeurIPS 2022) for {what}.

    Optionally blurs at stride 1, then scores every polyphase component with :class:`LpsScorer` (the
    same weights for all components) and keeps the best one. In training the output is the mixture of
    the components with Gumbel-softmax weights at temperature ``tau`` (lower it during training, e.g.
    with :func:`antialias.train.lps_temperature` and :func:`set_lps_temperature`), so the scorer
    learns through the mixture; in evaluation the component with the highest score is kept (ties: lowest index) and the
    layer is exactly invariant to circular shifts, like APS.

    Args:
        channels: input channels (the scorer's width); required unless ``scorer`` is given. The other
            arguments are keyword-only.
        stride: subsampling factor, an int or one per axis.
        filter_size: low-pass filter applied before the selection (``1``: none).
        pad_mode: padding of that blur; ``"circular"`` (default) keeps the exact invariance.
        hidden_channels: hidden width of the default scorer (``None``: ``channels``).
        tau: Gumbel-softmax temperature (> 0) in training.
        hard: in training, use one-hot weights with the soft gradient (straight-through).
        return_phase: also return the phase (``(N,)`` indices in evaluation, ``(N, P)`` weights in
            training), for :class:`PolyphaseUp{d}d`.
        scorer: a custom scoring module mapping ``(B, C, *spatial)`` to ``(B,)``.
        device: device of the scorer's parameters.
        dtype: dtype of the scorer's parameters.

    Shape:
        - Input: ``{inp}``
        - Output: ``{out}`` with ``L_out = ceil(L / stride)`` on every axis.

    Example:
{example}
    """


class LpsDown1d(_LpsDownNd):
    __doc__ = _LPS_DOC.format(
        what="1D signals", d=1, inp="(N, C, L)", out="(N, C, L_out)",
        example="""        >>> LpsDown1d(channels=4, stride=3)(torch.randn(2, 4, 12)).shape
        torch.Size([2, 4, 4])""",
    )
    _ndim = 1


class LpsDown2d(_LpsDownNd):
    __doc__ = _LPS_DOC.format(
        what="2D maps", d=2, inp="(N, C, H, W)", out="(N, C, H_out, W_out)",
        example="""        >>> lps = LpsDown2d(channels=16).eval()
        >>> lps(torch.randn(2, 16, 8, 12)).shape
        torch.Size([2, 16, 4, 6])
        >>> print(lps.extra_repr())
        channels=16, stride=2, pad_mode='circular', tau=1""",
    )
    _ndim = 2


class LpsDown3d(_LpsDownNd):
    __doc__ = _LPS_DOC.format(
        what="volumes", d=3, inp="(N, C, D, H, W)", out="(N, C, D_out, H_out, W_out)",
        example="""        >>> LpsDown3d(channels=2, stride=(1, 2, 2)).eval()(torch.randn(1, 2, 3, 4, 4)).shape
        torch.Size([1, 2, 3, 2, 2])""",
    )
    _ndim = 3


class _PolyphaseUpNd(_PhaseLinked):
    def __init__(
        self,
        channels: Optional[int] = None,
        *,
        stride: IntOrTuple = 2,
        filter_size: FilterSpec = 1,
        pad_mode: str = "circular",
    ) -> None:
        super().__init__(channels, stride, filter_size, pad_mode)
        self.taps = _check_up_taps(filter_size, self.stride, self._name)

    def follow(self, leader: Optional[_PolyphaseDownNd]) -> _PolyphaseUpNd:
        """Take the phase from ``leader`` (the matching down layer) when ``forward`` gets none.

        The leader publishes its phase in every forward pass; this layer must run after it. Returns ``self``.
        """
        self._attach(leader)
        return self

    def forward(self, input: Tensor, phase: Optional[Tensor] = None, output_size: Optional[IntOrTuple] = None) -> Tensor:
        AF._check_input(input, self.dims, self.channels, self._name)
        _check_polyphase_size(input, self._name)
        grid = list(input.shape[2:])
        if phase is None:
            if self.leader is None:
                raise ValueError(f"{self._name} needs the phase chosen by the down layer (or a leader set with follow())")
            phase = self._read_leader(input.size(0), grid)
        _check_phase(phase, input.size(0), math.prod(self.stride), self._name)
        sizes = _check_output_size(output_size, self.dims, grid, self.stride, self._name)
        y = _polyphase_up(input, phase, self.stride, self.taps, self.pad_mode, sizes)
        return AF._like_format(y, input)

    def extra_repr(self) -> str:
        return self._sampling_repr() + (", follows a leader" if self.leader is not None else "")


_UP_DOC = """Polyphase upsampling for {what}: the counterpart of :class:`ApsDown{d}d` and :class:`LpsDown{d}d`.

    Puts every sample back at the phase its down layer chose (zeros at the other phases), so that
    ``up(down(x))`` keeps exactly the selected samples of ``x`` where they were, and an encoder-decoder
    built from the pairs is equivariant to circular shifts (Chaman & Dokmanic; Rojas-Gomez et al.).
    LPS training phases (mixture weights) spread the input over the phases with those weights. With
    ``filter_size > 1`` the placed map is then interpolated by the blur with gain ``prod(stride)``
    (``"triangle-3"`` at stride 2 is linear interpolation).

    Args:
        channels: number of input channels, checked at call; ``None`` accepts any. The other
            arguments are keyword-only.
        stride: upsampling factor (the down layer's stride).
        filter_size: interpolation filter after the placement (``1``: none); a filter whose
            polyphase parts each sum to ``1 / stride`` (so a constant map stays constant), others are
            refused with ``ValueError``.
        pad_mode: padding of that filter; ``"circular"`` keeps the equivariance.

    Shape:
        - Input: ``{inp}`` and ``phase`` of shape ``(N,)`` (indices) or ``(N, P)`` (weights);
          ``output_size`` (optional) crops the result, for down-layer inputs not divisible by the stride.
        - Output: ``{out}``, every axis ``L * stride`` (or ``output_size``).

    Example:
{example}
    """


class PolyphaseUp1d(_PolyphaseUpNd):
    __doc__ = _UP_DOC.format(
        what="1D signals", d=1, inp="(N, C, L)", out="(N, C, L_up)",
        example="""        >>> PolyphaseUp1d()(torch.tensor([[[5.0, -6.0]]]), torch.tensor([1]))
        tensor([[[ 0.,  5.,  0., -6.]]])""",
    )
    _ndim = 1


class PolyphaseUp2d(_PolyphaseUpNd):
    __doc__ = _UP_DOC.format(
        what="2D maps", d=2, inp="(N, C, H, W)", out="(N, C, H_up, W_up)",
        example="""        >>> down, up = ApsDown2d(return_phase=True), PolyphaseUp2d()
        >>> x = torch.randn(2, 3, 8, 6)
        >>> y, phase = down(x)
        >>> up(y, phase).shape
        torch.Size([2, 3, 8, 6])""",
    )
    _ndim = 2


class PolyphaseUp3d(_PolyphaseUpNd):
    __doc__ = _UP_DOC.format(
        what="volumes", d=3, inp="(N, C, D, H, W)", out="(N, C, D_up, H_up, W_up)",
        example="""        >>> PolyphaseUp3d(stride=(1, 2, 2))(torch.ones(1, 1, 2, 2, 2), torch.tensor([1])).shape
        torch.Size([1, 1, 2, 4, 4])""",
    )
    _ndim = 3


APS_DOWN: dict[int, type[_ApsDownNd]] = {1: ApsDown1d, 2: ApsDown2d, 3: ApsDown3d}
LPS_DOWN: dict[int, type[_LpsDownNd]] = {1: LpsDown1d, 2: LpsDown2d, 3: LpsDown3d}
POLYPHASE_UP: dict[int, type[_PolyphaseUpNd]] = {1: PolyphaseUp1d, 2: PolyphaseUp2d, 3: PolyphaseUp3d}


# ----------------------------------------------------------------------------------------------------
# Whole-model helpers


def link_residual_phases(model: nn.Module) -> list[tuple[str, str]]:
    """Make the shortcut of every residual block reuse the phase its main path chose.

    A block is a module, not a container, with a ``downsample`` child (the convention of torchvision's
    and timm's ResNet-family blocks, whose main path runs before the shortcut). When the shortcut holds APS/LPS
    down layers and the rest of the block holds exactly one, the shortcut's layers follow it (see
    :meth:`ApsDown2d.follow`). Blocks with several candidate leaders are left alone, with a warning.
    Calling it twice changes nothing.

    Returns:
        ``(leader, follower)`` qualified module names of the links made or found.

    Example:
        >>> block = nn.Module()
        >>> block.aa, block.downsample = ApsDown2d(), nn.Sequential(ApsDown2d())
        >>> link_residual_phases(block)
        [('aa', 'downsample.0')]
    """
    links: list[tuple[str, str]] = []
    for block_name, block in model.named_modules():
        shortcut = getattr(block, "downsample", None)
        # In a container, a child named "downsample" is a step of the chain (e.g. convert()'s
        # Sequential(pool, downsample)), not a shortcut.
        if not isinstance(shortcut, nn.Module) or isinstance(block, (nn.Sequential, nn.ModuleList, nn.ModuleDict)):
            continue
        in_shortcut = {id(m) for m in shortcut.modules()}
        followers = [(n, m) for n, m in shortcut.named_modules() if isinstance(m, _PolyphaseDownNd)]
        if not followers:
            continue
        leaders = [
            (n, m) for n, m in block.named_modules()
            if isinstance(m, _PolyphaseDownNd) and id(m) not in in_shortcut and m.leader is None
        ]
        if len(leaders) != 1:
            logger.warning(
                "not linking the phases of %r: expected one polyphase layer outside its shortcut, found %d",
                block_name, len(leaders),
            )
            continue
        lead_name, leader = leaders[0]
        prefix = f"{block_name}." if block_name else ""
        for name, follower in followers:
            if follower.leader is not leader:
                follower.follow(leader)
            links.append((prefix + lead_name, f"{prefix}downsample" + (f".{name}" if name else "")))
    return links


def set_lps_temperature(model: nn.Module, tau: float) -> int:
    """Set the Gumbel-softmax temperature of every LPS layer in ``model``; returns how many were set.

    Example:
        >>> set_lps_temperature(nn.Sequential(LpsDown2d(channels=4), LpsDown2d(channels=4)), 0.5)
        2
    """
    tau = _check_tau(tau)
    count = 0
    for module in model.modules():
        if isinstance(module, _LpsDownNd):
            module.tau = tau
            count += 1
    return count


# ----------------------------------------------------------------------------------------------------
# Factory registration: create_downsample("aps" | "lps", ...) and so convert(model, method=...)


def _aps_factory(
    ndim: int, channels: Optional[int], stride: IntOrTuple, *, filter_size: FilterSpec, pad_mode: str, **kwargs: Any
) -> nn.Module:
    return APS_DOWN[ndim](channels, stride=stride, filter_size=filter_size, pad_mode=pad_mode, **kwargs)


def _lps_factory(
    ndim: int, channels: Optional[int], stride: IntOrTuple, *, filter_size: FilterSpec, pad_mode: str, **kwargs: Any
) -> nn.Module:
    if channels is None and kwargs.get("scorer") is None:
        raise ValueError("the 'lps' downsample method needs channels (the width of its scorer), got None")
    return LPS_DOWN[ndim](channels, stride=stride, filter_size=filter_size, pad_mode=pad_mode, **kwargs)


register_downsample("aps", _aps_factory)
register_downsample("lps", _lps_factory)
