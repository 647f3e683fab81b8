"""Exactly-once without a broker: what is refused, and the gate an exactly-once commit
closes (faust/transactions.py), driven by hand on the embedded broker.

The transactions themselves need Kafka: tests/integration/test_kafka_exactly_once.py
and the exactly-once SIGKILL storm of tests/integration/test_chaos.py.
"""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import faust
from faust.exceptions import ImproperlyConfigured
from faust.streams import Stream
from faust.transactions import TransactionGate
from tests.conftest import eventually


async def test_exactly_once_is_refused_on_the_embedded_broker() -> None:
    app = faust.App("eos-memory", processing_guarantee="exactly_once")
    with pytest.raises(
        ImproperlyConfigured,
        match=r"processing_guarantee='exactly_once' needs Kafka transactions, which the "
        r"memory:// broker does not have",
    ):
        await app.start()
    assert not app.started


def test_exactly_once_needs_every_replica_to_ack() -> None:
    app = faust.App(
        "eos-acks",
        broker="kafka://localhost:1",
        processing_guarantee="exactly_once",
        producer_acks=1,
    )
    with pytest.raises(ImproperlyConfigured, match=r"producer_acks=1: .*needs producer_acks=-1"):
        app.transport.create_producer()


async def _gated_app(app: faust.App) -> TransactionGate:
    # The embedded broker has no transactions: the gate is set by hand, as an exactly-once
    # app's start does, to see what the streams do with it.
    gate = app.txn_gate = TransactionGate()
    return gate


async def test_no_event_is_handed_to_an_agent_while_the_gate_is_closed(app: faust.App) -> None:
    gate = await _gated_app(app)
    topic = app.topic("gated", value_type=int)
    seen: list[int] = []

    @app.agent(topic)
    async def work(stream):
        async for value in stream:
            seen.append(value)

    await app.start()
    await topic.send(value=1)
    await eventually(lambda: seen == [1])
    gate.close()
    assert await gate.wait_idle(1.0)
    for value in (2, 3):
        await topic.send(value=value)
    await asyncio.sleep(0.1)
    assert seen == [1], "an agent got an event while the gate was closed"
    gate.open()
    # Unkeyed: 2 and 3 may be on different partitions, so in either order.
    await eventually(lambda: sorted(seen) == [1, 2, 3])


async def test_closing_waits_for_the_event_an_agent_holds(app: faust.App) -> None:
    gate = await _gated_app(app)
    topic = app.topic("held", value_type=int)
    release = asyncio.Event()
    holding = asyncio.Event()
    done: list[int] = []

    @app.agent(topic)
    async def slow(stream):
        async for value in stream:
            holding.set()
            await release.wait()
            done.append(value)

    await app.start()
    await topic.send(value=1)
    await holding.wait()
    gate.close()
    assert not await gate.wait_idle(0.1), "idle while the agent still held its event"
    release.set()
    assert await gate.wait_idle(1.0)
    assert done == [1]
    gate.open()


async def test_an_event_taken_before_a_rewind_is_not_processed(app: faust.App) -> None:
    """An event taken from the queue while the gate was closed waits there; if the
    worker dropped what it had fetched meanwhile (epoch), it is not processed: the
    rewind reads it again."""
    gate = await _gated_app(app)
    topic = app.topic("stale", value_type=int)
    seen: list[int] = []

    @app.agent(topic)
    async def work(stream):
        async for value in stream:
            seen.append(value)

    await app.start()
    await topic.send(value=0)
    await eventually(lambda: seen == [0])  # the agent now waits for its next event
    gate.close()
    await topic.send(value=1)
    await asyncio.sleep(0.05)
    gate.epoch += 1
    gate.open()
    await topic.send(value=2)
    await eventually(lambda: seen == [0, 2])
    await asyncio.sleep(0.05)
    assert seen == [0, 2]


async def test_closing_waits_for_an_async_processor(app: faust.App) -> None:
    """An event an async processor (here a filter) awaits on is held like one an agent
    holds: the commit waits for it (whatever the processor sends goes with that
    event's offset), and the agent gets it only once the gate opens."""
    gate = await _gated_app(app)
    topic = app.topic("processed", value_type=int)
    release = asyncio.Event()
    awaiting = asyncio.Event()
    seen: list[int] = []

    async def slow_filter(value: int) -> bool:
        awaiting.set()
        await release.wait()
        return True

    @app.agent(topic)
    async def work(stream):
        async for value in stream.filter(slow_filter):
            seen.append(value)

    await app.start()
    await topic.send(value=1)
    await awaiting.wait()
    gate.close()
    assert not await gate.wait_idle(0.1), "idle while a processor awaited on an event"
    release.set()
    assert await gate.wait_idle(1.0), gate.describe_busy()
    await asyncio.sleep(0.05)
    assert seen == [], "the agent got an event while the gate was closed"
    gate.open()
    await eventually(lambda: seen == [1])


async def test_take_lists_wait_at_the_gate(app: faust.App) -> None:
    gate = await _gated_app(app)
    topic = app.topic("batches", value_type=int)
    batches: list[list[int]] = []

    @app.agent(topic)
    async def work(stream):
        async for batch in stream.take(2, within=0.05):
            batches.append(batch)

    await app.start()
    gate.close()
    for value in (1, 2):
        await topic.send(value=value)
    await asyncio.sleep(0.15)
    assert batches == []
    assert await gate.wait_idle(1.0)
    gate.open()
    await eventually(lambda: sorted(sum(batches, [])) == [1, 2])


async def test_an_agent_that_raised_holds_no_event(app: faust.App) -> None:
    gate = await _gated_app(app)
    topic = app.topic("raises", value_type=int)
    raised = asyncio.Event()

    @app.agent(topic)
    async def fails(stream):
        async for value in stream:
            raised.set()
            raise RuntimeError(f"failing on {value}")

    await app.start()
    await topic.send(value=1)
    await raised.wait()
    await asyncio.sleep(0.05)
    gate.close()
    assert await gate.wait_idle(1.0), f"still busy: {gate.describe_busy()}"
    gate.open()


async def test_an_agent_stopped_midway_is_reported_as_interrupted(app: faust.App) -> None:
    """A stop that does not wait (stream_wait_empty=False) cancels an agent midway
    through its event: the gate says so, and the commit aborts instead (what the agent
    did of that event must not commit)."""
    app.conf.stream_wait_empty = False
    gate = await _gated_app(app)
    topic = app.topic("interrupted", value_type=int)
    holding = asyncio.Event()

    @app.agent(topic)
    async def stuck(stream):
        async for _ in stream:
            holding.set()
            await asyncio.Event().wait()

    await app.start()
    await topic.send(value=1)
    await holding.wait()
    assert gate.interrupted is None
    await stuck.stop()
    assert gate.is_idle()
    assert gate.interrupted is not None and "interrupted" in gate.interrupted


async def test_a_stream_class_with_its_own_anext_waits_at_the_gate(app: faust.App) -> None:
    """A Stream subclass with its own ``__anext__`` (over the base's) waits at the gate
    too: what arrives while the gate is closed is held back (not held by the stream, so
    the commit need not wait), and dropped if the worker went back meanwhile."""

    class Counting(Stream):
        count = 0

        async def __anext__(self):
            value = await super().__anext__()
            self.count += 1
            return value

    gate = await _gated_app(app)
    channel = app.channel(value_type=int)
    stream = Counting(app, channel.subscribe(), channel=channel)
    assert stream._gate is gate
    seen: list[int] = []

    async def read() -> None:
        async for value in stream:
            seen.append(value)

    reader = asyncio.ensure_future(read())
    try:
        await channel.put(1)
        await eventually(lambda: seen == [1])
        gate.close()
        await channel.put(2)
        await asyncio.sleep(0.05)
        assert seen == [1]
        assert await gate.wait_idle(0.5), f"still busy: {gate.describe_busy()}"
        gate.open()
        await eventually(lambda: seen == [1, 2])
        assert stream.count == 2, "the class's own __anext__ ran"
        gate.close()
        await channel.put(3)
        await asyncio.sleep(0.05)
        gate.epoch += 1
        gate.open()
        await channel.put(4)
        await eventually(lambda: seen == [1, 2, 4])
    finally:
        reader.cancel()


# -- the gate against a model, over random interleavings --------------------------------

_gate_ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.integers(1, 5)),
        st.tuples(st.just("run"), st.integers(1, 6)),
        st.just(("close", 0)),
        st.just(("open", 0)),
        st.just(("rewind", 0)),
    ),
    max_size=40,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ops=_gate_ops,
    pauses=st.lists(st.booleans(), min_size=1, max_size=8),
    batch=st.sampled_from([0, 1, 3]),
)
def test_the_gate_keeps_agents_out_and_drops_only_what_is_read_again(
    ops: list[tuple[str, int]], pauses: list[bool], batch: int
) -> None:
    """Random puts, loop turns, commits (close, wait until idle, open) and rewinds
    (while closed: drop what is buffered; every value not processed yet is delivered
    again after the gate opens, as the seek to the last commit does), with an agent that
    sometimes awaits midway through a value; it iterates the stream, or its ``take()``
    lists (``batch``). Model: a commit waits for the values the agent holds, and it
    takes no other; once the gate reports idle, the agent processes
    nothing until it opens; at the end every value was processed exactly
    once (one taken before a rewind and held at the gate is not processed: it comes
    again)."""
    asyncio.run(_gate_against_model(ops, pauses, batch))


async def _gate_against_model(
    ops: list[tuple[str, int]], pauses: list[bool], batch: int = 0
) -> None:
    app = faust.App("gate-model")
    gate = await _gated_app(app)
    channel = app.channel(maxsize=10_000)
    stream = channel.stream()
    assert stream._gate is gate
    seen: list[int] = []
    sent = 0

    async def agent() -> None:
        if not batch:
            async for value in stream:
                if pauses[value % len(pauses)]:
                    await asyncio.sleep(0)  # midway through the value
                seen.append(value)
        async for values in stream.take(batch, within=0.001):
            if pauses[values[0] % len(pauses)]:
                await asyncio.sleep(0)
            seen.extend(values)

    async def turns(n: int) -> None:
        for _ in range(n):
            await asyncio.sleep(0)

    reader = asyncio.ensure_future(agent())
    rewound = False
    frozen: int | None = None  # len(seen) when the gate reported idle
    try:
        await turns(2)
        for op, n in ops:
            if op == "put" and not rewound:  # after a rewind, nothing comes until open
                for _ in range(n):
                    await channel.put(sent)
                    sent += 1
            elif op == "run":
                await turns(n)
            elif op == "close" and not gate.closed:
                before = len(seen)
                gate.close()
                assert await gate.wait_idle(5.0), gate.describe_busy()
                frozen = len(seen)
                # It finishes the values it holds, and takes no other.
                held = max(batch, 1)
                assert frozen <= before + held, f"{frozen - before} values taken after close"
            elif op == "rewind" and gate.closed:
                gate.epoch += 1
                stream.queue.buffer.clear()
                rewound = True
            elif op == "open" and gate.closed:
                assert len(seen) == frozen, "the agent processed a value while closed"
                gate.open()
                frozen = None
                if rewound:
                    done = set(seen)
                    for value in range(sent):
                        if value not in done:
                            await channel.put(value)
                    rewound = False
            if frozen is not None:
                assert len(seen) == frozen, "the agent processed a value while closed"
        if gate.closed:
            gate.open()
            if rewound:
                done = set(seen)
                for value in range(sent):
                    if value not in done:
                        await channel.put(value)
        for _ in range(1000):
            if len(seen) >= sent and not stream.queue.buffer:
                break
            await asyncio.sleep(0.001 if batch else 0)
        await asyncio.sleep(0.005)
        assert sorted(seen) == list(range(sent)), seen
    finally:
        reader.cancel()
