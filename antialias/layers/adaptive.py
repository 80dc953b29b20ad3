"""Content-aware adaptive low-pass filters (Zou et al., BMVC 2020, "Delving Deeper into Anti-aliasing").

A fixed blur removes high frequencies everywhere, also where they carry information (edges). Zou et
al. predict the low-pass filter from the content instead: a small ``k x k`` convolution, batch
normalization and a softmax give, at every output position and for every group of channels, ``k x k``
non-negative weights that sum to 1; the map is filtered with them and subsampled.
:class:`AdaptiveBlurPool2d` is that layer (1D and 3D too); :func:`adaptive_blur_pool2d` applies given
filter logits.

Its parameters live in two submodules, ``filter_conv`` and ``filter_norm``, names that no torchvision
or timm model uses, so they never collide with the host's keys. A converted model therefore has
the host's keys plus new ones: :func:`load_host_weights` loads the host's checkpoint strictly on the
host's keys (every host key must be present, nothing unexpected, shapes checked) and returns the new
keys, which keep their initialization.

Convention:
    The map is padded by ``(k - 1) // 2`` before and ``k // 2`` after on each axis (``pad_mode``, as
    blur-pool), the predictor runs at the layer's stride, and the output at position ``n`` is
    ``sum_j w[n, g, j] x[s n + j - (k - 1) // 2]`` for the channels of group ``g``: ``ceil(L / s)``
    samples for odd and even ``k``.

    Deviations from the authors' code (``Downsample_PASA_group_softmax``): the softmax is taken per
    group, so each group's filter sums to 1 (theirs is one softmax over all ``groups * k * k`` logits
    of a position, equal only for ``groups=1``); the predictor runs only at the kept positions (theirs
    predicts at every position and discards 1 - 1/s^d of them: the same output in evaluation, batch
    statistics over the kept positions in training); even ``k`` pads asymmetrically so the size is
    ``ceil(L / s)``; the default is 8 groups (their ImageNet models) reduced to a divisor of
    ``channels``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch  # noqa: F401 (the doctests use it)
from torch import Tensor, nn

from antialias.filters import FilterSpec
from antialias.layers._checks import (
    IntOrTuple,
    blur_pads,
    check_input,
    check_pad_mode,
    check_size,
    check_tuple,
    compact,
    pad,
)
from antialias.layers.factory import register_downsample

__all__ = [
    "AdaptiveBlurPool1d",
    "AdaptiveBlurPool2d",
    "AdaptiveBlurPool3d",
    "adaptive_blur_pool1d",
    "adaptive_blur_pool2d",
    "adaptive_blur_pool3d",
    "load_host_weights",
]

DEFAULT_GROUPS = 8


def _check_kernel_size(kernel_size: Any) -> int:
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1:
        raise ValueError(
            f"kernel_size must be an int >= 1 (the filter is k x k), got {kernel_size!r}"
        )
    return kernel_size


def _pads(kernel_size: int, ndim: int) -> list[int]:
    return list(blur_pads(kernel_size)) * ndim


def _apply_filters(
    padded: Tensor, logits: Tensor, kernel_size: int, stride: Sequence[int]
) -> Tensor:
    """Filter the padded map with the softmax of ``logits`` at the strided positions."""
    ndim = padded.dim() - 2
    taps = kernel_size**ndim
    batch, channels = padded.shape[:2]
    out = logits.shape[2:]
    groups = logits.size(1) // taps
    weights = logits.reshape(batch, groups, taps, *out).softmax(dim=2)
    grouped = padded.reshape(batch, groups, channels // groups, *padded.shape[2:])

    def term(j: int, offset: tuple[int, ...]) -> Tensor:
        index = [slice(None)] * 3 + [
            slice(o, o + s * (m - 1) + 1, s) for o, s, m in zip(offset, stride, out, strict=True)
        ]
        return grouped[tuple(index)] * weights[:, :, j : j + 1]

    offsets = list(itertools.product(range(kernel_size), repeat=ndim))
    result = term(0, offsets[0])
    for j in range(1, len(offsets)):
        result = result + term(j, offsets[j])
    return result.reshape(batch, channels, *out)


def _adaptive_blur_pool_nd(
    x: Tensor,
    logits: Tensor,
    ndim: int,
    kernel_size: int,
    stride: IntOrTuple,
    pad_mode: str,
) -> Tensor:
    name = f"adaptive_blur_pool{ndim}d"
    k = _check_kernel_size(kernel_size)
    strides = check_tuple(stride, ndim, "stride")
    mode = check_pad_mode(pad_mode)
    check_input(x, ndim, None, name)
    check_size(x, [1] * ndim, name, "padding cannot extend an empty axis")
    out = [-(-size // s) for size, s in zip(x.shape[2:], strides, strict=True)]
    taps = k**ndim
    if (
        not isinstance(logits, Tensor)
        or logits.dim() != ndim + 2
        or list(logits.shape[2:]) != out
        or logits.size(0) != x.size(0)
        or logits.size(1) % taps != 0
    ):
        shape = list(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(
            f"{name}: logits must have shape (N, groups * {taps}, *{out}) for an input of shape "
            f"{list(x.shape)}, got {shape}"
        )
    if x.size(1) % (logits.size(1) // taps) != 0:
        raise ValueError(
            f"{name}: {logits.size(1) // taps} groups do not divide {x.size(1)} channels"
        )
    return _apply_filters(pad(x, _pads(k, ndim), mode), logits, k, strides)


def adaptive_blur_pool1d(
    input: Tensor,
    logits: Tensor,
    kernel_size: int = 3,
    stride: IntOrTuple = 2,
    pad_mode: str = "reflect",
) -> Tensor:
    """Filter a 1D signal with per-position filters (the softmax of ``logits``), subsample.

    See :func:`adaptive_blur_pool2d`.

    Shape:
        - Input: ``(N, C, L)``; logits: ``(N, G * k, L_out)``; Output: ``(N, C, L_out)``,
          ``L_out = ceil(L / stride)``.

    Example:
        >>> adaptive_blur_pool1d(torch.tensor([[[0.0, 3.0, 6.0, 9.0]]]), torch.zeros(1, 3, 2))
        tensor([[[2., 6.]]])
    """
    return _adaptive_blur_pool_nd(input, logits, 1, kernel_size, stride, pad_mode)


def adaptive_blur_pool2d(
    input: Tensor,
    logits: Tensor,
    kernel_size: int = 3,
    stride: IntOrTuple = 2,
    pad_mode: str = "reflect",
) -> Tensor:
    """Filter a 2D map with per-position, per-group ``k x k`` filters, then subsample (Zou et al. 2020).

    The filter of group ``g`` at output position ``(i, j)`` is the softmax of
    ``logits[:, g * k * k : (g + 1) * k * k, i, j]`` (non-negative, sums to 1); the ``G`` groups split
    the channels into equal consecutive blocks. :class:`AdaptiveBlurPool2d` predicts the logits.

    Args:
        input: the map.
        logits: filter logits at the output positions.
        kernel_size: ``k``.
        stride: subsampling factor, an int or one per axis.
        pad_mode: ``"reflect"``, ``"replicate"``, ``"zeros"`` or ``"circular"``.

    Shape:
        - Input: ``(N, C, H, W)``; logits: ``(N, G * k * k, H_out, W_out)``
        - Output: ``(N, C, H_out, W_out)``, ``H_out = ceil(H / stride)``, ``W_out = ceil(W / stride)``.

    Example:
        >>> x = torch.ones(2, 4, 7, 8)
        >>> adaptive_blur_pool2d(x, torch.randn(2, 2 * 9, 4, 4)).shape
        torch.Size([2, 4, 4, 4])
    """
    return _adaptive_blur_pool_nd(input, logits, 2, kernel_size, stride, pad_mode)


def adaptive_blur_pool3d(
    input: Tensor,
    logits: Tensor,
    kernel_size: int = 3,
    stride: IntOrTuple = 2,
    pad_mode: str = "reflect",
) -> Tensor:
    """Filter a 3D volume with per-position ``k x k x k`` filters, subsample; see :func:`adaptive_blur_pool2d`.

    Shape:
        - Input: ``(N, C, D, H, W)``; logits: ``(N, G * k ** 3, *out)``; Output: ``(N, C, *out)``,
          ``out = ceil(size / stride)`` per axis.

    Example:
        >>> adaptive_blur_pool3d(torch.ones(1, 2, 5, 6, 7), torch.zeros(1, 27, 3, 3, 4)).shape
        torch.Size([1, 2, 3, 3, 4])
    """
    return _adaptive_blur_pool_nd(input, logits, 3, kernel_size, stride, pad_mode)


_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


class _AdaptiveBlurPoolNd(nn.Module):
    _ndim: ClassVar[int]

    def __init__(
        self,
        channels: int,
        stride: IntOrTuple = 2,
        kernel_size: int = 3,
        groups: int | None = None,
        pad_mode: str = "reflect",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(
                f"channels must be an int >= 1 (the predictor's input width), got {channels!r}"
            )
        self.channels = channels
        self.stride = check_tuple(stride, self._ndim, "stride")
        self.kernel_size = _check_kernel_size(kernel_size)
        if groups is None:
            groups = math.gcd(channels, DEFAULT_GROUPS)
        if (
            isinstance(groups, bool)
            or not isinstance(groups, int)
            or groups < 1
            or channels % groups != 0
        ):
            raise ValueError(
                f"groups must be an int >= 1 that divides channels={channels}, got {groups!r}"
            )
        self.groups = groups
        self.pad_mode = check_pad_mode(pad_mode)
        taps = self.kernel_size**self._ndim
        # stride has self._ndim entries, as the chosen ConvNd wants; the dict of three classes cannot say so.
        self.filter_conv = _CONV[self._ndim](
            channels,
            groups * taps,
            self.kernel_size,
            stride=self.stride,  # type: ignore[arg-type]
            bias=False,
            device=device,
            dtype=dtype,
        )
        self.filter_norm = _NORM[self._ndim](groups * taps, device=device, dtype=dtype)
        nn.init.kaiming_normal_(self.filter_conv.weight, mode="fan_out", nonlinearity="relu")

    def filter_logits(self, padded: Tensor) -> Tensor:
        """The predictor: ``filter_norm(filter_conv(padded))``, logits at the output positions."""
        return self.filter_norm(self.filter_conv(padded))

    def forward(self, input: Tensor) -> Tensor:
        check_input(input, self._ndim, self.channels, type(self).__name__)
        check_size(
            input, [1] * self._ndim, type(self).__name__, "padding cannot extend an empty axis"
        )
        padded = pad(input, _pads(self.kernel_size, self._ndim), self.pad_mode)
        return _apply_filters(padded, self.filter_logits(padded), self.kernel_size, self.stride)

    def extra_repr(self) -> str:
        stride = compact(self.stride)
        return (
            f"channels={self.channels}, stride={stride}, kernel_size={self.kernel_size}, groups={self.groups}, "
            f"pad_mode={self.pad_mode!r}"
        )


class AdaptiveBlurPool1d(_AdaptiveBlurPoolNd):
    """Content-aware adaptive low-pass, then subsample, for 1D signals; see :class:`AdaptiveBlurPool2d`.

    Shape:
        - Input: ``(N, C, L)``; Output: ``(N, C, ceil(L / stride))``.

    Example:
        >>> AdaptiveBlurPool1d(16)(torch.randn(2, 16, 9)).shape
        torch.Size([2, 16, 5])
    """

    _ndim = 1


class AdaptiveBlurPool2d(_AdaptiveBlurPoolNd):
    """Content-aware adaptive low-pass filter, then subsample (Zou et al., BMVC 2020).

    ``filter_conv`` (a ``k x k`` convolution at the layer's stride, no bias) and ``filter_norm``
    (batch norm) predict ``groups`` filters of ``k x k`` taps at every output position; a softmax per
    group makes each filter non-negative with unit sum (a low-pass with DC gain 1); the channels of
    each group are filtered with their filter and subsampled.

    Args:
        channels: input channels (the predictor's input width).
        stride: subsampling factor, an int or one per axis.
        kernel_size: ``k`` (the paper's models use 3).
        groups: channel groups sharing a filter; ``None``: the largest divisor of ``channels`` up to 8.
        pad_mode: ``"reflect"``, ``"replicate"``, ``"zeros"`` or ``"circular"``.
        device: device of the parameters.
        dtype: dtype of the parameters.

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: ``(N, C, ceil(H / stride), ceil(W / stride))`` for odd and even ``k``.

    Convention:
        Parameters under ``filter_conv.*`` and ``filter_norm.*``; load a host checkpoint into a
        converted model with :func:`load_host_weights`. See :mod:`antialias.layers.adaptive` for the
        padding and the differences from the authors' code.

    Example:
        >>> pool = AdaptiveBlurPool2d(64)
        >>> pool.extra_repr()
        "channels=64, stride=2, kernel_size=3, groups=8, pad_mode='reflect'"
        >>> pool(torch.randn(2, 64, 7, 8)).shape
        torch.Size([2, 64, 4, 4])
    """

    _ndim = 2


class AdaptiveBlurPool3d(_AdaptiveBlurPoolNd):
    """Content-aware adaptive low-pass, then subsample, for 3D volumes; see :class:`AdaptiveBlurPool2d`.

    Shape:
        - Input: ``(N, C, D, H, W)``; Output: ``(N, C, ceil(D / s), ceil(H / s), ceil(W / s))``.

    Example:
        >>> AdaptiveBlurPool3d(4, kernel_size=2)(torch.randn(2, 4, 5, 6, 7)).shape
        torch.Size([2, 4, 3, 3, 4])
    """

    _ndim = 3


ADAPTIVE_BLUR_POOL = {1: AdaptiveBlurPool1d, 2: AdaptiveBlurPool2d, 3: AdaptiveBlurPool3d}


def load_host_weights(model: nn.Module, state_dict: Mapping[str, Any]) -> list[str]:
    """Load the checkpoint of the model before conversion into the model with adaptive filters.

    Strict on the host's keys: every key of ``model`` outside its adaptive layers must be in
    ``state_dict`` and ``state_dict`` must hold no other key (the adaptive layers' own keys are
    loaded too if present). Shapes are checked by ``load_state_dict``. Nothing is loaded when a key
    is wrong.

    Args:
        model: a model holding :class:`AdaptiveBlurPool2d` layers (e.g. from
            ``convert(model, method="adaptive")``).
        state_dict: the host model's state dict.

    Returns:
        The keys of ``model`` that ``state_dict`` did not provide (the adaptive layers' new
        parameters and buffers, which keep their initialization), sorted.

    Raises:
        RuntimeError: a host key is missing or an unknown key is present (both listed).

    Example:
        >>> host = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())
        >>> aa = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), AdaptiveBlurPool2d(8, groups=1))
        >>> load_host_weights(aa, host.state_dict())[:2]
        ['2.filter_conv.weight', '2.filter_norm.bias']
    """
    new_keys = {
        f"{prefix}.{key}" if prefix else key
        for prefix, module in model.named_modules()
        if isinstance(module, _AdaptiveBlurPoolNd)
        for key in module.state_dict()
    }
    model_keys = set(model.state_dict())
    missing = sorted(model_keys - new_keys - set(state_dict))
    unexpected = sorted(set(state_dict) - model_keys)
    if missing or unexpected:
        raise RuntimeError(
            f"load_host_weights: the checkpoint does not match the host model: missing keys {missing}, "
            f"unexpected keys {unexpected}"
        )
    model.load_state_dict(state_dict, strict=False)
    return sorted(model_keys - set(state_dict))


def _adaptive_factory(
    ndim: int,
    channels: int | None,
    stride: IntOrTuple,
    *,
    filter_size: FilterSpec = 3,
    pad_mode: str = "reflect",
    **kwargs: Any,
) -> nn.Module:
    # filter_size is the predicted filter's k (an int); a family string or explicit taps make no sense here.
    if channels is None:
        raise ValueError(
            "the 'adaptive' downsample method needs channels (the width of its predictor), got None"
        )
    if isinstance(filter_size, bool) or not isinstance(filter_size, int):
        raise ValueError(
            f"the 'adaptive' method needs an int filter_size (its k x k filter), got {filter_size!r}"
        )
    return ADAPTIVE_BLUR_POOL[ndim](channels, stride, filter_size, pad_mode=pad_mode, **kwargs)


register_downsample("adaptive", _adaptive_factory)
