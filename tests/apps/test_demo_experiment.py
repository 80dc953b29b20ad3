"""A reduced demo run and a method comparison (antialias.apps.demo.experiment)."""

from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

from _demo_run import PNG_MAGIC, reduced_run  # noqa: E402

from antialias.apps import demo  # noqa: E402
from antialias.apps.demo import DemoConfig, experiment, run_demo, write_outputs  # noqa: E402


@pytest.fixture
def reduced_result() -> dict:
    return reduced_run()


def test_reduced_run_structure(reduced_result):
    r = reduced_result
    assert json.loads(json.dumps(r)) == r  # JSON-ready
    assert [v["name"] for v in r["variants"]] == ["baseline", "blur-3", "aps"]
    assert r["data"] == {
        "dataset": "digits",
        "train_images": 96,
        "test_images": 24,
        "image_size": [1, 32, 32],
    }
    assert r["config"]["seeds"] == [0, 1] and r["config"]["epochs"] == 1
    for v in r["variants"]:
        assert [s["seed"] for s in v["seeds"]] == [0, 1]
        assert v["lr"] == r["config"]["lr"]  # the CNN variants train at the configured rate
        for key, _ in demo.METRICS:
            values = [s[key] for s in v["seeds"]]
            assert all(0.0 <= x <= 1.0 for x in values)
            summary = v["summary"][key]
            assert summary["mean"] == pytest.approx(sum(values) / 2)
            assert summary["std"] == pytest.approx(abs(values[0] - values[1]) / math.sqrt(2))
            assert summary["min"] == min(values) and summary["max"] == max(values)
        d = v["diagonal"]
        assert d["shifts"] == list(range(-8, 9))
        assert len(d["probability_mean"]) == 17 and len(d["example_probability"]) == 2
        assert all(0.0 <= p <= 1.0 for p in d["probability_mean"])


def test_reduced_run_aps_is_exactly_consistent(reduced_result):
    # Guaranteed by construction (circular padding, APS, global pooling), whatever the training.
    aps = next(v for v in reduced_result["variants"] if v["name"] == "aps")
    for seed in aps["seeds"]:
        assert seed["circular_consistency"] == 1.0 and seed["crop_consistency"] == 1.0
        assert seed["diagonal_stability"] == 1.0
        assert seed["shift_accuracy"] == pytest.approx(seed["clean_accuracy"])


def test_reduced_run_comparison(reduced_result):
    rows = {(c["variant"], c["metric"]): c for c in reduced_result["comparison"]}
    assert set(v for v, _ in rows) == {"blur-3", "aps"}
    base = reduced_result["variants"][0]["summary"]["circular_consistency"]
    aps = reduced_result["variants"][2]["summary"]["circular_consistency"]
    row = rows[("aps", "circular_consistency")]
    assert row["difference"] == pytest.approx(aps["mean"] - base["mean"])
    assert row["exceeds_spread"] == (abs(row["difference"]) > base["std"] + aps["std"])


def test_comparison_run_adds_subpixel_consistency_and_epoch_time(tmp_path):
    config = DemoConfig(
        seeds=(0,),
        epochs=1,
        methods=("max", "blur-3", "lps"),
        train_size=64,
        test_size=16,
        passes=1,
        workers=1,
        progress=False,
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(experiment, "_cpu_count", lambda: 1)
        result = run_demo(config)
    assert result["config"]["methods"] == ["max", "blur-3", "lps"]
    assert [v["name"] for v in result["variants"]] == ["max", "blur-3", "lps"]
    for v in result["variants"]:
        seed = v["seeds"][0]
        assert 0.0 <= seed["fractional_consistency"] <= 1.0
        assert (
            seed["epoch_time_s"] == pytest.approx(seed["train_time_s"]) and seed["epoch_time_s"] > 0
        )
        for key, _ in demo.COMPARISON_METRICS:
            assert v["summary"][key]["mean"] == seed[key]
    lps = result["variants"][2]["seeds"][0]
    assert (
        lps["circular_consistency"] == 1.0 and lps["crop_consistency"] == 1.0
    )  # exact, whatever the training
    assert {c["variant"] for c in result["comparison"]} == {
        "blur-3",
        "lps",
    }  # against the "max" baseline
    lines = demo.format_table(result).splitlines()
    assert "consistency (sub-pixel)" in lines[0] and "s / epoch" in lines[0]
    assert lines[-1] == "(percent (times in seconds), 1 seed)"
    paths = write_outputs(result, tmp_path)
    assert "| MaxPool + LPS |" in paths["table"].read_text()
    assert paths["consistency"].read_bytes().startswith(PNG_MAGIC)


def test_a_forced_backend_that_cannot_run_on_the_device_fails_before_the_data(monkeypatch):
    from antialias.layers import _triton, set_backend

    monkeypatch.setattr(_triton, "interpreting", lambda: False)  # no Triton interpreter here
    monkeypatch.setattr(_triton, "available", lambda: True)

    def load(*_: object, **__: object) -> None:
        raise AssertionError("the data were loaded")

    monkeypatch.setattr(experiment, "_load", load)
    with set_backend("triton"), pytest.raises(ValueError, match="'triton' backend cannot run"):
        run_demo(DemoConfig(seeds=(0,), epochs=1, filters=(3,), progress=False))
