"""The blur-pool layer family (blurpool.py): exactness against the reference, semantics, edge
inputs, errors,
export, and the degenerate inputs of every layer (empty batch or channels, axes too short)."""

import itertools
import math

import antialiased_cnns
import pytest
import torch
import torch.nn.functional as F
from _families import (
    APS,
    BLUR_CONV,
    BLUR_POOL,
    LPS,
    MAX_BLUR_POOL,
    NDIMS,
    UP,
    UPSAMPLE,
    ceil_div,
    nd_shape,
)

from antialias.filters import get_kernel
from antialias.layers import (
    BlurConv1d,
    BlurConv2d,
    BlurConv3d,
    BlurPool1d,
    BlurPool2d,
    BlurPool3d,
    BlurUpsample2d,
    BlurUpsample3d,
    MaxBlurPool1d,
    MaxBlurPool2d,
    blur_pool1d,
    blur_pool2d,
    blur_pool3d,
    functional,
    max_blur_pool2d,
)

REFERENCE_PAD = {"reflect": "reflect", "replicate": "replicate", "zeros": "zero"}


def _input(gen, ndim, size, channels=3, batch=2, dtype=torch.float32):
    shape = (batch, channels) + tuple(size + i for i in range(ndim))  # non-square: H, W+1, ...
    return torch.randn(shape, generator=gen, dtype=dtype)


# ------------------------------------------------------------------------------------------------
# Exactness against the installed reference package (the whole grid)


@pytest.mark.parametrize("pad_mode", ["reflect", "replicate", "zeros"])
@pytest.mark.parametrize("filter_size", range(1, 8))
def test_equals_reference_blurpool(generator, filter_size, pad_mode):
    for ndim, stride, size, pad_off in itertools.product((1, 2), range(1, 5), (11, 12), (0, 1)):
        x = _input(generator, ndim, size)
        ref_cls = antialiased_cnns.BlurPool if ndim == 2 else antialiased_cnns.BlurPool1D
        ref = ref_cls(
            3,
            pad_type=REFERENCE_PAD[pad_mode],
            filt_size=filter_size,
            stride=stride,
            pad_off=pad_off,
        )
        ours = BLUR_POOL[ndim](
            3, stride=stride, filter_size=filter_size, pad_mode=pad_mode, pad_off=pad_off
        )
        expected, actual = ref(x), ours(x)
        assert actual.shape == expected.shape, (ndim, stride, size, pad_off)
        err = (actual - expected).abs().max().item()
        assert err <= 1e-6, (
            f"ndim={ndim} stride={stride} size={size} pad_off={pad_off}: max abs error {err}"
        )


@pytest.mark.parametrize("filter_size", [2, 3, 4, 5])
def test_max_blur_pool_equals_reference_composite(generator, filter_size):
    x = _input(generator, 2, 12, channels=4)
    ref = torch.nn.Sequential(
        torch.nn.MaxPool2d(2, stride=1), antialiased_cnns.BlurPool(4, filt_size=filter_size)
    )
    ours = MaxBlurPool2d(2, channels=4, filter_size=filter_size)
    torch.testing.assert_close(ours(x), ref(x), atol=1e-6, rtol=0)
    torch.testing.assert_close(
        max_blur_pool2d(x, 2, filter_size=filter_size), ref(x), atol=1e-6, rtol=0
    )


@pytest.mark.parametrize("pad_mode", ["reflect", "replicate", "zeros", "circular"])
@pytest.mark.parametrize("filter_size", [1, 2, 3, 4, 5, 7])
def test_3d_equals_dense_conv(generator, filter_size, pad_mode):
    """3D has no reference: compare with a float64 depthwise conv3d of the outer-product kernel."""
    x = _input(generator, 3, 6, dtype=torch.float64)
    stride = (1, 2, 3)
    k = filter_size
    pad = [(k - 1) // 2, k // 2] * 3  # (left, right) per axis, the same on all three
    mode = {"zeros": "constant"}.get(pad_mode, pad_mode)
    padded = F.pad(x, pad, mode=mode)
    weight = get_kernel(k, 3, dtype=torch.float64).expand(3, 1, k, k, k)
    expected = F.conv3d(padded, weight, stride=stride, groups=3)
    torch.testing.assert_close(
        BlurPool3d(3, stride=stride, filter_size=k, pad_mode=pad_mode)(x), expected
    )


# ------------------------------------------------------------------------------------------------
# Semantics


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_output_size_is_ceil(ndim):
    for k, s, size in itertools.product(range(1, 8), range(1, 5), range(5, 10)):
        x = torch.zeros((1, 2) + (size,) * ndim)
        out = BLUR_POOL[ndim](filter_size=k, stride=s)(x)
        assert out.shape[2:] == (math.ceil(size / s),) * ndim, (k, s, size)


@pytest.mark.parametrize("pad_mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_constant_stays_constant(ndim, pad_mode):
    x = torch.full((1, 2) + (9,) * ndim, 3.0)
    for k in range(1, 8):
        torch.testing.assert_close(
            BLUR_POOL[ndim](filter_size=k, pad_mode=pad_mode)(x),
            torch.full_like(x[(...,) + (slice(None, None, 2),) * ndim], 3.0),
        )


def test_zero_padding_darkens_border():
    out = BlurPool2d(filter_size=3, pad_mode="zeros")(torch.ones(1, 1, 8, 8))
    assert out[0, 0, 0, 0].item() == pytest.approx(
        0.5625
    )  # (3/4)^2, as kornia's constant map corner


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("stride", [2, 3])
def test_circular_shift_by_stride_shifts_output_by_one(generator, ndim, stride):
    dims = tuple(range(2, 2 + ndim))
    x = torch.randn((2, 3) + (4 * stride,) * ndim, generator=generator)
    for k in range(1, 8):
        pool = BLUR_POOL[ndim](filter_size=k, stride=stride, pad_mode="circular")
        shifted = pool(torch.roll(x, (stride,) * ndim, dims))
        torch.testing.assert_close(
            shifted, torch.roll(pool(x), (1,) * ndim, dims), atol=1e-6, rtol=0
        )
        # and a shift that is not a multiple of the stride is *not* exactly reproduced for k = 1
    aliased = BLUR_POOL[ndim](filter_size=1, stride=stride, pad_mode="circular")
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
            torch.testing.assert_close(
                BLUR_POOL[ndim](filter_size=spec, stride=2)(x), fn(x, filter_size=spec, stride=2)
            )


def test_filter_families_and_taps(generator):
    x = torch.randn(2, 3, 8, 10, generator=generator)
    torch.testing.assert_close(
        BlurPool2d(filter_size="box-2")(x), F.avg_pool2d(x, 2)
    )  # Rect-2 == AvgPool(2, 2)
    torch.testing.assert_close(
        BlurPool2d(filter_size=[1, 3, 3, 1])(x), BlurPool2d(filter_size=4)(x)
    )


def test_tuple_stride(generator):
    x = _input(generator, 2, 9)
    out = BlurPool2d(stride=(1, 3))(x)
    assert out.shape == (2, 3, 9, 4)


def test_layers_hold_no_state():
    """The filter is Python floats: no parameter, no buffer (persistent or not), so nothing to
    place."""
    for layer in (
        BlurPool2d(8, filter_size=5),
        MaxBlurPool2d(3, 2, 1),
        BlurUpsample2d(),
        BlurConv2d(8, 4, 3, padding=1).blur,
    ):
        assert (
            dict(layer.state_dict()) == {}
            and list(layer.buffers()) == []
            and list(layer.parameters()) == []
        )
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
    assert (
        BlurPool2d(filter_size=3)(torch.zeros(1, 1, 4, 4, dtype=torch.float64)).dtype
        == torch.float64
    )


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
        assert BLUR_POOL[ndim](3)(x).shape == (0, 3) + (4,) * ndim
        assert MAX_BLUR_POOL[ndim]()(x).shape == (0, 3) + (4,) * ndim
        assert UPSAMPLE[ndim]()(x).shape == (0, 3) + (16,) * ndim


def test_non_contiguous_input(generator):
    x = torch.randn(2, 12, 10, 3, generator=generator).permute(
        0, 3, 1, 2
    )  # (2, 3, 12, 10), odd strides
    assert not x.is_contiguous()
    torch.testing.assert_close(BlurPool2d()(x), BlurPool2d()(x.contiguous()))
    sliced = torch.randn(2, 3, 20, 20, generator=generator)[:, :, ::2, 1::2]
    torch.testing.assert_close(BlurPool2d()(sliced), BlurPool2d()(sliced.contiguous()))


@pytest.mark.parametrize(
    "layer", [BlurPool2d(), MaxBlurPool2d(), BlurUpsample2d(), BlurConv2d(3, 5, 3, padding=1)]
)
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
    for layer in (
        BlurPool2d(filter_size=5),
        MaxBlurPool2d(filter_size=5),
        BlurUpsample2d(filter_size=5),
    ):
        out = layer(x.to(dtype))
        assert out.dtype == dtype
    tol = {torch.float16: 2e-3, torch.bfloat16: 2e-2, torch.float64: 1e-6}[dtype]
    torch.testing.assert_close(
        BlurPool2d(filter_size=5)(x.to(dtype)).float(), expected, atol=tol, rtol=tol
    )


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
        (
            {"pad_mode": "mirror"},
            ValueError,
            r"pad_mode must be one of \('reflect', 'replicate', 'zeros', 'circular'\), "
            r"got 'mirror'",
        ),
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
        (
            torch.zeros(3, 8, 8),
            ValueError,
            r"BlurPool2d expects a 4D input \(N, C, H, W\), got a 3D tensor of shape \[3, 8, 8\]",
        ),
        (
            torch.zeros(1, 4, 8, 8),
            ValueError,
            r"BlurPool2d was built for 3 channels, got an input with 4 channels",
        ),
        (
            torch.zeros(1, 3, 8, 8, dtype=torch.int64),
            TypeError,
            "expects a floating-point input, got dtype torch.int64",
        ),
        (torch.zeros(1, 3, 8, 8, dtype=torch.complex64), TypeError, "got dtype torch.complex64"),
    ],
)
def test_bad_inputs_raise_at_call(x, error, match):
    with pytest.raises(error, match=match):
        BlurPool2d(channels=3)(x)


def test_pad_mode_aliases():
    assert BlurPool2d(pad_mode="zero").pad_mode == "zeros"  # the reference's name
    assert BlurPool2d(pad_mode="refl").pad_mode == "reflect"


# ------------------------------------------------------------------------------------------------
# repr


def test_extra_repr():
    assert (
        repr(BlurPool2d(64, filter_size=3))
        == "BlurPool2d(channels=64, filter_size=3, stride=2, pad_mode='reflect')"
    )
    assert repr(
        BlurPool1d(None, filter_size="box-2", stride=3, pad_mode="circular", pad_off=1)
    ) == (
        "BlurPool1d(channels=None, filter_size='box-2', stride=3, pad_mode='circular', pad_off=1)"
    )
    assert (
        repr(BlurPool3d(stride=(1, 2, 2)))
        == "BlurPool3d(channels=None, filter_size=4, stride=(1, 2, 2), pad_mode='reflect')"
    )
    assert repr(MaxBlurPool2d(3, 2, padding=1)) == (
        "MaxBlurPool2d(kernel_size=3, padding=1, channels=None, filter_size=4, stride=2, "
        "pad_mode='reflect')"
    )
    assert repr(BlurUpsample2d(8, filter_size=[1, 1])) == (
        "BlurUpsample2d(channels=8, filter_size=taps=[0.5, 0.5], scale_factor=2, "
        "pad_mode='replicate')"
    )
    assert (
        repr(BlurUpsample2d())
        == "BlurUpsample2d(channels=None, filter_size=None, scale_factor=2, pad_mode='replicate')"
    )
    assert "(blur): BlurPool2d(channels=4, filter_size=4, stride=2" in repr(BlurConv2d(4, 8, 1))


# ------------------------------------------------------------------------------------------------
# Max-blur-pool, blurred convolution, upsampling


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_max_blur_pool_from_max_pool(generator, ndim):
    pool_cls = (torch.nn.MaxPool1d, torch.nn.MaxPool2d, torch.nn.MaxPool3d)[ndim - 1]
    pool = pool_cls(3, stride=2, padding=1)
    new = MAX_BLUR_POOL[ndim].from_max_pool(pool, filter_size=1)
    x = torch.randn((2, 3) + (9,) * ndim, generator=generator)
    # with the trivial filter (k = 1) the max-blur-pool is the original max pool
    torch.testing.assert_close(new(x), pool(x))
    with pytest.raises(ValueError, match="ceil_mode"):
        MAX_BLUR_POOL[ndim].from_max_pool(pool_cls(2, ceil_mode=True))


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
    ref = torch.nn.Sequential(
        antialiased_cnns.BlurPool(4, filt_size=4, stride=2), torch.nn.Conv2d(4, 6, 1, bias=False)
    )
    ref[1].weight.data.copy_(conv.weight.data)
    x = torch.randn(2, 4, 14, 14, generator=generator)
    torch.testing.assert_close(BlurConv2d.from_conv(conv)(x), ref(x), atol=1e-6, rtol=0)


# ------------------------------------------------------------------------------------------------
# autograd, torch.jit.trace, torch.compile, ONNX


@pytest.mark.parametrize(
    "layer",
    [
        BlurPool2d(filter_size=3),
        BlurPool1d(filter_size=4, pad_mode="circular"),
        MaxBlurPool2d(filter_size=4),
        BlurUpsample2d(filter_size=3),
        BlurPool3d(filter_size=2),
    ],
)
def test_gradcheck(generator, layer):
    ndim = layer.dims
    x = torch.randn(
        (1, 2) + (5,) * ndim, generator=generator, dtype=torch.float64, requires_grad=True
    )
    assert torch.autograd.gradcheck(layer, (x,))


@pytest.mark.parametrize(
    "layer",
    [
        BlurPool2d(3),
        MaxBlurPool1d(),
        BlurUpsample3d(),
        BlurConv2d(3, 4, 3, padding=1),
        BlurUpsample2d(scale_factor=(1, 3)),
        MaxBlurPool2d(3, 2, 1),
        BlurPool2d(filter_size=7, pad_mode="circular"),
    ],
)
def test_jit_trace(generator, layer):
    """torch.jit.trace records the traceable form; the trace equals eager on a second input."""
    shape = (2, 3) + (6,) * layer.dims
    x, second = (torch.randn(shape, generator=generator) for _ in range(2))
    traced = torch.jit.trace(layer, (x,))
    torch.testing.assert_close(traced(second), layer(second), rtol=0, atol=1e-6)


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
@pytest.mark.parametrize(
    "layer",
    [
        BlurPool2d(3, filter_size=4),
        MaxBlurPool2d(2, channels=3, filter_size=5, pad_mode="circular"),
    ],
)
def test_onnx_export_matches(tmp_path, generator, layer):
    ort = pytest.importorskip("onnxruntime")
    x = torch.randn(2, 3, 16, 17, generator=generator)
    path = tmp_path / "layer.onnx"
    torch.onnx.export(layer, (x,), str(path), dynamo=True)
    session = ort.InferenceSession(str(path))
    (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    torch.testing.assert_close(torch.from_numpy(out), layer(x), atol=1e-6, rtol=0)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize(
    "layer",
    [
        BlurPool2d(3, filter_size=4),
        BlurUpsample2d(3, filter_size=3),
        BlurConv2d(3, 4, 3, padding=1),
    ],
)
def test_legacy_onnx_export_matches(tmp_path, generator, layer):
    """The tracing exporter (``dynamo=False``), still used by TensorRT-style pipelines."""
    ort = pytest.importorskip("onnxruntime")
    x = torch.randn(2, 3, 16, 17, generator=generator)
    path = tmp_path / "layer.onnx"
    torch.onnx.export(layer, (x,), str(path), dynamo=False)
    session = ort.InferenceSession(str(path))
    (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    torch.testing.assert_close(torch.from_numpy(out), layer(x), atol=1e-6, rtol=0)


# ------------------------------------------------------------------------------------------------
# Degenerate inputs


@pytest.mark.parametrize("ndim", NDIMS)
@pytest.mark.parametrize(("n", "c"), [(0, 3), (2, 0), (0, 0)])
def test_empty_batch_or_channels(ndim, n, c):
    x = torch.randn(nd_shape(n, c, ndim))
    spatial = x.shape[2:]
    down = tuple(ceil_div(s) for s in spatial)
    for pad_mode in ("reflect", "replicate", "zeros", "circular"):
        out = BLUR_POOL[ndim](filter_size=4, pad_mode=pad_mode)(x)
        assert out.shape == (n, c) + down, pad_mode
    assert MAX_BLUR_POOL[ndim](2, 2)(x).shape == (n, c) + tuple(ceil_div(s - 1) for s in spatial)
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
    x = torch.randn(nd_shape(0, 3, ndim))
    down = tuple(ceil_div(s) for s in x.shape[2:])
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


def test_empty_channels_and_too_small_map_of_max_blur_pool():
    layer = MaxBlurPool2d(2, 2)
    assert layer(torch.randn(2, 0, 6, 6)).shape == (2, 0, 3, 3)
    with pytest.raises(ValueError, match=r"MaxBlurPool2d needs spatial axis 0 of size >= 2"):
        layer(torch.randn(2, 3, 1, 1))


@pytest.mark.parametrize("ndim", NDIMS)
@pytest.mark.parametrize("pad_mode", ["reflect", "replicate", "zeros", "circular"])
def test_empty_spatial_axis_is_refused(ndim, pad_mode):
    shape = list(nd_shape(2, 3, ndim))
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
        with pytest.raises(
            ValueError,
            match=rf"{name} needs spatial axis {axis} of size >= 1 \(.*\), "
            rf"got an input of shape \{shape}",
        ):
            layer(x)
    with pytest.raises(ValueError, match=r"PolyphaseUp\dd needs spatial axis"):
        UP[ndim]()(x, torch.zeros(2, dtype=torch.int64))


@pytest.mark.parametrize("ndim", NDIMS)
def test_max_blur_pool_map_smaller_than_its_window(ndim):
    with pytest.raises(
        ValueError,
        match=r"MaxBlurPool\dd needs spatial axis 0 of size >= 2 \(kernel_size - 2 \* padding.*\), "
        r"got an input of shape \[2, 3, 1",
    ):
        MAX_BLUR_POOL[ndim]()(torch.randn((2, 3) + (1,) * ndim))
    x = torch.randn((2, 3) + (8,) * ndim)
    with pytest.raises(
        ValueError, match=r"needs spatial axis 0 of size >= 10 .*got an input of shape \[2, 3, 8"
    ):
        MAX_BLUR_POOL[ndim](kernel_size=10)(x)
    # padding lowers the minimum: kernel 10 with padding 1 still needs 8 samples, and 8 is enough
    assert MAX_BLUR_POOL[ndim](kernel_size=10, stride=2, padding=1)(x).shape == (2, 3) + (1,) * ndim
    # the smallest map that works: exactly the window
    assert (
        MAX_BLUR_POOL[ndim](3, 2)(torch.randn((1, 1) + (3,) * ndim)).shape == (1, 1) + (1,) * ndim
    )
    with pytest.raises(ValueError, match=r"max_blur_pool2d needs spatial axis 1 of size >= 3"):
        max_blur_pool2d(torch.randn(1, 1, 5, 2), 3)


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "replicate", "circular"])
def test_blur_conv_minimum_input_is_exact(padding_mode):
    """The error names the smallest input that works; every input from there on works (no hidden
    holes)."""
    for k, stride, padding, dilation in itertools.product(
        (1, 2, 3, 5), (1, 2, 3), (0, 1, 2, "same"), (1, 2)
    ):
        if isinstance(padding, int) and padding_mode != "zeros" and padding == 0:
            continue
        conv = BlurConv1d(1, 2, k, stride, padding, dilation, padding_mode=padding_mode)
        works = []
        for length in range(1, 30):
            try:
                assert conv(torch.randn(1, 1, length)).shape[:2] == (1, 2)
                works.append(length)
            except ValueError as error:
                assert "needs spatial axis 0 of size >= " in str(
                    error
                ) and "got an input of shape [1, 1, " in str(error)
        assert works and works == list(range(works[0], 30)), (k, stride, padding, dilation)
        with pytest.raises(
            ValueError, match=rf"BlurConv1d needs spatial axis 0 of size >= {works[0]} "
        ):
            conv(torch.randn(1, 1, works[0] - 1)) if works[0] > 1 else conv(torch.randn(1, 1, 0))
    with pytest.raises(
        ValueError, match=r"BlurConv2d needs spatial axis 0 of size >= 5 .*shape \[1, 3, 4, 4\]"
    ):
        BlurConv2d(3, 4, 3)(torch.randn(1, 3, 4, 4))


def test_blur_conv_checks_its_input_once_and_names_itself(monkeypatch):
    calls = []
    check = functional.check_input
    monkeypatch.setattr(functional, "check_input", lambda *a: calls.append(a[-1]) or check(*a))
    conv = BlurConv2d(3, 4, 3, padding=1)
    conv(torch.randn(1, 3, 8, 8))
    assert calls == ["BlurConv2d"]
    with pytest.raises(ValueError, match=r"BlurConv2d was built for 3 channels, got .* 2 channels"):
        conv(torch.randn(1, 2, 8, 8))


def test_blur_conv_minimum_follows_a_later_padding_mode_change():
    """convert(conv_padding_mode="circular") sets padding_mode on built layers: the minimum follows
    it."""
    conv = BlurConv1d(1, 1, 7, 2, 3)
    assert conv(torch.randn(1, 1, 1)).shape == (1, 1, 1)  # zeros padding: one sample is enough
    conv.padding_mode = "reflect"
    with pytest.raises(ValueError, match=r"BlurConv1d needs spatial axis 0 of size >= 7 "):
        conv(torch.randn(1, 1, 6))
    assert conv(torch.randn(1, 1, 7)).shape == (1, 1, 4)
    # and a stride moved from the blur back to the convolution (convert's kernel == stride
    # convolutions)
    conv = BlurConv2d(1, 1, 2, 2)
    with pytest.raises(ValueError, match=r"needs spatial axis 0 of size >= 3 "):
        conv(torch.randn(1, 1, 2, 2))
    conv.blur.stride, conv.stride = [1, 1], (2, 2)
    assert conv(torch.randn(1, 1, 2, 2)).shape == (1, 1, 1, 1)


def test_one_sample_axes_work_in_every_pad_mode():
    """The minimum of a blur-pool is one sample, also where the padding is wider than the axis."""
    x = torch.randn(2, 3, 1, 1)
    for pad_mode, k in itertools.product(
        ("reflect", "replicate", "zeros", "circular"), range(1, 8)
    ):
        out = BlurPool2d(filter_size=k, pad_mode=pad_mode)(x)
        assert out.shape == (2, 3, 1, 1)
        if pad_mode != "zeros":  # a constant extension keeps the one value
            torch.testing.assert_close(out, x)


def test_constants_stay_constant_through_blur_pool_on_tiny_maps():
    for size, k in itertools.product((1, 2, 3), range(1, 8)):
        x = torch.full((1, 2, size, size + 1), 5.0)
        for pad_mode in ("reflect", "replicate", "circular"):
            out = BlurPool2d(filter_size=k, pad_mode=pad_mode)(x)
            assert out.shape[2:] == (math.ceil(size / 2), math.ceil((size + 1) / 2))
            torch.testing.assert_close(out, torch.full_like(out, 5.0))
