"""The worker's data directory (``datadir``): where on-disk stores keep their data.

A worker whose tables keep data on disk (``rocksdb://``) holds an exclusive lock on
``{datadir}/worker.lock`` for as long as it runs, so that a second worker started on
the same directory, or a ``faust reset``, refuses at once instead of failing later on
RocksDB's own locks or deleting data in use. It is an OS lock (``flock``): the kernel
releases it when the process ends, even by SIGKILL, so a file left behind by a killed
worker does not block the next start. The file holds the pid of the holder, for the
messages.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..exceptions import ImproperlyConfigured

try:
    import fcntl
except ImportError:  # Windows: no flock; the directory is then not locked
    fcntl = None  # type: ignore[assignment]

__all__ = ["DataDirLock", "DataDirInUse", "open_stores", "LOCK_FILE"]

LOCK_FILE = "worker.lock"


class DataDirInUse(ImproperlyConfigured):
    """Another process holds the lock on the data directory."""

    def __init__(self, message: str, *, datadir: str, pid: int | None) -> None:
        super().__init__(message)
        self.datadir = datadir
        self.pid = pid

    @property
    def pid_note(self) -> str:
        """`` (pid N)`` naming the holder for an error message, or '' if unknown."""
        return "" if self.pid is None else f" (pid {self.pid})"


class DataDirLock:
    """The exclusive lock on a data directory.

    Example::

        lock = DataDirLock(app.conf.datadir)
        lock.acquire()        # DataDirInUse if a running worker holds it
        try:
            ...               # use or delete the stores under app.conf.datadir
        finally:
            lock.release()
    """

    def __init__(self, datadir: str | os.PathLike[str]) -> None:
        self.datadir = str(datadir)
        self.path = Path(datadir) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock (creating the directory), or raise :class:`DataDirInUse`;
        ``ImproperlyConfigured`` if the directory cannot be created or written."""
        if self._fd is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ImproperlyConfigured(
                f"Setting datadir: cannot use {self.datadir!r} for the tables' data on disk "
                f"({exc.strerror or exc}): give a writable directory with "
                "faust --datadir DIR, or the datadir setting."
            ) from None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = _read_pid(fd)
                os.close(fd)
                holder = "another process" if pid is None else f"process {pid}"
                raise DataDirInUse(
                    f"Data directory {self.datadir!r} is in use by {holder}",
                    datadir=self.datadir,
                    pid=pid,
                ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        """Give the lock up (the file stays: removing it would race a new holder)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the only descriptor releases the flock

    @property
    def held(self) -> bool:
        return self._fd is not None


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


def open_stores(app: Any) -> DataDirLock | None:
    """Open every table's store before the worker starts, so a store that cannot work
    stops the start with one line: a missing driver (``pip install rocksdict``), a data
    directory that cannot be written, or one another worker uses. Returns the data
    directory's lock when a store keeps data on disk; the worker releases it at exit.
    """
    if not any(table.store.persistent for table in app.tables):
        return None
    lock = DataDirLock(app.conf.datadir)
    try:
        lock.acquire()
    except DataDirInUse as exc:
        raise ImproperlyConfigured(
            f"Data directory {exc.datadir!r} is in use by another worker{exc.pid_note}: stop "
            "it, or give this worker a data directory of its own: faust --datadir DIR -A "
            "... worker, or the datadir setting."
        ) from None
    return lock
