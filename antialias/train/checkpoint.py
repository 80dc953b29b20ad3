"""Training checkpoints: atomic writes, retention (latest, best, every N epochs) and weight export.

A checkpoint is a dictionary saved with :func:`torch.save` that holds everything needed to continue a
run exactly: the model, optimiser, scheduler and gradient-scaler states, the RNG states of every process,
the number of finished epochs and optimiser steps, the resolved configuration and the last metrics.
Only tensors and plain Python values go in, so :func:`load_checkpoint` reads it back with
``weights_only=True`` (no arbitrary code runs on load).

Convention:
    Every file is written to a temporary file in the same folder, flushed and fsync-ed, then renamed
    over the target with :func:`os.replace` and the folder is fsync-ed. A process killed at any moment
    (even with SIGKILL, which no handler can catch) therefore leaves either the previous complete file
    or the new complete file, never a truncated one. The leftover temporary file of a killed writer is
    removed by the next save into that folder.
"""

from __future__ import annotations

import logging
import os
import random
import re
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

# One reader of every checkpoint layout (plain, {'state_dict'|'model': ...}, DDP/compile prefixes): the zoo's.
from antialias.models._load import extract_state_dict as extract_state_dict

__all__ = [
    "BEST",
    "LATEST",
    "WEIGHTS",
    "atomic_save",
    "capture_rng_state",
    "epoch_checkpoint_name",
    "extract_state_dict",
    "list_checkpoints",
    "load_checkpoint",
    "restore_rng_state",
    "save_checkpoint",
    "save_weights",
]

logger = logging.getLogger(__name__)

LATEST = "checkpoint_latest.pt"
"""File name of the checkpoint written after every epoch."""
BEST = "checkpoint_best.pt"
"""File name of the checkpoint of the epoch with the best validation top-1 so far."""
WEIGHTS = "weights.pt"
"""File name of the final weights: a plain state dict with torchvision's key names."""

CHECKPOINT_FORMAT = "antialias.train.checkpoint/1"

_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{32}\.tmp$")
_EPOCH_RE = re.compile(r"^checkpoint_epoch(\d+)\.pt$")


def epoch_checkpoint_name(epoch: int) -> str:
    """File name of the checkpoint kept for ``epoch`` (1-based): ``checkpoint_epoch0030.pt``."""
    return f"checkpoint_epoch{epoch:04d}.pt"


def _fsync_dir(directory: Path) -> None:
    # The rename is durable only once the folder's entry is on disk. Windows cannot open a folder.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _remove_stale_temps(directory: Path) -> None:
    """Delete temporary files left by writers that were killed (their process no longer exists)."""
    if not directory.is_dir():
        return
    for entry in directory.iterdir():
        match = _TEMP_RE.match(entry.name)
        if match and not _pid_alive(int(match["pid"])):
            logger.info(f"removing {entry}, left by a writer that was killed")
            entry.unlink(missing_ok=True)


def atomic_save(obj: Any, path: str | os.PathLike[str]) -> Path:
    """Save ``obj`` with :func:`torch.save` so that ``path`` is always either the old or the new file.

    Args:
        obj: anything :func:`torch.save` accepts.
        path: the target file; its folder must exist.

    Returns:
        The target path.
    """
    path = Path(path)
    _remove_stale_temps(path.parent)
    tmp = _temp_path(path)
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _atomic_copy(src: Path, dst: Path) -> None:
    """Make ``dst`` a complete copy of ``src`` atomically; a hard link when the file system allows."""
    tmp = _temp_path(dst)
    try:
        try:
            # A hard link costs no space or time, and replacing ``src`` later (os.replace gives it a
            # new inode) leaves ``dst`` pointing at the old content, which is what we want.
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(dst.parent)


def save_checkpoint(
    state: Mapping[str, Any],
    directory: str | os.PathLike[str],
    *,
    epoch: int,
    is_best: bool = False,
    save_every: int = 0,
) -> list[Path]:
    """Write the checkpoint of a finished ``epoch`` and apply the retention rules.

    ``checkpoint_latest.pt`` is always (re)written; ``checkpoint_best.pt`` when ``is_best``; and
    ``checkpoint_epochNNNN.pt`` when ``save_every > 0`` and ``epoch`` is a multiple of it. Each file is
    written atomically (see the module's Convention).

    Args:
        state: the checkpoint dictionary.
        directory: the run's output folder (created if missing).
        epoch: number of finished epochs (1-based).
        is_best: this epoch has the best validation metric so far.
        save_every: keep a copy every that many epochs; 0 keeps none.

    Returns:
        The files written, latest first.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    latest = atomic_save(dict(state), directory / LATEST)
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
    names = {LATEST, BEST}
    return sorted(p for p in directory.iterdir() if p.name in names or _EPOCH_RE.match(p.name))


def load_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (safely: ``weights_only=True``).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not a readable training checkpoint (the message names it).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise ValueError(f"checkpoint {str(path)!r} cannot be read: {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{str(path)!r} is not an antialias training checkpoint (expected a dict with "
            f"format={CHECKPOINT_FORMAT!r}); to start from weights only, pass it as init weights"
        )
    return state


def save_weights(model: torch.nn.Module, path: str | os.PathLike[str]) -> Path:
    """Save ``model``'s weights atomically as a plain state dict (CPU tensors, torchvision names).

    The file loads with ``model.load_state_dict(torch.load(path))`` and with the zoo's builders
    (``antialias.models.get_model(name, weights=path)``).
    """
    state_dict = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return atomic_save(extract_state_dict(state_dict, source="the model"), path)


# --- RNG states ---------------------------------------------------------------------------------


def capture_rng_state() -> dict[str, Any]:
    """The RNG states of this process: torch (CPU and the current CUDA device), NumPy and Python.

    Everything is a tensor or a plain Python value, so the result loads with ``weights_only=True``.
    """
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    try:
        import numpy as np
    except ImportError:  # numpy is optional for torch
        return state
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
        import numpy as np

        np_state = state["numpy"]
        np.random.set_state(
            (
                np_state["kind"],
                np_state["keys"].numpy().astype(np.uint32),
                np_state["pos"],
                np_state["has_gauss"],
                np_state["cached_gaussian"],
            )
        )
