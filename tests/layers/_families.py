"""The layer families by number of spatial axes, and input shapes, shared by the layer tests."""

from antialias.layers import (
    ApsDown1d,
    ApsDown2d,
    ApsDown3d,
    BlurConv1d,
    BlurConv2d,
    BlurConv3d,
    BlurPool1d,
    BlurPool2d,
    BlurPool3d,
    BlurUpsample1d,
    BlurUpsample2d,
    BlurUpsample3d,
    LpsDown1d,
    LpsDown2d,
    LpsDown3d,
    MaxBlurPool1d,
    MaxBlurPool2d,
    MaxBlurPool3d,
    PolyphaseUp1d,
    PolyphaseUp2d,
    PolyphaseUp3d,
)

NDIMS = (1, 2, 3)
BLUR_POOL = {1: BlurPool1d, 2: BlurPool2d, 3: BlurPool3d}
MAX_BLUR_POOL = {1: MaxBlurPool1d, 2: MaxBlurPool2d, 3: MaxBlurPool3d}
BLUR_CONV = {1: BlurConv1d, 2: BlurConv2d, 3: BlurConv3d}
UPSAMPLE = {1: BlurUpsample1d, 2: BlurUpsample2d, 3: BlurUpsample3d}
APS = {1: ApsDown1d, 2: ApsDown2d, 3: ApsDown3d}
LPS = {1: LpsDown1d, 2: LpsDown2d, 3: LpsDown3d}
UP = {1: PolyphaseUp1d, 2: PolyphaseUp2d, 3: PolyphaseUp3d}


def nd_shape(n, c, ndim, size=6):
    """``(n, c, size, size + 1, ...)``: odd and even axes."""
    return (n, c) + tuple(size + i for i in range(ndim))


def ceil_div(size, stride=2):
    return -(-size // stride)
