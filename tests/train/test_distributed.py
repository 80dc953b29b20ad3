"""torchrun with two Gloo processes on CPU gives the weights of one process with the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from _train_data import TINY

from antialias.train import TrainConfig, load_checkpoint, train
from antialias.train import checkpoint as ck
from antialias.train.distributed import init_distributed


@pytest.mark.slow
def test_torchrun_two_processes_match_one_process(image_data, tmp_path, tiny_models):
    model, epochs = "_tiny_models:tiny_net", 2
    out_two = tmp_path / "two"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "antialias",
        "train",
        str(image_data),
        "--model",
        model,
        "--output-dir",
        str(out_two),
        "--epochs",
        str(epochs),
        "--batch-size",
        str(TINY["batch_size"]),
        "--lr",
        str(TINY["lr"]),
        "--crop-size",
        str(TINY["crop_size"]),
        "--val-resize",
        str(TINY["val_resize"]),
        "--max-offset",
        str(TINY["max_offset"]),
        "--workers",
        "0",
        "--device",
        "cpu",
        "--no-progress",
    ]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([tiny_models, os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
    }
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 process(es)" in done.stderr and "global batch 4 = 2 x 1 x 2" in done.stderr

    # One process, the same global batch of 4, made of two accumulation steps of 2.
    one = train(
        TrainConfig(
            data=str(image_data),
            output_dir=str(tmp_path / "one"),
            model=model,
            epochs=epochs,
            accum_steps=2,
            **TINY,
        )
    )

    # weights.pt: {"state_dict": ..., "antialias": the model's description}
    two_weights = torch.load(out_two / ck.WEIGHTS, weights_only=True)["state_dict"]
    one_weights = torch.load(one.weights, weights_only=True)["state_dict"]
    assert list(two_weights) == list(one_weights)
    for name, tensor in one_weights.items():
        # Only the order of floating-point sums differs (all-reduce vs accumulation).
        torch.testing.assert_close(two_weights[name], tensor, rtol=1e-5, atol=1e-6)
    two_log = [json.loads(line) for line in (out_two / "log.jsonl").read_text().splitlines()]
    for row_two, row_one in zip(two_log, one.history, strict=True):
        assert row_two["train_loss"] == pytest.approx(row_one["train_loss"], rel=1e-5)
        assert row_two["lr"] == row_one["lr"]
        assert row_two["val_top1"] == pytest.approx(row_one["val_top1"], abs=1e-12)
    assert two_log[0]["train_loss"] != two_log[1]["train_loss"]  # it did train
    # Rank 0 saved the RNG states of both processes.
    state = load_checkpoint(out_two / ck.LATEST)
    assert state["world_size"] == 2 and len(state["rng"]) == 2


def test_single_process_without_launcher_variables(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    ctx = init_distributed("cpu")
    assert (ctx.rank, ctx.world_size, ctx.backend, ctx.is_main) == (0, 1, None, True)


def test_incomplete_launcher_variables_are_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.setenv("LOCAL_RANK", "0")
    with pytest.raises(ValueError, match=r"\['RANK'\] are not set; launch with torchrun"):
        init_distributed("cpu")
