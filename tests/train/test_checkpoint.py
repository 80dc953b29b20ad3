"""Checkpoints: atomic writes that survive SIGKILL, retention, state-dict extraction, RNG states."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from antialias.train import checkpoint as ck


def _state(version: int, size: int = 10) -> dict:
    return {
        "format": ck.CHECKPOINT_FORMAT,
        "epoch": version,
        "model": {"w": torch.full((size,), version)},
    }


def test_atomic_save_round_trip_leaves_no_temp_file(tmp_path):
    path = ck.atomic_save(_state(1), tmp_path / "a.pt")
    assert ck.load_checkpoint(path)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt"]


def test_failed_write_keeps_the_old_file_and_removes_the_temp(tmp_path, monkeypatch):
    path = ck.atomic_save(_state(1), tmp_path / "a.pt")

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(ck.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        ck.atomic_save(_state(2), path)
    monkeypatch.undo()
    assert ck.load_checkpoint(path)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt"]


# The child saves version 1, then stalls while saving version 2: half-way through writing the
# temporary file ("write") or after writing it, just before the rename ("rename"). The parent kills
# it with SIGKILL (which no handler can intercept) at that moment.
_KILLED_WRITER = textwrap.dedent(
    """
    import io, os, sys, time
    import torch
    from antialias.train import checkpoint as ck

    directory, mode, signal_file = sys.argv[1:4]
    state = lambda v, n: {"format": ck.CHECKPOINT_FORMAT, "epoch": v, "model": {"w": torch.full((n,), v)}}
    ck.save_checkpoint(state(1, 10), directory, epoch=1)

    def stall():
        open(signal_file, "w").close()
        time.sleep(600)

    if mode == "write":
        real_save = torch.save
        def half_save(obj, f):
            buffer = io.BytesIO()
            real_save(obj, buffer)
            data = buffer.getvalue()
            f.write(data[: len(data) // 2])
            f.flush()
            os.fsync(f.fileno())
            stall()
        torch.save = half_save
    else:
        os.replace = lambda src, dst: stall()
    ck.save_checkpoint(state(2, 200_000), directory, epoch=2)
    """
)


@pytest.mark.parametrize("mode", ["write", "rename"])
def test_sigkill_while_writing_leaves_the_previous_checkpoint_loadable(tmp_path, mode):
    signal_file = tmp_path / "stalled"
    out = tmp_path / "run"
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(out), mode, str(signal_file)]
    )
    try:
        deadline = time.monotonic() + 120
        while not signal_file.exists():
            assert child.poll() is None, f"writer exited early with {child.returncode}"
            assert time.monotonic() < deadline, "writer never reached the stall point"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL

    # The kill happened mid-save: the temporary file of version 2 is there...
    temps = [p for p in out.iterdir() if p.name.endswith(".tmp")]
    assert len(temps) == 1
    # ... and the checkpoint is still the complete version 1.
    state = ck.load_checkpoint(out / ck.LATEST)
    assert state["epoch"] == 1
    assert torch.equal(state["model"]["w"], torch.full((10,), 1))
    # The next save removes the dead writer's temporary file.
    ck.save_checkpoint(_state(3), out, epoch=3)
    assert sorted(p.name for p in out.iterdir()) == [ck.LATEST, ck.LATEST + ".sha256"]
    assert ck.load_checkpoint(out / ck.LATEST)["epoch"] == 3


def test_retention_latest_best_and_every_n(tmp_path):
    best_epochs = {1, 3}
    for epoch in range(1, 5):
        written = ck.save_checkpoint(
            _state(epoch), tmp_path, epoch=epoch, is_best=epoch in best_epochs, save_every=2
        )
        assert written[0].name == ck.LATEST
    names = sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".sha256"))
    assert names == sorted(
        [ck.BEST, ck.LATEST, "checkpoint_epoch0002.pt", "checkpoint_epoch0004.pt"]
    )
    # Every kept checkpoint has its SHA-256 recorded beside it.
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".sha256")) == [
        n + ".sha256" for n in names
    ]
    assert ck.load_checkpoint(tmp_path / ck.LATEST)["epoch"] == 4
    # "best" keeps epoch 3's content although "latest" was rewritten after it.
    assert ck.load_checkpoint(tmp_path / ck.BEST)["epoch"] == 3
    assert ck.load_checkpoint(tmp_path / "checkpoint_epoch0002.pt")["epoch"] == 2
    assert [p.name for p in ck.list_checkpoints(tmp_path)] == names


def test_load_checkpoint_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        ck.load_checkpoint(tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read checkpoint .*garbage.pt"):
        ck.load_checkpoint(garbage)
    weights = tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(1)}, weights)
    with pytest.raises(ValueError, match="not an antialias training checkpoint"):
        ck.load_checkpoint(weights)


def test_extract_state_dict_accepts_the_usual_wrappings():
    sd = {"conv.weight": torch.zeros(1), "fc.bias": torch.ones(1)}
    ddp = {f"module.{k}": v for k, v in sd.items()}
    compiled = {f"_orig_mod.{k}": v for k, v in sd.items()}
    for obj in (sd, {"state_dict": sd}, {"model": ddp, "epoch": 3}, compiled):
        assert list(ck.extract_state_dict(obj)) == list(sd)
    with pytest.raises(ValueError, match="holds no state dict"):
        ck.extract_state_dict({"epoch": 3})


def test_rng_state_round_trips_through_a_saved_checkpoint(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    state = ck.capture_rng_state()
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    ck.atomic_save({"rng": state}, tmp_path / "rng.pt")
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    loaded = torch.load(tmp_path / "rng.pt", weights_only=True)["rng"]
    ck.restore_rng_state(loaded)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
