"""The run's folder: its log, its configuration file, its curves (:class:`RunCurves`), which
checkpoint a run resumes from, and what a resumed run may not change.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any

from torch import nn

from antialias import _io
from antialias.train import checkpoint as ckpt
from antialias.train.config import (
    _TRAJECTORY_FIELDS,
    CONFIG,
    CURVES,
    LOG,
    TENSORBOARD,
    ConfigError,
    TrainConfig,
    installed,
    render_option_message,
    warn_option,
)
from antialias.train.recipes import Recipe

__all__ = [
    "RunCurves",
    "append_log",
    "check_output_dir",
    "json_line",
    "load_resumed_model",
    "logged_epoch",
    "read_log",
    "run_files",
    "warn_config_changes",
    "write_json_atomic",
]

logger = logging.getLogger(__name__)


def write_json_atomic(obj: Any, path: Path) -> None:
    _io.atomic_write_text(
        path, json.dumps(_io.json_safe(obj), indent=2, default=str, allow_nan=False) + "\n"
    )


def json_line(row: dict[str, Any]) -> str:
    # Strict JSON: a non-finite number is written as null, never as the bare NaN that JSON lacks.
    return json.dumps(_io.json_safe(row), allow_nan=False) + "\n"


def read_log(path: Path) -> list[dict[str, Any]]:
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
            raise ValueError(
                f"{str(path)!r} line {number} is not valid JSON; the run's log is damaged"
            ) from None
        if isinstance(row, dict):
            rows.append(row)
    return rows


def append_log(path: Path, row: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json_line(row))
        f.flush()
        os.fsync(f.fileno())


def run_files(out: Path) -> list[Path]:
    """The files of a run in ``out`` (an empty log is what a run that failed in its first epoch leaves)."""
    return ckpt.list_checkpoints(out) + [
        p for p in (out / LOG, out / ckpt.WEIGHTS) if p.is_file() and p.stat().st_size > 0
    ]


def logged_epoch(out: Path) -> int:
    epochs = [row.get("epoch", 0) for row in read_log(out / LOG)]
    return max([e for e in epochs if isinstance(e, int)], default=0)


def check_output_dir(config: TrainConfig) -> tuple[Path | None, list[Path]]:
    """The checkpoint to resume from (or None), and the files ``overwrite`` replaces.

    Refuses a folder holding another run or a finished one unless ``resume`` continues that
    folder's own run or ``overwrite`` is set, and resuming from a checkpoint older than the run's
    last epoch without ``overwrite``.
    """
    out = Path(config.output_dir)
    existing = run_files(out)
    everything = existing + [
        p for p in (out / CONFIG, out / LOG) if p.exists() and p not in existing
    ]
    if config.resume is None:
        if existing and not config.overwrite:
            raise ConfigError(
                "{output_dir} {out!r} already holds a run ({file}); pass {resume} to continue it, "
                "{overwrite} to replace it, or choose another {output_dir} (nothing was written)",
                out=str(out),
                file=existing[0].name,
            )
        return None, everything if config.overwrite else []
    if config.resume == "latest":
        try:
            path, state, damaged = ckpt.find_resumable(out)
        except FileNotFoundError:
            raise FileNotFoundError(
                render_option_message(
                    "checkpoint to resume {latest!r} does not exist: {output_dir} {out!r} holds no "
                    "checkpoint; give the checkpoint to {resume} from, or leave {resume} out to start "
                    "a new run",
                    {"latest": str(out / ckpt.LATEST), "out": str(out)},
                )
            ) from None
        for bad, reason in damaged:
            logger.warning(
                f"checkpoint {bad} is damaged and is passed over ({reason}); resuming from {path.name}, "
                f"the newest intact checkpoint (epoch {state.get('epoch')})"
            )
        return path, []
    path = Path(config.resume)
    if path.is_dir():
        raise ConfigError(
            "{resume} {value!r} is a folder; expected a checkpoint file (or 'latest')",
            value=config.resume,
        )
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint to resume {str(path)!r} does not exist")
    own = out.is_dir() and path.parent.resolve() == out.resolve()
    if not own:
        if existing and not config.overwrite:
            raise ConfigError(
                "{output_dir} {out!r} already holds another run ({file}); continuing {path!r} there "
                "would overwrite it: choose an empty {output_dir}, or pass {overwrite} to replace that "
                "run (nothing was written)",
                out=str(out),
                file=existing[0].name,
                path=str(path),
            )
        return path, everything if config.overwrite else []
    epoch = int(ckpt.load_checkpoint(path).get("epoch", 0))
    reached = logged_epoch(out)
    if epoch < reached:
        if not config.overwrite:
            raise ConfigError(
                "{path!r} holds epoch {epoch}, but the run in {out!r} has reached epoch {reached}: "
                "resuming from it would discard epochs {first}-{reached}; pass {overwrite} to do "
                "that, or give another {output_dir} to continue in a new folder (nothing was written)",
                path=str(path),
                epoch=epoch,
                out=str(out),
                reached=reached,
                first=epoch + 1,
            )
        # The discarded epochs' checkpoints must not survive as "newer" ones.
        later = [p for p in ckpt.list_checkpoints(out) if p.resolve() != path.resolve()]
        return path, [
            p for p in later if p.name in (ckpt.LATEST, ckpt.BEST) or ckpt._epoch_of(p) > epoch
        ]
    return path, []


def warn_config_changes(saved: dict[str, Any], config: TrainConfig, recipe: Recipe) -> None:
    current = {**dataclasses.asdict(config), **dataclasses.asdict(recipe)}
    for name in _TRAJECTORY_FIELDS:
        before, now = saved.get(name), current.get(name)
        if name in saved and before != now:
            warn_option(
                logger,
                f"resuming with {{{name}}}={{now!r}} (the checkpoint used {{before!r}}): "
                "the run will not match an uninterrupted one",
                now=now,
                before=before,
            )


def load_resumed_model(
    model: nn.Module, state: dict[str, Any], path: Path, config: TrainConfig
) -> None:
    """Load the checkpoint's weights strictly, or say which model the checkpoint holds (one line)."""
    from antialias.models import state_dict_mismatch

    missing, unexpected, shapes = state_dict_mismatch(model.state_dict(), state["model"])
    if missing or unexpected or shapes:
        saved = (state.get("config") or {}).get("model")
        raise ValueError(
            f"checkpoint {str(path)!r} holds a model that does not fit {config.model!r}"
            + (
                f" (it was trained as {saved!r}; resume with that model)"
                if saved and saved != config.model
                else ""
            )
            + f": {len(missing)} missing keys, {len(unexpected)} unexpected keys, {len(shapes)} shape mismatches"
            + (
                f", e.g. {shapes[0][0]}: checkpoint {shapes[0][1]} vs model {shapes[0][2]}"
                if shapes
                else ""
            )
        )
    model.load_state_dict(state["model"], strict=True)


# The log's keys that TensorBoard shows, under the same names (fractions, as in log.jsonl).
_SCALARS = (
    "train_loss",
    "train_top1",
    "val_top1",
    "val_top5",
    "consistency",
    "lr",
    "images_per_s",
)


class RunCurves:
    """The curves of a run, written by rank 0 after every epoch: ``curves.png`` (loss, top-1 and
    consistency per epoch; needs matplotlib) and TensorBoard event files in ``tensorboard/``.

    Args:
        output_dir: the run's folder.
        tensorboard: write TensorBoard event files: ``None`` when the ``tensorboard`` package is
            installed, True always (:func:`~antialias.train.config.validate_config` has checked it
            is), False never.
        start_epoch: the epochs already done (a resumed run): TensorBoard drops the events of
            later epochs that an earlier invocation logged past the checkpoint.
        title: the figure's title.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike[str],
        *,
        tensorboard: bool | None,
        start_epoch: int,
        title: str,
    ) -> None:
        out = Path(output_dir)
        self.png: Path | None = out / CURVES
        self.title = title
        if not installed("matplotlib"):
            logger.info(
                f"{CURVES} is not written: it needs matplotlib (pip install 'antialias[plots]')"
            )
            self.png = None
        self.writer: Any = None
        if tensorboard is None:
            tensorboard = installed("tensorboard")
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(out / TENSORBOARD), purge_step=start_epoch + 1)

    def epoch(self, row: dict[str, Any], history: list[dict[str, Any]]) -> None:
        """Add the epoch's ``row`` (a line of the log) to the event file; redraw the PNG from
        ``history`` (every epoch so far), atomically."""
        if self.writer is not None:
            for key in _SCALARS:
                if row.get(key) is not None:
                    self.writer.add_scalar(key, row[key], row["epoch"])
            self.writer.flush()
        if self.png is not None:
            from antialias.metrics.plots import plot_training_curves

            try:
                plot_training_curves(history, self.png, title=self.title)
            except (OSError, ValueError, RuntimeError) as exc:  # a plot never stops a run
                logger.warning(f"{CURVES} not updated: {exc}")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
