"""SetTable and SetGlobalTable: a set per key, changed in place.

Example::

    visitors = app.SetTable('visitors')

    @app.agent(visits)
    async def track(stream):
        async for visit in stream:
            visitors[visit.page].add(visit.user)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ..stores import MISSING
from .table import GlobalTable, Table
from .windows import hashable

__all__ = ["SetTable", "SetGlobalTable", "ChangeTrackingSet"]


def _members(stored: Any) -> set[Any]:
    """The set a stored list of members stands for."""
    try:
        return set(stored)
    except TypeError:
        # Tuple members read back from JSON (the store or the changelog) are lists.
        return set(map(hashable, stored))


class ChangeTrackingSet:
    """The set stored under one key; every change is written back to the table."""

    def __init__(self, table: Table, key: Any) -> None:
        self._table = table
        self._key = key

    def _current(self) -> set[Any]:
        value = self._table._get(self._key)
        return set() if value is MISSING else _members(value)

    def _write(self, members: set[Any]) -> None:
        if members:
            # Stored as a sorted list when possible: JSON has no sets, and a stable order
            # makes equal sets encode to equal changelog records.
            try:
                self._table._set(self._key, sorted(members))
            except TypeError:
                self._table._set(self._key, list(members))
        elif self._table._get(self._key) is not MISSING:
            self._table._del(self._key)

    def add(self, member: Any) -> None:
        members = self._current()
        if member not in members:
            members.add(member)
            self._write(members)

    def discard(self, member: Any) -> None:
        members = self._current()
        if member in members:
            members.discard(member)
            self._write(members)

    def remove(self, member: Any) -> None:
        members = self._current()
        members.remove(member)
        self._write(members)

    def update(self, *others: Iterable[Any]) -> None:
        members = self._current()
        members.update(*others)
        self._write(members)

    def difference_update(self, *others: Iterable[Any]) -> None:
        members = self._current()
        members.difference_update(*others)
        self._write(members)

    def intersection_update(self, *others: Iterable[Any]) -> None:
        members = self._current()
        members.intersection_update(*others)
        self._write(members)

    def clear(self) -> None:
        self._write(set())

    def __contains__(self, member: object) -> bool:
        return member in self._current()

    def __iter__(self) -> Iterator[Any]:
        return iter(self._current())

    def __len__(self) -> int:
        return len(self._current())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ChangeTrackingSet):
            return self._current() == other._current()
        if isinstance(other, set | frozenset):
            return self._current() == other
        return NotImplemented

    def __repr__(self) -> str:
        return repr(self._current())


class SetTable(Table):
    """A table whose values are sets: ``table[k].add(x)``, ``table[k].discard(x)``.

    ``value_type`` is the type of the members: ``app.SetTable('people', value_type=str)``.
    """

    @classmethod
    def _changelog_value_type(cls, value_type: Any) -> Any:
        # A set is stored and logged as the list of its members (see
        # ChangeTrackingSet._write): the changelog decodes a list of value_type, never
        # the whole list as one value_type.
        return None if value_type is None else list[value_type]

    def __getitem__(self, key: Any) -> ChangeTrackingSet:
        return ChangeTrackingSet(self, key)

    def __setitem__(self, key: Any, value: Iterable[Any]) -> None:
        ChangeTrackingSet(self, key)._write(set(value))

    def _iter_items(self) -> Iterator[tuple[Any, Any]]:
        for key, value in super()._iter_items():
            yield key, _members(value)


class SetGlobalTable(SetTable, GlobalTable):
    """A SetTable that every worker holds in full."""

    is_global = True
