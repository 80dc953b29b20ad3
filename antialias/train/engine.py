"""The training engine: ``train(config) -> TrainResult``, on one process or many (torchrun/DDP).

Laid out as torchvision's references: :mod:`~antialias.train.config` (options, recipe, resume),
:mod:`~antialias.train.optim` (SGD and torch's schedulers), :mod:`~antialias.train.loop`
(``train_one_epoch``, ``evaluate``), :mod:`~antialias.train.run_folder` (log, config file, which
checkpoint to resume) and :mod:`~antialias.train.checkpoint` (atomic files); this module wires them.

One epoch is: shuffle (the same permutation on every process), train on global batches, validate
(top-1/top-5 accuracy and crop consistency, the evaluation protocol of the paper), append one line to
``log.jsonl``, redraw ``curves.png`` and add to the TensorBoard events
(:class:`~antialias.train.run_folder.RunCurves`), and write the checkpoints. ``antialias train``
is a thin shell over :func:`train`.

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
import logging
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler
from torch.utils.data import DataLoader, DistributedSampler

from antialias import _io
from antialias.devices import resolve_device
from antialias.layers import check_backend
from antialias.models import MODEL_META_KEY, build_model, load_init_weights
from antialias.train import checkpoint as ckpt
from antialias.train import data as train_data
from antialias.train import distributed, run_folder
from antialias.train.config import CONFIG as CONFIG
from antialias.train.config import LOG as LOG
from antialias.train.config import RESUME_CHANGEABLE as RESUME_CHANGEABLE
from antialias.train.config import (
    ConfigError,
    _base_recipe,
    _num_workers,
    resume_config,
    validate_config,
    warn_option,
)
from antialias.train.config import TrainConfig as TrainConfig
from antialias.train.config import TrainResult as TrainResult
from antialias.train.config import default_workers as default_workers
from antialias.train.config import resolve_recipe as resolve_recipe
from antialias.train.loop import NonFiniteLossError as NonFiniteLossError
from antialias.train.loop import _pct, epoch_generator, evaluate, train_one_epoch
from antialias.train.optim import build_optimizer, build_scheduler, extend_schedule
from antialias.train.recipes import Recipe

__all__ = [
    "CONFIG",
    "LOG",
    "NonFiniteLossError",
    "RESUME_CHANGEABLE",
    "TrainConfig",
    "TrainResult",
    "default_workers",
    "resolve_recipe",
    "train",
]

logger = logging.getLogger(__name__)


@dataclass
class _Data:
    train: train_data.EpochSeededDataset
    val_accuracy: Any
    val_consistency: Any
    classes: list[str]


def _load_data(config: TrainConfig) -> _Data:
    from antialias.data import consistency_transform, eval_transform, load_image_folder

    if config.data is None and (config.train_dir is None or config.val_dir is None):
        raise ConfigError(
            "give {data} (a folder with train/ and val/) or both {train_dir} and {val_dir}"
        )
    train_dir = config.train_dir or os.path.join(str(config.data), "train")
    val_dir = config.val_dir or os.path.join(str(config.data), "val")
    for what, folder in (("training", train_dir), ("validation", val_dir)):
        if not os.path.exists(folder):
            raise FileNotFoundError(
                f"{what} folder {folder!r} does not exist; expected the ImageNet layout "
                f"DATA/train/<class>/<image> and DATA/val/<class>/<image>"
            )
    train_set, val_set = (
        load_image_folder(folder, on_corrupt=config.on_corrupt, verify=config.verify_images)
        for folder in (train_dir, val_dir)
    )
    for folder, dataset in ((train_dir, train_set), (val_dir, val_set)):
        if not dataset.classes:
            raise ValueError(
                f"{folder!r} has images but no class sub-folders; training needs labels "
                "(one sub-folder per class)"
            )
    train_data.check_same_classes(
        train_set.classes, val_set.classes, train_dir=train_dir, val_dir=val_dir
    )
    train = train_data.EpochSeededDataset(
        train_set, train_data.train_transform(config.crop_size), seed=config.seed
    )
    val_accuracy = train_data.TransformedDataset(
        val_set, eval_transform(config.val_resize, config.crop_size)
    )
    side = config.crop_size + config.max_offset
    val_consistency = train_data.TransformedDataset(val_set, consistency_transform(side, side))
    return _Data(train, val_accuracy, val_consistency, list(train_set.classes))


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


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
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    device = resolve_device(config.device, local_rank=int(os.environ.get("LOCAL_RANK", "0") or 0))
    check_backend(device)  # a forced ANTIALIAS_BACKEND that cannot run here: one line, before work
    micro_batch = validate_config(config, recipe, world, device)
    inputs = [
        ("data folder", config.data),
        ("training folder", config.train_dir),
        ("validation folder", config.val_dir),
    ]
    # What a run folder may hold, and what overwrite replaces, is the run folder's rule (run_folder).
    out = _io.check_output_path(
        config.output_dir, kind="dir", what="output_dir", inputs=inputs, overwrite=True
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


def _class_folders(config: TrainConfig) -> list[str] | None:
    """The training folder's class sub-folders, without reading an image (None: let the loader report)."""
    folder = config.train_dir or os.path.join(str(config.data), "train")
    try:
        names = sorted(
            e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith(".")
        )
    except OSError:
        return None
    return names or None


def _build(config: TrainConfig, num_classes: int, resume_path: Path | None) -> nn.Module:
    if num_classes < 1 or (config.num_classes is not None and config.num_classes < num_classes):
        raise ConfigError(
            "{num_classes} {value} is smaller than the {count} classes of the data",
            value=config.num_classes,
            count=num_classes,
        )
    # The same initial weights on every process (DDP also broadcasts rank 0's at wrap time).
    _seed_everything(config.seed)
    model = build_model(
        config.model,
        num_classes=config.num_classes or num_classes,
        filter_size=config.filter_size,
        source=config.source,
    )
    if config.init_weights is not None and resume_path is None:
        load_init_weights(model, config.init_weights, arch=config.model, new_classifier=True)
    return model


def _warn_lr_scaling(config: TrainConfig, recipe: Recipe) -> None:
    """Say that the recipe's rate was scaled to the global batch (after every check has passed, so
    that a bad option is reported alone, not after a warning about it)."""
    base = _base_recipe(config)
    if config.scale_lr and config.lr is None and recipe.batch_size != base.batch_size:
        warn_option(
            logger,
            "global batch {batch} differs from recipe {name!r}'s {base_batch}: lr scaled linearly, "
            "{base_lr:g} x {batch}/{base_batch} = {scaled:g} (give {lr}, or {scale_lr=False}, "
            "to keep the recipe's rate)",
            batch=recipe.batch_size,
            name=base.name,
            base_batch=base.batch_size,
            base_lr=base.lr,
            scaled=recipe.lr,
        )


def _train_locked(config: TrainConfig, recipe: Recipe, micro_batch: int) -> TrainResult:
    resume_path, discard = run_folder.check_output_dir(config)
    # The model and its weights are checked before the images are (a bad --model or --init-weights
    # fails in seconds, not after every header of the data set was read).
    listed = _class_folders(config)
    model = _build(config, len(listed), resume_path) if listed else None
    data = _load_data(config)
    steps_per_epoch = len(data.train) // recipe.batch_size
    if steps_per_epoch == 0:
        raise ConfigError(
            "the global batch ({batch}) is larger than the training set ({count} images); "
            "lower {batch_size}",
            batch=recipe.batch_size,
            count=len(data.train),
        )
    if model is None or listed != data.classes:
        model = _build(config, len(data.classes), resume_path)
    if int(os.environ.get("RANK", "0") or 0) == 0:
        _warn_lr_scaling(config, recipe)
    if discard and int(os.environ.get("RANK", "0") or 0) == 0:
        # Every check has passed: only now is the replaced run removed (``overwrite``).
        for path in discard:
            logger.warning(f"overwrite: removing {path}")
            path.unlink(missing_ok=True)
            path.with_name(path.name + _io.HASH_SUFFIX).unlink(missing_ok=True)

    ctx = distributed.init_distributed(config.device)
    try:
        return _run(config, recipe, ctx, model, data, micro_batch, steps_per_epoch, resume_path)
    finally:
        distributed.shutdown_distributed(ctx)


@dataclass
class _Trained:
    """What a checkpoint saves and a resume restores: the bare model, its optimiser, schedule and scaler."""

    model: nn.Module
    optimizer: Optimizer
    scheduler: LRScheduler
    scaler: torch.amp.GradScaler


def _setup(
    config: TrainConfig,
    recipe: Recipe,
    ctx: distributed.DistributedContext,
    model: nn.Module,
    steps_per_epoch: int,
) -> _Trained:
    """Place the model on the device; build its optimiser, schedule and gradient scaler."""
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
    optimizer = build_optimizer(model.parameters(), recipe, nesterov=config.nesterov)
    scheduler = build_scheduler(
        optimizer, recipe, steps_per_epoch=steps_per_epoch, warmup_start=config.warmup_start
    )
    return _Trained(
        model,
        optimizer,
        scheduler,
        torch.amp.GradScaler(ctx.device.type, enabled=config.amp == "fp16"),
    )


def _resume(
    path: Path,
    config: TrainConfig,
    recipe: Recipe,
    ctx: distributed.DistributedContext,
    data: _Data,
    t: _Trained,
    steps_per_epoch: int,
) -> tuple[int, int, float | None]:
    """Restore the checkpoint's model, optimiser, schedule, scaler and RNG states; return
    ``(epochs done, steps done, best top-1)``."""
    state = ckpt.load_checkpoint(path)
    if state.get("classes") != data.classes:
        raise ValueError(
            f"checkpoint {str(path)!r} was trained on classes {state.get('classes')!r}"
            f" but the data folders have {data.classes!r}"
        )
    run_folder.warn_config_changes(state.get("config", {}), config, recipe)
    run_folder.load_resumed_model(t.model, state, path, config)
    t.optimizer.load_state_dict(state["optimizer"])
    t.scheduler.load_state_dict(state["scheduler"])
    extend_schedule(t.scheduler, recipe, steps_per_epoch=steps_per_epoch)  # a longer run (epochs)
    if state.get("scaler"):
        t.scaler.load_state_dict(state["scaler"])
    start_epoch, step, best_top1 = state["epoch"], state["step"], state.get("best_top1")
    rng = state.get("rng") or []
    if len(rng) == ctx.world_size:
        ckpt.restore_rng_state(rng[ctx.rank])
    else:
        logger.warning(
            f"checkpoint has RNG states of {len(rng)} processes, this run has {ctx.world_size}: "
            "reseeding (data order and augmentation still match)"
        )
        _seed_everything(config.seed + ctx.rank + 7919 * start_epoch)
    logger.info(f"resumed from {path} after epoch {start_epoch} (step {step})")
    if start_epoch >= recipe.epochs:
        warn_option(
            logger,
            "the run in {out!r} has finished its {count} epochs: nothing to train (give a larger "
            "{epochs} to extend it)",
            out=config.output_dir,
            count=recipe.epochs,
        )
    return start_epoch, step, best_top1


def _open_run_folder(
    config: TrainConfig,
    recipe: Recipe,
    ctx: distributed.DistributedContext,
    data: _Data,
    start_epoch: int,
    micro_batch: int,
) -> list[dict[str, Any]]:
    """Rank 0: write config.json, trim the log to the resumed epoch; return the log so far."""
    if not ctx.is_main:
        return []
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / LOG
    history = [row for row in run_folder.read_log(log_path) if row.get("epoch", 0) <= start_epoch]
    if log_path.exists():
        # Drop rows of epochs logged after the checkpoint we resume from (a crash in between).
        _io.atomic_write_text(log_path, "".join(run_folder.json_line(row) for row in history))
    saved = {
        "recipe_resolved": dataclasses.asdict(recipe),
        "classes": data.classes,
        "world_size": ctx.world_size,
    }
    run_folder.write_json_atomic({**dataclasses.asdict(config), **saved}, out / CONFIG)
    kind = "factory" if ":" in config.model else config.source
    logger.info(
        f"training {config.model} ({kind}) on {len(data.train)} images, {len(data.classes)} classes; "
        f"{ctx.world_size} process(es) on {ctx.device}; global batch {recipe.batch_size} = {ctx.world_size} x "
        f"{config.accum_steps} x {micro_batch}; recipe {recipe.name}: lr {recipe.lr}, {recipe.schedule}, {recipe.epochs} epochs"
    )
    return history


def _save_epoch(
    config: TrainConfig,
    recipe: Recipe,
    ctx: distributed.DistributedContext,
    data: _Data,
    t: _Trained,
    row: dict[str, Any],
    best_top1: float | None,
    is_best: bool,
) -> None:
    """Write the epoch's checkpoint (rank 0), with the RNG states of every process."""
    rng_states = distributed.all_gather_objects(ctx, ckpt.capture_rng_state())
    if not ctx.is_main:
        return
    state = {
        "format": ckpt.CHECKPOINT_FORMAT,
        "epoch": row["epoch"],
        "step": row["step"],
        "model": t.model.state_dict(),
        "optimizer": t.optimizer.state_dict(),
        "scheduler": t.scheduler.state_dict(),
        "scaler": t.scaler.state_dict(),
        "rng": rng_states,
        "world_size": ctx.world_size,
        "best_top1": best_top1,
        "metrics": row,
        "classes": data.classes,
        "config": {**dataclasses.asdict(config), **dataclasses.asdict(recipe)},
        MODEL_META_KEY: _model_meta(config, data),
    }
    ckpt.save_checkpoint(
        state, config.output_dir, epoch=row["epoch"], is_best=is_best, save_every=config.save_every
    )


def _run(
    config: TrainConfig,
    recipe: Recipe,
    ctx: distributed.DistributedContext,
    model: nn.Module,
    data: _Data,
    micro_batch: int,
    steps_per_epoch: int,
    resume_path: Path | None,
) -> TrainResult:
    out = Path(config.output_dir)
    t = _setup(config, recipe, ctx, model, steps_per_epoch)
    bare, optimizer = t.model, t.optimizer
    # Model randomness (dropout) differs per process; data randomness does not (see data.py).
    _seed_everything(config.seed + ctx.rank)
    start_epoch, step, best_top1 = 0, 0, None
    if resume_path is not None:
        start_epoch, step, best_top1 = _resume(
            resume_path, config, recipe, ctx, data, t, steps_per_epoch
        )
    model, ddp = bare, None
    if ctx.distributed:
        device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        model = ddp = nn.parallel.DistributedDataParallel(bare, device_ids=device_ids)
    if config.compile:
        # torch.compile returns an OptimizedModule for a Module; its stub says only Callable.
        model = cast(nn.Module, torch.compile(model))
    history = _open_run_folder(config, recipe, ctx, data, start_epoch, micro_batch)
    curves = (
        run_folder.RunCurves(
            out,
            tensorboard=config.tensorboard,
            start_epoch=start_epoch,
            title=f"{config.model} ({config.source}, recipe {recipe.name})",
        )
        if ctx.is_main
        else None
    )

    sampler: DistributedSampler[int] = DistributedSampler(
        data.train,
        num_replicas=ctx.world_size,
        rank=ctx.rank,
        shuffle=True,
        seed=config.seed,
        drop_last=True,
    )
    criterion = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    val_batch = config.val_batch_size or micro_batch * config.accum_steps
    end_epoch = (
        recipe.epochs
        if config.stop_after is None
        else min(recipe.epochs, start_epoch + config.stop_after)
    )

    for epoch in range(start_epoch, end_epoch):
        sampler.set_epoch(epoch)
        data.train.set_epoch(epoch)
        loader = DataLoader(
            data.train,
            batch_size=micro_batch,
            sampler=sampler,
            drop_last=True,
            num_workers=_num_workers(config),
            pin_memory=ctx.device.type == "cuda",
            generator=epoch_generator(config.seed, epoch, ctx.rank),
        )
        lr = optimizer.param_groups[0]["lr"]
        stats = train_one_epoch(
            model,
            loader,
            optimizer,
            steps=steps_per_epoch,
            criterion=criterion,
            scheduler=t.scheduler,
            device=ctx.device,
            accum_steps=config.accum_steps,
            scaler=t.scaler,
            amp=config.amp,
            channels_last=config.channels_last,
            ddp=ddp,
            ctx=ctx,
            epoch=epoch,
            progress=f"epoch {epoch + 1}/{recipe.epochs}" if config.progress else None,
        )
        step += steps_per_epoch
        loss_sum, correct, count = distributed.all_reduce_sum(
            ctx, [stats.loss_sum, stats.correct, float(stats.count)]
        )
        metrics = evaluate(
            bare=bare, data=data, config=config, ctx=ctx, epoch=epoch, val_batch=val_batch
        )
        row = {
            "epoch": epoch + 1,
            "step": step,
            "train_loss": loss_sum / count,
            "train_top1": correct / count,
            "lr": lr,
            **metrics,
            "images_per_s": count / stats.seconds if stats.seconds > 0 else None,
            "epoch_time_s": stats.seconds,
        }
        if (
            config.on_corrupt == "skip"
        ):  # images that failed to decode and were skipped so far, this process
            folders = {
                id(d.dataset): d.dataset
                for d in (data.train, data.val_accuracy, data.val_consistency)
            }
            row["skipped_images"] = sum(  # left out by the up-front check, or failed to decode
                len(getattr(folder, "rejected", [])) + len(getattr(folder, "skipped", []))
                for folder in folders.values()
            )
        top1 = metrics["val_top1"]
        is_best = top1 is not None and (best_top1 is None or top1 > best_top1)
        best_top1 = top1 if is_best else best_top1
        if ctx.is_main:
            history.append(row)
            run_folder.append_log(out / LOG, row)
        if curves is not None:
            curves.epoch(row, history)
        _save_epoch(config, recipe, ctx, data, t, row, best_top1, is_best)
        if ctx.is_main:
            logger.info(
                f"epoch {epoch + 1}/{recipe.epochs}: loss {row['train_loss']:.4f}, lr {lr:.4g}, val top-1 "
                f"{_pct(top1)}, consistency {_pct(metrics['consistency'])}, {row['images_per_s'] or 0.0:.1f} img/s"
            )
        distributed.barrier(ctx)

    if curves is not None:
        curves.close()
    completed = max(start_epoch, end_epoch)
    weights = None
    if completed >= recipe.epochs:
        weights = str(out / ckpt.WEIGHTS)
        if ctx.is_main:
            ckpt.save_weights(bare, weights, meta=_model_meta(config, data))
        distributed.barrier(ctx)
    if ctx.is_main and not history:
        history = run_folder.read_log(out / LOG)
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
