"""The RocksDB store: one database per table partition, on the worker's disk.

Data survives restarts, and each database keeps the last changelog offset it applied,
written in the same batch as the data: after a restart only the changelog's tail is
replayed. Keys and values are stored encoded exactly as in the changelog, so recovery
writes the records' bytes without decoding them.

Layout: ``{datadir}/tables/{table}-{partition}.rocksdb``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
from rocksdict import AccessType, Options, Rdict, WriteBatch

from ..serializers import json as JSONCodec
from ..transport.base import Message
from .base import MISSING, Store

__all__ = ["RocksDBStore"]

# Reserved key for the applied changelog offset. Encoded keys (JSON, raw text) never
# start with a NUL byte, so it cannot collide with a user's key.
OFFSET_KEY = b"\x00faust:changelog-offset"
_RESERVED = b"\x00"
# Where the key None is kept (a changelog record without a key).
NULL_KEY = b"\x00faust:null-key"

# Not in the pending changes (MISSING there means deleted).
_ABSENT = object()
# Types the json codec encodes exactly as a bare orjson.dumps does (but for NaN and the
# infinities, which orjson writes as null).
_PLAIN_JSON = frozenset({str, int, float})

# Memtable size per partition database. RocksDB's default (64 MiB, up to 2 of them)
# times 8+ partitions per table would dwarf the data; 16 MiB keeps writes batched.
WRITE_BUFFER_SIZE = 16 * 1024 * 1024


def _options() -> Options:
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    options.set_write_buffer_size(WRITE_BUFFER_SIZE)
    options.set_max_write_buffer_number(2)
    return options


class RocksDBStore(Store):
    persistent = True

    def __init__(self, url: str, table: Any) -> None:
        super().__init__(url, table)
        self.directory = Path(table.app.conf.datadir) / "tables"
        self._dbs: dict[int, Rdict] = {}
        # Changes not yet persisted: reads see them before the database.
        self._pending: dict[int, dict[Any, Any]] = {}
        schema = table.changelog_topic.schema
        self._dumps_key = schema.dumps_key
        self._dumps_value = schema.dumps_value
        self._loads_key = schema.key_loader()
        self._loads_value = schema.value_loader()
        # The json codec writes a str (or int, float) as orjson does: encode those
        # directly (a read that misses the pending changes encodes its key, and every
        # persist its keys and values).
        self._json_keys = type(schema.key_codec) is JSONCodec
        self._json_values = type(schema.value_codec) is JSONCodec

    def path_for(self, partition: int) -> Path:
        return self.directory / f"{self.table.name}-{partition}.rocksdb"

    def _db(self, partition: int) -> Rdict:
        db = self._dbs.get(partition)
        if db is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            db = self._dbs[partition] = Rdict(str(self.path_for(partition)), _options())
        return db

    def open_partition(self, partition: int) -> None:
        self._db(partition)

    def close_partition(self, partition: int) -> None:
        # Pending changes of a partition that moves away are dropped: they were never
        # in the changelog, and the next owner reprocesses their (uncommitted) events.
        self._pending.pop(partition, None)
        db = self._dbs.pop(partition, None)
        if db is not None:
            db.close()

    def partitions(self) -> set[int]:
        return set(self._dbs)

    def get(self, partition: int, key: Any) -> Any:
        pending = self._pending.get(partition)
        if pending is not None:
            value = pending.get(key, _ABSENT)
            if value is not _ABSENT:
                return value  # MISSING when deleted and not yet persisted
        db = self._dbs.get(partition)
        if db is None:
            db = self._db(partition)
        data = db.get(self._encode_key(key))
        return MISSING if data is None else self._loads_value(data)

    def _encode_key(self, key: Any) -> bytes:
        if type(key) is str and self._json_keys:
            try:
                return orjson.dumps(key)
            except orjson.JSONEncodeError:
                pass  # not valid UTF-8: let the codec raise its own error
        raw = self._dumps_key(key)
        return NULL_KEY if raw is None else raw

    def _encode_value(self, value: Any) -> bytes:
        if value is None:
            return self.table.encoded_null()  # as the changelog has it (not a tombstone)
        if type(value) in _PLAIN_JSON and self._json_values:
            try:
                data = orjson.dumps(value)
            except orjson.JSONEncodeError:
                pass  # an int beyond 64 bits, invalid UTF-8: the codec's own error
            else:
                # orjson writes a NaN or an infinity as null: the codec keeps them.
                if data != b"null":
                    return data
        return self._dumps_value(value)

    def set(self, partition: int, key: Any, value: Any) -> None:
        pending = self._pending.get(partition)
        if pending is None:
            pending = self._pending[partition] = {}
        pending[key] = value

    def delete(self, partition: int, key: Any) -> None:
        self.set(partition, key, MISSING)

    def items(self, partition: int) -> Iterator[tuple[Any, Any]]:
        pending = dict(self._pending.get(partition, {}))
        for raw_key, raw_value in self._db(partition).items():
            assert isinstance(raw_key, bytes)  # raw mode
            if raw_key.startswith(_RESERVED):
                continue
            key = self._loads_key(raw_key)
            key = self.table._store_key(key)
            if key in pending:
                value = pending.pop(key)
                if value is not MISSING:
                    yield key, value
            else:
                yield key, self._loads_value(raw_value)
        for key, value in pending.items():
            if value is not MISSING:
                yield key, value

    def size(self, partition: int) -> int:
        return sum(1 for _ in self.items(partition))

    def approximate_size(self, partition: int) -> int:
        # RocksDB's own estimate (exact for keys written once; close otherwise) plus what
        # is not yet written: counting exactly reads every key (seconds for millions).
        db = self._dbs.get(partition)
        stored = (db.property_int_value("rocksdb.estimate-num-keys") or 0) if db else 0
        pending = self._pending.get(partition) or {}
        return stored + sum(1 for value in pending.values() if value is not MISSING)

    def persist(self, partition: int, snapshot: dict[Any, Any], changelog_offset: int) -> None:
        batch = WriteBatch(raw_mode=True)
        for key, value in snapshot.items():
            raw_key = self._encode_key(key)
            if value is MISSING:
                batch.delete(raw_key)
            else:
                batch.put(raw_key, self._encode_value(value))
        batch.put(OFFSET_KEY, str(changelog_offset).encode())
        self._db(partition).write(batch)
        pending = self._pending.get(partition)
        if pending:
            for key, value in snapshot.items():
                # Changed again since the snapshot: keep the newer value pending.
                if key in pending and pending[key] is value:
                    del pending[key]

    def persisted_offset(self, partition: int) -> int | None:
        data = self._db(partition).get(OFFSET_KEY)
        return None if data is None else int(data)

    def apply_changelog(
        self, partition: int, records: Iterable[tuple[Any, Any]], last_offset: int
    ) -> None:
        snapshot = dict(records)
        for key in snapshot:
            self._pending.get(partition, {}).pop(key, None)
        self.persist(partition, snapshot, last_offset)

    def apply_messages(self, partition: int, messages: list[Message]) -> None:
        """Write changelog records as they are (recovery fast path: no decoding)."""
        batch = WriteBatch(raw_mode=True)
        put = batch.put
        for message in messages:
            key = message.key
            value = message.value
            if key is None:
                key = NULL_KEY
            if value is None:
                batch.delete(key)
            else:
                put(key, value)
        put(OFFSET_KEY, str(messages[-1].offset).encode())
        self._db(partition).write(batch)

    def local_partition_paths(self) -> dict[int, Path]:
        """The partition databases of this table on this worker's disk."""
        found: dict[int, Path] = {}
        prefix = f"{self.table.name}-"
        if self.directory.exists():
            for path in self.directory.iterdir():
                stem = path.name.removesuffix(".rocksdb")
                if path.name.endswith(".rocksdb") and stem.startswith(prefix):
                    number = stem[len(prefix) :]
                    if number.isdigit():
                        found[int(number)] = path
        return found

    def count_on_disk(self) -> int:
        """Keys stored on disk, read without taking the databases' locks (works while
        a worker runs)."""
        total = 0
        for path in self.local_partition_paths().values():
            db = Rdict(str(path), Options(raw_mode=True), access_type=AccessType.read_only())
            try:
                total += sum(
                    1 for key in db.keys() if isinstance(key, bytes) and key[:1] != _RESERVED
                )
            finally:
                db.close()
        return total

    def reset(self) -> None:
        for partition in list(self._dbs):
            self.close_partition(partition)
        for path in self.local_partition_paths().values():
            shutil.rmtree(path, ignore_errors=True)

    def close(self) -> None:
        for partition in list(self._dbs):
            self.close_partition(partition)
