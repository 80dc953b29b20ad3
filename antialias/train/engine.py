"""The training engine: ``train(config) -> TrainResult``, on one process or many (torchrun/DDP).

One epoch is: shuffle (the same permutation on every process), train on global batches, validate
(top-1/top-5 accuracy and crop consistency, the evaluation protocol of the paper), append one line to
``log.jsonl``, and write the checkpoints. ``antialias train`` is a thin shell over :func:`train`.

Convention:
    * ``batch_size`` is the *global* batch of one optimiser step: it is split evenly over the
      ``world_size`` processes and the ``accum_steps`` accumulation steps, so the recipe's learning
      rate stays right whatever the number of GPUs. Every process takes its share of each global
      batch from one permutation (``DistributedSampler``, shared seed), and the augmentation of an
      image depends only on (seed, epoch, image index) (see :mod:`antialias.train.data`): a run on
      N processes sees exactly the batches of the same run on one process. Incomplete global batches
      at the end of an epoch are dropped.
    * Gradients are averaged over the global batch (DDP averages over processes; the loss of each
      accumulation step is divided by ``accum_steps``).
    * Checkpoints are written at the end of each epoch, after validation, by rank 0, with the RNG
      states of every process, so ``resume`` continues exactly as if the run had not stopped.
    * Validation is split over the processes and the metrics are averaged weighted by image counts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, Subset

from antialias import _io
from antialias.models._head import MODEL_META_KEY
from antialias.train import checkpoint as ckpt
from antialias.train.data import (
    EpochSeededDataset,
    TransformedDataset,
    check_same_classes,
    train_transform,
)
from antialias.train.distributed import (
    DistributedContext,
    all_gather_objects,
    all_reduce_sum,
    barrier,
    init_distributed,
    resolve_device,
    shutdown_distributed,
)
from antialias.train.model import SOURCES, build_model, load_init_weights
from antialias.train.recipes import Recipe, get_recipe, recipe_for

__all__ = ["LOG", "NonFiniteLossError", "TrainConfig", "TrainResult", "resolve_recipe", "train"]

logger = logging.getLogger(__name__)

LOG = "log.jsonl"
"""File name of the per-epoch JSON-lines log in the output folder."""
CONFIG = "config.json"

AMP_MODES = ("none", "bf16", "fp16")
SCHEDULES = ("step", "cosine", "constant")
ON_CORRUPT = ("fail", "skip")

class NonFiniteLossError(FloatingPointError, ValueError):
    """Training stopped because the loss became NaN or infinite (the last good checkpoint is kept)."""


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
        model: a zoo name, a torchvision name (with ``source``) or ``"package.module:function"``.
        output_dir: folder for checkpoints, ``log.jsonl``, ``config.json`` and ``weights.pt``. It
            must not hold checkpoints of another run unless ``resume`` is set.
        train_dir: training folder, default ``data/train``.
        val_dir: validation folder, default ``data/val``.
        source: ``"zoo"`` (anti-aliased zoo model), ``"convert"`` (torchvision model passed
            through ``antialias.convert``) or ``"torchvision"`` (the unchanged baseline).
        filter_size: blur filter of anti-aliased models (int 1..7 or a family string).
        init_weights: start from these weights, loaded strictly: a state-dict file or
            ``"torchvision[:NAME]"``. Selects the fine-tuning recipe when ``recipe`` is None. A
            classifier trained for another number of classes is re-initialised (a message names it).
        num_classes: outputs of the classifier; default the data's class count.
        recipe: recipe name (see :data:`antialias.train.RECIPES`); default: the model's family.
        epochs: total epochs of the schedule.
        batch_size: global batch of one optimiser step (see the module's Convention).
        lr: peak learning rate.
        momentum: SGD momentum.
        weight_decay: weight decay.
        nesterov: Nesterov momentum.
        schedule: ``"step"``, ``"cosine"`` or ``"constant"``.
        step_size: epochs between divisions of the rate by ``1 / gamma`` (step schedule).
        gamma: factor of each division.
        warmup_epochs: linear warm-up length in epochs (fractional allowed), per step.
        warmup_start: factor of the rate at the start of the warm-up.
        label_smoothing: label smoothing of the cross-entropy.
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
        workers: data-loader worker processes per training process; default the CPUs this process
            may use divided by the processes of this machine (at most 8).
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
    on_corrupt: str = "fail"
    verify_images: bool = True
    deterministic: bool = False
    progress: bool = True


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


# --- configuration ------------------------------------------------------------------------------


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
    overrides = {
        name: getattr(config, name)
        for name in (
            "epochs",
            "batch_size",
            "lr",
            "momentum",
            "weight_decay",
            "schedule",
            "step_size",
            "gamma",
            "warmup_epochs",
            "label_smoothing",
        )
        if getattr(config, name) is not None
    }
    if (
        config.scale_lr
        and config.lr is None
        and config.batch_size is not None
        and config.batch_size != base.batch_size
    ):
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
)
# Options of one invocation: never restored.
_RUN_FIELDS = ("output_dir", "resume", "overwrite", "stop_after", "progress", "verify_images")


def _saved_config(config: TrainConfig) -> dict[str, Any] | None:
    path = Path(config.output_dir) / CONFIG
    if path.is_file():
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ValueError(f"{str(path)!r} is not valid JSON ({exc}); the run's configuration is damaged") from None
        return saved if isinstance(saved, dict) else None
    return None


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
    saved = _saved_config(config)
    if saved is None:
        if not config.model:
            raise FileNotFoundError(
                f"{str(Path(config.output_dir) / CONFIG)!r} does not exist: resume needs the run's "
                "folder, or the model and data given again"
            )
        return config
    restored: dict[str, Any] = {}
    changed = []
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
            changed.append(f"{name}={given!r} (the run has {before!r})")
    if changed:
        allowed = ", ".join(RESUME_CHANGEABLE)
        raise ValueError(
            f"resume continues the run in {config.output_dir!r} with the options of its {CONFIG}; "
            f"these would change it: {'; '.join(changed)}. Only {allowed} may change when resuming; "
            "leave the others out, or start a new run in another output_dir"
        )
    return TrainConfig(**restored)


def _check_positive_int(name: str, value: Any, minimum: int = 1) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


def _validate(config: TrainConfig, recipe: Recipe, ctx_world: int, device: torch.device) -> int:
    """Check every option before anything is read or written; return the per-process micro-batch."""
    if config.source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {config.source!r}")
    if config.amp not in AMP_MODES:
        raise ValueError(f"amp must be one of {AMP_MODES}, got {config.amp!r}")
    if config.amp == "fp16" and device.type != "cuda":
        raise ValueError("amp='fp16' needs a CUDA device; use amp='bf16' on CPU")
    if recipe.schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {recipe.schedule!r}")
    if config.on_corrupt not in ON_CORRUPT:
        raise ValueError(f"on_corrupt must be one of {ON_CORRUPT}, got {config.on_corrupt!r}")
    if config.sync_bn and ctx_world > 1 and device.type == "cpu":
        raise ValueError(
            "sync_bn needs GPUs: torch's SyncBatchNorm does not run on CPU; on CPU train a model "
            "without batch norm or leave sync_bn off"
        )
    _check_positive_int("epochs", recipe.epochs)
    _check_positive_int("batch_size", recipe.batch_size)
    _check_positive_int("accum_steps", config.accum_steps)
    _check_positive_int("crop_size", config.crop_size)
    _check_positive_int("val_resize", config.val_resize)
    _check_positive_int("max_offset", config.max_offset)
    _check_positive_int("consistency_passes", config.consistency_passes, 0)
    if config.workers is not None:
        _check_positive_int("workers", config.workers, 0)
    if config.num_classes is not None:
        _check_positive_int("num_classes", config.num_classes)
    _check_positive_int("save_every", config.save_every, 0)
    if recipe.schedule == "step":
        _check_positive_int("step_size", recipe.step_size)
    if config.stop_after is not None:
        _check_positive_int("stop_after", config.stop_after)
    if config.val_batch_size is not None:
        _check_positive_int("val_batch_size", config.val_batch_size)
    if config.val_resize < config.crop_size:
        raise ValueError(
            f"val_resize ({config.val_resize}) must be at least crop_size ({config.crop_size})"
        )
    for name in ("lr", "weight_decay", "momentum", "warmup_epochs", "label_smoothing"):
        value = getattr(recipe, name)
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if recipe.label_smoothing >= 1:
        raise ValueError(f"label_smoothing must be < 1, got {recipe.label_smoothing!r}")
    if not 0 < recipe.gamma <= 1:
        raise ValueError(f"gamma must be in (0, 1], got {recipe.gamma!r}")
    if not 0 <= config.warmup_start <= 1:
        raise ValueError(f"warmup_start must be in [0, 1], got {config.warmup_start!r}")
    if recipe.warmup_epochs > recipe.epochs:
        raise ValueError(
            f"warmup_epochs ({recipe.warmup_epochs}) must not exceed epochs ({recipe.epochs})"
        )
    parts = ctx_world * config.accum_steps
    if recipe.batch_size % parts:
        raise ValueError(
            f"batch_size {recipe.batch_size} (global) must be divisible by the number of processes "
            f"({ctx_world}) times accum_steps ({config.accum_steps}) = {parts}"
        )
    return recipe.batch_size // parts


class LRSchedule:
    """Learning-rate factor of optimiser step ``step``: warm-up, then step or cosine decay.

    An object, not a closure, so that ``LambdaLR.state_dict`` records its settings.

    Convention:
        ``e = step / steps_per_epoch`` is the (fractional) epoch. Step schedule:
        ``gamma ** (floor(e) // step_size)`` (the rate changes at epoch boundaries, as in the
        reference). Cosine: ``0.5 * (1 + cos(pi * (e - warmup) / (epochs - warmup)))``, per step,
        reaching 0 at the end. Warm-up multiplies by a linear ramp from ``warmup_start`` to 1 over
        the first ``warmup_epochs``.
    """

    def __init__(
        self,
        schedule: str,
        *,
        epochs: int,
        steps_per_epoch: int,
        step_size: int = 30,
        gamma: float = 0.1,
        warmup_epochs: float = 0.0,
        warmup_start: float = 0.01,
    ) -> None:
        self.schedule = schedule
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.step_size = step_size
        self.gamma = gamma
        self.warmup_epochs = warmup_epochs
        self.warmup_start = warmup_start

    def __call__(self, step: int) -> float:
        epoch_index = step // self.steps_per_epoch
        e = step / self.steps_per_epoch
        if self.schedule == "step":
            factor = self.gamma ** (epoch_index // self.step_size)
        elif self.schedule == "cosine":
            span = self.epochs - self.warmup_epochs
            progress = min(max((e - self.warmup_epochs) / span, 0.0), 1.0) if span > 0 else 1.0
            factor = 0.5 * (1.0 + math.cos(math.pi * progress))
        else:
            factor = 1.0
        if e < self.warmup_epochs:
            factor *= self.warmup_start + (1.0 - self.warmup_start) * e / self.warmup_epochs
        return factor


# --- data ---------------------------------------------------------------------------------------


@dataclass
class _Data:
    train: EpochSeededDataset
    val_accuracy: Any
    val_consistency: Any
    classes: list[str]


def _load_data(config: TrainConfig) -> _Data:
    from antialias.data import consistency_transform, eval_transform, load_image_folder

    if config.train_dir is None or config.val_dir is None:
        if config.data is None:
            raise ValueError(
                "give data (a folder with train/ and val/) or both train_dir and val_dir"
            )
    train_dir = config.train_dir or os.path.join(str(config.data), "train")
    val_dir = config.val_dir or os.path.join(str(config.data), "val")
    for what, folder in (("training", train_dir), ("validation", val_dir)):
        if not os.path.exists(folder):
            raise FileNotFoundError(
                f"{what} folder {folder!r} does not exist; expected the ImageNet layout "
                f"DATA/train/<class>/<image> and DATA/val/<class>/<image>"
            )
    options = {"on_corrupt": config.on_corrupt, "verify": config.verify_images}
    train_set = load_image_folder(train_dir, **options)
    val_set = load_image_folder(val_dir, **options)
    for folder, dataset in ((train_dir, train_set), (val_dir, val_set)):
        if not dataset.classes:
            raise ValueError(
                f"{folder!r} has images but no class sub-folders; training needs labels "
                "(one sub-folder per class)"
            )
    check_same_classes(train_set.classes, val_set.classes, train_dir=train_dir, val_dir=val_dir)
    train = EpochSeededDataset(train_set, train_transform(config.crop_size), seed=config.seed)
    val_accuracy = TransformedDataset(val_set, eval_transform(config.val_resize, config.crop_size))
    side = config.crop_size + config.max_offset
    val_consistency = TransformedDataset(val_set, consistency_transform(side, side))
    return _Data(train, val_accuracy, val_consistency, list(train_set.classes))


def _loader_generator(seed: int, epoch: int, rank: int) -> torch.Generator:
    # The loader draws its workers' base seed from this generator; deriving it from
    # (seed, epoch, rank) keeps it off the global RNG and identical after a resume.
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch * 1_009 + rank)


# --- the run ------------------------------------------------------------------------------------


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:
        pass


def _autocast(config: TrainConfig, device: torch.device) -> contextlib.AbstractContextManager:
    if config.amp == "none":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if config.amp == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def _write_json_atomic(obj: Any, path: Path) -> None:
    _io.atomic_write_text(path, json.dumps(_io.json_safe(obj), indent=2, default=str, allow_nan=False) + "\n")


def _json_line(row: dict[str, Any]) -> str:
    # Strict JSON: a non-finite number is written as null, never as the bare NaN that JSON lacks.
    return json.dumps(_io.json_safe(row), allow_nan=False) + "\n"


def _read_log(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    with open(path, encoding="utf-8") as f:
        lines = [line for line in f if line.strip()]
    for number, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
        except ValueError:
            if number == len(lines):  # a crash while appending: the last line is incomplete
                logger.warning(f"{path}: ignoring its incomplete last line")
                continue
            raise ValueError(f"{str(path)!r} line {number} is not valid JSON; the run's log is damaged") from None
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _append_log(path: Path, row: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(_json_line(row))
        f.flush()
        os.fsync(f.fileno())


def _run_files(out: Path) -> list[Path]:
    """The files of a run in ``out`` (an empty log is what a run that failed in its first epoch leaves)."""
    return ckpt.list_checkpoints(out) + [
        p for p in (out / LOG, out / ckpt.WEIGHTS) if p.is_file() and p.stat().st_size > 0
    ]


def _logged_epoch(out: Path) -> int:
    epochs = [row.get("epoch", 0) for row in _read_log(out / LOG)]
    return max([e for e in epochs if isinstance(e, int)], default=0)


def _check_output_dir(config: TrainConfig) -> tuple[Path | None, list[Path]]:
    """The checkpoint to resume from (or None), and the files ``overwrite`` replaces.

    Refuses a folder holding another run or a finished one unless ``resume`` continues that
    folder's own run or ``overwrite`` is set, and resuming from a checkpoint older than the run's
    last epoch without ``overwrite``.
    """
    out = Path(config.output_dir)
    existing = _run_files(out)
    everything = existing + [p for p in (out / CONFIG, out / LOG) if p.exists() and p not in existing]
    if config.resume is None:
        if existing and not config.overwrite:
            raise ValueError(
                f"output_dir {str(out)!r} already holds a run ({existing[0].name}); pass resume to continue "
                "it, overwrite to replace it, or choose another output_dir (nothing was written)"
            )
        return None, everything if config.overwrite else []
    if config.resume == "latest":
        try:
            path, state, damaged = ckpt.find_resumable(out)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"checkpoint to resume {str(out / ckpt.LATEST)!r} does not exist: output_dir {str(out)!r} holds "
                "no checkpoint; give the checkpoint to resume from, or leave resume out to start a new run"
            ) from None
        for bad, reason in damaged:
            logger.warning(
                f"checkpoint {bad} is damaged and is passed over ({reason}); resuming from {path.name}, "
                f"the newest intact checkpoint (epoch {state.get('epoch')})"
            )
        return path, []
    path = Path(config.resume)
    if path.is_dir():
        raise ValueError(f"resume {config.resume!r} is a folder; expected a checkpoint file (or 'latest')")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint to resume {str(path)!r} does not exist")
    own = out.is_dir() and path.parent.resolve() == out.resolve()
    if not own:
        if existing and not config.overwrite:
            raise ValueError(
                f"output_dir {str(out)!r} already holds another run ({existing[0].name}); continuing "
                f"{str(path)!r} there would overwrite it: choose an empty output_dir, or pass overwrite to "
                "replace that run (nothing was written)"
            )
        return path, everything if config.overwrite else []
    epoch = int(ckpt.load_checkpoint(path).get("epoch", 0))
    reached = _logged_epoch(out)
    if epoch < reached:
        if not config.overwrite:
            raise ValueError(
                f"{str(path)!r} holds epoch {epoch}, but the run in {str(out)!r} has reached epoch {reached}: "
                f"resuming from it would discard epochs {epoch + 1}-{reached}; pass overwrite to do that, or give "
                "another output_dir to continue in a new folder (nothing was written)"
            )
        # The discarded epochs' checkpoints must not survive as "newer" ones.
        later = [p for p in ckpt.list_checkpoints(out) if p.resolve() != path.resolve()]
        return path, [
            p for p in later if p.name in (ckpt.LATEST, ckpt.BEST) or ckpt._epoch_of(p) > epoch
        ]
    return path, []


def _warn_config_changes(saved: dict[str, Any], config: TrainConfig, recipe: Recipe) -> None:
    current = {**dataclasses.asdict(config), **dataclasses.asdict(recipe)}
    for name in _TRAJECTORY_FIELDS:
        before, now = saved.get(name), current.get(name)
        if name in saved and before != now:
            logger.warning(
                f"resuming with {name}={now!r} (the checkpoint used {before!r}): "
                "the run will not match an uninterrupted one"
            )


def _load_resumed_model(model: nn.Module, state: dict[str, Any], path: Path, config: TrainConfig) -> None:
    """Load the checkpoint's weights strictly, or say which model the checkpoint holds (one line)."""
    from antialias.models._load import state_dict_mismatch

    missing, unexpected, shapes = state_dict_mismatch(model.state_dict(), state["model"])
    if missing or unexpected or shapes:
        saved = (state.get("config") or {}).get("model")
        raise ValueError(
            f"checkpoint {str(path)!r} holds a model that does not fit {config.model!r}"
            + (f" (it was trained as {saved!r}; resume with that model)" if saved and saved != config.model else "")
            + f": {len(missing)} missing keys, {len(unexpected)} unexpected keys, {len(shapes)} shape mismatches"
            + (f", e.g. {shapes[0][0]}: checkpoint {shapes[0][1]} vs model {shapes[0][2]}" if shapes else "")
        )
    model.load_state_dict(state["model"], strict=True)


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "module", model)


class _Epoch:
    """Running sums of one epoch on this process."""

    def __init__(self, device: torch.device) -> None:
        self.loss = torch.zeros((), dtype=torch.float64, device=device)
        self.correct = torch.zeros((), dtype=torch.float64, device=device)
        self.count = 0


def _train_epoch(
    *,
    model: nn.Module,
    ddp: nn.Module | None,
    loader: DataLoader,
    steps: int,
    config: TrainConfig,
    recipe: Recipe,
    ctx: DistributedContext,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    criterion: nn.Module,
    epoch: int,
) -> tuple[_Epoch, float]:
    from tqdm.auto import tqdm

    model.train()
    sums = _Epoch(ctx.device)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    bar = tqdm(
        total=steps * recipe.batch_size,
        desc=f"epoch {epoch + 1}/{recipe.epochs}",
        unit="img",
        unit_scale=True,
        dynamic_ncols=True,
        disable=not (config.progress and ctx.is_main),
        leave=False,
    )
    batches: Iterator = iter(loader)
    non_blocking = ctx.device.type == "cuda"
    start = time.perf_counter()
    with bar:
        for index in range(steps):
            step_losses = []
            for micro in range(config.accum_steps):
                images, labels = next(batches)
                images = images.to(ctx.device, non_blocking=non_blocking).contiguous(
                    memory_format=memory_format
                )
                labels = labels.to(ctx.device, non_blocking=non_blocking)
                last = micro == config.accum_steps - 1
                # Skip DDP's all-reduce on all but the last accumulation step.
                sync = contextlib.nullcontext() if last or ddp is None else ddp.no_sync()
                with sync:
                    with _autocast(config, ctx.device):
                        output = model(images)
                        loss = criterion(output, labels)
                    scaler.scale(loss / config.accum_steps).backward()
                step_losses.append(loss.detach().float())
                with torch.no_grad():
                    sums.loss += loss.detach().double() * labels.shape[0]
                    sums.correct += (output.argmax(dim=1) == labels).sum().double()
                    sums.count += labels.shape[0]
            _check_finite_loss(torch.stack(step_losses), ctx, epoch, index, optimizer)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            bar.update(recipe.batch_size)
            # loss.item() waits for the GPU: refresh the displayed loss only now and then.
            if not bar.disable and (bar.n // recipe.batch_size) % 10 in (0, 1):
                bar.set_postfix(
                    loss=f"{loss.item():.4f}", lr=f"{optimizer.param_groups[0]['lr']:.4g}"
                )
    if ctx.device.type == "cuda":
        torch.cuda.synchronize(ctx.device)
    return sums, time.perf_counter() - start


def _check_finite_loss(
    losses: torch.Tensor,
    ctx: DistributedContext,
    epoch: int,
    index: int,
    optimizer: torch.optim.Optimizer,
) -> None:
    """Stop at the first NaN/inf loss, before the optimiser applies its gradients (every process stops)."""
    bad = float((~torch.isfinite(losses)).any())
    if ctx.distributed:
        (bad,) = all_reduce_sum(ctx, [bad])
    if bad:
        value = next((float(v) for v in losses.tolist() if not math.isfinite(v)), float("nan"))
        raise NonFiniteLossError(
            f"training stopped: the loss is {value} (not finite) at epoch {epoch + 1}, step {index + 1} of the "
            f"epoch, with lr {optimizer.param_groups[0]['lr']:.4g}; the weights diverged (a learning rate too "
            "high for this batch size?). Nothing of this epoch was saved; the checkpoints of earlier epochs are "
            "kept: lower lr and start again, or resume from the last checkpoint"
        )


def _validate_epoch(
    *,
    bare: nn.Module,
    data: _Data,
    config: TrainConfig,
    ctx: DistributedContext,
    epoch: int,
    val_batch: int,
) -> dict[str, float | None]:
    from antialias.metrics import accuracy, crop_consistency

    shard = list(range(ctx.rank, len(data.val_accuracy), ctx.world_size))
    loader_options = {
        "batch_size": val_batch,
        "num_workers": config.workers,
        "pin_memory": ctx.device.type == "cuda",
    }
    progress = config.progress and ctx.is_main
    totals = [0.0, 0.0, 0.0, 0.0, 0.0]  # top1*n, top5*n, n, consistency*n, n (consistency)
    if shard:
        loader = DataLoader(Subset(data.val_accuracy, shard), **loader_options)
        with _autocast(config, ctx.device):
            # With fewer than 5 classes, top-5 counts every image as correct (the metric's rule).
            acc = accuracy(bare, loader, topk=(1, 5), device=ctx.device, progress=progress)
        totals[0] = acc["top1"] * len(shard)
        totals[1] = acc["top5"] * len(shard)
        totals[2] = float(len(shard))
        if config.consistency_passes > 0:
            loader = DataLoader(Subset(data.val_consistency, shard), **loader_options)
            generator = torch.Generator().manual_seed(
                config.seed * 1_000_003 + epoch * 1_009 + ctx.rank
            )
            with _autocast(config, ctx.device):
                result = crop_consistency(
                    bare,
                    loader,
                    crop_size=config.crop_size,
                    max_offset=config.max_offset,
                    passes=config.consistency_passes,
                    generator=generator,
                    device=ctx.device,
                    progress=progress,
                )
            totals[3] = result.consistency * len(shard)
            totals[4] = float(len(shard))
    top1, top5, n, cons, n_cons = all_reduce_sum(ctx, totals)
    return {
        "val_top1": top1 / n if n else None,
        "val_top5": top5 / n if n else None,
        "consistency": cons / n_cons if n_cons else None,
    }


def train(config: TrainConfig) -> TrainResult:
    """Train (or fine-tune, or resume) a model as ``config`` says; see the module's Convention.

    Launched by ``torchrun``, each process calls this and joins the process group (NCCL on GPU,
    Gloo on CPU); otherwise it runs as a single process. Every option, the data folders and the
    model are checked before anything is written, and an existing run is never written over unless
    ``config.resume`` is set.

    Returns:
        A :class:`TrainResult`; its ``history`` is filled on rank 0 only.

    Raises:
        FileNotFoundError: a missing data folder or resume checkpoint.
        ValueError: a bad option, an empty folder, classes that differ between train and val,
            a corrupt image (``on_corrupt="fail"``), an unknown model, weights that do not match.
    """
    config = resume_config(config)
    if config.workers is None:
        config = dataclasses.replace(config, workers=default_workers())
    recipe = resolve_recipe(config)
    if config.scale_lr and config.lr is None and recipe.batch_size != _base_recipe(config).batch_size:
        base = _base_recipe(config)
        logger.warning(
            f"global batch {recipe.batch_size} differs from recipe {base.name!r}'s {base.batch_size}: "
            f"lr scaled linearly, {base.lr:g} x {recipe.batch_size}/{base.batch_size} = {recipe.lr:g} "
            "(give lr, or scale_lr=False / --no-lr-scaling, to keep the recipe's rate)"
        )
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    device = resolve_device(config.device, int(os.environ.get("LOCAL_RANK", "0") or 0))
    micro_batch = _validate(config, recipe, world, device)
    out = _io.check_output_path(
        config.output_dir,
        kind="dir",
        what="output_dir",
        inputs=[
            ("data folder", config.data),
            ("training folder", config.train_dir),
            ("validation folder", config.val_dir),
        ],
    )
    # One run per folder: rank 0 holds the folder's lock for the whole run (the other processes of
    # a torchrun job are part of the same run).
    created = not out.exists()
    lock = _io.RunLock(out) if int(os.environ.get("RANK", "0") or 0) == 0 else None
    if lock is not None:
        lock.acquire()
    try:
        return _train_locked(config, recipe, micro_batch)
    finally:
        if lock is not None:
            lock.release()
            if created and [p.name for p in out.iterdir()] == [_io.RunLock.FILE]:
                # Stopped before writing anything: leave no empty folder behind.
                with contextlib.suppress(OSError):
                    lock.path.unlink()
                    out.rmdir()


def _train_locked(config: TrainConfig, recipe: Recipe, micro_batch: int) -> TrainResult:
    resume_path, discard = _check_output_dir(config)
    data = _load_data(config)
    steps_per_epoch = len(data.train) // recipe.batch_size
    if steps_per_epoch == 0:
        raise ValueError(
            f"the global batch ({recipe.batch_size}) is larger than the training set "
            f"({len(data.train)} images); lower batch_size"
        )
    # The same initial weights on every process (DDP also broadcasts rank 0's at wrap time).
    _seed_everything(config.seed)
    num_classes = config.num_classes or len(data.classes)
    if num_classes < len(data.classes):
        raise ValueError(
            f"num_classes {num_classes} is smaller than the {len(data.classes)} classes of the data"
        )
    model = build_model(
        config.model,
        num_classes=num_classes,
        filter_size=config.filter_size,
        source=config.source,
    )
    if config.init_weights is not None and resume_path is None:
        load_init_weights(model, config.init_weights, arch=config.model, new_classifier=True)
    if discard and int(os.environ.get("RANK", "0") or 0) == 0:
        # Every check has passed: only now is the replaced run removed (``overwrite``).
        for path in discard:
            logger.warning(f"overwrite: removing {path}")
            path.unlink(missing_ok=True)
            path.with_name(path.name + _io.HASH_SUFFIX).unlink(missing_ok=True)

    ctx = init_distributed(config.device)
    try:
        return _run(config, recipe, ctx, model, data, micro_batch, steps_per_epoch, resume_path)
    finally:
        shutdown_distributed(ctx)


def _run(
    config: TrainConfig,
    recipe: Recipe,
    ctx: DistributedContext,
    model: nn.Module,
    data: _Data,
    micro_batch: int,
    steps_per_epoch: int,
    resume_path: Path | None,
) -> TrainResult:
    out = Path(config.output_dir)
    if config.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif ctx.device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    if config.sync_bn and ctx.distributed:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(ctx.device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    bare = model
    optimizer = torch.optim.SGD(
        bare.parameters(),
        lr=recipe.lr,
        momentum=recipe.momentum,
        weight_decay=recipe.weight_decay,
        nesterov=config.nesterov,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        LRSchedule(
            recipe.schedule,
            epochs=recipe.epochs,
            steps_per_epoch=steps_per_epoch,
            step_size=recipe.step_size,
            gamma=recipe.gamma,
            warmup_epochs=recipe.warmup_epochs,
            warmup_start=config.warmup_start,
        ),
    )
    scaler = torch.amp.GradScaler(ctx.device.type, enabled=config.amp == "fp16")

    # Model randomness (dropout) differs per process; data randomness does not (see data.py).
    _seed_everything(config.seed + ctx.rank)
    start_epoch, step, best_top1 = 0, 0, None
    if resume_path is not None:
        state = ckpt.load_checkpoint(resume_path)
        if state.get("classes") != data.classes:
            raise ValueError(
                f"checkpoint {str(resume_path)!r} was trained on classes {state.get('classes')!r}"
                f" but the data folders have {data.classes!r}"
            )
        _warn_config_changes(state.get("config", {}), config, recipe)
        _load_resumed_model(bare, state, resume_path, config)
        optimizer.load_state_dict(state["optimizer"])
        # Keep this run's schedule settings (a resumed run may extend ``epochs``): LambdaLR would
        # otherwise overwrite them with the saved ones; None entries leave them alone.
        scheduler.load_state_dict({**state["scheduler"], "lr_lambdas": [None]})
        # The rate of the next step under this run's schedule (LambdaLR's own formula, so an
        # unchanged schedule gives exactly the saved rate).
        for group, base, factor in zip(
            optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas, strict=True
        ):
            group["lr"] = base * factor(scheduler.last_epoch)
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        start_epoch, step, best_top1 = state["epoch"], state["step"], state.get("best_top1")
        rng = state.get("rng") or []
        if len(rng) == ctx.world_size:
            ckpt.restore_rng_state(rng[ctx.rank])
        else:
            logger.warning(
                f"checkpoint has RNG states of {len(rng)} processes, this run has "
                f"{ctx.world_size}: reseeding (data order and augmentation still match)"
            )
            _seed_everything(config.seed + ctx.rank + 7919 * start_epoch)
        logger.info(f"resumed from {resume_path} after epoch {start_epoch} (step {step})")
        if start_epoch >= recipe.epochs:
            logger.warning(
                f"the run in {str(out)!r} has finished its {recipe.epochs} epochs: nothing to train "
                "(give a larger epochs to extend it)"
            )

    ddp = None
    if ctx.distributed:
        device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        model = ddp = nn.parallel.DistributedDataParallel(bare, device_ids=device_ids)
    if config.compile:
        model = torch.compile(model)

    log_path = out / LOG
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        history = [row for row in _read_log(log_path) if row.get("epoch", 0) <= start_epoch]
        if log_path.exists():
            # Drop rows of epochs logged after the checkpoint we resume from (a crash in between).
            _io.atomic_write_text(log_path, "".join(_json_line(row) for row in history))
        saved = {
            **dataclasses.asdict(config),
            "recipe_resolved": dataclasses.asdict(recipe),
            "classes": data.classes,
            "world_size": ctx.world_size,
        }
        _write_json_atomic(saved, out / CONFIG)
        kind = "factory" if ":" in config.model else config.source
        logger.info(
            f"training {config.model} ({kind}) on {len(data.train)} images, "
            f"{len(data.classes)} classes; {ctx.world_size} process(es) on {ctx.device}; "
            f"global batch {recipe.batch_size} = {ctx.world_size} x {config.accum_steps} x "
            f"{micro_batch}; recipe {recipe.name}: lr {recipe.lr}, {recipe.schedule}, "
            f"{recipe.epochs} epochs"
        )
    else:
        history = []

    sampler = DistributedSampler(
        data.train,
        num_replicas=ctx.world_size,
        rank=ctx.rank,
        shuffle=True,
        seed=config.seed,
        drop_last=True,
    )
    criterion = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    val_batch = config.val_batch_size or micro_batch * config.accum_steps
    end_epoch = recipe.epochs
    if config.stop_after is not None:
        end_epoch = min(end_epoch, start_epoch + config.stop_after)

    for epoch in range(start_epoch, end_epoch):
        sampler.set_epoch(epoch)
        data.train.set_epoch(epoch)
        loader = DataLoader(
            data.train,
            batch_size=micro_batch,
            sampler=sampler,
            drop_last=True,
            num_workers=config.workers,
            pin_memory=ctx.device.type == "cuda",
            generator=_loader_generator(config.seed, epoch, ctx.rank),
        )
        lr = optimizer.param_groups[0]["lr"]
        sums, seconds = _train_epoch(
            model=model,
            ddp=ddp,
            loader=loader,
            steps=steps_per_epoch,
            config=config,
            recipe=recipe,
            ctx=ctx,
            optimizer=optimizer,
            scheduler=scheduler,
            scaler=scaler,
            criterion=criterion,
            epoch=epoch,
        )
        step += steps_per_epoch
        loss_sum, correct, count = all_reduce_sum(
            ctx, [sums.loss.item(), sums.correct.item(), float(sums.count)]
        )
        metrics = _validate_epoch(
            bare=bare, data=data, config=config, ctx=ctx, epoch=epoch, val_batch=val_batch
        )
        row = {
            "epoch": epoch + 1,
            "step": step,
            "train_loss": loss_sum / count,
            "train_top1": correct / count,
            "lr": lr,
            **metrics,
            "images_per_s": count / seconds if seconds > 0 else None,
            "epoch_time_s": seconds,
        }
        top1 = metrics["val_top1"]
        is_best = top1 is not None and (best_top1 is None or top1 > best_top1)
        if is_best:
            best_top1 = top1
        # Every process contributes its RNG state; rank 0 writes.
        rng_states = all_gather_objects(ctx, ckpt.capture_rng_state())
        if ctx.is_main:
            history.append(row)
            _append_log(log_path, row)
            state = {
                "format": ckpt.CHECKPOINT_FORMAT,
                "epoch": epoch + 1,
                "step": step,
                "model": bare.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": rng_states,
                "world_size": ctx.world_size,
                "best_top1": best_top1,
                "metrics": row,
                "classes": data.classes,
                "config": {**dataclasses.asdict(config), **dataclasses.asdict(recipe)},
                MODEL_META_KEY: _model_meta(config, data),
            }
            ckpt.save_checkpoint(
                state, out, epoch=epoch + 1, is_best=is_best, save_every=config.save_every
            )
            logger.info(
                "epoch %d/%d: loss %.4f, lr %.4g, val top-1 %s, consistency %s, %.1f img/s",
                epoch + 1,
                recipe.epochs,
                row["train_loss"],
                lr,
                _pct(top1),
                _pct(metrics["consistency"]),
                row["images_per_s"] or 0.0,
            )
        barrier(ctx)

    completed = max(start_epoch, end_epoch)
    weights = None
    if completed >= recipe.epochs:
        weights = str(out / ckpt.WEIGHTS)
        if ctx.is_main:
            ckpt.save_weights(bare, weights, meta=_model_meta(config, data))
        barrier(ctx)
    if ctx.is_main and not history:
        history = _read_log(log_path)
    return TrainResult(
        output_dir=str(out),
        epochs_completed=completed,
        steps=step,
        history=history,
        best_top1=best_top1,
        weights=weights,
        checkpoint=str(out / ckpt.LATEST),
        recipe=dataclasses.asdict(recipe),
    )


def _model_meta(config: TrainConfig, data: _Data) -> dict[str, Any]:
    """What a file of the run says about its model: ``get_model(arch, weights=file)`` reads it."""
    return {
        "format": "antialias.model/1",
        "arch": config.model,
        "source": config.source,
        "num_classes": config.num_classes or len(data.classes),
        "filter_size": config.filter_size,
        "options": {"channels_last": config.channels_last, "sync_bn": config.sync_bn},
        "classes": list(data.classes),
        "crop_size": config.crop_size,
        "val_resize": config.val_resize,
    }


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"
