"""Sensors, the Monitor and the Prometheus metrics, through the public API on the
embedded broker."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

import faust
from faust.sensors.prometheus import registry_for, render_metrics
from faust.transport.base import TP
from tests.conftest import eventually, metric_samples

_ids = itertools.count()


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

    def on_messages_in(self, tp, messages):  # type: ignore[no-untyped-def]
        self.messages_in[tp] += len(messages)

    def on_messages_out(self, tp, count, offset):  # type: ignore[no-untyped-def]
        self.messages_out[tp] += count

    def on_stream_events_in(self, stream, count):  # type: ignore[no-untyped-def]
        self.stream_in[stream] += count

    def on_stream_events_out(self, stream, count, seconds):  # type: ignore[no-untyped-def]
        self.stream_out[stream] += count
        self.busy += seconds

    def on_records_acked(self, topic, count):  # type: ignore[no-untyped-def]
        self.sends_completed[topic] += count

    def on_offsets_committed(self, offsets, seconds):  # type: ignore[no-untyped-def]
        self.commits += 1
        self.committed.update(offsets)

    def on_partitions_taken(self, assigned, seconds):  # type: ignore[no-untyped-def]
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


# -- exact counts under random programs, against a plain model --------------------------------

PROPERTY_SETTINGS = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: One step: (agent 0 or 1, partition, key, what the agent does: incr / pop / get, or
#: "bad": a value that cannot be decoded, sent raw).
STEPS = st.lists(
    st.tuples(
        st.integers(0, 1),
        st.integers(0, 1),
        st.sampled_from(["a", "b", "c"]),
        st.sampled_from(["incr", "incr", "pop", "get", "bad"]),
    ),
    min_size=1,
    max_size=60,
)


def sample(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples[name, frozenset(labels.items())]


async def run_program(steps: list[tuple[int, int, str, str]]) -> None:
    app = faust.App(f"sensors-prop-{next(_ids)}", topic_partitions=2, agent_restart_backoff=0.01)
    topics = [app.topic(f"t{i}", key_type=str, value_type=str, partitions=2) for i in range(2)]
    tables = [app.Table(f"tab{i}", default=int, partitions=2) for i in range(2)]
    done = [0, 0]

    def make_agent(i: int) -> faust.Agent:
        async def work(stream):  # type: ignore[no-untyped-def]
            table = tables[i]
            async for event in stream.events():
                op = event.value
                if op == "incr":
                    table[event.key] += 1
                elif op == "pop":
                    table.pop(event.key, None)
                else:
                    table.get(event.key)
                done[i] += 1

        return app.agent(topics[i], name=f"agent{i}")(work)

    agents = [make_agent(0), make_agent(1)]
    # The model: what every count must be.
    sent: Counter[tuple[str, int]] = Counter()
    bad: Counter[str] = Counter()
    events: Counter[int] = Counter()
    gets, sets, deletes = Counter[int](), Counter[int](), Counter[int]()
    state: list[dict[tuple[int, str], int]] = [{}, {}]
    await app.start()
    try:
        raw = [app.topic(f"t{i}", key_serializer="raw", value_serializer="raw") for i in range(2)]
        for i, partition, key, op in steps:
            sent[f"t{i}", partition] += 1
            if op == "bad":
                await raw[i].send(key=b'"k"', value=b"\xff not json", partition=partition)
                bad[f"t{i}"] += 1
                continue
            await topics[i].send(key=key, value=op, partition=partition)
            events[i] += 1
            gets[i] += 1
            held = state[i]
            if op == "incr":
                sets[i] += 1
                held[partition, key] = held.get((partition, key), 0) + 1
            elif op == "pop" and held.pop((partition, key), None) is not None:
                deletes[i] += 1
        await eventually(lambda: done == [events[0], events[1]])
        await eventually(lambda: app.error_counts.dead_lettered == sum(bad.values()))
        assert app.consumer is not None
        await app.consumer.commit()
        assert app.monitor is not None
        snap = json.loads(json.dumps(app.monitor.snapshot()))
        samples = metric_samples(render_metrics(app)[0])

        for i in range(2):
            topic = f"t{i}"
            total = sent[topic, 0] + sent[topic, 1]
            if total:
                assert snap["topics"][topic] == {
                    "messages_in": total,
                    "events_in": total - bad[topic],
                    "messages_out": total,
                    "decode_errors": bad[topic],
                }
                assert sample(samples, "faust_topic_messages_in_total", topic=topic) == total
                assert sample(samples, "faust_topic_events_in_total", topic=topic) == (
                    total - bad[topic]
                )
                assert snap["sends"][topic]["initiated"] == total
                assert snap["sends"][topic]["completed"] == total
            name = agents[i].name
            if events[i]:
                agent = snap["agents"][name]
                assert (agent["events_in"], agent["events_out"]) == (events[i], events[i])
                assert sample(samples, "faust_agent_events_out_total", agent=name) == events[i]
                assert (
                    sample(samples, "faust_agent_processing_seconds_count", agent=name) == events[i]
                )
            table = snap["tables"][f"tab{i}"]
            assert (table["gets"], table["sets"], table["deletes"]) == (
                gets[i],
                sets[i],
                deletes[i],
            )
            assert table["size"] == len(state[i])
            assert sample(samples, "faust_table_sets_total", table=f"tab{i}") == sets[i]
            changelog = f"{app.conf.id}-tab{i}-changelog"
            records = snap["sends"].get(changelog, {}).get("completed", 0)
            assert table["changelog_records"] == records
            for partition in range(2):
                if sent[topic, partition]:
                    labels = {"topic": topic, "partition": str(partition)}
                    assert sample(samples, "faust_consumer_lag", **labels) == 0
                    assert (
                        sample(samples, "faust_consumer_committed_offset", **labels)
                        == sent[topic, partition]
                    )
        assert snap["errors"]["decode"] == sum(bad.values())
        assert snap["errors"]["dead_lettered"] == sum(bad.values())
        assert sample(samples, "faust_errors_total", kind="decode") == sum(bad.values())
        assert sample(samples, "faust_errors_total", kind="dead_lettered") == sum(bad.values())
        kinds = Counter(e["kind"] for e in snap["recent_errors"])
        assert kinds["decode"] == min(sum(bad.values()), 50)
    finally:
        await app.stop()


@given(steps=STEPS)
@PROPERTY_SETTINGS
def test_monitor_counts_are_exact_under_random_programs(
    steps: list[tuple[int, int, str, str]],
) -> None:
    asyncio.run(run_program(steps))


# -- errors, dead letters, lag ----------------------------------------------------------------


async def test_agent_errors_dead_letters_and_send_errors_are_counted(app: faust.App) -> None:
    sensor = Recording()
    app.sensors.add(sensor)
    topic = app.topic("jobs", key_type=str, value_type=int, partitions=2)
    handled: list[int] = []

    @app.agent(topic, retries=0, on_error="dead_letter")
    async def jobs(stream):
        async for value in stream:
            if value < 0:
                raise ValueError(f"negative job {value}")
            handled.append(value)

    await app.start()
    for value in (1, -1, 2, -2, 3):
        await topic.send(key="k", value=value, partition=0)
    await eventually(lambda: len(handled) == 3 and app.error_counts.dead_lettered == 2)
    with pytest.raises(ValueError, match="partition 7 does not exist"):
        await topic.send(key="k", value=4, partition=7)
    assert app.monitor is not None
    snap = app.monitor.snapshot()
    assert snap["errors"]["agent"] == 2
    assert snap["errors"]["dead_lettered"] == 2
    assert snap["errors"]["send"] == 1
    assert snap["sends"]["jobs"] == {"initiated": 6, "completed": 5, "errors": 1, "pending": 0}
    dlq = jobs.dead_letter_topic
    assert snap["sends"][dlq]["completed"] == 2
    assert sensor.agent_errors == [jobs.name, jobs.name]
    assert sensor.dead_letters == [dlq, dlq]
    kinds = [e["kind"] for e in snap["recent_errors"]]
    assert kinds.count("agent") == 2 and kinds.count("dead_lettered") == 2
    assert kinds[-1] == "send" and "partition 7" in snap["recent_errors"][-1]["message"]
    samples = metric_samples(render_metrics(app)[0])
    assert sample(samples, "faust_errors_total", kind="agent") == 2
    assert sample(samples, "faust_send_errors_total", topic="jobs") == 1
    # retries=0: each event was taken once, the two that raised too.
    assert snap["agents"][jobs.name]["events_out"] == 5


async def test_decode_errors_reach_sensors_with_the_message(app: faust.App) -> None:
    sensor = Recording()
    app.sensors.add(sensor)
    topic = app.topic("nums", value_type=int, partitions=1)

    @app.agent(topic)
    async def nums(stream):
        async for _ in stream:
            pass

    await app.start()
    raw = app.topic("nums", value_serializer="raw")
    await raw.send(value=b"1")
    await raw.send(value=b"{nope")
    await eventually(lambda: app.error_counts.dead_lettered == 1)
    assert sensor.decode_errors == [("nums", 1)]
    assert app.monitor is not None
    assert app.monitor.snapshot()["topics"]["nums"]["decode_errors"] == 1


async def test_lag_is_the_end_offset_minus_the_committed_offset(app: faust.App) -> None:
    topic = app.topic("slow", key_type=str, value_type=int, partitions=2)
    release = asyncio.Event()
    seen: list[int] = []

    @app.agent(topic)
    async def slow(stream):
        async for value in stream:
            await release.wait()
            seen.append(value)

    await app.start()
    for value in range(10):
        await topic.send(key="k", value=value, partition=0)
    assert app.monitor is not None
    monitor = app.monitor

    def lag() -> Any:
        return {r["partition"]: r["lag"] for r in monitor.snapshot()["partitions"]}

    await eventually(lambda: lag() == {0: 10, 1: 0})  # partition 1 is empty
    snap = monitor.snapshot()
    assert snap["agents"][slow.name]["events_in"] == 10
    assert snap["agents"][slow.name]["buffered"] == 9  # one is in the agent's hands
    release.set()
    await eventually(lambda: len(seen) == 10)
    assert app.consumer is not None
    await app.consumer.commit()
    assert lag() == {0: 0, 1: 0}
    samples = metric_samples(render_metrics(app)[0])
    assert sample(samples, "faust_consumer_lag", topic="slow", partition="0") == 0
    assert sample(samples, "faust_consumer_end_offset", topic="slow", partition="0") == 10


def test_render_metrics_without_the_monitor_says_so() -> None:
    app = faust.App("metrics-off", sensors_enabled=False)
    body, content_type = render_metrics(app)
    assert content_type.startswith("text/plain")
    samples = metric_samples(body)
    assert sample(samples, "faust_sensors_enabled") == 0
    assert [name for name, _ in samples] == ["faust_sensors_enabled"]


def test_every_metric_follows_the_naming_conventions(app: faust.App) -> None:
    body, _ = render_metrics(app)
    for family in text_string_to_metric_families(body.decode()):
        assert family.name.startswith("faust_")
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples)
        if family.type == "histogram":
            assert family.name.endswith("_seconds")

    other = faust.App("other-app")
    assert registry_for(other) is not registry_for(app)  # a registry per app...
    assert registry_for(app) is registry_for(app)  # ...made once


async def test_records_sending_is_called_per_record_only_for_sensors_that_want_it(
    app: faust.App,
) -> None:
    class Initiated(faust.Sensor):
        def __init__(self) -> None:
            self.topics: list[tuple[str, int]] = []

        def on_records_sending(self, topic, count):  # type: ignore[no-untyped-def]
            self.topics.append((topic, count))

    topic = app.topic("out", value_type=int, partitions=1)
    sensor = Initiated()
    app.sensors.add(sensor)
    await topic.send(value=1)
    topic.send_soon(value=2)
    await topic.send(value=3)
    assert sensor.topics == [("out", 1)] * 3
    app.sensors.remove(sensor)
    await topic.send(value=4)
    assert len(sensor.topics) == 3
    assert app.monitor is not None
    assert app.monitor.snapshot()["sends"]["out"]["initiated"] == 4


async def test_a_sensor_that_raises_is_logged_and_the_data_path_goes_on(
    app: faust.App, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(faust.Sensor):
        def on_messages_in(self, tp, messages):  # type: ignore[no-untyped-def]
            raise RuntimeError("sensor bug")

        def on_table_set(self, table, key, value):  # type: ignore[no-untyped-def]
            raise RuntimeError("sensor bug in a table hook")

    topic = app.topic("data", key_type=str, value_type=int, partitions=1)
    table = app.Table("sums", default=int, partitions=1)
    seen: list[int] = []

    @app.agent(topic)
    async def sums(stream):
        async for event in stream.events():
            table[event.key] += event.value
            seen.append(event.value)

    app.sensors.add(Broken())
    with caplog.at_level(logging.ERROR, logger="faust.sensors.base"):
        await app.start()
        for value in range(20):
            await topic.send(key="k", value=value)
        await eventually(lambda: len(seen) == 20)
    assert table["k"] == sum(range(20))
    assert app.sensors.failures >= 21  # each fetched batch, and each of the 20 writes
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert {str(r.exc_info[1]) for r in tracebacks if r.exc_info} == {
        "sensor bug",
        "sensor bug in a table hook",
    }  # once per hook; the repeats are one line each
    assert app.monitor is not None
    assert app.monitor.snapshot()["topics"]["data"]["messages_in"] == 20  # others still hear


# -- Faust's hooks, with Faust's arguments


class FaustSensor(faust.Sensor):
    """A sensor written for Faust: per-message, per-event and per-record hooks, and the
    commit / rebalance / assignment hooks with their state."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def on_message_in(self, tp, offset, message):  # type: ignore[no-untyped-def]
        self.calls.append(("message_in", tp, offset, message.offset))

    def on_message_out(self, tp, offset, message):  # type: ignore[no-untyped-def]
        self.calls.append(("message_out", tp, offset))

    def on_stream_event_in(self, tp, offset, stream, event):  # type: ignore[no-untyped-def]
        self.calls.append(("event_in", tp, offset, event.value))
        return {"started": offset}

    def on_stream_event_out(self, tp, offset, stream, event, state=None):  # type: ignore[no-untyped-def]
        assert isinstance(stream, faust.Stream)
        self.calls.append(("event_out", tp, offset, state))

    def on_send_initiated(self, producer, topic, message, keysize, valsize):  # type: ignore[no-untyped-def]
        self.calls.append(("send_initiated", topic, message.value, keysize, valsize))
        return topic

    def on_send_completed(self, producer, state, metadata):  # type: ignore[no-untyped-def]
        self.calls.append(("send_completed", state, metadata.topic, metadata.offset))

    def on_send_error(self, producer, exc, state):  # type: ignore[no-untyped-def]
        self.calls.append(("send_error", state, type(exc).__name__))

    def on_commit_initiated(self, consumer):  # type: ignore[no-untyped-def]
        self.calls.append(("commit_initiated", type(consumer).__name__))
        return "commit-state"

    def on_commit_completed(self, consumer, state):  # type: ignore[no-untyped-def]
        self.calls.append(("commit_completed", state))

    def on_rebalance_start(self, app):  # type: ignore[no-untyped-def]
        self.calls.append(("rebalance_start", app.conf.id))
        return "rebalance-state"

    def on_rebalance_return(self, app, state):  # type: ignore[no-untyped-def]
        self.calls.append(("rebalance_return", state))

    def on_rebalance_end(self, app, state):  # type: ignore[no-untyped-def]
        self.calls.append(("rebalance_end", state))

    def on_assignment_start(self, assignor):  # type: ignore[no-untyped-def]
        self.calls.append(("assignment_start",))
        return "assignment-state"

    def on_assignment_completed(self, assignor, state):  # type: ignore[no-untyped-def]
        self.calls.append(("assignment_completed", state))

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        return [call for call in self.calls if call[0] == kind]


async def test_a_faust_sensor_gets_fausts_arguments_and_its_state(app: faust.App) -> None:
    sensor = FaustSensor()
    app.sensors.add(sensor)
    topic = app.topic("faust-hooks", value_type=int, partitions=1)
    seen: list[int] = []

    @app.agent(topic)
    async def reader(stream):
        async for value in stream:
            seen.append(value)

    await app.start()
    for value in (10, 11):
        await topic.send(value=value)
    await eventually(lambda: seen == [10, 11])
    tp = TP("faust-hooks", 0)
    # The agent asks for the next event at once: both are out (processed).
    await eventually(lambda: len(sensor.of("message_out")) == 2)
    assert sensor.of("message_in") == [("message_in", tp, 0, 0), ("message_in", tp, 1, 1)]
    assert sensor.of("message_out") == [("message_out", tp, 0), ("message_out", tp, 1)]
    assert sensor.of("event_in") == [("event_in", tp, 0, 10), ("event_in", tp, 1, 11)]
    assert sensor.of("event_out") == [
        ("event_out", tp, 0, {"started": 0}),
        ("event_out", tp, 1, {"started": 1}),
    ]
    # Each event is out before its message: the stream moved past it, then it counted.
    kinds = [c[0] for c in sensor.calls if c[0] in ("event_in", "event_out", "message_out")]
    assert kinds == ["event_in", "event_out", "message_out"] * 2
    sends = [c for c in sensor.of("send_initiated") if c[1] == "faust-hooks"]
    assert sends == [("send_initiated", "faust-hooks", b"10", 0, 2)] + [
        ("send_initiated", "faust-hooks", b"11", 0, 2)
    ]
    assert ("send_completed", "faust-hooks", "faust-hooks", 1) in sensor.calls
    assert sensor.of("rebalance_start")[0] == ("rebalance_start", app.conf.id)
    assert ("rebalance_return", "rebalance-state") in sensor.calls
    assert ("rebalance_end", "rebalance-state") in sensor.calls
    assert ("assignment_completed", "assignment-state") in sensor.calls
    await app.consumer.commit()
    assert sensor.of("commit_initiated")[-1] == ("commit_initiated", "Consumer")
    assert sensor.of("commit_completed")[-1] == ("commit_completed", "commit-state")


async def test_send_error_reaches_fausts_hook_with_its_state(app: faust.App) -> None:
    sensor = FaustSensor()
    app.sensors.add(sensor)
    await app.start()
    with pytest.raises(ValueError, match="partition 9"):
        await app.topic("small", partitions=1).send(value=b"x", partition=9)
    # Called from the record's future (its done callbacks run on the next loop turn).
    await eventually(lambda: ("send_error", "small", "ValueError") in sensor.calls)


async def test_fausts_per_event_hooks_cost_nothing_unless_overridden(app: faust.App) -> None:
    """With only the Monitor (batch hooks), no stream, message or record is touched."""
    topic = app.topic("plain", value_type=int, partitions=1)
    streams: list[Any] = []
    messages: list[Any] = []

    @app.agent(topic)
    async def reader(stream):
        streams.append(stream)
        async for _ in stream.events():
            messages.append(faust.current_event().message)

    await app.start()
    await topic.send(value=1)
    await eventually(lambda: len(messages) == 1)
    for hook in ("on_message_in", "on_message_out", "on_stream_event_in", "on_send_initiated"):
        assert app.sensors.wants(hook) == []
    assert app.sensors.send_sensors == [] and app.sensors.stream_sensors == []
    assert type(streams[0]) is faust.Stream and messages[0].on_done is None
