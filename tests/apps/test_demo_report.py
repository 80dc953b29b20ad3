"""The demo's outputs: results.json, table.md, PNG figures, the text table (antialias.apps.demo.report)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

from _demo_run import PNG_MAGIC, reduced_run  # noqa: E402

from antialias.apps import demo  # noqa: E402
from antialias.apps.demo import write_outputs  # noqa: E402


@pytest.fixture
def reduced_result() -> dict:
    return reduced_run()


def test_write_outputs(reduced_result, tmp_path):
    paths = write_outputs(reduced_result, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        ".antialias-outputs",  # the manifest: a later run may replace these files
        "consistency.png",
        "diagonal.png",
        "results.json",
        "table.md",
    ]
    assert json.loads(paths["json"].read_text()) == reduced_result
    for key in ("consistency", "diagonal"):
        data = paths[key].read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000
    table = paths["table"].read_text()
    assert (
        table.startswith("| model |") and "MaxBlurPool Tri-3" in table and "MaxPool + APS" in table
    )
    assert "± " in table and "mean ± std over 2 seeds" in table


def test_write_outputs_refuses_a_file(reduced_result, tmp_path):
    target = tmp_path / "file.json"
    target.write_text("{}")
    with pytest.raises(NotADirectoryError, match="must be a folder"):
        write_outputs(reduced_result, target)


def test_format_table_text(reduced_result):
    table = demo.format_table(reduced_result)
    lines = table.splitlines()
    assert lines[0].startswith("model") and "consistency (circular)" in lines[0]
    assert len(lines) == 2 + 3 + 1
    aps = next(v for v in reduced_result["variants"] if v["name"] == "aps")
    assert f"{100 * aps['summary']['clean_accuracy']['mean']:.1f} ± " in lines[4]


def test_diagonal_panels_share_the_y_range_and_variants_have_their_own_line_style(
    reduced_result, tmp_path, monkeypatch
):
    from antialias.metrics import plots

    figures, save = [], plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or save(fig, path))
    write_outputs(reduced_result, tmp_path / "out")
    example, mean = figures[-1].axes[:2]  # diagonal.png: one image, mean over images
    assert example.get_ylabel() == mean.get_ylabel()
    assert example.get_ylim() == mean.get_ylim()
    styles = [(line.get_marker(), line.get_linestyle()) for line in mean.get_lines()]
    assert len(set(styles)) == len(reduced_result["variants"])  # apart without colour
    bars = figures[0].axes[0].patches  # consistency.png: a hatch per metric
    assert len({p.get_hatch() for p in bars}) > 1
