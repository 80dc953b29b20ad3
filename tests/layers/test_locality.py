"""Locality on every backend: one NaN or Inf changes only the outputs whose window holds it (STYLE 26, issue 12).

A banded matrix product multiplies every input of a row by the matrix's zeros (0 * NaN = NaN); the CPU
kernels must not let that spread a NaN over the map, forward or backward. The expected set of outputs is
that of the windows: the slices formulation run on a one-hot indicator (non-negative taps, so no
cancellation), checked against the count a depthwise convolution gives for an interior sample.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch
import torch.nn.functional as F

from antialias.layers import _cpu as CPU
from antialias.layers import functional as AF

HAS_TRITON = importlib.util.find_spec("triton") is not None

# (backend, memory format, map size, dtype): the matrix products (NCHW), the channels_last convolution path
# (maps of at least CPU.CONV_MIN_SIZE), the strided slices, the Triton kernels (interpreter on CPU).
BACKENDS = [
    ("cpu", torch.contiguous_format, 32, torch.float32),
    ("cpu", torch.contiguous_format, 32, torch.bfloat16),
    ("cpu", torch.channels_last, 48, torch.float32),
    ("cpu", torch.channels_last, 48, torch.bfloat16),
    ("slices", torch.contiguous_format, 32, torch.float32),
    pytest.param("triton", torch.contiguous_format, 16, torch.float32,
                 marks=pytest.mark.skipif(not HAS_TRITON, reason="needs triton")),
    pytest.param("triton", torch.channels_last, 16, torch.float32,
                 marks=pytest.mark.skipif(not HAS_TRITON, reason="needs triton")),
]
IDS = ["cpu-matrix", "cpu-matrix-bf16", "cpu-conv-cl", "cpu-conv-cl-bf16", "slices", "triton", "triton-cl"]
TAPS = [0.125, 0.375, 0.375, 0.125]  # binomial k=4


def _windows(op, shape, where, pad_mode):
    """Outputs whose window holds input ``where``: the op's slices formulation on a one-hot input."""
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
    return AF._blur_upsample(x, TAPS, [2, 2], pad_mode)


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
    for op, name in ((_pool, "blur_pool"), (_upsample, "blur_upsample"), (_max_blur, "max_blur_pool")):
        for where in ((1, 2, 10, 9), (0, 0, 0, 1), (1, 1, size - 1, size - 2)):  # interior, borders
            x = _input(size, fmt, dtype, generator, device)
            x[where] = bad
            expected = _windows(op, shape, where, pad_mode)
            with AF.set_backend(backend):
                if backend == "cpu":
                    assert AF._choose(x) == "matrix"
                out = op(x, pad_mode).cpu()
            msg = f"{name} {backend} {pad_mode} {bad} at {where}"
            assert torch.equal(~torch.isfinite(out), expected), f"{msg}: {int((~torch.isfinite(out)).sum())} bad outputs"
            if name == "blur_pool" and where == (1, 2, 10, 9):
                assert int(expected.sum()) == 4, msg  # 2x2 outputs, as a depthwise convolution gives


@pytest.mark.parametrize(("backend", "fmt", "size", "dtype"), BACKENDS, ids=IDS)
def test_backward_is_local(generator, device, backend, fmt, size, dtype):
    """A NaN in the upstream gradient reaches only the inputs of that output's window (the adjoint)."""
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


def test_nan_map_counts_reported_in_issue(generator):
    """The issue's case: one NaN in a 32x32 map gave 256/256 NaN outputs, one Inf gave 252; now 4 each."""
    for bad in (float("nan"), float("inf")):
        x = torch.randn(1, 1, 32, 32, generator=generator)
        x[0, 0, 10, 9] = bad
        out = AF.blur_pool2d(x, 4)
        assert int((~torch.isfinite(out)).sum()) == 4
        conv = F.conv2d(F.pad(x, (1, 2, 1, 2)), torch.ones(1, 1, 4, 4), stride=2)
        assert torch.equal(~torch.isfinite(out), ~torch.isfinite(conv))
