"""The configuration of a training run: :class:`TrainConfig`, its recipe, its checks, and resuming.

:func:`resolve_recipe` turns a configuration into optimiser settings (the named or family recipe,
explicit overrides, and the learning rate scaled linearly to the global batch); :func:`resume_config`
restores the configuration of the run a resumed run continues; :func:`validate_config` checks every
option before anything is read or written.

A bad option raises :class:`ConfigError`, whose message names options as the fields of
:class:`TrainConfig` (``batch_size``); an application renders the same message with its own names
(``antialias train`` says ``--batch-size``) through :meth:`ConfigError.render`. Warnings about options
carry their template the same way (:func:`warn_option`).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from antialias.models._resolve import SOURCES
from antialias.train.recipes import Recipe, get_recipe, recipe_for

__all__ = [
    "CONFIG",
    "CURVES",
    "LOG",
    "TENSORBOARD",
    "OPTION_MESSAGE",
    "RESUME_CHANGEABLE",
    "ConfigError",
    "TrainConfig",
    "TrainResult",
    "default_workers",
    "installed",
    "render_option_message",
    "resolve_recipe",
    "resume_config",
    "validate_config",
    "warn_option",
]

LOG = "log.jsonl"
"""File name of the per-epoch JSON-lines log in the output folder."""
CONFIG = "config.json"
"""File name of the run's configuration in the output folder (what ``resume`` restores)."""
CURVES = "curves.png"
"""File name of the run's curves (loss, top-1, consistency per epoch) in the output folder."""
TENSORBOARD = "tensorboard"
"""Folder of the run's TensorBoard event files in the output folder."""

AMP_MODES = ("none", "bf16", "fp16")
SCHEDULES = ("step", "cosine", "constant")
ON_CORRUPT = ("fail", "skip")

OPTION_MESSAGE = "antialias_option_message"
"""Attribute of a log record from :func:`warn_option`: its ``(template, values)``, to render again."""


class _OptionNames(dict):  # type: ignore[type-arg]
    """The values of a message template; a placeholder that is no value is an option, named by ``name``."""

    def __init__(self, name: Callable[[str], str], values: dict[str, Any]) -> None:
        super().__init__(values)
        self.name = name

    def __missing__(self, key: str) -> str:
        return self.name(key)


def installed(package: str) -> bool:
    """Whether the optional ``package`` can be imported (without importing it)."""
    return importlib.util.find_spec(package) is not None


def _field_name(option: str) -> str:
    return option


def render_option_message(
    template: str, values: dict[str, Any], name: Callable[[str], str] = _field_name
) -> str:
    """``template`` with its values filled in and each other placeholder (an option: ``{batch_size}``,
    or a setting of a flag: ``{scale_lr=False}``) replaced by ``name(placeholder)``."""
    return template.format_map(_OptionNames(name, values))


class ConfigError(ValueError):
    """A bad option of a :class:`TrainConfig`, raised before anything is read or written.

    Args:
        template: the message, a ``str.format`` template whose placeholders are either keys of
            ``values`` or options: ``{batch_size}`` (a field of :class:`TrainConfig`) or
            ``{scale_lr=False}`` (a setting of a flag).
        values: the values the message quotes.

    ``str(error)`` names the options as fields (``batch_size must be an int >= 1, got 0``);
    ``error.render(name)`` names them with ``name(placeholder)`` (``--batch-size must be ...``).
    """

    def __init__(self, template: str, **values: Any) -> None:
        self.template = template
        self.values = values
        super().__init__(self.render())

    def render(self, name: Callable[[str], str] = _field_name) -> str:
        """The message with each option named by ``name`` (default: as a field of TrainConfig)."""
        return render_option_message(self.template, self.values, name)


def warn_option(logger: logging.Logger, template: str, **values: Any) -> None:
    """Log a warning about options, worded as a :class:`ConfigError`'s message; the record keeps
    ``(template, values)`` under :data:`OPTION_MESSAGE` so that a log filter can rename the options."""
    logger.warning(
        render_option_message(template, values),
        extra={OPTION_MESSAGE: (template, values)},
        stacklevel=2,
    )


# Fields whose change between a checkpoint and a resumed run alters the training trajectory.
_TRAJECTORY_FIELDS = (
    "model",
    "source",
    "filter_size",
    "batch_size",
    "accum_steps",
    "lr",
    "momentum",
    "weight_decay",
    "nesterov",
    "schedule",
    "step_size",
    "gamma",
    "warmup_epochs",
    "warmup_start",
    "label_smoothing",
    "epochs",
    "crop_size",
    "seed",
    "amp",
    "sync_bn",
    "channels_last",
)


@dataclass
class TrainConfig:
    """Everything a training run needs. ``None`` optimiser fields take the recipe's value.

    Args:
        data: folder in the ImageNet layout with ``train/`` and ``val/`` class folders.
        model: a zoo name, a torchvision name (with ``source``) or ``"package.module:function"`` (see
            :func:`~antialias.train.build_model` for ``model``, ``source`` and ``filter_size``).
        output_dir: folder for checkpoints, ``log.jsonl``, ``config.json`` and ``weights.pt``. It
            must not hold checkpoints of another run unless ``resume`` is set.
        train_dir: training folder, default ``data/train``.
        val_dir: validation folder, default ``data/val``.
        source: ``"zoo"``, ``"convert"`` or ``"torchvision"`` (the unchanged baseline).
        filter_size: blur filter of anti-aliased models.
        init_weights: start from these weights, loaded strictly: a state-dict file or
            ``"torchvision[:NAME]"``. Selects the fine-tuning recipe when ``recipe`` is None. A
            classifier trained for another number of classes is re-initialised (a message names it).
        num_classes: outputs of the classifier; default the data's class count.
        recipe: recipe name (see :data:`antialias.train.RECIPES`); default: the model's family.
        epochs: epochs of the run; None: the recipe's (see :class:`~antialias.train.Recipe`), as
            for the nine fields below.
        batch_size: the global batch of one optimiser step (see the engine's Convention).
        lr: learning rate; None: the recipe's, scaled as ``scale_lr`` says.
        momentum: SGD momentum.
        weight_decay: weight decay.
        schedule: ``"step"``, ``"cosine"`` or ``"constant"``.
        step_size: epochs between two rate drops of the step schedule.
        gamma: factor of each rate drop.
        warmup_epochs: epochs of linear warm-up.
        label_smoothing: label smoothing of the loss.
        nesterov: Nesterov momentum.
        warmup_start: factor of the rate at the start of the warm-up.
        scale_lr: when ``batch_size`` differs from the recipe's global batch (256) and ``lr`` is
            None, scale the recipe's rate linearly, ``lr * batch_size / 256`` (Goyal et al., 2017),
            with a warning; False keeps the recipe's rate.
        accum_steps: gradient accumulation steps per optimiser step.
        amp: automatic mixed precision: ``"none"``, ``"bf16"`` (CPU or GPU) or ``"fp16"`` (GPU,
            with a gradient scaler).
        channels_last: use the channels-last memory format.
        compile: ``torch.compile`` the model.
        sync_bn: convert batch norm to ``SyncBatchNorm`` (GPU runs with several processes).
        crop_size: training and validation crop.
        val_resize: validation resize (shorter side) before the center crop.
        max_offset: largest shift of the crop-consistency metric; its images are
            ``crop_size + max_offset`` pixels.
        consistency_passes: passes of the consistency metric per epoch (0 skips it).
        val_batch_size: validation batch per process; default the per-process training batch.
        workers: data-loader worker processes per training process; default :func:`default_workers`.
        seed: seed of initialisation, shuffling, augmentation and metrics.
        device: ``"cpu"``, ``"cuda"``...; default CUDA when available.
        resume: a checkpoint to continue from, or ``"latest"`` for ``output_dir``'s newest intact one
            (a damaged latest checkpoint is reported and passed over).
        overwrite: allow replacing the run that ``output_dir`` holds (another run, a finished
            one, or epochs after the checkpoint resumed from); without it such a folder is refused.
        stop_after: stop this invocation after that many epochs (the schedule still spans
            ``epochs``); resume later to continue.
        save_every: keep a checkpoint every that many epochs besides latest and best (0: none).
        on_corrupt: an unreadable image: ``"fail"`` (error naming it) or ``"skip"`` (warn, drop).
        verify_images: check every image's header before training starts.
        deterministic: deterministic algorithms (slower on GPU).
        progress: progress bars on rank 0.
        tensorboard: write TensorBoard event files into ``output_dir/tensorboard`` every epoch:
            ``None`` when the ``tensorboard`` package is installed, True always (an error without
            it), False never. ``curves.png`` is redrawn every epoch when matplotlib is installed.
    """

    data: str | None
    model: str
    output_dir: str
    train_dir: str | None = None
    val_dir: str | None = None
    source: str = "zoo"
    filter_size: Any = 4
    init_weights: str | None = None
    num_classes: int | None = None
    recipe: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    momentum: float | None = None
    weight_decay: float | None = None
    nesterov: bool = False
    schedule: str | None = None
    step_size: int | None = None
    gamma: float | None = None
    warmup_epochs: float | None = None
    warmup_start: float = 0.01
    label_smoothing: float | None = None
    scale_lr: bool = True
    accum_steps: int = 1
    amp: str = "none"
    channels_last: bool = False
    compile: bool = False
    sync_bn: bool = False
    crop_size: int = 224
    val_resize: int = 256
    max_offset: int = 32
    consistency_passes: int = 1
    val_batch_size: int | None = None
    workers: int | None = None
    seed: int = 0
    device: str | None = None
    resume: str | None = None
    overwrite: bool = False
    stop_after: int | None = None
    save_every: int = 0
    on_corrupt: Literal["fail", "skip"] = "fail"
    verify_images: bool = True
    deterministic: bool = False
    progress: bool = True
    tensorboard: bool | None = None


@dataclass
class TrainResult:
    """What a run did.

    Attributes:
        output_dir: the run's folder.
        epochs_completed: epochs finished so far (over all invocations).
        steps: optimiser steps so far.
        history: the per-epoch log rows (as in ``log.jsonl``), this invocation and earlier ones.
        best_top1: best validation top-1 so far (fraction), or None.
        weights: the final weights file, once the schedule is complete; else None.
        checkpoint: the latest checkpoint file.
        recipe: the resolved optimiser settings.
    """

    output_dir: str
    epochs_completed: int
    steps: int
    history: list[dict[str, Any]] = field(default_factory=list)
    best_top1: float | None = None
    weights: str | None = None
    checkpoint: str | None = None
    recipe: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return dataclasses.asdict(self)


def _base_recipe(config: TrainConfig) -> Recipe:
    if config.recipe is not None:
        return get_recipe(config.recipe)
    return recipe_for(config.model.rpartition(":")[2], finetune=config.init_weights is not None)


def resolve_recipe(config: TrainConfig) -> Recipe:
    """The recipe of ``config``: the named or family recipe, with ``config``'s explicit overrides.

    >>> resolve_recipe(TrainConfig(data=None, model="mobilenet_v2", output_dir="x", lr=0.1)).schedule
    'cosine'
    """
    base = _base_recipe(config)
    # Every recipe field but its name and description is also an option; None: the recipe's.
    fields = [f.name for f in dataclasses.fields(Recipe) if f.name not in ("name", "description")]
    overrides = {
        name: getattr(config, name) for name in fields if getattr(config, name) is not None
    }
    if config.scale_lr and config.lr is None and config.batch_size not in (None, base.batch_size):
        overrides["lr"] = base.lr * config.batch_size / base.batch_size
    return base.replace(**overrides)


def default_workers() -> int:
    """Data-loader workers per process: this machine's usable CPUs over its processes, at most 8."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    return max(0, min(8, cpus // max(local, 1)))


def _num_workers(config: TrainConfig) -> int:
    """``config.workers``, which :func:`~antialias.train.engine.train` has resolved (``None``: the default)."""
    return config.workers if config.workers is not None else default_workers()


# Options a resumed run may change; every other option is restored from the run's config.json and
# may only be given again with the same value.
RESUME_CHANGEABLE = (
    "epochs",
    "stop_after",
    "save_every",
    "workers",
    "device",
    "progress",
    "val_batch_size",
    "consistency_passes",
    "verify_images",
    "deterministic",
    "compile",
    "data",
    "train_dir",
    "val_dir",
    "tensorboard",
)
# Options of one invocation: never restored.
_RUN_FIELDS = ("output_dir", "resume", "overwrite", "stop_after", "progress", "verify_images")


def resume_config(config: TrainConfig) -> TrainConfig:
    """The configuration of the run that ``config.resume`` continues: its ``config.json``, with the
    options of :data:`RESUME_CHANGEABLE` that ``config`` sets.

    An option left at its default is restored from the run; an option given with the run's value is
    accepted; any other change raises, so that a resumed run continues the run in the folder exactly.

    Raises:
        ValueError: ``config`` changes an option that is not in :data:`RESUME_CHANGEABLE`.
    """
    if config.resume is None:
        return config
    path = Path(config.output_dir) / CONFIG
    try:
        saved = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except ValueError as exc:
        raise ValueError(
            f"{str(path)!r} is not valid JSON ({exc}); the run's configuration is damaged"
        ) from None
    if not isinstance(saved, dict):
        if not config.model:
            raise FileNotFoundError(
                f"{str(path)!r} does not exist: resume needs the run's folder, or the model and data given again"
            )
        return config
    restored: dict[str, Any] = {}
    changed: list[str] = []
    values: dict[str, Any] = {}
    for f in dataclasses.fields(TrainConfig):
        name, given = f.name, getattr(config, f.name)
        default = None if f.default is dataclasses.MISSING else f.default
        if name in _RUN_FIELDS or name not in saved:
            restored[name] = given
            continue
        before = saved[name]
        if name in RESUME_CHANGEABLE and given is not None and given != default:
            restored[name] = given
        elif given is None or given == default or given == before:
            restored[name] = before
        else:
            key = f"given{len(changed)}"
            changed.append(f"{{{name}}}={{{key}!r}} (the run has {{{key}_run!r}})")
            values.update({key: given, f"{key}_run": before})
    if changed:
        allowed = ", ".join(f"{{{name}}}" for name in RESUME_CHANGEABLE)
        raise ConfigError(
            "{resume} continues the run in {out!r} with the options of its {config_file}; "
            f"these would change it: {'; '.join(changed)}. Only {allowed} may change when "
            "resuming; leave the others out, or start a new run in another {output_dir}",
            out=config.output_dir,
            config_file=CONFIG,
            **values,
        )
    return TrainConfig(**restored)


def validate_config(
    config: TrainConfig, recipe: Recipe, ctx_world: int, device: torch.device
) -> int:
    """Check every option before anything is read or written; return the per-process micro-batch."""
    choices = {
        "source": (config.source, SOURCES),
        "amp": (config.amp, AMP_MODES),
        "schedule": (recipe.schedule, SCHEDULES),
        "on_corrupt": (config.on_corrupt, ON_CORRUPT),
    }
    for name, (value, allowed) in choices.items():
        if value not in allowed:
            raise ConfigError(
                f"{{{name}}} must be one of {{allowed}}, got {{value!r}}",
                allowed=allowed,
                value=value,
            )
    if isinstance(config.model, str) and config.model.endswith(".pt2"):
        raise ConfigError(
            "{model} {value!r} is an exported program (.pt2), which runs as exported and cannot be "
            "trained; {model} takes a zoo name, a torchvision name (with {source}) or a "
            "'module:function' builder (timm's too: 'timm.models:resnet50')",
            value=config.model,
        )
    if config.tensorboard and not installed("tensorboard"):
        raise ConfigError(
            "{tensorboard} needs the tensorboard package: pip install 'antialias[tensorboard]'"
        )
    if config.amp == "fp16" and device.type != "cuda":
        raise ConfigError(
            "{amp} 'fp16' needs a CUDA device, got {device}; use {amp} 'bf16' on CPU",
            device=str(device),
        )
    if config.sync_bn and ctx_world > 1 and device.type == "cpu":
        raise ConfigError(
            "{sync_bn} needs GPUs: torch's SyncBatchNorm does not run on CPU; on CPU train a model "
            "without batch norm or leave {sync_bn} off"
        )
    # name -> (value, smallest allowed); None: not set (only optional options may be None).
    minimums = {
        "epochs": (recipe.epochs, 1),
        "batch_size": (recipe.batch_size, 1),
        "accum_steps": (config.accum_steps, 1),
        "crop_size": (config.crop_size, 1),
        "val_resize": (config.val_resize, 1),
        "max_offset": (config.max_offset, 1),
        "consistency_passes": (config.consistency_passes, 0),
        "workers": (config.workers, 0),
        "num_classes": (config.num_classes, 1),
        "save_every": (config.save_every, 0),
        "step_size": (recipe.step_size if recipe.schedule == "step" else None, 1),
        "stop_after": (config.stop_after, 1),
        "val_batch_size": (config.val_batch_size, 1),
    }
    optional = ("workers", "num_classes", "step_size", "stop_after", "val_batch_size")
    for name, (number, minimum) in minimums.items():
        if number is None and name in optional:
            continue
        if not isinstance(number, int) or isinstance(number, bool) or number < minimum:
            raise ConfigError(
                f"{{{name}}} must be an int >= {{minimum}}, got {{value!r}}",
                minimum=minimum,
                value=number,
            )
    if config.val_resize < config.crop_size:
        raise ConfigError(
            "{val_resize} ({resize}) must be at least {crop_size} ({crop})",
            resize=config.val_resize,
            crop=config.crop_size,
        )
    for name in ("lr", "weight_decay", "momentum", "warmup_epochs", "label_smoothing"):
        value = getattr(recipe, name)
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ConfigError(
                f"{{{name}}} must be a finite number >= 0, got {{value!r}}", value=value
            )
    if recipe.label_smoothing >= 1:
        raise ConfigError(
            "{label_smoothing} must be < 1, got {value!r}", value=recipe.label_smoothing
        )
    if not 0 < recipe.gamma <= 1:
        raise ConfigError("{gamma} must be in (0, 1], got {value!r}", value=recipe.gamma)
    if not 0 <= config.warmup_start <= 1:
        raise ConfigError(
            "{warmup_start} must be in [0, 1], got {value!r}", value=config.warmup_start
        )
    if recipe.warmup_epochs > recipe.epochs:
        raise ConfigError(
            "{warmup_epochs} ({warmup}) must not exceed {epochs} ({total})",
            warmup=recipe.warmup_epochs,
            total=recipe.epochs,
        )
    parts = ctx_world * config.accum_steps
    if recipe.batch_size % parts:
        raise ConfigError(
            "{batch_size} {batch} (global) must be divisible by the number of processes ({world}) "
            "times {accum_steps} ({accum}) = {parts}",
            batch=recipe.batch_size,
            world=ctx_world,
            accum=config.accum_steps,
            parts=parts,
        )
    return recipe.batch_size // parts
