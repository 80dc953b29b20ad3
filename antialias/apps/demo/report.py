"""The demo's outputs: a text or Markdown table, ``results.json`` and the plots (:mod:`antialias.metrics.plots`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from antialias.apps.demo.config import COMPARISON_METRICS, METRICS
from antialias.files import record_outputs
from antialias.metrics.plots import CurvePanel, plot_bars, plot_curves

__all__ = ["format_table", "write_outputs"]


def _cell(key: str, summary: dict[str, float], seeds: int) -> str:
    # Times in seconds, everything else a fraction shown in percent.
    scale, digits = (1.0, 2) if key.endswith("_s") else (100.0, 1)
    mean = f"{scale * summary['mean']:.{digits}f}"
    return f"{mean} ± {scale * summary['std']:.{digits}f}" if seeds > 1 else mean


def format_table(result: dict[str, Any], *, markdown: bool = False) -> str:
    """The results as a text (or Markdown) table: mean ± standard deviation over seeds, in percent."""
    seeds = len(result["config"]["seeds"])
    spread = f"mean ± std over {seeds} seeds" if seeds > 1 else "1 seed"
    columns = METRICS if result["config"].get("methods") is None else COMPARISON_METRICS
    header = ["model"] + [title for _, title in columns]
    rows = [
        [v["label"]] + [_cell(key, v["summary"][key], seeds) for key, _ in columns]
        for v in result["variants"]
    ]
    unit = (
        "Percent" if all(not k.endswith("_s") for k, _ in columns) else "Percent (times in seconds)"
    )
    if markdown:
        lines = [
            "| " + " | ".join(header) + " |",
            "|" + "|".join(["---"] + ["---:"] * len(columns)) + "|",
        ]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines) + f"\n\n{unit}, {spread}."
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def fmt(r: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )

    lines = [fmt(header), "  ".join("-" * w for w in widths)] + [fmt(r) for r in rows]
    return "\n".join(lines) + f"\n({unit.lower()}, {spread})"


def write_outputs(result: dict[str, Any], output: str | os.PathLike) -> dict[str, Path]:
    """Write ``results.json``, ``table.md``, ``consistency.png`` and ``diagonal.png`` into ``output``.

    Returns:
        ``{"json": ..., "table": ..., "consistency": ..., "diagonal": ...}``, the written paths.
    """
    folder = Path(output)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"output must be a folder, got the file {str(folder)!r}")
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": folder / "results.json",
        "table": folder / "table.md",
        "consistency": folder / "consistency.png",
        "diagonal": folder / "diagonal.png",
    }
    record_outputs(folder, [path.name for path in paths.values()])  # a later run may replace them
    paths["json"].write_text(json.dumps(result, indent=1) + "\n")
    paths["table"].write_text(format_table(result, markdown=True) + "\n")
    variants = result["variants"]
    seeds = len(result["config"]["seeds"])
    spread = f"mean ± std over {seeds} seeds" if seeds > 1 else "1 seed"
    bars = [
        ("circular_consistency", "consistency, circular shifts"),
        ("crop_consistency", "consistency, shifted crops"),
        ("shift_accuracy", "accuracy under shift"),
    ]
    if result["config"].get("methods") is not None:
        bars.append(("fractional_consistency", "consistency, sub-pixel shifts"))
    series = {
        title: {v["label"]: (v["summary"][key]["mean"], v["summary"][key]["std"]) for v in variants}
        for key, title in bars
    }
    plot_bars(
        series,
        paths["consistency"],
        title=f"Shifts of ±{result['config']['max_shift']} px, no shift augmentation ({result['data']['dataset']}, {spread})",
    )
    first = variants[0]["diagonal"]
    example = CurvePanel(
        {
            v["label"]: (v["diagonal"]["shifts"], v["diagonal"]["example_probability"][0])
            for v in variants
        },
        title=f"one test image (#{first['example_image']}), seed {result['config']['seeds'][0]}",
        xlabel="diagonal shift (pixels)",
        ylabel="probability of the correct class",
        ylim=(-0.02, 1.02),
    )
    mean = CurvePanel(
        {
            v["label"]: (
                v["diagonal"]["shifts"],
                v["diagonal"]["probability_mean"],
                v["diagonal"]["probability_std"],
            )
            for v in variants
        },
        title="mean over test images (band: std over seeds)",
        xlabel="diagonal shift (pixels)",
        ylabel="probability of the correct class",
    )
    plot_curves(
        [example, mean],
        paths["diagonal"],
        title="Probability of the correct class as the image shifts diagonally (cf. Zhang 2019, Figure 1)",
    )
    return paths
