"""Nothing the library loads runs code, and no run, checkpoint or result is lost or overwritten.

Every code-execution test plants a pickle whose ``__reduce__`` would create a marker file when
unpickled (or a module that would create it when imported) and asserts that the marker does not
exist afterwards. Downloads are served from 127.0.0.1 or refused by a stand-in for the network;
no test needs a GPU or the network. These are the end-to-end checks; the units they rest on are tested
in ``tests/test_io.py`` (antialias._io) and ``tests/models/test_load.py`` (the zoo's loader).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import textwrap
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from _train_data import TINY as TRAIN_TINY
from _train_data import write_image_tree
from PIL import Image

from antialias import _io
from antialias.cli import main
from antialias.data import CorruptImageError, load_image_folder
from antialias.metrics import crop_consistency
from antialias.metrics._common import NonFiniteLogitsError
from antialias.models import _load, import_object, load_init_weights
from antialias.models._load import CheckpointError, WeightsDownloadError, read_state_dict
from antialias.train import TrainConfig, train
from antialias.train import checkpoint as ck
from antialias.train.engine import NonFiniteLossError

# --------------------------------------------------------------------------------------------------
# Fixtures: a planted weights file, a tiny model file, a tiny data set, no network


def _evil_file(path: Path, payload: object, *, legacy: bool = False) -> Path:
    """A weights file with the ``payload`` fixture planted in it."""
    torch.save(
        {"state_dict": {"w": torch.zeros(1)}, "x": payload},
        path,
        _use_new_zipfile_serialization=not legacy,
    )
    return path


NETS = textwrap.dedent(
    """
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self, num_classes=2, nan_after=None, nan_eval=False):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, stride=2)
            self.fc = nn.Linear(4, num_classes)
            self.nan_after, self.nan_eval, self.calls = nan_after, nan_eval, 0

        def forward(self, x):
            y = self.fc(self.conv(x).mean((2, 3)))
            if self.training:
                self.calls += 1
                if self.nan_after is not None and self.calls > self.nan_after:
                    y = y * float("nan")
            elif self.nan_eval:
                y = y * float("nan")
            return y

    def tiny(num_classes=2, **kwargs):
        return Net(num_classes)

    def diverging(num_classes=2, **kwargs):  # the loss turns NaN at the first step of epoch 2
        return Net(num_classes, nan_after=2)

    def nan_logits(num_classes=2, **kwargs):
        return Net(num_classes, nan_eval=True)
    """
)

TINY = {**TRAIN_TINY, "consistency_passes": 0}
CLI_TINY = [
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
    "--no-progress",
    "--device",
    "cpu",
    "--consistency-passes",
    "0",
]


@pytest.fixture
def nets(tmp_path: Path) -> str:
    """Path of a file with tiny model factories (imported by its path, the explicit way)."""
    path = tmp_path / "nets.py"
    path.write_text(NETS)
    return str(path)


def _config(data: Path, out: Path, model: str, **overrides: object) -> TrainConfig:
    return TrainConfig(data=str(data), output_dir=str(out), model=model, **{**TINY, **overrides})


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stand in for a machine without network: every download fails at once."""

    def refuse(url: str, *args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no network (test)")

    monkeypatch.setattr(_load, "_fetch", refuse)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------------------------------
# 2-3. torchvision's weights and the download cache


def test_planted_torchvision_file_is_never_unpickled(
    hub_dir: Path, tmp_path: Path, offline: None, payload: object
) -> None:
    import torchvision

    marker = tmp_path / "MARKER"
    url = torchvision.models.ResNet18_Weights.DEFAULT.url
    (hub_dir / "checkpoints").mkdir(parents=True)
    planted = _evil_file(hub_dir / "checkpoints" / url.rsplit("/", 1)[1], payload)
    model = torchvision.models.resnet18()
    # train --init-weights torchvision: the planted file fails the hash check, is deleted, and
    # offline the error is one line naming where the file goes.
    with pytest.raises(WeightsDownloadError) as info:
        load_init_weights(model, "torchvision", arch="resnet18")
    assert str(planted) in str(info.value) and "\n" not in str(info.value)
    assert not marker.exists() and not planted.exists()
    # eval --model torchvision.models:resnet18 --weights DEFAULT: the same loader.
    _evil_file(planted, payload)
    from antialias.models import build_model  # the one resolver of eval and train

    with pytest.raises(WeightsDownloadError, match="put it at"):
        build_model("torchvision.models:resnet18", weights="DEFAULT")
    assert not marker.exists() and not planted.exists()


def test_planted_cifar10_batch_is_refused_even_when_its_md5_matches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, payload: object
) -> None:
    import pickle

    from torchvision.datasets import CIFAR10

    from antialias.apps.demo.data import _cifar10

    marker = tmp_path / "MARKER"
    folder = tmp_path / "cifar" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, _ in CIFAR10.train_list + CIFAR10.test_list:
        (folder / name).write_bytes(pickle.dumps({"data": payload, "labels": [0]}))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": ["a"]}))
    monkeypatch.setattr(CIFAR10, "_check_integrity", lambda self: True)  # as if the MD5 collided
    with pytest.raises(_io.UnsafeFileError, match="io.open"):
        _cifar10(str(tmp_path / "cifar"), download=False)
    assert not marker.exists()


# --------------------------------------------------------------------------------------------------
# 4. imports never come from the working directory by accident


def test_module_names_are_not_imported_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "MARKER"
    (tmp_path / "cwd_shadow_mod.py").write_text(
        f"open({str(marker)!r}, 'w').close()\ndef build(**kw):\n    return None\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend("")  # as python -m and an interactive interpreter do
    with pytest.raises(ValueError, match=r"give its path, './cwd_shadow_mod.py:build'"):
        import_object("cwd_shadow_mod:build")
    assert not marker.exists()
    assert callable(import_object("./cwd_shadow_mod.py:build"))  # named by its path: wanted
    assert marker.exists()


@pytest.mark.slow  # a fresh interpreter imports torch: ~10 s on 2 cores
def test_python_m_antialias_ignores_a_torchvision_py_in_the_working_directory(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "MARKER"
    (tmp_path / "torchvision.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "antialias",
            "eval",
            "--model",
            "torchvision.models:resnet18",
            "--metrics",
            "circular",
            "--data",
            str(tmp_path / "missing"),
            "--device",
            "cpu",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    assert not marker.exists()


# --------------------------------------------------------------------------------------------------
# 6, 15. checkpoints: independent copies, recorded hashes, CRCs, fall-back on damage


def _state(epoch: int) -> dict:
    return {
        "format": ck.CHECKPOINT_FORMAT,
        "epoch": epoch,
        "model": {"w": torch.full((1000,), float(epoch))},
    }


def test_kept_checkpoints_are_independent_and_resume_falls_back_naming_the_damaged_file(
    tmp_path: Path,
) -> None:
    for epoch in (1, 2):
        ck.save_checkpoint(_state(epoch), tmp_path, epoch=epoch, save_every=1)
    latest, kept = tmp_path / ck.LATEST, tmp_path / "checkpoint_epoch0002.pt"
    assert os.stat(latest).st_ino != os.stat(kept).st_ino  # not hard links
    with open(latest, "r+b") as f:  # truncate in place, as a full disk or a bad copy would
        f.truncate(100)
    assert ck.load_checkpoint(kept)["epoch"] == 2
    with pytest.raises(CheckpointError, match="damaged"):
        ck.load_checkpoint(latest)
    path, state, damaged = ck.find_resumable(tmp_path)
    assert path == kept and state["epoch"] == 2 and [p.name for p, _ in damaged] == [ck.LATEST]
    latest.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        ck.load_checkpoint(latest)
    kept.write_bytes(b"")
    (tmp_path / "checkpoint_epoch0001.pt").write_bytes(b"junk")
    with pytest.raises(
        CheckpointError, match="no intact checkpoint.*checkpoint_latest.pt.*checkpoint_epoch0002.pt"
    ):
        ck.find_resumable(tmp_path)


def test_resume_passes_over_a_damaged_latest_checkpoint(
    image_data: Path, tmp_path: Path, nets: str, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "run"
    train(_config(image_data, out, f"{nets}:tiny", epochs=3, stop_after=2, save_every=1))
    with open(out / ck.LATEST, "r+b") as f:
        f.truncate(1000)
    result = train(_config(image_data, out, f"{nets}:tiny", epochs=3, resume="latest"))
    assert result.epochs_completed == 3
    assert any(
        "checkpoint_latest.pt is damaged" in r.getMessage()
        and "checkpoint_epoch0002.pt" in r.getMessage()
        for r in caplog.records
    )


def test_recorded_hash_catches_damage_the_format_cannot(tmp_path: Path) -> None:
    path = ck.atomic_save(
        {"format": ck.CHECKPOINT_FORMAT, "epoch": 1}, tmp_path / "c.pt", record_hash=True
    )
    assert _io.read_hash_record(path) == _sha(path)
    record = path.with_name(path.name + ".sha256")
    record.write_text("0" * 64 + "  c.pt\n")
    with pytest.raises(CheckpointError, match="differs from the one recorded"):
        ck.load_checkpoint(path)


# --------------------------------------------------------------------------------------------------
# 7-8. run folders: another run, a finished run, an older checkpoint, a second process


def test_a_flipped_byte_in_safetensors_weights_with_a_record_stops_eval(
    image_data: Path, tmp_path: Path, nets: str, capsys: pytest.CaptureFixture[str]
) -> None:
    safetensors = pytest.importorskip("safetensors.torch")
    weights = tmp_path / "w.safetensors"
    safetensors.save_file(import_object(f"{nets}:tiny")().state_dict(), str(weights))
    _io.write_hash_record(weights)
    args = ["eval", "--model", f"{nets}:tiny", "--weights", str(weights), "--metrics", "accuracy"]
    args += ["--data", str(image_data / "val"), "--device", "cpu", "--no-progress"]
    assert main(args) == 0
    capsys.readouterr()
    data = bytearray(weights.read_bytes())
    data[-3] ^= 1  # a bit of the last weight: the file still parses
    weights.write_bytes(bytes(data))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "w.safetensors" in err and "damaged" in err and "SHA-256" in err


def test_run_folders_are_never_written_over_without_overwrite(
    image_data: Path, tmp_path: Path, nets: str
) -> None:
    model = f"{nets}:tiny"
    a, b = tmp_path / "a", tmp_path / "b"
    train(_config(image_data, a, model, epochs=2, stop_after=1, save_every=1))
    train(_config(image_data, b, model, epochs=1, seed=1))
    before = {p.name: _sha(p) for p in b.iterdir() if p.is_file() and not p.name.startswith(".")}
    # Another run's checkpoint into finished run B: refused, B untouched.
    with pytest.raises(ValueError, match="already holds another run"):
        train(_config(image_data, b, model, epochs=2, resume=str(a / ck.LATEST)))
    # A new run into B: refused.
    with pytest.raises(ValueError, match="already holds a run"):
        train(_config(image_data, b, model, epochs=1))
    assert before == {
        p.name: _sha(p) for p in b.iterdir() if p.is_file() and not p.name.startswith(".")
    }
    # Resuming A from its own older checkpoint: refused without overwrite ...
    train(_config(image_data, a, model, epochs=2, resume="latest"))
    with pytest.raises(ValueError, match="holds epoch 1, but the run .* has reached epoch 2"):
        train(_config(image_data, a, model, epochs=2, resume=str(a / "checkpoint_epoch0001.pt")))
    # ... and allowed with it, which removes the discarded epochs' checkpoints.
    result = train(
        _config(
            image_data,
            a,
            model,
            epochs=2,
            resume=str(a / "checkpoint_epoch0001.pt"),
            overwrite=True,
        )
    )
    assert result.epochs_completed == 2
    assert [json.loads(line)["epoch"] for line in (a / "log.jsonl").read_text().splitlines()] == [
        1,
        2,
    ]


def test_resuming_a_checkpoint_of_another_model_is_a_one_line_error(
    image_data: Path, tmp_path: Path, nets: str, capsys: pytest.CaptureFixture[str]
) -> None:
    a = tmp_path / "a"
    train(_config(image_data, a, f"{nets}:tiny", epochs=2, stop_after=1))
    code = main(
        [
            "train",
            str(image_data),
            "--model",
            "resnet18",
            "--baseline",
            "--output-dir",
            str(tmp_path / "b"),
            "--resume",
            str(a / ck.LATEST),
            "--epochs",
            "2",
            *CLI_TINY,
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "does not fit 'resnet18'" in err and "Traceback" not in err
    assert not (tmp_path / "b").exists()


def test_a_second_run_on_the_same_folder_stops_at_once_naming_the_holder(
    image_data: Path, tmp_path: Path, nets: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    with _io.RunLock(out):
        with pytest.raises(
            _io.RunLockedError, match=rf"pid {os.getpid()} on host {socket.gethostname()}"
        ):
            train(_config(image_data, out, f"{nets}:tiny", epochs=1))
        code = main(
            [
                "train",
                str(image_data),
                "--model",
                f"{nets}:tiny",
                "--output-dir",
                str(out),
                "--epochs",
                "1",
                *CLI_TINY,
            ]
        )
        assert code == 2 and "in use by another run" in capsys.readouterr().err
    assert not (out / "log.jsonl").exists()
    # Released: the run goes ahead.
    assert train(_config(image_data, out, f"{nets}:tiny", epochs=1)).epochs_completed == 1


# --------------------------------------------------------------------------------------------------
# 9-10. output paths: checked before any work, never one of the inputs


def test_outputs_that_would_destroy_inputs_are_refused_before_any_work(
    image_data: Path, tmp_path: Path, nets: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    code = main(
        [
            "train",
            str(image_data),
            "--model",
            f"{nets}:tiny",
            "--output-dir",
            str(out),
            "--epochs",
            "1",
            "--output",
            str(out / "weights.pt"),
            *CLI_TINY,
        ]
    )
    assert code == 2 and "would destroy" in capsys.readouterr().err and not out.exists()
    weights = tmp_path / "w.pt"
    torch.save(import_object(f"{nets}:tiny")().state_dict(), weights)
    before = _sha(weights)
    code = main(
        [
            "eval",
            "--model",
            f"{nets}:tiny",
            "--weights",
            str(weights),
            "--output",
            str(weights),
            "--data",
            str(image_data / "val"),
            "--metrics",
            "accuracy",
            "--device",
            "cpu",
        ]
    )
    assert code == 2 and "same file as --weights file" in capsys.readouterr().err
    assert _sha(weights) == before


def test_outputs_never_replace_a_file_no_command_wrote(
    image_data: Path, tmp_path: Path, nets: str, capsys: pytest.CaptureFixture[str]
) -> None:
    evaluate = ["eval", "--model", f"{nets}:tiny", "--metrics", "accuracy", "--device", "cpu"]
    evaluate += ["--no-progress"]
    # 1. The model's source file (given as path.py:function).
    before = _sha(Path(nets))
    assert main([*evaluate, "--data", str(image_data / "val"), "--output", nets]) == 2
    assert "--output" in capsys.readouterr().err and _sha(Path(nets)) == before
    # 2. An image of the data set being evaluated.
    image = next((image_data / "val" / "red").iterdir())
    before = _sha(image)
    assert main([*evaluate, "--data", str(image_data / "val"), "--output", str(image)]) == 2
    err = capsys.readouterr().err
    assert "existing file inside the --data folder" in err and _sha(image) == before
    # Our own previous result is replaced; --overwrite replaces anything but an input.
    result = tmp_path / "result.json"
    for _ in range(2):
        assert main([*evaluate, "--data", str(image_data / "val"), "--output", str(result)]) == 0
    other = tmp_path / "notes.json"
    other.write_text('{"mine": 1}')
    args = [*evaluate, "--data", str(image_data / "val"), "--output", str(other)]
    assert main(args) == 2 and "no antialias command wrote" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0 and "mine" not in other.read_text()
    # 3. An image of the training set.
    training = ["train", str(image_data), "--model", f"{nets}:tiny", "--epochs", "1", *CLI_TINY]
    image = next((image_data / "train" / "blue").iterdir())
    before = _sha(image)
    out = tmp_path / "run"
    assert main([*training, "--output-dir", str(out), "--output", str(image)]) == 2
    assert "inside the data folder" in capsys.readouterr().err and _sha(image) == before
    assert not out.exists()
    # 4. A checkpoint's hash record in the run folder (replacing it would disable its check).
    assert main([*training, "--output-dir", str(out), "--output", str(out / "run.json")]) == 0
    records = sorted(out.glob("*.sha256"))
    assert records
    before = _sha(records[0])
    args = [*training, "--output-dir", str(out), "--resume", "--output", str(records[0])]
    assert main(args) == 2
    assert "inside the run folder" in capsys.readouterr().err and _sha(records[0]) == before


@pytest.mark.parametrize("bad", ["a_file/x.json", "/proc/antialias-x.json"])
def test_unwritable_outputs_fail_before_any_work(
    image_data: Path, tmp_path: Path, nets: str, bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if bad.startswith("/proc") and not Path("/proc").is_dir():
        pytest.skip("no /proc on this system")
    (tmp_path / "a_file").write_text("x")
    target = bad if bad.startswith("/") else str(tmp_path / bad)
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                str(image_data),
                "--model",
                f"{nets}:tiny",
                "--output-dir",
                str(out),
                "--epochs",
                "1",
                "--output",
                target,
                *CLI_TINY,
            ]
        )
        == 2
    )
    assert not out.exists()  # stopped before training
    assert (
        main(
            [
                "eval",
                "--model",
                f"{nets}:tiny",
                "--data",
                str(image_data / "val"),
                "--metrics",
                "accuracy",
                "--output",
                target,
                "--device",
                "cpu",
            ]
        )
        == 2
    )
    assert (
        main(
            [
                "eval",
                "--model",
                f"{nets}:tiny",
                "--data",
                str(image_data / "val"),
                "--metrics",
                "consistency",
                "--plots",
                str(tmp_path / "a_file"),
                "--device",
                "cpu",
            ]
        )
        == 2
    )
    assert main(["demo", "--output", target]) == 2
    err = capsys.readouterr().err
    assert "not writable" in err or "not a folder" in err
    assert "is a file; expected a folder" in err


# --------------------------------------------------------------------------------------------------
# 11-12. image folders


def test_truncated_jpeg_fails_by_name_or_is_skipped_and_counted(tmp_path: Path) -> None:
    from torch.utils.data import DataLoader
    from torchvision.transforms import ToTensor

    root = tmp_path / "images"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(
                np.random.default_rng(i).integers(0, 255, (32, 32, 3), dtype=np.uint8)
            ).save(root / name / f"{i}.jpg")
    broken = root / "b" / "0.jpg"
    broken.write_bytes(
        broken.read_bytes()[: broken.stat().st_size * 4 // 5]
    )  # the header is intact
    failing = load_image_folder(root, ToTensor())
    with pytest.raises(CorruptImageError, match="0.jpg"):
        list(DataLoader(failing, batch_size=6))
    skipping = load_image_folder(root, ToTensor(), on_corrupt="skip")
    labels = torch.cat([y for _, y in DataLoader(skipping, batch_size=2)])
    assert labels.tolist() == [0, 0, 0, 1, 1, 1]  # the class keeps its share
    assert skipping.skipped == [str(broken)]


def test_training_skips_an_undecodable_image_and_counts_it_in_the_log(
    image_data: Path, tmp_path: Path, nets: str
) -> None:
    broken = image_data / "train" / "red" / "broken.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(
        broken
    )
    broken.write_bytes(
        broken.read_bytes()[: broken.stat().st_size * 4 // 5]
    )  # passes the header check
    out = tmp_path / "run"
    with pytest.raises(
        ValueError, match="broken.jpg"
    ):  # batch 3: every one of the 9 images is used
        train(_config(image_data, out, f"{nets}:tiny", epochs=1, batch_size=3))
    result = train(
        _config(
            image_data, tmp_path / "skip", f"{nets}:tiny", epochs=1, on_corrupt="skip", batch_size=3
        )
    )
    assert result.history[-1]["skipped_images"] == 1
    # A 0-byte image is left out by the up-front check: it is counted too.
    (image_data / "train" / "blue" / "empty.png").write_bytes(b"")
    result = train(
        _config(
            image_data,
            tmp_path / "skip2",
            f"{nets}:tiny",
            epochs=1,
            on_corrupt="skip",
            batch_size=3,
        )
    )
    assert result.history[-1]["skipped_images"] == 2
    log = [json.loads(line) for line in (tmp_path / "skip2" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["skipped_images"] == 2


def test_image_folder_rules_hidden_entries_symlink_loops_and_deep_images(tmp_path: Path) -> None:
    root = write_image_tree(tmp_path / "images", per_class=2)
    (root / ".ipynb_checkpoints").mkdir()
    Image.new("RGB", (8, 8)).save(root / ".ipynb_checkpoints" / "x.png")
    Image.new("RGB", (8, 8)).save(root / "blue" / ".hidden.png")
    os.symlink("..", root / "blue" / "up")  # a loop: blue/up/blue/up/...
    os.symlink(root / "red", root / "blue" / "reds")  # a link into another class
    dataset = load_image_folder(root)
    assert dataset.classes == ["blue", "red"]
    assert len(dataset) == 4 and dataset.targets == [0, 0, 1, 1]
    # 16-bit and float images by their real range, not clipped at 255 or truncated to 0.
    ramp = np.linspace(0, 1, 32 * 32).reshape(32, 32)
    Image.fromarray((ramp * 65535).astype(np.uint16)).save(root / "blue" / "deep.png")
    Image.fromarray(ramp.astype(np.float32)).save(root / "red" / "float.tif")
    Image.fromarray((ramp * 1000).astype(np.float32)).save(root / "red" / "huge.tif")
    dataset = load_image_folder(root)
    paths = [p for p, _ in dataset.samples]
    for name in ("deep.png", "float.tif"):
        image, _ = dataset[
            paths.index(str(root / ("blue" if name == "deep.png" else "red") / name))
        ]
        pixels = np.asarray(image)
        assert pixels.min() == 0 and pixels.max() == 255 and abs(pixels.mean() - 127.5) < 2, name
    with pytest.raises(CorruptImageError, match=r"huge.tif.*values in \[0, 1000\]"):
        dataset[paths.index(str(root / "red" / "huge.tif"))]


# --------------------------------------------------------------------------------------------------
# 13, 16. weights arguments and messages


def test_eval_weights_must_exist_and_names_win_over_files(
    image_data: Path,
    tmp_path: Path,
    nets: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    common = [
        "--data",
        str(image_data / "val"),
        "--metrics",
        "accuracy",
        "--device",
        "cpu",
        "--no-progress",
    ]
    assert (
        main(
            ["eval", "--model", f"{nets}:tiny", "--weights", str(tmp_path / "missing.pth"), *common]
        )
        == 2
    )
    assert "missing.pth' (for --model" in capsys.readouterr().err
    assert main(["eval", "--model", f"{nets}:tiny", "--weights", str(tmp_path), *common]) == 2
    assert "is a folder; expected a file of weights" in capsys.readouterr().err
    from antialias.models._resolve import _is_model_file  # the one resolver decides what is a file

    monkeypatch.chdir(tmp_path)
    Path("resnet18").write_bytes(b"a file named like a model")
    assert not _is_model_file("resnet18") and _is_model_file("./resnet18")


def test_messages_name_the_bad_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(CheckpointError, match="is a folder; expected a file of weights"):
        read_state_dict(tmp_path)
    with pytest.raises(ValueError, match="does not end in a file name"):
        read_state_dict("http://127.0.0.1:9/a/..")
    monkeypatch.setenv("ANTIALIAS_WEIGHTS_MIRROR", "not a url")
    from antialias.models import ResNet18_Weights

    with pytest.raises(ValueError, match="ANTIALIAS_WEIGHTS_MIRROR='not a url' is not a URL"):
        ResNet18_Weights.LPF4.download_url  # noqa: B018
    assert (
        main(
            [
                "eval",
                "--model",
                "resnet18",
                "--metrics",
                "circular",
                "--data",
                str(tmp_path),
                "--device",
                "meta",
            ]
        )
        == 2
    )
    assert "--device 'meta': device 'meta' holds no data" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------
# 14. non-finite values


def test_nan_logits_are_an_error_not_a_perfect_score(nets: str) -> None:
    model = import_object(f"{nets}:nan_logits")()
    images = torch.randn(4, 3, 24, 24)
    with pytest.raises(NonFiniteLogitsError, match="non-finite logits .* for 40 of 40 inputs"):
        crop_consistency(
            model,
            [(images, torch.zeros(4, dtype=torch.long))],
            crop_size=16,
            max_offset=8,
            generator=torch.Generator().manual_seed(0),
        )


def test_training_stops_at_the_first_non_finite_loss_keeping_the_last_checkpoint(
    image_data: Path, tmp_path: Path, nets: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    with pytest.raises(NonFiniteLossError, match="epoch 2, step 1"):
        train(_config(image_data, out, f"{nets}:diverging", epochs=3))
    state = ck.load_checkpoint(out / ck.LATEST)
    assert state["epoch"] == 1 and all(torch.isfinite(v).all() for v in state["model"].values())
    assert not (out / "weights.pt").exists()
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1]
    code = main(
        [
            "train",
            str(image_data),
            "--model",
            f"{nets}:diverging",
            "--output-dir",
            str(tmp_path / "cli"),
            "--epochs",
            "3",
            *CLI_TINY,
        ]
    )
    assert code == 2 and "not finite" in capsys.readouterr().err


def test_the_log_is_strict_json_with_null_for_non_finite_numbers(tmp_path: Path) -> None:
    from antialias.train.run_folder import append_log, read_log

    log = tmp_path / "log.jsonl"
    append_log(log, {"epoch": 1, "train_loss": float("nan"), "val_top1": float("inf")})
    text = log.read_text()
    assert "NaN" not in text and "Infinity" not in text

    def strict(name: str) -> None:
        raise ValueError(f"non-JSON constant {name}")

    assert json.loads(text, parse_constant=strict) == {
        "epoch": 1,
        "train_loss": None,
        "val_top1": None,
    }
    with open(log, "a") as f:  # a crash while appending leaves an incomplete last line
        f.write('{"epoch": 2, "train_lo')
    assert [row["epoch"] for row in read_log(log)] == [1]
