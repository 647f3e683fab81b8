"""The reply topic of ``agent.ask()``: created by the first ask, deleted on stop."""

from __future__ import annotations

import asyncio

import pytest

import faust
from faust.exceptions import AskError
from faust.transport.memory import MemoryTransport
from tests.conftest import eventually


def _reply_topics(app: faust.App) -> list[str]:
    transport = app.transport
    assert isinstance(transport, MemoryTransport)
    return [name for name in transport.broker.logs if "-reply-" in name]


def _double(app: faust.App) -> faust.Agent:
    @app.agent(value_type=int)
    async def double(stream):
        async for value in stream:
            yield value * 2

    return double


async def test_a_worker_that_never_asks_creates_no_reply_topic(app: faust.App) -> None:
    double = _double(app)
    await app.start()
    await double.send(value=1)
    await asyncio.sleep(0.05)
    assert _reply_topics(app) == []
    await app.stop()
    assert _reply_topics(app) == []


async def test_ask_creates_the_reply_topic_and_a_clean_stop_deletes_it(app: faust.App) -> None:
    double = _double(app)
    await app.start()
    assert await asyncio.wait_for(double.ask(21), 5) == 42
    assert _reply_topics(app) == [app.conf.reply_to]
    # map/kvmap/join use the same topic.
    assert await asyncio.wait_for(double.join([1, 2]), 5) == [2, 4]
    assert _reply_topics(app) == [app.conf.reply_to]
    await app.stop()
    assert _reply_topics(app) == []


async def test_concurrent_first_asks_share_one_reply_topic(app: faust.App) -> None:
    double = _double(app)
    await app.start()
    replies = await asyncio.wait_for(asyncio.gather(*(double.ask(i) for i in range(20))), 5)
    assert replies == [i * 2 for i in range(20)]
    assert _reply_topics(app) == [app.conf.reply_to]


async def test_asking_again_after_a_restart_recreates_the_topic(app: faust.App) -> None:
    double = _double(app)
    await app.start()
    assert await asyncio.wait_for(double.ask(1), 5) == 2
    await app.stop()
    await app.start()
    assert _reply_topics(app) == []
    assert await asyncio.wait_for(double.ask(2), 5) == 4
    assert _reply_topics(app) == [app.conf.reply_to]


async def test_a_reply_topic_named_by_the_user_is_kept() -> None:
    app = faust.App("named-replies", reply_to="my-replies", topic_partitions=1)
    double = _double(app)
    await app.start()
    assert await asyncio.wait_for(double.ask(5), 5) == 10
    await app.stop()
    transport = app.transport
    assert isinstance(transport, MemoryTransport)
    assert "my-replies" in transport.broker.logs


async def test_the_reply_topic_keeps_records_only_reply_expires_seconds() -> None:
    app = faust.App("expiring-replies", reply_expires=60.0)
    replies = await app.maybe_start_replies()
    (spec,) = replies.topic.specs()
    assert spec.retention == 60.0
    # Kafka drops closed segments only: the segment must close within the retention.
    assert spec.config["segment.ms"] == "60000"
    await app.stop()


def test_the_default_reply_to_is_recognised_as_generated() -> None:
    from faust.agents.replies import is_generated_reply_topic

    app = faust.App("orders")
    assert is_generated_reply_topic(app.conf.reply_to, "orders")
    assert faust.App("orders").conf.reply_to != app.conf.reply_to  # one per instance
    assert not is_generated_reply_topic("orders-reply-mine", "orders")
    assert not is_generated_reply_topic("other-reply-0123456789ab", "orders")


# -- the reply follows the event through repartitioning


class Purchase(faust.Record):
    account: str
    amount: int


def _replies_sent(app: faust.App) -> int:
    transport = app.transport
    assert isinstance(transport, MemoryTransport)
    return sum(len(log) for log in transport.broker.logs[app.conf.reply_to])


async def test_ask_through_group_by_is_answered_once(app: faust.App) -> None:
    """The README tour: filter, then group_by, then yield."""
    orders = app.topic("purchases", key_type=str, value_type=Purchase)

    @app.agent(orders)
    async def large(stream):
        async for order in stream.filter(lambda o: o.amount > 100).group_by(Purchase.account):
            yield order.amount

    await app.start()
    assert await large.ask(Purchase(account="a-1", amount=500), timeout=5) == 500
    answers = await asyncio.wait_for(
        large.join([Purchase(account=f"a-{i}", amount=200 + i) for i in range(8)]), 5
    )
    assert answers == [200 + i for i in range(8)]
    await asyncio.sleep(0.05)  # a second reply would be on the topic by now
    assert _replies_sent(app) == 9


async def test_ask_through_through_is_answered(app: faust.App) -> None:
    middle = app.topic("middle", value_type=int)

    @app.agent(value_type=int)
    async def relay(stream):
        async for value in stream.through(middle):
            yield value + 1

    await app.start()
    assert await relay.ask(41, timeout=5) == 42


async def test_ask_through_chained_repartitions_is_answered_once(app: faust.App) -> None:
    audit = app.topic("audit", value_type=Purchase)

    @app.agent(value_type=Purchase)
    async def chained(stream):
        regrouped = (
            stream.group_by(Purchase.account)
            .through(audit)
            .group_by(lambda p: p.amount, name="by-amount")
        )
        async for order in regrouped:
            yield f"{order.account}:{order.amount}"

    await app.start()
    assert await chained.ask(Purchase(account="b", amount=7), timeout=5) == "b:7"
    await asyncio.sleep(0.05)
    assert _replies_sent(app) == 1


async def test_the_agent_reading_a_repartition_topic_answers(app: faust.App) -> None:
    """Another agent reads the topic a group_by writes to: the one that yields answers,
    the one that only repartitions does not."""
    by_account = app.topic("orders-by-account", key_type=str, value_type=Purchase)

    @app.agent(value_type=Purchase)
    async def repartition(stream):
        async for _ in stream.group_by(Purchase.account, topic=by_account):
            pass

    @app.agent(by_account)
    async def total(stream):
        async for order in stream:
            yield order.amount * 10

    await app.start()
    assert await repartition.ask(Purchase(account="c", amount=3), timeout=5) == 30
    await asyncio.sleep(0.05)
    assert _replies_sent(app) == 1


async def test_repartitioning_keeps_the_headers_of_the_event(app: faust.App) -> None:
    seen: list[dict[str, bytes]] = []

    @app.agent(value_type=Purchase)
    async def trace(stream):
        async for event in stream.group_by(Purchase.account).events():
            seen.append(event.headers)

    await app.start()
    await trace.send(value=Purchase(account="d", amount=1), headers={"trace-id": b"t-1"})
    await eventually(lambda: bool(seen))
    assert seen == [{"trace-id": b"t-1"}]


async def test_ask_through_an_in_memory_channel_is_answered(app: faust.App) -> None:
    relay = app.channel(value_type=int)

    @app.agent(value_type=int)
    async def via_channel(stream):
        async for value in stream.through(relay):
            yield -value

    await app.start()
    assert await via_channel.ask(5, timeout=5) == -5


async def test_ask_raises_when_the_agent_gives_up_on_the_request(app: faust.App) -> None:
    """An ask() whose value the agent keeps raising on fails with AskError as soon as the
    event is dead-lettered, instead of waiting for a reply that never comes; the dead
    letter keeps no reply headers (replaying it later must not answer again)."""

    @app.agent(value_type=int, retries=1)
    async def picky(stream):
        async for value in stream:
            if value < 0:
                raise ValueError(f"negative: {value}")
            yield value

    await app.start()
    with pytest.raises(AskError) as info:
        await asyncio.wait_for(picky.ask(-1), 5)
    assert info.value.agent == picky.name
    assert info.value.error_type == "ValueError"
    assert "negative: -1" in str(info.value) and "dead-letter topic" in str(info.value)
    assert await asyncio.wait_for(picky.ask(2), 5) == 2
    (entry,) = app.transport.broker.logs[picky.dead_letter_topic][0]
    names = {name for name, _ in entry[3]}
    assert "faust-reply-to" not in names and "faust-correlation-id" not in names


async def test_ask_raises_when_the_agent_skips_the_request(app: faust.App) -> None:
    @app.agent(value_type=int, retries=0, on_error="skip")
    async def picky(stream):
        async for value in stream:
            raise KeyError(value)
            yield value

    await app.start()
    with pytest.raises(AskError, match="skipped it"):
        await asyncio.wait_for(picky.ask(7), 5)
