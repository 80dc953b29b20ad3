"""TrainConfig: the recipe a configuration resolves to, and its checks."""

from __future__ import annotations

import pytest
import torch

from antialias.train import TrainConfig
from antialias.train.config import resolve_recipe, validate_config


def test_config_overrides_the_recipe_and_init_weights_select_finetuning():
    config = TrainConfig(data=None, model="resnet18", output_dir="x", init_weights="w.pt", lr=0.5)
    recipe = resolve_recipe(config)
    assert (recipe.lr, recipe.epochs) == (0.5, 60)
    named = resolve_recipe(
        TrainConfig(data=None, model="resnet18", output_dir="x", recipe="vgg_bn")
    )
    assert named.lr == 0.05


def _validate(**overrides):
    config = TrainConfig(**{"data": None, "model": "resnet18", "output_dir": "x", **overrides})
    return validate_config(config, resolve_recipe(config), 1, torch.device("cpu"))


def test_validate_config_returns_the_micro_batch():
    assert _validate(batch_size=8, accum_steps=2) == 4


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"amp": "fp16"}, "needs a CUDA device"),
        ({"amp": "fp8"}, "amp must be one of"),
        ({"batch_size": 6, "accum_steps": 4}, r"batch_size 6 \(global\) must be divisible"),
        (
            {"val_resize": 100, "crop_size": 224},
            r"val_resize \(100\) must be at least crop_size \(224\)",
        ),
        ({"label_smoothing": 1.0}, "label_smoothing must be < 1"),
        ({"warmup_epochs": 5, "epochs": 2}, r"warmup_epochs \(5\) must not exceed epochs \(2\)"),
        ({"accum_steps": 0}, "accum_steps must be an int >= 1, got 0"),
        (
            {"model": "runs/net.pt2"},
            r"model 'runs/net.pt2' is an exported program \(.pt2\).*cannot be trained; model "
            r"takes a zoo name, a torchvision name \(with source\) or a 'module:function'",
        ),
    ],
)
def test_validate_config_names_the_bad_option(overrides, message):
    with pytest.raises(ValueError, match=message):
        _validate(**overrides)


def test_config_errors_name_fields_and_render_with_other_names():
    from antialias.train import ConfigError

    with pytest.raises(ConfigError) as info:
        _validate(batch_size=0)
    assert str(info.value) == "batch_size must be an int >= 1, got 0"
    assert info.value.render(lambda name: "--" + name.replace("_", "-")) == (
        "--batch-size must be an int >= 1, got 0"
    )
    # A value holding braces is quoted as it is, never taken for an option.
    error = ConfigError("{resume} {value!r} is a folder", value="runs/{data}")
    assert error.render(str.upper) == "RESUME 'runs/{data}' is a folder"
