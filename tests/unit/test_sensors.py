"""Sensors, the Monitor and the Prometheus metrics, through the public API on the
embedded broker."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

import faust
from faust.transport.base import TP
from tests.conftest import eventually


class Recording(faust.Sensor):
    """Adds up what every hook reports."""

    def __init__(self) -> None:
        self.messages_in: Counter[TP] = Counter()
        self.messages_out: Counter[TP] = Counter()
        self.stream_in: Counter[str] = Counter()
        self.stream_out: Counter[str] = Counter()
        self.busy: float = 0.0
        self.sends_completed: Counter[str] = Counter()
        self.commits = 0
        self.committed: dict[TP, int] = {}
        self.rebalances = 0
        self.changelog: Counter[str] = Counter()
        self.decode_errors: list[Any] = []
        self.agent_errors: list[str] = []
        self.dead_letters: list[str] = []

    def on_message_in(self, tp, messages):  # type: ignore[no-untyped-def]
        self.messages_in[tp] += len(messages)

    def on_message_out(self, tp, count, offset):  # type: ignore[no-untyped-def]
        self.messages_out[tp] += count

    def on_stream_event_in(self, stream, count):  # type: ignore[no-untyped-def]
        self.stream_in[stream] += count

    def on_stream_event_out(self, stream, count, seconds):  # type: ignore[no-untyped-def]
        self.stream_out[stream] += count
        self.busy += seconds

    def on_send_completed(self, topic, count):  # type: ignore[no-untyped-def]
        self.sends_completed[topic] += count

    def on_commit_completed(self, offsets, seconds):  # type: ignore[no-untyped-def]
        self.commits += 1
        self.committed.update(offsets)

    def on_rebalance_end(self, assigned, seconds):  # type: ignore[no-untyped-def]
        self.rebalances += 1

    def on_changelog_records(self, table, count):  # type: ignore[no-untyped-def]
        self.changelog[table] += count

    def on_decode_error(self, message, exc):  # type: ignore[no-untyped-def]
        self.decode_errors.append((message.topic, message.offset))

    def on_agent_error(self, agent, exc):  # type: ignore[no-untyped-def]
        self.agent_errors.append(agent)

    def on_dead_letter(self, message, topic):  # type: ignore[no-untyped-def]
        self.dead_letters.append(topic)


class TableOps(faust.Sensor):
    def __init__(self) -> None:
        self.ops: list[tuple[str, str, Any]] = []

    def on_table_get(self, table, key):  # type: ignore[no-untyped-def]
        self.ops.append(("get", table, key))

    def on_table_set(self, table, key, value):  # type: ignore[no-untyped-def]
        self.ops.append(("set", table, key))

    def on_table_del(self, table, key):  # type: ignore[no-untyped-def]
        self.ops.append(("del", table, key))


async def test_a_sensor_added_gets_the_hooks_with_exact_counts(app: faust.App) -> None:
    sensor = Recording()
    app.sensors.add(sensor)
    assert sensor in app.sensors and app.monitor in app.sensors
    topic = app.topic("words", key_type=str, value_type=str, partitions=2)
    counts = app.Table("counts", default=int, partitions=2)
    seen: list[str] = []

    @app.agent(topic)
    async def count(stream):
        async for word in stream:
            counts[word] += 1
            seen.append(word)

    await app.start()
    words = [f"w{i % 7}" for i in range(150)]
    for i, word in enumerate(words):
        await topic.send(key=word, value=word, partition=i % 2)
    await eventually(lambda: len(seen) == len(words))
    assert app.consumer is not None
    await app.consumer.commit()

    tps = {TP("words", 0): 75, TP("words", 1): 75}
    assert {tp: sensor.messages_in[tp] for tp in tps} == tps
    assert {tp: sensor.messages_out[tp] for tp in tps} == tps
    assert sensor.stream_in[count.name] == 150
    assert sensor.stream_out[count.name] == 150
    assert sensor.busy > 0
    assert sensor.sends_completed["words"] == 150
    changelog = f"{app.conf.id}-counts-changelog"
    assert sensor.changelog["counts"] == sensor.sends_completed[changelog] > 0
    assert sensor.commits >= 1 and sensor.committed == {TP("words", 0): 75, TP("words", 1): 75}
    assert sensor.rebalances >= 1

    app.sensors.remove(sensor)
    assert sensor not in app.sensors
    await topic.send(key="x", value="x", partition=0)
    await eventually(lambda: len(seen) == 151)
    assert sensor.stream_in[count.name] == 150  # removed: hears nothing more


async def test_table_operation_hooks_are_called_only_for_sensors_that_want_them(
    app: faust.App,
) -> None:
    topic = app.topic("keys", key_type=str, value_type=str, partitions=1)
    table = app.Table("t", default=int, partitions=1)
    done: list[str] = []

    @app.agent(topic)
    async def writer(stream):
        async for op in stream:
            if op == "incr":
                table["k"] += 1
            elif op == "del":
                del table["k"]
            done.append(op)

    ops = TableOps()
    app.sensors.add(ops)
    await app.start()
    for op in ("incr", "incr", "del"):
        await topic.send(key="k", value=op)
    await eventually(lambda: len(done) == 3)
    # del looks the key up first (KeyError if missing): a get, then a del.
    assert ops.ops == [
        ("get", "t", "k"),
        ("set", "t", "k"),
        ("get", "t", "k"),
        ("set", "t", "k"),
        ("get", "t", "k"),
        ("del", "t", "k"),
    ]
    assert (table.gets, table.sets, table.deletes) == (3, 2, 1)
    app.sensors.remove(ops)
    assert "_get" not in vars(table)  # no wrapper left: plain method calls again


def test_sensors_add_refuses_what_is_not_a_sensor(app: faust.App) -> None:
    with pytest.raises(TypeError, match=r"faust\.Sensor"):
        app.sensors.add(object())  # type: ignore[arg-type]


def test_sensors_enabled_false_leaves_no_monitor() -> None:
    app = faust.App("no-sensors", sensors_enabled=False)
    assert app.monitor is None
    assert list(app.sensors) == []


async def test_the_monitor_snapshot_is_json_and_counts_what_happened(app: faust.App) -> None:
    topic = app.topic("orders", key_type=str, value_type=int, partitions=2)
    totals = app.Table("totals", default=int, partitions=2)
    seen: list[int] = []

    @app.agent(topic)
    async def total(stream):
        async for event in stream.events():
            totals[event.key] += event.value
            seen.append(event.value)

    await app.start()
    for i in range(40):
        await topic.send(key=f"k{i % 4}", value=i, partition=i % 2)
    await eventually(lambda: len(seen) == 40)
    assert app.consumer is not None
    await app.consumer.commit()
    assert app.monitor is not None
    snap = json.loads(json.dumps(app.monitor.snapshot()))
    assert snap["version"] == 1 and snap["app"] == app.conf.id
    assert snap["topics"]["orders"] == {
        "messages_in": 40,
        "events_in": 40,
        "messages_out": 40,
        "decode_errors": 0,
    }
    agent = snap["agents"][total.name]
    assert (agent["events_in"], agent["events_out"], agent["buffered"]) == (40, 40, 0)
    rows = {(r["topic"], r["partition"]): r for r in snap["partitions"]}
    assert set(rows) == {("orders", 0), ("orders", 1)}
    for row in rows.values():
        assert row["committed"] == row["end_offset"] == 20 and row["lag"] == 0
    assert snap["sends"]["orders"] == {"initiated": 40, "completed": 40, "errors": 0, "pending": 0}
    table = snap["tables"]["totals"]
    assert (table["gets"], table["sets"], table["deletes"]) == (40, 40, 0)
    assert table["size"] == 4
    assert (
        table["changelog_records"] == snap["sends"][f"{app.conf.id}-totals-changelog"]["completed"]
    )
    assert {r["state"] for r in table["recovery"]} == {"recovered"}
    assert snap["commits"]["count"] >= 1
    assert snap["rebalances"]["count"] >= 1 and not snap["rebalances"]["in_progress"]
