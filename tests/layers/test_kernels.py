"""The private kernels: the matrix formulation equals the strided one; the fast max equals max pooling.

The layers run the matrix formulation on CPU in eager mode and TorchScript, the strided (slices)
formulation under torch.compile/export and elsewhere; both must give the same values and gradients
everywhere, including the cases the reference cannot check (circular padding, 3D, upsampling, tiny maps).
"""

import itertools

import pytest
import torch
import torch.nn.functional as F

from antialias.filters import get_taps
from antialias.layers import BlurPool2d, BlurPool3d, BlurUpsample2d, MaxBlurPool2d
from antialias.layers import _cpu as CPU
from antialias.layers import functional as AF

PAD_MODES = ["reflect", "replicate", "zeros", "circular"]
FILTERS = [1, 2, 3, 4, 6, 7, "gaussian-5"]


def _taps(spec):
    return list(get_taps(spec))


@pytest.mark.parametrize("pad_mode", PAD_MODES)
def test_pool_matrix_equals_slices_1d_2d(generator, pad_mode):
    # the reference grid (sizes 11, 12) is checked against the reference in test_blurpool.py; here: tiny maps
    for spec, stride, size, pad_off in itertools.product(FILTERS, (1, 2, 3), (1, 2, 3, 7), (0, 1)):
        taps = _taps(spec)
        x = torch.randn(2, 3, size, size + 3, generator=generator, dtype=torch.float64)
        assert CPU.use_matrices(x)
        for inp, strides in ((x, [stride, stride]), (x[:, :, 0], [stride])):
            expected = CPU.blur_pool_slices(inp, taps, strides, pad_mode, pad_off)
            actual = AF._blur_pool(inp, taps, strides, pad_mode, pad_off)
            assert actual.shape == expected.shape, (spec, stride, size, pad_off)
            torch.testing.assert_close(actual, expected, rtol=0, atol=1e-12, msg=f"{spec} s={stride} n={size} off={pad_off}")


@pytest.mark.parametrize("pad_mode", PAD_MODES)
def test_pool_matrix_equals_slices_3d(generator, pad_mode):
    x = torch.randn(1, 2, 3, 5, 6, generator=generator, dtype=torch.float64)
    for spec, stride in itertools.product((2, 4, 5), ([1, 2, 2], [2, 3, 1])):
        taps = _taps(spec)
        expected = CPU.blur_pool_slices(x, taps, stride, pad_mode, 0)
        torch.testing.assert_close(AF._blur_pool(x, taps, stride, pad_mode, 0), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("pad_mode", PAD_MODES)
def test_upsample_matrix_equals_slices(generator, pad_mode):
    for spec, factor, size in itertools.product((1, 2, 4, 5, "box-3"), (1, 2, 3), (1, 2, 5)):
        taps = _taps(spec)
        x = torch.randn(2, 3, size, size + 2, generator=generator, dtype=torch.float64)
        for inp, factors in ((x, [factor, factor]), (x[:, :, 0], [factor])):
            expected = CPU.blur_upsample_slices(inp, taps, factors, pad_mode)
            actual = AF._blur_upsample(inp, taps, factors, pad_mode)
            torch.testing.assert_close(actual, expected, rtol=0, atol=1e-12, msg=f"{spec} f={factor} n={size}")


@pytest.mark.parametrize("pad_mode", ["reflect", "replicate", "zeros"])
def test_channels_last_convolution_path_equals_slices(generator, pad_mode, monkeypatch):
    """channels_last float32 runs a zero-padded depthwise convolution and recomputes the border outputs."""
    monkeypatch.setattr(CPU, "CONV_MIN_SIZE", 1)  # large maps only by default; here every size
    for k, stride, size, pad_off in itertools.product((2, 3, 4, 5, 7), (1, 2, 3), (2, 5, 8, 11), (0, 1)):
        taps = _taps(k)
        x = torch.randn(2, 4, size, size + 1, generator=generator).to(memory_format=torch.channels_last)
        expected = CPU.blur_pool_slices(x, taps, [stride, stride], pad_mode, pad_off)
        actual = AF._blur_pool(x, taps, [stride, stride], pad_mode, pad_off)
        assert actual.shape == expected.shape and actual.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(actual, expected, rtol=0, atol=1e-6, msg=f"k={k} s={stride} n={size} off={pad_off}")
    x = torch.randn(2, 4, 12, 13, generator=generator).to(memory_format=torch.channels_last)
    low = AF._blur_pool(x.bfloat16(), _taps(4), [2, 2], pad_mode, 0)
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), CPU.blur_pool_slices(x, _taps(4), [2, 2], pad_mode, 0), rtol=2e-2, atol=2e-2)


def test_gradients_equal_slices(generator):
    """Autograd through the matrix products (the adjoint) equals autograd through the strided slices."""
    taps = _taps(4)
    for fmt in (torch.contiguous_format, torch.channels_last):
        x = torch.randn(2, 3, 9, 8, generator=generator, dtype=torch.float64).to(memory_format=fmt)
        grads = []
        for kernel in (AF._blur_pool, CPU.blur_pool_slices):
            xr = x.detach().clone().requires_grad_(True)
            y = kernel(xr, taps, [2, 2], "reflect", 0)
            upstream = torch.randn(y.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
            y.backward(upstream)
            grads.append(xr.grad)
        torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=1e-12)


def test_gradcheck_channels_last_and_upsample(generator):
    x = torch.randn(1, 2, 6, 5, generator=generator, dtype=torch.float64).to(memory_format=torch.channels_last)
    assert torch.autograd.gradcheck(BlurPool2d(filter_size=5, stride=(2, 3), pad_mode="circular"), (x.requires_grad_(),))
    y = torch.randn(1, 2, 4, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(BlurUpsample2d(filter_size="box-3", scale_factor=3, pad_mode="reflect"), (y,))


def test_memory_format_and_dtype_kept(generator):
    x = torch.randn(2, 5, 8, 7, generator=generator)
    out = BlurPool2d(filter_size=4)(x.to(memory_format=torch.channels_last))
    assert out.is_contiguous(memory_format=torch.channels_last) and not out.is_contiguous()
    assert BlurPool2d(filter_size=4)(x).is_contiguous()
    up = BlurUpsample2d()(x.to(memory_format=torch.channels_last))
    assert up.is_contiguous(memory_format=torch.channels_last)
    x3 = torch.randn(1, 3, 4, 6, 6, generator=generator).to(memory_format=torch.channels_last_3d)
    out3 = BlurPool3d(stride=(1, 2, 2))(x3)
    assert out3.is_contiguous(memory_format=torch.channels_last_3d)
    torch.testing.assert_close(out3, BlurPool3d(stride=(1, 2, 2))(x3.contiguous()), rtol=0, atol=1e-6)
    for dtype in (torch.bfloat16, torch.float16, torch.float64):
        assert BlurPool2d()(x.to(dtype)).dtype == dtype


@pytest.mark.parametrize("pad_mode", PAD_MODES)
def test_long_axes_equal_slices(generator, pad_mode):
    """Values and gradients on the map sizes of ImageNet networks' first blur layers (111, 112)."""
    for k, stride, size in ((4, 2, 111), (7, 3, 112)):
        taps = _taps(k)
        for fmt in (torch.contiguous_format, torch.channels_last):
            x = torch.randn(1, 2, size, 64, generator=generator, dtype=torch.float64).to(memory_format=fmt)
            grads, outs = [], []
            for kernel in (AF._blur_pool, CPU.blur_pool_slices):
                xr = x.detach().clone().requires_grad_(True)
                out = kernel(xr, taps, [stride, stride], pad_mode, 0)
                out.backward(torch.ones_like(out))
                outs.append(out.detach())
                grads.append(xr.grad)
            torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=1e-12)
            torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=1e-12)


def test_long_axis_uses_slices_with_same_values(generator):
    long = CPU.MATRIX_MAX_LEN + 3
    x = torch.randn(1, 2, 4, long, generator=generator, dtype=torch.float64)
    assert not CPU.use_matrices(x)
    torch.testing.assert_close(BlurPool2d()(x), CPU.blur_pool_slices(x, _taps(4), [2, 2], "reflect", 0), rtol=0, atol=0)


def test_double_backward(generator):
    x = torch.randn(1, 2, 7, 6, generator=generator, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(BlurPool2d(filter_size=4, stride=2), (x,))
    assert torch.autograd.gradgradcheck(BlurUpsample2d(filter_size=3), (x,))


def test_matrices_made_in_inference_mode_serve_training(generator):
    """The cache must not hand an inference tensor to a later autograd graph."""
    pool = BlurPool2d(filter_size=6)
    x = torch.randn(1, 2, 13, 11, generator=generator)
    with torch.inference_mode():
        expected = pool(x)
    xr = x.clone().requires_grad_(True)
    out = pool(xr)
    out.sum().backward()
    torch.testing.assert_close(out.detach(), expected)
    assert xr.grad is not None and xr.grad.shape == x.shape


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_torchscript_builds_matrices_itself(generator):
    x = torch.randn(2, 3, 10, 9, generator=generator).to(memory_format=torch.channels_last)
    for layer in (BlurPool2d(3, filter_size=5, pad_mode="zeros"), BlurUpsample2d(filter_size=3, scale_factor=2)):
        scripted = torch.jit.script(layer)
        out = scripted(x)
        assert out.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(out, layer(x), rtol=0, atol=1e-6)  # eager: depthwise conv + borders


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_shifted_max_equals_max_pool(generator, ndim):
    pool = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[ndim - 1]
    x = torch.randn((2, 3) + (7,) * ndim, generator=generator)
    x[0, 0].view(-1)[:5] = float("-inf")
    x[1, 1].view(-1)[3] = float("nan")
    for k in (1, 2, 3):
        for p in range(k // 2 + 1):
            expected = pool(x, k, 1, p)
            actual = CPU.max_pool(x, [k] * ndim, [p] * ndim)
            assert actual.shape == expected.shape and actual.is_contiguous()
            torch.testing.assert_close(actual, expected, rtol=0, atol=0, equal_nan=True)
            assert actual.data_ptr() != x.data_ptr()


def test_max_gradient_is_max_pooling(generator):
    """When autograd records, the gradient is max pooling's, ties included (one winner per window)."""
    x = torch.randn(2, 3, 8, 9, generator=generator, dtype=torch.float64).relu()  # ties at zero
    grads = []
    for fn in (lambda t: CPU.max_pool(t, [3, 3], [1, 1]), lambda t: F.max_pool2d(t, 3, 1, 1)):
        xr = x.clone().requires_grad_(True)
        fn(xr).backward(torch.ones(2, 3, 8, 9, dtype=torch.float64))
        grads.append(xr.grad)
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=0)
    with torch.no_grad():
        torch.testing.assert_close(CPU.max_pool(x, [3, 3], [1, 1]), F.max_pool2d(x, 3, 1, 1), rtol=0, atol=0)


def test_max_blur_pool_channels_last_and_contiguous_agree(generator):
    x = torch.randn(2, 4, 12, 11, generator=generator)
    layer = MaxBlurPool2d(3, padding=1, filter_size=4)
    out_cl = layer(x.to(memory_format=torch.channels_last))
    assert out_cl.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out_cl, layer(x), rtol=0, atol=1e-6)


@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last])
def test_cpu_autocast_forward_and_backward(generator, fmt):
    """Under CPU bfloat16 autocast a float32 input keeps float32 products; the backward (outside autocast) works."""
    x = torch.randn(2, 4, 48, 48, generator=generator).contiguous(memory_format=fmt).requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = BlurPool2d(filter_size=4)(x)
        z = BlurPool2d(filter_size=4)(x.bfloat16())
    (y.float().sum() + z.float().sum()).backward()
    expected = CPU.blur_pool_slices(x.detach(), _taps(4), [2, 2], "reflect", 0)
    torch.testing.assert_close(y.float(), expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(z.float(), expected, rtol=2e-2, atol=2e-2)
    assert x.grad is not None and x.grad.dtype == torch.float32 and torch.isfinite(x.grad).all()
