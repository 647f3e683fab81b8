"""Faust's public API beyond the core: typing names, App helpers, signals and Services.

Each test uses the names and calls as Faust's documentation shows them, so the same
test would pass against Faust itself.
"""

from __future__ import annotations

import uuid as _uuid

import faust
from faust.types import (
    AgentT,
    AppT,
    ChannelT,
    EventT,
    ModelOptions,
    ModelT,
    RecordT,
    ServiceT,
    StreamT,
    TableT,
    TopicT,
)
from tests.conftest import eventually


class Order(faust.Record):
    account: str
    amount: int


def test_typing_names_describe_the_objects_an_app_makes(app: faust.App) -> None:
    topic = app.topic("orders", value_type=Order)
    table = app.Table("totals", default=int)

    @app.agent(topic)
    async def process(stream: StreamT[Order]) -> None:
        async for _order in stream:
            pass

    assert isinstance(app, AppT)
    assert isinstance(topic, TopicT) and isinstance(topic, ChannelT)
    assert isinstance(app.channel(), ChannelT) and not isinstance(app.channel(), TopicT)
    assert isinstance(table, TableT)
    assert isinstance(process, AgentT)
    assert isinstance(Order("a", 1), ModelT) and isinstance(Order("a", 1), RecordT)
    assert isinstance(Order._options, ModelOptions)
    assert issubclass(faust.Service, ServiceT)


def test_typing_names_are_exported_where_faust_exports_them() -> None:
    import faust.types

    for name in ("StreamT", "ChannelT", "TopicT", "EventT", "ServiceT", "ModelOptions"):
        assert getattr(faust, name) is getattr(faust.types, name), name
        assert name in faust.__all__
    for name in ("AgentT", "TableT", "ModelT", "RecordT", "AppT", "TP", "K", "V"):
        assert name in faust.types.__all__, name
    assert faust.types.TP("t", 1).partition == 1


def test_stream_table_channel_topic_are_subscriptable_in_annotations() -> None:
    def annotated(
        stream: faust.Stream[Order],
        table: faust.Table[str, int],
        channel: faust.Channel[int],
        topic: faust.Topic[Order],
        event: EventT,
    ) -> None: ...

    assert faust.Stream[Order].__origin__ is faust.Stream
    assert faust.Table[str, int].__args__ == (str, int)
    assert faust.Channel[int].__origin__ is faust.Channel
    assert faust.Topic[Order].__origin__ is faust.Topic
    assert annotated.__annotations__["stream"] == "faust.Stream[Order]"


async def test_annotated_agent_runs(app: faust.App) -> None:
    topic: faust.Topic[Order] = app.topic("annotated-orders", value_type=Order)
    totals: faust.Table[str, int] = app.Table("annotated-totals", default=int)

    @app.agent(topic)
    async def process(stream: faust.Stream[Order]) -> None:
        async for order in stream:
            totals[order.account] += order.amount

    await app.start()
    await topic.send(key="a", value=Order("a", 3))
    await topic.send(key="a", value=Order("a", 4))
    await eventually(lambda: totals["a"] == 7)


def test_uuid_is_a_new_uuid_as_text() -> None:
    first, second = faust.uuid(), faust.uuid()
    assert first != second
    assert str(_uuid.UUID(first)) == first


async def test_event_type_is_the_current_event(app: faust.App) -> None:
    topic = app.topic("events-typed", value_type=str)
    seen: list[EventT] = []

    @app.agent(topic)
    async def process(stream: StreamT[str]) -> None:
        async for _value in stream:
            event = faust.current_event()
            assert event is not None
            seen.append(event)

    await app.start()
    await topic.send(value="x")
    await eventually(lambda: len(seen) == 1)
    assert isinstance(seen[0], EventT) and seen[0].value == "x"
