"""The run's folder: the log's strict JSON lines, a crash's torn last line, and which runs may be written over."""

from __future__ import annotations

import json

import pytest

from antialias.train import TrainConfig
from antialias.train.run_folder import (
    append_log,
    check_output_dir,
    json_line,
    logged_epoch,
    read_log,
)


def test_log_lines_are_strict_json_and_a_torn_last_line_is_ignored(tmp_path, caplog):
    log = tmp_path / "log.jsonl"
    append_log(log, {"epoch": 1, "val_top1": float("nan")})
    append_log(log, {"epoch": 2, "val_top1": 0.5})
    assert json.loads(json_line({"x": float("inf")})) == {"x": None}
    assert read_log(log) == [{"epoch": 1, "val_top1": None}, {"epoch": 2, "val_top1": 0.5}]
    with open(log, "a", encoding="utf-8") as f:
        f.write('{"epoch": 3, "val_')  # a crash while appending
    assert [row["epoch"] for row in read_log(log)] == [
        1,
        2,
    ] and "incomplete last line" in caplog.text
    assert logged_epoch(tmp_path) == 2
    log.write_text('{"epoch": 1}\nnot json\n{"epoch": 3}\n')
    with pytest.raises(ValueError, match="line 2 is not valid JSON"):
        read_log(log)
    assert read_log(tmp_path / "missing.jsonl") == []


def test_a_folder_holding_a_run_is_refused_unless_resumed_or_overwritten(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    config = TrainConfig(data=None, model="resnet18", output_dir=str(out))
    assert check_output_dir(config) == (None, [])  # empty: a new run
    append_log(out / "log.jsonl", {"epoch": 1})
    with pytest.raises(ValueError, match="already holds a run"):
        check_output_dir(config)
    overwrite = TrainConfig(data=None, model="resnet18", output_dir=str(out), overwrite=True)
    assert check_output_dir(overwrite) == (None, [out / "log.jsonl"])
    with pytest.raises(FileNotFoundError, match="holds no checkpoint"):
        check_output_dir(
            TrainConfig(data=None, model="resnet18", output_dir=str(out), resume="latest")
        )
    with pytest.raises(ValueError, match="is a folder"):
        check_output_dir(
            TrainConfig(data=None, model="resnet18", output_dir=str(out), resume=str(tmp_path))
        )


def test_run_curves_png_and_optional_tensorboard(tmp_path):
    pytest.importorskip("matplotlib")
    from antialias.train.run_folder import RunCurves

    rows = [{"epoch": 1, "train_loss": 2.0, "val_top1": 0.5, "consistency": 0.7, "lr": 0.1}]
    off = RunCurves(tmp_path / "off", tensorboard=False, start_epoch=0, title="t")
    (tmp_path / "off").mkdir()
    off.epoch(rows[0], rows)
    off.close()
    assert [p.name for p in (tmp_path / "off").iterdir()] == ["curves.png"]
    pytest.importorskip("tensorboard")
    on = RunCurves(tmp_path / "on", tensorboard=None, start_epoch=0, title="t")  # installed: on
    on.epoch(rows[0], rows)
    on.close()
    assert list((tmp_path / "on" / "tensorboard").glob("events.out.tfevents.*"))
