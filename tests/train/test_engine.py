"""The training engine on CPU: exact resume, fine-tuning, the log, checkpoints and bad input."""

from __future__ import annotations

import copy
import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch
import torchvision
from _train_data import TINY, write_image_tree

from antialias.data import eval_transform, load_image_folder
from antialias.train import TrainConfig, build_model, load_checkpoint, load_init_weights, train
from antialias.train import checkpoint as ck

VOLATILE = ("images_per_s", "epoch_time_s")  # timings differ between runs


def _config(data: Path, out: Path, **overrides) -> TrainConfig:
    options = {**TINY, **overrides}
    return TrainConfig(data=str(data), output_dir=str(out), **options)


def _weights(path: str | Path) -> dict[str, torch.Tensor]:
    # weights.pt holds the state dict and the model's description ({"state_dict", "antialias"}).
    return torch.load(path, weights_only=True)["state_dict"]


def _stable(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in VOLATILE} for row in rows]


def test_exact_resume_matches_an_uninterrupted_run(image_data, tmp_path, tiny_models):
    # Dropout, momentum, a warm-up and a cosine schedule: all of them must resume exactly.
    options = {
        "model": "_tiny_models:tiny_net_dropout",
        "epochs": 2,
        "schedule": "cosine",
        "warmup_epochs": 0.5,
        "label_smoothing": 0.1,
    }
    straight = train(_config(image_data, tmp_path / "straight", **options))

    first = train(_config(image_data, tmp_path / "split", stop_after=1, **options))
    assert first.epochs_completed == 1 and first.weights is None
    # Data-loader workers must not change anything either.
    resumed = train(_config(image_data, tmp_path / "split", resume="latest", workers=2, **options))

    assert resumed.epochs_completed == 2
    expected, actual = _weights(straight.weights), _weights(resumed.weights)
    assert list(expected) == list(actual)
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name
    log = [json.loads(line) for line in (tmp_path / "split" / "log.jsonl").read_text().splitlines()]
    assert _stable(log) == _stable(straight.history)
    assert len(log) == 2 and log[0]["train_loss"] != log[1]["train_loss"]


def test_resume_restores_optimizer_scheduler_and_counters(image_data, tmp_path, tiny_models):
    out = tmp_path / "run"
    train(
        _config(
            image_data,
            out,
            model="_tiny_models:tiny_net",
            epochs=3,
            stop_after=1,
            lr=0.2,
            schedule="step",
            step_size=1,
            gamma=0.5,
        )
    )
    state = load_checkpoint(out / ck.LATEST)
    assert (state["epoch"], state["step"]) == (1, 2)
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.1)
    assert state["optimizer"]["state"], "momentum buffers are saved"
    assert len(state["rng"]) == 1 and state["classes"] == ["blue", "red"]
    # A crash after logging epoch 2 but before its checkpoint: the resumed run logs it again.
    with open(out / "log.jsonl", "a") as f:
        f.write(json.dumps({"epoch": 2, "train_loss": -1.0}) + "\n")
    resumed = train(
        _config(
            image_data,
            out,
            model="_tiny_models:tiny_net",
            epochs=3,
            lr=0.2,
            schedule="step",
            step_size=1,
            gamma=0.5,
            resume="latest",
        )
    )
    assert [row["lr"] for row in resumed.history] == pytest.approx([0.2, 0.1, 0.05])
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2, 3] and rows[1]["train_loss"] > 0


def _train_mode_loss(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    # Train mode (batch statistics), no update of the model under test.
    probe = copy.deepcopy(model).train()
    with torch.no_grad():
        return torch.nn.functional.cross_entropy(probe(images), labels).item()


def _rebuild(source: str, weights: str | Path | None = None) -> torch.nn.Module:
    """resnet18 with 2 classes, from the zoo or torchvision, loading ``weights`` the user's way."""
    if source == "zoo":
        from antialias.models import get_model

        return get_model(
            "resnet18", num_classes=2, weights=None if weights is None else str(weights)
        )
    model = torchvision.models.resnet18(num_classes=2)
    if weights is not None:
        model.load_state_dict(_weights(weights), strict=True)
    return model


def test_resume_can_extend_the_schedule(image_data, tmp_path, tiny_models, caplog):
    out = tmp_path / "run"
    options = {"model": "_tiny_models:tiny_net", "schedule": "cosine", "lr": 0.1}
    train(_config(image_data, out, epochs=2, **options))
    with caplog.at_level("WARNING", logger="antialias.train.engine"):
        extended = train(_config(image_data, out, epochs=4, resume="latest", **options))
    assert "resuming with epochs=4 (the checkpoint used 2)" in caplog.text
    # Epochs 1-2 followed the 2-epoch cosine; epoch 3 starts half-way through the 4-epoch one.
    expected = [0.1, 0.05, 0.05, 0.1 * 0.5 * (1 + math.cos(3 * math.pi / 4))]
    assert [row["lr"] for row in extended.history] == pytest.approx(expected)


def _zoo_has_resnet18() -> bool:
    try:
        from antialias.models import list_models
    except ImportError:
        return False
    return "resnet18" in list_models()


@pytest.mark.slow
def test_finetuning_a_zoo_model_lowers_the_loss(image_data, tmp_path):
    source = "zoo" if _zoo_has_resnet18() else "torchvision"
    torch.manual_seed(0)
    init = tmp_path / "resnet18_torchvision.pth"
    torch.save(torchvision.models.resnet18(num_classes=2).state_dict(), init)
    model = build_model("resnet18", num_classes=2, source=source)
    load_init_weights(model, str(init), arch="resnet18")

    folder = load_image_folder(image_data / "train", eval_transform(40, 32))
    images = torch.stack([folder[i][0] for i in range(len(folder))])
    labels = torch.tensor([folder[i][1] for i in range(len(folder))])
    before = _train_mode_loss(model, images, labels)

    result = train(
        _config(
            image_data,
            tmp_path / "run",
            model="resnet18",
            source=source,
            init_weights=str(init),
            # One step per epoch on all 8 images: batch norm over 4 images made the 4 steps so noisy
            # that the outcome hung on the float rounding of the thread count.
            batch_size=8,
            epochs=4,
            consistency_passes=0,
            lr=None,
            scale_lr=False,  # the recipe's rate as it is (batch 8, not 256)
        )
    )
    assert (result.recipe["name"], result.recipe["lr"]) == ("finetune", 0.01)
    # weights.pt loads back the way users load weights: the zoo's builder or torchvision's model.
    tuned = _rebuild(source, result.weights)
    for name, tensor in _weights(result.weights).items():
        assert torch.equal(tuned.state_dict()[name], tensor), name
    # The loss of the same fixed batch, before and after 4 steps (the per-epoch training loss is
    # too noisy to compare over so few steps).
    after = _train_mode_loss(tuned, images, labels)
    assert after < 0.5 * before


def test_log_checkpoints_and_weights_of_a_run(image_data, tmp_path, tiny_models):
    out = tmp_path / "run"
    result = train(
        _config(
            image_data,
            out,
            model="_tiny_models:tiny_net",
            epochs=2,
            save_every=1,
            consistency_passes=2,
        )
    )
    # Hidden files (the run lock) and the SHA-256 records beside the checkpoints aside:
    names = sorted(
        p.name
        for p in out.iterdir()
        if not p.name.startswith(".") and not p.name.endswith(".sha256")
    )
    assert names == sorted(
        [
            "config.json",
            "log.jsonl",
            "weights.pt",
            ck.LATEST,
            ck.BEST,
            "checkpoint_epoch0001.pt",
            "checkpoint_epoch0002.pt",
            # the curves, where their optional packages are installed
            *(["curves.png"] if importlib.util.find_spec("matplotlib") else []),
            *(["tensorboard"] if importlib.util.find_spec("tensorboard") else []),
        ]
    )
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2]
    for row in rows:
        for key in ("train_loss", "lr", "val_top1", "val_top5", "consistency", "images_per_s"):
            assert isinstance(row[key], float), key
        assert 0 <= row["val_top1"] <= 1 and 0 <= row["consistency"] <= 1
    assert result.best_top1 == max(row["val_top1"] for row in rows)
    config = json.loads((out / "config.json").read_text())
    assert config["recipe_resolved"]["batch_size"] == 4 and config["classes"] == ["blue", "red"]
    # weights.pt is a plain state dict that loads strictly into the same architecture.
    from _tiny_models import tiny_net

    tiny_net(2).load_state_dict(_weights(result.weights), strict=True)


def test_bf16_autocast_and_channels_last_on_cpu(image_data, tmp_path, tiny_models):
    result = train(
        _config(
            image_data,
            tmp_path / "run",
            model="_tiny_models:tiny_net",
            epochs=1,
            amp="bf16",
            channels_last=True,
            accum_steps=2,
        )
    )
    assert torch.isfinite(torch.tensor(result.history[0]["train_loss"]))
    assert all(v.dtype == torch.float32 for v in _weights(result.weights).values())


# --- bad input: a clear error, and nothing written ---------------------------------------------


def test_missing_and_empty_folders(image_data, tmp_path, tiny_models):
    out = tmp_path / "run"
    with pytest.raises(FileNotFoundError, match="missing.*does not exist"):
        train(_config(tmp_path / "missing", out, model="_tiny_models:tiny_net"))
    empty = tmp_path / "empty"
    (empty / "train" / "a").mkdir(parents=True)
    (empty / "val" / "a").mkdir(parents=True)
    with pytest.raises(ValueError, match="no images"):
        train(_config(empty, out, model="_tiny_models:tiny_net"))
    assert not out.exists()


def test_class_in_train_but_not_in_val(image_data, tmp_path, tiny_models):
    write_image_tree(image_data / "train", classes=("green",), seed=3)
    out = tmp_path / "run"
    with pytest.raises(ValueError, match="'green'"):
        train(_config(image_data, out, model="_tiny_models:tiny_net"))
    assert not out.exists()


def test_corrupt_image_fails_by_name_or_is_skipped(image_data, tmp_path, tiny_models):
    bad = image_data / "train" / "red" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    out = tmp_path / "run"
    with pytest.raises(ValueError, match="broken.png"):
        train(_config(image_data, out, model="_tiny_models:tiny_net"))
    assert not out.exists()
    result = train(
        _config(image_data, out, model="_tiny_models:tiny_net", epochs=1, on_corrupt="skip")
    )
    assert result.epochs_completed == 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model": "resnet_nope", "source": "torchvision"}, "unknown torchvision .*'resnet_nope'"),
        ({"model": "_tiny_models:nope"}, "no callable 'nope'"),
        ({"amp": "fp8"}, "amp must be one of"),
        ({"amp": "fp16"}, "fp16' needs a CUDA device"),
        ({"batch_size": 6, "accum_steps": 4}, "batch_size 6 .* divisible"),
        ({"batch_size": 16}, "larger than the training set"),
        ({"schedule": "linear"}, "schedule must be one of"),
        ({"init_weights": "nowhere.pth"}, "nowhere.pth"),
        ({"resume": "latest"}, "checkpoint to resume .* does not exist"),
    ],
)
def test_bad_options_are_named_and_nothing_is_written(
    image_data, tmp_path, tiny_models, overrides, message
):
    out = tmp_path / "run"
    options = {"model": "_tiny_models:tiny_net", **overrides}
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        train(_config(image_data, out, **options))
    assert not out.exists()


def test_an_existing_run_is_not_written_over(image_data, tmp_path, tiny_models):
    out = tmp_path / "run"
    train(_config(image_data, out, model="_tiny_models:tiny_net", epochs=1))
    before = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(ValueError, match="already holds a run"):
        train(_config(image_data, out, model="_tiny_models:tiny_net", epochs=1))
    assert {
        str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()
    } == before


def test_the_model_and_its_weights_are_checked_before_the_images(
    image_data, tmp_path, tiny_models, monkeypatch
):
    import antialias.train.engine as engine

    read = []
    monkeypatch.setattr(
        engine, "_load_data", lambda config: read.append(config) or pytest.fail("images read")
    )
    out = tmp_path / "run"
    with pytest.raises(ValueError, match="no callable 'nope'"):
        train(_config(image_data, out, model="_tiny_models:nope"))
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        train(_config(image_data, out, model="_tiny_models:tiny_net", init_weights="nowhere.pth"))
    assert read == [] and not out.exists()
