"""Training checkpoints: atomic writes, retention (latest, best, every N epochs) and weight export.

A checkpoint is a dictionary saved with :func:`torch.save` that holds everything needed to continue a
run exactly: the model, optimiser, scheduler and gradient-scaler states, the RNG states of every process,
the number of finished epochs and optimiser steps, the resolved configuration and the last metrics.
Only tensors and plain Python values go in, so :func:`load_checkpoint` reads it back with
``weights_only=True`` (no arbitrary code runs on load).

Convention:
    Every file is written atomically (a temporary file, fsync-ed, renamed over the target): a process
    killed at any moment, even by SIGKILL, leaves the previous complete file or the new one. Each
    checkpoint is an independent file (never a hard link: damage to one cannot reach the others) with
    its SHA-256 beside it (``<name>.sha256``), verified with the zip CRCs on load; :func:`find_resumable`
    falls back to the newest intact checkpoint of a folder, naming the damaged ones.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from antialias import _io

# atomic_save: torch.save so that the file is always the old one or the new one, never half written.
from antialias._io import CheckpointError, atomic_save

# One reader of every checkpoint layout (plain, {'state_dict'|'model': ...}, DDP/compile prefixes): the zoo's.
from antialias.models import extract_state_dict as extract_state_dict

__all__ = [
    "BEST",
    "CheckpointError",
    "LATEST",
    "WEIGHTS",
    "atomic_save",
    "capture_rng_state",
    "epoch_checkpoint_name",
    "extract_state_dict",
    "find_resumable",
    "list_checkpoints",
    "load_checkpoint",
    "restore_rng_state",
    "save_checkpoint",
    "save_weights",
]

LATEST = "checkpoint_latest.pt"
"""File name of the checkpoint written after every epoch."""
BEST = "checkpoint_best.pt"
"""File name of the checkpoint of the epoch with the best validation top-1 so far."""
WEIGHTS = "weights.pt"
"""File name of the final weights: a plain state dict with torchvision's key names."""

CHECKPOINT_FORMAT = "antialias.train.checkpoint/1"

_EPOCH_RE = re.compile(r"^checkpoint_epoch(\d+)\.pt$")


def epoch_checkpoint_name(epoch: int) -> str:
    """File name of the checkpoint kept for ``epoch`` (1-based): ``checkpoint_epoch0030.pt``."""
    return f"checkpoint_epoch{epoch:04d}.pt"


def _atomic_copy(src: Path, dst: Path) -> None:
    """Make ``dst`` an independent, complete copy of ``src`` (and of its hash record), atomically.

    A copy, not a hard link: a link shares the data, so truncating or corrupting one name in place
    would damage every kept checkpoint at once.
    """
    digest = _io.read_hash_record(src)
    (dst.with_name(dst.name + _io.HASH_SUFFIX)).unlink(missing_ok=True)
    with open(src, "rb") as f:
        _io.atomic_write(dst, lambda out: shutil.copyfileobj(f, out, 1 << 20))
    if digest is not None:
        _io.write_hash_record(dst, digest)


def save_checkpoint(
    state: Mapping[str, Any],
    directory: str | os.PathLike[str],
    *,
    epoch: int,
    is_best: bool = False,
    save_every: int = 0,
) -> list[Path]:
    """Write the checkpoint ``state`` of a finished ``epoch`` (1-based) into ``directory`` (created if missing).

    ``checkpoint_latest.pt`` is always (re)written; ``checkpoint_best.pt`` when ``is_best``; and
    ``checkpoint_epochNNNN.pt`` when ``save_every > 0`` and ``epoch`` is a multiple of it. Each file is
    written atomically (see the module's Convention). Returns the files written, latest first.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    latest = atomic_save(dict(state), directory / LATEST, record_hash=True)
    written = [latest]
    if is_best:
        _atomic_copy(latest, directory / BEST)
        written.append(directory / BEST)
    if save_every > 0 and epoch % save_every == 0:
        kept = directory / epoch_checkpoint_name(epoch)
        _atomic_copy(latest, kept)
        written.append(kept)
    return written


def list_checkpoints(directory: str | os.PathLike[str]) -> list[Path]:
    """Checkpoint files of a run folder (latest, best and per-epoch ones), sorted by name."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(
        p for p in directory.iterdir() if p.name in (LATEST, BEST) or _EPOCH_RE.match(p.name)
    )


def load_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`, safely.

    The file is verified first (its recorded SHA-256 and zip CRCs), then read with
    ``weights_only=True`` (no code from the file runs).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: (a ``ValueError``) the file is damaged, refused, or not a training
            checkpoint; the message names it.
    """
    path = Path(path)
    state = _io.safe_torch_load(path, what="checkpoint", map_location=map_location, mmap=False)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{str(path)!r} is not an antialias training checkpoint (expected a dict with "
            f"format={CHECKPOINT_FORMAT!r}); to start from weights only, pass it as init weights"
        )
    return state


def find_resumable(
    directory: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> tuple[Path, dict[str, Any], list[tuple[Path, str]]]:
    """The newest intact checkpoint of a run folder, with the damaged ones that were passed over.

    ``checkpoint_latest.pt`` is the newest; when it is damaged (or missing), the per-epoch and best
    checkpoints are tried, the highest epoch first.

    Returns:
        ``(path, state, damaged)``: the checkpoint chosen, its content, and ``(file, reason)`` of
        every damaged checkpoint found newer than it.

    Raises:
        FileNotFoundError: the folder holds no checkpoint.
        CheckpointError: every checkpoint is damaged (the message names each one and why).
    """
    directory = Path(directory)
    damaged: list[tuple[Path, str]] = []

    def attempt(path: Path) -> dict[str, Any] | None:
        try:
            return load_checkpoint(path, map_location)
        except (CheckpointError, OSError) as exc:
            damaged.append((path, str(exc)))
            return None

    latest = directory / LATEST
    if latest.exists():
        state = attempt(latest)
        if state is not None:
            return latest, state, damaged
    epochs = sorted(
        (p for p in list_checkpoints(directory) if _EPOCH_RE.match(p.name)),
        key=_epoch_of,
        reverse=True,
    )
    chosen = next(((path, state) for path in epochs if (state := attempt(path)) is not None), None)
    best = directory / BEST
    if best.exists():
        state = attempt(best)
        if state is not None and (
            chosen is None or state.get("epoch", 0) > chosen[1].get("epoch", 0)
        ):
            chosen = (best, state)
    if chosen is None:
        if not damaged:
            raise FileNotFoundError(
                f"run folder {str(directory)!r} holds no checkpoint to resume from"
            )
        listing = "; ".join(f"{p.name}: {reason}" for p, reason in damaged)
        raise CheckpointError(
            f"no intact checkpoint to resume from in {str(directory)!r}: {listing}"
        )
    newer = [
        (p, r) for p, r in damaged if p.name == LATEST or _epoch_of(p) > chosen[1].get("epoch", 0)
    ]
    return chosen[0], chosen[1], newer


def _epoch_of(path: Path) -> int:
    match = _EPOCH_RE.match(path.name)
    return int(match.group(1)) if match else 0


def save_weights(
    model: torch.nn.Module, path: str | os.PathLike[str], *, meta: Mapping[str, Any] | None = None
) -> Path:
    """Save ``model``'s weights atomically (CPU tensors, torchvision names).

    Without ``meta`` the file is a plain state dict; with it, ``{"state_dict": ..., "antialias":
    meta}`` (the model's description: architecture, class count, filter). Either loads with the
    zoo (``antialias.models.get_model(name, weights=path)``, which reads ``meta``) and into any
    model with ``model.load_state_dict(torch.load(path, weights_only=True)["state_dict"])``.
    """
    state_dict = extract_state_dict(
        {k: v.detach().cpu() for k, v in model.state_dict().items()}, source="the model"
    )
    obj: Any = state_dict if meta is None else {"state_dict": state_dict, "antialias": dict(meta)}
    return atomic_save(obj, path, record_hash=True)


def capture_rng_state() -> dict[str, Any]:
    """The RNG states of this process: torch (CPU and the current CUDA device), NumPy and Python.

    Everything is a tensor or a plain Python value, so the result loads with ``weights_only=True``.
    """
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state["numpy"] = {
        "kind": str(kind),
        "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached_gaussian": float(cached),
    }
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Restore the RNG states captured by :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"])
    python_state = state["python"]
    # A round trip through torch.save may turn the inner tuple into a list.
    random.setstate((python_state[0], tuple(python_state[1]), python_state[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
    if "numpy" in state:
        saved = state["numpy"]
        keys = saved["keys"].numpy().astype(np.uint32)
        np.random.set_state(
            (saved["kind"], keys, saved["pos"], saved["has_gauss"], saved["cached_gaussian"])
        )
