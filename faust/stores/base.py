"""The store contract: where a table keeps its data, one partition at a time.

A store holds decoded keys and values. Writes made while processing events are applied
at once (reads see them). Before the consumer commits, the table sends the changed keys
to the changelog and calls ``persist`` with exactly those values and the changelog
offset they reached: a store that survives restarts (RocksDB) writes that snapshot and
the offset together, never a change the changelog does not have yet, so a restart
replays only the changelog's tail and reprocessed events are not applied twice.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["Store", "MISSING"]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class Store(abc.ABC):
    """Data of one table, split by partition."""

    #: True when data survives a restart of the worker (RocksDB).
    persistent = False

    def __init__(self, url: str, table: Any) -> None:
        self.url = url
        self.table = table

    @abc.abstractmethod
    def open_partition(self, partition: int) -> None:
        """Make ``partition`` readable and writable (idempotent)."""

    @abc.abstractmethod
    def close_partition(self, partition: int) -> None:
        """Release ``partition`` (its data stays where the store keeps it)."""

    def forget_partition(self, partition: int) -> None:
        """Drop ``partition`` including changes the changelog does not have (they belong
        to events this worker did not commit): the next owner restores it in full."""
        self.close_partition(partition)

    @abc.abstractmethod
    def partitions(self) -> set[int]: ...

    @abc.abstractmethod
    def get(self, partition: int, key: Any) -> Any:
        """The value, or MISSING."""

    @abc.abstractmethod
    def set(self, partition: int, key: Any, value: Any) -> None: ...

    @abc.abstractmethod
    def delete(self, partition: int, key: Any) -> None: ...

    @abc.abstractmethod
    def items(self, partition: int) -> Iterator[tuple[Any, Any]]: ...

    @abc.abstractmethod
    def size(self, partition: int) -> int: ...

    def approximate_size(self, partition: int) -> int:
        """Keys in ``partition``, cheaply (an estimate where counting means reading
        every key, as on disk); what the Monitor reports each second."""
        return self.size(partition)

    @abc.abstractmethod
    def persist(self, partition: int, snapshot: dict[Any, Any], changelog_offset: int) -> None:
        """Durably write ``snapshot`` (value MISSING deletes) and the changelog offset."""

    @abc.abstractmethod
    def persisted_offset(self, partition: int) -> int | None:
        """The last changelog offset applied to ``partition``, or None."""

    def apply_changelog(
        self, partition: int, records: Iterable[tuple[Any, Any]], last_offset: int
    ) -> None:
        """Apply restored ``(key, value)`` records (value MISSING deletes) up to an offset."""
        snapshot: dict[Any, Any] = {}
        for key, value in records:
            if value is MISSING:
                self.delete(partition, key)
            else:
                self.set(partition, key, value)
            snapshot[key] = value
        self.persist(partition, snapshot, last_offset)

    @abc.abstractmethod
    def reset(self) -> None:
        """Delete all local data of this table (``faust reset``)."""

    def close(self) -> None:
        for partition in list(self.partitions()):
            self.close_partition(partition)
