"""Stream operators through the public API on the embedded broker."""

from __future__ import annotations

import asyncio
import logging

import pytest

import faust
from faust.topics import legal_topic_name
from tests.conftest import eventually


class Withdrawal(faust.Record):
    account: str
    amount: int


async def _run_agent(app: faust.App, topic, body):  # type: ignore[no-untyped-def]
    agent = app.agent(topic)(body)
    await app.start()
    return agent


async def test_items_events_enumerate(app: faust.App) -> None:
    topic = app.topic("t", key_type=str, value_type=int)
    items, events, indexed = [], [], []

    @app.agent(topic)
    async def by_items(stream):
        async for key, value in stream.items():
            items.append((key, value))

    @app.agent(topic)
    async def by_events(stream):
        async for event in stream.events():
            events.append((event.key, event.value, event.message.topic))

    @app.agent(topic)
    async def by_index(stream):
        async for i, value in stream.enumerate(start=1):
            indexed.append((i, value))

    await app.start()
    await topic.send(key="a", value=1)
    await topic.send(key="b", value=2)
    await eventually(lambda: len(items) == len(events) == len(indexed) == 2)
    assert sorted(items) == [("a", 1), ("b", 2)]
    assert sorted(events) == [("a", 1, "t"), ("b", 2, "t")]
    assert sorted(v for _, v in indexed) == [1, 2] and sorted(i for i, _ in indexed) == [1, 2]


async def test_filter_with_sync_and_async_predicates(app: faust.App) -> None:
    topic = app.topic("t", value_type=int)
    evens, big = [], []

    async def is_big(value: int) -> bool:
        return value >= 8

    @app.agent(topic)
    async def even(stream):
        async for value in stream.filter(lambda v: v % 2 == 0):
            evens.append(value)

    @app.agent(topic)
    async def large(stream):
        async for value in stream.filter(is_big):
            big.append(value)

    await app.start()
    for i in range(10):
        await topic.send(value=i, partition=0)
    await eventually(lambda: len(evens) == 5 and len(big) == 2)
    assert evens == [0, 2, 4, 6, 8]
    assert big == [8, 9]
    # Filtered-out events are still acked: everything gets committed.
    await eventually(
        lambda: app.consumer.trackers[faust.transport.base.TP("t", 0)].committable() == 10
    )


async def test_take_batches_and_within_timeout(app: faust.App) -> None:
    topic = app.topic("t", value_type=int)
    batches: list[list[int]] = []

    @app.agent(topic)
    async def batcher(stream):
        async for batch in stream.take(3, within=0.2):
            batches.append(batch)

    await app.start()
    for i in range(7):
        await topic.send(value=i, partition=0)
    await eventually(lambda: sum(map(len, batches)) == 7)
    assert batches[0] == [0, 1, 2] and batches[1] == [3, 4, 5]
    assert batches[2] == [6]  # the rest, after `within` seconds


async def test_group_by_field_repartitions_through_an_internal_topic(app: faust.App) -> None:
    source = app.topic("withdrawals", value_type=Withdrawal, partitions=4)
    seen: dict[str, list[tuple[int, int]]] = {}

    @app.agent(source)
    async def by_account(stream):
        async for event in stream.group_by(Withdrawal.account).events():
            seen.setdefault(event.value.account, []).append(
                (event.message.partition, event.value.amount)
            )

    await app.start()
    for i in range(20):
        # Spread one account's withdrawals over every source partition.
        await source.send(value=Withdrawal(account=f"acct-{i % 2}", amount=i), partition=i % 4)
    await eventually(lambda: sum(map(len, seen.values())) == 20)
    # Named as Faust names it: {agent}-{source topic}-{Model.field}-repartition.
    repartition = f"{by_account.name}-withdrawals-Withdrawal.account-repartition"
    repartition = legal_topic_name(repartition)
    assert repartition in app.transport.broker.logs
    assert len(app.transport.broker.logs[repartition]) == 4
    for account, entries in seen.items():
        # After group_by, one key lives on one partition.
        assert len({p for p, _ in entries}) == 1, account
    assert sorted(a for _, a in seen["acct-0"]) == list(range(0, 20, 2))


async def test_group_by_forwards_values_as_received_unless_changed(app: faust.App) -> None:
    """Unchanged values go to the repartition topic in their bytes (not re-encoded);
    values a processor made go encoded."""
    source = app.topic("raw-withdrawals", value_type=Withdrawal, partitions=2)
    seen: list[tuple[str, int]] = []

    @app.agent(source)
    async def as_is(stream):
        async for w in stream.group_by(Withdrawal.account, name="as-is"):
            seen.append((w.account, w.amount))

    @app.agent(source)
    async def filtered(stream):
        changed = stream.filter(lambda w: w.amount > 0)
        async for w in changed.group_by(Withdrawal.account, name="changed"):
            seen.append((w.account, w.amount))

    await app.start()
    # As another producer might write it: spaces, another field order.
    data = b'{"amount": 7,  "account": "acct-1"}'
    await source.send(value=data, partition=0)
    await eventually(lambda: len(seen) == 2)
    assert seen == [("acct-1", 7), ("acct-1", 7)]

    def stored(name: str) -> list[bytes | None]:
        agent = as_is if name == "as-is" else filtered
        topic = legal_topic_name(f"{agent.name}-raw-withdrawals-{name}-repartition")
        logs = app.transport.broker.logs[topic]
        return [value for log in logs for (_, _, value, _) in log]

    assert stored("as-is") == [data]
    [encoded] = stored("changed")
    assert encoded != data and Withdrawal.loads(encoded) == Withdrawal(account="acct-1", amount=7)


async def test_group_by_callable_needs_a_name(app: faust.App) -> None:
    topic = app.topic("t", value_type=Withdrawal)
    errors: list[Exception] = []

    @app.agent(topic)
    async def needs_name(stream):
        try:
            stream.group_by(lambda w: w.account)
        except ValueError as exc:
            errors.append(exc)
        async for _ in stream:
            pass

    await app.start()
    await eventually(lambda: bool(errors))
    assert "name=" in str(errors[0])


async def test_group_by_callable_with_name(app: faust.App) -> None:
    topic = app.topic("t", value_type=Withdrawal)
    keys: list[object] = []

    @app.agent(topic)
    async def grouped(stream):
        async for key, _ in stream.group_by(lambda w: w.account.upper(), name="upper").items():
            keys.append(key)

    await app.start()
    await topic.send(value=Withdrawal(account="x", amount=1))
    # The key goes as the source topic's key serializer (raw) writes it, and comes back
    # as bytes (a callable says nothing of its key's type), as in faust-streaming.
    await eventually(lambda: keys == [b"X"])
    assert legal_topic_name(f"{grouped.name}-t-upper-repartition") in app.transport.broker.logs


async def test_through_and_echo(app: faust.App) -> None:
    source = app.topic("source", value_type=int)
    middle = app.topic("middle", value_type=int)
    copies = app.topic("copies", value_type=int)
    through_seen: list[int] = []
    copies_seen: list[int] = []

    @app.agent(source)
    async def forwarder(stream):
        async for value in stream.echo(copies).through(middle):
            through_seen.append(value)

    @app.agent(copies)
    async def copy_reader(stream):
        async for value in stream:
            copies_seen.append(value)

    await app.start()
    await source.send(value=7)
    await eventually(lambda: through_seen == [7] and copies_seen == [7])
    assert sum(len(p) for p in app.transport.broker.logs["middle"]) == 1
    assert sum(len(p) for p in app.transport.broker.logs["copies"]) == 1


async def test_noack_leaves_acking_to_the_user(app: faust.App) -> None:
    topic = app.topic("t", value_type=int, partitions=1)
    held: list[faust.Event] = []

    @app.agent(topic)
    async def manual(stream):
        async for event in stream.noack().events():
            held.append(event)

    await app.start()
    for i in range(3):
        await topic.send(value=i)
    await eventually(lambda: len(held) == 3)
    tracker = app.consumer.trackers[faust.transport.base.TP("t", 0)]
    assert tracker.committable() == 0
    held[0].ack()
    assert tracker.committable() == 1
    for event in held[1:]:
        event.ack()
    assert tracker.committable() == 3
    assert held[0].ack() is False  # acking twice is harmless


async def test_current_event_inside_an_agent(app: faust.App) -> None:
    topic = app.topic("t", value_type=int)
    offsets: list[tuple[str, int]] = []

    @app.agent(topic)
    async def reader(stream):
        async for _ in stream:
            event = faust.current_event()
            offsets.append((event.message.topic, event.message.offset))

    await app.start()
    await topic.send(value=1, partition=2)
    await eventually(lambda: offsets == [("t", 0)])
    assert faust.current_event() is None


async def test_undecodable_message_is_logged_counted_and_skipped(
    app: faust.App, caplog: pytest.LogCaptureFixture
) -> None:
    topic = app.topic("orders", value_type=Withdrawal, partitions=1)
    seen: list[Withdrawal] = []

    @app.agent(topic)
    async def orders(stream):
        async for order in stream:
            seen.append(order)

    await app.start()
    raw = app.topic("orders", value_serializer="raw")
    with caplog.at_level(logging.ERROR):
        await topic.send(value=Withdrawal(account="a", amount=1))
        await raw.send(value=b"{not json")
        await topic.send(value=Withdrawal(account="b", amount=2))
        await eventually(lambda: len(seen) == 2)
    assert [w.account for w in seen] == ["a", "b"]
    errors = [r.getMessage() for r in caplog.records if "cannot be decoded" in r.getMessage()]
    assert len(errors) == 1
    assert "topic=orders partition=0 offset=1" in errors[0]
    assert app.conductor.decode_errors == 1
    # The bad message does not block the commit.
    tracker = app.consumer.trackers[faust.transport.base.TP("orders", 0)]
    await eventually(lambda: tracker.committable() == 3)


async def test_backpressure_stops_fetching_until_the_agent_catches_up(app: faust.App) -> None:
    small = faust.App(f"{app.conf.id}-bp", stream_buffer_maxsize=10)
    topic = small.topic("t", value_type=int, partitions=1)
    release = asyncio.Event()
    seen: list[int] = []

    @small.agent(topic)
    async def slow(stream):
        async for value in stream:
            await release.wait()
            seen.append(value)

    await small.start()
    try:
        for i in range(100):
            await topic.send(value=i)
        await asyncio.sleep(0.1)
        queue = next(iter(slow._queues))
        assert len(queue) <= 20  # bounded by the buffer size, not the topic's length
        release.set()
        await eventually(lambda: len(seen) == 100)
        assert seen == list(range(100))
    finally:
        await small.stop()


async def test_take_events_and_take_with_timestamp(app: faust.App) -> None:
    topic = app.topic("t", value_type=dict, partitions=1)
    batches: list[list[faust.Event]] = []
    stamped: list[list[dict]] = []

    @app.agent(topic)
    async def by_events(stream):
        async for events in stream.take_events(2, within=0.2):
            batches.append(events)

    @app.agent(topic)
    async def by_timestamp(stream):
        async for values in stream.take_with_timestamp(2, 0.2, "ts"):
            stamped.append(values)

    await app.start()
    for i in range(3):
        await topic.send(value={"n": i}, timestamp=1000.0 + i)
    await eventually(lambda: sum(map(len, batches)) == 3 and sum(map(len, stamped)) == 3)
    assert [[e.message.offset for e in b] for b in batches] == [[0, 1], [2]]
    assert all(isinstance(e, faust.Event) for b in batches for e in b)
    assert [v for b in stamped for v in b] == [
        {"n": 0, "ts": 1000.0},
        {"n": 1, "ts": 1001.0},
        {"n": 2, "ts": 1002.0},
    ]
    tracker = app.consumer.trackers[faust.transport.base.TP("t", 0)]
    # The last list is acked when the next is asked for (after `within`).
    await eventually(lambda: tracker.committable() == 3)


async def test_stream_current_event_property(app: faust.App) -> None:
    topic = app.topic("t", value_type=int)
    seen: list[tuple[int, int]] = []

    @app.agent(topic)
    async def reader(stream):
        assert stream.current_event is None
        async for value in stream:
            seen.append((value, stream.current_event.message.offset))

    await app.start()
    await topic.send(value=7, partition=1)
    await topic.send(value=8, partition=1)
    await eventually(lambda: seen == [(7, 0), (8, 1)])


async def test_active_partitions_limits_a_stream_to_those_partitions(app: faust.App) -> None:
    topic = app.topic("t", value_type=int, partitions=4)
    seen: list[int] = []

    @app.agent(topic)
    async def reader(stream):
        only_two = topic.stream(active_partitions={faust.transport.base.TP("t", 2)})
        assert only_two.active_partitions == {faust.transport.base.TP("t", 2)}

        async def read_partition_two() -> None:
            async for value in only_two:
                seen.append(value)

        task = asyncio.ensure_future(read_partition_two())
        try:
            async for _ in stream:
                pass
        finally:
            task.cancel()

    await app.start()
    for partition in range(4):
        await topic.send(value=partition, partition=partition)
    await eventually(lambda: seen == [2])
    # The others were skipped and acked: their offsets are committable.
    for partition in range(4):
        tracker = app.consumer.trackers[faust.transport.base.TP("t", partition)]
        await eventually(lambda tracker=tracker: tracker.committable() == 1)


async def test_combined_streams_yield_both_and_ack_each_event(app: faust.App) -> None:
    orders = app.topic("orders", value_type=int)
    refunds = app.topic("refunds", value_type=int)
    seen: list[tuple[str, int]] = []
    combined_seen: list[tuple[str, int]] = []

    @app.agent(orders)
    async def both(stream):
        async for value in stream & refunds.stream():
            seen.append((faust.current_event().message.topic, value))

    @app.agent(orders)
    async def by_combine(stream):
        async for event in stream.combine(refunds.stream()).events():
            combined_seen.append((event.message.topic, event.value))

    await app.start()
    for i in range(3):
        await orders.send(value=i, partition=0)
        await refunds.send(value=-i, partition=0)
    expected = sorted([("orders", i) for i in range(3)] + [("refunds", -i) for i in range(3)])
    await eventually(lambda: sorted(seen) == expected and sorted(combined_seen) == expected)
    # In order within each source.
    assert [v for t, v in seen if t == "orders"] == [0, 1, 2]
    assert [v for t, v in seen if t == "refunds"] == [0, -1, -2]
    for name in ("orders", "refunds"):
        tracker = app.consumer.trackers[faust.transport.base.TP(name, 0)]
        # Two of three are past (the last is acked when the agent asks for the next).
        await eventually(lambda tracker=tracker: tracker.committable() >= 2)
    await app.stop()
    with pytest.raises(TypeError, match="combine"):
        orders.stream().combine(42)  # type: ignore[arg-type]


async def test_a_combined_stream_loses_no_event_when_its_agent_restarts(app: faust.App) -> None:
    orders = app.topic("orders", value_type=int)
    refunds = app.topic("refunds", value_type=int)
    seen: list[tuple[str, int]] = []
    raised: list[int] = []

    @app.agent(orders)
    async def both(stream):
        async for value in (stream & refunds.stream()).filter(lambda v: v != 50):
            if value == 99 and not raised:
                raised.append(value)
                raise ValueError("once")
            seen.append((faust.current_event().message.topic, value))

    await app.start()
    for i in range(3):
        await refunds.send(value=-i, partition=0)
    await orders.send(value=99, partition=0)
    await orders.send(value=50, partition=0)  # filtered out, still acked
    for i in range(3, 6):
        await refunds.send(value=-i, partition=0)
        await orders.send(value=i, partition=0)
    expected = sorted(
        [("orders", 99), ("orders", 3), ("orders", 4), ("orders", 5)]
        + [("refunds", -i) for i in range(6)]
    )
    await eventually(lambda: sorted(seen) == expected)
    assert raised == [99]
    # Each source in its order, the crash included.
    assert [v for t, v in seen if t == "refunds"] == [0, -1, -2, -3, -4, -5]
    assert [v for t, v in seen if t == "orders"] == [99, 3, 4, 5]
    for name, count in (("orders", 5), ("refunds", 6)):
        tracker = app.consumer.trackers[faust.transport.base.TP(name, 0)]
        await eventually(lambda tracker=tracker, count=count: tracker.committable() >= count - 1)


# -- tee, derive, get_active_stream (Faust's Stream API)


async def test_tee_gives_every_event_to_each_copy_and_acks_once_all_moved_on(
    app: faust.App,
) -> None:
    topic = app.topic("tee-in", value_type=int, partitions=1)
    left: list[int] = []
    right: list[int] = []

    async def read(stream: faust.Stream, into: list[int]) -> None:
        async for value in stream:
            into.append(value)

    first, second = app.stream(topic).tee(2)
    await app.start()
    readers = [
        asyncio.ensure_future(read(first, left)),
        asyncio.ensure_future(read(second.filter(lambda v: v % 2 == 0), right)),
    ]
    for i in range(5):
        await topic.send(value=i)
    await eventually(lambda: left == [0, 1, 2, 3, 4] and right == [0, 2, 4])
    broker = app.transport.broker
    for reader in readers:
        reader.cancel()
    await app.stop()
    # Each event was acked by both copies and the source: all five are committed.
    assert broker.groups[app.conf.group_id].committed[("tee-in", 0)] == 5


async def test_tee_of_a_finite_stream_ends_every_copy(app: faust.App) -> None:
    copies = app.stream([1, 2, 3]).tee(3)

    async def read(copy: faust.Stream) -> list[int]:
        return [value async for value in copy]

    results = await asyncio.wait_for(asyncio.gather(*map(read, copies)), 5)
    assert results == [[1, 2, 3]] * 3
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        app.stream([1]).tee(0)


async def test_derive_keeps_processors_and_changes_options(app: faust.App) -> None:
    channel = app.channel()
    other = app.channel()
    stream = app.stream(channel).filter(lambda v: v > 1)
    manual = stream.derive(autoack=False)
    assert manual.channel is channel and not manual.autoack
    elsewhere = stream.derive(channel=other)
    assert elsewhere.channel is other
    got: list[int] = []

    async def read() -> None:
        async for value in elsewhere:
            got.append(value)

    reader = asyncio.ensure_future(read())
    await asyncio.sleep(0.01)
    for value in (1, 2, 3):
        await other.send(value=value)
    await eventually(lambda: got == [2, 3])  # the filter goes along
    reader.cancel()


async def test_get_active_stream_is_the_last_of_the_chain(app: faust.App) -> None:
    topic = app.topic("active", value_type=str, partitions=1)
    stream = app.stream(topic)
    assert stream.get_active_stream() is stream
    regrouped = stream.group_by(lambda v: v, name="word")
    assert stream.get_active_stream() is regrouped
    through = regrouped.through("active-out")
    filtered = through.filter(lambda v: v)
    assert stream.get_active_stream() is filtered
    assert regrouped.get_active_stream() is filtered
