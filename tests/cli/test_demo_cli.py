"""``antialias demo``: a reduced run through the command line, its outputs and its errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import antialias

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

from antialias.apps.demo import (  # noqa: E402
    METRICS,
    DemoConfig,
    experiment,  # noqa: E402
    run_demo,
)
from antialias.cli import main  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REDUCED = [
    "--epochs",
    "1",
    "--train-size",
    "64",
    "--test-size",
    "16",
    "--passes",
    "1",
    "--no-progress",
]


def test_demo_reduced_run_with_worker_processes(tmp_path, capsys, monkeypatch):
    out = tmp_path / "demo"
    rc = main(
        [
            "demo",
            *REDUCED,
            "--seeds",
            "0,1",
            "--filters",
            "2,4",
            "--workers",
            "2",
            "--output",
            str(out),
        ]
    )
    assert rc == 0
    stdout = capsys.readouterr().out
    for label in ("MaxPool (baseline)", "MaxBlurPool Rect-2", "MaxBlurPool Tri-4", "MaxPool + APS"):
        assert label in stdout
    assert (
        "mean ± std over 2 seeds" in stdout and "consistency (circular) vs the baseline" in stdout
    )
    assert "with 2 worker(s) on cpu" in stdout
    result = json.loads((out / "results.json").read_text())
    assert result["config"]["seeds"] == [0, 1] and result["config"]["filters"] == [2, 4]
    assert result["environment"]["workers"] == 2
    assert [v["name"] for v in result["variants"]] == ["baseline", "blur-2", "blur-4", "aps"]
    for name in ("consistency.png", "diagonal.png"):
        assert (out / name).read_bytes().startswith(PNG_MAGIC)
    assert (out / "table.md").read_text().startswith("| model |")

    # Each model is trained on one thread from its own seed: where it runs must not matter.
    config = DemoConfig(
        seeds=(1,),
        epochs=1,
        filters=(4,),
        train_size=64,
        test_size=16,
        passes=1,
        workers=1,
        progress=False,
    )
    monkeypatch.setattr(experiment, "_cpu_count", lambda: 1)  # one thread, as each pool worker
    alone = run_demo(config)
    for v_pool, v_alone in zip(
        [result["variants"][i] for i in (0, 2, 3)], alone["variants"], strict=True
    ):
        assert v_pool["name"] == v_alone["name"]
        seed1 = next(s for s in v_pool["seeds"] if s["seed"] == 1)
        for key, _ in METRICS:
            assert seed1[key] == v_alone["seeds"][0][key]
        assert (
            v_pool["diagonal"]["example_probability"][1]
            == v_alone["diagonal"]["example_probability"][0]
        )


def test_demo_only_baseline(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(experiment, "_cpu_count", lambda: 1)
    assert (
        main(
            [
                "demo",
                *REDUCED,
                "--seeds",
                "0",
                "--filters",
                "none",
                "--no-aps",
                "--workers",
                "1",
                "--output",
                str(tmp_path),
            ]
        )
        == 0
    )
    stdout = capsys.readouterr().out
    assert (
        "MaxPool (baseline)" in stdout
        and "vs the baseline" not in stdout
        and "(percent, 1 seed)" in stdout
    )
    config = json.loads((tmp_path / "results.json").read_text())["config"]
    assert (config["widths"], config["batch_size"], config["epochs"]) == (
        [16, 32, 64],
        32,
        1,
    )  # "auto" resolved


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dataset", "cifar10"], "needs --data"),
        (["--data", "somewhere"], "apply to --dataset cifar10"),
        (["--workers", "-1"], "--workers must be >= 0"),
        (
            ["--filters", "none", "--no-baseline", "--no-aps"],
            "no variant to train: give --filters, or keep the baseline or APS",
        ),
        (["--epochs", "0"], "--epochs must be a positive integer, got 0"),
        (["--seeds", "1,1"], "--seeds must be distinct"),
        (["--max-shift", "0"], "--max-shift must be a positive integer number of pixels"),
        (["--batch-size", "0"], "--batch-size must be a positive integer"),
    ],
)
def test_demo_user_errors(args, message, tmp_path, capsys, caplog):
    with caplog.at_level("INFO"):
        assert main(["demo", *args, "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("antialias demo: error:") and message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not caplog.records, caplog.text  # before any work is announced (data, training)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without CUDA")
def test_demo_cuda_unavailable(tmp_path, capsys):
    assert main(["demo", "--device", "cuda", "--output", str(tmp_path)]) == 2
    assert "CUDA is not available" in capsys.readouterr().err


def test_demo_cifar10_missing_folder(tmp_path, capsys):
    rc = main(
        [
            "demo",
            "--dataset",
            "cifar10",
            "--data",
            str(tmp_path / "none"),
            "--output",
            str(tmp_path / "o"),
        ]
    )
    assert rc == 2
    assert "CIFAR-10 not found" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["--filters", "0"],
        ["--filters", "sinc-3"],
        ["--seeds", "a"],
        ["--widths", "8,16"],
        ["--epochs", "many"],
        ["--methods", "max,nope"],
        ["--methods", "blur-0"],
        ["--models", "vit"],
        ["--models", "cnn,transformer"],
    ],
)
def test_demo_bad_values_are_refused_by_the_parser(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["demo", *args])
    assert exc.value.code == 2
    assert "antialias demo: error: argument" in capsys.readouterr().err


def test_demo_help_lists_the_options(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    out = capsys.readouterr().out
    for option in (
        "--device",
        "--epochs",
        "--seeds",
        "--filters",
        "--output",
        "--dataset",
        "--data",
        "--workers",
        "--methods",
        "--models",
    ):
        assert option in out


def test_demo_methods_comparison(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(experiment, "_cpu_count", lambda: 1)
    assert (
        main(
            [
                "demo",
                *REDUCED,
                "--seeds",
                "0",
                "--methods",
                "max,aps",
                "--workers",
                "1",
                "--output",
                str(tmp_path),
            ]
        )
        == 0
    )
    stdout = capsys.readouterr().out
    header = stdout.splitlines()[0]
    for column in (
        "clean acc.",
        "consistency (circular)",
        "consistency (crop)",
        "same class on diagonal",
        "consistency (sub-pixel)",
        "s / epoch",
    ):
        assert column in header
    assert "MaxPool + APS" in stdout and "aps: +" in stdout
    result = json.loads((tmp_path / "results.json").read_text())
    assert result["config"]["methods"] == ["max", "aps"]
    assert [v["name"] for v in result["variants"]] == ["max", "aps"]
    assert result["variants"][1]["summary"]["circular_consistency"]["mean"] == 1.0


def test_python_m_demo_workers_import_the_package_from_an_editable_checkout(tmp_path):
    # `python -m antialias` moves the working directory behind the installed modules; run from the folder that holds
    # the package (an editable install), the spawned workers, which inherit that sys.path, must still import it.
    root = Path(antialias.__file__).resolve().parents[1]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "antialias",
            "demo",
            *REDUCED,
            "--seeds",
            "0,1",
            "--filters",
            "2",
            "--no-baseline",
            "--no-aps",
            "--workers",
            "2",
            "--output",
            str(tmp_path / "demo"),
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "No module named 'antialias'" not in result.stderr
    assert (tmp_path / "demo" / "results.json").is_file()
