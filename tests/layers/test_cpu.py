"""The channels_last convolution paths of the CPU blur-pool.

A channels_last blur-pool convolves the padded copy of its input (``_cpu._padded_conv``), or, when
that copy would be large, runs one depthwise convolution with zero padding and adds the border parts
of the other pad modes (``_cpu._unpadded_conv``). Both must equal the strided slices for every pad
mode, filter, stride, size and ``pad_off`` and keep NaN/Inf local; the backward is the adjoint
products.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from antialias.filters import get_taps
from antialias.layers import _cpu as CPU
from antialias.layers import functional as AF
from antialias.layers._checks import blur_pads, padder

PAD_MODES = ["reflect", "replicate", "zeros", "circular"]


@pytest.fixture
def conv_always(monkeypatch):
    """Every channels_last input counted as large (no padded copy); records each unpadded call."""
    monkeypatch.setattr(CPU, "PADDED_COPY_MAX", 0)
    used = []
    original = CPU._unpadded_conv

    def spy(*args, **kwargs):
        used.append(True)
        return original(*args, **kwargs)

    monkeypatch.setattr(CPU, "_unpadded_conv", spy)
    return used


def _taps(k):
    return list(get_taps(k))


def _padded_conv(x, k, stride, pad_mode, pad_off):
    weight = CPU._depthwise(tuple(_taps(k)), 2, x.size(1), x.dtype)
    pad_fn = padder(x.shape[2:], list(blur_pads(k, pad_off)) * 2, pad_mode)
    return CPU._padded_conv(x, weight, pad_fn, [stride, stride])


@pytest.mark.parametrize("pad_mode", PAD_MODES)
def test_conv_path_equals_slices_2d(generator, conv_always, pad_mode):
    for k, stride, size, pad_off in itertools.product(
        (2, 3, 4, 5, 7), (1, 2, 3), (2, 5, 8, 11), (0, 1)
    ):
        x = torch.randn(2, 4, size, size + 1, generator=generator)
        x = x.contiguous(memory_format=torch.channels_last)
        expected = CPU.blur_pool_slices(x, _taps(k), [stride, stride], pad_mode, pad_off)
        actual = AF._blur_pool(x, _taps(k), [stride, stride], pad_mode, pad_off)
        assert actual.is_contiguous(memory_format=torch.channels_last)
        msg = f"k={k} s={stride} n={size} off={pad_off}"
        torch.testing.assert_close(actual, expected, rtol=0, atol=1e-6, msg=msg)
    # exactly the aligned cases ran the unpadded convolution (k=3: always; k=4, s=2: even sizes)
    aligned = 0
    for k, stride, size, pad_off in itertools.product(
        (2, 3, 4, 5, 7), (1, 2, 3), (2, 5, 8, 11), (0, 1)
    ):
        left, right = blur_pads(k, pad_off)
        same = [
            (n + 2 * left - k) // stride == (n + left + right - k) // stride
            for n in (size, size + 1)
        ]
        aligned += all(same)
    assert 0 < len(conv_always) == aligned


@pytest.mark.parametrize("pad_mode", PAD_MODES)
def test_conv_path_equals_slices_3d_and_bf16(generator, conv_always, pad_mode):
    x = torch.randn(2, 3, 6, 8, 7, generator=generator)
    x = x.contiguous(memory_format=torch.channels_last_3d)
    for k, stride in itertools.product((2, 3, 4, 5), ([1, 2, 2], [2, 2, 2], [2, 3, 1])):
        expected = CPU.blur_pool_slices(x, _taps(k), stride, pad_mode, 0)
        actual = AF._blur_pool(x, _taps(k), stride, pad_mode, 0)
        torch.testing.assert_close(actual, expected, rtol=0, atol=1e-6, msg=f"k={k} s={stride}")
    assert any(conv_always)
    conv_always.clear()
    x = torch.randn(2, 8, 12, 16, generator=generator).contiguous(memory_format=torch.channels_last)
    low = AF._blur_pool(x.bfloat16(), _taps(4), [2, 2], pad_mode, 0)
    assert conv_always == [True] and low.dtype == torch.bfloat16
    expected = CPU.blur_pool_slices(x, _taps(4), [2, 2], pad_mode, 0)
    torch.testing.assert_close(low.float(), expected, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("pad_mode", PAD_MODES)
@pytest.mark.parametrize("bad", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_conv_path_is_local(generator, conv_always, pad_mode, bad):
    """Every border part reads only its outputs' windows: one NaN/Inf, in the interior, on a border
    line or in a corner, reaches exactly the outputs whose window holds it."""
    size = 12
    for where in ((1, 2, 6, 5), (0, 0, 0, 1), (1, 1, 1, 5), (0, 3, 5, 1), (1, 1, size - 1, 10)):
        x = torch.randn(2, 4, size, size, generator=generator)
        x[where] = bad
        x = x.contiguous(memory_format=torch.channels_last)
        out = AF._blur_pool(x, _taps(4), [2, 2], pad_mode, 0)
        one_hot = torch.zeros(x.shape, dtype=torch.float64)
        one_hot[where] = 1.0
        expected = CPU.blur_pool_slices(one_hot, _taps(4), [2, 2], pad_mode, 0) > 0
        assert torch.equal(~torch.isfinite(out), expected), f"{pad_mode} {bad} at {where}"
    assert len(conv_always) == 5  # every call ran the convolution and its border parts


def test_conv_path_backward_is_the_adjoint(generator, conv_always):
    x = torch.randn(2, 3, 10, 8, generator=generator).contiguous(memory_format=torch.channels_last)
    grads = []
    for kernel in (AF._blur_pool, CPU.blur_pool_slices):
        xr = x.detach().clone().requires_grad_(True)
        y = kernel(xr, _taps(4), [2, 2], "reflect", 0)
        y.backward(torch.randn(y.shape, generator=torch.Generator().manual_seed(1)))
        grads.append(xr.grad)
    assert conv_always == [True]
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=1e-6)


@pytest.mark.parametrize("pad_mode", PAD_MODES)
def test_padded_conv_equals_slices_and_is_local(generator, pad_mode):
    for k, stride, size in itertools.product((2, 4, 7), (1, 2), (2, 5, 12)):
        x = torch.randn(2, 4, size, size + 1, generator=generator)
        x = x.contiguous(memory_format=torch.channels_last)
        expected = CPU.blur_pool_slices(x, _taps(k), [stride, stride], pad_mode, 1)
        actual = _padded_conv(x, k, stride, pad_mode, 1)
        assert actual.is_contiguous(memory_format=torch.channels_last), (k, stride, size)
        torch.testing.assert_close(actual, expected, rtol=0, atol=1e-6, msg=f"k={k} s={stride}")
    x = torch.randn(1, 2, 12, 12, generator=generator).contiguous(memory_format=torch.channels_last)
    x[0, 1, 0, 5] = float("nan")
    out = _padded_conv(x, 4, 2, pad_mode, 0)
    one_hot = torch.zeros(x.shape, dtype=torch.float64)
    one_hot[0, 1, 0, 5] = 1.0
    expected = CPU.blur_pool_slices(one_hot, _taps(4), [2, 2], pad_mode, 0) > 0
    assert torch.equal(torch.isnan(out), expected)


def test_which_path_runs(monkeypatch):
    """Small channels_last maps: the padded copy convolved; large ones (a padded copy of at least
    PADDED_COPY_MAX bytes): no copy; NCHW and float64: the matrix products."""
    used = []
    for name in ("_padded_conv", "_unpadded_conv", "separable_matmul"):
        original = getattr(CPU, name)

        def spy(*args, _name=name, _original=original, **kwargs):
            used.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(CPU, name, spy)
    small = torch.randn(1, 8, 16, 16).contiguous(memory_format=torch.channels_last)
    large = torch.zeros(2, 256, 128, 128).contiguous(memory_format=torch.channels_last)
    assert large.numel() * 4 >= CPU.PADDED_COPY_MAX > small.numel() * 4
    for x in (small, large, small.contiguous(), small.double()):
        used.clear()
        AF.blur_pool2d(x)
        assert used[0] == {16: "_padded_conv", 128: "_unpadded_conv"}.get(
            x.size(-1)
            if x.dtype == torch.float32 and x.dim() == 4 and not x.is_contiguous()
            else 0,
            "separable_matmul",
        ), (x.shape, x.dtype, used)


@pytest.mark.parametrize("native", [True, False], ids=["native-bf16", "no-bf16-units"])
def test_half_inputs_reach_the_convolution_in_the_compute_dtype(monkeypatch, generator, native):
    """float16 always, and bfloat16 on a CPU without bfloat16 units, are convolved in float32."""
    monkeypatch.setattr(CPU, "native_bf16", lambda: native)
    seen = []
    original = CPU._padded_conv

    def spy(x, *args, **kwargs):
        seen.append(x.dtype)
        return original(x, *args, **kwargs)

    monkeypatch.setattr(CPU, "_padded_conv", spy)
    x = torch.randn(2, 8, 12, 10, generator=generator).contiguous(memory_format=torch.channels_last)
    for dtype in (torch.float16, torch.bfloat16):
        seen.clear()
        y = AF.blur_pool2d(x.to(dtype))
        compute = torch.bfloat16 if dtype == torch.bfloat16 and native else torch.float32
        assert seen == [compute] and y.dtype == dtype, (dtype, seen)
        assert y.is_contiguous(memory_format=torch.channels_last)
        expected = CPU.blur_pool_slices(x.to(dtype).float(), _taps(4), [2, 2], "reflect", 0)
        torch.testing.assert_close(y, expected.to(dtype))  # within the dtype's rounding


def test_a_layer_builds_its_plan_once_per_shape():
    """The tables, matrices and convolution arguments are worked out on the first call of a shape;
    later calls only look them up."""
    pool = AF.blur_pool2d
    for fmt in (torch.contiguous_format, torch.channels_last):
        x = torch.randn(2, 5, 11, 9).contiguous(memory_format=fmt)
        pool(x)
        misses = CPU._pool_plan.cache_info().misses
        for _ in range(3):
            pool(x)
        y = pool(x.requires_grad_())
        y.sum().backward()
        assert CPU._pool_plan.cache_info().misses == misses
        adjoint_misses = CPU._adjoint.cache_info().misses
        pool(x).sum().backward()
        assert CPU._adjoint.cache_info().misses == adjoint_misses
