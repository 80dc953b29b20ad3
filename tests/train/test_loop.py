"""train_one_epoch: the one training loop of the engine and the demo, on in-memory batches."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from antialias.train.loop import EpochStats, NonFiniteLossError, train_one_epoch


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 3))


def _data(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, 2, 2, generator=g), torch.randint(0, 3, (n,), generator=g)


def test_one_step_is_forward_loss_backward_step():
    images, labels = _data()
    model, manual = _net(), _net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    stats = train_one_epoch(model, [(images, labels)], optimizer)
    expected = torch.optim.SGD(manual.parameters(), lr=0.1)
    loss = nn.functional.cross_entropy(manual(images), labels)
    loss.backward()
    expected.step()
    for a, b in zip(model.parameters(), manual.parameters(), strict=True):
        assert torch.equal(a, b)
    assert isinstance(stats, EpochStats) and stats.count == 8
    assert stats.loss == pytest.approx(loss.item(), rel=1e-6)
    assert 0 <= stats.correct <= 8 and all(p.grad is None for p in model.parameters())


def test_accumulated_micro_batches_equal_one_batch_and_the_schedule_steps_once_per_step():
    images, labels = _data()
    whole, split = _net(), _net()
    opt_whole = torch.optim.SGD(whole.parameters(), lr=0.1)
    opt_split = torch.optim.SGD(split.parameters(), lr=0.1)
    schedule = torch.optim.lr_scheduler.StepLR(opt_split, step_size=1, gamma=0.5)
    train_one_epoch(whole, [(images, labels)], opt_whole, steps=1)
    halves = [(images[:4], labels[:4]), (images[4:], labels[4:])]
    stats = train_one_epoch(split, halves, opt_split, steps=1, accum_steps=2, scheduler=schedule)
    for a, b in zip(whole.parameters(), split.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    assert stats.count == 8 and opt_split.param_groups[0]["lr"] == pytest.approx(0.05)
    with pytest.raises(ValueError, match="batches ran out at step 2 of 2"):
        train_one_epoch(split, halves, opt_split, steps=2, accum_steps=2)


def test_a_non_finite_loss_stops_before_the_step():
    images, labels = _data()
    model = _net()
    before = copy.deepcopy(model.state_dict())
    bad = images.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(NonFiniteLossError, match="not finite"):
        train_one_epoch(model, [(bad, labels)], torch.optim.SGD(model.parameters(), lr=0.1))
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name]), name
