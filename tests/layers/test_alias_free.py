"""Alias-free activations (AFC, Michaeli et al. 2023): the ideal up/down round trip, sub-pixel shift
equivariance (exact for a degree-2 polynomial, better than plain for ReLU), fractional-shift consistency
above the plain activation's with the library's metric, model-wide replacement and convert's option."""

import copy

import pytest
import torch
import torchvision
from torch import nn

from antialias import convert
from antialias.layers import (
    AliasFreeActivation,
    FourierPool2d,
    alias_free_activation,
    replace_activations,
)
from antialias.layers.alias_free import _upsample_axis
from antialias.metrics.shift import fractional_consistency, fractional_shift


def band_limited(shape, generator, dtype=torch.float64):
    """Random maps without their Nyquist row/column (whose sub-pixel shift is ill-defined)."""
    return band_limited_like(torch.randn(*shape, generator=generator, dtype=dtype))


def band_limited_like(x):
    spec = torch.fft.fft2(x)
    fy = torch.fft.fftfreq(x.size(-2), dtype=x.dtype).abs()
    fx = torch.fft.fftfreq(x.size(-1), dtype=x.dtype).abs()
    return torch.fft.ifft2(spec * ((fy[:, None] < 0.5) & (fx[None, :] < 0.5))).real


@pytest.mark.parametrize("size", [(9,), (8,), (7, 8), (6, 6), (3, 4, 5)])
def test_identity_round_trip_and_upsampling_keeps_the_samples(size, generator):
    x = torch.randn(2, 3, *size, generator=generator, dtype=torch.float64)
    torch.testing.assert_close(alias_free_activation(x, lambda t: t), x, rtol=0, atol=1e-12)
    up = _upsample_axis(x, 2, 2)
    assert up.shape[2] == 2 * size[0]
    torch.testing.assert_close(up[:, :, ::2], x, rtol=0, atol=1e-12)
    torch.testing.assert_close(AliasFreeActivation(nn.Identity(), up=3)(x), x, rtol=0, atol=1e-12)


def test_plain_activation_without_spatial_axes_and_up_one(generator):
    x = torch.randn(4, 7, generator=generator)
    torch.testing.assert_close(AliasFreeActivation(nn.ReLU())(x), torch.relu(x))
    y = torch.randn(1, 2, 5, 5, generator=generator)
    torch.testing.assert_close(alias_free_activation(y, torch.relu, up=1), torch.relu(y))


def _equivariance_error(act, x, shift):
    err = act(fractional_shift(x, shift)) - fractional_shift(act(x), shift)
    return float(band_limited_like(err).abs().max() / act(x).abs().max())


def test_exactly_equivariant_to_sub_pixel_shifts_for_a_degree_2_polynomial(generator):
    """x**2 of a map with band |k| < L/2 has band |k| < L: it fits the x2 grid, so nothing aliases."""
    poly = lambda t: t + 0.5 * t * t  # noqa: E731
    x = band_limited((2, 3, 12, 10), generator)
    for shift in [(0.5, 0.25), (0.3, -0.7), (1.0, 2.0)]:
        assert _equivariance_error(lambda t: alias_free_activation(t, poly), x, shift) < 1e-10
    assert _equivariance_error(poly, x, (0.5, 0.25)) > 1e-2  # the plain polynomial aliases


def test_relu_is_much_closer_to_equivariant_than_plain(generator):
    x = band_limited((4, 3, 16, 16), generator)
    for shift in [(0.5, 0.5), (0.25, -0.4)]:
        plain = _equivariance_error(torch.relu, x, shift)
        free = _equivariance_error(lambda t: alias_free_activation(t, torch.relu), x, shift)
        assert free < plain / 3


class _Threshold(nn.Module):
    """Two logits, +-(score - threshold): half the images sit near the decision boundary, so the metric
    sees how far a sub-pixel shift moves the score."""

    def __init__(self, threshold: torch.Tensor) -> None:
        super().__init__()
        self.threshold = threshold

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.cat([z - self.threshold, self.threshold - z], 1)


def test_fractional_shift_consistency_above_the_plain_activation(generator):
    torch.manual_seed(0)
    conv = lambda i, o: nn.Conv2d(i, o, 3, padding=1, padding_mode="circular")  # noqa: E731
    plain = nn.Sequential(
        conv(3, 8),
        nn.ReLU(),
        conv(8, 8),
        nn.ReLU(),
        conv(8, 8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 1),
    ).eval()
    free = copy.deepcopy(plain)
    assert replace_activations(free) == ["1", "3", "5"]
    x = band_limited((64, 3, 12, 12), generator, torch.float32)
    data = [(x, torch.zeros(64, dtype=torch.long))]
    scores = {}
    with torch.no_grad():
        for name, features in (("plain", plain), ("alias_free", free)):
            model = nn.Sequential(features, _Threshold(features(x).median()))
            result = fractional_consistency(
                model, data, passes=2, generator=torch.Generator().manual_seed(1)
            )
            scores[name] = result.consistency
    # Measured: plain 0.87, alias-free 0.96.
    assert scores["alias_free"] > scores["plain"] + 0.05, scores


@pytest.mark.parametrize(
    ("size", "act"), [((6,), nn.ReLU()), ((5, 4), nn.GELU()), ((3, 4, 3), nn.SiLU())]
)
def test_gradcheck(size, act, generator):
    x = torch.randn(1, 2, *size, generator=generator, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(AliasFreeActivation(act), (x,))


def test_half_precision_and_repr(generator):
    x = torch.randn(1, 2, 8, 8, generator=generator)
    assert AliasFreeActivation()(x.to(torch.bfloat16)).dtype == torch.bfloat16
    assert AliasFreeActivation().extra_repr() == "up=2"


def test_replace_activations_keeps_keys_skips_parametrized_and_is_idempotent():
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.ReLU(inplace=True),
        nn.PReLU(),
        nn.Sequential(nn.GELU(), nn.Sigmoid()),
    )
    keys = sorted(net.state_dict())
    assert replace_activations(net) == ["1", "3.0"]
    assert isinstance(net[1], AliasFreeActivation) and isinstance(net[1].activation, nn.ReLU)
    assert isinstance(net[2], nn.PReLU) and isinstance(net[3][1], nn.Sigmoid)
    assert sorted(net.state_dict()) == keys
    assert replace_activations(net) == []
    assert replace_activations(nn.Sequential(nn.Tanh()), types=(nn.Tanh,)) == ["0"]


def test_errors():
    with pytest.raises(ValueError, match="up must be an int >= 1"):
        AliasFreeActivation(nn.ReLU(), up=0)
    with pytest.raises(TypeError, match="activation must be an nn.Module"):
        AliasFreeActivation(torch.relu)
    with pytest.raises(TypeError, match="floating-point"):
        alias_free_activation(torch.zeros(1, 1, 4, 4, dtype=torch.long), torch.relu)
    with pytest.raises(TypeError, match="types must be a tuple of nn.Module classes"):
        replace_activations(nn.ReLU(), types=(torch.relu,))
    with pytest.raises(ValueError, match="activations must be None or 'alias_free'"):
        convert(nn.Sequential(nn.Conv2d(3, 3, 3, stride=2)), activations="smooth")


@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v2"])
def test_convert_option_on_torchvision_models(arch):
    torch.manual_seed(0)
    host = getattr(torchvision.models, arch)(weights=None, num_classes=10)
    model = convert(host, method="flc", activations="alias_free", conv_padding_mode="circular")
    wrapped = [m for m in model.modules() if isinstance(m, AliasFreeActivation)]
    assert len(wrapped) >= 5 and any(isinstance(m, FourierPool2d) for m in model.modules())
    assert sorted(model.state_dict()) == sorted(host.state_dict())
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    out = model(x)
    out.square().mean().backward()
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
