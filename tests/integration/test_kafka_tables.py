"""Tables on real Kafka, with the memory and the RocksDB store.

The same behaviours as tests/unit/tables on the embedded broker: counting through
group_by, window counts and closes against a brute-force model, a RocksDB restart that
reads only the changelog's tail, and a standby that takes over from a SIGKILLed worker.
"""

from __future__ import annotations

import asyncio
import math
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest

import faust
from faust.transport.partitioner import partition_for_key

from .table_workers import (
    PARTITIONS,
    TableCluster,
    end_offsets,
    read_topic,
    recoveries,
    table_from_changelog,
    wait_until,
)

pytestmark = pytest.mark.timeout(300)

STORES = ["memory://", "rocksdb://"]
# Joining the group, declaring topics and a rebalance take seconds on a busy 2-core box.
WAIT = 60.0
# Window tests: epoch-aligned event times (BASE is a multiple of every window size).
BASE = 1_700_000_000


class Word(faust.Record, serializer="json"):
    text: str


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


AppFactory = Callable[..., faust.App]


@pytest.fixture
async def kafka_app(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[AppFactory]:
    """Make apps on the test Kafka (4 partitions, datadir under tmp_path); stops them."""
    made: list[faust.App] = []

    def make(app_id: str | None = None, datadir: str = "data", **options: Any) -> faust.App:
        options.setdefault("broker", f"kafka://{kafka_bootstrap}")
        options.setdefault("topic_partitions", PARTITIONS)
        options.setdefault("broker_commit_interval", 0.2)
        app = faust.App(app_id or unique("tables"), datadir=str(tmp_path / datadir), **options)
        made.append(app)
        return app

    yield make
    for app in made:
        if app.started:
            await app.stop()


def _has_length(items: list[Any], length: int) -> bool:
    return len(items) == length


async def until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    async def check() -> bool:
        return predicate()

    await wait_until(check, timeout, what, interval=0.05)


# -- 1. counting through group_by


@pytest.mark.parametrize("store", STORES)
async def test_word_count_through_group_by(
    kafka_app: AppFactory, kafka_bootstrap: str, store: str
) -> None:
    app = kafka_app(store=store)
    words = app.topic(unique("tables-words"), value_type=Word, partitions=PARTITIONS)
    counts = app.Table("word-counts", default=int)

    @app.agent(words)
    async def count(stream: Any) -> None:
        async for word in stream.group_by(Word.text):
            counts[word.text] += 1

    await app.start()
    rng = random.Random(11)
    vocabulary = [f"word-{i}" for i in range(30)] + ["the", "and", "a"]
    text = [rng.choice(vocabulary) for _ in range(2000)]
    # Each word arrives on every source partition: only group_by brings it together.
    acks = [
        words.send_soon(value=Word(text=w), partition=i % PARTITIONS) for i, w in enumerate(text)
    ]
    await asyncio.gather(*acks)
    await until(lambda: sum(counts.values()) >= len(text), WAIT, "every word to be counted")
    expected = Counter(text)
    assert counts.as_dict() == expected
    assert counts["the"] == expected["the"] and counts["absent"] == 0
    # Each word lives in one table partition: its repartitioned key's partition (the
    # key encoded as the source topic encodes keys: raw text).
    for partition in counts.active_partitions:
        for word, _ in counts.store.items(partition):
            assert partition_for_key(word.encode(), PARTITIONS) == partition, word
    # The changelog holds the same counts once the app has committed.
    assert app.consumer is not None
    await app.consumer.commit()
    changelog = await table_from_changelog(kafka_bootstrap, counts.changelog_topic.name)
    assert changelog == expected
    # ... coalesced: one record per changed key per commit, not one per change.
    records = await read_topic(kafka_bootstrap, counts.changelog_topic.name)
    assert len(expected) <= len(records) < len(text)


# -- 2. windows against a brute-force model


def _hopping_ranges(ts: float, size: int, step: int) -> list[tuple[float, float]]:
    """Every [k*step, k*step + size) that contains ts, by trying every k near it."""
    k0 = int(ts // step)
    return [
        (float(k * step), float(k * step + size))
        for k in range(k0 - size // step - 2, k0 + 3)
        if k * step <= ts < k * step + size
    ]


def _window_events(seed: int) -> list[tuple[str, int, float]]:
    """(key, partition, timestamp): mostly in order, 30 % out of order within expires
    (30 s), 5 % far behind, 6 % right at the edge of expires (just late or just not);
    times in quarter seconds (exact in milliseconds and in floats)."""
    rng = random.Random(seed)
    keys = [f"user-{i}" for i in range(8)]
    events = []
    clock = BASE * 4
    newest: dict[int, int] = {}  # per partition, the newest quarter not dropped as late
    for _ in range(600):
        clock += rng.randint(0, 8)
        key = rng.choice(keys)
        partition = keys.index(key) % PARTITIONS
        roll = rng.random()
        if roll < 0.05:
            quarter = clock - rng.randint(31 * 4, 80 * 4)
        elif roll < 0.11 and partition in newest:
            quarter = newest[partition] - 30 * 4 + rng.choice([0, 1])
        elif roll < 0.41:
            quarter = clock - rng.randint(0, 25 * 4)
        else:
            quarter = clock
        if partition not in newest or quarter > newest[partition] - 30 * 4:
            newest[partition] = max(newest.get(partition, quarter), quarter)
        events.append((key, partition, quarter / 4))
    # Then stream time jumps 100 s on every partition: every window above closes.
    for partition in range(PARTITIONS):
        events.append((keys[partition], partition, clock / 4 + 100))
    return events


@pytest.mark.parametrize("store", STORES)
async def test_window_counts_and_closes_match_a_brute_force_count(
    kafka_app: AppFactory, kafka_bootstrap: str, store: str
) -> None:
    app = kafka_app(store=store, table_cleanup_interval=0.1)
    topic = app.topic(unique("tables-clicks"), key_type=str, value_type=int, partitions=PARTITIONS)
    closed: dict[str, list[tuple[Any, int]]] = {"tumbling": [], "hopping": []}
    tumbling = app.Table("clicks-10s", default=int).tumbling(
        10, expires=30, on_window_close=lambda k, v: closed["tumbling"].append((k, v))
    )
    hopping = app.Table("clicks-20s", default=int).hopping(
        20, 5, expires=30, on_window_close=lambda k, v: closed["hopping"].append((k, v))
    )
    seen: list[str] = []

    @app.agent(topic)
    async def add(stream: Any) -> None:
        async for key, value in stream.items():
            tumbling[key] += value
            hopping[key] += value
            seen.append(key)

    events = _window_events(seed=2024)
    # The model: per partition, stream time is the newest timestamp applied; an event at
    # or more than `expires` behind it is dropped; a window closes once stream time is
    # `expires` past its end.
    latest: dict[int, float] = {}
    expected: dict[str, Counter[Any]] = {"tumbling": Counter(), "hopping": Counter()}
    partition_of: dict[Any, int] = {}
    late = 0
    for key, partition, ts in events:
        newest = latest.get(partition)
        if newest is not None and ts <= newest - 30:
            late += 1
            continue
        latest[partition] = ts if newest is None else max(newest, ts)
        start = math.floor(ts / 10) * 10
        ranges = {"tumbling": [(float(start), float(start + 10))]}
        ranges["hopping"] = _hopping_ranges(ts, 20, 5)
        for name, window_ranges in ranges.items():
            for window_range in window_ranges:
                expected[name][(key, window_range)] += 1
                partition_of[(key, window_range)] = partition
    assert 10 < late < 60  # the data exercises late events

    def closes(window_key: Any) -> bool:
        return window_key[1][1] <= latest[partition_of[window_key]] - 30

    await app.start()
    # send_soon keeps the order of the sends: each partition gets its events in order.
    await asyncio.gather(
        *(
            topic.send_soon(key=key, value=1, partition=partition, timestamp=ts)
            for key, partition, ts in events
        )
    )
    await until(lambda: len(seen) == len(events), WAIT, "every event to be processed")

    tables = {"tumbling": tumbling, "hopping": hopping}
    should_close = {n: {k: v for k, v in c.items() if closes(k)} for n, c in expected.items()}
    stay = {n: {k: v for k, v in c.items() if not closes(k)} for n, c in expected.items()}
    # Only the windows of the last jump stay: one per partition, or 4 hopping ones.
    assert len(stay["tumbling"]) == PARTITIONS and len(stay["hopping"]) == 4 * PARTITIONS

    def all_closed() -> bool:
        return all(len(closed[name]) >= len(should_close[name]) for name in tables)

    await until(all_closed, WAIT, "the stale windows to close")
    await asyncio.sleep(0.5)  # several more cleanups: nothing closes twice
    for name, wrapper in tables.items():
        keys = [k for k, _ in closed[name]]
        assert len(keys) == len(set(keys)), f"{name}: a window closed twice"
        # Each window closed with its full count: an event for it afterwards is late.
        assert dict(closed[name]) == should_close[name], name
        assert wrapper.table.as_dict() == stay[name], name
        assert wrapper.late_events == late, name
        assert wrapper.windowing.windows_closed == len(should_close[name]), name
    # The closed windows left tombstones: the changelogs hold just the open ones.
    assert app.consumer is not None
    await app.consumer.commit()
    for name, wrapper in tables.items():
        changelog = await table_from_changelog(kafka_bootstrap, wrapper.table.changelog_topic.name)
        assert changelog == stay[name], name


# -- 3. RocksDB: a restart replays only the changelog's tail


async def test_rocksdb_restart_replays_only_the_changelog_tail(
    kafka_app: AppFactory, kafka_bootstrap: str
) -> None:
    app_id = unique("tables-tail")
    source = unique("tables-amounts")
    keys, changed = 20, 3

    def build(datadir: str) -> tuple[faust.App, faust.Topic, faust.Table, list[int]]:
        app = kafka_app(app_id, datadir=datadir, store="rocksdb://")
        topic = app.topic(source, key_type=str, value_type=int, partitions=PARTITIONS)
        totals = app.Table("totals", default=int)
        seen: list[int] = []

        @app.agent(topic)
        async def add(stream: Any) -> None:
            async for key, amount in stream.items():
                totals[key] += amount
                seen.append(amount)

        return app, topic, totals, seen

    async def send(topic: faust.Topic, count: int, modulo: int) -> None:
        await asyncio.gather(
            *(topic.send_soon(key=f"k{i % modulo}", value=1) for i in range(count))
        )

    first, topic, totals, seen = build("worker-a")
    await first.start()
    await send(topic, 2000, keys)
    await until(lambda: len(seen) == 2000, WAIT, "the first worker to process 2000 events")
    expected = {f"k{i}": 2000 // keys for i in range(keys)}
    assert totals.as_dict() == expected
    await first.stop()
    changelog = totals.changelog_topic.name
    before = await end_offsets(kafka_bootstrap, changelog, range(PARTITIONS))

    # Another worker (its own, empty disk) reads the whole changelog, then counts more
    # events of a few keys while the first is down.
    other, topic, other_totals, other_seen = build("worker-b")
    await other.start()
    await until(lambda: other_totals.as_dict() == expected, WAIT, "the second worker's recovery")
    assert other.tables.records_restored == sum(before.values())
    for burst in range(1, 4):  # three bursts, each flushed by its own commit(s)
        await send(topic, 200, changed)
        await until(partial(_has_length, other_seen, 200 * burst), WAIT, "a burst counted")
        await asyncio.sleep(0.5)
    await other.stop()
    for i in range(600):
        expected[f"k{i % 200 % changed}"] += 1
    after = await end_offsets(kafka_bootstrap, changelog, range(PARTITIONS))
    tail = sum(after.values()) - sum(before.values())
    # One record per changed key per flush: the 600 changes coalesced.
    assert tail == other_totals.changelog_records_sent
    assert 3 * changed <= tail < 600

    # The first worker comes back with its RocksDB data: it reads the tail, nothing else.
    again, topic, totals, seen = build("worker-a")
    recovered: list[int] = []
    totals.on_recover(lambda: recovered.append(again.tables.records_restored))
    await again.start()
    await until(lambda: bool(recovered), WAIT, "the restarted worker's recovery")
    assert totals.as_dict() == expected
    assert again.tables.records_restored == tail < sum(before.values())
    await send(topic, 10, changed)
    await until(lambda: len(seen) == 10, WAIT, "the restarted worker to process 10 events")
    assert totals["k0"] == expected["k0"] + 4  # k0 got i = 0, 3, 6, 9
    assert seen == [1] * 10  # nothing committed was processed again


# -- 4. a standby takes over from a SIGKILLed worker


async def test_standby_takes_over_after_sigkill_and_never_undercounts(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    cluster = TableCluster(tmp_path, kafka_bootstrap)
    await cluster.create_topics()
    total, keys = 20_000, 100
    victim = cluster.start_worker("worker-a")
    survivor = cluster.start_worker("worker-b")
    producing: asyncio.Future[dict[str, int]] | None = None
    try:

        async def settled() -> bool:
            last = [recoveries(w)[-1:] for w in (victim, survivor)]
            if not all(last):
                return False
            a, b = last[0][0], last[1][0]
            return (
                bool(a["active"])
                and bool(b["active"])
                and sorted(a["active"] + b["active"]) == list(range(PARTITIONS))
                and a["standby"] == b["active"]
                and b["standby"] == a["active"]
            )

        await wait_until(settled, 90, "both workers to own partitions with standbys")
        victim_partitions = recoveries(victim)[-1]["active"]
        survivor_partitions = recoveries(survivor)[-1]["active"]
        survivor_recoveries = len(recoveries(survivor))
        # Produced over a few seconds, so the victim dies mid-stream, between commits.
        producing = asyncio.ensure_future(cluster.produce(total, keys, chunk=500, pause=0.1))

        async def a_third_done() -> bool:
            ends = await end_offsets(kafka_bootstrap, cluster.out, range(PARTITIONS))
            return sum(ends.values()) >= total // 3

        await wait_until(a_third_done, 90, "a third of the events to be counted", 0.1)
        victim.kill()  # SIGKILL: no flush, no commit, no goodbye
        # Nothing writes the victim's changelog partitions until the survivor owns them.
        at_kill = await end_offsets(kafka_bootstrap, cluster.changelog, victim_partitions)
        assert sum(at_kill.values()) > 0, victim.output()[-3000:]
        per_key = await producing

        async def taken_over() -> bool:
            found = recoveries(survivor)[survivor_recoveries:]
            return bool(found) and found[-1]["active"] == list(range(PARTITIONS))

        await wait_until(taken_over, 60, "the survivor to take over every partition")
        source_ends = await end_offsets(kafka_bootstrap, cluster.source, range(PARTITIONS))

        async def all_committed() -> bool:
            return await cluster.committed() == source_ends

        await wait_until(all_committed, 90, "the group to commit the whole source topic")
        assert survivor.stop() == 0, survivor.output()[-3000:]
    finally:
        cluster.stop_all()
        if producing is not None and not producing.done():
            producing.cancel()

    # The survivor had followed the victim's partitions as a standby, so taking them over
    # read only what the standby had not applied yet, not their whole changelog.
    before = recoveries(survivor)[survivor_recoveries - 1]
    assert before["standby"] == victim_partitions
    takeover = recoveries(survivor)[survivor_recoveries:]
    restored = takeover[-1]["restored"] - before["restored"]
    assert restored < sum(at_kill.values()), (restored, at_kill)

    final = await table_from_changelog(kafka_bootstrap, cluster.changelog)
    assert set(final) == set(per_key)
    # Never lower than the input, all of which is committed now. A count can be higher:
    # the victim may have flushed its changelog (which precedes every commit) and died
    # before committing the offsets, or processed and flushed events after its last
    # commit; the survivor restores those counts and processes the same events again
    # from the committed offset (at-least-once).
    low = {k: (final[k], n) for k, n in per_key.items() if final[k] < n}
    assert not low, f"counts lower than their input: {low}"
    survivor_keys = {
        k for k in per_key if partition_for_key(k.encode(), PARTITIONS) in survivor_partitions
    }
    assert survivor_keys and all(final[k] == per_key[k] for k in survivor_keys)

    # Exact for every committed event: each output says the count after that event.
    # The victim's counts are the event's rank among its key's events; the survivor's
    # are the rank plus one fixed excess per key (what the reprocessed events added
    # twice), and that excess is what the final count has above the input.
    source = await read_topic(kafka_bootstrap, cluster.source)
    rank: dict[tuple[int, int], int] = {}
    seen_per_key: Counter[bytes] = Counter()
    for partition, offset, key, _ in sorted(source):
        assert key is not None
        seen_per_key[key] += 1
        rank[(partition, offset)] = seen_per_key[key]
    outputs = await cluster.output()
    victim_pid, survivor_pid = victim.proc.pid, survivor.proc.pid
    assert {o["pid"] for o in outputs} == {victim_pid, survivor_pid}
    excess: dict[str, set[int]] = {}
    first_reprocessed: dict[int, int] = {}
    for o in outputs:
        event_rank = rank[(o["partition"], o["offset"])]
        if o["pid"] == victim_pid:
            assert o["count"] == event_rank, o
        else:
            excess.setdefault(o["key"], set()).add(o["count"] - event_rank)
            if o["partition"] in victim_partitions:
                p = o["partition"]
                first_reprocessed[p] = min(first_reprocessed.get(p, o["offset"]), o["offset"])
    assert {k: len(v) for k, v in excess.items() if len(v) != 1} == {}
    # Only events at or after the committed offset the survivor resumed from can have
    # been counted twice.
    may_repeat = Counter(
        raw.decode()
        for partition, offset, raw, _ in source
        if raw is not None and offset >= first_reprocessed.get(partition, offset + 1)
    )
    for name, (extra,) in ((k, tuple(v)) for k, v in excess.items()):
        assert final[name] == per_key[name] + extra, name
        if partition_for_key(name.encode(), PARTITIONS) in survivor_partitions:
            assert extra == 0, name
        else:
            assert 0 <= extra <= may_repeat[name], name
    # Every event was counted (the survivor's outputs start at the committed offset).
    processed = {(o["partition"], o["offset"]) for o in outputs}
    assert processed == set(rank)


# -- 6. every table type and store: persisted, reopened and restored on Kafka


def _sample_ops(kind_name: str, seed: int, count: int = 60) -> list[tuple[Any, ...]]:
    """A fixed random sequence of the changes a kind of table takes (the unit properties
    draw them with hypothesis; on Kafka one sequence per kind keeps the run short)."""
    from tests.unit.tables.test_properties import Point

    plain = [("set", v) for v in (None, 7, "x", [1, 2], {"a": 1})] + [("del", None), ("iadd", 3)]
    choices: dict[str, list[tuple[str, Any]]] = {
        "table": plain,
        "global-table": plain,
        "record-table": [
            ("set", Point(x=1, label="p")),
            ("set", Point(x=2, label="")),
            ("del", None),
        ],
        "set-table-str": [("add", "ann"), ("add", "bob"), ("add", "cy"), ("discard", "ann")]
        + [("set", ["dee", "ann"]), ("del", None)],
        "set-table-untyped": [("add", 1), ("add", "x"), ("discard", 1), ("set", [2, "y"])]
        + [("del", None)],
        "tumbling": [("iadd", 1), ("iadd", 5), ("set", 10), ("del", None)],
        "hopping": [("iadd", 1), ("iadd", 5), ("set", 10), ("del", None)],
    }
    keys: list[Any] = ["a", "b", "é", 7, ("a", 1)]
    rng = random.Random(seed)
    ops: list[tuple[Any, ...]] = []
    for _ in range(count):
        op, value = rng.choice(choices[kind_name] + [("flush", None)])
        ops.append((op, rng.choice(keys), value, BASE + rng.randrange(40)))
    return ops


@pytest.mark.parametrize("store", STORES)
async def test_every_table_type_round_trips_through_restart_and_restore(
    kafka_bootstrap: str, store: str, tmp_path: Path
) -> None:
    """Each table type against its model on Kafka: after the flush, after reopening the
    RocksDB files of the stopped worker, and in a fresh worker restored from the
    changelog alone (tests/unit/tables/test_properties.py on the embedded broker)."""
    from tests.unit.tables.test_properties import KINDS, check_round_trip

    for seed, (name, kind) in enumerate(sorted(KINDS.items())):
        await check_round_trip(
            kind,
            store,
            _sample_ops(name, seed),
            tmp_path / name,
            broker=f"kafka://{kafka_bootstrap}",
            timeout=WAIT,
        )
