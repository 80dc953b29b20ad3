"""The plots are real PNG files with the expected panels."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

pytest.importorskip("matplotlib")

from antialias.metrics import DiagonalResult, EquivarianceResult  # noqa: E402
from antialias.metrics.plots import (  # noqa: E402
    CurvePanel,
    plot_bars,
    plot_consistency,
    plot_curves,
    plot_diagonal,
    plot_equivariance,
)


def _png(path) -> Image.Image:
    with Image.open(path) as img:
        assert img.format == "PNG"
        img.load()
        return img


def _diagonal(shift: float) -> DiagonalResult:
    offsets = torch.arange(5)
    probs = (0.5 + shift * torch.cos(offsets.float()))[None].repeat(3, 1)
    return DiagonalResult(
        offsets, probs, torch.zeros(3, 5, dtype=torch.long), torch.zeros(3, dtype=torch.long)
    )


def test_plot_diagonal_and_consistency(tmp_path):
    out = plot_diagonal(
        {"baseline": _diagonal(0.3), "blur": _diagonal(0.05)},
        tmp_path / "sub" / "d.png",
        images=[0],
    )
    assert out.exists() and _png(out).size[0] > 400
    bars = plot_consistency({"baseline": 0.89, "blur": 0.91}, tmp_path / "c.png")
    scatter = plot_consistency(
        {"a": 0.89, "b": 0.91}, tmp_path / "s.png", accuracy={"a": 0.76, "b": 0.77}
    )
    assert _png(bars).size[1] > 100 and _png(scatter).size[1] > 100
    with pytest.raises(ValueError, match="at least one"):
        plot_diagonal({}, tmp_path / "x.png")


def test_plot_equivariance_heatmaps(tmp_path):
    layers = ["conv1", "layer1", "layer2", "layer3", "layer4"]
    result = EquivarianceResult(
        layers=layers,
        strides={name: 2**i for i, name in enumerate(layers)},
        shifts_y=torch.arange(4),
        shifts_x=torch.arange(4),
        distances={name: torch.rand(4, 4) for name in layers},
        distance="cosine",
        images=2,
    )
    out = plot_equivariance(result, tmp_path / "e.png")
    width, height = _png(out).size
    assert width > height  # 4 columns, 2 rows


def test_plot_bars_with_spread(tmp_path):
    series = {
        "circular": {"max": (0.69, 0.06), "blur": (0.99, 0.003)},
        "crop": {"max": 0.7, "blur": 0.99},
    }
    out = plot_bars(series, tmp_path / "b.png", title="bars")
    assert _png(out).size[0] > 400
    with pytest.raises(ValueError, match="metric 'crop' names the models"):
        plot_bars(
            {"circular": {"max": 0.5, "blur": 0.9}, "crop": {"blur": 0.9}}, tmp_path / "x.png"
        )
    with pytest.raises(ValueError, match="at least one metric"):
        plot_bars({}, tmp_path / "x.png")


def test_plot_curves_panels_and_bands(tmp_path):
    xs = [-2, -1, 0, 1, 2]
    panels = [
        CurvePanel({"max": (xs, [0.2, 0.5, 0.9, 0.4, 0.3])}, title="one image", ylim=(0, 1)),
        CurvePanel(
            {"max": (xs, [0.5] * 5, [0.1] * 5), "blur": (xs, [0.8] * 5, [0.0] * 5)}, title="mean"
        ),
    ]
    out = plot_curves(panels, tmp_path / "c.png", title="curves")
    width, height = _png(out).size
    assert width > 2 * height  # two panels side by side
    with pytest.raises(ValueError, match=r"must be \(x, y\) or \(x, y, spread\)"):
        plot_curves([CurvePanel({"bad": (xs,)})], tmp_path / "x.png")
    with pytest.raises(ValueError, match="at least one panel"):
        plot_curves([], tmp_path / "x.png")
