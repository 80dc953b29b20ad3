"""Train and fine-tune anti-aliased models at ImageNet scale, on one process or under torchrun.

Fine-tune the zoo's anti-aliased ResNet-50 from torchvision's weights with the reference's recipe::

    from antialias.train import TrainConfig, train

    result = train(TrainConfig(data="/data/imagenet", model="resnet50", output_dir="runs/r50",
                               init_weights="torchvision"))

The same call runs on N GPUs with ``torchrun --nproc_per_node N -m antialias train ...``.
"""

from antialias.models import build_model as build_model
from antialias.models import load_init_weights as load_init_weights
from antialias.train.checkpoint import load_checkpoint as load_checkpoint
from antialias.train.checkpoint import save_checkpoint as save_checkpoint
from antialias.train.config import ConfigError as ConfigError
from antialias.train.data import train_transform as train_transform
from antialias.train.engine import TrainConfig as TrainConfig
from antialias.train.engine import TrainResult as TrainResult
from antialias.train.engine import train as train
from antialias.train.loop import EpochStats as EpochStats
from antialias.train.loop import evaluate as evaluate
from antialias.train.loop import train_one_epoch as train_one_epoch
from antialias.train.recipes import RECIPES as RECIPES
from antialias.train.recipes import Recipe as Recipe
from antialias.train.recipes import recipe_for as recipe_for
from antialias.train.schedules import lps_temperature as lps_temperature

__all__ = [
    "ConfigError",
    "EpochStats",
    "RECIPES",
    "Recipe",
    "TrainConfig",
    "TrainResult",
    "build_model",
    "evaluate",
    "load_checkpoint",
    "load_init_weights",
    "lps_temperature",
    "recipe_for",
    "save_checkpoint",
    "train",
    "train_one_epoch",
    "train_transform",
]
