"""The reference's ImageNet training recipes, as named defaults.

A recipe is data: the optimiser and schedule settings that the paper (Zhang, ICML 2019) and its code
document for each architecture family. :func:`recipe_for` picks the one that fits a model name; any
field can be overridden from :class:`~antialias.train.TrainConfig` or the command line.

All learning rates are for a *global* batch of 256 images, as in the reference; the engine keeps that
global batch whatever the number of processes (see :class:`~antialias.train.TrainConfig`).

Convention:
    Each recipe's ``description`` in :data:`RECIPES` states its settings. For ``"finetune"`` the
    reference gives the learning rate and length only (0.01, 60 epochs); we keep the family's schedule
    and, for the step schedule, divide the rate by 10 every 20 epochs (a third of the run, as 30 of 90
    is for training from scratch).
"""

from __future__ import annotations

import dataclasses
import fnmatch
from dataclasses import dataclass
from typing import Any

__all__ = ["RECIPES", "Recipe", "get_recipe", "recipe_for"]


@dataclass(frozen=True)
class Recipe:
    """Optimiser and schedule settings of one training recipe.

    Args:
        name: the recipe's name, as in :data:`RECIPES`.
        epochs: number of training epochs.
        lr: peak learning rate for a global batch of ``batch_size`` images.
        momentum: SGD momentum.
        weight_decay: L2 weight decay, applied to every parameter as in the reference.
        schedule: ``"step"``, ``"cosine"`` or ``"constant"``.
        step_size: epochs between two divisions of the rate (``"step"`` only).
        gamma: factor of each division (``"step"`` only).
        warmup_epochs: epochs of linear warm-up from ``lr * warmup_start`` (may be fractional).
        label_smoothing: label smoothing of the cross-entropy.
        batch_size: global batch size (summed over processes and accumulation steps).
        description: one line for ``antialias train --help`` and the logs.
    """

    name: str
    epochs: int = 90
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "step"
    step_size: int = 30
    gamma: float = 0.1
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    batch_size: int = 256
    description: str = ""

    def replace(self, **changes: Any) -> Recipe:
        """Return a copy with ``changes`` applied (fields of :class:`Recipe`; an unknown name is a ``TypeError``)."""
        return dataclasses.replace(self, **changes)


_DEFAULT = Recipe(
    name="default",
    description="ResNet/ResNeXt/DenseNet: SGD lr 0.1, /10 every 30 epochs, 90 epochs, wd 1e-4",
)

#: The named recipes (``--recipe``): the reference's training recipes per model family.
RECIPES: dict[str, Recipe] = {
    "default": _DEFAULT,
    "alexnet": _DEFAULT.replace(
        name="alexnet", lr=0.01, description="AlexNet: as default, lr 0.01"
    ),
    "vgg": _DEFAULT.replace(name="vgg", lr=0.01, description="VGG without BN: as default, lr 0.01"),
    "vgg_bn": _DEFAULT.replace(name="vgg_bn", lr=0.05, description="VGG-BN: as default, lr 0.05"),
    "mobilenet_v2": _DEFAULT.replace(
        name="mobilenet_v2",
        epochs=150,
        lr=0.05,
        weight_decay=4e-5,
        schedule="cosine",
        description="MobileNetV2: SGD lr 0.05, cosine, 150 epochs, wd 4e-5",
    ),
    "finetune": _DEFAULT.replace(
        name="finetune",
        epochs=60,
        lr=0.01,
        step_size=20,
        description="fine-tune from torchvision weights: lr 0.01, /10 every 20 epochs, 60 epochs",
    ),
}
"""Named recipes; ``RECIPES[name]`` is a :class:`Recipe`."""

# Which family recipe a model name gets; first match wins, anything else gets "default".
_FAMILY_PATTERNS: tuple[tuple[str, str], ...] = (
    ("*mobilenet_v2*", "mobilenet_v2"),
    ("*alexnet*", "alexnet"),
    ("*vgg*_bn*", "vgg_bn"),
    ("*vgg*", "vgg"),
)


def get_recipe(name: str) -> Recipe:
    """Return the recipe called ``name``.

    Raises:
        ValueError: ``name`` is not in :data:`RECIPES`.
    """
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"unknown recipe {name!r}; expected one of {sorted(RECIPES)}") from None


def recipe_for(model: str, *, finetune: bool = False) -> Recipe:
    """Return the reference's recipe for the architecture ``model``.

    Args:
        model: a model name such as ``"resnet50"``, ``"vgg16_bn"`` or ``"mobilenet_v2"``; the
            family is matched on the (lower-cased) name, so zoo aliases work too.
        finetune: start from pretrained weights: lr 0.01 for 60 epochs, keeping the family's schedule
            and weight decay (see the module's Convention).

    >>> recipe_for("vgg16_bn").lr
    0.05
    >>> recipe_for("mobilenet_v2", finetune=True).schedule, recipe_for("resnet50", finetune=True).lr
    ('cosine', 0.01)
    """
    family = next(
        (r for pat, r in _FAMILY_PATTERNS if fnmatch.fnmatchcase(model.lower(), pat)), "default"
    )
    recipe = RECIPES[family]
    if not finetune:
        return recipe
    tune = RECIPES["finetune"]
    return recipe.replace(
        name="finetune" if family == "default" else f"{family}+finetune",
        epochs=tune.epochs,
        lr=tune.lr,
        step_size=tune.step_size,
        description=f"{recipe.description}; fine-tune: lr {tune.lr}, {tune.epochs} epochs",
    )
