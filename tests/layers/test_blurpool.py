"""The blur-pool layer family: exactness against the reference, semantics, edge inputs, errors, export."""

import itertools
import math

import antialiased_cnns
import pytest
import torch
import torch.nn.functional as F

from antialias.filters import get_kernel
from antialias.layers import (
    BlurConv1d,
    BlurConv2d,
    BlurConv3d,
    BlurPool1d,
    BlurPool2d,
    BlurPool3d,
    BlurUpsample1d,
    BlurUpsample2d,
    BlurUpsample3d,
    MaxBlurPool1d,
    MaxBlurPool2d,
    MaxBlurPool3d,
    blur_pool1d,
    blur_pool2d,
    blur_pool3d,
    blur_upsample2d,
    max_blur_pool2d,
)

BLUR_POOLS = {1: BlurPool1d, 2: BlurPool2d, 3: BlurPool3d}
MAX_BLUR_POOLS = {1: MaxBlurPool1d, 2: MaxBlurPool2d, 3: MaxBlurPool3d}
UPSAMPLES = {1: BlurUpsample1d, 2: BlurUpsample2d, 3: BlurUpsample3d}
REFERENCE_PAD = {"reflect": "reflect", "replicate": "replicate", "zeros": "zero"}


def _input(gen, ndim, size, channels=3, batch=2, dtype=torch.float32):
    shape = (batch, channels) + tuple(size + i for i in range(ndim))  # non-square: H, W+1, ...
    return torch.randn(shape, generator=gen, dtype=dtype)


# ------------------------------------------------------------------------------------------------
# Exactness against the installed reference package (the whole grid of the foundation issue)


@pytest.mark.parametrize("pad_mode", ["reflect", "replicate", "zeros"])
@pytest.mark.parametrize("filter_size", range(1, 8))
def test_equals_reference_blurpool(generator, filter_size, pad_mode):
    for ndim, stride, size, pad_off in itertools.product((1, 2), range(1, 5), (11, 12), (0, 1)):
        x = _input(generator, ndim, size)
        ref_cls = antialiased_cnns.BlurPool if ndim == 2 else antialiased_cnns.BlurPool1D
        ref = ref_cls(3, pad_type=REFERENCE_PAD[pad_mode], filt_size=filter_size, stride=stride, pad_off=pad_off)
        ours = BLUR_POOLS[ndim](3, stride=stride, filter_size=filter_size, pad_mode=pad_mode, pad_off=pad_off)
        expected, actual = ref(x), ours(x)
        assert actual.shape == expected.shape, (ndim, stride, size, pad_off)
        err = (actual - expected).abs().max().item()
        assert err <= 1e-6, f"ndim={ndim} stride={stride} size={size} pad_off={pad_off}: max abs error {err}"


@pytest.mark.parametrize("filter_size", [2, 3, 4, 5])
def test_max_blur_pool_equals_reference_composite(generator, filter_size):
    x = _input(generator, 2, 12, channels=4)
    ref = torch.nn.Sequential(torch.nn.MaxPool2d(2, stride=1), antialiased_cnns.BlurPool(4, filt_size=filter_size))
    ours = MaxBlurPool2d(2, channels=4, filter_size=filter_size)
    torch.testing.assert_close(ours(x), ref(x), atol=1e-6, rtol=0)
    torch.testing.assert_close(max_blur_pool2d(x, 2, filter_size=filter_size), ref(x), atol=1e-6, rtol=0)


@pytest.mark.parametrize("pad_mode", ["reflect", "replicate", "zeros", "circular"])
@pytest.mark.parametrize("filter_size", [1, 2, 3, 4, 5, 7])
def test_3d_equals_dense_conv(generator, filter_size, pad_mode):
    """3D has no reference: compare with a depthwise conv3d of the outer-product kernel in float64."""
    x = _input(generator, 3, 6, dtype=torch.float64)
    stride = (1, 2, 3)
    k = filter_size
    pad = [(k - 1) // 2, k // 2] * 3  # (left, right) per axis, the same on all three
    mode = {"zeros": "constant"}.get(pad_mode, pad_mode)
    padded = F.pad(x, pad, mode=mode)
    weight = get_kernel(k, 3, dtype=torch.float64).expand(3, 1, k, k, k)
    expected = F.conv3d(padded, weight, stride=stride, groups=3)
    torch.testing.assert_close(BlurPool3d(3, stride=stride, filter_size=k, pad_mode=pad_mode)(x), expected)


# ------------------------------------------------------------------------------------------------
# Semantics


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_output_size_is_ceil(ndim):
    for k, s, size in itertools.product(range(1, 8), range(1, 5), range(5, 10)):
        x = torch.zeros((1, 2) + (size,) * ndim)
        out = BLUR_POOLS[ndim](filter_size=k, stride=s)(x)
        assert out.shape[2:] == (math.ceil(size / s),) * ndim, (k, s, size)


@pytest.mark.parametrize("pad_mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_constant_stays_constant(ndim, pad_mode):
    x = torch.full((1, 2) + (9,) * ndim, 3.0)
    for k in range(1, 8):
        torch.testing.assert_close(BLUR_POOLS[ndim](filter_size=k, pad_mode=pad_mode)(x), torch.full_like(x[(...,) + (slice(None, None, 2),) * ndim], 3.0))


def test_zero_padding_darkens_border():
    out = BlurPool2d(filter_size=3, pad_mode="zeros")(torch.ones(1, 1, 8, 8))
    assert out[0, 0, 0, 0].item() == pytest.approx(0.5625)  # (3/4)^2, as kornia's constant map corner


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("stride", [2, 3])
def test_circular_shift_by_stride_shifts_output_by_one(generator, ndim, stride):
    dims = tuple(range(2, 2 + ndim))
    x = torch.randn((2, 3) + (4 * stride,) * ndim, generator=generator)
    for k in range(1, 8):
        pool = BLUR_POOLS[ndim](filter_size=k, stride=stride, pad_mode="circular")
        shifted = pool(torch.roll(x, (stride,) * ndim, dims))
        torch.testing.assert_close(shifted, torch.roll(pool(x), (1,) * ndim, dims), atol=1e-6, rtol=0)
        # and a shift that is not a multiple of the stride is *not* exactly reproduced for k = 1
    aliased = BLUR_POOLS[ndim](filter_size=1, stride=stride, pad_mode="circular")
    assert not torch.allclose(aliased(torch.roll(x, 1, dims[-1])), aliased(x))


def test_circular_padding_wider_than_the_map():
    x = torch.arange(2.0).reshape(1, 1, 2)
    # k = 7 pads 3 on each side of a 2-sample signal: the padding wraps around more than once.
    out = BlurPool1d(filter_size=7, stride=1, pad_mode="circular")(x)
    taps = torch.tensor([1, 6, 15, 20, 15, 6, 1], dtype=torch.float32) / 64
    wrapped = torch.tensor([1.0, 0, 1, 0, 1, 0, 1, 0])  # x[(i - 3) % 2] for i = 0..7
    expected = torch.stack([(wrapped[i : i + 7] * taps).sum() for i in range(2)])
    torch.testing.assert_close(out[0, 0], expected)


def test_module_equals_functional(generator):
    for ndim, fn in ((1, blur_pool1d), (2, blur_pool2d), (3, blur_pool3d)):
        x = _input(generator, ndim, 7)
        for spec in (3, "box-2", [1.0, 2.0, 1.0]):
            torch.testing.assert_close(BLUR_POOLS[ndim](filter_size=spec, stride=2)(x), fn(x, filter_size=spec, stride=2))


def test_filter_families_and_taps(generator):
    x = torch.randn(2, 3, 8, 10, generator=generator)
    torch.testing.assert_close(BlurPool2d(filter_size="box-2")(x), F.avg_pool2d(x, 2))  # Rect-2 == AvgPool(2, 2)
    torch.testing.assert_close(BlurPool2d(filter_size=[1, 3, 3, 1])(x), BlurPool2d(filter_size=4)(x))


def test_tuple_stride(generator):
    x = _input(generator, 2, 9)
    out = BlurPool2d(stride=(1, 3))(x)
    assert out.shape == (2, 3, 9, 4)


def test_layers_hold_no_state():
    """The filter is Python floats: no parameter, no buffer (persistent or not), so nothing to place."""
    for layer in (BlurPool2d(8, filter_size=5), MaxBlurPool2d(3, 2, 1), BlurUpsample2d(), BlurConv2d(8, 4, 3, padding=1).blur):
        assert dict(layer.state_dict()) == {} and list(layer.buffers()) == [] and list(layer.parameters()) == []
    pool = BlurPool2d(8, filter_size=5)
    assert len(pool.taps) == 5 and math.isclose(sum(pool.taps), 1.0)
    conv = BlurConv2d(8, 4, 3, padding=1)
    assert sorted(conv.state_dict()) == ["bias", "weight"]


def test_device_and_dtype_arguments():
    """Honoured where there are parameters (BlurConv), not accepted where there are none."""
    conv = BlurConv2d(4, 6, 3, padding=1, device="meta", dtype=torch.float64)
    assert conv.weight.device.type == "meta" and conv.weight.dtype == torch.float64
    for cls in (BlurPool2d, MaxBlurPool2d, BlurUpsample2d):
        with pytest.raises(TypeError, match="unexpected keyword argument 'dtype'"):
            cls(dtype=torch.float64)
    # the forward uses the input's dtype
    assert BlurPool2d(filter_size=3)(torch.zeros(1, 1, 4, 4, dtype=torch.float64)).dtype == torch.float64


# ------------------------------------------------------------------------------------------------
# Inputs the peers get wrong


@pytest.mark.parametrize("size", [1, 2, 3])
@pytest.mark.parametrize("filter_size", range(1, 8))
def test_tiny_maps_under_reflect_fall_back_to_replicate(generator, size, filter_size):
    x = torch.randn(2, 3, size, size + 5, generator=generator)  # short H, long W
    out = BlurPool2d(filter_size=filter_size)(x)
    assert out.shape == (2, 3, math.ceil(size / 2), math.ceil((size + 5) / 2))
    k = filter_size
    left, right = (k - 1) // 2, k // 2
    w_mode = "reflect" if right < size + 5 else "replicate"
    h_mode = "reflect" if right < size else "replicate"
    padded = F.pad(F.pad(x, [left, right, 0, 0], mode=w_mode), [0, 0, left, right], mode=h_mode)
    expected = F.conv2d(padded, get_kernel(k, 2).expand(3, 1, k, k), stride=2, groups=3)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)


def test_empty_batch():
    for ndim in (1, 2, 3):
        x = torch.zeros((0, 3) + (8,) * ndim)
        assert BLUR_POOLS[ndim](3)(x).shape == (0, 3) + (4,) * ndim
        assert MAX_BLUR_POOLS[ndim]()(x).shape == (0, 3) + (4,) * ndim
        assert UPSAMPLES[ndim]()(x).shape == (0, 3) + (16,) * ndim


def test_non_contiguous_input(generator):
    x = torch.randn(2, 12, 10, 3, generator=generator).permute(0, 3, 1, 2)  # (2, 3, 12, 10), odd strides
    assert not x.is_contiguous()
    torch.testing.assert_close(BlurPool2d()(x), BlurPool2d()(x.contiguous()))
    sliced = torch.randn(2, 3, 20, 20, generator=generator)[:, :, ::2, 1::2]
    torch.testing.assert_close(BlurPool2d()(sliced), BlurPool2d()(sliced.contiguous()))


@pytest.mark.parametrize("layer", [BlurPool2d(), MaxBlurPool2d(), BlurUpsample2d(), BlurConv2d(3, 5, 3, padding=1)])
def test_channels_last_is_kept(generator, layer):
    x = torch.randn(2, 3, 10, 11, generator=generator)
    out = layer(x.to(memory_format=torch.channels_last))
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, layer(x), atol=1e-6, rtol=0)
    x3 = torch.randn(1, 2, 4, 6, 6, generator=generator).to(memory_format=torch.channels_last_3d)
    assert BlurPool3d()(x3).is_contiguous(memory_format=torch.channels_last_3d)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_dtypes(generator, dtype):
    x = torch.randn(2, 3, 9, 8, generator=generator)
    expected = BlurPool2d(filter_size=5)(x)
    for layer in (BlurPool2d(filter_size=5), MaxBlurPool2d(filter_size=5), BlurUpsample2d(filter_size=5)):
        out = layer(x.to(dtype))
        assert out.dtype == dtype
    tol = {torch.float16: 2e-3, torch.bfloat16: 2e-2, torch.float64: 1e-6}[dtype]
    torch.testing.assert_close(BlurPool2d(filter_size=5)(x.to(dtype)).float(), expected, atol=tol, rtol=tol)


# ------------------------------------------------------------------------------------------------
# Bad input: options at construction, inputs at call


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"filter_size": 0}, ValueError, "filter_size must be >= 1, got 0"),
        ({"filter_size": []}, ValueError, "taps must not be empty"),
        ({"filter_size": [1, -2, 1]}, ValueError, "taps must be non-negative"),
        ({"stride": 0}, ValueError, "stride must be >= 1, got 0"),
        ({"stride": (2, 2, 2)}, ValueError, "stride must have 2 values"),
        ({"stride": 1.5}, TypeError, "stride must be an int"),
        ({"pad_mode": "mirror"}, ValueError, r"pad_mode must be one of \('reflect', 'replicate', 'zeros', 'circular'\), got 'mirror'"),
        ({"pad_off": -1}, ValueError, "pad_off must be >= 0, got -1"),
        ({"channels": 0}, ValueError, "channels must be None or an int >= 1, got 0"),
    ],
)
def test_bad_options_raise_at_construction(kwargs, error, match):
    with pytest.raises(error, match=match):
        BlurPool2d(**kwargs)
    with pytest.raises(error, match=match):
        MaxBlurPool2d(**kwargs)


def test_bad_max_pool_options():
    with pytest.raises(ValueError, match="kernel_size must be >= 1, got 0"):
        MaxBlurPool2d(kernel_size=0)
    with pytest.raises(ValueError, match="padding must be at most half of kernel_size"):
        MaxBlurPool2d(kernel_size=2, padding=2)
    with pytest.raises(ValueError, match="scale_factor must be >= 1, got 0"):
        BlurUpsample2d(scale_factor=0)


@pytest.mark.parametrize(
    ("x", "error", "match"),
    [
        (torch.zeros(3, 8, 8), ValueError, r"BlurPool2d expects a 4D input \(N, C, H, W\), got a 3D tensor of shape \[3, 8, 8\]"),
        (torch.zeros(1, 4, 8, 8), ValueError, r"BlurPool2d was built for 3 channels, got an input with 4 channels"),
        (torch.zeros(1, 3, 8, 8, dtype=torch.int64), TypeError, "expects a floating-point input, got dtype torch.int64"),
        (torch.zeros(1, 3, 8, 8, dtype=torch.complex64), TypeError, "got dtype torch.complex64"),
    ],
)
def test_bad_inputs_raise_at_call(x, error, match):
    with pytest.raises(error, match=match):
        BlurPool2d(channels=3)(x)


def test_functional_validates_too():
    with pytest.raises(ValueError, match="pad_mode must be one of"):
        blur_pool2d(torch.zeros(1, 1, 4, 4), pad_mode="bogus")
    with pytest.raises(ValueError, match=r"blur_pool1d expects a 3D input \(N, C, L\)"):
        blur_pool1d(torch.zeros(1, 4, 4, 4))
    with pytest.raises(ValueError, match="stride must be >= 1"):
        blur_pool2d(torch.zeros(1, 1, 4, 4), stride=-1)
    with pytest.raises(ValueError, match=r"scale_factor must be >= 1, got \(1, 0\)"):
        blur_upsample2d(torch.zeros(1, 1, 4, 4), scale_factor=(1, 0))


def test_pad_mode_aliases():
    assert BlurPool2d(pad_mode="zero").pad_mode == "zeros"  # the reference's name
    assert BlurPool2d(pad_mode="refl").pad_mode == "reflect"


# ------------------------------------------------------------------------------------------------
# repr


def test_extra_repr():
    assert repr(BlurPool2d(64, filter_size=3)) == "BlurPool2d(channels=64, filter_size=3, stride=2, pad_mode='reflect')"
    assert repr(BlurPool1d(None, filter_size="box-2", stride=3, pad_mode="circular", pad_off=1)) == (
        "BlurPool1d(channels=None, filter_size='box-2', stride=3, pad_mode='circular', pad_off=1)"
    )
    assert repr(BlurPool3d(stride=(1, 2, 2))) == "BlurPool3d(channels=None, filter_size=4, stride=(1, 2, 2), pad_mode='reflect')"
    assert repr(MaxBlurPool2d(3, 2, padding=1)) == (
        "MaxBlurPool2d(kernel_size=3, padding=1, channels=None, filter_size=4, stride=2, pad_mode='reflect')"
    )
    assert repr(BlurUpsample2d(8, filter_size=[1, 1])) == (
        "BlurUpsample2d(channels=8, filter_size=taps=[0.5, 0.5], scale_factor=2, pad_mode='replicate')"
    )
    assert repr(BlurUpsample2d()) == "BlurUpsample2d(channels=None, filter_size=None, scale_factor=2, pad_mode='replicate')"
    assert "(blur): BlurPool2d(channels=4, filter_size=4, stride=2" in repr(BlurConv2d(4, 8, 1))


# ------------------------------------------------------------------------------------------------
# Max-blur-pool, blurred convolution, upsampling


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_max_blur_pool_from_max_pool(generator, ndim):
    pool_cls = (torch.nn.MaxPool1d, torch.nn.MaxPool2d, torch.nn.MaxPool3d)[ndim - 1]
    pool = pool_cls(3, stride=2, padding=1)
    new = MAX_BLUR_POOLS[ndim].from_max_pool(pool, filter_size=1)
    x = torch.randn((2, 3) + (9,) * ndim, generator=generator)
    # with the trivial filter (k = 1) the max-blur-pool is the original max pool
    torch.testing.assert_close(new(x), pool(x))
    with pytest.raises(ValueError, match="ceil_mode"):
        MAX_BLUR_POOLS[ndim].from_max_pool(pool_cls(2, ceil_mode=True))


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_blur_conv_from_conv_shares_parameters(generator, ndim):
    conv_cls = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)[ndim - 1]
    blur_conv_cls = (BlurConv1d, BlurConv2d, BlurConv3d)[ndim - 1]
    conv = conv_cls(3, 5, 1, stride=2)
    new = blur_conv_cls.from_conv(conv, filter_size=1)
    assert new.weight is conv.weight and new.bias is conv.bias
    assert new.stride == (1,) * ndim
    x = torch.randn((2, 3) + (7,) * ndim, generator=generator)
    # k = 1 is plain subsampling, so the 1x1 strided conv is reproduced exactly
    torch.testing.assert_close(new(x), conv(x))
    with pytest.raises(TypeError, match="expects a plain"):
        blur_conv_cls.from_conv(torch.nn.Linear(2, 2))


def test_blur_conv_is_reference_placement(generator):
    """blur -> 1x1 conv (stride 1), the reference ResNet shortcut."""
    conv = torch.nn.Conv2d(4, 6, 1, stride=2, bias=False)
    ref = torch.nn.Sequential(antialiased_cnns.BlurPool(4, filt_size=4, stride=2), torch.nn.Conv2d(4, 6, 1, bias=False))
    ref[1].weight.data.copy_(conv.weight.data)
    x = torch.randn(2, 4, 14, 14, generator=generator)
    torch.testing.assert_close(BlurConv2d.from_conv(conv)(x), ref(x), atol=1e-6, rtol=0)


def test_upsample_k4_is_bilinear(generator):
    x = torch.randn(2, 3, 7, 10, generator=generator)
    expected = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(BlurUpsample2d(filter_size=4)(x), expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_upsample_shape_gain_and_shift(generator, ndim):
    dims = tuple(range(2, 2 + ndim))
    for k, factor in itertools.product(range(1, 8), (2, 3)):
        up = UPSAMPLES[ndim](filter_size="box-3" if factor == 3 else max(k, 2), scale_factor=factor, pad_mode="circular")
        x = torch.randn((1, 2) + (5,) * ndim, generator=generator)
        out = up(x)
        assert out.shape[2:] == (5 * factor,) * ndim
        # matching gain: a constant map stays constant
        torch.testing.assert_close(up(torch.ones_like(x)), torch.ones_like(out))
        # one input sample of shift = `factor` output samples of shift
        torch.testing.assert_close(up(torch.roll(x, (1,) * ndim, dims)), torch.roll(out, (factor,) * ndim, dims), atol=1e-6, rtol=0)


def test_upsample_then_blur_pool_is_smooth_round_trip(generator):
    x = torch.randn(1, 2, 16, 16, generator=generator)
    round_trip = BlurPool2d(filter_size=4, pad_mode="replicate")(BlurUpsample2d(filter_size=4)(x))
    assert round_trip.shape == x.shape
    assert (round_trip - x).abs().mean() < x.abs().mean()


# ------------------------------------------------------------------------------------------------
# autograd, TorchScript, torch.compile, ONNX


@pytest.mark.parametrize("layer", [BlurPool2d(filter_size=3), BlurPool1d(filter_size=4, pad_mode="circular"),
                                   MaxBlurPool2d(filter_size=4), BlurUpsample2d(filter_size=3), BlurPool3d(filter_size=2)])
def test_gradcheck(generator, layer):
    ndim = layer.dims
    x = torch.randn((1, 2) + (5,) * ndim, generator=generator, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,))


@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("layer", [BlurPool2d(3), MaxBlurPool1d(), BlurUpsample3d(), BlurConv2d(3, 4, 3, padding=1),
                                   BlurUpsample2d(scale_factor=(1, 3)), MaxBlurPool2d(3, 2, 1),
                                   BlurPool2d(filter_size=7, pad_mode="circular")])
def test_torchscript(generator, layer):
    ndim = layer.dims if hasattr(layer, "dims") else layer.blur.dims
    x = torch.randn((2, 3) + (6,) * ndim, generator=generator)
    scripted = torch.jit.script(layer)
    torch.testing.assert_close(scripted(x), layer(x))
    with pytest.raises(Exception, match="floating-point"):
        scripted(x.long())


@pytest.mark.slow
def test_compile_fullgraph(generator):
    layer = BlurPool2d(3, filter_size=4)
    x = torch.randn(2, 3, 12, 13, generator=generator)
    compiled = torch.compile(layer, fullgraph=True, backend="inductor")
    torch.testing.assert_close(compiled(x), layer(x), atol=1e-6, rtol=0)
    up = torch.compile(MaxBlurPool2d(filter_size=3), fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(up(x), MaxBlurPool2d(filter_size=3)(x))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("layer", [BlurPool2d(3, filter_size=4), MaxBlurPool2d(2, channels=3, filter_size=5, pad_mode="circular")])
def test_onnx_export_matches(tmp_path, generator, layer):
    ort = pytest.importorskip("onnxruntime")
    x = torch.randn(2, 3, 16, 17, generator=generator)
    path = tmp_path / "layer.onnx"
    torch.onnx.export(layer, (x,), str(path), dynamo=True)
    session = ort.InferenceSession(str(path))
    (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    torch.testing.assert_close(torch.from_numpy(out), layer(x), atol=1e-6, rtol=0)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("layer", [BlurPool2d(3, filter_size=4), BlurUpsample2d(3, filter_size=3), BlurConv2d(3, 4, 3, padding=1)])
def test_legacy_onnx_export_matches(tmp_path, generator, layer):
    """The TorchScript-tracing exporter (``dynamo=False``), still used by TensorRT-style pipelines."""
    ort = pytest.importorskip("onnxruntime")
    x = torch.randn(2, 3, 16, 17, generator=generator)
    path = tmp_path / "layer.onnx"
    torch.onnx.export(layer, (x,), str(path), dynamo=False)
    session = ort.InferenceSession(str(path))
    (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    torch.testing.assert_close(torch.from_numpy(out), layer(x), atol=1e-6, rtol=0)
