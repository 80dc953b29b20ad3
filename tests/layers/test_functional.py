"""The functional API's kernels (functional.py, with the private _cpu.py kernels and _checks.py
padding).

The matrix formulation equals the strided one and the fast max equals max pooling: the layers run
the matrix formulation on CPU in eager mode, the strided (slices) formulation under
torch.compile/export and elsewhere; both must give the same values and gradients everywhere,
including the cases the reference cannot check (circular padding, 3D, upsampling, tiny maps).

Locality on every backend: one NaN or Inf changes only the outputs whose window holds it. A banded
matrix product multiplies every input of a row by the matrix's zeros (0 * NaN = NaN); the CPU
kernels must not let that spread a NaN over the map, forward or backward. The expected set of
outputs is that of the windows: the slices formulation run on a one-hot indicator (non-negative
taps, so no cancellation), checked against the count a depthwise convolution gives for an interior
sample.
"""

import importlib.util
import itertools

import pytest
import torch
import torch.nn.functional as F

from antialias.filters import get_taps
from antialias.layers import (
    BlurPool2d,
    BlurPool3d,
    BlurUpsample2d,
    MaxBlurPool2d,
    aps_down2d,
    blur_pool1d,
    blur_pool2d,
    blur_upsample1d,
    blur_upsample2d,
    lps_down2d,
    max_blur_pool2d,
    polyphase_up2d,
)
from antialias.layers import _cpu as CPU
from antialias.layers import functional as AF
from antialias.layers._checks import blur_pads, compact

PAD_MODES = ["reflect", "replicate", "zeros", "circular"]
FILTERS = [1, 2, 3, 4, 6, 7, "gaussian-5"]


def _taps(spec):
    return list(get_taps(spec))


@pytest.mark.parametrize("pad_mode", PAD_MODES)
def test_pool_matrix_equals_slices_1d_2d(generator, pad_mode):
    # the reference grid (sizes 11, 12) is checked against the reference in test_blurpool.py; here:
    # tiny maps
    for spec, stride, size, pad_off in itertools.product(FILTERS, (1, 2, 3), (1, 2, 3, 7), (0, 1)):
        taps = _taps(spec)
        x = torch.randn(2, 3, size, size + 3, generator=generator, dtype=torch.float64)
        assert CPU.use_matrices(x)
        for inp, strides in ((x, [stride, stride]), (x[:, :, 0], [stride])):
            expected = CPU.blur_pool_slices(inp, taps, strides, pad_mode, pad_off)
            actual = AF._blur_pool(inp, taps, strides, pad_mode, pad_off)
            assert actual.shape == expected.shape, (spec, stride, size, pad_off)
            torch.testing.assert_close(
                actual,
                expected,
                rtol=0,
                atol=1e-12,
                msg=f"{spec} s={stride} n={size} off={pad_off}",
            )


@pytest.mark.parametrize("pad_mode", PAD_MODES)
def test_pool_matrix_equals_slices_3d(generator, pad_mode):
    x = torch.randn(1, 2, 3, 5, 6, generator=generator, dtype=torch.float64)
    for spec, stride in itertools.product((2, 4, 5), ([1, 2, 2], [2, 3, 1])):
        taps = _taps(spec)
        expected = CPU.blur_pool_slices(x, taps, stride, pad_mode, 0)
        torch.testing.assert_close(
            AF._blur_pool(x, taps, stride, pad_mode, 0), expected, rtol=0, atol=1e-12
        )


@pytest.mark.parametrize("pad_mode", PAD_MODES)
def test_upsample_matrix_equals_slices(generator, pad_mode):
    for spec, factor, size in itertools.product((1, 2, 4, 5, "box-3"), (1, 2, 3), (1, 2, 5)):
        taps = _taps(spec)
        x = torch.randn(2, 3, size, size + 2, generator=generator, dtype=torch.float64)
        for inp, factors in ((x, [factor, factor]), (x[:, :, 0], [factor])):
            expected = CPU.blur_upsample_slices(inp, taps, factors, pad_mode)
            actual = AF._blur_upsample(inp, [taps] * len(factors), factors, pad_mode)
            torch.testing.assert_close(
                actual, expected, rtol=0, atol=1e-12, msg=f"{spec} f={factor} n={size}"
            )


@pytest.mark.parametrize("pad_mode", ["reflect", "replicate", "zeros"])
def test_channels_last_matrix_path_equals_slices(generator, pad_mode):
    """channels_last inputs are multiplied in their own memory order and stay channels_last."""
    for k, stride, size, pad_off in itertools.product(
        (2, 3, 4, 5, 7), (1, 2, 3), (2, 5, 8, 11), (0, 1)
    ):
        taps = _taps(k)
        x = torch.randn(2, 4, size, size + 1, generator=generator).to(
            memory_format=torch.channels_last
        )
        expected = CPU.blur_pool_slices(x, taps, [stride, stride], pad_mode, pad_off)
        actual = AF._blur_pool(x, taps, [stride, stride], pad_mode, pad_off)
        assert actual.shape == expected.shape and actual.is_contiguous(
            memory_format=torch.channels_last
        )
        torch.testing.assert_close(
            actual, expected, rtol=0, atol=1e-6, msg=f"k={k} s={stride} n={size} off={pad_off}"
        )
    x = torch.randn(2, 4, 12, 13, generator=generator).to(memory_format=torch.channels_last)
    low = AF._blur_pool(x.bfloat16(), _taps(4), [2, 2], pad_mode, 0)
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(
        low.float(), CPU.blur_pool_slices(x, _taps(4), [2, 2], pad_mode, 0), rtol=2e-2, atol=2e-2
    )


def test_gradients_equal_slices(generator):
    """Autograd through the matrix products (the adjoint) equals autograd through the strided
    slices."""
    taps = _taps(4)
    for fmt in (torch.contiguous_format, torch.channels_last):
        x = torch.randn(2, 3, 9, 8, generator=generator, dtype=torch.float64).to(memory_format=fmt)
        grads = []
        for kernel in (AF._blur_pool, CPU.blur_pool_slices):
            xr = x.detach().clone().requires_grad_(True)
            y = kernel(xr, taps, [2, 2], "reflect", 0)
            upstream = torch.randn(
                y.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64
            )
            y.backward(upstream)
            grads.append(xr.grad)
        torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=1e-12)


def test_gradcheck_channels_last_and_upsample(generator):
    x = torch.randn(1, 2, 6, 5, generator=generator, dtype=torch.float64).to(
        memory_format=torch.channels_last
    )
    assert torch.autograd.gradcheck(
        BlurPool2d(filter_size=5, stride=(2, 3), pad_mode="circular"), (x.requires_grad_(),)
    )
    y = torch.randn(1, 2, 4, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        BlurUpsample2d(filter_size="box-3", scale_factor=3, pad_mode="reflect"), (y,)
    )


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
    torch.testing.assert_close(
        out3, BlurPool3d(stride=(1, 2, 2))(x3.contiguous()), rtol=0, atol=1e-6
    )
    for dtype in (torch.bfloat16, torch.float16, torch.float64):
        assert BlurPool2d()(x.to(dtype)).dtype == dtype


@pytest.mark.parametrize("pad_mode", PAD_MODES)
def test_long_axes_equal_slices(generator, pad_mode):
    """Values and gradients on the map sizes of ImageNet networks' first blur layers (111, 112)."""
    for k, stride, size in ((4, 2, 111), (7, 3, 112)):
        taps = _taps(k)
        for fmt in (torch.contiguous_format, torch.channels_last):
            x = torch.randn(1, 2, size, 64, generator=generator, dtype=torch.float64).to(
                memory_format=fmt
            )
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
    torch.testing.assert_close(
        BlurPool2d()(x), CPU.blur_pool_slices(x, _taps(4), [2, 2], "reflect", 0), rtol=0, atol=0
    )


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


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_shifted_max_equals_max_pool(generator, ndim):
    pool = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[ndim - 1]
    x = torch.randn((2, 3) + (7,) * ndim, generator=generator)
    x[0, 0].view(-1)[:5] = float("-inf")
    x[1, 1].view(-1)[3] = float("nan")
    for k in (1, 2, 3):
        for p in range(k // 2 + 1):
            expected = pool(x, k, 1, p)
            actual = CPU.max_pool(x, [k] * ndim, [p] * ndim, shifted=True)
            assert actual.shape == expected.shape and actual.is_contiguous()
            torch.testing.assert_close(actual, expected, rtol=0, atol=0, equal_nan=True)
            assert actual.data_ptr() != x.data_ptr()


def test_max_gradient_is_max_pooling(generator):
    """When autograd records, the gradient is max pooling's, ties included (one winner each)."""
    x = torch.randn(2, 3, 8, 9, generator=generator, dtype=torch.float64).relu()  # ties at zero
    grads = []
    for fn in (lambda t: CPU.max_pool(t, [3, 3], [1, 1], True), lambda t: F.max_pool2d(t, 3, 1, 1)):
        xr = x.clone().requires_grad_(True)
        fn(xr).backward(torch.ones(2, 3, 8, 9, dtype=torch.float64))
        grads.append(xr.grad)
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=0)
    with torch.no_grad():
        torch.testing.assert_close(
            CPU.max_pool(x, [3, 3], [1, 1], True), F.max_pool2d(x, 3, 1, 1), rtol=0, atol=0
        )


def test_max_blur_pool_channels_last_and_contiguous_agree(generator):
    x = torch.randn(2, 4, 12, 11, generator=generator)
    layer = MaxBlurPool2d(3, padding=1, filter_size=4)
    out_cl = layer(x.to(memory_format=torch.channels_last))
    assert out_cl.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out_cl, layer(x), rtol=0, atol=1e-6)


@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last])
def test_cpu_autocast_forward_and_backward(generator, fmt):
    """Under CPU bfloat16 autocast a float32 input keeps float32 products; the backward (outside
    autocast) works."""
    x = (
        torch.randn(2, 4, 48, 48, generator=generator)
        .contiguous(memory_format=fmt)
        .requires_grad_(True)
    )
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = BlurPool2d(filter_size=4)(x)
        z = BlurPool2d(filter_size=4)(x.bfloat16())
    (y.float().sum() + z.float().sum()).backward()
    expected = CPU.blur_pool_slices(x.detach(), _taps(4), [2, 2], "reflect", 0)
    torch.testing.assert_close(y.float(), expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(z.float(), expected, rtol=2e-2, atol=2e-2)
    assert x.grad is not None and x.grad.dtype == torch.float32 and torch.isfinite(x.grad).all()


# ------------------------------------------------------------------------------------------------
# Locality

HAS_TRITON = importlib.util.find_spec("triton") is not None

# (backend, memory format, map size, dtype): the matrix products (NCHW and channels_last, float32
# and bfloat16), the strided slices, the Triton kernels (interpreter on CPU).
BACKENDS = [
    ("cpu", torch.contiguous_format, 32, torch.float32),
    ("cpu", torch.contiguous_format, 32, torch.bfloat16),
    ("cpu", torch.channels_last, 48, torch.float32),
    ("cpu", torch.channels_last, 48, torch.bfloat16),
    ("slices", torch.contiguous_format, 32, torch.float32),
    pytest.param(
        "triton",
        torch.contiguous_format,
        16,
        torch.float32,
        marks=pytest.mark.skipif(not HAS_TRITON, reason="needs triton"),
    ),
    pytest.param(
        "triton",
        torch.channels_last,
        16,
        torch.float32,
        marks=pytest.mark.skipif(not HAS_TRITON, reason="needs triton"),
    ),
]
IDS = [
    "cpu-matrix",
    "cpu-matrix-bf16",
    "cpu-matrix-cl",
    "cpu-matrix-cl-bf16",
    "slices",
    "triton",
    "triton-cl",
]
TAPS = [0.125, 0.375, 0.375, 0.125]  # binomial k=4


def _windows(op, shape, where, pad_mode):
    """Outputs whose window holds input ``where``: the slices formulation on a one-hot input."""
    one_hot = torch.zeros(shape, dtype=torch.float64)
    one_hot[where] = 1.0
    with AF.set_backend("slices"):
        return op(one_hot, pad_mode) > 0


def _adjoint_windows(op, shape, out_where, pad_mode):
    """Inputs the backward of output ``out_where`` reaches: autograd of the slices formulation."""
    x = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
    with AF.set_backend("slices"):
        y = op(x, pad_mode)
    upstream = torch.zeros_like(y)
    upstream[out_where] = 1.0
    (grad,) = torch.autograd.grad(y, x, upstream)
    return grad != 0


def _pool(x, pad_mode):
    return AF._blur_pool(x, TAPS, [2, 2], pad_mode, 0)


def _upsample(x, pad_mode):
    return AF._blur_upsample(x, [TAPS, TAPS], [2, 2], pad_mode)


def _max_blur(x, pad_mode):
    return AF._max_blur_pool(x, [2, 2], [0, 0], TAPS, [2, 2], pad_mode, 0)


def _input(size, fmt, dtype, generator, device):
    x = torch.randn(2, 3, size, size, generator=generator).to(device, dtype)
    return x.contiguous(memory_format=fmt)


def _device(backend, device):
    """Triton runs on the device under test (interpreter on CPU); the CPU backends on the CPU."""
    return device if backend == "triton" else torch.device("cpu")


@pytest.mark.parametrize(("backend", "fmt", "size", "dtype"), BACKENDS, ids=IDS)
@pytest.mark.parametrize("pad_mode", ["reflect", "zeros", "circular"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_forward_is_local(generator, device, backend, fmt, size, dtype, pad_mode, bad):
    shape = (2, 3, size, size)
    device = _device(backend, device)
    for op, name in (
        (_pool, "blur_pool"),
        (_upsample, "blur_upsample"),
        (_max_blur, "max_blur_pool"),
    ):
        for where in ((1, 2, 10, 9), (0, 0, 0, 1), (1, 1, size - 1, size - 2)):  # interior, borders
            x = _input(size, fmt, dtype, generator, device)
            x[where] = bad
            expected = _windows(op, shape, where, pad_mode)
            with AF.set_backend(backend):
                if backend == "cpu":
                    assert AF._choose(x) == "matrix"
                out = op(x, pad_mode).cpu()
            msg = f"{name} {backend} {pad_mode} {bad} at {where}"
            assert torch.equal(~torch.isfinite(out), expected), (
                f"{msg}: {int((~torch.isfinite(out)).sum())} bad outputs"
            )
            if name == "blur_pool" and where == (1, 2, 10, 9):
                assert int(expected.sum()) == 4, (
                    msg
                )  # 2x2 outputs, as a depthwise convolution gives


@pytest.mark.parametrize(("backend", "fmt", "size", "dtype"), BACKENDS, ids=IDS)
def test_backward_is_local(generator, device, backend, fmt, size, dtype):
    """A NaN in the upstream gradient reaches only the inputs of that output's window."""
    shape = (2, 3, size, size)
    device = _device(backend, device)
    for op in (_pool, _upsample, _max_blur):
        for pad_mode in ("reflect", "circular"):
            x = _input(size, fmt, dtype, generator, device).requires_grad_(True)
            with AF.set_backend(backend):
                y = op(x, pad_mode)
                out_where = (1, 2, 3, 4)
                upstream = torch.randn(y.shape, generator=generator).to(device, dtype)
                upstream[out_where] = float("nan")
                (grad,) = torch.autograd.grad(y, x, upstream)
            grad, x, upstream = grad.cpu(), x.detach().cpu(), upstream.cpu()
            if op is _max_blur:  # the gradient reaches the winners of the windows only
                xr = x.detach().double().requires_grad_(True)
                with AF.set_backend("slices"):
                    ref = CPU.blur_pool_slices(F.max_pool2d(xr, 2, 1), TAPS, [2, 2], pad_mode, 0)
                (ref_grad,) = torch.autograd.grad(ref, xr, upstream.double())
                expected = torch.isnan(ref_grad)
            else:
                expected = _adjoint_windows(op, shape, out_where, pad_mode)
            assert 0 < int(expected.sum()) <= 16
            assert torch.equal(torch.isnan(grad), expected), f"{op.__name__} {backend} {pad_mode}"


def test_one_nan_or_inf_reaches_four_outputs(generator):
    """One NaN or Inf in a 32x32 map reaches the 4 outputs whose window holds it (not all 256)."""
    for bad in (float("nan"), float("inf")):
        x = torch.randn(1, 1, 32, 32, generator=generator)
        x[0, 0, 10, 9] = bad
        out = AF.blur_pool2d(x, 4)
        assert int((~torch.isfinite(out)).sum()) == 4
        conv = F.conv2d(F.pad(x, (1, 2, 1, 2)), torch.ones(1, 1, 4, 4), stride=2)
        assert torch.equal(~torch.isfinite(out), ~torch.isfinite(conv))


# ------------------------------------------------------------------------------------------------
# Degenerate inputs


def test_functional_validates_too():
    with pytest.raises(ValueError, match="pad_mode must be one of"):
        blur_pool2d(torch.zeros(1, 1, 4, 4), pad_mode="bogus")
    with pytest.raises(ValueError, match=r"blur_pool1d expects a 3D input \(N, C, L\)"):
        blur_pool1d(torch.zeros(1, 4, 4, 4))
    with pytest.raises(ValueError, match="stride must be >= 1"):
        blur_pool2d(torch.zeros(1, 1, 4, 4), stride=-1)
    with pytest.raises(ValueError, match=r"scale_factor must be >= 1, got \(1, 0\)"):
        blur_upsample2d(torch.zeros(1, 1, 4, 4), scale_factor=(1, 0))
    with pytest.raises(TypeError, match="max_blur_pool2d expects a Tensor, got list"):
        max_blur_pool2d([[[[1.0]]]])


def test_padding_rule_and_compact_reprs():
    """The one padding rule (reference): (k - 1) // 2 before, k // 2 after, plus pad_off on both
    sides."""
    assert [blur_pads(k) for k in range(1, 6)] == [(0, 0), (0, 1), (1, 1), (1, 2), (2, 2)]
    assert blur_pads(4, pad_off=1) == (2, 3)
    assert compact([2, 2, 2]) == 2 and compact([1, 2]) == (1, 2)


def test_empty_inputs_of_the_functionals():
    x = torch.randn(2, 0, 5, 4)
    assert blur_pool2d(x, stride=2).shape == (2, 0, 3, 2)
    assert max_blur_pool2d(x, 2).shape == (2, 0, 2, 2)
    assert blur_upsample2d(x, scale_factor=(1, 3)).shape == (2, 0, 5, 12)
    assert aps_down2d(x).shape == (2, 0, 3, 2)
    assert polyphase_up2d(torch.randn(0, 3, 2, 2), torch.zeros(0, dtype=torch.int64)).shape == (
        0,
        3,
        4,
        4,
    )


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


@pytest.mark.parametrize(
    "call, expected",
    [
        (
            lambda: AF.blur_pool1d(torch.tensor([[[0.0, 0.0, 8.0, 0.0]]]), filter_size=3),
            [[[0.0, 4.0]]],
        ),
        (lambda: AF.blur_pool3d(torch.ones(1, 2, 5, 6, 7), filter_size=3).shape, [1, 2, 3, 3, 4]),
        (lambda: AF.max_blur_pool1d(torch.zeros(1, 1, 9)).shape, [1, 1, 4]),
        (lambda: AF.max_blur_pool3d(torch.zeros(1, 1, 5, 5, 5)).shape, [1, 1, 2, 2, 2]),
        (lambda: AF.blur_upsample1d(torch.tensor([[[0.0, 4.0]]])), [[[0.0, 1.0, 3.0, 4.0]]]),
        (lambda: AF.blur_upsample3d(torch.ones(1, 1, 2, 2, 2)).shape, [1, 1, 4, 4, 4]),
    ],
    ids=["blur_pool1d", "blur_pool3d", "max_blur_pool1d", "max_blur_pool3d", "up1d", "up3d"],
)
def test_1d_and_3d_functionals_on_small_examples(call, expected):
    """The 1D and 3D functionals' values and shapes on the small inputs of their 2D twins' docs."""
    out = call()
    if isinstance(out, torch.Size):
        assert list(out) == expected
    else:
        torch.testing.assert_close(out, torch.tensor(expected), rtol=0, atol=0)
