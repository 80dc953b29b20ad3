"""Writing files so that no result is ever lost or half-written.

- :func:`atomic_write` writes to a temporary file in the target's folder, flushes and fsyncs it,
  renames it over the target and fsyncs the folder: a crash at any moment leaves the old complete
  file or the new complete file, never a truncated one. :func:`atomic_save` does it for
  :func:`torch.save`, optionally recording the file's SHA-256 beside it (:func:`write_hash_record`).
- :func:`check_output_path` refuses, before any work, an output that is a folder where a file is
  expected (or the reverse), cannot be written, is one of the inputs, or is an existing file that
  no run wrote as an output of its own (:func:`is_own_output`), unless ``overwrite`` is given.
- :func:`record_outputs` lists the files a command wrote into an output folder in the folder's
  manifest (``.antialias-outputs``), so that a later run may replace them.
- :func:`json_safe` makes results valid JSON (NaN and infinities become ``null``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import tempfile
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, Any, Literal, cast

import torch

from antialias._io.lock import pid_alive
from antialias._io.read import hash_record_path, sha256_file

__all__ = [
    "atomic_save",
    "atomic_write",
    "atomic_write_text",
    "OUTPUT_MANIFEST",
    "OUTPUT_MARKER",
    "check_output_path",
    "is_own_output",
    "json_safe",
    "record_outputs",
    "write_hash_record",
]

logger = logging.getLogger(__name__)

_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{32}\.tmp$")


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
    return atomic_write_text(hash_record_path(path), f"{digest}  {path.name}\n")


def _fsync_dir(directory: str | os.PathLike[str]) -> None:
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


def _remove_stale_temps(directory: str | os.PathLike[str]) -> None:
    """Delete temporary files that killed writers left in ``directory`` (their process is gone)."""
    directory = Path(directory)
    if not directory.is_dir():
        return
    for entry in directory.iterdir():
        match = _TEMP_RE.match(entry.name)
        if match and not pid_alive(int(match["pid"])):
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
    _remove_stale_temps(path.parent)
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
    _fsync_dir(path.parent)
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
        hash_record_path(target).unlink(missing_ok=True)
    # torch.save needs only write/flush of a file object; _Hashing provides them but is no IO[bytes].
    atomic_write(
        target,
        lambda f: (
            torch.save(obj, cast(IO[bytes], _Hashing(f))) if record_hash else torch.save(obj, f)
        ),
    )
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


def _same_path(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


OUTPUT_MARKER = "antialias"
"""The key of every JSON result the commands write (its value: the version that wrote it)."""

OUTPUT_MANIFEST = ".antialias-outputs"
"""The file, in an output folder, that lists (JSON) the files the commands wrote there."""


def _manifest(folder: Path) -> list[str]:
    try:
        names = json.loads((folder / OUTPUT_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return []
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def record_outputs(folder: str | os.PathLike[str], names: Iterable[str]) -> Path:
    """Add ``names`` (files a command wrote into ``folder``) to the folder's manifest."""
    folder = Path(folder)
    listed = sorted({*_manifest(folder), *names})
    return atomic_write_text(folder / OUTPUT_MANIFEST, json.dumps(listed, indent=1) + "\n")


def is_own_output(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is an output a command wrote: a JSON object holding the key ``"antialias"``
    (a version string), or a file its folder's manifest (``.antialias-outputs``) lists."""
    path = Path(path)
    if path.name in _manifest(path.parent):
        return True
    try:
        if path.stat().st_size > 1 << 28:
            return False
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(obj, dict) and isinstance(obj.get(OUTPUT_MARKER), str)


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except (ValueError, OSError):
        return False
    return True


def check_output_path(
    path: str | os.PathLike[str],
    *,
    kind: Literal["file", "dir"],
    what: str,
    inputs: Iterable[tuple[str, str | os.PathLike[str] | None]] = (),
    folders: Iterable[tuple[str, str | os.PathLike[str] | None]] = (),
    overwrite: bool = False,
) -> Path:
    """Check an output path before any work is done, so that no result and no file is lost.

    Refuses: a folder where a file is expected (and the reverse), a location where nothing can be
    created (a read-only or virtual file system, a parent that is a file), a path that is one of
    ``inputs`` (writing it would destroy them), and, unless ``overwrite``, an existing file that
    is not a command's own output (:func:`is_own_output`: an input's source, an image of a data
    set, a checkpoint's hash record), or a folder that is not empty, not a command's output folder
    (it has no manifest) or lies inside one of ``folders``. Creates nothing: a missing folder is
    checked through its nearest existing parent.

    Args:
        path: the output path.
        kind: ``"file"`` or ``"dir"``.
        what: the option's name for messages (``"--output"``).
        inputs: ``(description, path)`` of every file the command reads or keeps (``None`` skipped).
        folders: ``(description, folder)`` of the folders the command reads (a data set): named in
            the message when the output lies inside one.
        overwrite: allow replacing a file no command wrote (never an input).

    Returns:
        ``path`` as a :class:`~pathlib.Path` (user folder expanded).

    Raises:
        ValueError: the path is unusable; the message names it and says what was expected.
    """
    if kind not in ("file", "dir"):
        raise ValueError(f"kind must be 'file' or 'dir', got {kind!r}")
    text = os.fspath(path)
    if not text:
        raise ValueError(
            f"{what} is empty; expected a {'file name' if kind == 'file' else 'folder'}"
        )
    out = Path(text).expanduser()
    if kind == "file":
        if out.is_dir():
            raise ValueError(f"{what} {text!r} is a folder; expected a file name")
        if out.exists() and not out.is_file():
            raise ValueError(
                f"{what} {text!r} exists and is not a regular file; expected a file name"
            )
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
    if not overwrite:
        where = ""
        for description, folder in folders:
            if folder is not None and _inside(out, Path(os.fspath(folder)).expanduser()):
                where = f" inside the {description} {os.fspath(folder)!r}"
                break
        if kind == "file" and out.is_file() and not is_own_output(out):
            raise ValueError(
                f"{what} {text!r} is an existing file{where} that no antialias command wrote: "
                f"writing it would destroy it; choose another {what}, or pass --overwrite"
            )
        if kind == "dir" and where:
            raise ValueError(
                f"{what} {text!r} lies{where}: its files would mix with the data; choose another "
                f"{what}, or pass --overwrite"
            )
        if kind == "dir" and out.is_dir() and any(out.iterdir()) and not _manifest(out):
            raise ValueError(
                f"{what} {text!r} is a folder that holds files no antialias command wrote (it has "
                f"no {OUTPUT_MANIFEST}): they could be replaced; choose a new or empty {what}, or "
                "pass --overwrite"
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
