"""Anti-aliased upsampling (zero insertion, then a low-pass filter with gain ``scale_factor``), 1D
to 3D: the counterpart of blur-pool for decoders.
"""

from __future__ import annotations

import torch  # noqa: F401  (the examples use it)
from torch import Tensor

from antialias.filters import FilterSpec
from antialias.layers._checks import IntOrTuple, check_tuple, check_upsample_taps, compact
from antialias.layers.blurpool import _BlurBase
from antialias.layers.functional import _blur_upsample

__all__ = ["BlurUpsample1d", "BlurUpsample2d", "BlurUpsample3d"]


class _BlurUpsampleNd(_BlurBase):
    def __init__(
        self,
        channels: int | None = None,
        *,
        scale_factor: IntOrTuple = 2,
        filter_size: FilterSpec | None = None,
        pad_mode: str = "replicate",
    ) -> None:
        super().__init__(channels, filter_size, pad_mode)
        self.scale_factor = list(check_tuple(scale_factor, self.dims, "scale_factor"))
        self.axis_taps = check_upsample_taps(filter_size, self.scale_factor, self._name)

    def forward(self, input: Tensor) -> Tensor:
        args = (self.axis_taps, self.scale_factor, self.pad_mode, self._name, self.channels)
        return _blur_upsample(input, *args)

    def extra_repr(self) -> str:
        factor = compact(self.scale_factor)
        return f"{self._filter_repr()}, scale_factor={factor}, pad_mode={self.pad_mode!r}"


class BlurUpsample1d(_BlurUpsampleNd):
    """Anti-aliased upsampling of 1D signals; see :class:`BlurUpsample2d`.

    Shape:
        ``(N, C, L)`` -> ``(N, C, L * scale_factor)``.

    Example:
        >>> BlurUpsample1d()(torch.tensor([[[0.0, 4.0]]]))
        tensor([[[0., 1., 3., 4.]]])
    """

    dims = 1


class BlurUpsample2d(_BlurUpsampleNd):
    """Anti-aliased upsampling for decoders: insert ``scale_factor - 1`` zeros, then blur with gain
    ``scale_factor`` per axis.

    A constant map stays constant for filters whose polyphase parts each sum to ``1 /
    scale_factor`` (binomial ``k >= 2`` at factor 2, box of size ``scale_factor``); other filters
    are refused with ``ValueError``. The default filter is linear interpolation at each axis's
    factor, so with the default ``"replicate"`` padding the layer equals ``F.interpolate(
    mode="bilinear", align_corners=False)`` at every factor; at factor 2 that filter is the
    binomial ``k = 4``.

    Args:
        channels: number of input channels; ``None`` accepts any.
        scale_factor: upsampling factor, an int or ``(f_h, f_w)``.
        filter_size: the interpolation filter: ``None`` (default) for linear interpolation
            matched to each axis's factor, or an int ``k``, family string or taps used on every
            axis and matched to every factor.
        pad_mode: padding of the (low-resolution) input at the borders; ``"replicate"`` by default.

    Shape:
        - Input: ``(N, C, H, W)``; Output: ``(N, C, H * f_h, W * f_w)``.

    Example:
        >>> up = BlurUpsample2d(filter_size=4)
        >>> up(torch.ones(1, 3, 5, 6)).shape
        torch.Size([1, 3, 10, 12])
    """


class BlurUpsample3d(_BlurUpsampleNd):
    """Anti-aliased upsampling of volumes; see :class:`BlurUpsample2d`.

    Shape:
        ``(N, C, D, H, W)`` -> ``(N, C, D * f_d, H * f_h, W * f_w)``.

    Example:
        >>> BlurUpsample3d()(torch.ones(1, 1, 2, 3, 4)).shape
        torch.Size([1, 1, 4, 6, 8])
    """

    dims = 3
