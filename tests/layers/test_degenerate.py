"""Degenerate inputs of every layer (issue 13, item 17): empty batch or channel axes, axes too short for
the operation, NaN through polyphase sampling, and constant maps through upsampling at any factor."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

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
    aps_down2d,
    blur_pool2d,
    blur_upsample1d,
    blur_upsample2d,
    lps_down2d,
    max_blur_pool2d,
    polyphase_up2d,
)

NDIMS = (1, 2, 3)
BLUR_POOL = {1: BlurPool1d, 2: BlurPool2d, 3: BlurPool3d}
MAX_BLUR_POOL = {1: MaxBlurPool1d, 2: MaxBlurPool2d, 3: MaxBlurPool3d}
BLUR_CONV = {1: BlurConv1d, 2: BlurConv2d, 3: BlurConv3d}
UPSAMPLE = {1: BlurUpsample1d, 2: BlurUpsample2d, 3: BlurUpsample3d}
APS = {1: ApsDown1d, 2: ApsDown2d, 3: ApsDown3d}
LPS = {1: LpsDown1d, 2: LpsDown2d, 3: LpsDown3d}
UP = {1: PolyphaseUp1d, 2: PolyphaseUp2d, 3: PolyphaseUp3d}


def _shape(n, c, ndim, size=6):
    return (n, c) + tuple(size + i for i in range(ndim))  # 6, 7, 8: odd and even axes


def _down(size, stride=2):
    return -(-size // stride)


# ------------------------------------------------------------------------------------------------
# Empty batch or channel axis: an empty output of the right shape, from every layer


@pytest.mark.parametrize("ndim", NDIMS)
@pytest.mark.parametrize(("n", "c"), [(0, 3), (2, 0), (0, 0)])
def test_empty_batch_or_channels(ndim, n, c):
    x = torch.randn(_shape(n, c, ndim))
    spatial = x.shape[2:]
    down = tuple(_down(s) for s in spatial)
    for pad_mode in ("reflect", "replicate", "zeros", "circular"):
        out = BLUR_POOL[ndim](filter_size=4, pad_mode=pad_mode)(x)
        assert out.shape == (n, c) + down, pad_mode
    assert MAX_BLUR_POOL[ndim](2, 2)(x).shape == (n, c) + tuple(_down(s - 1) for s in spatial)
    assert MAX_BLUR_POOL[ndim](3, 2, 1)(x).shape == (n, c) + down
    assert UPSAMPLE[ndim]()(x).shape == (n, c) + tuple(2 * s for s in spatial)
    assert UPSAMPLE[ndim](scale_factor=3)(x).shape == (n, c) + tuple(3 * s for s in spatial)
    y, phase = APS[ndim](return_phase=True)(x)
    assert y.shape == (n, c) + down and phase.shape == (n,) and phase.dtype == torch.int64
    up = UP[ndim]()(y, phase)
    assert up.shape == (n, c) + tuple(2 * s for s in down)
    # every output is finite (zeros), never uninitialized memory
    for out in (BLUR_POOL[ndim]()(x), UPSAMPLE[ndim]()(x), y, up):
        assert out.numel() == 0 or bool(torch.isfinite(out).all())


@pytest.mark.parametrize("ndim", NDIMS)
def test_empty_batch_lps_and_blur_conv(ndim):
    x = torch.randn(_shape(0, 3, ndim))
    down = tuple(_down(s) for s in x.shape[2:])
    for training in (False, True):
        lps = LPS[ndim](3, return_phase=True).train(training)
        y, phase = lps(x)
        assert y.shape == (0, 3) + down
        assert phase.shape == ((0, 2**ndim) if training else (0,))
    conv = BLUR_CONV[ndim](3, 5, 3, padding=1)
    assert conv(x).shape == (0, 5) + down


def test_empty_output_is_attached_to_autograd():
    for layer in (BlurPool2d(), MaxBlurPool2d(), BlurUpsample2d(scale_factor=(2, 3))):
        x = torch.randn(0, 4, 8, 8).to(memory_format=torch.channels_last).requires_grad_()
        out = layer(x)
        assert out.requires_grad
        out.sum().backward()
        assert x.grad is not None and x.grad.shape == x.shape


def test_empty_inputs_of_the_functionals():
    x = torch.randn(2, 0, 5, 4)
    assert blur_pool2d(x, stride=2).shape == (2, 0, 3, 2)
    assert max_blur_pool2d(x, 2).shape == (2, 0, 2, 2)
    assert blur_upsample2d(x, scale_factor=(1, 3)).shape == (2, 0, 5, 12)
    assert aps_down2d(x).shape == (2, 0, 3, 2)
    assert polyphase_up2d(torch.randn(0, 3, 2, 2), torch.zeros(0, dtype=torch.int64)).shape == (0, 3, 4, 4)


def test_empty_batch_under_torchscript():
    scripted = torch.jit.script(MaxBlurPool2d(2, 2))
    assert scripted(torch.randn(2, 0, 6, 6)).shape == (2, 0, 3, 3)
    with pytest.raises(Exception, match=r"of size >= 2"):
        scripted(torch.randn(2, 3, 1, 1))


# ------------------------------------------------------------------------------------------------
# Axes too short: a clear error naming the shape and the minimum


@pytest.mark.parametrize("ndim", NDIMS)
@pytest.mark.parametrize("pad_mode", ["reflect", "replicate", "zeros", "circular"])
def test_empty_spatial_axis_is_refused(ndim, pad_mode):
    shape = list(_shape(2, 3, ndim))
    shape[-1] = 0
    x = torch.randn(shape)
    axis = ndim - 1
    layers = [
        BLUR_POOL[ndim](pad_mode=pad_mode),
        BLUR_POOL[ndim](pad_mode=pad_mode, pad_off=1),
        UPSAMPLE[ndim](pad_mode=pad_mode),
        APS[ndim](pad_mode=pad_mode),
        LPS[ndim](3, pad_mode=pad_mode).eval(),
    ]
    for layer in layers:
        name = type(layer).__name__
        with pytest.raises(ValueError, match=rf"{name} needs spatial axis {axis} of size >= 1 \(.*\), got an input of shape \{shape}"):
            layer(x)
    with pytest.raises(ValueError, match=r"PolyphaseUp\dd needs spatial axis"):
        UP[ndim]()(x, torch.zeros(2, dtype=torch.int64))


def test_empty_spatial_axis_in_the_functionals():
    x = torch.randn(1, 2, 0, 4)
    with pytest.raises(ValueError, match=r"blur_pool2d needs spatial axis 0 of size >= 1"):
        blur_pool2d(x, pad_mode="circular")
    with pytest.raises(ValueError, match=r"blur_upsample1d needs spatial axis 0 of size >= 1"):
        blur_upsample1d(torch.randn(1, 2, 0))
    with pytest.raises(ValueError, match=r"aps_down2d needs spatial axis 0"):
        aps_down2d(x)
    with pytest.raises(ValueError, match=r"lps_down2d needs spatial axis 0"):
        lps_down2d(x, lambda c: c.flatten(1).sum(1))


@pytest.mark.parametrize("ndim", NDIMS)
def test_max_blur_pool_map_smaller_than_its_window(ndim):
    with pytest.raises(ValueError, match=r"MaxBlurPool\dd needs spatial axis 0 of size >= 2 \(kernel_size - 2 \* padding.*\), got an input of shape \[2, 3, 1"):
        MAX_BLUR_POOL[ndim]()(torch.randn((2, 3) + (1,) * ndim))
    x = torch.randn((2, 3) + (8,) * ndim)
    with pytest.raises(ValueError, match=r"needs spatial axis 0 of size >= 10 .*got an input of shape \[2, 3, 8"):
        MAX_BLUR_POOL[ndim](kernel_size=10)(x)
    # padding lowers the minimum: kernel 10 with padding 1 still needs 8 samples, and 8 is enough
    assert MAX_BLUR_POOL[ndim](kernel_size=10, stride=2, padding=1)(x).shape == (2, 3) + (1,) * ndim
    # the smallest map that works: exactly the window
    assert MAX_BLUR_POOL[ndim](3, 2)(torch.randn((1, 1) + (3,) * ndim)).shape == (1, 1) + (1,) * ndim
    with pytest.raises(ValueError, match=r"max_blur_pool2d needs spatial axis 1 of size >= 3"):
        max_blur_pool2d(torch.randn(1, 1, 5, 2), 3)


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "replicate", "circular"])
def test_blur_conv_minimum_input_is_exact(padding_mode):
    """The error names the smallest input that works; every input from there on works (no hidden holes)."""
    for k, stride, padding, dilation in itertools.product((1, 2, 3, 5), (1, 2, 3), (0, 1, 2, "same"), (1, 2)):
        if isinstance(padding, int) and padding_mode != "zeros" and padding == 0:
            continue
        conv = BlurConv1d(1, 2, k, stride, padding, dilation, padding_mode=padding_mode)
        works = []
        for length in range(1, 30):
            try:
                assert conv(torch.randn(1, 1, length)).shape[:2] == (1, 2)
                works.append(length)
            except ValueError as error:
                assert "needs spatial axis 0 of size >= " in str(error) and "got an input of shape [1, 1, " in str(error)
        assert works and works == list(range(works[0], 30)), (k, stride, padding, dilation)
        with pytest.raises(ValueError, match=rf"BlurConv1d needs spatial axis 0 of size >= {works[0]} "):
            conv(torch.randn(1, 1, works[0] - 1)) if works[0] > 1 else conv(torch.randn(1, 1, 0))
    with pytest.raises(ValueError, match=r"BlurConv2d needs spatial axis 0 of size >= 5 .*shape \[1, 3, 4, 4\]"):
        BlurConv2d(3, 4, 3)(torch.randn(1, 3, 4, 4))


def test_blur_conv_minimum_follows_a_later_padding_mode_change():
    """convert(conv_padding_mode="circular") sets padding_mode on built layers: the minimum follows it."""
    conv = BlurConv1d(1, 1, 7, 2, 3)
    assert conv(torch.randn(1, 1, 1)).shape == (1, 1, 1)  # zeros padding: one sample is enough
    conv.padding_mode = "reflect"
    with pytest.raises(ValueError, match=r"BlurConv1d needs spatial axis 0 of size >= 7 "):
        conv(torch.randn(1, 1, 6))
    assert conv(torch.randn(1, 1, 7)).shape == (1, 1, 4)
    # and a stride moved from the blur back to the convolution (convert's kernel == stride convolutions)
    conv = BlurConv2d(1, 1, 2, 2)
    with pytest.raises(ValueError, match=r"needs spatial axis 0 of size >= 3 "):
        conv(torch.randn(1, 1, 2, 2))
    conv.blur.stride, conv.stride = [1, 1], (2, 2)
    assert conv(torch.randn(1, 1, 2, 2)).shape == (1, 1, 1, 1)


def test_one_sample_axes_work_in_every_pad_mode():
    """The minimum of a blur-pool is one sample, also where the padding is wider than the axis."""
    x = torch.randn(2, 3, 1, 1)
    for pad_mode, k in itertools.product(("reflect", "replicate", "zeros", "circular"), range(1, 8)):
        out = BlurPool2d(filter_size=k, pad_mode=pad_mode)(x)
        assert out.shape == (2, 3, 1, 1)
        if pad_mode != "zeros":  # a constant extension keeps the one value
            torch.testing.assert_close(out, x)


# ------------------------------------------------------------------------------------------------
# NaN reaches the output of APS and LPS (the phase choice does not step around it)


@pytest.mark.parametrize("ndim", NDIMS)
@pytest.mark.parametrize("filter_size", [1, 3])
def test_nan_propagates_through_aps(generator, ndim, filter_size):
    x = torch.randn(_shape(3, 2, ndim, size=4), generator=generator)
    for index in itertools.product(*(range(s) for s in x.shape[2:])):  # every phase of the NaN
        bad = x.clone()
        bad[(1, 1) + index] = float("nan")
        y, phase = APS[ndim](filter_size=filter_size, return_phase=True)(bad)
        assert torch.isnan(y[1]).any(), index
        # the other samples of the batch are untouched
        clean, clean_phase = APS[ndim](filter_size=filter_size, return_phase=True)(x)
        assert torch.equal(y[[0, 2]], clean[[0, 2]]) and torch.equal(phase[[0, 2]], clean_phase[[0, 2]])


@pytest.mark.parametrize("ndim", NDIMS)
def test_nan_propagates_through_lps(generator, ndim):
    torch.manual_seed(0)
    x = torch.randn(_shape(2, 3, ndim, size=4), generator=generator)
    lps = LPS[ndim](3)
    for index in itertools.product(*(range(2) for _ in range(ndim))):  # one NaN in each phase
        bad = x.clone()
        bad[(0, 0) + index] = float("nan")
        assert torch.isnan(lps.eval()(bad)[0]).any(), index
        assert torch.isnan(lps.train()(bad)[0]).any(), index
        assert not torch.isnan(lps.eval()(bad)[1]).any()


def test_nan_wins_over_infinity():
    x = torch.tensor([[[float("inf"), float("nan"), 1.0, 2.0]]])
    y, phase = ApsDown1d(return_phase=True)(x)
    assert phase.tolist() == [1] and torch.isnan(y).any()
    # two NaN components: the lowest phase, as for ties
    x = torch.tensor([[[float("nan"), float("nan"), 1.0, 2.0]]])
    assert ApsDown1d(return_phase=True)(x)[1].tolist() == [0]


# ------------------------------------------------------------------------------------------------
# Upsampling keeps a constant map constant at every factor


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


@pytest.mark.parametrize(("filter_size", "factor"), [(4, 3), (3, 4), (1, 2), (5, 3), ("gaussian-5", 2), ("box-2", 3)])
def test_unmatched_upsampling_filters_are_refused(filter_size, factor):
    taps_sums = r"polyphase parts sum to \[.*\], each must be 1/" + str(factor)
    with pytest.raises(ValueError, match=rf"BlurUpsample2d: filter_size=.* at scale factor {factor}: its {factor} {taps_sums}"):
        BlurUpsample2d(filter_size=filter_size, scale_factor=factor)
    with pytest.raises(ValueError, match=rf"blur_upsample2d: .* at scale factor {factor}"):
        blur_upsample2d(torch.ones(1, 1, 3, 3), filter_size=filter_size, scale_factor=factor)
    with pytest.raises(ValueError, match=r"scale factor 3"):
        BlurUpsample2d(filter_size=4, scale_factor=(2, 3))  # matched to 2, not to 3


@pytest.mark.parametrize(("filter_size", "factor"), [(2, 2), (4, 2), (7, 2), ("box-3", 3), ("triangle-5", 3), ("box-4", 4)])
def test_matched_upsampling_filters_are_accepted(filter_size, factor):
    out = BlurUpsample1d(filter_size=filter_size, scale_factor=factor)(torch.full((1, 1, 6), 2.0))
    torch.testing.assert_close(out, torch.full_like(out, 2.0))


def test_polyphase_up_interpolation_keeps_constants_or_is_refused():
    phase = torch.tensor([3])
    out = PolyphaseUp2d(filter_size="triangle-3")(torch.ones(1, 1, 3, 3), phase)
    torch.testing.assert_close(out, torch.ones_like(out))
    out = PolyphaseUp2d(stride=3, filter_size="triangle-5")(torch.ones(1, 1, 3, 3), phase)
    torch.testing.assert_close(out, torch.ones_like(out))
    with pytest.raises(ValueError, match=r"PolyphaseUp2d: filter_size='triangle-3' does not keep a constant map constant at scale factor 3"):
        PolyphaseUp2d(stride=3, filter_size="triangle-3")
    with pytest.raises(ValueError, match=r"polyphase_up2d: .* at scale factor 3"):
        polyphase_up2d(torch.ones(1, 1, 2, 2), phase, stride=3, filter_size=3)
    # placement alone (filter 1, the default) is the inverse of the down layer, zeros elsewhere
    assert PolyphaseUp2d()(torch.ones(1, 1, 2, 2), phase).sum() == 4


def test_constants_stay_constant_through_blur_pool_on_tiny_maps():
    for size, k in itertools.product((1, 2, 3), range(1, 8)):
        x = torch.full((1, 2, size, size + 1), 5.0)
        for pad_mode in ("reflect", "replicate", "circular"):
            out = BlurPool2d(filter_size=k, pad_mode=pad_mode)(x)
            assert out.shape[2:] == (math.ceil(size / 2), math.ceil((size + 1) / 2))
            torch.testing.assert_close(out, torch.full_like(out, 5.0))
