"""Adaptive content-aware filters (Zou et al. 2020): filters sum to 1 per position and group, against
an unfold reference, sizes, gradients, parameter names, strict loading of host weights, the factory and
whole-model conversion."""

import math

import pytest
import torch
import torchvision
from torch.nn import functional as F

from antialias import convert
from antialias.layers import (
    AdaptiveBlurPool1d,
    AdaptiveBlurPool2d,
    AdaptiveBlurPool3d,
    adaptive_blur_pool1d,
    adaptive_blur_pool2d,
    adaptive_blur_pool3d,
    create_downsample,
    load_host_weights,
)
from antialias.models import get_model

POOL = {1: AdaptiveBlurPool1d, 2: AdaptiveBlurPool2d, 3: AdaptiveBlurPool3d}
POOL_FN = {1: adaptive_blur_pool1d, 2: adaptive_blur_pool2d, 3: adaptive_blur_pool3d}


def reference_2d(x, logits, k, stride, pad_mode):
    """Softmax per group, then the weighted sum of each k x k window (F.unfold), at the strided positions."""
    n, c, h, w = x.shape
    top, left = (k - 1) // 2, (k - 1) // 2
    mode = {"zeros": "constant"}.get(pad_mode, pad_mode)
    padded = F.pad(x, (left, k - 1 - left, top, k - 1 - top), mode=mode)
    cols = F.unfold(padded, k, stride=stride)  # (n, c * k * k, h_out * w_out)
    h_out, w_out = math.ceil(h / stride), math.ceil(w / stride)
    groups = logits.size(1) // (k * k)
    weights = logits.reshape(n, groups, k * k, h_out * w_out).softmax(2)
    cols = cols.reshape(n, groups, c // groups, k * k, h_out * w_out)
    return (cols * weights[:, :, None]).sum(3).reshape(n, c, h_out, w_out)


@pytest.mark.parametrize("pad_mode", ["reflect", "zeros", "circular"])
@pytest.mark.parametrize(("k", "stride", "groups"), [(3, 2, 2), (4, 2, 1), (2, 3, 4), (5, 2, 8)])
def test_functional_matches_unfold_reference(k, stride, groups, pad_mode, generator):
    for size in [(7, 8), (9, 9), (6, 10)]:
        x = torch.randn(2, 8, *size, generator=generator, dtype=torch.float64)
        out_size = [math.ceil(n / stride) for n in size]
        logits = torch.randn(2, groups * k * k, *out_size, generator=generator, dtype=torch.float64)
        out = adaptive_blur_pool2d(x, logits, k, stride, pad_mode)
        assert out.shape == (2, 8, *out_size)
        torch.testing.assert_close(
            out, reference_2d(x, logits, k, stride, pad_mode), rtol=0, atol=1e-12
        )


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_filters_sum_to_one_per_position_and_group(ndim, generator):
    """Unit sum <=> a constant map stays the same constant under any logits; non-negative <=> a
    non-negative map stays non-negative; and each output is inside the range of its window."""
    size = {1: (11,), 2: (7, 8), 3: (5, 4, 6)}[ndim]
    for k, stride in [(3, 2), (4, 2), (2, 3)]:
        out_size = [math.ceil(n / stride) for n in size]
        logits = 5 * torch.randn(
            2, 2 * k**ndim, *out_size, generator=generator, dtype=torch.float64
        )
        ones = torch.full((2, 4, *size), 2.5, dtype=torch.float64)
        torch.testing.assert_close(
            POOL_FN[ndim](ones, logits, k, stride), ones.new_full((2, 4, *out_size), 2.5)
        )
        x = torch.rand(2, 4, *size, generator=generator, dtype=torch.float64)
        out = POOL_FN[ndim](x, logits, k, stride, "replicate")
        assert out.min() >= x.min() and out.max() <= x.max()
        # One-hot logits select one tap: the filter is a delta, so the output is a shifted subsampling.
        delta = torch.full_like(logits, -1e4)
        delta[:, 0] = delta[:, k**ndim] = 0.0
        first = POOL_FN[ndim](x, delta, k, stride, "zeros")
        shift = (k - 1) // 2
        index = (slice(None), slice(None)) + tuple(slice(None, None, stride) for _ in size)
        expected = F.pad(x, [shift, 0] * ndim)[index][
            (slice(None), slice(None)) + tuple(slice(0, m) for m in out_size)
        ]
        torch.testing.assert_close(first, expected)


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_module_preserves_constants_in_train_and_eval_and_shapes(ndim, generator):
    for k in (3, 4):
        for size in [(5,) * ndim, (6,) * ndim]:
            pool = POOL[ndim](16, 2, k)
            x = torch.full((2, 16, *size), -1.5)
            for mode in (True, False):
                out = pool.train(mode)(x)
                assert out.shape == (2, 16, *(math.ceil(n / 2) for n in size))
                torch.testing.assert_close(out, torch.full_like(out, -1.5))


def test_module_equals_functional_with_its_predicted_logits(generator):
    pool = AdaptiveBlurPool2d(8, stride=2, kernel_size=3, groups=2, pad_mode="replicate").eval()
    x = torch.randn(2, 8, 9, 6, generator=generator)
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    logits = pool.filter_logits(padded)
    assert logits.shape == (2, 2 * 9, 5, 3)
    torch.testing.assert_close(pool(x), adaptive_blur_pool2d(x, logits, 3, 2, "replicate"))


@pytest.mark.parametrize(
    ("ndim", "size", "k"), [(1, (7,), 3), (2, (4, 5), 3), (2, (3, 4), 2), (3, (3, 2, 3), 2)]
)
def test_gradcheck(ndim, size, k, generator):
    pool = POOL[ndim](2, 2, k, groups=2).double()
    x = torch.randn(2, 2, *size, generator=generator, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(pool, (x,))  # train mode: through the batch statistics too
    out_size = [math.ceil(n / 2) for n in size]
    logits = torch.randn(
        2, 2 * k**ndim, *out_size, generator=generator, dtype=torch.float64, requires_grad=True
    )
    assert torch.autograd.gradcheck(lambda a, b: POOL_FN[ndim](a, b, k, 2, "reflect"), (x, logits))


def test_parameters_names_and_groups():
    pool = AdaptiveBlurPool2d(24)
    assert (
        pool.groups == 8
        and AdaptiveBlurPool2d(12).groups == 4
        and AdaptiveBlurPool2d(5).groups == 1
    )
    assert sorted(pool.state_dict()) == [
        "filter_conv.weight",
        "filter_norm.bias",
        "filter_norm.num_batches_tracked",
        "filter_norm.running_mean",
        "filter_norm.running_var",
        "filter_norm.weight",
    ]
    assert pool.filter_conv.weight.shape == (8 * 9, 24, 3, 3) and pool.filter_conv.stride == (2, 2)


def test_errors():
    with pytest.raises(ValueError, match="channels must be an int >= 1"):
        AdaptiveBlurPool2d(None)
    with pytest.raises(ValueError, match="groups must be an int >= 1 that divides channels=12"):
        AdaptiveBlurPool2d(12, groups=5)
    with pytest.raises(ValueError, match="kernel_size must be an int >= 1"):
        AdaptiveBlurPool2d(8, kernel_size=0)
    with pytest.raises(ValueError, match="pad_mode must be one of"):
        AdaptiveBlurPool1d(8, pad_mode="wrap")
    with pytest.raises(ValueError, match=r"logits must have shape \(N, groups \* 9, \*\[2, 2\]\)"):
        adaptive_blur_pool2d(torch.zeros(1, 4, 4, 4), torch.zeros(1, 9, 3, 3))
    with pytest.raises(ValueError, match="3 groups do not divide 4 channels"):
        adaptive_blur_pool2d(torch.zeros(1, 4, 4, 4), torch.zeros(1, 27, 2, 2))
    with pytest.raises(ValueError, match="built for 8 channels"):
        AdaptiveBlurPool2d(8)(torch.zeros(1, 4, 4, 4))


def test_factory():
    layer = create_downsample("adaptive", 2, 32, 2, filter_size=3, pad_mode="circular")
    assert (
        isinstance(layer, AdaptiveBlurPool2d)
        and layer.kernel_size == 3
        and layer.pad_mode == "circular"
    )
    assert (
        create_downsample("adaptive", 2, 32, 2).kernel_size == 4
    )  # the factory's default filter_size
    assert create_downsample("adaptive", 3, 16, 2, filter_size=2, groups=2).groups == 2
    with pytest.raises(ValueError, match="needs channels"):
        create_downsample("adaptive", 2, None, 2)
    with pytest.raises(ValueError, match="needs an int filter_size"):
        create_downsample("adaptive", 2, 16, 2, filter_size="triangle-3")


@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v2"])
def test_converts_torchvision_models_and_loads_host_weights_strictly(arch):
    torch.manual_seed(0)
    host = getattr(torchvision.models, arch)(weights=None, num_classes=10)
    model = convert(host, 3, method="adaptive")
    layers = [m for m in model.modules() if isinstance(m, AdaptiveBlurPool2d)]
    assert len(layers) >= 4
    host_keys, keys = set(host.state_dict()), set(model.state_dict())
    assert host_keys <= keys
    assert all(".filter_conv." in key or ".filter_norm." in key for key in keys - host_keys)

    with torch.no_grad():  # scramble the host's tensors, then load: every one must come back
        for name, p in model.named_parameters():
            if name in host_keys:
                p.normal_()
    new = load_host_weights(model, host.state_dict())
    assert new == sorted(keys - host_keys)
    state = model.state_dict()
    assert all(torch.equal(state[key], value) for key, value in host.state_dict().items())

    broken = dict(host.state_dict())
    removed = next(iter(broken))
    del broken[removed]
    broken["extra.weight"] = torch.zeros(1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(
        RuntimeError, match=rf"missing keys \['{removed}'\], unexpected keys \['extra.weight'\]"
    ):
        load_host_weights(model, broken)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing loaded

    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    out = model.train()(x)
    out.square().mean().backward()
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert all(m.filter_conv.weight.grad.abs().sum() > 0 for m in layers)


def test_zoo_model_loads_torchvision_weights_through_load_host_weights():
    model = get_model("resnet18", method="adaptive", num_classes=10)
    host = torchvision.models.resnet18(weights=None, num_classes=10)
    new = load_host_weights(model, host.state_dict())
    assert new and all(".filter_conv." in key or ".filter_norm." in key for key in new)
    state = model.state_dict()
    assert all(torch.equal(state[key], value) for key, value in host.state_dict().items())
    with pytest.raises(
        RuntimeError,
        match=r"Missing key\(s\) in state_dict: \"maxpool.downsample.filter_conv.weight",
    ):
        model.load_state_dict(host.state_dict())  # plain strict loading names the new keys


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_adaptive_blur_pool_function_names_itself_in_its_input_error(ndim: int) -> None:
    import antialias.layers.adaptive as A

    name = f"adaptive_blur_pool{ndim}d"
    with pytest.raises(ValueError, match=rf"^{name} expects a {ndim + 2}D input"):
        getattr(A, name)(torch.randn(3, 4), torch.zeros(1, 3, 1))
