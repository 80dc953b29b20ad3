"""One run per folder: :class:`RunLock` holds an exclusive lock on a run folder for the life of the run;
a second run on the same folder stops at once, naming the holder's pid and host."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path

__all__ = ["RunLock", "RunLockedError", "pid_alive"]


class RunLockedError(RuntimeError, ValueError):
    """A run folder is in use by another process (also a ``ValueError``: a one-line error on the command line)."""


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (a pid it may not signal counts as alive)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


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
        since = (
            f", since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(started))}"
            if started
            else ""
        )
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
        record = json.dumps(
            {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        )
        os.ftruncate(fd, 0)
        os.pwrite(fd, (record + "\n").encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def _acquire_exclusive_create(self) -> RunLock:  # pragma: no cover - Windows only
        record = json.dumps(
            {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        )
        try:
            info = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            info = {}
        if (
            info.get("pid")
            and info.get("host") == socket.gethostname()
            and not pid_alive(int(info["pid"]))
        ):
            self.path.unlink(missing_ok=True)  # its holder died
        elif info.get("pid"):
            raise RunLockedError(
                f"run folder {str(self.directory)!r} is in use by another run ({self._holder()})"
            )
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
