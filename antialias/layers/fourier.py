"""Fourier low-pass subsampling: FLC pooling and ASAP, in 1D, 2D and 3D.

- FLC pooling (Grabinski et al., "FrequencyLowCut Pooling", ECCV 2022): transform, keep the central
  band of the spectrum (``1 / stride`` of it per axis), transform back at the smaller size. That is an
  ideal (brick-wall) low-pass followed by subsampling: no aliasing at all, no parameters.
- ASAP (Grabinski et al., "Fix your downsampling ASAP!", arXiv 2307.09804): the same, with the
  spectrum multiplied by a Hamming window first, which damps the sinc ringing of the brick-wall filter.

Both are :func:`fourier_pool2d` (``window=None`` or ``"hamming"``) and :class:`FourierPool2d`; the
factory names are ``"flc"`` and ``"asap"``.

Convention:
    Along an axis of ``L`` samples subsampled by ``s`` the output has ``M = ceil(L / s)`` samples and
    equals ``lowpass(x)[::s]``, where ``lowpass`` multiplies the ``L``-point DFT by a real, even
    response ``H(k)`` (``k`` the signed frequency index): ``H(k) = w(k)`` for ``|k| < L / (2 s)``,
    ``w(k) / 2`` for ``|k| = L / (2 s)`` (the two halves of the output's Nyquist bin, which fold onto
    each other), 0 above. ``w = 1`` for FLC; for ASAP ``w(k) = sqrt(0.54 + 0.46 cos(2 pi k / L))``, the
    Hamming window centred on frequency 0, square-rooted per axis as in the authors' code (their 2D
    window is ``sqrt(outer(hamming, hamming))``). The response is real and even, so the output is real
    and the DC gain is 1: a constant map stays the same constant.

    The transform is periodic: the map is treated as one period (circular boundary). There is no
    ``pad_mode``. Axes with stride 1 are left untouched. When ``s`` divides ``L`` the inverse
    transform runs at the output size (the FLC algorithm); otherwise at the input size, then every
    ``s``-th sample is kept. Half-precision inputs are transformed in float32 and cast back.

    Deviations from the authors' code (which crops ``fftshift(fft2(x))[H/4 : 3H/4, W/4 : 3W/4]``):
    the band and window are centred exactly on frequency 0, so the response is even and ``.real`` is
    not needed to hide an imaginary part; any stride, size and dimension work; the output is scaled to
    unit DC gain (the ECCV code's ``abs(ifft2(...))`` with default norms returns ``4 |lowpass(x)|``
    in 2D; later versions use ``norm="forward"`` and ``.real``, as here); nothing is cached per size
    or device; the ASAP module does not transpose ``H`` and ``W`` (the authors' ``transpose=True``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from antialias.filters import FilterSpec
from antialias.layers._checks import (
    IntOrTuple,
    check_channels,
    check_input,
    check_size,
    check_tuple,
    compact,
    empty_output,
)
from antialias.layers.factory import register_downsample

__all__ = [
    "WINDOWS",
    "FourierPool1d",
    "FourierPool2d",
    "FourierPool3d",
    "fourier_pool1d",
    "fourier_pool2d",
    "fourier_pool3d",
]

WINDOWS = (None, "hamming")


def check_window(window: str | None) -> str | None:
    """Return ``window`` if it is one of :data:`WINDOWS`, else raise ``ValueError``."""
    if window not in WINDOWS:
        raise ValueError(f"window must be one of {WINDOWS}, got {window!r}")
    return window


def _response(
    length: int,
    stride: int,
    window: str | None,
    count: int,
    dtype: torch.dtype,
    device: torch.device,
    edge: float = 0.5,
) -> Tensor:
    """``H(k)`` for the rFFT bins ``k = 0 .. count - 1`` of an axis of ``length`` samples.

    ``edge`` is the gain at ``|k| = L / (2 s)`` (FLC's is 1/2; the alias-free activation uses 1 so that
    upsampling then this low-pass is the identity).
    """
    k = torch.arange(count, dtype=torch.float64, device=device)
    twice = 2 * k * stride  # compare 2 k s with L instead of k with L / (2 s): exact in integers
    h = (twice < length).to(torch.float64) + edge * (twice == length).to(torch.float64)
    if window == "hamming":
        h = h * torch.sqrt(0.54 + 0.46 * torch.cos(2 * math.pi * k / length))
    return h.to(dtype)


def _lowpass_subsample_axis(
    x: Tensor, dim: int, stride: int, window: str | None, edge: float = 0.5
) -> Tensor:
    """``lowpass(x)[::stride]`` along ``dim`` (see the module's Convention)."""
    length = x.size(dim)
    out_len = -(-length // stride)
    spec = torch.fft.rfft(x, dim=dim, norm="forward")  # X[k] / L
    divisible = length % stride == 0
    count = out_len // 2 + 1 if divisible else length // 2 + 1
    shape = [1] * x.dim()
    shape[dim] = count
    spec = spec.narrow(dim, 0, count) * _response(
        length, stride, window, count, x.dtype, x.device, edge
    ).view(shape)
    if divisible:
        # The M-point DFT of the subsampled signal is X_lp[j] / s for |j| < M / 2 (no aliasing: the band
        # has M bins). On even M its Nyquist bin j = M / 2 receives both halves, H (X[M/2] + X[-M/2]).
        if out_len % 2 == 0:
            last = spec.narrow(dim, count - 1, 1)
            nyquist = torch.complex(2 * last.real, torch.zeros_like(last.real))
            spec = torch.cat([spec.narrow(dim, 0, count - 1), nyquist], dim)
        # norm="forward": the inverse does not divide by M, so 1 / L * (sum over the band) = x_lp[s n].
        return torch.fft.irfft(spec, n=out_len, dim=dim, norm="forward")
    full = torch.fft.irfft(spec, n=length, dim=dim, norm="forward")
    index: list[Any] = [slice(None)] * x.dim()
    index[dim] = slice(None, None, stride)
    return full[tuple(index)]


def _fourier_pool(
    x: Tensor, stride: Sequence[int], window: str | None, edge: float = 0.5
) -> Tensor:
    if x.numel() == 0:  # an empty batch (or no channels): FFT libraries refuse empty transforms
        sizes = [(x.size(d + 2) + s - 1) // s for d, s in enumerate(stride)]
        return empty_output(x, sizes)
    work = x if x.dtype in (torch.float32, torch.float64) else x.float()
    # The low-pass is separable (a box in frequency, and the window is a product per axis), so axes are
    # processed one at a time with real transforms; each step's output is real.
    for axis, s in enumerate(stride):
        if s > 1:
            work = _lowpass_subsample_axis(work, axis + 2, s, window, edge)
    return work.to(x.dtype).contiguous()


def _fourier_pool_nd(
    x: Tensor, ndim: int, stride: IntOrTuple, window: str | None, name: str
) -> Tensor:
    strides = check_tuple(stride, ndim, "stride")
    check_window(window)
    check_input(x, ndim, None, name)
    check_size(x, [1] * ndim, name, "an empty axis has no spectrum")
    return _fourier_pool(x, strides, window)


def fourier_pool1d(input: Tensor, stride: IntOrTuple = 2, window: str | None = None) -> Tensor:
    """Ideal low-pass then subsample a 1D signal (FLC; ASAP with ``window="hamming"``).

    See :class:`FourierPool1d`.

    Shape:
        - Input: ``(N, C, L)``; Output: ``(N, C, ceil(L / stride))``.

    Example:
        >>> fourier_pool1d(torch.tensor([[[0.0, 0.0, 4.0, 0.0]]]))
        tensor([[[0., 2.]]])
    """
    return _fourier_pool_nd(input, 1, stride, window, "fourier_pool1d")


def fourier_pool2d(input: Tensor, stride: IntOrTuple = 2, window: str | None = None) -> Tensor:
    """Ideal low-pass then subsample a 2D map (FLC, Grabinski et al. ECCV 2022; ASAP with a window).

    See :class:`FourierPool2d`.

    Shape:
        - Input: ``(N, C, H, W)``; Output: ``(N, C, ceil(H / stride), ceil(W / stride))``.

    Example:
        >>> fourier_pool2d(torch.ones(1, 3, 7, 8), window="hamming").shape
        torch.Size([1, 3, 4, 4])
    """
    return _fourier_pool_nd(input, 2, stride, window, "fourier_pool2d")


def fourier_pool3d(input: Tensor, stride: IntOrTuple = 2, window: str | None = None) -> Tensor:
    """Ideal low-pass then subsample a 3D volume (FLC; ASAP with ``window="hamming"``).

    See :class:`FourierPool3d`.

    Shape:
        - Input: ``(N, C, D, H, W)``; Output: ``(N, C, ceil(D / s), ceil(H / s), ceil(W / s))``.

    Example:
        >>> fourier_pool3d(torch.ones(1, 2, 5, 6, 7), stride=(1, 2, 3)).shape
        torch.Size([1, 2, 5, 3, 3])
    """
    return _fourier_pool_nd(input, 3, stride, window, "fourier_pool3d")


class _FourierPoolNd(nn.Module):
    _ndim: ClassVar[int]

    def __init__(
        self, channels: int | None = None, stride: IntOrTuple = 2, window: str | None = None
    ) -> None:
        super().__init__()
        self.channels = check_channels(channels)
        self.stride = check_tuple(stride, self._ndim, "stride")
        self.window = check_window(window)

    def forward(self, input: Tensor) -> Tensor:
        check_input(input, self._ndim, self.channels, type(self).__name__)
        check_size(input, [1] * self._ndim, type(self).__name__, "an empty axis has no spectrum")
        return _fourier_pool(input, self.stride, self.window)

    def extra_repr(self) -> str:
        stride = compact(self.stride)
        return f"channels={self.channels}, stride={stride}, window={self.window!r}"


class FourierPool1d(_FourierPoolNd):
    """Ideal Fourier low-pass then subsample a 1D signal (FLC / ASAP); see :class:`FourierPool2d`.

    Shape:
        - Input: ``(N, C, L)``; Output: ``(N, C, ceil(L / stride))``.

    Example:
        >>> FourierPool1d(4)(torch.randn(2, 4, 9)).shape
        torch.Size([2, 4, 5])
    """

    _ndim = 1


class FourierPool2d(_FourierPoolNd):
    """Ideal Fourier low-pass then subsample (FLC pooling, Grabinski et al. ECCV 2022; ASAP, 2023).

    Keeps the central ``1 / stride`` of the spectrum per axis and transforms back at the output size:
    the sampling theorem's anti-aliasing filter, with no parameters and no aliasing. With
    ``window="hamming"`` the kept band is tapered by a Hamming window (ASAP, arXiv 2307.09804), which
    damps the ringing (sinc side lobes) of the brick-wall cut-off.

    Args:
        channels: the expected number of channels (checked on input), or ``None``.
        stride: subsampling factor, an int or one per axis (1 leaves an axis untouched).
        window: ``None`` (FLC) or ``"hamming"`` (ASAP).

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: ``(N, C, ceil(H / stride), ceil(W / stride))`` for even and odd sizes.

    Convention:
        Circular: the map is one period of a periodic signal (no ``pad_mode``). The output is
        ``lowpass(x)[::stride]`` with a real, even response of DC gain 1; see
        :mod:`antialias.layers.fourier` for the band edge and the differences from the authors' code.

    Example:
        >>> pool = FourierPool2d(64, window="hamming")
        >>> pool
        FourierPool2d(channels=64, stride=2, window='hamming')
        >>> pool(torch.ones(1, 64, 7, 8)).shape
        torch.Size([1, 64, 4, 4])
    """

    _ndim = 2


class FourierPool3d(_FourierPoolNd):
    """Ideal Fourier low-pass then subsample a 3D volume (FLC / ASAP); see :class:`FourierPool2d`.

    Shape:
        - Input: ``(N, C, D, H, W)``; Output: ``(N, C, ceil(D / s), ceil(H / s), ceil(W / s))``.

    Example:
        >>> FourierPool3d(2, stride=3)(torch.randn(1, 2, 5, 6, 7)).shape
        torch.Size([1, 2, 2, 2, 3])
    """

    _ndim = 3


FOURIER_POOL = {1: FourierPool1d, 2: FourierPool2d, 3: FourierPool3d}


# ----------------------------------------------------------------------------------------------------
# Factory registration: create_downsample("flc" | "asap", ...)


def _fourier_factory(window: str | None) -> Any:
    def factory(
        ndim: int,
        channels: int | None,
        stride: IntOrTuple,
        *,
        filter_size: FilterSpec = 4,
        pad_mode: str = "reflect",
        **kwargs: Any,
    ) -> nn.Module:
        # The filter is the ideal low-pass and the transform is circular: filter_size and pad_mode (which
        # every caller passes, with their defaults) have no meaning here and are ignored.
        if kwargs:
            raise TypeError(
                f"the {'asap' if window else 'flc'!r} downsample method takes no options, got {sorted(kwargs)}"
            )
        return FOURIER_POOL[ndim](channels, stride, window)

    return factory


register_downsample("flc", _fourier_factory(None))
register_downsample("asap", _fourier_factory("hamming"))
