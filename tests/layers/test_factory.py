"""The layer factory (factory.py): methods by name, and create_max_downsample, the one rule "max at
stride 1, then the method's downsampling"."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from antialias.layers import (
    BlurPool1d,
    MaxBlurPool2d,
    create_downsample,
    list_downsample_methods,
    register_downsample,
)
from antialias.layers.factory import create_max_downsample


def test_register_list_and_create():
    methods = list_downsample_methods()
    assert {"blur", "aps", "lps", "flc", "asap", "wavelet", "adaptive"} <= set(
        methods
    ) and methods == sorted(methods)
    with pytest.raises(ValueError, match="downsample method 'blur' is already registered"):
        register_downsample("blur", lambda *args, **kwargs: nn.Identity())
    with pytest.raises(ValueError, match="ndim must be 1, 2 or 3, got 4"):
        create_downsample("blur", 4, 8, 2)
    layer = create_downsample("blur", 1, 8, 3, filter_size=3, pad_mode="zeros")
    assert isinstance(layer, BlurPool1d) and (layer.stride, layer.taps, layer.pad_mode) == (
        [3],
        [0.25, 0.5, 0.25],
        "zeros",
    )


def test_blur_is_the_fused_max_blur_pool():
    layer = create_max_downsample("blur", 2, 8, 3, 2, 1, filter_size=3, pad_mode="zeros")
    assert isinstance(layer, MaxBlurPool2d)
    assert (layer.kernel_size, layer.padding, layer.stride) == ([3, 3], [1, 1], [2, 2])


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_other_methods_max_then_downsample(ndim, generator):
    layer = create_max_downsample("aps", ndim, 4, 2)
    assert list(dict(layer.named_children())) == ["pool", "downsample"]
    x = torch.randn(2, 4, *([8] * ndim), generator=generator)
    dense = getattr(nn, f"MaxPool{ndim}d")(2, stride=1)(x)
    expected = create_downsample("aps", ndim, 4, 2)(dense)
    assert torch.equal(layer(x), expected)


@pytest.mark.parametrize("method", ["blur", "aps"])
def test_circular_wrap_keeps_the_size_and_circular_equivariance(method, generator):
    layer = create_max_downsample(
        method, 2, 4, 2, filter_size=3, pad_mode="circular", circular=True
    ).eval()
    assert list(dict(layer.named_children()))[0] == "pad"
    x = torch.randn(2, 4, 16, 16, generator=generator)
    out = layer(x)
    assert out.shape == (2, 4, 8, 8)
    # Shifting by the stride shifts the output by one sample: the map's circular structure is kept.
    torch.testing.assert_close(
        layer(torch.roll(x, (2, -2), dims=(-2, -1))), torch.roll(out, (1, -1), dims=(-2, -1))
    )


def test_circular_blur_equals_wrap_then_max_blur_pool(generator):
    x = torch.randn(2, 4, 12, 12, generator=generator)
    wrap = nn.Sequential(
        nn.CircularPad2d((1, 1, 1, 1)),
        MaxBlurPool2d(3, 2, channels=4, filter_size=4, pad_mode="circular"),
    )
    layer = create_max_downsample(
        "blur", 2, 4, 3, 2, filter_size=4, pad_mode="circular", circular=True
    )
    assert torch.equal(layer(x), wrap(x))


@pytest.mark.parametrize("method", ["adaptive", "wavelet", "flc", "asap"])
def test_empty_batch_gives_an_empty_output_and_an_empty_axis_a_value_error(method):
    layer = create_downsample(method, 2, channels=4, stride=2)
    x = torch.randn(0, 4, 9, 8, requires_grad=True)
    y = layer(x)
    assert y.shape == (0, 4, 5, 4)
    y.sum().backward()  # still attached to the input, like the blur layers
    for shape in [(2, 4, 0, 8), (2, 4, 8, 0), (0, 4, 0, 8)]:
        with pytest.raises(ValueError, match=rf"spatial axis . of size >= 1.*{list(shape)}"):
            layer(torch.randn(*shape))


def test_stride_defaults_to_kernel_size_and_errors():
    assert create_max_downsample("blur", 1, None, 3).stride == [3]
    with pytest.raises(ValueError, match="ndim must be 1, 2 or 3"):
        create_max_downsample("blur", 4, None, 2)
    with pytest.raises(ValueError, match="unknown downsample method 'nope'"):
        create_max_downsample("nope", 2, None, 2)


@pytest.mark.parametrize("method", ["blur", "aps"])
@pytest.mark.parametrize(("kernel", "stride", "padding"), [(3, 2, 1), (2, 2, 0), (3, 3, 0)])
def test_ceil_mode_keeps_the_max_pool_size(method, kernel, stride, padding, generator):
    pool = nn.MaxPool2d(kernel, stride, padding, ceil_mode=True)
    layer = create_max_downsample(method, 2, 4, kernel, stride, padding, ceil_mode=True)
    assert list(dict(layer.named_children()))[0] == "pad"
    for size in (7, 8, 9, 10):
        x = torch.randn(2, 4, size, size + 1, generator=generator)
        assert layer(x).shape == pool(x).shape, (size, kernel, stride, padding)


def test_ceil_mode_and_dilation_errors():
    with pytest.raises(ValueError, match=r"ceil_mode needs kernel_size >= padding \+ stride"):
        create_max_downsample("blur", 2, None, 2, 3, 1, ceil_mode=True)
    with pytest.raises(ValueError, match=r"dilation must be 1 .*got 2"):
        create_max_downsample("blur", 2, None, 3, 2, 1, dilation=2)
    layer = create_max_downsample("blur", 1, None, 3, 2, 1, dilation=(1,), ceil_mode=False)
    assert isinstance(layer, nn.Module) and not isinstance(layer, nn.Sequential)


# ------------------------------------------------------------------------------------------------
# Tracing, torch.export, torch.compile and ONNX: every method, a zoo model, a converted model


def _onnx_run(layer, x, second, path, dynamo):
    ort = pytest.importorskip("onnxruntime")
    torch.onnx.export(layer, (x,), str(path), dynamo=dynamo)
    session = ort.InferenceSession(str(path))
    (out,) = session.run(None, {session.get_inputs()[0].name: second.numpy()})
    return torch.from_numpy(out)


def _check_graph_forms(layer, x, second, tmp_path, legacy_onnx=True, atol=1e-5):
    """Each graph form, recorded on ``x``, equals eager on ``second`` (nothing baked in)."""
    expected = layer(second)
    forms = {
        "trace": lambda: torch.jit.trace(layer, (x,))(second),
        "export": lambda: torch.export.export(layer, (x,)).module()(second),
        "compile": lambda: torch.compile(layer, backend="aot_eager", fullgraph=True)(second),
        "onnx": lambda: _onnx_run(layer, x, second, tmp_path / "dynamo.onnx", True),
    }
    if legacy_onnx:
        forms["legacy onnx"] = lambda: _onnx_run(layer, x, second, tmp_path / "legacy.onnx", False)
    for name, run in forms.items():
        torch.testing.assert_close(run(), expected, atol=atol, rtol=0, msg=name)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("method", list_downsample_methods())
@pytest.mark.parametrize("max_first", [False, True], ids=["down", "max"])
def test_every_method_traces_exports_compiles(method, max_first, generator, tmp_path):
    torch.manual_seed(0)
    make = create_max_downsample if max_first else create_downsample
    layer = make(method, 2, 4, 2).eval()
    x = torch.randn(2, 4, 16, 16, generator=generator)
    second = torch.roll(x, (1, 1), dims=(2, 3))  # other phases for the polyphase methods
    fft = method in ("flc", "asap")
    _check_graph_forms(layer, x, second, tmp_path, legacy_onnx=not fft)
    if fft:  # torch's legacy (tracing) exporter has no rule for the real FFT
        with pytest.raises(torch.onnx.errors.UnsupportedOperatorError, match="aten::fft_rfft"):
            _onnx_run(layer, x, second, tmp_path / "legacy.onnx", False)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
def test_zoo_and_converted_models_trace_export_compile(generator, tmp_path):
    from antialias import convert
    from antialias.models import get_model

    torch.manual_seed(0)
    x = torch.randn(1, 3, 64, 64, generator=generator)
    second = torch.randn(1, 3, 64, 64, generator=generator)
    zoo = get_model("resnet18", filter_size=4, num_classes=10).eval()
    assert any(isinstance(m, MaxBlurPool2d) for m in zoo.modules())
    _check_graph_forms(zoo, x, second, tmp_path, atol=1e-4)
    plain = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(3, 2, 1),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.AvgPool2d(2),
    )
    converted = convert(plain, filter_size=4).eval()
    assert any(isinstance(m, MaxBlurPool2d) for m in converted.modules())
    _check_graph_forms(converted, x, second, tmp_path, atol=1e-5)
