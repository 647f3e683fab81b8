"""Agents through the public API on the embedded broker."""

from __future__ import annotations

import asyncio
import functools
import logging

import pytest

import faust
from faust.topics import legal_topic_name
from faust.transport.base import TP
from tests.conftest import eventually


class Add(faust.Record):
    a: int
    b: int


async def test_agent_processes_sent_values(app: faust.App) -> None:
    seen: list[int] = []
    topic = app.topic("numbers", value_type=int, partitions=1)

    @app.agent(topic)
    async def collect(stream):
        async for value in stream:
            seen.append(value)

    await app.start()
    for i in range(5):
        await collect.send(value=i)
    await eventually(lambda: len(seen) == 5)
    assert seen == [0, 1, 2, 3, 4]


async def test_actor_is_an_alias_of_agent(app: faust.App) -> None:
    seen = []

    @app.actor()
    async def collect(stream):
        async for value in stream:
            seen.append(value)

    assert isinstance(collect, faust.Agent)
    await app.start()
    await collect.cast("hi")
    await eventually(lambda: seen == ["hi"])


async def test_default_topic_is_named_after_the_agent(app: faust.App) -> None:
    @app.agent()
    async def process(stream):
        async for _ in stream:
            pass

    # Declared inside a function: '<locals>' in its name is made legal for Kafka.
    assert process.name.endswith("test_default_topic_is_named_after_the_agent.<locals>.process")
    assert process.channel.topics == (
        f"{app.conf.id}-{__name__}.test_default_topic_is_named_after_the_agent._locals_.process",
    )


def _collecting_app(app_id: str, broker: str, seen: list[int]) -> tuple[faust.App, faust.Agent]:
    # Both apps' agents are this one function: same module, same name.
    app = faust.App(app_id, broker=broker, topic_partitions=1)

    @app.agent(value_type=int)
    async def collector(stream):
        async for value in stream:
            seen.append(value)

    return app, collector


async def test_apps_with_same_named_agents_do_not_share_a_topic() -> None:
    # One broker shared by both apps, as a Kafka cluster would be.
    broker = f"memory://same-named-agents-{id(object())}"
    seen_a: list[int] = []
    seen_b: list[int] = []
    app_a, collector_a = _collecting_app("shop-a", broker, seen_a)
    app_b, collector_b = _collecting_app("shop-b", broker, seen_b)
    assert collector_a.name == collector_b.name
    await app_a.start()
    await app_b.start()
    try:
        await collector_a.send(value=1)
        await collector_b.send(value=2)
        await eventually(lambda: seen_a and seen_b)
        await asyncio.sleep(0.1)  # time for a stray event to arrive, were there one
        assert (seen_a, seen_b) == ([1], [2])
        assert collector_a.channel.topics == (
            f"shop-a-{__name__}._collecting_app._locals_.collector",
        )
    finally:
        await app_a.stop()
        await app_b.stop()


async def test_ask_returns_the_yielded_value(app: faust.App) -> None:
    @app.agent(value_type=Add)
    async def adder(stream):
        async for add in stream:
            yield add.a + add.b

    await app.start()
    assert await asyncio.wait_for(adder.ask(Add(a=2, b=3)), 5) == 5


async def test_ask_works_right_after_start_and_returns_records(app: faust.App) -> None:
    @app.agent(value_type=Add)
    async def swap(stream):
        async for add in stream:
            yield Add(a=add.b, b=add.a)

    await app.start()
    reply = await asyncio.wait_for(swap.ask(Add(a=1, b=9)), 1.0)
    assert reply == Add(a=9, b=1)


async def test_map_kvmap_and_join(app: faust.App) -> None:
    @app.agent(value_type=int, concurrency=3)
    async def double(stream):
        async for value in stream:
            yield value * 2

    await app.start()
    assert [r async for r in double.map([1, 2, 3])] == [2, 4, 6]
    assert await double.join([5, 6]) == [10, 12]
    assert await double.kvmap({"a": 1, "b": 10}) == {"a": 2, "b": 20}


async def test_yielded_values_go_to_every_kind_of_sink(app: faust.App) -> None:
    called: list[int] = []
    async_called: list[int] = []
    received: list[int] = []
    sink_topic = app.topic("sink-topic", value_type=int)

    @app.agent(sink_topic)
    async def downstream(stream):
        async for value in stream:
            received.append(value)

    async def async_sink(value: int) -> None:
        async_called.append(value)

    @app.agent(value_type=int, sink=[downstream, called.append, async_sink])
    async def source(stream):
        async for value in stream:
            yield value + 100

    # A topic sink added after declaration.
    source.add_sink(sink_topic)
    await app.start()
    await source.send(value=1)
    await eventually(lambda: len(received) == 2)
    assert called == [101] and async_called == [101]
    assert received == [101, 101]


def _committable(app: faust.App, topic: str, partition: int = 0) -> int:
    return app.consumer.trackers[TP(topic, partition)].committable()


async def test_crashing_agent_is_logged_and_restarted(
    app: faust.App, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[int] = []

    @app.agent(app.topic("fragile", value_type=int, partitions=1), retries=0)
    async def fragile(stream):
        async for value in stream:
            if value == 13:
                raise RuntimeError("unlucky number")
            seen.append(value)

    await app.start()
    with caplog.at_level(logging.ERROR):
        for value in (1, 13, 2):
            await fragile.send(value=value)
        await eventually(lambda: seen == [1, 2])
    crash = [r for r in caplog.records if "raised" in r.getMessage()]
    assert len(crash) == 1
    assert "unlucky number" in crash[0].getMessage()
    assert "offset=1" in crash[0].getMessage()
    assert crash[0].exc_info is not None  # the traceback is logged
    assert app.agent_errors == 1


async def test_a_transient_error_heals_with_a_retry_in_partition_order(app: faust.App) -> None:
    """The event the agent raised on is handed again, before the events after it."""
    topic = app.topic("flaky", value_type=int, partitions=1)
    seen: list[int] = []
    failed: set[int] = set()

    @app.agent(topic)
    async def flaky(stream):
        async for value in stream:
            if value in (3, 7) and value not in failed:
                failed.add(value)
                raise ConnectionError(f"database away while on {value}")
            seen.append(value)

    await app.start()
    for value in range(10):
        await topic.send(value=value)
    await eventually(lambda: len(seen) == 10)
    assert seen == list(range(10))
    counts = app.error_counts
    assert (counts.agent_errors, counts.retried, counts.dead_lettered) == (2, 2, 0)
    await eventually(lambda: _committable(app, "flaky") == 10)
    assert not any(name.endswith("-dlq") for name in app.transport.broker.logs)


async def test_an_event_that_keeps_raising_is_retried_then_dead_lettered(
    app: faust.App, caplog: pytest.LogCaptureFixture
) -> None:
    topic = app.topic("payments", key_type=str, value_type=int, partitions=2)
    seen: list[int] = []
    tries = 0

    @app.agent(topic, retries=2)
    async def pay(stream):
        nonlocal tries
        async for value in stream:
            if value == 13:
                tries += 1
                raise ValueError("amount 13 is refused")
            seen.append(value)

    await app.start()
    with caplog.at_level(logging.ERROR):
        for value in (1, 13, 2):
            await topic.send(key="acct", value=value, partition=1, headers={"trace": b"t-1"})
        await eventually(lambda: app.error_counts.dead_lettered == 1)
    assert seen == [1, 2] and tries == 3
    counts = app.error_counts
    assert (counts.agent_errors, counts.retried, counts.dead_lettered) == (3, 2, 1)
    assert counts.dead_letter_failures == 0 and counts.skipped == 0

    dlq = f"{app.conf.id}-{pay.name}-dlq".replace("<", "_").replace(">", "_")
    assert pay.dead_letter_topic == dlq
    logs = app.transport.broker.logs[dlq]
    assert len(logs) == 2  # as many partitions as the source topic
    assert logs[0] == [] and len(logs[1]) == 1  # the source's partition
    _, key, value, headers = logs[1][0]
    assert (key, value) == (b"acct", b"13")  # the original bytes
    assert dict(headers) == {
        "trace": b"t-1",
        "faust.error.type": b"ValueError",
        "faust.error.message": b"amount 13 is refused",
        "faust.source.topic": b"payments",
        "faust.source.partition": b"1",
        "faust.source.offset": b"1",
        "faust.agent": pay.name.encode(),
        "faust.error.attempts": b"3",
    }
    # Nothing else was skipped, and the offset moves on past the dead letter.
    await eventually(lambda: _committable(app, "payments", 1) == 3)
    gave_up = [r.getMessage() for r in caplog.records if "dead-letter topic" in r.getMessage()]
    assert len(gave_up) == 1 and "offset=1 after 3 attempts" in gave_up[0]


async def test_an_agent_over_a_filtered_stream_goes_on_after_a_crash(app: faust.App) -> None:
    """The restart keeps the agent's queue, which a filter's view of it shares."""
    topic = app.topic("filtered", value_type=int, partitions=1)
    seen: list[int] = []

    @app.agent(topic, retries=0)
    async def positive(stream):
        async for value in stream.filter(lambda v: v > 0):
            if value == 2:
                raise RuntimeError("two")
            seen.append(value)

    await app.start()
    for value in (1, -1, 2, 3):
        await topic.send(value=value)
    await eventually(lambda: seen == [1, 3])
    await eventually(lambda: _committable(app, "filtered") == 4)


async def test_a_retry_of_a_revoked_partition_is_left_to_its_new_owner(app: faust.App) -> None:
    slow = faust.App(f"{app.conf.id}-revoke", agent_restart_backoff=0.3)
    topic = slow.topic("moving", value_type=int, partitions=1)
    seen: list[int] = []

    @slow.agent(topic)
    async def moving(stream):
        async for value in stream:
            if value == 1:
                raise ConnectionError("away")
            seen.append(value)

    await slow.start()
    try:
        await topic.send(value=1)
        await eventually(lambda: slow.error_counts.retried == 1)
        await slow.consumer.on_partitions_revoked({TP("moving", 0)})  # during the back-off
        await asyncio.sleep(0.5)
        assert slow.error_counts.agent_errors == 1  # not handed again
        assert not moving._attempts
        assert slow.error_counts.dead_lettered == 0
    finally:
        await slow.stop()


async def test_each_failing_event_waits_only_the_first_back_off(app: faust.App) -> None:
    """An agent failing now and then never ends up pausing long after each failure."""
    slow = faust.App(f"{app.conf.id}-backoff", agent_restart_backoff=0.1)
    topic = slow.topic("every-third", value_type=int, partitions=1)
    seen: list[int] = []
    failed: set[int] = set()

    @slow.agent(topic)
    async def sometimes(stream):
        async for value in stream:
            if value % 3 == 0 and value not in failed:
                failed.add(value)
                raise ConnectionError("flaky")
            seen.append(value)

    await slow.start()
    try:
        loop = asyncio.get_running_loop()
        begin = loop.time()
        for value in range(24):  # eight failures
            await topic.send(value=value)
        await eventually(lambda: len(seen) == 24, timeout=10.0)
        # 8 x 0.1 s; a back-off that doubled per crash would wait 0.1 + 0.2 + ... = 25.5 s.
        assert loop.time() - begin < 3.0
        assert seen == list(range(24))
    finally:
        await slow.stop()


async def test_back_off_without_an_event_resets_after_a_healthy_run(
    app: faust.App, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from faust.agents import backoff

    monkeypatch.setattr(backoff, "HEALTHY_RUN", 0.3)
    topic = app.topic("startup", value_type=str, partitions=1)
    starts = 0
    seen: list[str] = []

    @app.agent(topic)
    async def boot(stream):
        nonlocal starts
        starts += 1
        if starts <= 3:
            raise ConnectionError("cannot reach the cache at start")
        async for event in stream.noack().events():
            event.ack()  # nothing in hand when it raises
            if event.value == "die":
                raise RuntimeError("lost the cache")
            seen.append(event.value)

    await app.start()
    with caplog.at_level(logging.ERROR):
        await eventually(lambda: starts == 4)
        await asyncio.sleep(0.4)  # a healthy run
        await topic.send(value="die")
        await topic.send(value="after")
        await eventually(lambda: seen == ["after"])
    waits = [
        r.getMessage().rsplit(" in ", 1)[1]
        for r in caplog.records
        if "Restarting it in" in r.getMessage()
    ]
    assert waits == ["0.01 s.", "0.02 s.", "0.04 s.", "0.01 s."]
    assert backoff.restart_backoff(0.5).next(ran_for=0.0) == 0.5
    doubling = backoff.restart_backoff(0.5)
    assert [doubling.next(ran_for=0.0) for _ in range(8)][-3:] == [16.0, 30.0, 30.0]
    assert doubling.next(ran_for=0.3) == 0.5


async def test_on_error_stop_stops_the_worker_without_committing(
    app: faust.App, capsys: pytest.CaptureFixture[str]
) -> None:
    from faust.worker import Worker

    topic = app.topic("strict", value_type=int, partitions=1)
    seen: list[int] = []

    @app.agent(topic, retries=1, on_error="stop")
    async def strict(stream):
        async for value in stream:
            if value == 13:
                raise ValueError("refused")
            seen.append(value)

    worker = Worker(app, quiet=True)
    running = asyncio.ensure_future(worker.run())
    await eventually(lambda: app.started)
    for value in (1, 13, 2):
        await topic.send(value=value)
    await asyncio.wait_for(running, 5.0)
    assert worker.exit_code == 1
    assert seen == [1]  # nothing after the failing event is processed
    errors = [line for line in capsys.readouterr().err.splitlines() if "faust: error:" in line]
    assert len(errors) == 1
    assert "on_error='stop'" in errors[0] and "offset=1 after 2 attempts" in errors[0]
    committed = app.transport.broker.groups[app.conf.group_id].committed
    assert committed[("strict", 0)] == 1  # the failing event is read again on restart
    assert app.error_counts.dead_lettered == 0


async def test_test_context_keeps_dead_letters(app: faust.App) -> None:
    @app.agent(value_type=int, retries=1)
    async def picky(stream):
        async for value in stream:
            if value < 0:
                raise ValueError(f"negative: {value}")
            yield value

    async with picky.test_context() as agent:
        await agent.put(-1)
        event = await agent.put(5)
        assert agent.results == {event.message.offset: 5}
        [(dead, exc)] = agent.dead_letters
        assert dead.value == -1 and "negative: -1" in str(exc)
    assert app.error_counts.retried == 1


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"retries": -1}, "retries must be an int >= 0"),
        ({"on_error": "ignore"}, "on_error must be one of dead_letter, stop, skip"),
    ],
)
def test_wrong_error_options_are_refused(app: faust.App, options: dict, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):

        @app.agent(**options)
        async def bad(stream):
            async for _ in stream:
                pass


async def test_concurrency_spreads_events_over_actors(app: faust.App) -> None:
    active = 0
    peak = 0
    done = 0

    @app.agent(value_type=int, concurrency=4)
    async def slow(stream):
        nonlocal active, peak, done
        async for _ in stream:
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.02)
            active -= 1
            done += 1

    await app.start()
    for i in range(8):
        await slow.send(value=i)
    await eventually(lambda: done == 8)
    assert peak == 4


async def test_isolated_partitions_run_one_actor_per_partition(app: faust.App) -> None:
    by_partition: dict[int, list[int]] = {}
    tasks: dict[int, set[str]] = {}

    topic = app.topic("iso", value_type=int, partitions=4)

    @app.agent(topic, isolated_partitions=True)
    async def per_partition(stream):
        async for event in stream.events():
            p = event.message.partition
            by_partition.setdefault(p, []).append(event.value)
            tasks.setdefault(p, set()).add(asyncio.current_task().get_name())

    await app.start()
    for i in range(16):
        await topic.send(value=i, partition=i % 4)
    await eventually(lambda: sum(map(len, by_partition.values())) == 16)
    assert sorted(by_partition) == [0, 1, 2, 3]
    assert by_partition[1] == [1, 5, 9, 13]
    names = [next(iter(v)) for v in tasks.values()]
    assert all(len(v) == 1 for v in tasks.values()) and len(set(names)) == 4


async def test_an_isolated_actors_stream_has_its_partition_active(app: faust.App) -> None:
    # As Faust's isolated-partitions example asserts of each event.
    topic = app.topic("iso-active", value_type=int, partitions=2)
    seen: list[tuple[int, set[TP]]] = []

    @app.agent(topic, isolated_partitions=True)
    async def per_partition(stream):
        async for event in stream.events():
            assert event.message.tp in stream.active_partitions
            seen.append((event.value, stream.active_partitions))

    await app.start()
    await topic.send(value=0, partition=0)
    await topic.send(value=1, partition=1)
    await eventually(lambda: len(seen) == 2)
    assert sorted(seen) == [(0, {TP("iso-active", 0)}), (1, {TP("iso-active", 1)})]


def test_isolated_partitions_cannot_have_concurrency(app: faust.App) -> None:
    with pytest.raises(ValueError, match="isolated_partitions"):

        @app.agent(isolated_partitions=True, concurrency=2)
        async def bad(stream):
            async for _ in stream:
                pass


async def test_test_context_runs_the_agent_without_a_worker(app: faust.App) -> None:
    @app.agent(value_type=Add)
    async def adder(stream):
        async for add in stream:
            yield add.a + add.b

    async with adder.test_context() as agent:
        event = await agent.put(Add(a=1, b=2))
        assert agent.results[event.message.offset] == 3
        event = await agent.put(Add(a=10, b=20))
        assert agent.results[event.message.offset] == 30
    assert not app.started


async def test_agent_over_an_in_memory_channel(app: faust.App) -> None:
    channel = app.channel(value_type=int)
    seen: list[int] = []

    @app.agent(channel)
    async def reader(stream):
        async for value in stream:
            seen.append(value)

    await app.start()
    await channel.send(value=42)
    await reader.send(value=43)
    await eventually(lambda: seen == [42, 43])


async def test_revoked_partitions_stop_isolated_actors_and_drop_buffered_events(
    app: faust.App,
) -> None:
    from faust.transport.base import TP

    topic = app.topic("iso-revoke", value_type=int, partitions=2)
    release = asyncio.Event()
    seen: list[int] = []

    @app.agent(topic, isolated_partitions=True)
    async def per_partition(stream):
        async for value in stream:
            await release.wait()
            seen.append(value)

    await app.start()
    for i in range(6):
        await topic.send(value=i, partition=0)
    await eventually(lambda: 0 in per_partition._partition_actors)
    queue, task = per_partition._partition_actors[0]
    await eventually(lambda: len(queue) == 5)  # one in the agent's hands, five buffered
    revoke = asyncio.ensure_future(app.consumer.on_partitions_revoked({TP("iso-revoke", 0)}))
    await asyncio.sleep(0.05)
    release.set()
    await revoke
    assert 0 not in per_partition._partition_actors and task.done()
    assert seen == [0]  # the event in hand finished; the buffered ones were dropped
    assert TP("iso-revoke", 0) not in app.consumer.trackers


def test_plain_def_agent_fails_at_declaration(app: faust.App) -> None:
    with pytest.raises(TypeError, match=r"Agent .*plain: an agent must be an async def"):

        @app.agent()
        def plain(stream):
            for value in stream:
                print(value)

    assert not app.agents


async def test_async_generator_agent_is_accepted(app: faust.App) -> None:
    @app.agent()
    async def doubler(stream):
        async for value in stream:
            yield value * 2

    assert app.agents[doubler.name] is doubler


async def test_a_partial_of_an_async_def_is_an_agent(app: faust.App) -> None:
    # As Faust programs bind channels to agent functions: app.agent(ch)(partial(f, out)).
    out = app.channel(value_type=str)
    seen: list[str] = []

    async def tag(prefix: str, stream):
        """Tags each value."""
        async for value in stream:
            yield f"{prefix}:{value}"

    async def collect(stream):
        async for value in stream:
            seen.append(value)

    source = app.channel(value_type=str)
    tagger = app.agent(source, sink=[out])(functools.partial(tag, "a"))
    app.agent(out, name="collect")(collect)
    assert tagger.name == f"{__name__}.{tag.__qualname__}"
    assert tagger.help == "Tags each value."
    with pytest.raises(TypeError, match=r"Agent .*plain: an agent must be an async def"):

        def plain(prefix, stream):
            return stream

        app.agent()(functools.partial(plain, "a"))

    await app.start()
    await source.send(value="x")
    await eventually(lambda: seen == ["a:x"])


async def test_an_agent_over_group_by_loses_no_buffered_event_when_it_restarts(
    app: faust.App,
) -> None:
    """The events waiting in the repartitioned stream when the agent crashes are processed
    by the restarted agent (the failed one first, as a retry), once each, and both topics'
    offsets are committed past them."""
    topic = app.topic("orders-in", value_type=int, partitions=2)
    seen: list[int] = []
    crashed: list[int] = []

    @app.agent(topic)
    async def by_parity(stream):
        async for value in stream.group_by(lambda v: v % 2, name="parity"):
            if value == 5 and not crashed:
                crashed.append(value)
                # The events after 5 are in this stream's buffer by now.
                await asyncio.sleep(0.05)
                raise ConnectionError("database away")
            seen.append(value)

    await app.start()
    for value in range(40):
        await topic.send(key=str(value).encode(), value=value)
    await eventually(lambda: len(seen) >= 40)
    assert sorted(seen) == list(range(40))
    counts = app.error_counts
    assert (counts.agent_errors, counts.retried, counts.dead_lettered) == (1, 1, 0)
    for partition in range(2):
        end = len(app.transport.broker.logs["orders-in"][partition])
        await eventually(lambda p=partition, e=end: _committable(app, "orders-in", p) == e)
    repartition = legal_topic_name(f"{by_parity.name}-orders-in-parity-repartition")
    ends = {
        p: len(app.transport.broker.logs[repartition][p])
        for p in range(len(app.transport.broker.logs[repartition]))
    }
    for partition, end in ends.items():
        await eventually(lambda p=partition, e=end: _committable(app, repartition, p) == e)


async def test_an_agent_over_take_retries_the_whole_batch_it_raised_on(app: faust.App) -> None:
    """Every event of the list the agent raised on is handed again, in order, and the
    topic's offset is committed past all of them once they are processed."""
    topic = app.topic("batches", value_type=int, partitions=1)
    batches: list[list[int]] = []
    failed: list[list[int]] = []

    @app.agent(topic)
    async def bulk(stream):
        async for batch in stream.take(4, within=0.2):
            if 5 in batch and not failed:
                failed.append(batch)
                raise ConnectionError("bulk insert failed")
            batches.append(batch)

    await app.start()
    for value in range(12):
        await topic.send(value=value)
    await eventually(lambda: sum(len(b) for b in batches) >= 12)
    assert sorted(v for b in batches for v in b) == list(range(12))
    assert [v for b in batches for v in b] == list(range(12))
    assert (app.error_counts.retried, app.error_counts.dead_lettered) == (1, 0)
    await eventually(lambda: _committable(app, "batches") == 12)


async def test_an_agent_over_take_dead_letters_every_event_of_a_batch_that_keeps_failing(
    app: faust.App,
) -> None:
    topic = app.topic("bad-batches", value_type=int, partitions=1)
    batches: list[list[int]] = []

    @app.agent(topic, retries=1)
    async def bulk(stream):
        async for batch in stream.take(3, within=0.2):
            if 4 in batch:
                raise ValueError("poison")
            batches.append(batch)

    await app.start()
    for value in range(9):
        await topic.send(value=value)
    tp = TP("bad-batches", 0)
    await eventually(lambda: tp in app.consumer.trackers and _committable(app, tp.topic) == 9)
    processed = sorted(v for b in batches for v in b)
    dlq = app.transport.broker.logs[bulk.dead_letter_topic][0]
    dead = sorted(int(entry[2]) for entry in dlq)
    assert sorted(processed + dead) == list(range(9))
    assert 4 in dead
    assert app.error_counts.dead_lettered == len(dead)


async def test_an_agent_over_group_by_counts_the_retries_of_the_only_event(
    app: faust.App,
) -> None:
    """The retried event goes back to the repartitioned stream's queue even when that
    queue is empty (an empty queue is falsy: it once went to the source queue instead,
    where each retry made a new copy whose attempts started again from 1, forever)."""
    topic = app.topic("single-in", value_type=int, partitions=1)
    attempts: list[int] = []

    @app.agent(topic, retries=2)
    async def by_parity(stream):
        async for value in stream.group_by(lambda v: v % 2, name="single-parity"):
            attempts.append(value)
            raise ConnectionError("database away")

    await app.start()
    await topic.send(value=7)
    await eventually(lambda: app.error_counts.dead_lettered == 1)
    assert app.error_counts.retried == 2
    await asyncio.sleep(0.1)
    assert attempts == [7, 7, 7]


async def test_ask_nowait_returns_a_promise_of_the_reply_and_kvjoin(app: faust.App) -> None:
    @app.agent(value_type=int, concurrency=2)
    async def double(stream):
        async for value in stream:
            yield value * 2

    await app.start()
    promise = await double.ask_nowait(21, correlation_id="c-1")
    assert isinstance(promise, faust.agents.ReplyPromise)
    assert promise.correlation_id == "c-1" and promise.reply_to == app.conf.reply_to
    assert await asyncio.wait_for(promise, 5) == 42
    assert await double.kvjoin([("a", 1), ("b", 2)]) == [2, 4]
    assert await double.kvjoin({"x": 5}) == [10]
    with pytest.raises(ValueError, match="reply topic"):
        await double.ask_nowait(1, reply_to="elsewhere")


async def test_throw_raises_in_the_agent_which_restarts_without_losing_events(
    app: faust.App,
) -> None:
    topic = app.topic("t", value_type=int, partitions=1)
    seen: list[int] = []
    errors: list[str] = []

    @app.agent(topic)
    async def reader(stream):
        try:
            async for value in stream:
                seen.append(value)
        except RuntimeError as exc:
            errors.append(str(exc))
            raise

    await app.start()
    await topic.send(value=1)
    await eventually(lambda: seen == [1])
    await reader.throw(RuntimeError("reload"))  # while it waits for an event
    await eventually(lambda: errors == ["reload"])
    await eventually(lambda: len(reader._streams) == 1)
    await topic.send(value=2)
    await eventually(lambda: seen == [1, 2])
    assert app.error_counts.agent_errors == 1


def test_unknown_supervisor_strategy_is_refused(app: faust.App) -> None:
    class ForfeitOneForOneSupervisor:
        pass

    with pytest.raises(ValueError, match="supervisor_strategy"):

        @app.agent(supervisor_strategy=ForfeitOneForOneSupervisor)
        async def agent(stream):
            async for _ in stream:
                pass


@pytest.mark.parametrize(
    ("strategy", "runs_after_crash"),
    [(faust.agents.OneForOneSupervisor, 3), (faust.agents.OneForAllSupervisor, 4)],
)
async def test_supervisor_strategy_restarts_one_or_all_actors(
    app: faust.App, strategy: type, runs_after_crash: int
) -> None:
    topic = app.topic("t", value_type=int, partitions=1)
    runs: list[int] = []
    seen: list[int] = []
    raised: list[int] = []

    @app.agent(topic, concurrency=2, supervisor_strategy=strategy)
    async def work(stream):
        runs.append(1)
        async for value in stream:
            if value == 13 and not raised:
                raised.append(value)
                raise ValueError("once")
            seen.append(value)

    await app.start()
    await eventually(lambda: len(runs) == 2)
    await topic.send(value=13)
    await eventually(lambda: len(runs) == runs_after_crash)
    await eventually(lambda: seen == [13])  # retried once, then processed
    for value in range(5):
        await topic.send(value=value)
    await eventually(lambda: sorted(seen) == [0, 1, 2, 3, 4, 13])


async def test_crashing_supervisor_stops_the_worker(app: faust.App) -> None:
    topic = app.topic("t", value_type=int, partitions=1)
    reasons: list[str] = []
    app.on_crash = reasons.append

    @app.agent(topic, supervisor_strategy=faust.agents.CrashingSupervisor)
    async def strict(stream):
        async for _ in stream:
            raise ValueError("no")

    await app.start()
    await topic.send(value=1)
    await eventually(lambda: len(reasons) == 1)
    assert "CrashingSupervisor" in reasons[0] and "offset=0" in reasons[0]


async def test_test_context_output_sent_offset_and_throw(app: faust.App) -> None:
    @app.agent(value_type=int)
    async def double(stream):
        async for value in stream:
            if value:
                yield value * 2

    async with double.test_context() as agent:
        assert agent.sent_offset == 0
        await agent.put(2)
        await agent.put(0)  # processed without a yield
        await agent.put(5)
        assert agent.sent_offset == 3
        assert agent.output == [4, 10]
        await agent.throw(RuntimeError("reset"))
        await eventually(lambda: app.error_counts.agent_errors == 1)
        await agent.put(1)
        assert agent.output == [4, 10, 2]


async def test_agent_stream_sees_what_is_sent_to_the_agent(app: faust.App) -> None:
    seen: list[int] = []

    @app.agent()
    async def worker(stream):
        async for _ in stream:
            pass

    async def watch() -> None:
        async for value in worker.stream():
            seen.append(value)

    other = app.channel()
    assert worker.stream(other).channel is other
    await app.start()
    watcher = asyncio.ensure_future(watch())
    await asyncio.sleep(0.01)
    await worker.send(value=7)
    await eventually(lambda: seen == [7])
    watcher.cancel()


async def test_agent_cancel_stops_its_actors_and_the_app_goes_on(app: faust.App) -> None:
    topic = app.topic("cancel-me", value_type=int, partitions=1)
    first: list[int] = []
    second: list[int] = []

    @app.agent(topic)
    async def stopped(stream):
        async for value in stream:
            first.append(value)

    @app.agent(topic)
    async def running(stream):
        async for value in stream:
            second.append(value)

    await app.start()
    await topic.send(value=1)
    await eventually(lambda: first == [1] and second == [1])
    stopped.cancel()
    await topic.send(value=2)
    await eventually(lambda: second == [1, 2])
    await asyncio.sleep(0.05)
    assert first == [1] and app.started
    await stopped.start()  # started again: reads what is sent from now on
    await topic.send(value=3)
    await eventually(lambda: first == [1, 3])


def test_agent_info_declares_the_same_agent_again(app: faust.App) -> None:
    async def fun(stream):
        async for _ in stream:
            pass

    agent = app.agent(concurrency=2, name="informed", help="counts things")(fun)
    info = agent.info()
    assert {k: info[k] for k in ("fun", "name", "concurrency", "help", "on_error")} == {
        "fun": fun,
        "name": "informed",
        "concurrency": 2,
        "help": "counts things",
        "on_error": app.conf.on_error,
    }
    assert info["app"] is app and info["channel"] is agent.channel and info["sink"] == []
    assert info["supervisor_strategy"] == "one_for_one"
    again = faust.Agent(**info)
    assert again.info() == info
