"""The private GPU kernels (the _triton package behind functional.py's backend dispatch) equal the
float64 reference path
(the strided slices formulation), forward and backward.

Without a GPU they run in Triton's interpreter (``TRITON_INTERPRET=1``, set in
``tests/conftest.py``); with ``ANTIALIAS_TEST_DEVICE=cuda`` the same tests run the compiled kernels
(``benchmarks/gpu_check.sh``). Maps are tiny: the interpreter runs every program in numpy.
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("triton")

from antialias.filters import get_taps  # noqa: E402
from antialias.layers import BlurPool1d, BlurPool2d, BlurUpsample2d, MaxBlurPool2d  # noqa: E402
from antialias.layers import _cpu as CPU  # noqa: E402
from antialias.layers import functional as AF  # noqa: E402
from antialias.layers._triton import function as TF  # noqa: E402
from antialias.layers._triton import tables as T  # noqa: E402

PAD_MODES = ["reflect", "replicate", "zeros", "circular"]
# half precision: one rounding of the input and one of the output, accumulation in float32
LOW = {
    torch.float16: {"rtol": 2e-3, "atol": 2e-3},
    torch.bfloat16: {"rtol": 1.6e-2, "atol": 1.6e-2},
}


def _taps(spec):
    return list(get_taps(spec))


def _randn(generator, *shape, device):
    """Float64 values that float32 holds exactly: the kernels (float32) and the reference see the
    same input."""
    return torch.randn(*shape, generator=generator).double().to(device)


def _close(actual, expected, msg=""):
    """float32 result vs float64 reference: within 1e-6 of the reference's scale (fp32 cannot hold
    4.27 to 1e-6)."""
    scale = max(1.0, float(expected.detach().abs().max())) if expected.numel() else 1.0
    torch.testing.assert_close(
        actual.double(), expected.double(), rtol=0, atol=1e-6 * scale, msg=lambda m: f"{msg}\n{m}"
    )


def _check_against_reference(kernel, reference, x, generator, device, msg):
    """The float32 kernel's output and input gradient equal the float64 reference's, for one random
    upstream.

    ``kernel`` and ``reference`` are ``(function, *arguments after the input)``.
    """
    x32 = x.float().requires_grad_(True)
    y = kernel[0](x32, *kernel[1:])
    xr = x.clone().requires_grad_(True)
    expected = reference[0](xr, *reference[1:])
    upstream = _randn(generator, *expected.shape, device=device)
    (expected_grad,) = torch.autograd.grad(expected, xr, upstream)
    (grad,) = torch.autograd.grad(y, x32, upstream.float())
    _close(y, expected.detach(), msg)
    _close(grad, expected_grad, msg)


def _reference_pool(x, taps, stride, pad_mode, pad_off, upstream):
    """Float64 output and input gradient of the slices formulation (the specification), on the same
    inputs."""
    xr = x.detach().double().requires_grad_(True)
    y = CPU.blur_pool_slices(xr, taps, stride, pad_mode, pad_off)
    (grad,) = torch.autograd.grad(y, xr, upstream.double())
    return y.detach(), grad


def _concat(tables):
    """One block-diagonal table from several axis tables: input/output blocks laid end to end."""
    width = max(t[0].size(1) for t in tables)
    idx, wts, offset = [], [], 0
    for index, weight, length in tables:
        pad = width - index.size(1)
        shifted = torch.where(index >= 0, index + offset, torch.full_like(index, -1))
        idx.append(torch.cat([shifted, torch.full((index.size(0), pad), -1, dtype=index.dtype)], 1))
        wts.append(torch.cat([weight, torch.zeros(index.size(0), pad, dtype=weight.dtype)], 1))
        offset += length
    return torch.cat(idx), torch.cat(wts), offset


def _slices_matrix(taps, length, stride, pad_mode, pad_off):
    """The ``(L_out, L)`` float64 operator of the slices formulation along one axis, read off the
    identity."""
    eye = torch.eye(length, dtype=torch.float64).unsqueeze(1)  # ``length`` 1D signals
    return CPU.blur_pool_slices(eye, taps, [stride], pad_mode, pad_off)[:, 0, :].t()


# Per axis: sizes (tiny, odd, even) x strides 1..4 x pad_off 0/1; the other axis takes a few of
# them.
AXIS_GRID = list(itertools.product((1, 2, 3, 5, 8, 9), (1, 2, 3, 4), (0, 1)))
AXIS_FEW = [(1, 1, 0), (5, 2, 1), (8, 3, 0)]


@pytest.mark.parametrize("pad_mode", PAD_MODES)
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6, 7])
def test_blur_pool_2d_grid(generator, device, pad_mode, k):
    """Filter 1..7 x pad modes x strides 1..4 x pad_off 0/1 x odd/even/tiny maps: values and
    gradients.

    The kernel is table-driven, so the interpreter runs a whole grid in one launch: the tables of
    many axis configurations (built as ``blur_pool`` builds them) are laid end to end,
    block-diagonally, so output block ``(i, j)`` is the 2D blur-pool of input block ``(i, j)`` with
    configuration ``i`` along H and ``j`` along W. The reference is the float64 slices formulation,
    applied as its per-axis operators (it pads and filters one axis after the other, so the 2D
    result is their product).
    """
    taps = _taps(k)
    # The whole grid on one axis, a few configurations on the other; which axis alternates over the
    # parametrization, so every filter and every pad mode sees both orientations.
    orientations = ((AXIS_FEW, AXIS_GRID), (AXIS_GRID, AXIS_FEW))
    for h_configs, w_configs in [orientations[(k + PAD_MODES.index(pad_mode)) % 2]]:
        fwd, adj, ref = [], [], []
        for configs in (h_configs, w_configs):
            tables = [T.pool_table(tuple(taps), n, s, pad_mode, off) for n, s, off in configs]
            fwd.append(_concat(tables))
            adj.append(_concat([T.transpose(t) for t in tables]))
            ref.append(
                torch.block_diag(
                    *[_slices_matrix(taps, n, s, pad_mode, off) for n, s, off in configs]
                ).to(device)
            )
        x = _randn(generator, 1, 2, fwd[0][2], fwd[1][2], device=device)
        x32 = x.float().requires_grad_(True)
        y = TF._SeparableGather.apply(x32, [T.identity_table()] + fwd, [T.identity_table()] + adj)
        upstream = _randn(generator, *y.shape, device=device)
        (grad,) = torch.autograd.grad(y, x32, upstream.float())
        expected = ref[0] @ x @ ref[1].t()
        expected_grad = ref[0].t() @ upstream @ ref[1]
        msg = f"k={k} {pad_mode}, H configs {h_configs[:3]}..., W configs {w_configs[:3]}..."
        assert y.shape == expected.shape, msg
        _close(y, expected, msg)
        _close(grad, expected_grad, msg)


def test_blur_pool_entry_point_tiny_maps(generator, device):
    """Through ``blur_pool`` itself (its own tables, shapes and formats), on the tiniest maps."""
    for i, (pad_mode, (h, w)) in enumerate(itertools.product(PAD_MODES, ((1, 1), (1, 2), (2, 3)))):
        k, pad_off = (2, 4, 7)[i % 3], (i // 3) % 2
        x = _randn(generator, 1, 2, h, w, device=device).float().requires_grad_(True)
        y = TF.blur_pool(x, _taps(k), [2, 2], pad_mode, pad_off)
        expected, expected_grad = _reference_pool(
            x, _taps(k), [2, 2], pad_mode, pad_off, torch.ones_like(y)
        )
        (grad,) = torch.autograd.grad(y, x, torch.ones_like(y))
        assert y.shape == expected.shape
        _close(y, expected, f"k={k} {pad_mode} {h}x{w}")
        _close(grad, expected_grad, f"k={k} {pad_mode} {h}x{w}")


@pytest.mark.parametrize("pad_mode", PAD_MODES)
def test_blur_pool_1d_3d_and_user_taps(generator, device, pad_mode):
    for spec, stride, pad_off in (
        (2, 1, 0),
        ("gaussian-5-1.0", 2, 1),
        ([0.5, 0.25, 1.0, 0.125], 3, 0),
        (7, 4, 1),
    ):
        taps = _taps(spec)
        shapes = [((2, 3, 7), [stride])]
        if (
            len(taps) <= 5
        ):  # 3D: R**3 taps per output in the interpreter; 7 taps are covered in 1D and 2D
            shapes.append(((1, 2, 3, 5, 4), [stride, 2, 1]))
        for shape, strides in shapes:
            x = _randn(generator, *shape, device=device)
            x32 = x.float().requires_grad_(True)
            y = TF.blur_pool(x32, taps, strides, pad_mode, pad_off)
            upstream = _randn(generator, *y.shape, device=device)
            expected, expected_grad = _reference_pool(x, taps, strides, pad_mode, pad_off, upstream)
            (grad,) = torch.autograd.grad(y, x32, upstream.float())
            _close(y.double(), expected, f"{spec} {shape} {strides}")
            _close(grad.double(), expected_grad, f"{spec} {shape} {strides}")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision(generator, device, dtype):
    """Half inputs, float32 accumulation: within a rounding of the float64 result on the rounded
    input."""
    cases = ((3, "reflect"), (4, "zeros"), (7, "circular"), (4, "replicate"))
    for (k, pad_mode), fmt in itertools.product(
        cases, (torch.contiguous_format, torch.channels_last)
    ):
        x = _randn(generator, 2, 3, 9, 8, device=device).to(dtype).to(memory_format=fmt)
        y = TF.blur_pool(x, _taps(k), [2, 2], pad_mode, 0)
        assert y.dtype == dtype and y.is_contiguous(memory_format=fmt)
        expected = CPU.blur_pool_slices(x.double(), _taps(k), [2, 2], pad_mode, 0)
        torch.testing.assert_close(y.double(), expected, **LOW[dtype], msg=f"k={k} {pad_mode}")
        xr = x.detach().requires_grad_(True)
        TF.blur_pool(xr, _taps(k), [2, 2], pad_mode, 0).sum().backward()
        assert xr.grad.dtype == dtype
        _, expected_grad = _reference_pool(
            x, _taps(k), [2, 2], pad_mode, 0, torch.ones_like(expected)
        )
        torch.testing.assert_close(xr.grad.double(), expected_grad, **LOW[dtype])


def test_layouts(generator, device):
    """channels_last (2D, 3D) and strided views give the same values; the format is kept."""
    taps = _taps(4)
    x = _randn(generator, 2, 5, 9, 10, device=device).float()
    expected = CPU.blur_pool_slices(x.double(), taps, [2, 3], "reflect", 1)
    for view in (
        x.to(memory_format=torch.channels_last),
        x.transpose(2, 3).contiguous().transpose(2, 3),
        torch.stack([x, x], dim=-1)[..., 0],
    ):
        y = TF.blur_pool(view, taps, [2, 3], "reflect", 1)
        _close(y.double(), expected)
    assert TF.blur_pool(
        x.to(memory_format=torch.channels_last), taps, [2, 2], "reflect", 0
    ).is_contiguous(memory_format=torch.channels_last)
    x3 = (
        _randn(generator, 1, 3, 4, 5, 6, device=device)
        .float()
        .to(memory_format=torch.channels_last_3d)
    )
    y3 = TF.blur_pool(x3, taps, [1, 2, 2], "replicate", 0)
    assert y3.is_contiguous(memory_format=torch.channels_last_3d)
    _close(y3.double(), CPU.blur_pool_slices(x3.double(), taps, [1, 2, 2], "replicate", 0))


@pytest.mark.parametrize("pad_mode", PAD_MODES)
def test_blur_upsample(generator, device, pad_mode):
    for spec, (size, factor) in itertools.product((1, 2, 4, 5, "box-3"), ((1, 2), (2, 3), (5, 2))):
        taps = _taps(spec)
        shapes = [((2, 3, size, size + 1), [factor, max(1, factor - 1)])]
        if size == 5:
            shapes.append(((1, 2, size + 2), [factor]))
        for shape, factors in shapes:
            x = _randn(generator, *shape, device=device)
            _check_against_reference(
                (TF.blur_upsample, taps, factors, pad_mode),
                (CPU.blur_upsample_slices, taps, factors, pad_mode),
                x,
                generator,
                device,
                f"{spec} f={factors} {shape}",
            )


def _reference_max_blur(x, kernel, padding, taps, stride, pad_mode):
    pool = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[x.dim() - 3]
    return CPU.blur_pool_slices(pool(x, kernel, 1, padding), taps, stride, pad_mode, 0)


def _triton_max_blur(x, kernel, padding, taps, stride, pad_mode, pad_off):
    """Max-blur-pool on the Triton backend: max pooling, then the Triton blur-pool."""
    with AF.set_backend("triton"):
        return AF._max_blur_pool(x, kernel, padding, taps, stride, pad_mode, pad_off)


@pytest.mark.parametrize("pad_mode", PAD_MODES)
def test_max_blur_pool(generator, device, pad_mode):
    """Max pooling then the Triton blur-pool equals max pooling then the float64 blur, gradients
    included."""
    # (max kernel, its padding, blur taps, stride, map size)
    cases = ((1, 0, 4, 2, 6), (2, 0, 4, 2, 7), (2, 1, 7, 3, 3), (3, 1, 3, 1, 5))
    for kernel, padding, k, stride, size in cases:
        x = _randn(generator, 2, 3, size, size + 1, device=device)
        _check_against_reference(
            (_triton_max_blur, [kernel] * 2, [padding] * 2, _taps(k), [stride] * 2, pad_mode, 0),
            (_reference_max_blur, kernel, padding, _taps(k), [stride] * 2, pad_mode),
            x,
            generator,
            device,
            f"max {kernel} pad {padding} k={k} s={stride} n={size}",
        )


def test_max_blur_pool_ties_1d_3d_channels_last(generator, device):
    """Tied maxima route the gradient as max pooling does (first in scan order); 1D, 3D,
    channels_last."""
    taps = _taps(4)
    cases = [
        _randn(generator, 2, 3, 8, 9, device=device)
        .relu()
        .to(memory_format=torch.channels_last),  # ties at 0
        _randn(generator, 2, 3, 9, device=device).round(),
        _randn(generator, 1, 2, 4, 5, 6, device=device)
        .round()
        .to(memory_format=torch.channels_last_3d),
    ]
    for x in cases:
        ndim = x.dim() - 2
        x32 = x.float().requires_grad_(True)
        y = _triton_max_blur(x32, [2] * ndim, [1] * ndim, taps, [2] * ndim, "reflect", 0)
        xr = x.float().requires_grad_(True)
        expected = _reference_max_blur(xr, 2, 1, taps, [2] * ndim, "reflect")
        upstream = torch.ones_like(expected)
        (expected_grad,) = torch.autograd.grad(expected, xr, upstream)
        (grad,) = torch.autograd.grad(y, x32, upstream)
        _close(y, expected)
        _close(grad, expected_grad)
        assert y.is_contiguous(memory_format=torch.channels_last) == (ndim == 2)


def test_double_backward(generator, device):
    """The backward is the same Function with the adjoint tables: twice differentiable (float64
    kernels)."""
    x = _randn(generator, 1, 1, 4, 3, device=device).requires_grad_(True)
    with AF.set_backend(
        "triton"
    ):  # fast mode: a few random projections, not one launch per element
        assert torch.autograd.gradcheck(BlurPool2d(filter_size=4), (x,), fast_mode=True)
        assert torch.autograd.gradgradcheck(
            BlurPool2d(filter_size=3, stride=(2, 3), pad_mode="circular"), (x,), fast_mode=True
        )
        assert torch.autograd.gradgradcheck(
            BlurUpsample2d(filter_size="box-2"), (x,), fast_mode=True
        )


# ------------------------------------------------------------------------------------------------
# Dispatch: layers and functional twins reach the kernels through one function


class _Spy:
    """Records which Triton entry points run (wraps them on the ``function`` module)."""

    def __init__(self, monkeypatch):
        self.calls = []
        for name in ("blur_pool", "blur_upsample"):
            monkeypatch.setattr(TF, name, self._wrap(name, getattr(TF, name)))

    def _wrap(self, name, fn):
        def call(*args):
            self.calls.append(name)
            return fn(*args)

        return call


def test_layers_and_functionals_dispatch_to_triton(generator, device, monkeypatch):
    spy = _Spy(monkeypatch)
    x = _randn(generator, 2, 3, 8, 7, device=device).float()
    with AF.set_backend("triton"):
        outs = [
            BlurPool2d(filter_size=5)(x),
            AF.blur_pool2d(x, 5),
            MaxBlurPool2d(2)(x),
            AF.max_blur_pool2d(x),
            BlurUpsample2d()(x),
            BlurPool1d()(x[:, :, 0]),
        ]
    # max-blur-pool: max pooling, then the Triton blur-pool
    assert spy.calls == ["blur_pool"] * 4 + ["blur_upsample", "blur_pool"]
    with AF.set_backend("slices"):
        expected = [
            BlurPool2d(filter_size=5)(x),
            AF.blur_pool2d(x, 5),
            MaxBlurPool2d(2)(x),
            AF.max_blur_pool2d(x),
            BlurUpsample2d()(x),
            BlurPool1d()(x[:, :, 0]),
        ]
    assert len(spy.calls) == 6
    for out, ref in zip(outs, expected, strict=True):
        torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)


def test_set_backend_and_errors(monkeypatch):
    assert AF.get_backend() == "auto"
    with AF.set_backend("slices"):
        assert AF.get_backend() == "slices"
        with AF.set_backend("cpu"):
            assert AF.get_backend() == "cpu"
        assert AF.get_backend() == "slices"
    assert AF.get_backend() == "auto"
    with pytest.raises(ValueError, match="backend must be one of .*got 'cuda'"):
        AF.set_backend("cuda")
    assert AF.get_backend() == "auto"
    x = torch.randn(1, 1, 4, 4)
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with AF.set_backend("triton"), pytest.raises(ValueError, match="TRITON_INTERPRET=1"):
        BlurPool2d()(x)


def test_traceable_form_under_compile(monkeypatch):
    """torch.compile/export/tracing get the slices formulation whatever the backend (see
    functional.py)."""
    x = torch.randn(1, 1, 4, 4)
    with AF.set_backend("triton"):
        assert AF._choose(x) == "triton"
        monkeypatch.setattr(AF, "compiling", lambda: True)
        assert AF._choose(x) == "slices"
    monkeypatch.undo()
    assert AF._choose(x) == "matrix"  # auto on CPU
    assert AF._choose(x.double()) == "matrix"


def test_environment_variable_selects_backend():
    import subprocess
    import sys

    code = "from antialias.layers import functional as AF; print(AF.get_backend())"
    env = {**__import__("os").environ, "ANTIALIAS_BACKEND": "slices"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "slices"
    with pytest.raises(ValueError, match="backend must be one of .*got 'gpu'"):
        AF._check_backend("gpu")


def test_invalid_environment_variable_fails_when_used_in_one_line():
    """``import antialias`` works; the first layer call names the value and the choices."""
    import subprocess
    import sys

    code = (
        "import torch, antialias.layers as L\n"
        "try:\n    L.BlurPool2d()(torch.zeros(1, 1, 4, 4))\n"
        "except ValueError as e:\n    print(e)"
    )
    env = {**__import__("os").environ, "ANTIALIAS_BACKEND": "nonsense"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == (
        "ANTIALIAS_BACKEND must be one of ('auto', 'triton', 'cpu', 'slices'), got 'nonsense'"
    )
