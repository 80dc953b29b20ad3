"""The reference's recipes."""

from __future__ import annotations

import pytest

from antialias.train import RECIPES, recipe_for
from antialias.train.recipes import get_recipe


@pytest.mark.parametrize(
    ("model", "lr", "schedule", "epochs", "weight_decay"),
    [
        ("resnet50", 0.1, "step", 90, 1e-4),
        ("resnext50_32x4d", 0.1, "step", 90, 1e-4),
        ("densenet121", 0.1, "step", 90, 1e-4),
        ("alexnet", 0.01, "step", 90, 1e-4),
        ("vgg16", 0.01, "step", 90, 1e-4),
        ("vgg16_bn", 0.05, "step", 90, 1e-4),
        ("mobilenet_v2", 0.05, "cosine", 150, 4e-5),
    ],
)
def test_family_recipes_match_the_reference(model, lr, schedule, epochs, weight_decay):
    recipe = recipe_for(model)
    assert (recipe.lr, recipe.schedule, recipe.epochs, recipe.weight_decay) == (
        lr,
        schedule,
        epochs,
        weight_decay,
    )
    assert recipe.momentum == 0.9
    assert recipe.batch_size == 256
    if schedule == "step":
        assert (recipe.step_size, recipe.gamma) == (30, 0.1)


def test_finetune_recipe_is_lr_001_for_60_epochs():
    for model in ("resnet50", "vgg16_bn", "mobilenet_v2"):
        recipe = recipe_for(model, finetune=True)
        assert (recipe.lr, recipe.epochs) == (0.01, 60)
    assert recipe_for("mobilenet_v2", finetune=True).weight_decay == 4e-5
    assert RECIPES["finetune"].lr == 0.01


def test_unknown_recipe_is_named_in_the_error():
    with pytest.raises(ValueError, match="unknown recipe 'fast'"):
        get_recipe("fast")
