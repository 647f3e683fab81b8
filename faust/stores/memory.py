"""The memory store: a dict per partition, lost when the process exits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .base import MISSING, Store

__all__ = ["MemoryStore"]


class MemoryStore(Store):
    def __init__(self, url: str, table: Any) -> None:
        super().__init__(url, table)
        self._data: dict[int, dict[Any, Any]] = {}
        self._offsets: dict[int, int] = {}

    def open_partition(self, partition: int) -> None:
        self._data.setdefault(partition, {})

    def close_partition(self, partition: int) -> None:
        # Kept: if the partition comes back (or was a standby) only the tail is replayed.
        pass

    def forget_partition(self, partition: int) -> None:
        self._data.pop(partition, None)
        self._offsets.pop(partition, None)

    def partitions(self) -> set[int]:
        return set(self._data)

    def get(self, partition: int, key: Any) -> Any:
        data = self._data.get(partition)
        return MISSING if data is None else data.get(key, MISSING)

    def set(self, partition: int, key: Any, value: Any) -> None:
        data = self._data.get(partition)
        if data is None:
            data = self._data[partition] = {}
        data[key] = value

    def delete(self, partition: int, key: Any) -> None:
        data = self._data.get(partition)
        if data is not None:
            data.pop(key, None)

    def items(self, partition: int) -> Iterator[tuple[Any, Any]]:
        return iter(list(self._data.get(partition, {}).items()))

    def size(self, partition: int) -> int:
        return len(self._data.get(partition, ()))

    def persist(self, partition: int, snapshot: dict[Any, Any], changelog_offset: int) -> None:
        # The data is already in the dict; only the offset needs remembering.
        self._offsets[partition] = changelog_offset

    def persisted_offset(self, partition: int) -> int | None:
        return self._offsets.get(partition)

    def reset(self) -> None:
        self._data.clear()
        self._offsets.clear()
