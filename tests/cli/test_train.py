"""``antialias train``: a run from the command line, and bad input (clear error, exit 2, nothing written)."""

from __future__ import annotations

import importlib.util
import json
import logging
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
        "--num-classes",
        "--no-lr-scaling",
        "only these may be given with a new value: --epochs, --stop-after",
    ):
        assert text in " ".join(out.split()), text
    assert "(default: None)" not in out  # no default printed twice


def test_a_run_prints_a_table_and_writes_json(data, tmp_path, capsys, caplog):
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
    # --resume on a finished run trains no more and leaves the history as it was, and says so.
    with caplog.at_level("WARNING"):
        assert main([*argv[:-2], "--resume"]) == 0
    assert "has finished its 2 epochs: nothing to train" in caplog.text
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
    before = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    _fails(argv, capsys, "already holds a run")
    assert {
        str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()
    } == before


# --- the fine-tune workflow: another class count, resume alone, lr scaling ----------------------


def test_resume_alone_restores_the_run_and_refuses_changes(data, tmp_path, capsys):
    import torch

    straight, split = tmp_path / "straight", tmp_path / "split"
    run = ["train", str(data), *TINY_ARGS, "--epochs", "2", "--crop-size", "24"]
    assert main([*run, "--output-dir", str(straight)]) == 0
    assert main([*run, "--output-dir", str(split), "--stop-after", "1"]) == 0
    # An option that changes the run is an error naming it; nothing is trained.
    _fails(
        ["train", "--output-dir", str(split), "--resume", "--lr", "0.5"],
        capsys,
        "--lr=0.5 (the run has 0.1)",
    )
    assert len((split / "log.jsonl").read_text().splitlines()) == 1
    # --resume alone: model, data, crop 24, batch, lr and epochs come back from config.json.
    assert main(["train", "--output-dir", str(split), "--resume", "--workers", "0"]) == 0
    a = torch.load(straight / "weights.pt", weights_only=True)["state_dict"]
    b = torch.load(split / "weights.pt", weights_only=True)["state_dict"]
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_init_weights_of_another_class_count_reinitialise_the_classifier(data, tmp_path, caplog):
    import torch
    from _tiny_models import tiny_net

    torch.manual_seed(1)
    source = tiny_net(10)
    init = tmp_path / "ten_classes.pth"
    torch.save(source.state_dict(), init)
    out = tmp_path / "run"
    argv = [
        "train",
        str(data),
        *TINY_ARGS,
        "--epochs",
        "1",
        "--init-weights",
        str(init),
        "--output-dir",
        str(out),
    ]
    with caplog.at_level("WARNING"):
        assert main(argv) == 0
    assert "re-initialised the classifier '6' (10 -> 2 classes)" in caplog.text
    saved = torch.load(out / "weights.pt", weights_only=True)
    assert (
        saved["antialias"]["num_classes"] == 2
        and saved["antialias"]["arch"] == "_tiny_models:tiny_net"
    )
    assert saved["state_dict"]["6.weight"].shape == (2, 16)
    # --num-classes smaller than the data's classes is refused before anything is written.
    out2 = tmp_path / "run2"
    assert main([*argv[:-1], str(out2), "--num-classes", "1"]) == 2
    assert not out2.exists()


def test_lr_is_scaled_to_the_global_batch_with_a_warning(data, tmp_path, caplog):
    args = list(TINY_ARGS)
    i = args.index("--lr")
    del args[i : i + 2]
    out = tmp_path / "run"
    with caplog.at_level("WARNING"):
        assert main(["train", str(data), *args, "--epochs", "1", "--output-dir", str(out)]) == 0
    assert "lr scaled linearly, 0.1 x 4/256 = 0.0015625" in caplog.text
    # The warning names the command line's options, not TrainConfig's fields.
    assert "(give --lr, or --no-lr-scaling, to keep the recipe's rate)" in caplog.text
    assert "scale_lr" not in caplog.text
    config = json.loads((out / "config.json").read_text())
    assert config["recipe_resolved"]["lr"] == pytest.approx(0.0015625)
    caplog.clear()
    out2 = tmp_path / "run2"
    assert (
        main(
            [
                "train",
                str(data),
                *args,
                "--epochs",
                "1",
                "--no-lr-scaling",
                "--output-dir",
                str(out2),
            ]
        )
        == 0
    )
    assert "scaled" not in caplog.text
    assert json.loads((out2 / "config.json").read_text())["recipe_resolved"]["lr"] == 0.1


def test_workers_default_to_the_machine():
    import os

    from antialias.train.engine import default_workers

    assert 0 <= default_workers() <= min(8, os.cpu_count() or 1)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--batch-size", "0"], "--batch-size must be an int >= 1, got 0"),
        (["--batch-size", "6", "--accum-steps", "4"], "--batch-size 6 (global) must be divisible"),
        (["--val-resize", "16"], "--val-resize (16) must be at least --crop-size (32)"),
        (["--amp", "fp16"], "--amp 'fp16' needs a CUDA device, got cpu; use --amp 'bf16' on CPU"),
        (
            ["--epochs", "2", "--warmup-epochs", "3"],
            "--warmup-epochs (3.0) must not exceed --epochs",
        ),
        (
            ["--batch-size", "16"],
            "larger than the training set (8 images); lower --batch-size",
        ),
        (["--model", "resnt18"], "unknown zoo model 'resnt18' (did you mean 'resnet18' or"),
        (
            ["--model", "exported.pt2"],
            "--model 'exported.pt2' is an exported program (.pt2), which runs as exported and "
            "cannot be trained; --model takes a zoo name, a torchvision name (with "
            "--convert/--baseline) or a 'module:function' builder",
        ),
        (["--init-weights", "nowhere.pth"], "init weights 'nowhere.pth' is not a file"),
    ],
)
def test_bad_option_is_one_line_naming_the_option_before_any_warning(
    data, tmp_path, capsys, caplog, options, message
):
    # Without --lr the batch of 4 would be warned about (lr scaling): the error comes first and alone.
    args = list(TINY_ARGS)
    del args[args.index("--lr") : args.index("--lr") + 2]
    out = tmp_path / "run"
    with caplog.at_level("INFO"):
        err = _fails(
            ["train", str(data), *args, *options, "--output-dir", str(out)], capsys, message
        )
    assert err.count("\n") == 1 and "_" not in err.split("error: ")[1].split(" (")[0], err
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert not out.exists()


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_curves_png_and_tensorboard_events_are_written_every_epoch(data, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "run"
    run = ["train", str(data), *TINY_ARGS, "--epochs", "2", "--output-dir", str(out)]
    assert main([*run, "--stop-after", "1"]) == 0
    first = (out / "curves.png").read_bytes()
    assert first.startswith(PNG_MAGIC)
    assert main(["train", "--output-dir", str(out), "--resume", "--workers", "0"]) == 0
    second = (out / "curves.png").read_bytes()
    assert second.startswith(PNG_MAGIC) and second != first  # redrawn with epoch 2
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    if importlib.util.find_spec("tensorboard") is None:
        return  # without the optional extra: no event files, and no error
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    assert {"train_loss", "val_top1", "consistency", "lr"} <= set(events.Tags()["scalars"])
    loss = [(e.step, e.value) for e in events.Scalars("train_loss")]
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert loss == [(r["epoch"], pytest.approx(r["train_loss"])) for r in rows]


def test_tensorboard_off_or_required(data, tmp_path, capsys, monkeypatch):
    import antialias.train.config as train_config

    out = tmp_path / "off"
    run = ["train", str(data), *TINY_ARGS, "--epochs", "1"]
    assert main([*run, "--no-tensorboard", "--output-dir", str(out)]) == 0
    assert not (out / "tensorboard").exists()
    # Asked for explicitly without the package: an error before anything is written.
    real = train_config.installed
    monkeypatch.setattr(
        train_config, "installed", lambda name: name != "tensorboard" and real(name)
    )
    missing = tmp_path / "missing"
    _fails(
        [*run, "--tensorboard", "--output-dir", str(missing)],
        capsys,
        "--tensorboard needs the tensorboard package: pip install 'antialias[tensorboard]'",
    )
    assert not missing.exists()


def test_a_forced_backend_that_cannot_run_on_the_device_is_one_line_before_work(
    data, tmp_path, capsys, monkeypatch
):
    from antialias.layers import _triton, set_backend

    monkeypatch.setattr(_triton, "interpreting", lambda: False)  # no Triton interpreter here
    out = tmp_path / "run"
    with set_backend("triton"):
        err = _fails(
            ["train", str(data), *TINY_ARGS, "--output-dir", str(out)],
            capsys,
            "the 'triton' backend cannot run on the CPU",
        )
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert not (out / "log.jsonl").exists()
