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
    :func:`antialias.conversion.convert` and the zoo call) make a layer reuse the phase another layer chose in the
    same forward pass. The link is per module instance: ``nn.DataParallel``'s replicas do not keep it
    (use ``DistributedDataParallel``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any, List, Optional, Tuple, Union

import torch
from torch import Tensor, nn

from antialias.filters import FilterSpec, get_taps
from antialias.layers import _polyphase_modules
from antialias.layers import _polyphase_ops as ops
from antialias.layers._checks import (
    IntOrTuple,
    check_input,
    check_pad_mode,
    check_tuple,
    like_format,
)
from antialias.layers._polyphase_modules import *  # noqa: F403
from antialias.layers._polyphase_modules import APS_DOWN, LPS_DOWN, _LpsDownNd
from antialias.layers._polyphase_modules import (
    _PolyphaseDownNd as _PolyphaseDownNd,  # for the shift-invariance checks
)
from antialias.layers._polyphase_ops import NORMS as NORMS
from antialias.layers.factory import register_downsample

__all__ = [
    "NORMS",
    "link_residual_phases",
    "set_lps_temperature",
    "aps_down1d",
    "aps_down2d",
    "aps_down3d",
    "lps_down1d",
    "lps_down2d",
    "lps_down3d",
    "polyphase_up1d",
    "polyphase_up2d",
    "polyphase_up3d",
]
__all__ += _polyphase_modules.__all__  # the modules

logger = logging.getLogger(__name__)

# ----------------------------------------------------------------------------------------------------
# Functions


def _down_nd(
    x: Tensor,
    ndim: int,
    stride: IntOrTuple,
    filter_size: FilterSpec,
    pad_mode: str,
    return_phase: bool,
    name: str,
    select: Callable[[Tensor, List[int], List[float], str], Tuple[Tensor, Tensor]],
) -> Union[Tensor, Tuple[Tensor, Tensor]]:
    """Check the common arguments, then ``select(x, strides, taps, pad_mode)``: APS's or LPS's rule."""
    strides = list(check_tuple(stride, ndim, "stride"))
    taps = list(get_taps(filter_size))
    mode = check_pad_mode(pad_mode)
    check_input(x, ndim, None, name)
    ops.check_polyphase_size(x, name)
    y, phase = select(x, strides, taps, mode)
    y = like_format(y, x)
    return (y, phase) if return_phase else y


def _aps_down_nd(
    x: Tensor,
    ndim: int,
    stride: IntOrTuple,
    norm: str,
    filter_size: FilterSpec,
    pad_mode: str,
    return_phase: bool,
    name: str,
) -> Union[Tensor, Tuple[Tensor, Tensor]]:
    ops.check_norm(norm)
    return _down_nd(
        x,
        ndim,
        stride,
        filter_size,
        pad_mode,
        return_phase,
        name,
        lambda x, strides, taps, mode: ops.aps_down(x, strides, norm, taps, mode, None),
    )


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
    x: Tensor,
    ndim: int,
    scorer: Any,
    stride: IntOrTuple,
    tau: float,
    training: bool,
    hard: bool,
    filter_size: FilterSpec,
    pad_mode: str,
    return_phase: bool,
    generator: Optional[torch.Generator],
    name: str,
) -> Union[Tensor, Tuple[Tensor, Tensor]]:
    if not callable(scorer):
        raise TypeError(
            f"{name}: scorer must be a callable (an nn.Module such as LpsScorer), got {type(scorer).__name__}"
        )
    ops.check_tau(tau)
    return _down_nd(
        x,
        ndim,
        stride,
        filter_size,
        pad_mode,
        return_phase,
        name,
        lambda x, strides, taps, mode: ops.lps_down(
            x, strides, scorer, tau, training, hard, taps, mode, None, generator
        ),
    )


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
    return _lps_down_nd(
        input,
        1,
        scorer,
        stride,
        tau,
        training,
        hard,
        filter_size,
        pad_mode,
        return_phase,
        generator,
        "lps_down1d",
    )


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
    return _lps_down_nd(
        input,
        2,
        scorer,
        stride,
        tau,
        training,
        hard,
        filter_size,
        pad_mode,
        return_phase,
        generator,
        "lps_down2d",
    )


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
    return _lps_down_nd(
        input,
        3,
        scorer,
        stride,
        tau,
        training,
        hard,
        filter_size,
        pad_mode,
        return_phase,
        generator,
        "lps_down3d",
    )


def _polyphase_up_nd(
    y: Tensor,
    ndim: int,
    phase: Tensor,
    stride: IntOrTuple,
    filter_size: FilterSpec,
    pad_mode: str,
    output_size: Optional[IntOrTuple],
    name: str,
) -> Tensor:
    strides = list(check_tuple(stride, ndim, "stride"))
    taps = ops.check_up_taps(filter_size, strides, name)
    mode = check_pad_mode(pad_mode)
    check_input(y, ndim, None, name)
    ops.check_polyphase_size(y, name)
    ops.check_phase(phase, y.size(0), math.prod(strides), name)
    sizes = ops.check_output_size(output_size, ndim, list(y.shape[2:]), strides, name)
    return like_format(ops.polyphase_up(y, phase, strides, taps, mode, sizes), y)


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
    return _polyphase_up_nd(
        input, 1, phase, stride, filter_size, pad_mode, output_size, "polyphase_up1d"
    )


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
    return _polyphase_up_nd(
        input, 2, phase, stride, filter_size, pad_mode, output_size, "polyphase_up2d"
    )


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
    return _polyphase_up_nd(
        input, 3, phase, stride, filter_size, pad_mode, output_size, "polyphase_up3d"
    )


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
        if not isinstance(shortcut, nn.Module) or isinstance(
            block, (nn.Sequential, nn.ModuleList, nn.ModuleDict)
        ):
            continue
        in_shortcut = {id(m) for m in shortcut.modules()}
        followers = [(n, m) for n, m in shortcut.named_modules() if isinstance(m, _PolyphaseDownNd)]
        if not followers:
            continue
        leaders = [
            (n, m)
            for n, m in block.named_modules()
            if isinstance(m, _PolyphaseDownNd) and id(m) not in in_shortcut and m.leader is None
        ]
        if len(leaders) != 1:
            logger.warning(
                "not linking the phases of %r: expected one polyphase layer outside its shortcut, found %d",
                block_name,
                len(leaders),
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
    tau = ops.check_tau(tau)
    count = 0
    for module in model.modules():
        if isinstance(module, _LpsDownNd):
            module.tau = tau
            count += 1
    return count


# ----------------------------------------------------------------------------------------------------
# Factory registration: create_downsample("aps" | "lps", ...) and so convert(model, method=...)


def _aps_factory(
    ndim: int,
    channels: Optional[int],
    stride: IntOrTuple,
    *,
    filter_size: FilterSpec,
    pad_mode: str,
    **kwargs: Any,
) -> nn.Module:
    return APS_DOWN[ndim](
        channels, stride=stride, filter_size=filter_size, pad_mode=pad_mode, **kwargs
    )


def _lps_factory(
    ndim: int,
    channels: Optional[int],
    stride: IntOrTuple,
    *,
    filter_size: FilterSpec,
    pad_mode: str,
    **kwargs: Any,
) -> nn.Module:
    if channels is None and kwargs.get("scorer") is None:
        raise ValueError(
            "the 'lps' downsample method needs channels (the width of its scorer), got None"
        )
    return LPS_DOWN[ndim](
        channels, stride=stride, filter_size=filter_size, pad_mode=pad_mode, **kwargs
    )


register_downsample("aps", _aps_factory)
register_downsample("lps", _lps_factory)
