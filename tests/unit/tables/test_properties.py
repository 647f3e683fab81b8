"""Properties of tables: random changes against a plain dict, through every way back.

Each example runs a random sequence of changes (set, delete, ``+=``, SetTable ``add`` and
``discard``) as events through an agent on the embedded broker, applies the same
changes to a model dict, and checks the table equals the model

- after the flush that precedes a commit,
- after the worker stopped and the RocksDB store was opened again from disk,
- after a fresh worker (no local state) restored it from the changelog alone,

for Table, GlobalTable, SetTable and tumbling/hopping windowed tables, over the memory
and RocksDB stores, with int, str, list, dict, Record, set and None values.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import faust
from faust.stores.rocksdb import RocksDBStore
from faust.tables.windows import HoppingWindow, TumblingWindow, Window
from faust.transport.base import TP
from tests.conftest import eventually

_ids = itertools.count()

# Few examples, each a whole worker lifecycle (about 0.1-0.3 s): the suite stays fast,
# and a run over many seeds is `pytest --hypothesis-seed=N` or a larger max_examples.
PROPERTY_SETTINGS = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

PARTITIONS = 2
# Few keys, so that changes to one key follow each other (and go to both partitions);
# str, int and tuple keys (JSON gives a tuple back as a list).
KEYS = st.sampled_from(["a", "b", "k1", "é", "", 0, 7, -1, ("a", 1), ("b", (2, "c"))])
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=6)  # orjson: no surrogates
# JSON numbers travel as 64-bit integers.
INTS = st.integers(-(2**53), 2**53)
SMALL_INTS = st.integers(-1000, 1000)
# Infinities included (the json codec writes them as Infinity and reads them back); NaN,
# which equals nothing, not even itself, is checked on its own in test_rocksdb.py.
FLOATS = st.floats(allow_nan=False)
JSON_VALUES = st.one_of(
    st.none(),
    INTS,
    FLOATS,
    TEXT,
    st.lists(INTS, max_size=4),
    st.dictionaries(TEXT, INTS, max_size=3),
)
# Event times for windowed tables: around one instant, over several ranges.
TIMES = st.integers(0, 40).map(lambda s: 1_700_000_000.0 + s)


class Point(faust.Record):
    x: int
    label: str


POINTS = st.builds(Point, x=INTS, label=TEXT)


@dataclass
class Kind:
    """One kind of table: how to declare it, the changes it takes and what they do."""

    name: str
    declare: Callable[[faust.App], Any]
    ops: st.SearchStrategy[tuple[Any, ...]]
    #: Apply one op (in the agent): ``apply(table, op, key, value)``.
    apply: Callable[[Any, str, Any, Any], None]
    #: The same op on the model dict: ``model_apply(model, op, key, value, ts)``.
    model_apply: Callable[[dict[Any, Any], str, Any, Any, float], None]
    #: How an op's value travels in the event (JSON) and comes back in the agent.
    encode: Callable[[Any], Any] = lambda v: v
    decode: Callable[[Any], Any] = lambda v: v
    window: Window | None = None


def _op(name: str, value: st.SearchStrategy[Any]) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.tuples(st.just(name), KEYS, value, TIMES)


def _with_flushes(ops: st.SearchStrategy[tuple[Any, ...]]) -> st.SearchStrategy[tuple[Any, ...]]:
    """Also flush (as a commit would) between changes: pending and persisted state mix."""
    return st.one_of(ops, _op("flush", st.none()))


def _as_key(data: Any) -> Any:
    """The key an op names, from its JSON form (tuples came back as lists)."""
    if isinstance(data, list):
        return tuple(_as_key(item) for item in data)
    return data


# -- plain tables ----------------------------------------------------------------------
def _apply_plain(table: Any, op: str, key: Any, value: Any) -> None:
    if op == "set":
        table[key] = value
    elif op == "del":
        table.pop(key, None)
    elif op == "iadd":
        if type(table[key]) is int:
            table[key] += value
        else:  # += on a str, list... would raise: replace it like the model does
            table[key] = value


def _model_plain(model: dict[Any, Any], op: str, key: Any, value: Any, ts: float) -> None:
    if op == "set":
        model[key] = value
    elif op == "del":
        model.pop(key, None)
    elif op == "iadd":
        current = model.get(key, 0)
        model[key] = current + value if type(current) is int else value


_PLAIN_OPS = st.one_of(_op("set", JSON_VALUES), _op("del", st.none()), _op("iadd", SMALL_INTS))
_RECORD_OPS = st.one_of(_op("set", POINTS), _op("del", st.none()))


def _encode_point(value: Any) -> Any:
    return value.to_representation() if isinstance(value, Point) else value


def _decode_point(value: Any) -> Any:
    return Point.from_data(value) if isinstance(value, dict) else value


# -- sets ------------------------------------------------------------------------------
def _apply_set(table: Any, op: str, key: Any, value: Any) -> None:
    if op == "set":
        table[key] = set(value)
    elif op == "del":
        table.pop(key, None)
    elif op == "add":
        table[key].add(value)
    elif op == "discard":
        table[key].discard(value)


def _model_set(model: dict[Any, Any], op: str, key: Any, value: Any, ts: float) -> None:
    members = set(model.get(key, ()))
    if op == "set":
        members = set(value)
    elif op == "del":
        members = set()
    elif op == "add":
        members.add(value)
    elif op == "discard":
        members.discard(value)
    if members:
        model[key] = members
    else:
        model.pop(key, None)  # an empty set is no entry


def _set_ops(member: st.SearchStrategy[Any]) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.one_of(
        _op("add", member),
        _op("discard", member),
        _op("set", st.lists(member, max_size=4)),
        _op("del", st.none()),
    )


# -- windowed tables -------------------------------------------------------------------
def _apply_windowed(table: Any, op: str, key: Any, value: Any) -> None:
    if op == "iadd":
        table[key] += value
    elif op == "set":
        table[key] = value
    elif op == "del":
        del table[key]


def _model_windowed(window: Window) -> Callable[..., None]:
    def apply(model: dict[Any, Any], op: str, key: Any, value: Any, ts: float) -> None:
        for window_range in window.ranges(ts):
            window_key = (key, window_range)
            if op == "iadd":
                model[window_key] = model.get(window_key, 0) + value
            elif op == "set":
                model[window_key] = value
            elif op == "del":
                model.pop(window_key, None)

    return apply


# Stream time never passes a range's expiry in a test: nothing is late or closed.
_NEVER = 10**9
_TUMBLING = TumblingWindow(10, _NEVER)
_HOPPING = HoppingWindow(10, 5, _NEVER)
_WINDOWED_OPS = st.one_of(_op("iadd", SMALL_INTS), _op("set", INTS), _op("del", st.none()))

KINDS = {
    "table": Kind(
        "table",
        lambda app: app.Table("t", default=int, partitions=PARTITIONS),
        _PLAIN_OPS,
        _apply_plain,
        _model_plain,
    ),
    "record-table": Kind(
        "record-table",
        lambda app: app.Table("t", value_type=Point, partitions=PARTITIONS),
        _RECORD_OPS,
        _apply_plain,
        _model_plain,
        encode=_encode_point,
        decode=_decode_point,
    ),
    "global-table": Kind(
        "global-table",
        lambda app: app.GlobalTable("t", default=int, partitions=PARTITIONS),
        _PLAIN_OPS,
        _apply_plain,
        _model_plain,
    ),
    "set-table-str": Kind(
        "set-table-str",
        lambda app: app.SetTable("t", value_type=str, partitions=PARTITIONS),
        _set_ops(TEXT),
        _apply_set,
        _model_set,
    ),
    "set-table-untyped": Kind(
        "set-table-untyped",
        lambda app: app.SetTable("t", partitions=PARTITIONS),
        _set_ops(st.one_of(SMALL_INTS, TEXT, st.tuples(SMALL_INTS, TEXT))),
        _apply_set,
        _model_set,
        decode=lambda value: _as_key(value),  # tuple members travel as JSON lists
    ),
    "tumbling": Kind(
        "tumbling",
        lambda app: app.Table("t", default=int, partitions=PARTITIONS).tumbling(10, _NEVER),
        _WINDOWED_OPS,
        _apply_windowed,
        _model_windowed(_TUMBLING),
        window=_TUMBLING,
    ),
    "hopping": Kind(
        "hopping",
        lambda app: app.Table("t", default=int, partitions=PARTITIONS).hopping(10, 5, _NEVER),
        _WINDOWED_OPS,
        _apply_windowed,
        _model_windowed(_HOPPING),
        window=_HOPPING,
    ),
}


# -- the worker ------------------------------------------------------------------------
@dataclass
class Worker:
    app: faust.App
    table: Any  # the table, or its WindowWrapper
    ops_topic: Any
    done: list[int]

    @property
    def collection(self) -> Any:
        """The table itself (a windowed table's wrapper holds it)."""
        return getattr(self.table, "table", self.table)

    def contents(self) -> dict[Any, Any]:
        return dict(self.collection.items())


def _worker(kind: Kind, broker: str, app_id: str, store: str, datadir: Path) -> Worker:
    app = faust.App(
        app_id,
        broker=broker,
        store=store,
        datadir=str(datadir),
        topic_partitions=PARTITIONS,
        # Commits (and so flushes) only when the test asks: it checks each step.
        broker_commit_interval=3600.0,
    )
    ops_topic = app.topic(f"{app_id}-ops", key_type=str, partitions=PARTITIONS)
    table = kind.declare(app)
    done: list[int] = []

    @app.agent(ops_topic)
    async def apply(stream):  # type: ignore[no-untyped-def]
        async for op in stream:
            if op["op"] == "flush":
                await getattr(table, "table", table).flush()
            else:
                kind.apply(table, op["op"], _as_key(op["key"]), kind.decode(op["value"]))
            done.append(1)

    return Worker(app, table, ops_topic, done)


def _model(kind: Kind, ops: list[tuple[Any, ...]]) -> dict[Any, Any]:
    model: dict[Any, Any] = {}
    for op, key, value, ts in ops:
        if op != "flush":
            kind.model_apply(model, op, key, value, ts)
    return model


async def _changelog_size(worker: Worker) -> int:
    collection = worker.collection
    transport = worker.app.transport
    return sum(
        [
            await transport.end_offset(TP(collection.changelog_topic.name, p))
            for p in range(PARTITIONS)
        ]
    )


def _reopened_from_disk(kind: Kind, app_id: str, datadir: Path) -> dict[Any, Any]:
    """What the RocksDB files hold, read by a worker that is not started."""
    reader = _worker(kind, "memory://unused", app_id, "rocksdb://", datadir)
    store = reader.collection.store
    assert isinstance(store, RocksDBStore)
    try:
        for partition in store.local_partition_paths():
            store.open_partition(partition)
        return reader.contents()
    finally:
        store.close()


async def check_round_trip(
    kind: Kind,
    store: str,
    ops: list[tuple[Any, ...]],
    tmp: Path,
    broker: str | None = None,
    timeout: float = 5.0,
) -> None:
    """Run ``ops`` through a worker and check the table against the model after the
    flush, after reopening its RocksDB files, and in a fresh worker restored from the
    changelog (on ``broker``: a new embedded one by default)."""
    broker = broker or f"memory://props-{uuid.uuid4().hex}"
    app_id = f"props-{next(_ids)}-{uuid.uuid4().hex[:6]}"
    expected = _model(kind, ops)

    writer = _worker(kind, broker, app_id, store, tmp / "writer")
    await writer.app.start()
    try:
        for op, key, value, ts in ops:
            # The message key places the op in a partition; the table key is in the op.
            await writer.ops_topic.send(
                key=repr(key),
                value={"op": op, "key": key, "value": kind.encode(value)},
                timestamp=ts,
            )
        await eventually(lambda: len(writer.done) == len(ops), timeout)
        assert writer.contents() == expected, "before the flush"
        await writer.collection.flush()
        assert writer.contents() == expected, "after the flush"
        # The ops are done with: the next worker of the app restores, not replays them.
        assert writer.app.consumer is not None
        await writer.app.consumer.commit()
        changelog_size = await _changelog_size(writer)
    finally:
        await writer.app.stop()

    if store == "rocksdb://":
        reopened = _reopened_from_disk(kind, app_id, tmp / "writer")
        assert reopened == expected, "after reopening the RocksDB store"

    # A worker without local state: everything comes from the changelog.
    fresh = _worker(kind, broker, app_id, store, tmp / "fresh")
    await fresh.app.start()
    try:
        await eventually(lambda: fresh.app.tables.records_restored == changelog_size, timeout)
        assert fresh.contents() == expected, "after restoring from the changelog"
    finally:
        await fresh.app.stop()


# -- the properties --------------------------------------------------------------------
STORES = ["memory://", "rocksdb://"]


def _ops(kind: Kind) -> st.SearchStrategy[list[tuple[Any, ...]]]:
    return st.lists(_with_flushes(kind.ops), min_size=1, max_size=25)


@pytest.mark.parametrize("store", STORES)
@pytest.mark.parametrize("kind_name", sorted(KINDS))
def test_table_equals_model_through_flush_reopen_and_restore(
    kind_name: str, store: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    kind = KINDS[kind_name]

    # Hypothesis drives plain functions: each example runs its workers in its own loop.
    @PROPERTY_SETTINGS
    @given(ops=_ops(kind))
    def prop(ops: list[tuple[Any, ...]]) -> None:
        asyncio.run(check_round_trip(kind, store, ops, tmp_path_factory.mktemp(kind_name)))

    prop()
