"""Agents through the public API on the embedded broker."""

from __future__ import annotations

import asyncio
import logging

import pytest

import faust
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

    assert process.channel.topics == (
        f"{__name__}.test_default_topic_is_named_after_the_agent.<locals>.process",
    )


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


async def test_crashing_agent_is_logged_and_restarted(
    app: faust.App, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[int] = []

    @app.agent(app.topic("fragile", value_type=int, partitions=1))
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
    crash = [r for r in caplog.records if "crashed" in r.getMessage()]
    assert len(crash) == 1
    assert "unlucky number" in crash[0].getMessage()
    assert "offset=1" in crash[0].getMessage()
    assert crash[0].exc_info is not None  # the traceback is logged
    assert app.agent_errors == 1


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


async def test_agent_must_be_async(app: faust.App, caplog: pytest.LogCaptureFixture) -> None:
    @app.agent()
    def not_async(stream):  # type: ignore[no-untyped-def]
        return None

    await app.start()
    await eventually(lambda: app.agent_errors >= 1)
    assert "must be an 'async def'" in caplog.text


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
