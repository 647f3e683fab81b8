"""EventQueue: backpressure, and what a rebalance's discard does to a waiting producer."""

from __future__ import annotations

import asyncio

import faust
from faust.channels import EventQueue
from faust.events import Event
from faust.transport.base import TP, Message

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
