"""train_model: the demo trains with the engine's one-epoch loop, and a seed fixes the result (antialias.apps.demo.training)."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("sklearn")

from antialias.apps.demo import DemoConfig, load_data, make_variants, training  # noqa: E402


def test_train_model_runs_the_engines_loop_once_per_epoch_and_a_seed_repeats_exactly(monkeypatch):
    calls, real = [], training.train_one_epoch
    monkeypatch.setattr(
        training, "train_one_epoch", lambda *a, **k: calls.append(k["epoch"]) or real(*a, **k)
    )
    data = load_data("digits", train_size=48, test_size=8)
    config = DemoConfig(seeds=(0,), epochs=2, widths=(4, 8, 8), batch_size=20, progress=False)
    variant = make_variants((3,), aps=False)[1]
    losses: list[tuple[int, float]] = []
    first, info = training.train_model(
        variant, 0, data, config, on_epoch=lambda e, loss: losses.append((e, loss))
    )
    assert (
        calls == [0, 1] and [e for e, _ in losses] == [0, 1] and info["train_loss"] == losses[-1][1]
    )
    assert not first.training and info["epoch_time_s"] == pytest.approx(info["train_time_s"] / 2)
    again, _ = training.train_model(variant, 0, data, config)
    other, _ = training.train_model(variant, 1, data, config)
    for name, tensor in first.state_dict().items():
        assert torch.equal(tensor, again.state_dict()[name]), name
    assert any(not torch.equal(t, other.state_dict()[n]) for n, t in first.state_dict().items())
