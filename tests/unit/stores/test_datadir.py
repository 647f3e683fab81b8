"""The data directory lock: one holder at a time, released with its process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import faust
from faust.exceptions import ImproperlyConfigured
from faust.stores.datadir import LOCK_FILE, DataDirInUse, DataDirLock, open_stores


def test_one_holder_at_a_time(tmp_path: Path) -> None:
    first = DataDirLock(tmp_path / "data")
    first.acquire()
    assert first.held and (tmp_path / "data" / LOCK_FILE).read_text() == f"{os.getpid()}\n"
    second = DataDirLock(tmp_path / "data")
    with pytest.raises(DataDirInUse) as info:
        second.acquire()
    assert info.value.pid == os.getpid() and not second.held
    first.release()
    second.acquire()
    second.release()


def test_a_killed_holder_leaves_no_lock(tmp_path: Path) -> None:
    # The holder dies without releasing (as with SIGKILL): its file stays, its lock not.
    code = (
        "import os, sys\nfrom faust.stores.datadir import DataDirLock\n"
        f"DataDirLock({str(tmp_path)!r}).acquire()\nos._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
    assert (tmp_path / LOCK_FILE).exists()
    lock = DataDirLock(tmp_path)
    lock.acquire()
    lock.release()


def test_a_directory_that_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ImproperlyConfigured, match="Setting datadir: cannot use .*file/data"):
        DataDirLock(tmp_path / "file" / "data").acquire()


def test_open_stores_locks_only_for_stores_on_disk(tmp_path: Path) -> None:
    in_memory = faust.App("mem", datadir=str(tmp_path / "mem"))
    in_memory.Table("counts", default=int)
    assert open_stores(in_memory) is None
    assert not (tmp_path / "mem").exists()
    on_disk = faust.App("disk", store="rocksdb://", datadir=str(tmp_path / "disk"))
    on_disk.Table("counts", default=int)
    lock = open_stores(on_disk)
    assert lock is not None and lock.held
    with pytest.raises(ImproperlyConfigured, match="in use by another worker .*--datadir"):
        open_stores(on_disk)
    lock.release()
