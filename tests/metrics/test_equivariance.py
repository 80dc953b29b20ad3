"""Per-layer feature equivariance on networks whose equivariance is known."""

from __future__ import annotations

import pytest
import torch
from _metric_models import CircularBlur, Subsample
from torch import nn

from antialias.metrics import feature_equivariance
from antialias.metrics.equivariance import default_layers


def _net(blur: bool) -> nn.Sequential:
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Conv2d(3, 4, 3, padding=1, padding_mode="circular")]
    layers += [CircularBlur()] if blur else [nn.Identity()]
    layers += [Subsample(2), nn.Conv2d(4, 4, 3, padding=1, padding_mode="circular"), Subsample(2)]
    return nn.Sequential(*layers)


@pytest.fixture
def data(generator):
    images = torch.randn(6, 3, 16, 16, generator=generator)
    return [(images[:4], torch.zeros(4)), (images[4:], torch.zeros(2))]


def test_strided_layers_equivariant_only_to_multiples_of_their_stride(data):
    r = feature_equivariance(_net(blur=False), data, ["0", "2", "4"], max_shift=4)
    assert r.strides == {"0": 1, "2": 2, "4": 4}
    assert r.images == 6 and r.shifts_y.tolist() == [0, 1, 2, 3]
    # Stride-1 circular conv: exactly equivariant to every shift.
    assert r.distances["0"].abs().max() < 1e-6
    # After stride 2: zero at even (dy, dx), clearly not zero elsewhere.
    d2 = r.distances["2"]
    even = torch.tensor([[dy % 2 == 0 and dx % 2 == 0 for dx in range(4)] for dy in range(4)])
    assert d2[even].max() < 1e-6
    assert d2[~even].min() > 1e-3
    # After stride 4: zero only at (0, 0) in a 0..3 grid.
    d4 = r.distances["4"]
    assert d4[0, 0] < 1e-6 and (d4.flatten()[1:] > 1e-3).all()


def test_blur_brings_features_closer_to_equivariance(data):
    plain = feature_equivariance(_net(blur=False), data, ["2"], max_shift=4)
    blurred = feature_equivariance(_net(blur=True), data, ["2"], max_shift=4, chunk_size=5)
    odd = torch.tensor([[dy % 2 == 1 or dx % 2 == 1 for dx in range(4)] for dy in range(4)])
    assert blurred.distances["2"][odd].mean() < 0.5 * plain.distances["2"][odd].mean()
    # Multiples of the stride stay exact with the blur too (it commutes with the roll).
    assert blurred.distances["2"][0, 2] < 1e-6


def test_l2_distance_strides_override_and_summary(data):
    r = feature_equivariance(
        _net(blur=False), data, ["2"], shifts=[0, 2], distance="l2", strides={"2": 2}
    )
    assert r.distances["2"].shape == (2, 2) and r.distances["2"].max() < 1e-5
    s = r.summary()
    assert s["layers"]["2"]["stride"] == 2 and len(s["layers"]["2"]["heatmap"]) == 2
    assert s["distance"] == "l2"


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
def test_default_layers_and_errors(data):
    model = _net(blur=False)
    # A Sequential has 4-D children at the top level: they are the default.
    assert default_layers(model, data[0][0][:1]) == ["0", "1", "2", "3", "4"]
    wrapped = nn.Sequential()
    wrapped.add_module("features", model)
    wrapped.add_module("pool", nn.Flatten())
    assert default_layers(wrapped, data[0][0][:1]) == [f"features.{i}" for i in range(5)]
    with pytest.raises(ValueError, match=r"unknown layer name\(s\) \['nope'\]"):
        feature_equivariance(model, data, ["nope"])
    with pytest.raises(ValueError, match="distance must be one of"):
        feature_equivariance(model, data, ["0"], distance="l1")  # type: ignore[arg-type]
    flat = nn.Sequential(nn.Conv2d(3, 2, 3), nn.Flatten())
    with pytest.raises(ValueError, match=r"layer '1' must output \(N, C, H, W\) features"):
        feature_equivariance(flat, data, ["1"], max_shift=2)
    scripted = torch.jit.script(nn.Sequential(nn.Conv2d(3, 2, 3)))
    with pytest.raises(TypeError, match="TorchScript"):
        feature_equivariance(scripted, data, ["0"], max_shift=2)
