"""BlurUpsample1d/2d/3d (upsample.py): bilinear equality, gain, shift, constants at any factor,
matched filters."""

import itertools

import pytest
import torch
import torch.nn.functional as F
from _families import NDIMS, UPSAMPLE

from antialias.layers import (
    BlurPool2d,
    BlurUpsample1d,
    BlurUpsample2d,
    BlurUpsample3d,
    blur_upsample2d,
)


def test_upsample_k4_is_bilinear(generator):
    x = torch.randn(2, 3, 7, 10, generator=generator)
    expected = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(BlurUpsample2d(filter_size=4)(x), expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_upsample_shape_gain_and_shift(generator, ndim):
    dims = tuple(range(2, 2 + ndim))
    for k, factor in itertools.product(range(1, 8), (2, 3)):
        up = UPSAMPLE[ndim](
            filter_size="box-3" if factor == 3 else max(k, 2),
            scale_factor=factor,
            pad_mode="circular",
        )
        x = torch.randn((1, 2) + (5,) * ndim, generator=generator)
        out = up(x)
        assert out.shape[2:] == (5 * factor,) * ndim
        # matching gain: a constant map stays constant
        torch.testing.assert_close(up(torch.ones_like(x)), torch.ones_like(out))
        # one input sample of shift = `factor` output samples of shift
        torch.testing.assert_close(
            up(torch.roll(x, (1,) * ndim, dims)),
            torch.roll(out, (factor,) * ndim, dims),
            atol=1e-6,
            rtol=0,
        )


def test_upsample_then_blur_pool_is_smooth_round_trip(generator):
    x = torch.randn(1, 2, 16, 16, generator=generator)
    round_trip = BlurPool2d(filter_size=4, pad_mode="replicate")(BlurUpsample2d(filter_size=4)(x))
    assert round_trip.shape == x.shape
    assert (round_trip - x).abs().mean() < x.abs().mean()


@pytest.mark.parametrize("ndim", NDIMS)
@pytest.mark.parametrize("factor", [2, 3, 4, 5, 8])
def test_upsampling_keeps_constants_at_any_factor(ndim, factor):
    x = torch.full((1, 2) + (5,) * ndim, 3.0)
    for pad_mode in ("replicate", "reflect", "circular"):
        out = UPSAMPLE[ndim](scale_factor=factor, pad_mode=pad_mode)(x)
        assert out.shape[2:] == (5 * factor,) * ndim
        torch.testing.assert_close(out, torch.full_like(out, 3.0))


def test_default_upsampling_is_linear_interpolation_at_every_factor(generator):
    x = torch.randn(2, 3, 7, 6, generator=generator, dtype=torch.float64)
    for factor in (2, 3, 4, 5):
        expected = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
        torch.testing.assert_close(BlurUpsample2d(scale_factor=factor)(x), expected)
    # one factor per axis: each axis gets its own filter (an axis of factor 1 is left alone)
    expected = F.interpolate(x, scale_factor=(1, 3), mode="bilinear", align_corners=False)
    torch.testing.assert_close(BlurUpsample2d(scale_factor=(1, 3))(x), expected)
    expected = F.interpolate(x, scale_factor=(2, 3), mode="bilinear", align_corners=False)
    torch.testing.assert_close(BlurUpsample2d(scale_factor=(2, 3))(x), expected)
    torch.testing.assert_close(blur_upsample2d(x, scale_factor=(2, 3)), expected)
    v = torch.randn(1, 2, 3, 4, 5, generator=generator, dtype=torch.float64)
    expected = F.interpolate(v, scale_factor=(1, 2, 4), mode="trilinear", align_corners=False)
    torch.testing.assert_close(BlurUpsample3d(scale_factor=(1, 2, 4))(v), expected)


@pytest.mark.parametrize(
    ("filter_size", "factor"), [(4, 3), (3, 4), (1, 2), (5, 3), ("gaussian-5", 2), ("box-2", 3)]
)
def test_unmatched_upsampling_filters_are_refused(filter_size, factor):
    taps_sums = r"polyphase parts sum to \[.*\], each must be 1/" + str(factor)
    with pytest.raises(
        ValueError,
        match=rf"BlurUpsample2d: filter_size=.* at scale factor {factor}: its {factor} {taps_sums}",
    ):
        BlurUpsample2d(filter_size=filter_size, scale_factor=factor)
    with pytest.raises(ValueError, match=rf"blur_upsample2d: .* at scale factor {factor}"):
        blur_upsample2d(torch.ones(1, 1, 3, 3), filter_size=filter_size, scale_factor=factor)
    with pytest.raises(ValueError, match=r"scale factor 3"):
        BlurUpsample2d(filter_size=4, scale_factor=(2, 3))  # matched to 2, not to 3


@pytest.mark.parametrize(
    ("filter_size", "factor"),
    [(2, 2), (4, 2), (7, 2), ("box-3", 3), ("triangle-5", 3), ("box-4", 4)],
)
def test_matched_upsampling_filters_are_accepted(filter_size, factor):
    out = BlurUpsample1d(filter_size=filter_size, scale_factor=factor)(torch.full((1, 1, 6), 2.0))
    torch.testing.assert_close(out, torch.full_like(out, 2.0))
