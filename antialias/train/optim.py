"""The optimiser and the learning-rate schedule of a run, built from torch's own schedulers.

The schedule is stepped once per optimiser step:

* ``"step"``: :class:`~torch.optim.lr_scheduler.StepLR`, the rate divided by ``1 / gamma`` every
  ``step_size`` epochs (at epoch boundaries, as in the reference);
* ``"cosine"``: :class:`~torch.optim.lr_scheduler.CosineAnnealingLR` from the peak to 0 at the end
  of the last epoch;
* ``"constant"``: :class:`~torch.optim.lr_scheduler.ConstantLR` with factor 1.

A warm-up of ``warmup_epochs`` (rounded to whole steps) puts a linear ramp from
``lr * warmup_start`` to ``lr`` first, with :class:`~torch.optim.lr_scheduler.SequentialLR`
(:class:`~torch.optim.lr_scheduler.LinearLR`; a ramp from exactly 0, which ``LinearLR`` refuses, is
a :class:`~torch.optim.lr_scheduler.LambdaLR`). The scheduler after the warm-up counts its epochs
from the warm-up's end. The scheduler's state goes into every checkpoint, so a resumed run gets
exactly the rates of an uninterrupted one; a resumed run that extends ``epochs`` stretches the
cosine to the new end (:func:`extend_schedule`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch.optim import Optimizer, lr_scheduler
from torch.optim.lr_scheduler import LRScheduler

from antialias.train.recipes import Recipe

__all__ = ["build_optimizer", "build_scheduler", "extend_schedule"]


def build_optimizer(
    parameters: Iterable[torch.nn.Parameter], recipe: Recipe, *, nesterov: bool = False
) -> Optimizer:
    """SGD with the recipe's rate, momentum and weight decay (applied to every parameter, as the reference)."""
    return torch.optim.SGD(
        parameters,
        lr=recipe.lr,
        momentum=recipe.momentum,
        weight_decay=recipe.weight_decay,
        nesterov=nesterov,
    )


class _Ramp:
    """Linear warm-up factor from ``start`` to 1 over ``steps`` (an object, so its state is saved)."""

    def __init__(self, start: float, steps: int) -> None:
        self.start, self.steps = start, steps

    def __call__(self, step: int) -> float:
        return self.start + (1.0 - self.start) * min(step, self.steps) / self.steps


def _warmup_steps(recipe: Recipe, steps_per_epoch: int) -> int:
    return int(round(recipe.warmup_epochs * steps_per_epoch))


def build_scheduler(
    optimizer: Optimizer, recipe: Recipe, *, steps_per_epoch: int, warmup_start: float = 0.01
) -> LRScheduler:
    """The per-step schedule of ``recipe`` (see the module's docstring).

    Example:
        >>> from antialias.train.recipes import RECIPES
        >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        >>> sched = build_scheduler(opt, RECIPES["default"], steps_per_epoch=10)
        >>> type(sched).__name__, sched.step_size
        ('StepLR', 300)
    """
    total = recipe.epochs * steps_per_epoch
    warmup = min(_warmup_steps(recipe, steps_per_epoch), total)
    if recipe.schedule == "step":
        main: LRScheduler = lr_scheduler.StepLR(
            optimizer, step_size=recipe.step_size * steps_per_epoch, gamma=recipe.gamma
        )
    elif recipe.schedule == "cosine":
        main = lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total - warmup, 1), eta_min=0.0)
    elif recipe.schedule == "constant":
        main = lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    else:
        raise ValueError(
            f"schedule must be one of ('step', 'cosine', 'constant'), got {recipe.schedule!r}"
        )
    if warmup == 0:
        return main
    ramp: LRScheduler = (
        lr_scheduler.LinearLR(
            optimizer, start_factor=warmup_start, end_factor=1.0, total_iters=warmup
        )
        if warmup_start > 0
        else lr_scheduler.LambdaLR(
            optimizer, _Ramp(warmup_start, warmup)
        )  # LinearLR refuses a start of 0
    )
    return lr_scheduler.SequentialLR(optimizer, [ramp, main], milestones=[warmup])


def extend_schedule(scheduler: LRScheduler, recipe: Recipe, *, steps_per_epoch: int) -> None:
    """After loading a checkpoint's scheduler state: stretch a cosine to this run's ``epochs``.

    The rate of the next step is the closed-form cosine at the current step under the new length
    (unchanged when the length is the checkpoint's, so an unchanged run resumes exactly).
    """
    children = (
        scheduler._schedulers if isinstance(scheduler, lr_scheduler.SequentialLR) else [scheduler]
    )
    warmup = min(_warmup_steps(recipe, steps_per_epoch), recipe.epochs * steps_per_epoch)
    for child in children:
        if not isinstance(child, lr_scheduler.CosineAnnealingLR):
            continue
        t_max = max(recipe.epochs * steps_per_epoch - warmup, 1)
        if child.T_max == t_max:
            continue
        child.T_max = t_max
        if isinstance(scheduler, lr_scheduler.SequentialLR) and scheduler.last_epoch < warmup:
            continue  # still warming up: the cosine starts later, at the new length
        t = min(child.last_epoch, t_max)
        rates = [
            child.eta_min + (base - child.eta_min) * (1 + math.cos(math.pi * t / t_max)) / 2
            for base in child.base_lrs
        ]
        for group, rate in zip(child.optimizer.param_groups, rates, strict=True):
            group["lr"] = rate
        child._last_lr = list(rates)
        scheduler._last_lr = list(rates)
