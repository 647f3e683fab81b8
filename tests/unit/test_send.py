"""Sending through the public API on the embedded broker: strict signatures, callbacks,
and results that can be awaited again."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

import faust
from faust.transport.base import RecordMetadata
from tests.conftest import eventually


class Done:
    """A send callback that records the futures it is called with."""

    def __init__(self) -> None:
        self.calls: list[asyncio.Future[RecordMetadata]] = []

    def __call__(self, fut: asyncio.Future[RecordMetadata]) -> None:
        assert fut.done()
        self.calls.append(fut)

    @property
    def result(self) -> RecordMetadata:
        assert len(self.calls) == 1, f"called {len(self.calls)} times"
        return self.calls[0].result()

    @property
    def error(self) -> BaseException | None:
        assert len(self.calls) == 1, f"called {len(self.calls)} times"
        return self.calls[0].exception()


async def started_agent(app: faust.App) -> tuple[faust.Agent, list[faust.Event]]:
    """An agent over a one-partition topic that keeps the events it sees."""
    events: list[faust.Event] = []

    @app.agent(app.topic("numbers", value_type=int, partitions=1))
    async def double(stream):
        async for value in stream:
            events.append(faust.current_event())
            yield value * 2

    await app.start()
    return double, events


# -- a misspelt keyword is a TypeError naming it ---------------------------------------------


async def test_topic_sends_refuse_unknown_keywords(app: faust.App) -> None:
    topic = app.topic("strict", value_type=int, partitions=1)
    await topic.declare()
    with pytest.raises(TypeError, match="vaule"):
        await topic.send(vaule=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="vaule"):
        topic.send_soon(vaule=1)  # type: ignore[call-arg]
    # Nothing was sent: the first record is at offset 0.
    assert (await topic.send(value=1)).offset == 0


async def test_channel_sends_refuse_unknown_keywords(app: faust.App) -> None:
    channel = app.channel()
    with pytest.raises(TypeError, match="vaule"):
        await channel.send(vaule=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="vaule"):
        channel.send_soon(vaule=1)  # type: ignore[call-arg]


async def test_agent_sends_refuse_unknown_keywords(app: faust.App) -> None:
    double, events = await started_agent(app)
    with pytest.raises(TypeError, match="vaule"):
        await double.send(vaule=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="vaule"):
        await double.cast(vaule=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="vaule"):
        await double.ask(vaule=1, timeout=2)  # type: ignore[call-arg]
    await asyncio.sleep(0.05)
    assert events == [], "nothing may be sent when a keyword is misspelt"


async def test_event_sends_refuse_unknown_keywords(app: faust.App) -> None:
    double, events = await started_agent(app)
    await double.cast(1)
    await eventually(lambda: len(events) == 1)
    with pytest.raises(TypeError, match="vaule"):
        await events[0].send("elsewhere", vaule=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="vaule"):
        await events[0].forward("elsewhere", vaule=1)  # type: ignore[call-arg]


async def test_ask_refuses_a_reply_topic_it_does_not_read(app: faust.App) -> None:
    double, _ = await started_agent(app)
    with pytest.raises(ValueError, match="reply_to='other-replies'.*reply topic"):
        await double.ask(1, reply_to="other-replies", timeout=2)
    assert await double.ask(2, reply_to=app.conf.reply_to, timeout=5) == 4


async def test_a_channel_refuses_serializers_it_cannot_apply(app: faust.App) -> None:
    with pytest.raises(ValueError, match="in-process.*apply only to topics"):
        await app.channel().send(value=1, value_serializer="json")


# -- callback ----------------------------------------------------------------------------


async def test_callback_gets_the_metadata_once(app: faust.App) -> None:
    topic = app.topic("called", value_type=int, partitions=2)
    await topic.declare()
    sent, soon = Done(), Done()
    metadata = await topic.send(value=1, partition=1, callback=sent)
    assert sent.result == metadata
    assert (metadata.topic, metadata.partition, metadata.offset) == ("called", 1, 0)
    second = await topic.send_soon(value=2, partition=1, callback=soon)
    assert soon.result == second
    assert second.offset == 1
    assert len(sent.calls) == len(soon.calls) == 1


async def test_callback_gets_the_error_once(app: faust.App) -> None:
    topic = app.topic("two-partitions", value_type=int, partitions=2)
    await topic.declare()
    sent, soon = Done(), Done()
    with pytest.raises(ValueError, match="partition 5 does not exist"):
        await topic.send(value=1, partition=5, callback=sent)
    assert isinstance(sent.error, ValueError)
    fut = topic.send_soon(value=1, partition=7, callback=soon)
    with pytest.raises(ValueError, match="partition 7 does not exist"):
        await fut
    assert soon.error is fut.exception()


async def test_async_callback_is_awaited(app: faust.App) -> None:
    topic = app.topic("async-callback", value_type=int, partitions=1)
    seen: list[int] = []

    async def on_sent(fut: asyncio.Future[RecordMetadata]) -> None:
        await asyncio.sleep(0)
        seen.append(fut.result().offset)

    await topic.declare()
    await topic.send(value=1, callback=on_sent)
    await topic.send(value=2, callback=on_sent)
    await eventually(lambda: seen == [0, 1])


async def test_a_raising_callback_is_logged_and_the_send_still_succeeds(
    app: faust.App, caplog: pytest.LogCaptureFixture
) -> None:
    topic = app.topic("bad-callback", value_type=int, partitions=1)

    def broken(fut: asyncio.Future[RecordMetadata]) -> None:
        raise RuntimeError("bug in the callback")

    await topic.declare()
    with caplog.at_level(logging.ERROR):
        first = await topic.send(value=1, callback=broken)
        second = await topic.send_soon(value=2, callback=broken)
    assert (first.offset, second.offset) == (0, 1)
    logged = [r for r in caplog.records if "callback" in r.getMessage()]
    assert len(logged) == 2
    assert "'bad-callback'" in logged[0].getMessage()
    assert logged[0].exc_info is not None and "bug in the callback" in str(logged[0].exc_info[1])


async def test_callback_of_agent_channel_and_event_sends(app: faust.App) -> None:
    double, events = await started_agent(app)
    to_agent, to_channel, by_event, forwarded = Done(), Done(), Done(), Done()
    metadata = await double.send(value=1, callback=to_agent)
    assert to_agent.result == metadata
    channel = app.channel()
    channel_metadata = await channel.send(value="x", callback=to_channel)
    assert to_channel.result == channel_metadata
    await eventually(lambda: len(events) == 1)
    sent = await events[0].send("copies", value=10, partition=0, callback=by_event)
    assert by_event.result == sent
    copied = await events[0].forward("copies", partition=0, callback=forwarded)
    assert forwarded.result == copied
    assert copied.offset == sent.offset + 1


# -- the result of a send can be awaited again -----------------------------------------------


async def test_send_result_can_be_awaited_again(app: faust.App) -> None:
    topic = app.topic("again", value_type=int, partitions=1)
    await topic.declare()
    metadata = await topic.send(value=1)
    assert (await metadata) is metadata
    # Faust style: the send gives a future, awaited for the metadata.
    fut = await topic.send(value=2)
    got = await fut
    assert isinstance(got, RecordMetadata)
    assert (got.topic, got.partition, got.offset) == ("again", 0, 1)
    soon = await topic.send_soon(value=3)
    assert (await soon).offset == 2
    assert (await (await app.channel().send(value=4))).topic.startswith("channel-")


# -- what the documented keywords do -------------------------------------------------------


async def test_schema_and_serializers_encode_one_record_differently(app: faust.App) -> None:
    topic = app.topic("encoded", key_type=str, value_type=str, partitions=1)
    seen: list[faust.Event] = []

    @app.agent(app.topic("encoded", partitions=1, value_serializer="raw"))
    async def read(stream):
        async for event in stream.events():
            seen.append(event)

    await app.start()
    await topic.send(key="k", value="as json")
    await topic.send(key="k", value="as raw", value_serializer="raw")
    await topic.send(key="k", value="by schema", schema=faust.Schema(value_serializer="raw"))
    await eventually(lambda: len(seen) == 3)
    assert [e.message.value for e in seen] == [b'"as json"', b"as raw", b"by schema"]


async def test_force_is_accepted_for_faust_code(app: faust.App) -> None:
    topic = app.topic("forced", value_type=int, partitions=1)
    await topic.declare()
    assert (await topic.send(value=1, force=True)).offset == 0
    assert (await topic.send_soon(value=2, force=True)).offset == 1


async def test_event_forward_sends_the_event_with_headers(app: faust.App) -> None:
    copies: list[Any] = []

    @app.agent(app.topic("copies", value_type=int, partitions=1))
    async def collect(stream):
        async for event in stream.events():
            copies.append((event.value, event.headers))

    double, events = await started_agent(app)
    await double.cast(7)
    await eventually(lambda: len(events) == 1)
    await events[0].forward("copies", headers=[("origin", "numbers")])
    await eventually(lambda: copies == [(7, {"origin": b"numbers"})])


async def test_event_forward_keeps_the_event_headers_unless_given(app: faust.App) -> None:
    copies: list[Any] = []

    @app.agent(app.topic("copies", value_type=int, partitions=1))
    async def collect(stream):
        async for event in stream.events():
            copies.append((event.value, event.headers))

    double, events = await started_agent(app)
    await double.cast(7, headers={"trace": "t-1"})
    await eventually(lambda: len(events) == 1)
    await events[0].forward("copies")
    await eventually(lambda: copies == [(7, {"trace": b"t-1"})])
