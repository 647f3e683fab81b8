"""Table stores: ``memory://`` (a dict per partition) and ``rocksdb://`` (on disk)."""

from __future__ import annotations

from typing import Any

from ..exceptions import ImproperlyConfigured
from .base import MISSING, Store
from .memory import MemoryStore

__all__ = ["Store", "MemoryStore", "MISSING", "create_store"]


def create_store(url: str, table: Any) -> Store:
    """The store for ``url`` (``memory://`` or ``rocksdb://``)."""
    scheme = url.partition("://")[0]
    if scheme == "memory":
        return MemoryStore(url, table)
    if scheme == "rocksdb":
        try:
            from .rocksdb import RocksDBStore
        except ImportError as exc:
            raise ImproperlyConfigured(
                f"Table {table.name!r}: store {url!r} needs the package {exc.name or 'rocksdict'}"
                ", which is not installed: pip install rocksdict (or pip install "
                "'faust[rocksdb]'), or use store='memory://'."
            ) from None
        return RocksDBStore(url, table)
    raise ImproperlyConfigured(
        f"Table {table.name!r}: unknown store {url!r}; use 'memory://' or 'rocksdb://'."
    )
