"""Wavelet subsampling (WaveCNet, Li et al. CVPR 2020): keep the low-frequency band of a DWT.

WaveCNet replaces max pooling, strided convolution and average pooling by one level of the discrete
wavelet transform and keeps only its low-frequency component (the ``LL`` band in 2D), dropping the
high-frequency bands where aliasing and noise live. Along each subsampled axis that is a correlation
with the orthogonal wavelet's low-pass filter ``h`` followed by keeping every second sample; the
``d``-D band is the separable product.

The filters come from this module's table (:data:`WAVELETS`), in closed form:

- ``"haar"`` (2 taps): ``h = (1, 1) / sqrt(2)``. On an even axis the 2D ``LL`` band is
  ``2 * avg_pool2d(x, 2)``.
- ``"db2"`` (Daubechies, 4 taps): ``h = (1 + sqrt3, 3 + sqrt3, 3 - sqrt3, 1 - sqrt3) / (4 sqrt2)``.
- ``"db3"`` (Daubechies, 6 taps), with ``a = sqrt10``, ``b = sqrt(5 + 2 sqrt10)``:
  ``h = (1 + a + b, 5 + a + 3b, 10 - 2a + 2b, 10 - 2a - 2b, 5 + a - 3b, 1 + a - b) / (16 sqrt2)``.

They are orthonormal (``sum h[k] h[k + 2m] = delta(m)``, ``sum h = sqrt2``), so the band has gain
``sqrt2`` per axis (2 in 2D, as in WaveCNet), and they equal PyWavelets' ``rec_lo`` (the correlation
form of ``dec_lo``).

Convention:
    ``y[n] = sum_j h[j] x[2 n + j - p]`` with ``p = (K - 2) // 2`` for ``K`` taps, so the output has
    ``ceil(L / 2)`` samples. Samples outside the map come from ``pad_mode`` (``"reflect"``,
    ``"replicate"``, ``"zeros"``, ``"circular"``; reflect falls back to replicate on axes too short for
    it, as in blur-pool). Haar on an even axis reads no padding. WaveCNet's matrix implementation
    truncates the filters at the border (like ``"zeros"``) and gives ``floor(L / 2)`` samples on odd
    axes; here the size is ``ceil(L / 2)`` like every other layer of the library, and ``"circular"``
    gives the periodized DWT (a shift by 2 shifts the output by 1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from antialias.filters import FilterSpec
from antialias.layers._checks import (
    IntOrTuple,
    check_channels,
    check_input,
    check_pad_mode,
    check_size,
    check_tuple,
    compact,
    pad,
)
from antialias.layers.factory import register_downsample
from antialias.layers.functional import _blur_pool

__all__ = [
    "WAVELETS",
    "WaveletPool1d",
    "WaveletPool2d",
    "WaveletPool3d",
    "wavelet_pool1d",
    "wavelet_pool2d",
    "wavelet_pool3d",
]


def _daubechies3() -> tuple[float, ...]:
    a = math.sqrt(10.0)
    b = math.sqrt(5.0 + 2.0 * a)
    taps = (
        1 + a + b,
        5 + a + 3 * b,
        10 - 2 * a + 2 * b,
        10 - 2 * a - 2 * b,
        5 + a - 3 * b,
        1 + a - b,
    )
    return tuple(t / (16 * math.sqrt(2.0)) for t in taps)


_S3 = math.sqrt(3.0)
WAVELETS: dict[str, tuple[float, ...]] = {
    "haar": (1 / math.sqrt(2.0), 1 / math.sqrt(2.0)),
    "db2": tuple(t / (4 * math.sqrt(2.0)) for t in (1 + _S3, 3 + _S3, 3 - _S3, 1 - _S3)),
    "db3": _daubechies3(),
}
"""Low-pass filters (correlation taps) of the orthogonal wavelets, by name."""

_BY_LENGTH = {len(taps): name for name, taps in WAVELETS.items()}


def check_wavelet(wavelet: str) -> str:
    """Return ``wavelet`` if it names a filter of :data:`WAVELETS`, else raise ``ValueError``."""
    if not isinstance(wavelet, str) or wavelet not in WAVELETS:
        raise ValueError(f"wavelet must be one of {sorted(WAVELETS)}, got {wavelet!r}")
    return wavelet


def _check_stride(stride: IntOrTuple, ndim: int) -> tuple[int, ...]:
    strides = check_tuple(stride, ndim, "stride")
    if any(s > 2 for s in strides):
        raise ValueError(
            f"one DWT level halves an axis: stride must be 1 or 2 per axis, got {stride!r}"
        )
    return strides


def _wavelet_pool(x: Tensor, stride: Sequence[int], wavelet: str, pad_mode: str) -> Tensor:
    taps = WAVELETS[wavelet]
    if all(s == 2 for s in stride):
        # The same padding and correlation as blur-pool's kernels (which take the taps as given, here
        # of sum sqrt2): their per-axis matrices run about 10x faster than the convolutions below.
        return _blur_pool(x, list(taps), list(stride), pad_mode, 0)
    k = len(taps)
    left = (k - 2) // 2
    ndim = x.dim() - 2
    batch, channels = x.shape[:2]
    # One output channel per input channel: fold the channels into the batch, filter with one kernel.
    y = x.reshape(batch * channels, 1, *x.shape[2:])
    conv = (F.conv1d, F.conv2d, F.conv3d)[ndim - 1]
    for axis, s in enumerate(stride):
        if s == 1:
            continue
        length = y.size(axis + 2)
        out_len = -(-length // 2)
        right = max(0, 2 * (out_len - 1) + k - 1 - left - (length - 1))
        pads = [0] * (2 * ndim)
        pads[2 * axis], pads[2 * axis + 1] = left, right
        y = pad(y, pads, pad_mode)
        shape = [1] * (ndim + 2)
        shape[axis + 2] = k
        weight = torch.tensor(taps, dtype=y.dtype, device=y.device).view(shape)
        steps = [1] * ndim
        steps[axis] = 2
        y = conv(y, weight, stride=steps)
    return y.reshape(batch, channels, *y.shape[2:])


def _wavelet_pool_nd(
    x: Tensor, ndim: int, stride: IntOrTuple, wavelet: str, pad_mode: str, name: str
) -> Tensor:
    strides = _check_stride(stride, ndim)
    check_wavelet(wavelet)
    mode = check_pad_mode(pad_mode)
    check_input(x, ndim, None, name)
    check_size(x, [1] * ndim, name, "padding cannot extend an empty axis")
    return _wavelet_pool(x, strides, wavelet, mode)


def wavelet_pool1d(
    input: Tensor, stride: IntOrTuple = 2, wavelet: str = "haar", pad_mode: str = "reflect"
) -> Tensor:
    """The low band of a 1D DWT; see :class:`WaveletPool1d`.

    Shape:
        - Input: ``(N, C, L)``; Output: ``(N, C, ceil(L / stride))``.

    Example:
        >>> (wavelet_pool1d(torch.tensor([[[1.0, 3.0, 5.0, 7.0]]])) ** 2).round(decimals=4)
        tensor([[[ 8., 72.]]])
    """
    return _wavelet_pool_nd(input, 1, stride, wavelet, pad_mode, "wavelet_pool1d")


def wavelet_pool2d(
    input: Tensor, stride: IntOrTuple = 2, wavelet: str = "haar", pad_mode: str = "reflect"
) -> Tensor:
    """The ``LL`` band of a 2D DWT (WaveCNet, Li et al. CVPR 2020); see :class:`WaveletPool2d`.

    Shape:
        - Input: ``(N, C, H, W)``; Output: ``(N, C, ceil(H / stride), ceil(W / stride))``.

    Example:
        >>> x = torch.randn(1, 3, 8, 8)
        >>> torch.allclose(wavelet_pool2d(x), 2 * torch.nn.functional.avg_pool2d(x, 2), atol=1e-6)
        True
    """
    return _wavelet_pool_nd(input, 2, stride, wavelet, pad_mode, "wavelet_pool2d")


def wavelet_pool3d(
    input: Tensor, stride: IntOrTuple = 2, wavelet: str = "haar", pad_mode: str = "reflect"
) -> Tensor:
    """The ``LLL`` band of a 3D DWT; see :class:`WaveletPool3d`.

    Shape:
        - Input: ``(N, C, D, H, W)``; Output: ``(N, C, ceil(D / s), ceil(H / s), ceil(W / s))``.

    Example:
        >>> wavelet_pool3d(torch.ones(1, 2, 5, 6, 7), wavelet="db2").shape
        torch.Size([1, 2, 3, 3, 4])
    """
    return _wavelet_pool_nd(input, 3, stride, wavelet, pad_mode, "wavelet_pool3d")


class _WaveletPoolNd(nn.Module):
    _ndim: ClassVar[int]

    def __init__(
        self,
        channels: int | None = None,
        stride: IntOrTuple = 2,
        wavelet: str = "haar",
        pad_mode: str = "reflect",
    ) -> None:
        super().__init__()
        self.channels = check_channels(channels)
        self.stride = _check_stride(stride, self._ndim)
        self.wavelet = check_wavelet(wavelet)
        self.pad_mode = check_pad_mode(pad_mode)

    def forward(self, input: Tensor) -> Tensor:
        check_input(input, self._ndim, self.channels, type(self).__name__)
        check_size(
            input, [1] * self._ndim, type(self).__name__, "padding cannot extend an empty axis"
        )
        return _wavelet_pool(input, self.stride, self.wavelet, self.pad_mode)

    def extra_repr(self) -> str:
        stride = compact(self.stride)
        return f"channels={self.channels}, stride={stride}, wavelet={self.wavelet!r}, pad_mode={self.pad_mode!r}"


class WaveletPool1d(_WaveletPoolNd):
    """The low band of a 1D DWT; see :class:`WaveletPool2d`.

    Shape:
        - Input: ``(N, C, L)``; Output: ``(N, C, ceil(L / stride))``.

    Example:
        >>> WaveletPool1d(4, wavelet="db3")(torch.randn(2, 4, 9)).shape
        torch.Size([2, 4, 5])
    """

    _ndim = 1


class WaveletPool2d(_WaveletPoolNd):
    """Keep the low-frequency (``LL``) band of a one-level 2D DWT (WaveCNet, Li et al. CVPR 2020).

    A drop-in for ``MaxPool2d(2)``, ``AvgPool2d(2)`` or the subsampling of a stride-2 convolution:
    the map is filtered with the wavelet's low-pass filter along each axis and every second sample is
    kept. The filters are orthonormal, so the band has gain 2 (Haar: ``2 * avg_pool2d(x, 2)``).

    Args:
        channels: the expected number of channels (checked on input), or ``None``.
        stride: 2, or 1 or 2 per axis (1 leaves an axis untouched).
        wavelet: ``"haar"``, ``"db2"`` or ``"db3"`` (:data:`WAVELETS`).
        pad_mode: ``"reflect"``, ``"replicate"``, ``"zeros"`` or ``"circular"`` (periodized DWT).

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: ``(N, C, ceil(H / stride), ceil(W / stride))`` for even and odd sizes.

    Convention:
        ``y[n] = sum_j h[j] x[2 n + j - (K - 2) // 2]`` per axis; see :mod:`antialias.layers.wavelet`.

    Example:
        >>> pool = WaveletPool2d(64, wavelet="db2")
        >>> pool
        WaveletPool2d(channels=64, stride=2, wavelet='db2', pad_mode='reflect')
        >>> pool(torch.ones(1, 64, 7, 8)).shape
        torch.Size([1, 64, 4, 4])
    """

    _ndim = 2


class WaveletPool3d(_WaveletPoolNd):
    """The low band of a 3D DWT; see :class:`WaveletPool2d`.

    Shape:
        - Input: ``(N, C, D, H, W)``; Output: ``(N, C, ceil(D / s), ceil(H / s), ceil(W / s))``.

    Example:
        >>> WaveletPool3d(2)(torch.randn(1, 2, 5, 6, 7)).shape
        torch.Size([1, 2, 3, 3, 4])
    """

    _ndim = 3


WAVELET_POOL = {1: WaveletPool1d, 2: WaveletPool2d, 3: WaveletPool3d}


def _wavelet_factory(
    ndim: int,
    channels: int | None,
    stride: IntOrTuple,
    *,
    filter_size: FilterSpec = 4,
    pad_mode: str = "reflect",
    wavelet: str | None = None,
    **kwargs: Any,
) -> nn.Module:
    # Without an explicit wavelet, filter_size (which every caller passes) picks it by its number of taps:
    # 2 -> Haar, 4 -> db2 (the default), 6 -> db3.
    if kwargs:
        raise TypeError(
            f"the 'wavelet' downsample method takes only the option 'wavelet', got {sorted(kwargs)}"
        )
    if wavelet is None:
        if (
            isinstance(filter_size, bool)
            or not isinstance(filter_size, int)
            or filter_size not in _BY_LENGTH
        ):
            raise ValueError(
                f"the 'wavelet' method picks its wavelet by filter_size (taps): "
                f"{ {n: w for n, w in sorted(_BY_LENGTH.items())} }, got filter_size={filter_size!r}; "
                f"or pass wavelet=..."
            )
        wavelet = _BY_LENGTH[filter_size]
    return WAVELET_POOL[ndim](channels, stride, wavelet, pad_mode)


register_downsample("wavelet", _wavelet_factory)
