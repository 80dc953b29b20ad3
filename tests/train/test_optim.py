"""The optimiser and the learning-rate schedules: torch's schedulers as the engine builds them."""

from __future__ import annotations

import math

import pytest
import torch

from antialias.train.optim import build_optimizer, build_scheduler
from antialias.train.recipes import Recipe


class LRSchedule:
    """The learning-rate factor at optimiser step ``step`` of torch's schedulers as the engine builds
    them (one fresh optimiser with lr 1, stepped ``step`` times)."""

    def __init__(
        self,
        schedule,
        *,
        epochs,
        steps_per_epoch,
        step_size=30,
        gamma=0.1,
        warmup_epochs=0.0,
        warmup_start=0.01,
    ):
        self.recipe = Recipe(
            name="test",
            epochs=epochs,
            lr=1.0,
            schedule=schedule,
            step_size=step_size,
            gamma=gamma,
            warmup_epochs=warmup_epochs,
        )
        self.steps_per_epoch, self.warmup_start = steps_per_epoch, warmup_start

    def make(self, optimizer):
        return build_scheduler(
            optimizer,
            self.recipe,
            steps_per_epoch=self.steps_per_epoch,
            warmup_start=self.warmup_start,
        )

    def __call__(self, step):
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        scheduler = self.make(optimizer)
        for _ in range(step):
            optimizer.step()
            scheduler.step()
        return optimizer.param_groups[0]["lr"]


def test_step_schedule_divides_at_epoch_boundaries():
    schedule = LRSchedule("step", epochs=90, steps_per_epoch=10, step_size=30, gamma=0.1)
    assert schedule(0) == 1.0
    assert schedule(299) == 1.0  # last step of epoch 30
    assert schedule(300) == pytest.approx(0.1)
    assert schedule(600) == pytest.approx(0.01)


def test_cosine_schedule_with_warmup():
    schedule = LRSchedule("cosine", epochs=10, steps_per_epoch=4, warmup_epochs=2, warmup_start=0.0)
    assert schedule(0) == 0.0
    assert schedule(4) == pytest.approx(0.5)  # half-way through the warm-up
    assert schedule(8) == pytest.approx(1.0)  # warm-up done, cosine starts at its peak
    assert schedule(24) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    assert schedule(40) == pytest.approx(0.0, abs=1e-12)


def test_scheduler_state_round_trips():
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    make = LRSchedule("cosine", epochs=3, steps_per_epoch=2, warmup_epochs=1).make
    scheduler = make(optimizer)
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    other_opt = torch.optim.SGD([param], lr=1.0)
    other = make(other_opt)
    other.load_state_dict(scheduler.state_dict())
    other_opt.load_state_dict(optimizer.state_dict())
    optimizer.step(), scheduler.step()
    other_opt.step(), other.step()
    assert other_opt.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"]


def test_build_optimizer_is_sgd_with_the_recipes_momentum_and_weight_decay():
    recipe = Recipe(name="test", epochs=1, lr=0.3, weight_decay=1e-4)
    optimizer = build_optimizer([torch.nn.Parameter(torch.zeros(1))], recipe, nesterov=True)
    group = optimizer.param_groups[0]
    assert isinstance(optimizer, torch.optim.SGD)
    assert (group["lr"], group["momentum"], group["weight_decay"], group["nesterov"]) == (
        0.3,
        0.9,
        1e-4,
        True,
    )
