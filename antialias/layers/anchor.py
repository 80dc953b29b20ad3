"""Polyphase anchoring: shift-invariant patchify, token grids and windows for vision transformers.

A patchify layer (a convolution with ``kernel_size == stride == p``), a window partition (windows of
``w`` tokens) and a patch merging (a stride-2 token subsampling) see a shift of their input cleanly
only when it is a multiple of ``p``, ``w`` or 2. *Anchoring* makes every shift such a multiple:
split the input into its ``p ** d`` polyphase components, take the one with the largest norm (the
rule of APS, Chaman & Dokmanic, CVPR 2021), and circularly roll the input so that this component
sits at phase zero (Ding et al., "Reviving Shift Equivariance in Vision Transformers", arXiv
2306.07470; the adaptive tokenization and window selection of Rojas-Gomez et al., CVPR 2024).
Nothing is dropped or learned: the output is the input, rolled.

- :func:`polyphase_anchor2d` / :class:`PolyphaseAnchor2d` (and 1D): roll so that the largest-norm
  component modulo ``stride`` is at phase 0. Before a patchify with patch ``p`` (``stride=p``) the
  tokens become equivariant to every integer circular shift (they move by whole tokens); before a
  window partition (``stride=window``, on the token grid) the windows hold the same tokens.
- :func:`token_anchor2d` / :class:`TokenAnchor2d` (and 1D): the same with the stride equal to the
  whole grid: the token of largest norm goes to the origin. After an anchored patchify, the token
  grid is then *invariant* to every integer circular shift, so absolute position embeddings, window
  partitions and patch mergings downstream all see the same tokens.
- :class:`AnchoredConv2d` / :class:`AnchoredConv1d`: a ``kernel_size == stride`` convolution behind
  a polyphase anchor, optionally followed by a token anchor; the parameters keep the convolution's
  names, so a checkpoint loads strictly. :func:`antialias.conversion.convert` puts it in place of patch
  embeddings with ``method="aps"``.

Convention:
    Inputs are channels-first, ``(N, C, L)`` or ``(N, C, H, W)``; the norm of a component is taken
    over all channels and positions of each sample (l2: the sum of squares, or l1), with the
    additions of :mod:`antialias.layers.polyphase`, so a circular shift of the input permutes the
    norms bitwise. Ties go to the lowest flat phase index (row-major); a NaN norm wins. The returned
    ``shift`` (``(N, d)``, ``int64``) is what was rolled: ``out = torch.roll(x[n], shift[n], dims)``
    per sample. Exact equivariance needs sides divisible by ``stride`` (a side that is not is
    anchored all the same, its norms computed on the side extended circularly to a multiple).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from antialias.layers._checks import check_input, check_tuple
from antialias.layers._polyphase_ops import (
    _lowest_argmax,
    _unravel,
    _wrap_to_multiple,
    aps_norms,
    check_norm,
    check_polyphase_size,
)

_A = TypeVar("_A", bound="_AnchoredConv")

__all__ = [
    "AnchoredConv1d",
    "AnchoredConv2d",
    "PolyphaseAnchor1d",
    "PolyphaseAnchor2d",
    "TokenAnchor1d",
    "TokenAnchor2d",
    "polyphase_anchor1d",
    "polyphase_anchor2d",
    "token_anchor1d",
    "token_anchor2d",
]


def _check_input(x: Any, ndim: int, name: str) -> None:
    check_input(x, ndim, None, name)
    check_polyphase_size(x, name)


def _take_per_sample(x: Tensor, axis: int, index: Tensor) -> Tensor:
    """``out[n]`` holds, along ``axis``, the samples ``index[n]`` (``(N, L_out)``) of ``x[n]``."""
    view = [x.size(0)] + [1] * (x.dim() - 1)
    view[axis] = index.size(1)
    shape = list(x.shape)
    shape[axis] = index.size(1)
    return torch.gather(x, axis, index.reshape(view).expand(shape))


def _roll_per_sample(x: Tensor, shifts: list[Tensor]) -> Tensor:
    """``out[n] = roll(x[n], shifts[d][n])`` on every spatial axis ``d`` (exact: a gather)."""
    for d, shift in enumerate(shifts):
        length = x.size(d + 2)
        positions = torch.arange(length, device=x.device)
        x = _take_per_sample(x, d + 2, (positions.unsqueeze(0) - shift.unsqueeze(1)) % length)
    return x


def _anchor(x: Tensor, stride: tuple[int, ...], norm: str) -> tuple[Tensor, Tensor]:
    work = _wrap_to_multiple(x, stride)
    phase = _lowest_argmax(aps_norms(work, stride, norm))  # (N,)
    phases = _unravel(phase, stride)
    # The chosen component starts at p; rolling by -p puts it at 0 (modulo the side).
    shifts = [(-p) % x.size(d + 2) for d, p in enumerate(phases)]
    return _roll_per_sample(x, shifts), torch.stack(shifts, 1)


def _polyphase_anchor(
    x: Tensor, stride: int | Sequence[int], norm: str, return_shift: bool, ndim: int
) -> Tensor | tuple[Tensor, Tensor]:
    _check_input(x, ndim, f"polyphase_anchor{ndim}d")
    out, shift = _anchor(x, check_tuple(stride, ndim, "stride"), check_norm(norm))
    return (out, shift) if return_shift else out


def _token_anchor(
    x: Tensor, norm: str, return_shift: bool, ndim: int
) -> Tensor | tuple[Tensor, Tensor]:
    _check_input(x, ndim, f"token_anchor{ndim}d")
    out, shift = _anchor(x, tuple(x.shape[2:]), check_norm(norm))
    return (out, shift) if return_shift else out


def polyphase_anchor2d(
    x: Tensor, stride: int | Sequence[int], *, norm: str = "l2", return_shift: bool = False
) -> Tensor | tuple[Tensor, Tensor]:
    """Roll ``x`` so that its largest-norm polyphase component modulo ``stride`` is at phase (0, 0).

    Args:
        x: ``(N, C, H, W)``.
        stride: the patch (or window) size: an int or ``(s_h, s_w)``.
        norm: ``"l2"`` or ``"l1"``.
        return_shift: also return the ``(N, 2)`` roll applied to each sample.

    Shape:
        ``(N, C, H, W)`` -> ``(N, C, H, W)``.

    Example:
        >>> x = torch.zeros(1, 1, 4, 4); x[0, 0, 1, 3] = 1.0
        >>> polyphase_anchor2d(x, 2, return_shift=True)[1]
        tensor([[3, 3]])
    """
    return _polyphase_anchor(x, stride, norm, return_shift, 2)


def polyphase_anchor1d(
    x: Tensor, stride: int | Sequence[int], *, norm: str = "l2", return_shift: bool = False
) -> Tensor | tuple[Tensor, Tensor]:
    """:func:`polyphase_anchor2d` for ``(N, C, L)`` sequences (audio, 1D patchifiers).

    Shape:
        ``(N, C, L)`` -> ``(N, C, L)``.

    Example:
        >>> polyphase_anchor1d(torch.tensor([[[0.0, 0.0, 0.0, 5.0]]]), 2)
        tensor([[[0., 0., 5., 0.]]])
    """
    return _polyphase_anchor(x, stride, norm, return_shift, 1)


def token_anchor2d(
    x: Tensor, *, norm: str = "l2", return_shift: bool = False
) -> Tensor | tuple[Tensor, Tensor]:
    """Roll the grid ``x`` so that its largest-norm position (over channels) is at (0, 0).

    After an anchored patchify the token grid is then the same for every integer circular shift of
    the image (Ding et al. 2023's anchoring for absolute position embeddings).

    Shape:
        ``(N, C, H, W)`` -> ``(N, C, H, W)``.

    Example:
        >>> x = torch.zeros(1, 2, 3, 3); x[0, 1, 2, 1] = 1.0
        >>> token_anchor2d(x)[0, 1, 0, 0]
        tensor(1.)
    """
    return _token_anchor(x, norm, return_shift, 2)


def token_anchor1d(
    x: Tensor, *, norm: str = "l2", return_shift: bool = False
) -> Tensor | tuple[Tensor, Tensor]:
    """:func:`token_anchor2d` for ``(N, C, L)`` token sequences.

    Shape:
        ``(N, C, L)`` -> ``(N, C, L)``.

    Example:
        >>> token_anchor1d(torch.tensor([[[1.0, 3.0, 2.0]]]))
        tensor([[[3., 2., 1.]]])
    """
    return _token_anchor(x, norm, return_shift, 1)


class _Anchor(nn.Module):
    ndim = 2

    def __init__(self, stride: int | Sequence[int], norm: str = "l2") -> None:
        super().__init__()
        self.stride = check_tuple(stride, self.ndim, "stride")
        self.norm = check_norm(norm)

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x, self.ndim, type(self).__name__)
        return _anchor(x, self.stride, self.norm)[0]

    def extra_repr(self) -> str:
        return f"stride={self.stride}, norm={self.norm!r}"


class PolyphaseAnchor2d(_Anchor):
    """Module form of :func:`polyphase_anchor2d`: no parameters, no buffers.

    Args:
        stride: the patch or window size the anchoring prepares for.
        norm: ``"l2"`` or ``"l1"``.

    Shape:
        ``(N, C, H, W)`` -> ``(N, C, H, W)``.

    Example:
        >>> PolyphaseAnchor2d(16)
        PolyphaseAnchor2d(stride=(16, 16), norm='l2')
    """

    ndim = 2


class PolyphaseAnchor1d(_Anchor):
    """Module form of :func:`polyphase_anchor1d`.

    Shape:
        ``(N, C, L)`` -> ``(N, C, L)``.
    """

    ndim = 1


class _TokenAnchor(nn.Module):
    ndim = 2

    def __init__(self, norm: str = "l2") -> None:
        super().__init__()
        self.norm = check_norm(norm)

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x, self.ndim, type(self).__name__)
        return _anchor(x, tuple(x.shape[2:]), self.norm)[0]

    def extra_repr(self) -> str:
        return f"norm={self.norm!r}"


class TokenAnchor2d(_TokenAnchor):
    """Module form of :func:`token_anchor2d`: no parameters, no buffers.

    Shape:
        ``(N, C, H, W)`` -> ``(N, C, H, W)``.
    """

    ndim = 2


class TokenAnchor1d(_TokenAnchor):
    """Module form of :func:`token_anchor1d`.

    Shape:
        ``(N, C, L)`` -> ``(N, C, L)``.
    """

    ndim = 1


_CONV: dict[int, Any] = {1: F.conv1d, 2: F.conv2d}
_SCORES = ("input", "output")


def _check_score(score: str) -> str:
    if score not in _SCORES:
        raise ValueError(f"score must be one of {_SCORES}, got {score!r}")
    return score


def _is_patchify(conv: Any) -> bool:
    """``conv`` cuts its input into patches: ``kernel_size == stride``, no padding, no dilation."""
    padding = (0,) * len(conv.kernel_size) if conv.padding == "valid" else conv.padding
    return (
        tuple(conv.kernel_size) == tuple(conv.stride)
        and not any(padding)
        and all(d == 1 for d in conv.dilation)
    )


def _check_patchify(conv: Any, ndim: int, name: str) -> None:
    if not isinstance(conv, (nn.Conv1d, nn.Conv2d)) or len(conv.kernel_size) != ndim:
        raise TypeError(f"{name}.from_conv expects an nn.Conv{ndim}d, got {type(conv).__name__}")
    if not _is_patchify(conv):
        raise ValueError(
            f"{name} needs kernel_size == stride, no padding and no dilation, got "
            f"kernel_size={tuple(conv.kernel_size)}, stride={tuple(conv.stride)}, "
            f"padding={conv.padding}, dilation={tuple(conv.dilation)}"
        )


class _AnchoredConv:
    """What :class:`AnchoredConv1d` and :class:`AnchoredConv2d` share: construction and forward."""

    ndim: int
    token_anchor: bool
    norm: str
    stride: tuple[int, ...]
    score: str

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, ...],
        *,
        groups: int = 1,
        bias: bool = True,
        padding_mode: Any = "zeros",
        token_anchor: bool = False,
        norm: str = "l2",
        score: str = "input",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(  # type: ignore[call-arg]  # the nn.ConvNd after this class in the MRO
            in_channels,
            out_channels,
            kernel_size,
            stride=kernel_size,
            groups=groups,
            bias=bias,
            padding_mode=padding_mode,
            device=device,
            dtype=dtype,
        )
        self._set_options(token_anchor, norm, score)

    def _set_options(self, token_anchor: bool, norm: str, score: str) -> None:
        self.token_anchor = bool(token_anchor)
        self.norm = check_norm(norm)
        self.score = _check_score(score)

    @classmethod
    def from_conv(
        cls: type[_A],
        conv: nn.Module,
        *,
        token_anchor: bool = False,
        norm: str = "l2",
        score: str = "input",
    ) -> _A:
        """The anchored form of ``conv`` (an ``nn.Conv1d``/``nn.Conv2d`` with ``kernel_size ==
        stride``), sharing its Parameters (no copy)."""
        _check_patchify(conv, cls.ndim, cls.__name__)
        new = cls.__new__(cls)
        new.__dict__.update(conv.__dict__)
        new._parameters = dict(conv._parameters)  # type: ignore[attr-defined]
        new._buffers = dict(conv._buffers)  # type: ignore[attr-defined]
        new._modules = dict(conv._modules)  # type: ignore[attr-defined]
        new._set_options(token_anchor, norm, score)
        return new

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x, self.ndim, type(self).__name__)
        if self.score == "output":
            y = self._output_anchored(x)
        else:
            y = super().forward(_anchor(x, self.stride, self.norm)[0])  # type: ignore[misc]
        return _anchor(y, tuple(y.shape[2:]), self.norm)[0] if self.token_anchor else y

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, token_anchor={self.token_anchor}, "  # type: ignore[misc]
            f"norm={self.norm!r}, score={self.score!r}"
        )

    def _output_anchored(self, x: Tensor) -> Tensor:
        """The convolution at every offset (circular), then the component of largest output norm."""
        conv: Any = self
        stride = tuple(self.stride)
        pads = [p for k in reversed(stride) for p in (0, k - 1)]
        weight = conv.weight
        dense = _CONV[self.ndim](
            F.pad(x, pads, mode="circular"), weight, conv.bias, 1, 0, 1, conv.groups
        )
        # Rolling the chosen component (phase p) to 0 and keeping every stride-th sample reads
        # dense[p + s * j] for j < side // s, never wrapping: gathering those reads 1/s of each axis.
        norms = aps_norms(_wrap_to_multiple(dense, stride), stride, self.norm)
        phases = _unravel(_lowest_argmax(norms), stride)
        for d, (p, s) in enumerate(zip(phases, stride, strict=True)):
            steps = s * torch.arange(dense.size(d + 2) // s, device=dense.device)
            dense = _take_per_sample(dense, d + 2, p.unsqueeze(1) + steps)
        return dense


class AnchoredConv2d(_AnchoredConv, nn.Conv2d):
    """A patchify convolution (``kernel_size == stride``) behind a polyphase anchor.

    The input is rolled so that its largest-norm ``stride`` component is at phase (0, 0), then
    convolved: a circular shift of the input by any integer moves the tokens by whole tokens. With
    ``token_anchor=True`` the token grid is then rolled so that its largest-norm token is at (0, 0),
    and the tokens no longer move at all (Ding et al. 2023). An ``nn.Conv2d``: the parameters keep
    their names (``weight``, ``bias``) and the model's checkpoint loads strictly.

    Args:
        in_channels, out_channels, kernel_size, bias, padding_mode, device, dtype: as ``nn.Conv2d``
            (the stride is the kernel size).
        token_anchor: also anchor the token grid (for absolute position embeddings, window
            partitions and token mixing downstream).
        norm: ``"l2"`` or ``"l1"``, for both anchors.
        score: what the phase is chosen by: ``"input"`` (the norm of the input's components: one
            convolution) or ``"output"`` (the norm of the convolution's output at every offset,
            taken circularly: ``prod(kernel_size)`` times the work). Use ``"output"`` after a
            per-position normalization (LayerNorm), whose components have equal input norms (ties).

    Shape:
        ``(N, C_in, H, W)`` -> ``(N, C_out, floor(H / k_h), floor(W / k_w))``.

    Example:
        >>> conv = AnchoredConv2d(3, 8, 4, token_anchor=True)
        >>> conv(torch.randn(2, 3, 32, 48)).shape
        torch.Size([2, 8, 8, 12])
    """

    ndim = 2


class AnchoredConv1d(_AnchoredConv, nn.Conv1d):
    """:class:`AnchoredConv2d` for ``(N, C, L)`` sequences (audio and 1D patchifiers).

    Shape:
        ``(N, C_in, L)`` -> ``(N, C_out, floor(L / k))``.

    Example:
        >>> AnchoredConv1d(1, 4, 16)(torch.randn(2, 1, 160)).shape
        torch.Size([2, 4, 10])
    """

    ndim = 1
