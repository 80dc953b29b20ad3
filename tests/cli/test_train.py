"""``antialias train``: a run from the command line, and bad input (clear error, exit 2, nothing written)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from antialias.cli import main

TINY_MODELS = str(Path(__file__).resolve().parents[1] / "train")
TINY_ARGS = [
    "--model",
    "_tiny_models:tiny_net",
    "--batch-size",
    "4",
    "--lr",
    "0.1",
    "--crop-size",
    "32",
    "--val-resize",
    "32",
    "--max-offset",
    "8",
    "--workers",
    "0",
    "--device",
    "cpu",
    "--no-progress",
]


def _write_tree(root: Path, classes=("blue", "red"), per_class: int = 4, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for index, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 80, (40, 40, 3)).astype(np.uint8)
            pixels[..., (2, 0, 1)[index % 3]] += 150
            Image.fromarray(pixels).save(root / name / f"{i}.png")


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(TINY_MODELS)
    root = tmp_path / "data"
    _write_tree(root / "train")
    _write_tree(root / "val", seed=1)
    return root


def _fails(argv: list[str], capsys: pytest.CaptureFixture, match: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("antialias train: error: ") and "Traceback" not in err
    assert match in err, err
    return err


def test_help_lists_the_options_and_recipes(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for text in (
        "--resume",
        "--init-weights",
        "--accum-steps",
        "--amp",
        "--sync-bn",
        "mobilenet_v2",
        "torchrun",
    ):
        assert text in out, text


def test_a_run_prints_a_table_and_writes_json(data, tmp_path, capsys):
    out, summary = tmp_path / "run", tmp_path / "summary.json"
    argv = [
        "train",
        str(data),
        *TINY_ARGS,
        "--output-dir",
        str(out),
        "--epochs",
        "2",
        "--output",
        str(summary),
    ]
    assert main(argv) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["epoch", "loss", "lr"]
    assert [line.split()[0] for line in table[1:3]] == ["1", "2"]
    result = json.loads(summary.read_text())
    assert result["epochs_completed"] == 2 and result["weights"] == str(out / "weights.pt")
    # --resume on a finished run trains no more and leaves the history as it was.
    assert main([*argv[:-2], "--resume"]) == 0
    assert len((out / "log.jsonl").read_text().splitlines()) == 2


def test_missing_data_folder(tmp_path, capsys):
    out = tmp_path / "run"
    _fails(
        ["train", str(tmp_path / "nowhere"), *TINY_ARGS, "--output-dir", str(out)],
        capsys,
        "nowhere",
    )
    assert not out.exists()


def test_empty_folder(data, tmp_path, capsys):
    for image in (data / "val").rglob("*.png"):
        image.unlink()
    out = tmp_path / "run"
    _fails(["train", str(data), *TINY_ARGS, "--output-dir", str(out)], capsys, "no images")
    assert not out.exists()


def test_class_missing_from_val(data, tmp_path, capsys):
    _write_tree(data / "train", classes=("green",), seed=2)
    out = tmp_path / "run"
    _fails(
        ["train", str(data), *TINY_ARGS, "--output-dir", str(out)],
        capsys,
        "in '" + str(data / "train") + "' but not in",
    )
    assert not out.exists()


def test_corrupt_image_is_named_or_skipped(data, tmp_path, capsys):
    (data / "val" / "blue" / "bad.png").write_bytes(b"garbage")
    out = tmp_path / "run"
    _fails(["train", str(data), *TINY_ARGS, "--output-dir", str(out)], capsys, "bad.png")
    assert not out.exists()
    argv = [
        "train",
        str(data),
        *TINY_ARGS,
        "--output-dir",
        str(out),
        "--epochs",
        "1",
        "--on-corrupt",
        "skip",
    ]
    assert main(argv) == 0


def test_unknown_model(data, tmp_path, capsys):
    out = tmp_path / "run"
    argv = [
        "train",
        str(data),
        *TINY_ARGS,
        "--output-dir",
        str(out),
        "--model",
        "resnet5",
        "--baseline",
    ]
    err = _fails(argv, capsys, "unknown torchvision classification model 'resnet5'")
    assert "did you mean" in err
    assert not out.exists()


def test_unknown_option_exits_2(data, tmp_path, capsys):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        main(["train", str(data), *TINY_ARGS, "--output-dir", str(out), "--learning-rate", "1"])
    assert exit_info.value.code == 2
    assert "--learning-rate" in capsys.readouterr().err
    assert not out.exists()


def test_existing_run_is_not_written_over(data, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", str(data), *TINY_ARGS, "--output-dir", str(out), "--epochs", "1"]
    assert main(argv) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    _fails(argv, capsys, "already holds a run")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
