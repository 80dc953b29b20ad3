"""The polyphase sampling modules (APS, LPS, the up layer); see :mod:`antialias.layers.polyphase` for the rule
and its conventions."""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal, cast

import torch
from torch import Tensor, nn

from antialias.filters import FilterSpec, filter_name, get_taps
from antialias.layers import _polyphase_ops as ops
from antialias.layers._checks import (
    IntOrTuple,
    check_channels,
    check_input,
    check_pad_mode,
    check_tuple,
    compact,
    like_format,
)

__all__ = [
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
]


# ----------------------------------------------------------------------------------------------------
# Modules


class _PhaseLinked(nn.Module):
    """Shared machinery: optional blur, stride, and the leader/follower link of phases.

    A leader publishes the phase it chose in each forward pass; its followers read it instead of
    choosing themselves. The link is a plain attribute, not a submodule, so ``state_dict``, ``to()``
    and ``modules()`` see every layer once; ``copy.deepcopy`` of the model keeps the link.
    """

    _ndim: ClassVar[int] = 2
    stride: list[int]
    taps: list[float]

    def __init__(
        self,
        channels: int | None,
        stride: IntOrTuple,
        filter_size: FilterSpec,
        pad_mode: str,
    ) -> None:
        super().__init__()
        self.dims: int = self._ndim
        self.channels = check_channels(channels)
        self.stride = list(check_tuple(stride, self._ndim, "stride"))
        self.filter_size = filter_size
        self.taps = list(get_taps(filter_size))
        self.pad_mode = check_pad_mode(pad_mode)
        self._name = type(self).__name__
        self.__dict__["_leader"] = None
        self._n_followers = 0
        self._published: tuple[Tensor, list[int]] | None = None
        self._reads = 0

    def __getstate__(self) -> dict[str, Any]:
        # A phase published in a pass that never reached its followers (an exception, a partial
        # forward) is not state: copies and pickles drop it (a non-leaf tensor could not be deep-copied).
        state = self.__dict__.copy()
        state["_published"] = None
        state["_reads"] = 0
        return state

    @property
    def leader(self) -> _PolyphaseDownNd | None:
        """The layer whose phase this one reuses (``None``: it chooses its own)."""
        return self.__dict__["_leader"]

    def _attach(self, leader: _PolyphaseDownNd | None) -> None:
        old = self.__dict__["_leader"]
        if old is not None:
            old._n_followers -= 1
        if leader is not None:
            if not isinstance(leader, _PolyphaseDownNd):
                raise TypeError(
                    f"{self._name} can only follow an APS or LPS down layer, got {type(leader).__name__}"
                )
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

    def _publish(self, phase: Tensor, grid: list[int]) -> None:
        if self._n_followers > 0:
            self._published = (phase, grid)
            self._reads = 0

    def _read_leader(self, batch: int, grid: list[int]) -> Tensor:
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

    def _options_repr(self) -> str:
        """The layer's own options, shown after the sampling ones."""
        return ""

    def extra_repr(self) -> str:
        stride = compact(self.stride)
        s = (
            f"channels={self.channels}, stride={stride}"
            + (f", filter_size={filter_name(self.filter_size)}" if len(self.taps) > 1 else "")
            + f", pad_mode={self.pad_mode!r}"
            + self._options_repr()
        )
        if getattr(self, "return_phase", False):
            s += ", return_phase=True"
        return s + (", follows a leader" if self.leader is not None else "")


class _PolyphaseDownNd(_PhaseLinked):
    return_phase: bool

    def follow(self, leader: _PolyphaseDownNd | None) -> _PolyphaseDownNd:
        """Reuse the phase ``leader`` chose in the same forward pass instead of choosing one.

        Residual blocks subsample the main path and the shortcut; both must keep the same phase for
        the block to stay shift-equivariant. The leader must run first (torchvision's and timm's
        blocks run the main path before the shortcut). ``None`` unlinks. An LPS follower drops its own
        scorer, which would otherwise get no gradient. Returns ``self``.
        """
        self._attach(leader)
        return self

    def _choose(self, x: Tensor, phase: Tensor | None) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def forward(self, input: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        check_input(input, self.dims, self.channels, self._name)
        ops.check_polyphase_size(input, self._name)
        phase: Tensor | None = None
        if self.leader is not None:
            grid = [-(-input.size(d + 2) // s) for d, s in enumerate(self.stride)]
            phase = self._read_leader(input.size(0), grid)
        y, phase = self._choose(input, phase)
        self._publish(phase, list(y.shape[2:]))
        y = like_format(y, input)
        return (y, phase) if self.return_phase else y


class _ApsDownNd(_PolyphaseDownNd):
    def __init__(
        self,
        channels: int | None = None,
        *,
        stride: IntOrTuple = 2,
        filter_size: FilterSpec = 1,
        pad_mode: str = "circular",
        norm: str = "l2",
        return_phase: bool = False,
    ) -> None:
        super().__init__(channels, stride, filter_size, pad_mode)
        self.norm = ops.check_norm(norm)
        self.return_phase = bool(return_phase)

    def _choose(self, x: Tensor, phase: Tensor | None) -> tuple[Tensor, Tensor]:
        return ops.aps_down(x, self.stride, self.norm, self.taps, self.pad_mode, phase)

    def _options_repr(self) -> str:
        return f", norm={self.norm!r}"


_WHAT = {1: "1D signals", 2: "2D maps", 3: "volumes"}
_AXES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def _nd_doc(template: str, ndim: int, example: str) -> str:
    """``template`` filled for ``ndim`` spatial axes: what the layer takes, its shapes, ``example``."""
    axes = _AXES[ndim]
    out, up = ("(N, C, " + ", ".join(f"{a}_{tail}" for a in axes) + ")" for tail in ("out", "up"))
    inp = f"(N, C, {', '.join(axes)})"
    return template.format(what=_WHAT[ndim], d=ndim, inp=inp, out=out, up=up, example=example)


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
    __doc__ = _nd_doc(
        _APS_DOC,
        1,
        """        >>> aps = ApsDown1d(return_phase=True)
        >>> aps(torch.tensor([[[1.0, 5.0, 2.0, -6.0]]]))
        (tensor([[[ 5., -6.]]]), tensor([1]))""",
    )
    _ndim = 1


class ApsDown2d(_ApsDownNd):
    __doc__ = _nd_doc(
        _APS_DOC,
        2,
        """        >>> aps = ApsDown2d(channels=64, stride=2)
        >>> aps(torch.randn(2, 64, 32, 24)).shape
        torch.Size([2, 64, 16, 12])
        >>> aps
        ApsDown2d(channels=64, stride=2, pad_mode='circular', norm='l2')""",
    )
    _ndim = 2


class ApsDown3d(_ApsDownNd):
    __doc__ = _nd_doc(
        _APS_DOC,
        3,
        """        >>> ApsDown3d(stride=(1, 2, 2))(torch.randn(1, 2, 4, 6, 6)).shape
        torch.Size([1, 2, 4, 3, 3])""",
    )
    _ndim = 3


_CONVS = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_ConvPaddingMode = Literal["zeros", "reflect", "replicate", "circular"]


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
        hidden_channels: int | None = None,
        kernel_size: int = 3,
        padding_mode: str = "circular",
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if ndim not in _CONVS:
            raise ValueError(f"ndim must be 1, 2 or 3, got {ndim!r}")
        checked = check_channels(channels)
        if checked is None:
            raise ValueError("LpsScorer needs the number of input channels, got None")
        channels = checked
        if hidden_channels is not None:
            check_channels(hidden_channels)
        hidden = channels if hidden_channels is None else hidden_channels
        if (
            isinstance(kernel_size, bool)
            or not isinstance(kernel_size, int)
            or kernel_size < 1
            or kernel_size % 2 == 0
        ):
            raise ValueError(f"kernel_size must be an odd int >= 1, got {kernel_size!r}")
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError(
                f"padding_mode must be one of ('zeros', 'reflect', 'replicate', 'circular'), got {padding_mode!r}"
            )
        conv = _CONVS[ndim]
        pad = kernel_size // 2
        mode = cast(_ConvPaddingMode, padding_mode)  # checked above
        self.conv1 = conv(
            channels,
            hidden,
            kernel_size,
            padding=pad,
            padding_mode=mode,
            device=device,
            dtype=dtype,
        )
        self.relu = nn.ReLU()
        self.conv2 = conv(
            hidden, hidden, kernel_size, padding=pad, padding_mode=mode, device=device, dtype=dtype
        )

    def forward(self, input: Tensor) -> Tensor:
        h = self.conv2(self.relu(self.conv1(input)))
        per_position = ops.tree_sum(h, 1).flatten(1)  # the same additions at every position
        return ops.order_free_sum(per_position) / math.prod(h.shape[1:])


class _LpsDownNd(_PolyphaseDownNd):
    def __init__(
        self,
        channels: int | None = None,
        *,
        stride: IntOrTuple = 2,
        filter_size: FilterSpec = 1,
        pad_mode: str = "circular",
        hidden_channels: int | None = None,
        tau: float = 1.0,
        hard: bool = False,
        return_phase: bool = False,
        scorer: nn.Module | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        if channels is None and scorer is None:
            raise ValueError(
                f"{type(self).__name__} needs channels (the width of its scorer's input), got None"
            )
        super().__init__(channels, stride, filter_size, pad_mode)
        self._tau = ops.check_tau(tau)
        self.hard = bool(hard)
        self.return_phase = bool(return_phase)
        if scorer is None and channels is not None:  # channels is not None here (checked above)
            scorer = LpsScorer(self._ndim, channels, hidden_channels, device=device, dtype=dtype)
        self.scorer: nn.Module | None = scorer

    @property
    def tau(self) -> float:
        """Gumbel-softmax temperature used in training; a lower one is closer to a hard choice."""
        return self._tau

    @tau.setter
    def tau(self, value: float) -> None:
        self._tau = ops.check_tau(value)

    def follow(self, leader: _PolyphaseDownNd | None) -> _LpsDownNd:
        super().follow(leader)
        if leader is not None:
            self.scorer = None
        return self

    def _choose(self, x: Tensor, phase: Tensor | None) -> tuple[Tensor, Tensor]:
        if phase is None and self.scorer is None:
            raise RuntimeError(
                f"{self._name} has no scorer (it was a follower); link it to a leader with follow()"
            )
        return ops.lps_down(
            x,
            self.stride,
            self.scorer,
            self._tau,
            self.training,
            self.hard,
            self.taps,
            self.pad_mode,
            phase,
        )

    def _options_repr(self) -> str:
        return f", tau={self._tau:g}" + (", hard=True" if self.hard else "")


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
    __doc__ = _nd_doc(
        _LPS_DOC,
        1,
        """        >>> LpsDown1d(channels=4, stride=3)(torch.randn(2, 4, 12)).shape
        torch.Size([2, 4, 4])""",
    )
    _ndim = 1


class LpsDown2d(_LpsDownNd):
    __doc__ = _nd_doc(
        _LPS_DOC,
        2,
        """        >>> lps = LpsDown2d(channels=16).eval()
        >>> lps(torch.randn(2, 16, 8, 12)).shape
        torch.Size([2, 16, 4, 6])
        >>> print(lps.extra_repr())
        channels=16, stride=2, pad_mode='circular', tau=1""",
    )
    _ndim = 2


class LpsDown3d(_LpsDownNd):
    __doc__ = _nd_doc(
        _LPS_DOC,
        3,
        """        >>> LpsDown3d(channels=2, stride=(1, 2, 2)).eval()(torch.randn(1, 2, 3, 4, 4)).shape
        torch.Size([1, 2, 3, 2, 2])""",
    )
    _ndim = 3


class _PolyphaseUpNd(_PhaseLinked):
    def __init__(
        self,
        channels: int | None = None,
        *,
        stride: IntOrTuple = 2,
        filter_size: FilterSpec = 1,
        pad_mode: str = "circular",
    ) -> None:
        super().__init__(channels, stride, filter_size, pad_mode)
        self.taps = ops.check_up_taps(filter_size, self.stride, self._name)

    def follow(self, leader: _PolyphaseDownNd | None) -> _PolyphaseUpNd:
        """Take the phase from ``leader`` (the matching down layer) when ``forward`` gets none.

        The leader publishes its phase in every forward pass; this layer must run after it. Returns ``self``.
        """
        self._attach(leader)
        return self

    def forward(
        self,
        input: Tensor,
        phase: Tensor | None = None,
        output_size: IntOrTuple | None = None,
    ) -> Tensor:
        check_input(input, self.dims, self.channels, self._name)
        ops.check_polyphase_size(input, self._name)
        grid = list(input.shape[2:])
        if phase is None:
            if self.leader is None:
                raise ValueError(
                    f"{self._name} needs the phase chosen by the down layer (or a leader set with follow())"
                )
            phase = self._read_leader(input.size(0), grid)
        ops.check_phase(phase, input.size(0), math.prod(self.stride), self._name)
        sizes = ops.check_output_size(output_size, self.dims, grid, self.stride, self._name)
        y = ops.polyphase_up(input, phase, self.stride, self.taps, self.pad_mode, sizes)
        return like_format(y, input)


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
        - Output: ``{up}``, every axis ``L * stride`` (or ``output_size``).

    Example:
{example}
    """


class PolyphaseUp1d(_PolyphaseUpNd):
    __doc__ = _nd_doc(
        _UP_DOC,
        1,
        """        >>> PolyphaseUp1d()(torch.tensor([[[5.0, -6.0]]]), torch.tensor([1]))
        tensor([[[ 0.,  5.,  0., -6.]]])""",
    )
    _ndim = 1


class PolyphaseUp2d(_PolyphaseUpNd):
    __doc__ = _nd_doc(
        _UP_DOC,
        2,
        """        >>> down, up = ApsDown2d(return_phase=True), PolyphaseUp2d()
        >>> x = torch.randn(2, 3, 8, 6)
        >>> y, phase = down(x)
        >>> up(y, phase).shape
        torch.Size([2, 3, 8, 6])""",
    )
    _ndim = 2


class PolyphaseUp3d(_PolyphaseUpNd):
    __doc__ = _nd_doc(
        _UP_DOC,
        3,
        """        >>> PolyphaseUp3d(stride=(1, 2, 2))(torch.ones(1, 1, 2, 2, 2), torch.tensor([1])).shape
        torch.Size([1, 1, 2, 4, 4])""",
    )
    _ndim = 3


APS_DOWN: dict[int, type[_ApsDownNd]] = {1: ApsDown1d, 2: ApsDown2d, 3: ApsDown3d}
LPS_DOWN: dict[int, type[_LpsDownNd]] = {1: LpsDown1d, 2: LpsDown2d, 3: LpsDown3d}
