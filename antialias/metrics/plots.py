"""PNG plots of the shift-invariance metrics (matplotlib, optional: ``antialias[plots]``).

Figures are drawn on matplotlib's Agg canvas directly, without pyplot, so plotting neither needs a
display nor changes the backend of the user's session.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from antialias import _io
from antialias.metrics.accuracy import DiagonalResult
from antialias.metrics.equivariance import EquivarianceResult

__all__ = [
    "CurvePanel",
    "plot_bars",
    "plot_consistency",
    "plot_curves",
    "plot_diagonal",
    "plot_equivariance",
    "plot_training_curves",
]

# A label keeps one marker and line style (as well as one colour) across panels, so that curves stay
# apart in grey scale and where they overlap.
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_LINESTYLES = ("-", "--", "-.", ":")
_HATCHES = ("", "//", "..", "xx", "\\\\", "++")


def _line_style(index: int) -> dict[str, Any]:
    return {
        "color": f"C{index % 10}",  # matplotlib's colour cycle, by label across the figure
        "marker": _MARKERS[index % len(_MARKERS)],
        "linestyle": _LINESTYLES[index % len(_LINESTYLES)],
    }


def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError("plots need matplotlib: pip install 'antialias[plots]'") from exc
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | os.PathLike) -> Path:
    """Write the PNG atomically: a reader (or a crash) sees the previous file or the new one."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    return _io.atomic_write(out, lambda f: fig.savefig(f, format="png", bbox_inches="tight"))


def plot_diagonal(
    results: Mapping[str, DiagonalResult],
    path: str | os.PathLike,
    *,
    images: Sequence[int] = (),
    title: str | None = None,
) -> Path:
    """Probability of the correct class and accuracy vs diagonal shift (the paper's Figure 1).

    Args:
        results: ``{model label: DiagonalResult}``; one curve per model.
        path: PNG file to write.
        images: indices of images whose own probability curves are drawn too (dashed), as the
            paper's single-image panels.
        title: figure title.

    Returns:
        The written path.
    """
    if not results:
        raise ValueError("plot_diagonal needs at least one result")
    fig = _figure(11, 4)
    ax_prob, ax_acc = fig.subplots(1, 2)
    for label, result in results.items():
        offsets = result.offsets.tolist()
        line = ax_prob.plot(
            offsets, result.probability_per_offset.tolist(), label=f"{label} (mean)"
        )
        for i in images:
            if 0 <= i < result.probabilities.shape[0]:
                ax_prob.plot(
                    offsets,
                    result.probabilities[i].tolist(),
                    linestyle="--",
                    color=line[0].get_color(),
                    alpha=0.6,
                    label=f"{label} image {i}",
                )
        ax_acc.plot(offsets, result.accuracy_per_offset.tolist(), label=label)
    ax_prob.set(xlabel="diagonal shift (pixels)", ylabel="P(correct class)", ylim=(0, 1))
    ax_acc.set(xlabel="diagonal shift (pixels)", ylabel="top-1 accuracy", ylim=(0, 1))
    for ax in (ax_prob, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(title or "Classification along a diagonal shift")
    return _save(fig, path)


def plot_consistency(
    consistency: Mapping[str, float],
    path: str | os.PathLike,
    *,
    accuracy: Mapping[str, float] | None = None,
    title: str | None = None,
) -> Path:
    """Consistency per model or filter: bars, or accuracy vs consistency (the paper's Figure 3).

    Args:
        consistency: ``{label: consistency}`` (fractions).
        path: PNG file to write.
        accuracy: ``{label: top-1}``; when given for every label, a scatter of accuracy against
            consistency instead of bars.
        title: figure title.

    Returns:
        The written path.
    """
    if not consistency:
        raise ValueError("plot_consistency needs at least one value")
    labels = list(consistency)
    values = [100 * consistency[k] for k in labels]
    fig = _figure(max(5, 1.2 * len(labels) + 2), 4)
    ax = fig.subplots()
    if accuracy is not None and all(k in accuracy for k in labels):
        accs = [100 * accuracy[k] for k in labels]
        ax.scatter(values, accs)
        for x, y, k in zip(values, accs, labels, strict=True):
            ax.annotate(k, (x, y), textcoords="offset points", xytext=(4, 4), fontsize="small")
        ax.set(xlabel="consistency (%)", ylabel="top-1 accuracy (%)")
    else:
        bars = ax.bar(range(len(labels)), values)
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
        ax.bar_label(bars, fmt="%.2f", fontsize="small")
        low = min(values)
        ax.set(ylabel="consistency (%)", ylim=(max(0.0, low - 5), 100))
    ax.grid(alpha=0.3)
    ax.set_title(title or "Shift consistency")
    return _save(fig, path)


def plot_equivariance(
    result: EquivarianceResult,
    path: str | os.PathLike,
    *,
    title: str | None = None,
) -> Path:
    """Per-layer equivariance heatmaps: distance for each input shift (the paper's Figure 5).

    Args:
        result: from :func:`antialias.metrics.feature_equivariance`.
        path: PNG file to write.
        title: figure title.

    Returns:
        The written path.
    """
    layers = result.layers
    if not layers:
        raise ValueError("the result has no layer")
    cols = min(4, len(layers))
    rows = math.ceil(len(layers) / cols)
    fig = _figure(3.2 * cols, 3.0 * rows)
    axes = fig.subplots(rows, cols, squeeze=False)
    vmax = max(float(result.distances[n].max()) for n in layers) or 1.0
    ys, xs = result.shifts_y.tolist(), result.shifts_x.tolist()
    image = None
    for k, ax in enumerate(axes.flat):
        if k >= len(layers):
            ax.axis("off")
            continue
        name = layers[k]
        image = ax.imshow(
            result.distances[name].numpy(),
            cmap="viridis",
            vmin=0,
            vmax=vmax,
            origin="upper",
            extent=(xs[0] - 0.5, xs[-1] + 0.5, ys[-1] + 0.5, ys[0] - 0.5),
        )
        ax.set_title(f"{name} (stride {result.strides[name]})", fontsize="small")
        ax.set_xlabel("dx")
        ax.set_ylabel("dy")
    if image is not None:
        fig.colorbar(
            image, ax=axes.ravel().tolist(), shrink=0.8, label=f"{result.distance} distance"
        )
    fig.suptitle(title or "Feature equivariance per layer")
    return _save(fig, path)


def _mean_std(value: float | Sequence[float]) -> tuple[float, float]:
    if isinstance(value, (int, float)):
        return float(value), 0.0
    mean, std = value
    return float(mean), float(std)


def plot_bars(
    series: Mapping[str, Mapping[str, float | tuple[float, float]]],
    path: str | os.PathLike,
    *,
    scale: float = 100.0,
    ylabel: str = "%",
    title: str | None = None,
) -> Path:
    """Grouped bars with error bars: one group per model, one bar per metric (e.g. means over seeds).

    Args:
        series: ``{metric title: {model label: value or (mean, std)}}``; every metric names the
            same models, in the order of the groups.
        path: PNG file to write.
        scale: factor applied to values and spreads (100: fractions shown in percent).
        ylabel: the y axis label.
        title: figure title.

    Returns:
        The written path.
    """
    if not series or not any(series.values()):
        raise ValueError("plot_bars needs at least one metric with one value")
    labels = list(next(iter(series.values())))
    for name, values in series.items():
        if list(values) != labels:
            raise ValueError(f"metric {name!r} names the models {list(values)}, expected {labels}")
    fig = _figure(max(6.0, 1.3 * len(labels) + 3), 4.2)
    ax = fig.subplots()
    width = 0.8 / len(series)
    low = math.inf
    for j, (name, values) in enumerate(series.items()):
        pairs = [_mean_std(values[k]) for k in labels]
        means = [scale * m for m, _ in pairs]
        stds = [scale * s for _, s in pairs]
        xs = [i + (j - (len(series) - 1) / 2) * width for i in range(len(labels))]
        bars = ax.bar(
            xs,
            means,
            width,
            yerr=stds if any(stds) else None,
            capsize=2,
            label=name,
            hatch=_HATCHES[j % len(_HATCHES)],  # metrics apart without colour too
            edgecolor="white",
        )
        ax.bar_label(bars, fmt="%.1f", fontsize=7, rotation=90, padding=3)
        low = min(low, min(m - s for m, s in zip(means, stds, strict=True)))
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right")
    if scale == 100.0:  # percentages: room above 100 for the labels, a floor at a multiple of 5
        ax.set_ylim(max(0.0, math.floor(low / 5) * 5 - 5), 109)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    if title:
        ax.set_title(title)
    return _save(fig, path)


@dataclass
class CurvePanel:
    """One panel of :func:`plot_curves`.

    Attributes:
        curves: ``{label: (x, y)}`` or ``{label: (x, y, spread)}``; a spread draws a band ``y +- spread``.
        title: panel title.
        xlabel: x axis label.
        ylabel: y axis label; panels with the same y label share one y range.
        ylim: y axis limits; ``None``: matplotlib's (widened to the other panels of the same y label).
        markers: mark each point.
    """

    curves: Mapping[str, tuple[Sequence[float], ...]]
    title: str = ""
    xlabel: str = ""
    ylabel: str = ""
    ylim: tuple[float, float] | None = None
    markers: bool = True


def plot_curves(
    panels: Sequence[CurvePanel], path: str | os.PathLike, *, title: str | None = None
) -> Path:
    """Curves side by side, a label keeping its colour, marker and line style across panels (e.g.
    metric vs shift per model).

    Convention:
        Panels with the same (non-empty) ``ylabel`` show one metric: they get one y range, the
        union of their ranges, so that their curves compare by eye.

    Args:
        panels: the panels, left to right.
        path: PNG file to write.
        title: figure title.

    Returns:
        The written path.
    """
    if not panels or not any(p.curves for p in panels):
        raise ValueError("plot_curves needs at least one panel with one curve")
    fig = _figure(5.75 * len(panels), 4.2)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    styles: dict[str, dict[str, Any]] = {}
    for ax, panel in zip(axes, panels, strict=True):
        for label, curve in panel.curves.items():
            if len(curve) not in (2, 3):
                raise ValueError(
                    f"curve {label!r} must be (x, y) or (x, y, spread), got {len(curve)} sequences"
                )
            xs, ys = list(curve[0]), list(curve[1])
            style = styles.setdefault(label, _line_style(len(styles)))
            ax.plot(
                xs,
                ys,
                label=label,
                markersize=4,
                markevery=max(1, len(xs) // 12),
                **{**style, "marker": style["marker"] if panel.markers else None},
            )
            if len(curve) == 3:
                spread = list(curve[2])
                lows = [a - b for a, b in zip(ys, spread, strict=True)]
                highs = [a + b for a, b in zip(ys, spread, strict=True)]
                ax.fill_between(xs, lows, highs, color=style["color"], alpha=0.15, linewidth=0)
        ax.set(title=panel.title, xlabel=panel.xlabel, ylabel=panel.ylabel)
        if panel.ylim is not None:
            ax.set_ylim(*panel.ylim)
        ax.grid(alpha=0.3)
    shared: dict[str, list[Any]] = {}
    for ax, panel in zip(axes, panels, strict=True):
        if panel.ylabel:
            shared.setdefault(panel.ylabel, []).append(ax)
    for group in shared.values():
        low = min(ax.get_ylim()[0] for ax in group)
        high = max(ax.get_ylim()[1] for ax in group)
        for ax in group:
            ax.set_ylim(low, high)
    shown: set[str] = set()  # a legend where a panel brings new labels
    for ax, panel in zip(axes, panels, strict=True):
        if set(panel.curves) - shown:
            ax.legend(fontsize="small", loc="best")
            shown |= set(panel.curves)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_training_curves(
    history: Sequence[Mapping[str, Any]], path: str | os.PathLike, *, title: str | None = None
) -> Path:
    """The curves of a training run, per epoch: loss, top-1 accuracy and consistency.

    Args:
        history: the run's log rows (``log.jsonl``), each with ``epoch``, ``train_loss``, and
            optionally ``train_top1``, ``val_top1``, ``val_top5`` and ``consistency`` (fractions;
            ``None``: not measured that epoch).
        path: PNG file to write (atomically).
        title: figure title.

    Returns:
        The written path.
    """
    if not history:
        raise ValueError("plot_training_curves needs at least one epoch")

    def curve(key: str, scale: float = 1.0) -> tuple[list[float], list[float]] | None:
        rows = [r for r in history if r.get(key) is not None]
        if not rows:
            return None
        return [float(r["epoch"]) for r in rows], [scale * float(r[key]) for r in rows]

    def panel(name: str, ylabel: str, keys: dict[str, str], scale: float) -> CurvePanel | None:
        curves = {label: c for label, key in keys.items() if (c := curve(key, scale)) is not None}
        return CurvePanel(curves, title=name, xlabel="epoch", ylabel=ylabel) if curves else None

    panels = [
        panel("loss", "cross-entropy", {"train": "train_loss"}, 1.0),
        panel(
            "top-1 accuracy",
            "%",
            {"train top-1": "train_top1", "val top-1": "val_top1", "val top-5": "val_top5"},
            100.0,
        ),
        panel("consistency", "%", {"val consistency": "consistency"}, 100.0),
    ]
    # Accuracy and consistency are both percentages: plot_curves gives them one y range.
    return plot_curves([p for p in panels if p is not None], path, title=title)
