"""Tables in RocksDB: durable local state, tail-only recovery, reset."""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path

import faust
from faust.stores.rocksdb import RocksDBStore
from tests.conftest import eventually

_ids = itertools.count()


def _build(broker: str, app_id: str, datadir: Path):  # type: ignore[no-untyped-def]
    app = faust.App(
        app_id,
        broker=broker,
        store="rocksdb://",
        datadir=str(datadir),
        topic_partitions=2,
        broker_commit_interval=0.05,
    )
    topic = app.topic("amounts", key_type=str, value_type=int, partitions=2)
    totals = app.Table("totals", default=int, partitions=2)
    seen: list[int] = []

    @app.agent(topic)
    async def add(stream):
        async for key, amount in stream.items():
            totals[key] += amount
            seen.append(amount)

    return app, topic, totals, seen


async def test_state_survives_a_restart_and_only_the_tail_is_replayed(tmp_path: Path) -> None:
    broker = f"memory://rocks-{uuid.uuid4().hex}"
    app_id = f"rocks-{next(_ids)}"
    first, topic, totals, seen = _build(broker, app_id, tmp_path / "worker-a")
    await first.start()
    for i in range(200):
        await topic.send(key=f"k{i % 10}", value=1)
    await eventually(lambda: len(seen) == 200)
    await first.stop()
    assert isinstance(totals.store, RocksDBStore)

    # Another worker (its own disk) processes more while the first is down.
    other, topic, other_totals, other_seen = _build(broker, app_id, tmp_path / "worker-b")
    await other.start()
    await eventually(lambda: other_totals.as_dict() == {f"k{i}": 20 for i in range(10)})
    for i in range(30):
        await topic.send(key=f"k{i % 3}", value=1)
    await eventually(lambda: len(other_seen) == 30)
    changelog_before = other.tables.records_restored
    await other.stop()
    assert changelog_before > 0  # worker-b had no local state: it read the changelog

    # The first worker comes back with its RocksDB data: it reads only what is new.
    again, topic, totals, seen = _build(broker, app_id, tmp_path / "worker-a")
    await again.start()
    await eventually(lambda: totals["k0"] == 30)
    assert totals.as_dict() == {f"k{i}": 30 if i < 3 else 20 for i in range(10)}
    assert 0 < again.tables.records_restored <= 6  # 3 keys changed, at most 2 flushes
    assert seen == []
    await again.stop()


async def test_uncommitted_changes_never_reach_the_disk(tmp_path: Path) -> None:
    app = faust.App(f"rocks-{next(_ids)}", store="rocksdb://", datadir=str(tmp_path))
    table = app.Table("t", partitions=1, use_partitioner=True)
    await app.start()
    table["a"] = 1
    store = table.store
    assert isinstance(store, RocksDBStore)
    assert table["a"] == 1  # visible to reads at once
    assert store._db(0).get(b'"a"') is None  # but on disk only after the flush
    await table.flush()
    assert store._db(0).get(b'"a"') == b"1"
    assert store.persisted_offset(0) == 0
    await app.stop()


async def test_reset_deletes_local_state(tmp_path: Path) -> None:
    app = faust.App(f"rocks-{next(_ids)}", store="rocksdb://", datadir=str(tmp_path))
    table = app.Table("t", partitions=1, use_partitioner=True)
    await app.start()
    table["a"] = 1
    await table.flush()
    await app.stop()
    assert (tmp_path / "tables" / "t-0.rocksdb").exists()
    table.store.reset()
    assert not (tmp_path / "tables" / "t-0.rocksdb").exists()


async def test_set_table_of_str_keeps_its_sets_through_flush_and_reopen(tmp_path: Path) -> None:
    """value_type is the members' type: the changelog holds a list of them, never one str
    (which read the list back as its repr: a set of single characters)."""
    app_id = f"rocks-{next(_ids)}"
    app = faust.App(app_id, store="rocksdb://", datadir=str(tmp_path))
    people = app.SetTable("people", value_type=str, partitions=1, use_partitioner=True)
    await app.start()
    people["r1"].add("ann")
    people["r1"].add("bob")
    await people.flush()
    assert people["r1"] == {"ann", "bob"}
    people["r1"].add("cy")
    await people.flush()
    await app.stop()

    again = faust.App(app_id, store="rocksdb://", datadir=str(tmp_path))
    people = again.SetTable("people", value_type=str, partitions=1, use_partitioner=True)
    people.store.open_partition(0)
    assert dict(people.items()) == {"r1": {"ann", "bob", "cy"}}
    people.store.close()


async def test_none_is_a_value_not_a_deletion(tmp_path: Path) -> None:
    """None goes to the changelog as JSON null: a tombstone would delete the key on
    restore (and RocksDB cannot store a missing value at all)."""
    broker = f"memory://rocks-{uuid.uuid4().hex}"
    app_id = f"rocks-{next(_ids)}"
    app = faust.App(app_id, broker=broker, store="rocksdb://", datadir=str(tmp_path / "a"))
    table = app.Table("t", partitions=1, use_partitioner=True)
    await app.start()
    table["k"] = None
    await table.flush()
    assert "k" in table and table["k"] is None
    await app.stop()

    fresh = faust.App(app_id, broker=broker, store="rocksdb://", datadir=str(tmp_path / "b"))
    restored = fresh.Table("t", partitions=1, use_partitioner=True)
    await fresh.start()
    await eventually(lambda: fresh.tables.records_restored == 1)
    assert restored.as_dict() == {"k": None}
    await fresh.stop()


async def test_nan_and_infinities_survive_the_changelog_and_the_disk(tmp_path: Path) -> None:
    """Floats JSON has no literal for go through the changelog (written as NaN and
    Infinity) and RocksDB, and come back as floats, on a reopen and on a restore."""
    broker = f"memory://rocks-{uuid.uuid4().hex}"
    app_id = f"rocks-{next(_ids)}"
    values = {"nan": float("nan"), "up": float("inf"), "down": float("-inf"), "list": [1.5]}

    def same(got: dict) -> bool:
        return (
            got.keys() == values.keys()
            and got["nan"] != got["nan"]  # NaN
            and got["up"] == float("inf")
            and got["down"] == float("-inf")
            and got["list"] == [1.5]
        )

    app = faust.App(app_id, broker=broker, store="rocksdb://", datadir=str(tmp_path / "a"))
    table = app.Table("floats", partitions=1, use_partitioner=True)
    await app.start()
    for key, value in values.items():
        table[key] = value
    await table.flush()
    await app.stop()

    # Reopened from its own disk.
    again = faust.App(app_id, broker=broker, store="rocksdb://", datadir=str(tmp_path / "a"))
    reopened = again.Table("floats", partitions=1, use_partitioner=True)
    await again.start()
    await eventually(lambda: len(reopened.as_dict()) == len(values))
    assert same(reopened.as_dict()), reopened.as_dict()
    assert again.tables.records_restored == 0  # from the disk, nothing read
    await again.stop()

    # Restored from the changelog, on a worker with no local state.
    fresh = faust.App(app_id, broker=broker, store="rocksdb://", datadir=str(tmp_path / "b"))
    restored = fresh.Table("floats", partitions=1, use_partitioner=True)
    await fresh.start()
    await eventually(lambda: fresh.tables.records_restored == len(values))
    assert same(restored.as_dict()), restored.as_dict()
    await fresh.stop()

    # And into the memory store.
    memory = faust.App(app_id, broker=broker, datadir=str(tmp_path / "c"))
    in_memory = memory.Table("floats", partitions=1, use_partitioner=True)
    await memory.start()
    await eventually(lambda: memory.tables.records_restored == len(values))
    assert same(in_memory.as_dict()), in_memory.as_dict()
    await memory.stop()
