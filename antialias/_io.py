"""Safe reading and durable writing of files: the one place where the library touches the disk.

Everything that loads a file of weights or a checkpoint, writes a result, or claims a run folder
goes through these functions, so the promises below hold everywhere:

- **No code from a file.** :func:`safe_torch_load` reads PyTorch files with
  ``torch.load(weights_only=True)`` (only tensors and plain Python values; a pickle that would call
  a function is refused, and the message says so), after checking the file's integrity (the CRC-32
  of every member of a zip-format file, and the SHA-256 recorded beside it when there is one).
  :func:`load_exported_program` reads ``torch.export`` files (``.pt2``) with every unpickling
  forced to ``weights_only`` and refuses archives that hold pickled Python objects.
- **Atomic writes.** :func:`atomic_write` writes to a temporary file in the target's folder,
  flushes and fsyncs it, renames it over the target and fsyncs the folder: a crash at any moment
  leaves the old complete file or the new complete file, never a truncated one.
- **Recorded hashes.** :func:`write_hash_record` stores a file's SHA-256 beside it
  (``<file>.sha256``, the format of ``sha256sum``); :func:`verify_file` checks it.
- **One run per folder.** :class:`RunLock` holds an exclusive lock on a run folder for the life of
  the run; a second run on the same folder stops at once, naming the holder's pid and host.
- **Outputs checked before any work.** :func:`check_output_path` refuses an output that is a
  folder where a file is expected (or the reverse), cannot be written, or is one of the inputs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import pickle
import re
import socket
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Literal, cast

import torch

__all__ = [
    "HASH_SUFFIX",
    "CheckpointError",
    "RunLock",
    "RunLockedError",
    "UnsafeFileError",
    "atomic_save",
    "atomic_write",
    "atomic_write_text",
    "check_output_path",
    "fsync_dir",
    "json_safe",
    "load_exported_program",
    "read_hash_record",
    "restricted_pickle_load",
    "restricted_unpickling",
    "remove_stale_temps",
    "safe_torch_load",
    "sha256_file",
    "verify_file",
    "write_hash_record",
]

logger = logging.getLogger(__name__)

HASH_SUFFIX = ".sha256"
"""Suffix of the file that records another file's SHA-256 (``sha256sum`` format)."""

_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{32}\.tmp$")


class CheckpointError(ValueError):
    """A file of weights or a checkpoint that cannot be used: refused, damaged, wrong hash, or not fitting."""


class UnsafeFileError(CheckpointError):
    """A file refused because loading it would run code (a pickle that calls a function)."""


class RunLockedError(RuntimeError, ValueError):
    """A run folder is in use by another process (also a ``ValueError``: a one-line error on the command line)."""


# --------------------------------------------------------------------------------------------------
# Hashes


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file's content, as 64 hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _hash_path(path: Path) -> Path:
    return path.with_name(path.name + HASH_SUFFIX)


def write_hash_record(path: str | os.PathLike[str], digest: str | None = None) -> Path:
    """Record ``path``'s SHA-256 in ``<path>.sha256`` (atomically; ``sha256sum -c`` reads it).

    Args:
        path: the file.
        digest: its SHA-256 when already known; computed otherwise.

    Returns:
        The record's path.
    """
    path = Path(path)
    digest = digest or sha256_file(path)
    return atomic_write_text(_hash_path(path), f"{digest}  {path.name}\n")


def read_hash_record(path: str | os.PathLike[str]) -> str | None:
    """The SHA-256 recorded beside ``path``, or None when there is no (readable) record."""
    record = _hash_path(Path(path))
    try:
        text = record.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    digest = text.split()[0].lower() if text else ""
    return digest if re.fullmatch(r"[0-9a-f]{64}", digest) else None


def verify_file(path: str | os.PathLike[str], *, expected_sha256: str | None = None, what: str = "file") -> None:
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
            raise CheckpointError(f"{what} {str(path)!r} is a folder, not a file; expected a file of weights")
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{what} {str(path)!r} is damaged (truncated or corrupt): the file is empty (0 bytes)")
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
                f"in {str(_hash_path(path))!r} when it was written ({recorded[:16]}...)"
            )
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
            raise CheckpointError(f"{what} {str(path)!r} is damaged: not a readable zip archive ({exc})") from None
        if bad is not None:
            raise CheckpointError(
                f"{what} {str(path)!r} is damaged: the CRC-32 of its member {bad!r} does not match its data"
            )


# --------------------------------------------------------------------------------------------------
# Reading


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
        raise CheckpointError(
            f"cannot read {what} {str(path)!r}: the file is truncated or corrupt, or not a PyTorch file of tensors ({reason})"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, KeyError, IndexError, UnicodeDecodeError, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0].split(". ")[0]
        raise CheckpointError(
            f"cannot read {what} {str(path)!r}: the file is truncated or corrupt, or not a PyTorch file ({first})"
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
        raise CheckpointError(f"{str(path)!r} is not a torch.export file (.pt2 files are zip archives)")
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
        raise CheckpointError(f"{str(path)!r} is not a readable torch.export file ({first})") from None


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
    import types

    original = module.pickle
    module.pickle = types.SimpleNamespace(load=restricted_pickle_load, loads=None, UnpicklingError=pickle.UnpicklingError)
    try:
        yield
    finally:
        module.pickle = original


# --------------------------------------------------------------------------------------------------
# Writing


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Make a rename in ``directory`` durable (a no-op where folders cannot be opened, e.g. Windows)."""
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
    except OSError:
        return True
    return True


def remove_stale_temps(directory: str | os.PathLike[str]) -> None:
    """Delete temporary files that killed writers left in ``directory`` (their process is gone)."""
    directory = Path(directory)
    if not directory.is_dir():
        return
    for entry in directory.iterdir():
        match = _TEMP_RE.match(entry.name)
        if match and not _pid_alive(int(match["pid"])):
            logger.info(f"removing {entry}, left by a writer that was killed")
            entry.unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object]) -> Path:
    """Write ``path`` atomically: ``write(f)`` fills a temporary file, which is fsync-ed and renamed over it.

    The folder is fsync-ed after the rename. A crash at any moment leaves the previous file or the
    new one, complete; the temporary file of a killed writer is removed by the next write into the
    folder.

    Args:
        path: the target; its folder must exist.
        write: called with the open binary file; what it returns is ignored.

    Returns:
        The target path.
    """
    path = Path(path)
    remove_stale_temps(path.parent)
    tmp = _temp_path(path)
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_write`)."""
    data = text.encode("utf-8")
    return atomic_write(path, lambda f: f.write(data))


def atomic_save(obj: Any, path: str | os.PathLike[str], *, record_hash: bool = False) -> Path:
    """:func:`torch.save` ``obj`` to ``path`` atomically; with ``record_hash``, record its SHA-256 beside it.

    The hash is computed from the bytes as written (no second read) and its record is written
    after the file, so a file with a record was complete when the record was made.
    """
    digest = hashlib.sha256()

    class _Hashing:
        def __init__(self, f: IO[bytes]) -> None:
            self.f = f

        def write(self, data: Any) -> int:
            digest.update(data)
            return self.f.write(data)

        def flush(self) -> None:
            self.f.flush()

        def fileno(self) -> int:
            return self.f.fileno()

    target = Path(path)
    if record_hash:
        # Drop a stale record first: a crash between the two renames must not leave an old
        # record beside a new file (which would then be reported as damaged).
        _hash_path(target).unlink(missing_ok=True)
    # torch.save needs only write/flush of a file object; _Hashing provides them but is no IO[bytes].
    atomic_write(target, lambda f: torch.save(obj, cast(IO[bytes], _Hashing(f))) if record_hash else torch.save(obj, f))
    if record_hash:
        write_hash_record(target, digest.hexdigest())
    return target


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, inf) replaced by ``None``, so that it is valid JSON.

    Tensors become lists; mappings and sequences are converted recursively.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, torch.Tensor):
        return json_safe(value.tolist())
    return value


# --------------------------------------------------------------------------------------------------
# Output paths


def _same_path(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def check_output_path(
    path: str | os.PathLike[str],
    *,
    kind: Literal["file", "dir"],
    what: str,
    inputs: Iterable[tuple[str, str | os.PathLike[str] | None]] = (),
) -> Path:
    """Check an output path before any work is done, so that no result is lost at the end.

    Refuses: a folder where a file is expected (and the reverse), a location where nothing can be
    created (a read-only or virtual file system, a parent that is a file), and a path that is one
    of ``inputs`` (writing it would destroy them). Creates nothing: a missing folder is checked
    through its nearest existing parent.

    Args:
        path: the output path.
        kind: ``"file"`` or ``"dir"``.
        what: the option's name for messages (``"--output"``).
        inputs: ``(description, path)`` of every file the command reads or keeps (``None`` skipped).

    Returns:
        ``path`` as a :class:`~pathlib.Path` (user folder expanded).

    Raises:
        ValueError: the path is unusable; the message names it and says what was expected.
    """
    if kind not in ("file", "dir"):
        raise ValueError(f"kind must be 'file' or 'dir', got {kind!r}")
    text = os.fspath(path)
    if not text:
        raise ValueError(f"{what} is empty; expected a {'file name' if kind == 'file' else 'folder'}")
    out = Path(text).expanduser()
    if kind == "file":
        if out.is_dir():
            raise ValueError(f"{what} {text!r} is a folder; expected a file name")
        if out.exists() and not out.is_file():
            raise ValueError(f"{what} {text!r} exists and is not a regular file; expected a file name")
    elif out.exists() and not out.is_dir():
        raise ValueError(f"{what} {text!r} is a file; expected a folder")
    for description, other in inputs:
        if other is None:
            continue
        other_path = Path(os.fspath(other)).expanduser()
        if _same_path(out, other_path):
            raise ValueError(
                f"{what} {text!r} is the same file as {description} {os.fspath(other)!r}: writing it would destroy "
                f"the {description}; choose another {what}"
            )
    # The nearest existing folder must accept new files (probe with a temporary file).
    probe_dir = out if kind == "dir" else out.parent
    while not probe_dir.exists() and probe_dir != probe_dir.parent:
        probe_dir = probe_dir.parent
    if not probe_dir.is_dir():
        raise ValueError(f"{what} {text!r} cannot be created: {str(probe_dir)!r} is not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".antialias-write-check-", dir=probe_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ValueError(
            f"{what} {text!r} is not writable: cannot create files in {str(probe_dir)!r} ({exc.strerror or exc})"
        ) from None
    if kind == "file" and out.is_file():
        try:
            with open(out, "r+b"):
                pass
        except OSError as exc:
            raise ValueError(f"{what} {text!r} is not writable ({exc.strerror or exc})") from None
    return out


# --------------------------------------------------------------------------------------------------
# Run-folder lock


class RunLock:
    """An exclusive lock on a run folder, held for the life of a run (``with RunLock(folder): ...``).

    The lock is ``<folder>/.lock``, locked with ``flock`` (released by the kernel when the holder
    dies, even by SIGKILL, so a crashed run never leaves a stale lock). The file records the
    holder's pid, host and start time, which the error of a second run names.

    Args:
        directory: the run folder (created if missing).

    Raises:
        RunLockedError: on :meth:`acquire`, when another process holds the folder.
    """

    FILE = ".lock"

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.path = self.directory / self.FILE
        self._fd: int | None = None

    def _holder(self) -> str:
        try:
            info = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            info = {}
        pid, host, started = info.get("pid", "?"), info.get("host", "?"), info.get("started")
        since = f", since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(started))}" if started else ""
        return f"pid {pid} on host {host}{since}"

    def acquire(self) -> RunLock:
        """Take the lock, or raise :class:`RunLockedError` naming the holder."""
        if self._fd is not None:
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            import fcntl
        except ImportError:  # Windows: no flock; an exclusive create stands in
            os.close(fd)
            return self._acquire_exclusive_create()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise RunLockedError(
                f"run folder {str(self.directory)!r} is in use by another run ({self._holder()}); wait for it to "
                "finish or stop it, or choose another output folder"
            ) from None
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()})
        os.ftruncate(fd, 0)
        os.pwrite(fd, (record + "\n").encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def _acquire_exclusive_create(self) -> RunLock:  # pragma: no cover - Windows only
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()})
        try:
            info = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            info = {}
        if info.get("pid") and info.get("host") == socket.gethostname() and not _pid_alive(int(info["pid"])):
            self.path.unlink(missing_ok=True)  # its holder died
        elif info.get("pid"):
            raise RunLockedError(f"run folder {str(self.directory)!r} is in use by another run ({self._holder()})")
        self.path.write_text(record + "\n", encoding="utf-8")
        self._fd = -1
        return self

    def release(self) -> None:
        """Release the lock (the file stays: removing it would race with a waiting run)."""
        if self._fd is None:
            return
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)
        else:  # pragma: no cover - Windows only
            self.path.unlink(missing_ok=True)
        self._fd = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
