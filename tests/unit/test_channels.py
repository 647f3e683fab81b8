"""EventQueue: backpressure, and what a rebalance's discard does to a waiting producer."""

from __future__ import annotations

import asyncio

import pytest

import faust
from faust.channels import EventQueue
from faust.events import Event
from faust.transport.base import TP, Message
from tests.conftest import eventually

# Long enough for a loaded machine, short next to the hang it guards against.
WAKE_TIMEOUT = 2.0


def _events(app: faust.App, partition: int, offsets: range) -> list[Event]:
    return [
        Event(app, None, offset, Message("orders", partition, offset, 0.0, None, None))
        for offset in offsets
    ]


async def test_put_many_waits_while_full_and_resumes_when_drained(app: faust.App) -> None:
    queue = EventQueue(maxsize=4)
    putting = asyncio.ensure_future(queue.put_many(_events(app, 0, range(10))))
    await asyncio.sleep(0.01)
    assert len(queue) == 4 and not putting.done()
    taken = []
    while len(taken) < 10:
        event = queue.pop()
        if event is None:
            await asyncio.sleep(0.001)
            continue
        taken.append(event.value)
    await asyncio.wait_for(putting, WAKE_TIMEOUT)
    assert taken == list(range(10))


async def test_discarding_everything_wakes_the_waiting_put_many(app: faust.App) -> None:
    # A rebalance revokes the partition whose events fill the queue: the stream has
    # nothing left to pop, so only the discard can wake the fetch loop waiting for room.
    queue = EventQueue(maxsize=4)
    await queue.put_many(_events(app, 0, range(4)))
    putting = asyncio.ensure_future(queue.put_many(_events(app, 0, range(4, 10))))
    await asyncio.sleep(0.01)
    assert not putting.done()
    queue.discard(lambda e: e.message.partition == 0)
    await asyncio.wait_for(putting, WAKE_TIMEOUT)
    assert len(queue) == 0


async def test_discarding_one_partition_makes_room_for_the_others(app: faust.App) -> None:
    queue = EventQueue(maxsize=4)
    await queue.put_many(_events(app, 0, range(4)))
    putting = asyncio.ensure_future(queue.put_many(_events(app, 1, range(6))))
    await asyncio.sleep(0.01)
    assert queue.discard(lambda e: e.message.partition == 0) == 4
    await asyncio.sleep(0.01)
    # Room for four of partition 1's six; it waits again for the rest.
    assert [e.message.partition for e in queue.buffer] == [1, 1, 1, 1]
    assert not putting.done()
    assert queue.discard(lambda e: e.message.partition == 1) == 6
    await asyncio.wait_for(putting, WAKE_TIMEOUT)
    assert len(queue) == 0


async def test_the_rest_of_a_revoked_partitions_batch_is_not_delivered(app: faust.App) -> None:
    queue = EventQueue(maxsize=4)
    await queue.put_many(_events(app, 0, range(4)))
    # The waiting batch holds partition 1's events; partition 1 is revoked meanwhile.
    putting = asyncio.ensure_future(queue.put_many(_events(app, 1, range(100, 110))))
    await asyncio.sleep(0.01)
    dropped = queue.discard(lambda e: e.message.partition == 1)
    # The stream drains what it has; nothing of partition 1 follows.
    drained = []
    while (event := queue.pop()) is not None:
        drained.append(event.message.partition)
    await asyncio.wait_for(putting, WAKE_TIMEOUT)
    assert drained == [0, 0, 0, 0] and len(queue) == 0 and dropped == 10


async def test_a_conductor_delivery_waiting_for_room_ends_when_its_partition_is_revoked(
    app: faust.App,
) -> None:
    topic = app.topic("orders", value_type=int, partitions=2)
    queue = EventQueue(maxsize=8)
    app.conductor.subscribe(topic, queue)
    tp = TP("orders", 0)
    messages = [Message("orders", 0, offset, 0.0, None, b"1") for offset in range(30)]
    delivering = asyncio.ensure_future(app.conductor.deliver(tp, messages))
    await asyncio.sleep(0.01)
    assert len(queue) == 8 and not delivering.done()
    dropped = app.conductor.drop_buffered({tp})
    await asyncio.wait_for(delivering, WAKE_TIMEOUT)
    assert dropped == 30 and len(queue) == 0


# -- Faust's queue-like channel API: put, get, clone, empty, loop=


async def test_get_returns_what_is_sent_and_put_in_order(app: faust.App) -> None:
    channel = app.channel()
    reader = channel.clone(is_iterator=True)
    assert reader.empty()
    await channel.send(key="k", value=1, headers={"h": b"v"})
    await channel.put(2)
    assert not reader.empty()
    first = await reader.get(timeout=1.0)
    assert (first.key, first.value, first.headers) == ("k", 1, {"h": b"v"})
    second = await reader.get(timeout=1.0)
    assert second.value == 2 and first.acked  # moved past: the first is acked
    assert reader.empty()


async def test_get_subscribes_at_first_call_and_times_out(app: faust.App) -> None:
    channel = app.channel()
    with pytest.raises(TimeoutError, match="no event within 0.01 s"):
        await channel.get(timeout=0.01)
    getting = asyncio.ensure_future(channel.get())
    await asyncio.sleep(0.01)
    await channel.send(value="late")
    assert (await asyncio.wait_for(getting, WAKE_TIMEOUT)).value == "late"


async def test_put_of_an_event_reaches_every_reader_and_streams(app: faust.App) -> None:
    channel = app.channel()
    seen: list[tuple[object, object]] = []

    @app.agent(channel)
    async def collect(stream):
        async for event in stream.events():
            seen.append((event.key, event.value))

    reader = channel.clone(is_iterator=True)
    await app.start()
    source = Event(app, "k", "v", {"trace": b"1"}, Message("x", 0, 0, 0.0, None, None))
    await channel.put(source)
    got = await reader.get(timeout=1.0)
    assert (got.key, got.value, got.headers) == ("k", "v", {"trace": b"1"})
    await eventually(lambda: seen == [("k", "v")])


async def test_topic_put_is_local_and_clone_reads_the_topic(app: faust.App) -> None:
    topic = app.topic("local-put", value_type=int, partitions=1)
    reader = topic.clone(is_iterator=True)
    assert isinstance(reader, faust.Topic) and reader.topics == ("local-put",)
    await app.start()
    await topic.send(value=1)  # through the broker
    assert (await reader.get(timeout=WAKE_TIMEOUT)).value == 1
    await reader.put(2)  # this process only: nothing is written to the broker
    assert (await reader.get(timeout=1.0)).value == 2
    assert await app.transport.end_offset(TP("local-put", 0)) == 1


async def test_channel_loop_must_be_the_running_loop(app: faust.App) -> None:
    running = asyncio.get_running_loop()
    assert faust.Channel(app, loop=running).stream() is not None
    other = asyncio.new_event_loop()
    try:
        with pytest.raises(ValueError, match=r"Channel\(loop=.*Leave loop= out"):
            faust.Channel(app, loop=other)
        with pytest.raises(ValueError, match="Leave loop= out"):
            app.topic("looped", loop=other)
    finally:
        other.close()


def test_channel_loop_given_before_the_loop_runs_is_checked_when_read() -> None:
    app = faust.App("loop-later")
    loop = asyncio.new_event_loop()
    channel = app.channel(loop=loop)  # no loop runs yet: accepted

    async def read() -> None:
        channel.clone(is_iterator=True)

    try:
        loop.run_until_complete(read())  # the same loop: fine
    finally:
        loop.close()
    with pytest.raises(ValueError, match="Leave loop= out"):
        asyncio.run(read())


def test_event_takes_fausts_arguments(app: faust.App) -> None:
    message = Message("t", 0, 5, 0.0, None, None, [("a", b"1")])
    event = faust.Event(app, "k", "v", None, message)
    assert event.headers == {"a": b"1"} and event.message is message
    given = faust.Event(app=app, key="k", value="v", headers={"b": b"2"}, message=message)
    assert given.headers == {"b": b"2"}
    assert faust.Event(app, "k", "v", message).message is message  # the 1.0 form
    with pytest.raises(TypeError, match="message is required"):
        faust.Event(app, "k", "v", {"b": b"2"})


async def test_topic_acks_false_is_never_committed(app: faust.App) -> None:
    quiet = app.topic("no-acks", value_type=int, partitions=1, acks=False)
    loud = app.topic("with-acks", value_type=int, partitions=1)
    seen: list[int] = []

    @app.agent(quiet)
    async def read_quiet(stream):
        async for value in stream:
            seen.append(value)

    @app.agent(loud)
    async def read_loud(stream):
        async for value in stream:
            seen.append(value)

    await app.start()
    for i in range(3):
        await quiet.send(value=i)
        await loud.send(value=i)
    await eventually(lambda: len(seen) == 6)
    broker = app.transport.broker
    await app.stop()
    committed = broker.groups[app.conf.group_id].committed
    assert committed[("with-acks", 0)] == 3 and ("no-acks", 0) not in committed


def test_topic_acks_is_fausts_bool(app: faust.App) -> None:
    with pytest.raises(TypeError, match="producer_acks setting"):
        app.topic("acks-int", acks=-1)
    assert app.topic("acks-bool", acks=False).derive().acks is False
