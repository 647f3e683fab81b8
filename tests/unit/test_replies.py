"""The reply topic of ``agent.ask()``: created by the first ask, deleted on stop."""

from __future__ import annotations

import asyncio

import faust
from faust.transport.memory import MemoryTransport


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
