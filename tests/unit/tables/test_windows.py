"""Windowed tables on the embedded broker: ranges, counts, reads, expiry, late events."""

from __future__ import annotations

import datetime
import itertools
import logging
import math
import random
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

import faust
from faust.exceptions import ImproperlyConfigured
from faust.tables.windows import HoppingWindow, SlidingWindow, TumblingWindow
from tests.conftest import eventually

_ids = itertools.count()
BASE = 1_700_000_000.0


class Order(faust.Record, isodates=True):
    account: str
    created: datetime.datetime


def _shared_app(broker: str, app_id: str, **options: Any) -> faust.App:
    return faust.App(
        app_id, broker=broker, topic_partitions=4, broker_commit_interval=0.05, **options
    )


def _hopping_ranges(ts: float, size: int, step: int) -> list[tuple[float, float]]:
    """Every [k*step, k*step + size) that contains ts, by trying every k near it."""
    k0 = int(ts // step)
    return [
        (float(k * step), float(k * step + size))
        for k in range(k0 - size // step - 2, k0 + 3)
        if k * step <= ts < k * step + size
    ]


def _add_each_event(app: faust.App, topic: faust.Topic, *tables: Any) -> list[str]:
    """An agent adding each event's value to its key in every table; returns the keys
    it processed."""
    seen: list[str] = []

    @app.agent(topic)
    async def add(stream):
        async for key, value in stream.items():
            for table in tables:
                table[key] += value
            seen.append(key)

    return seen


# -- the window types


def test_ranges_cover_exactly_the_windows_that_contain_a_timestamp() -> None:
    rng = random.Random(7)
    for size, step in [(10, 10), (20, 5), (60, 15), (7, 3)]:
        window = HoppingWindow(size, step)
        for _ in range(2000):
            ts = rng.choice([rng.uniform(-1e4, 1e6), float(rng.randrange(-100, 1000) * step)])
            expected = _hopping_ranges(ts, size, step)
            assert window.ranges(ts) == expected
            assert window.current(ts) == expected[-1]
            assert window.earliest(ts) == expected[0]
            assert window.delta(ts, 2 * step) == _hopping_ranges(ts - 2 * step, size, step)[-1]
    assert TumblingWindow(10).ranges(19.999) == [(10.0, 20.0)]
    assert TumblingWindow(10).ranges(20) == [(20.0, 30.0)]
    assert HoppingWindow(60, 30).ranges(125) == [(90.0, 150.0), (120.0, 180.0)]
    assert SlidingWindow(5, 2).ranges(100) == [(95.0, 102.0)]
    assert TumblingWindow(datetime.timedelta(minutes=1)).ranges(61) == [(60.0, 120.0)]


def test_expires_defaults_to_the_span_and_sets_staleness() -> None:
    assert TumblingWindow(10).expires == 10
    assert HoppingWindow(20, 5).expires == 20
    assert SlidingWindow(3, 4).expires == 7
    window = TumblingWindow(10, expires=30)
    assert window.stale(10, 40) and not window.stale(10, 39.9)
    assert window.retention == 40


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: TumblingWindow(0), "size must be > 0"),
        (lambda: TumblingWindow(-5), "size must be > 0"),
        (lambda: HoppingWindow(10, 0), "step must be > 0"),
        (lambda: HoppingWindow(10, 20), r"step \(20 s\) must not exceed its size \(10 s\)"),
        (lambda: TumblingWindow(10, expires=0), "expires must be > 0"),
        (lambda: SlidingWindow(5, 0), "after must be > 0"),
        (lambda: TumblingWindow(float("nan")), "finite"),
    ],
)
def test_invalid_windows_are_clear_errors(make: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_a_window_size_must_be_seconds() -> None:
    with pytest.raises(TypeError, match="number of seconds or a timedelta"):
        TumblingWindow("1h")  # type: ignore[arg-type]


# -- counting on the broker


async def test_tumbling_and_hopping_counts_match_a_brute_force_count(
    app: faust.App, caplog: pytest.LogCaptureFixture
) -> None:
    topic = app.topic("clicks", key_type=str, value_type=int, partitions=4)
    tumbling = app.Table("clicks-10s", default=int, partitions=4).tumbling(10, expires=30)
    hopping = app.Table("clicks-20s", default=int, partitions=4).hopping(20, 5, expires=30)
    seen = _add_each_event(app, topic, tumbling, hopping)

    rng = random.Random(2024)
    keys = [f"user-{i}" for i in range(8)]
    events: list[tuple[str, int, float]] = []
    clock = BASE
    for _ in range(600):
        clock += rng.uniform(0, 2)
        roll = rng.random()
        if roll < 0.05:
            ts = clock - rng.uniform(31, 80)  # far behind: late unless the partition lags
        elif roll < 0.35:
            ts = clock - rng.uniform(0, 25)  # out of order, within expires
        else:
            ts = clock
        ts = round(ts, 3)
        key = rng.choice(keys)
        events.append((key, keys.index(key) % 4, ts))

    # The model: per partition, stream time is the newest timestamp applied; an event
    # at or more than `expires` behind it is dropped.
    latest: dict[int, float] = {}
    expected_tumbling: Counter[Any] = Counter()
    expected_hopping: Counter[Any] = Counter()
    late = 0
    for key, partition, ts in events:
        newest = latest.get(partition)
        if newest is not None and ts <= newest - 30:
            late += 1
            continue
        latest[partition] = ts if newest is None else max(newest, ts)
        start = math.floor(ts / 10) * 10
        expected_tumbling[(key, (float(start), float(start + 10)))] += 1
        for window_range in _hopping_ranges(ts, 20, 5):
            expected_hopping[(key, window_range)] += 1
    assert 10 < late < 60  # the data exercises late events

    await app.start()
    with caplog.at_level(logging.WARNING, logger="faust.tables.windows"):
        for key, partition, ts in events:
            await topic.send(key=key, value=1, partition=partition, timestamp=ts)
        await eventually(lambda: len(seen) == len(events))

    assert tumbling.table.as_dict() == dict(expected_tumbling)
    assert hopping.table.as_dict() == dict(expected_hopping)
    assert tumbling.late_events == late and hopping.late_events == late
    late_logs = [r for r in caplog.records if "dropped a late event" in r.getMessage()]
    assert len(late_logs) == 2 * late  # once per event and table
    assert all("past expires=30 s" in r.getMessage() for r in late_logs)


async def test_window_set_reads(app: faust.App) -> None:
    topic = app.topic("views", key_type=str, value_type=int, partitions=1)
    views = app.Table("views", default=int, partitions=1).tumbling(10, expires=100)
    by_clock = app.Table("views-now", default=int, partitions=1).tumbling(3600)
    reads: list[dict[str, Any]] = []

    @app.agent(topic)
    async def count(stream):
        async for event in stream.events():
            page = event.key
            views[page] += event.value
            by_clock.relative_to_now()[page] += 1
            ws = views[page]
            reads.append(
                {
                    "value": ws.value(),
                    "current": ws.current(),
                    "delta": ws.delta(10),
                    "delta_td": ws.delta(datetime.timedelta(seconds=20)),
                    "now": ws.now(),
                    "by_event": ws[event],
                    "range": ws[(100, 110)],
                    "contains": page in views,
                    "other": views["nobody"].value(),
                }
            )

    await app.start()
    for ts, value in [(100, 1), (101, 2), (109.999, 3), (110, 4), (121, 5), (125, 6)]:
        await topic.send(key="home", value=value, partition=0, timestamp=BASE + ts)
    await eventually(lambda: len(reads) == 6)
    # Windows are aligned to the epoch, and BASE is a multiple of 10.
    assert [r["value"] for r in reads] == [1, 3, 6, 4, 5, 11]
    assert [r["current"] for r in reads] == [r["value"] for r in reads]
    assert [r["by_event"] for r in reads] == [r["value"] for r in reads]
    assert [r["delta"] for r in reads] == [0, 0, 0, 6, 4, 4]
    assert [r["delta_td"] for r in reads] == [0, 0, 0, 0, 6, 6]
    assert all(r["now"] == 0 for r in reads)  # the wall clock is far from BASE
    assert all(r["contains"] for r in reads) and all(r["other"] == 0 for r in reads)
    assert [r["range"] for r in reads] == [0, 0, 0, 0, 0, 0]  # not BASE-relative
    assert views["home"][(BASE + 100, BASE + 110)] == 6
    # relative_to_now: every write went to the range of the wall clock.
    assert sum(by_clock.table.values()) == 6
    start, end = next(iter(by_clock.table.keys()))[1]
    assert start <= time.time() < end + 1 and end - start == 3600
    # Outside an agent there is no event to be relative to.
    with pytest.raises(RuntimeError, match="needs the event being processed"):
        views["home"].current()
    with pytest.raises(RuntimeError, match="relative to the stream needs the event"):
        views["home"].value()
    assert views.relative_to(BASE + 125)["home"].value() == 11


async def test_assigning_and_deleting_windows(app: faust.App) -> None:
    topic = app.topic("ops", key_type=str, value_type=str, partitions=1)
    table = app.Table("levels", partitions=1).hopping(10, 5, expires=100)
    done: list[str] = []

    @app.agent(topic)
    async def apply(stream):
        async for key, op in stream.items():
            if op == "set":
                table[key] = "high"
            elif op == "del":
                del table[key]
            elif op == "swap":
                with pytest.raises(ValueError, match="assign a value instead"):
                    table[key] = table["other"]
            done.append(op)

    await app.start()
    await topic.send(key="a", value="set", partition=0, timestamp=BASE + 12)
    await topic.send(key="b", value="set", partition=0, timestamp=BASE + 12)
    await topic.send(key="b", value="del", partition=0, timestamp=BASE + 13)
    await topic.send(key="a", value="swap", partition=0, timestamp=BASE + 13)
    await eventually(lambda: len(done) == 4)
    assert table.table.as_dict() == {
        ("a", (BASE + 5, BASE + 15)): "high",
        ("a", (BASE + 10, BASE + 20)): "high",
    }
    # No default: a missing window reads as None.
    assert table.relative_to(BASE + 30)["a"].value() is None


async def test_relative_to_field_uses_the_record_datetime(app: faust.App) -> None:
    orders = app.topic("orders", value_type=Order, partitions=1)
    per_hour = (
        app.Table("orders-per-hour", default=int, partitions=1)
        .tumbling(3600, expires=86400)
        .relative_to_field(Order.created)
    )
    values: list[int] = []

    @app.agent(orders)
    async def count(stream):
        async for order in stream:
            per_hour[order.account] += 1
            values.append(per_hour[order.account].value())

    utc = datetime.UTC
    created = [
        datetime.datetime(2024, 5, 1, 10, 5, tzinfo=utc),
        datetime.datetime(2024, 5, 1, 10, 59, 59, tzinfo=utc),
        datetime.datetime(2024, 5, 1, 11, 0, tzinfo=utc),
        datetime.datetime(2024, 5, 1, 10, 30),  # naive: taken as UTC
    ]
    await app.start()
    for when in created:
        # The message timestamps (now) must not matter.
        await orders.send(value=Order(account="acme", created=when), partition=0)
    await eventually(lambda: len(values) == 4)
    ten = datetime.datetime(2024, 5, 1, 10, tzinfo=utc).timestamp()
    assert per_hour.table.as_dict() == {
        ("acme", (ten, ten + 3600)): 3,
        ("acme", (ten + 3600, ten + 7200)): 1,
    }
    assert values == [1, 2, 1, 3]
    with pytest.raises(TypeError, match="needs a Record field"):
        per_hour.relative_to_field("created")  # type: ignore[arg-type]


async def test_late_events_are_dropped_counted_and_logged(
    app: faust.App, caplog: pytest.LogCaptureFixture
) -> None:
    topic = app.topic("temps", key_type=str, value_type=int, partitions=1)
    table = app.Table("temp-sum", default=int, partitions=1).tumbling(10, expires=20)
    # Each event is added twice: a late one is still logged and counted once.
    seen = _add_each_event(app, topic, table, table)
    await app.start()
    with caplog.at_level(logging.WARNING, logger="faust.tables.windows"):
        for ts in [100, 130, 105, 110, 115]:
            await topic.send(key="room", value=1, partition=0, timestamp=BASE + ts)
        await eventually(lambda: len(seen) == 5)
    # Stream time 130, expires 20: 105 and 110 (<= 110) are late, 115 is not.
    assert table.table.as_dict() == {
        ("room", (BASE + 100, BASE + 110)): 2,
        ("room", (BASE + 110, BASE + 120)): 2,
        ("room", (BASE + 130, BASE + 140)): 2,
    }
    assert table.late_events == 2
    logs = [r.getMessage() for r in caplog.records if "late event" in r.getMessage()]
    assert len(logs) == 2
    assert "'temp-sum'" in logs[0] and "'room'" in logs[0]
    assert f"timestamp {BASE + 105:.3f}" in logs[0] and "25.000 s behind" in logs[0]
    assert "temps[0]@2" in logs[0] and "20.000 s behind" in logs[1]


async def test_on_window_close_fires_once_per_window(app: faust.App) -> None:
    topic = app.topic("hits", key_type=str, value_type=int, partitions=2)
    closed: list[tuple[Any, int]] = []

    async def on_close(key: Any, value: int) -> None:
        closed.append((key, value))

    table = app.Table("hits-10s", default=int, partitions=2).tumbling(
        10, expires=10, on_window_close=on_close
    )
    seen = _add_each_event(app, topic, table)
    expected: Counter[Any] = Counter()

    async def send_every_2s(start: int, stop: int) -> None:
        for ts in range(start, stop, 2):
            for partition, key in enumerate(["p0", "p1"]):
                await topic.send(key=key, value=1, partition=partition, timestamp=BASE + ts)
                expected[(key, (BASE + ts // 10 * 10, BASE + ts // 10 * 10 + 10))] += 1
        await eventually(lambda: len(seen) == expected.total())

    await app.start()
    await send_every_2s(0, 60)
    assert await table.cleanup() == 8  # stream time 58: [0,10) ... [30,40) closed
    assert await table.cleanup() == 0  # nothing closes twice
    assert len(table.table) == 4
    await send_every_2s(60, 100)
    await table.cleanup()
    await table.cleanup()
    # Stream time 98: every window that ended by 88 closed, each exactly once.
    assert len(closed) == len({key for key, _ in closed}) == 16
    assert dict(closed) == {k: v for k, v in expected.items() if k[1][1] <= BASE + 88}
    assert table.table.as_dict() == {k: v for k, v in expected.items() if k[1][1] > BASE + 88}
    assert table.windowing.windows_closed == 16
    # The closed windows leave tombstones in the changelog.
    await table.table.flush()
    log = app.transport.broker.logs[table.table.changelog_topic.name]
    tombstones = [entry for partition in log for entry in partition if entry[2] is None]
    assert len(tombstones) == 16


async def test_a_failing_or_sync_close_callback_does_not_stop_the_others(
    app: faust.App, caplog: pytest.LogCaptureFixture
) -> None:
    topic = app.topic("events", key_type=str, value_type=int, partitions=1)
    closed: list[Any] = []

    def on_close(key: Any, value: int) -> None:
        closed.append(key)
        if len(closed) == 1:
            raise RuntimeError("boom")

    table = app.Table("events-5s", default=int, partitions=1)
    wrapped = table.tumbling(5, on_window_close=on_close)
    seen = _add_each_event(app, topic, wrapped)
    await app.start()
    for ts in [1, 6, 11]:
        await topic.send(key="k", value=1, partition=0, timestamp=BASE + ts)
    await eventually(lambda: len(seen) == 3)
    with caplog.at_level(logging.ERROR, logger="faust.tables.windows"):
        assert await wrapped.cleanup(now=BASE + 100) == 3
    assert len(closed) == 3 and "on_window_close raised" in caplog.text
    assert len(table) == 0


async def test_key_index(app: faust.App) -> None:
    topic = app.topic("visits", key_type=str, value_type=int, partitions=2)
    indexed = app.Table("visits", default=int, partitions=2).tumbling(10, key_index=True)
    plain = app.Table("visits-plain", default=int, partitions=2).tumbling(10)
    seen = _add_each_event(app, topic, indexed, plain)
    await app.start()
    for key, partition, ts in [("a", 0, 1), ("a", 0, 12), ("a", 0, 13), ("b", 1, 3), ("b", 1, 4)]:
        await topic.send(key=key, value=1, partition=partition, timestamp=BASE + ts)
    await eventually(lambda: len(seen) == 5)
    assert sorted(indexed.keys()) == ["a", "b"] and sorted(indexed) == ["a", "b"]
    # Outside an agent: the window of each partition's stream time.
    assert dict(indexed.items()) == {"a": 2, "b": 2}
    assert sorted(indexed.values()) == [2, 2]
    assert dict(indexed.relative_to(BASE + 5).items()) == {"a": 1, "b": 2}
    assert dict(indexed.relative_to_now().items()) == {"a": 0, "b": 0}
    for method in (plain.keys, plain.items, plain.values):
        with pytest.raises(ImproperlyConfigured, match="needs key_index=True"):
            method()


async def test_a_table_has_one_window_made_before_the_app_starts(app: faust.App) -> None:
    table = app.Table("once", default=int)
    table.tumbling(10)
    with pytest.raises(ValueError, match="already windowed"):
        table.hopping(10, 5)
    late = app.Table("late", default=int)
    await app.start()
    with pytest.raises(ImproperlyConfigured, match="before the app starts"):
        late.tumbling(10)


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
async def test_windowed_changelog_recovers_the_same_tuples(store: str, tmp_path: Path) -> None:
    broker = f"memory://windows-{uuid.uuid4().hex}"
    app_id = f"windowed-{next(_ids)}"

    def build(worker: str) -> tuple[faust.App, faust.Topic, Any, list[str]]:
        # Each worker has its own disk: the second one reads the changelog.
        app = _shared_app(broker, app_id, store=store, datadir=str(tmp_path / worker))
        topic = app.topic("amounts", key_type=str, value_type=int, partitions=4)
        totals = app.Table("totals", default=int, key_type=str, partitions=4).hopping(
            20, 10, expires=30
        )
        return app, topic, totals, _add_each_event(app, topic, totals)

    first, topic, totals, seen = build("a")
    changelog = totals.table.changelog_topic
    assert changelog.compacting and changelog.deleting and changelog.retention == 50
    await first.start()
    expected: dict[Any, int] = defaultdict(int)
    for i in range(100):
        key, ts = f"acct-{i % 5}", BASE + 2 * i
        await topic.send(key=key, value=i, partition=(i % 5) % 4, timestamp=ts)
        for window_range in _hopping_ranges(ts, 20, 10):
            expected[(key, window_range)] += i
    await eventually(lambda: len(seen) == 100)
    assert totals.table.as_dict() == expected
    await first.stop()

    second, topic, totals, seen = build("b")
    await second.start()
    await eventually(lambda: totals.table.as_dict() == expected)
    assert all(type(k) is tuple and type(k[1]) is tuple for k in totals.table.keys())
    # Stream time comes back from the restored windows: an old event is still late.
    await topic.send(key="acct-1", value=1000, partition=1, timestamp=BASE + 10)
    await topic.send(key="acct-1", value=7, partition=1, timestamp=BASE + 199)
    await eventually(lambda: len(seen) == 2)
    assert totals.late_events == 1
    assert (
        totals.table[("acct-1", (BASE + 190, BASE + 210))]
        == expected.get(("acct-1", (BASE + 190, BASE + 210)), 0) + 7
    )
    await second.stop()


async def test_windowed_changelog_keys_round_trip(app: faust.App) -> None:
    table = app.Table("typed", default=int, key_type=str)
    table.sliding(5, 5)
    schema = table.changelog_topic.schema
    for key in [
        ("acct-1", (BASE, BASE + 10.5)),
        (("region", 7), (-5.0, 5.0)),  # a tuple key comes back a tuple, not a list
        (42, (0.0, 10.0)),
    ]:
        data = schema.dumps_key(key)
        assert data is not None and data.startswith(b"[")
        assert table._store_key(schema.loads_key(data)) == key


async def test_the_worker_closes_windows_every_cleanup_interval() -> None:
    app = faust.App(f"windows-timer-{next(_ids)}", table_cleanup_interval=0.05)
    topic = app.topic("clicks", key_type=str, value_type=int, partitions=1)
    closed: list[tuple[Any, Any]] = []
    counts = app.Table(
        "clicks", default=int, partitions=1, on_window_close=lambda k, v: closed.append((k, v))
    ).tumbling(10, expires=10)
    _add_each_event(app, topic, counts)
    await app.start()
    try:
        await topic.send(key="a", value=1, timestamp=BASE)
        await topic.send(key="a", value=1, timestamp=BASE + 1)
        # Stream time moves 30 s on: the first window (and its expiry) is long past.
        await topic.send(key="b", value=1, timestamp=BASE + 30)
        await eventually(lambda: bool(closed))
        start = BASE - BASE % 10
        assert closed == [(("a", (start, start + 10)), 2)]
    finally:
        await app.stop()


@pytest.mark.parametrize(
    "window",
    [
        TumblingWindow(10),
        HoppingWindow(25, 10),
        HoppingWindow(0.3, 0.1),
        SlidingWindow(2, 3),
    ],
    ids=repr,
)
def test_cached_ranges_match_computed_ones(window: Any) -> None:
    """ranges_of (cached while the same ranges hold) agrees with ranges everywhere,
    boundaries included, in any order of timestamps."""
    rng = random.Random(7)
    points = [i * 0.05 for i in range(2000)]
    points += [r[0] for t in points[:500] for r in window.ranges(t)]  # starts
    points += [r[1] for t in points[:500] for r in window.ranges(t)]  # ends
    rng.shuffle(points)
    points += sorted(points)
    for t in points:
        assert window.ranges_of(t) == tuple(window.ranges(t)), t
