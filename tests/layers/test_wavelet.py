"""Wavelet (WaveCNet) pooling: the filter table, Haar = 2 x average pooling, a direct DWT reference,
sizes, padding, gradients, errors, the factory and whole-model conversion."""

import math

import pytest
import torch
import torchvision
from torch.nn import functional as F

from antialias import convert
from antialias.layers import (
    WaveletPool1d,
    WaveletPool2d,
    WaveletPool3d,
    create_downsample,
    wavelet_pool1d,
    wavelet_pool2d,
    wavelet_pool3d,
)
from antialias.layers.wavelet import WAVELETS

POOL = {1: WaveletPool1d, 2: WaveletPool2d, 3: WaveletPool3d}
POOL_FN = {1: wavelet_pool1d, 2: wavelet_pool2d, 3: wavelet_pool3d}
AVG = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
# Published rec_lo values (PyWavelets' tables): a check that the names are right (db3 is not sym3...);
# the orthonormality above is the exact property.
PUBLISHED = {
    "db2": [0.48296291314469025, 0.836516303737469, 0.22414386804185735, -0.12940952255092145],
    "db3": [
        0.3326705529509569,
        0.8068915093133388,
        0.4598775021193313,
        -0.13501102001039084,
        -0.08544127388224149,
        0.035226291882100656,
    ],
}


@pytest.mark.parametrize("name", sorted(WAVELETS))
def test_filters_are_orthonormal_low_pass(name):
    h = torch.tensor(WAVELETS[name], dtype=torch.float64)
    assert math.isclose(float(h.sum()), math.sqrt(2), abs_tol=1e-14)
    for m in range(len(h) // 2):  # sum_k h[k] h[k + 2m] = delta(m)
        assert math.isclose(
            float((h[: len(h) - 2 * m] * h[2 * m :]).sum()), float(m == 0), abs_tol=1e-14
        )
    if name in PUBLISHED:
        torch.testing.assert_close(
            h, torch.tensor(PUBLISHED[name], dtype=torch.float64), rtol=0, atol=1e-10
        )


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_haar_low_band_is_average_pooling_times_sqrt2_per_axis(ndim, generator):
    size = {1: (10,), 2: (8, 6), 3: (4, 6, 8)}[ndim]
    x = torch.randn(2, 3, *size, generator=generator, dtype=torch.float64)
    expected = AVG[ndim](x, 2) * math.sqrt(2) ** ndim  # 2 x avg_pool2d in 2D
    torch.testing.assert_close(POOL_FN[ndim](x, wavelet="haar"), expected, rtol=0, atol=1e-12)


def reference_dwt_low(x, taps, pad_mode, dims=None):
    """y[n] = sum_j h[j] x[2n + j - p] along each spatial axis, p = (K - 2) // 2, with explicit index maps."""
    k, p = len(taps), (len(taps) - 2) // 2
    for dim in dims or range(2, x.dim()):
        length = x.size(dim)
        out = []
        for n in range(math.ceil(length / 2)):
            acc = 0
            for j, h in enumerate(taps):
                i = 2 * n + j - p
                if pad_mode == "circular":
                    i %= length
                elif pad_mode == "zeros" and not 0 <= i < length:
                    continue
                elif pad_mode == "replicate":
                    i = min(max(i, 0), length - 1)
                elif pad_mode == "reflect":
                    i = -i if i < 0 else (2 * (length - 1) - i if i >= length else i)
                acc = acc + h * x.select(dim, i)
            out.append(acc)
        x = torch.stack(out, dim)
        assert len(out) == math.ceil(length / 2) and k
    return x


@pytest.mark.parametrize("pad_mode", ["reflect", "replicate", "zeros", "circular"])
@pytest.mark.parametrize("name", sorted(WAVELETS))
def test_matches_direct_dwt_on_odd_and_even_sizes(name, pad_mode, generator):
    for size in [(7, 8), (9, 6), (5, 5)]:
        x = torch.randn(1, 2, *size, generator=generator, dtype=torch.float64)
        out = wavelet_pool2d(x, wavelet=name, pad_mode=pad_mode)
        assert out.shape == (1, 2, math.ceil(size[0] / 2), math.ceil(size[1] / 2))
        torch.testing.assert_close(
            out, reference_dwt_low(x, WAVELETS[name], pad_mode), rtol=0, atol=1e-12
        )
        one_axis = wavelet_pool2d(x, (1, 2), name, pad_mode)  # the per-axis convolution path
        torch.testing.assert_close(
            one_axis, reference_dwt_low(x, WAVELETS[name], pad_mode, [3]), rtol=0, atol=1e-12
        )


@pytest.mark.parametrize("name", sorted(WAVELETS))
def test_circular_shift_by_two_shifts_the_output_by_one(name, generator):
    x = torch.randn(1, 2, 12, 10, generator=generator, dtype=torch.float64)
    out = wavelet_pool2d(x, wavelet=name, pad_mode="circular")
    shifted = wavelet_pool2d(torch.roll(x, (2, -4), (2, 3)), wavelet=name, pad_mode="circular")
    torch.testing.assert_close(shifted, torch.roll(out, (1, -2), (2, 3)), rtol=0, atol=1e-12)


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_shapes_per_axis_stride_and_tiny_maps(ndim, generator):
    for size in [(1,) * ndim, (2,) * ndim, (5,) * ndim, (6,) * ndim]:
        x = torch.randn(1, 2, *size, generator=generator)
        for name in WAVELETS:  # reflect on a map shorter than the padding falls back to replicate
            assert POOL[ndim](2, wavelet=name)(x).shape == (1, 2, *(math.ceil(n / 2) for n in size))
    x = torch.randn(1, 2, *(7,) * ndim, generator=generator)
    stride = (1,) + (2,) * (ndim - 1)
    out = POOL_FN[ndim](x, stride, "db2")
    assert out.shape == (1, 2, 7, *(4,) * (ndim - 1))
    if ndim == 1:
        torch.testing.assert_close(out, x)


@pytest.mark.parametrize("name", sorted(WAVELETS))
@pytest.mark.parametrize(("ndim", "size"), [(1, (7,)), (2, (5, 6)), (3, (3, 4, 5))])
def test_gradcheck(ndim, size, name, generator):
    x = torch.randn(1, 2, *size, generator=generator, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: POOL_FN[ndim](t, 2, name, "reflect"), (x,))


def test_repr_state_and_dtypes(generator):
    pool = WaveletPool2d(64, (2, 1), "db3", "zeros")
    assert (
        repr(pool) == "WaveletPool2d(channels=64, stride=(2, 1), wavelet='db3', pad_mode='zeros')"
    )
    assert pool.state_dict() == {}
    x = torch.randn(1, 2, 8, 8, generator=generator)
    assert wavelet_pool2d(x.to(torch.bfloat16)).dtype == torch.bfloat16
    cl = x.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(wavelet_pool2d(cl, wavelet="db2"), wavelet_pool2d(x, wavelet="db2"))


def test_errors():
    with pytest.raises(ValueError, match="stride must be 1 or 2 per axis"):
        WaveletPool2d(stride=3)
    with pytest.raises(ValueError, match="wavelet must be one of"):
        wavelet_pool2d(torch.zeros(1, 1, 4, 4), wavelet="sym4")
    with pytest.raises(ValueError, match="pad_mode must be one of"):
        WaveletPool1d(pad_mode="wrap")
    with pytest.raises(ValueError, match="5D input"):
        wavelet_pool3d(torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match="built for 2 channels"):
        WaveletPool2d(2)(torch.zeros(1, 3, 4, 4))


def test_factory_picks_the_wavelet_by_filter_size_or_name():
    assert (
        create_downsample("wavelet", 2, 8, 2).wavelet == "db2"
    )  # the default filter_size 4: 4 taps
    assert create_downsample("wavelet", 2, 8, 2, filter_size=2).wavelet == "haar"
    assert create_downsample("wavelet", 1, 8, 2, filter_size=6).wavelet == "db3"
    layer = create_downsample("wavelet", 3, 8, 2, wavelet="haar", pad_mode="circular")
    assert (
        isinstance(layer, WaveletPool3d)
        and layer.wavelet == "haar"
        and layer.pad_mode == "circular"
    )
    with pytest.raises(ValueError, match="picks its wavelet by filter_size"):
        create_downsample("wavelet", 2, 8, 2, filter_size=5)
    with pytest.raises(ValueError, match="picks its wavelet by filter_size"):
        create_downsample("wavelet", 2, 8, 2, filter_size="triangle-3")
    with pytest.raises(TypeError, match="only the option 'wavelet'"):
        create_downsample("wavelet", 2, 8, 2, window="hamming")


@pytest.mark.parametrize("filter_size", [2, 4])
@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v2"])
def test_converts_torchvision_models(arch, filter_size):
    torch.manual_seed(0)
    host = getattr(torchvision.models, arch)(weights=None, num_classes=10)
    model = convert(host, filter_size, method="wavelet")
    layers = [m for m in model.modules() if isinstance(m, WaveletPool2d)]
    assert len(layers) >= 4 and {m.wavelet for m in layers} == {
        "haar" if filter_size == 2 else "db2"
    }
    assert sorted(model.state_dict()) == sorted(host.state_dict())
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    out = model(x)
    out.square().mean().backward()
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
