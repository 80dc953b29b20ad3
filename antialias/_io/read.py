"""Reading files without running code from them, after checking their integrity.

- :func:`safe_torch_load` reads PyTorch files with ``torch.load(weights_only=True)`` (only tensors and
  plain Python values; a pickle that would call a function is refused, and the message says so), after
  :func:`verify_file` has checked the file: the CRC-32 of every member of a zip-format file, and the
  SHA-256 recorded beside it (``<file>.sha256``) when there is one.
- :func:`load_exported_program` reads ``torch.export`` files (``.pt2``) with every unpickling forced to
  ``weights_only`` and refuses archives that hold pickled Python objects.
- :func:`restricted_pickle_load` unpickles plain data (CIFAR-10's batches) and nothing else.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pickle
import re
import types
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import torch

__all__ = [
    "HASH_SUFFIX",
    "CheckpointError",
    "UnsafeFileError",
    "hash_record_path",
    "load_exported_program",
    "read_hash_record",
    "restricted_pickle_load",
    "restricted_unpickling",
    "safe_torch_load",
    "sha256_file",
    "verify_file",
]

logger = logging.getLogger(__name__)

HASH_SUFFIX = ".sha256"
"""Suffix of the file that records another file's SHA-256 (``sha256sum`` format)."""


class CheckpointError(ValueError):
    """A file of weights or a checkpoint that cannot be used: refused, damaged, wrong hash, or not fitting."""


class UnsafeFileError(CheckpointError):
    """A file refused because loading it would run code (a pickle that calls a function)."""


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file's content, as 64 hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def hash_record_path(path: str | os.PathLike[str]) -> Path:
    """Where the SHA-256 of ``path`` is recorded: ``<path>.sha256``."""
    path = Path(path)
    return path.with_name(path.name + HASH_SUFFIX)


def read_hash_record(path: str | os.PathLike[str]) -> str | None:
    """The SHA-256 recorded beside ``path``, or None when there is no (readable) record."""
    record = hash_record_path(Path(path))
    try:
        text = record.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    digest = text.split()[0].lower() if text else ""
    return digest if re.fullmatch(r"[0-9a-f]{64}", digest) else None


def verify_file(
    path: str | os.PathLike[str], *, expected_sha256: str | None = None, what: str = "file"
) -> None:
    """Check that ``path`` is intact before it is loaded.

    Three checks, each when it applies: its SHA-256 starts with ``expected_sha256`` (a prefix or
    the full digest); it equals the digest recorded beside it (``<path>.sha256``); and, for a zip
    archive (torch's default format), every member's CRC-32 matches its data.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: the file is damaged or not the expected one (the message names it and says
            which check failed).
    """
    path = Path(path)
    if not path.is_file():
        if path.exists():
            raise CheckpointError(
                f"{what} {str(path)!r} is a folder, not a file; expected a file of weights"
            )
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist")
    if path.stat().st_size == 0:
        raise CheckpointError(
            f"{what} {str(path)!r} is damaged (truncated or corrupt): the file is empty (0 bytes)"
        )
    recorded = read_hash_record(path)
    if expected_sha256 is not None or recorded is not None:
        digest = sha256_file(path)
        if expected_sha256 is not None and not digest.startswith(expected_sha256.lower()):
            raise CheckpointError(
                f"{what} {str(path)!r} is not the expected file: its SHA-256 {digest[:16]}... does not start "
                f"with {expected_sha256!r}"
            )
        if recorded is not None and digest != recorded:
            raise CheckpointError(
                f"{what} {str(path)!r} is damaged: its SHA-256 {digest[:16]}... differs from the one recorded "
                f"in {str(hash_record_path(path))!r} when it was written ({recorded[:16]}...)"
            )
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
            raise CheckpointError(
                f"{what} {str(path)!r} is damaged: not a readable zip archive ({exc})"
            ) from None
        if bad is not None:
            raise CheckpointError(
                f"{what} {str(path)!r} is damaged: the CRC-32 of its member {bad!r} does not match its data"
            )


def _unpickling_reason(text: str) -> str:
    found = re.search(r"WeightsUnpickler error:\s*([^\n]+)", text)
    reason = found.group(1) if found else (text.strip().splitlines() or [""])[0]
    return reason.split(". Please")[0].strip()


def safe_torch_load(
    path: str | os.PathLike[str],
    *,
    what: str = "file",
    map_location: str | torch.device = "cpu",
    expected_sha256: str | None = None,
    mmap: bool | None = None,
) -> Any:
    """Read a PyTorch file without running code from it, after checking its integrity.

    The file is verified by :func:`verify_file`, then read with ``torch.load(weights_only=True)``:
    only tensors and plain Python values come back; a pickle that would call any other function is
    refused (:class:`UnsafeFileError`), never executed.

    Args:
        path: the file (zip or legacy torch format).
        what: what the file is, for messages (``"weights"``, ``"checkpoint"``).
        map_location: where tensors are put.
        expected_sha256: a SHA-256 (or prefix) the file must have.
        mmap: memory-map a zip-format file (default: yes for zip files, which the legacy format
            cannot be).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        UnsafeFileError: the file holds Python objects whose unpickling would run code.
        CheckpointError: the file is damaged, not the expected one, or not a PyTorch file.
    """
    path = Path(path)
    verify_file(path, expected_sha256=expected_sha256, what=what)
    if mmap is None:
        mmap = zipfile.is_zipfile(path)
    with path.open("rb") as f:
        head = f.read(2)
    if head != b"PK" and head[:1] != b"\x80":  # torch.save writes a zip archive, or a pickle
        raise CheckpointError(
            f"cannot read {what} {str(path)!r}: it is neither a zip archive nor a pickle (not a "
            "PyTorch file, or truncated or corrupt); expected a file written by torch.save"
        )
    try:
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        reason = _unpickling_reason(text)
        if "Unsupported global" in text or "not an allowed global" in text:
            raise UnsafeFileError(
                f"refusing to load {what} {str(path)!r}: it holds Python objects whose unpickling could run code "
                f"({reason}); nothing from it was run. Expected a file of tensors (a state dict); load only files "
                "you trust, and re-save them with torch.save(model.state_dict(), path)"
            ) from None
        logger.debug(f"torch.load({str(path)!r}) failed: {reason}")
        raise CheckpointError(
            f"cannot read {what} {str(path)!r}: the file is truncated or corrupt, or not a PyTorch "
            "file of tensors"
        ) from None
    except (
        RuntimeError,
        EOFError,
        zipfile.BadZipFile,
        ValueError,
        KeyError,
        IndexError,
        UnicodeDecodeError,
        OSError,
    ):
        # torch's own message ("pop from empty list") means nothing to the user: -v logs it.
        logger.debug(f"torch.load({str(path)!r}) failed", exc_info=True)
        raise CheckpointError(
            f"cannot read {what} {str(path)!r}: the file is truncated or corrupt, or not a PyTorch "
            "file"
        ) from None


# The archive members of torch.export files that hold pickled Python objects (not tensors).
_PT2_OBJECT_PREFIXES = ("custom_obj_", "opaque_obj_")


@contextlib.contextmanager
def _weights_only_everywhere() -> Iterator[None]:
    # torch.export.load unpickles sample inputs, pickled weights and constants with
    # weights_only=False; torch's own switch forces weights_only=True in every torch.load call.
    key = "TORCH_FORCE_WEIGHTS_ONLY_LOAD"
    before = os.environ.get(key)
    os.environ[key] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before


def load_exported_program(path: str | os.PathLike[str]) -> Any:
    """Read a ``torch.export`` file (``.pt2``) without unpickling arbitrary Python objects.

    The archive's CRCs are checked; an archive that holds pickled Python objects (custom or opaque
    objects, or the pre-2.7 format) is refused with the reason; everything else is read with every
    unpickling forced to ``weights_only=True``.

    Returns:
        The ``torch.export.ExportedProgram``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        UnsafeFileError: the archive holds Python objects whose unpickling could run code.
        CheckpointError: not a torch.export archive, or damaged.
    """
    path = Path(path)
    verify_file(path, what="torch.export file")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"{str(path)!r} is not a torch.export file (.pt2 files are zip archives)"
        )
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    if not any(name.endswith("archive_format") for name in names):
        raise CheckpointError(
            f"{str(path)!r} is not a torch.export file of the current format (no 'archive_format' member); "
            "older .pt2 files are pickles and are refused: export the model again with torch.export.save"
        )
    objects = [n for n in names if n.rpartition("/")[2].startswith(_PT2_OBJECT_PREFIXES)]
    if objects:
        raise UnsafeFileError(
            f"refusing to load torch.export file {str(path)!r}: it holds pickled Python objects "
            f"({', '.join(objects[:3])}) whose loading could run code; nothing from it was run"
        )
    try:
        with _weights_only_everywhere():
            return torch.export.load(path)
    except pickle.UnpicklingError as exc:
        raise UnsafeFileError(
            f"refusing to load torch.export file {str(path)!r}: part of it holds Python objects whose unpickling "
            f"could run code ({_unpickling_reason(str(exc))}); nothing from it was run"
        ) from None
    except Exception as exc:  # torch.export raises many types for foreign files
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(
            f"{str(path)!r} is not a readable torch.export file ({first})"
        ) from None


# Globals a pickle of plain data (dicts, lists, bytes, numpy arrays) may name: CIFAR-10's batches.
_DATA_PICKLE_GLOBALS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }
)


class _DataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _DATA_PICKLE_GLOBALS:
            return super().find_class(module, name)
        raise UnsafeFileError(
            f"refusing to unpickle {module}.{name}: a data file may hold only plain values and numpy arrays "
            "(loading this one could run code); nothing from it was run"
        )


def restricted_pickle_load(file: IO[bytes], *, encoding: str = "ASCII", **_: Any) -> Any:
    """``pickle.load`` that builds only plain values and numpy arrays; any other global is refused.

    Raises:
        UnsafeFileError: the pickle names a function or class outside that list.
    """
    return _DataUnpickler(file, encoding=encoding).load()


@contextlib.contextmanager
def restricted_unpickling(module: Any) -> Iterator[None]:
    """Within the block, ``module``'s ``pickle.load`` is :func:`restricted_pickle_load`.

    For third-party readers of pickled data sets (torchvision's CIFAR-10 reads its batches with
    ``pickle.load``): a planted batch cannot run code.
    """
    original = module.pickle
    module.pickle = types.SimpleNamespace(
        load=restricted_pickle_load, loads=None, UnpicklingError=pickle.UnpicklingError
    )
    try:
        yield
    finally:
        module.pickle = original
