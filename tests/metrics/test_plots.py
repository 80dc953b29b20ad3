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


def _capture_figures(monkeypatch) -> list:
    from antialias.metrics import plots

    figures, save = [], plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or save(fig, path))
    return figures


def test_panels_of_one_metric_share_a_y_range_and_labels_keep_their_style(tmp_path, monkeypatch):
    figures = _capture_figures(monkeypatch)
    xs = [0, 1, 2, 3]
    panels = [
        CurvePanel(
            {"max": (xs, [0.2, 0.9, 0.4, 0.3]), "blur": (xs, [0.5] * 4)},
            ylabel="probability",
            ylim=(-0.02, 1.02),
        ),
        CurvePanel({"max": (xs, [0.5] * 4), "blur": (xs, [0.6] * 4)}, ylabel="probability"),
        CurvePanel({"max": (xs, [3.0, 2.0, 1.0, 0.5])}, ylabel="loss"),
    ]
    plot_curves(panels, tmp_path / "c.png")
    a, b, c = figures[0].axes[:3]
    assert a.get_ylim() == b.get_ylim() == (-0.02, 1.02)  # one range for one metric
    assert c.get_ylim() != a.get_ylim()

    def style(ax, label):
        (line,) = [line for line in ax.get_lines() if line.get_label() == label]
        return line.get_marker(), line.get_linestyle(), line.get_color()

    assert style(a, "max") == style(b, "max") == style(c, "max")
    assert style(a, "blur") == style(b, "blur")
    assert style(a, "max")[:2] != style(a, "blur")[:2]  # apart without colour too


def test_plot_training_curves_draws_loss_accuracy_and_consistency(tmp_path, monkeypatch):
    from antialias.metrics.plots import plot_training_curves

    figures = _capture_figures(monkeypatch)
    history = [
        {"epoch": 1, "train_loss": 2.0, "train_top1": 0.3, "val_top1": 0.25, "consistency": 0.8},
        {"epoch": 2, "train_loss": 1.5, "train_top1": 0.5, "val_top1": 0.4, "consistency": None},
        {"epoch": 3, "train_loss": 1.2, "train_top1": 0.6, "val_top1": 0.5, "consistency": 0.9},
    ]
    out = plot_training_curves(history, tmp_path / "curves.png")
    assert _png(out).size[0] > 2 * _png(out).size[1]
    loss, top1, consistency = figures[0].axes[:3]
    assert [a.get_title() for a in (loss, top1, consistency)] == [
        "loss",
        "top-1 accuracy",
        "consistency",
    ]
    assert list(consistency.get_lines()[0].get_xdata()) == [1.0, 3.0]  # epochs measured only
    assert list(top1.get_lines()[1].get_ydata()) == pytest.approx([25.0, 40.0, 50.0])
    assert top1.get_ylim() == consistency.get_ylim()  # both percentages: one range
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]  # atomic: no temporary left
    with pytest.raises(ValueError, match="at least one epoch"):
        plot_training_curves([], tmp_path / "x.png")
