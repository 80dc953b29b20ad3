"""The plots are real PNG files with the expected panels."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

pytest.importorskip("matplotlib")

from antialias.metrics import DiagonalResult, EquivarianceResult  # noqa: E402
from antialias.metrics.plots import plot_consistency, plot_diagonal, plot_equivariance  # noqa: E402


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
