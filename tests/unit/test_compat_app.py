"""Faust's public API beyond the core: typing names, App helpers, signals and Services.

Each test uses the names and calls as Faust's documentation shows them, so the same
test would pass against Faust itself.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid as _uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest

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


# -- App -------------------------------------------------------------------------------


async def test_configure_signals_fire_once_in_fausts_order(app: faust.App) -> None:
    calls: list[str] = []

    @app.on_before_configured.connect
    def before(sender: faust.App, **kwargs: object) -> None:
        calls.append("before")

    @app.on_configured.connect
    def configured(sender: faust.App, conf: object, **kwargs: object) -> None:
        assert conf is sender.conf
        calls.append("configured")

    @app.on_after_configured.connect
    def after(sender: faust.App, **kwargs: object) -> None:
        calls.append("after")

    assert not app.finalized
    app.finalize()
    app.finalize()
    await app.start()
    assert calls == ["before", "configured", "after"]


async def test_on_configured_runs_at_start_without_finalize(app: faust.App) -> None:
    seen: list[object] = []
    app.on_configured.connect(lambda sender, conf, **kwargs: seen.append(conf))
    await app.start()
    assert seen == [app.conf]


def test_sync_signal_refuses_an_async_receiver(app: faust.App) -> None:
    async def receiver(sender: faust.App, **kwargs: object) -> None: ...

    with pytest.raises(TypeError, match="on_rebalance_start.*plain def"):
        app.on_rebalance_start.connect(receiver)


async def test_sleep_returns_early_when_the_app_stops(app: faust.App) -> None:
    rounds: list[float] = []

    @app.task
    async def poll() -> None:
        while not app.should_stop:
            rounds.append(asyncio.get_running_loop().time())
            await app.sleep(30.0)

    await app.start()
    assert not app.should_stop
    await eventually(lambda: len(rounds) == 1)
    loop = asyncio.get_running_loop()
    began = loop.time()
    await app.stop()
    assert app.should_stop
    assert loop.time() - began < 5.0 and len(rounds) == 1
    await app.sleep(10.0)  # at once: the app is stopping


async def test_sleep_waits_while_running(app: faust.App) -> None:
    await app.start()
    loop = asyncio.get_running_loop()
    began = loop.time()
    await app.sleep(0.05)
    assert loop.time() - began >= 0.045


async def test_app_send_by_topic_name_and_object(app: faust.App) -> None:
    topic = app.topic("app-send", value_type=str)
    got: list[tuple[object, object]] = []

    @app.agent(topic)
    async def reader(stream: StreamT[str]) -> None:
        async for key, value in stream.items():
            got.append((key, value))

    await app.start()
    metadata = await app.send("app-send", key=b"k", value="by-name")
    assert metadata.topic == "app-send"
    await app.send(topic, key="k2", value="by-object", headers={"h": b"1"})
    channel = app.channel()
    await app.send(channel, value="to-a-channel")  # no reader: accepted
    await eventually(lambda: len(got) == 2)
    assert sorted(value for _, value in got) == ["by-name", "by-object"]


async def test_app_stream_over_an_iterable_ends_after_its_values(app: faust.App) -> None:
    seen = [value async for value in app.stream([1, 2, 3, 4]).filter(lambda v: v % 2 == 0)]
    assert seen == [2, 4]

    async def produce() -> AsyncIterator[str]:
        for word in ("a", "b"):
            yield word

    assert [w async for w in app.stream(produce())] == ["a", "b"]
    with pytest.raises(TypeError, match="app.stream"):
        app.stream(42)


async def test_app_stream_over_a_topic(app: faust.App) -> None:
    topic = app.topic("app-stream", value_type=str)
    stream = app.stream(topic)
    assert isinstance(stream, faust.Stream)
    await app.start()
    await topic.send(value="x")
    async for value in stream:
        assert value == "x"
        break


async def test_maybe_declare_creates_the_topic_once(app: faust.App) -> None:
    topic = app.topic("declared-once", partitions=3)
    await topic.maybe_declare()
    await topic.maybe_declare()
    assert app.partition_count_of("declared-once") == 3
    metadata = await topic.send(value=b"x", partition=2)
    assert metadata.partition == 2


async def test_flow_control_suspends_fetching_until_resumed(app: faust.App) -> None:
    topic = app.topic("flow", value_type=int)
    got: list[int] = []

    @app.agent(topic)
    async def reader(stream: StreamT[int]) -> None:
        async for value in stream:
            got.append(value)

    await app.start()
    await topic.send(value=1)
    await eventually(lambda: got == [1])
    assert app.flow_control.is_active()
    app.flow_control.suspend()
    assert not app.flow_control.is_active()
    # The fetch in progress still delivers what it gets; nothing is fetched after it.
    await topic.send(value=2)
    await eventually(lambda: got == [1, 2])
    await topic.send(value=3)
    await asyncio.sleep(0.3)
    assert got == [1, 2]
    app.flow_control.resume()
    await eventually(lambda: got == [1, 2, 3])


async def test_rebalance_signals_and_rebalancing(app: faust.App) -> None:
    topic = app.topic("rebalanced", value_type=int)
    calls: list[tuple[str, bool]] = []
    app.on_rebalance_start.connect(lambda sender, **kw: calls.append(("start", app.rebalancing)))
    app.on_rebalance_complete.connect(
        lambda sender, **kw: calls.append(("complete", app.rebalancing))
    )
    app.on_rebalance_end.connect(lambda sender, **kw: calls.append(("end", app.rebalancing)))

    @app.agent(topic)
    async def reader(stream: StreamT[int]) -> None:
        async for _ in stream:
            pass

    assert not app.rebalancing
    await app.start()
    await app.wait_ready()
    await eventually(lambda: len(calls) == 3)
    assert calls == [("start", True), ("complete", True), ("end", False)]
    assert not app.rebalancing
    await app.stop()
    assert len(calls) == 3  # giving the partitions up at stop is no rebalance


async def test_on_rebalance_complete_awaits_an_async_receiver_after_recovery(
    app: faust.App,
) -> None:
    # As Faust's word_count example connects it: an async def that prints a table.
    app.Table("completed", default=int)
    seen: list[tuple[bool, bool]] = []

    @app.on_rebalance_complete.connect
    async def on_complete(sender: faust.App, **kwargs: object) -> None:
        await asyncio.sleep(0)
        seen.append((sender.rebalancing, sender.tables.recovering))

    await app.start()
    await app.wait_ready()
    await eventually(lambda: len(seen) == 1)
    assert seen == [(True, False)]  # before on_rebalance_end, once the table is recovered


async def test_on_produce_message_sees_each_record_and_adds_headers(app: faust.App) -> None:
    topic = app.topic("produced", value_type=str)
    seen: list[dict[str, object]] = []

    @app.on_produce_message.connect
    def trace(sender: faust.App, **kwargs: Any) -> None:
        seen.append(kwargs)
        kwargs["headers"].append(("trace-id", b"42"))

    headers: list[Mapping[str, bytes]] = []

    @app.agent(topic)
    async def reader(stream: StreamT[str]) -> None:
        async for event in stream.events():
            headers.append(event.headers)

    await app.start()
    await topic.send(key="k", value="v", headers={"own": b"1"})
    await topic.send_soon(value="soon")
    await eventually(lambda: len(headers) == 2)
    assert headers[0] == {"own": b"1", "trace-id": b"42"}
    assert headers[1] == {"trace-id": b"42"}
    # Key and value as they go to the broker: encoded by the topic's serializers.
    assert seen[0]["key"] == topic.schema.dumps_key("k")
    assert seen[0]["value"] == topic.schema.dumps_value("v")
    assert set(seen[0]) == {"key", "value", "partition", "timestamp", "headers"}


async def test_partial_functions_as_timer_crontab_and_task(app: faust.App) -> None:
    ticks: list[str] = []

    async def tick(label: str) -> None:
        ticks.append(label)

    app.timer(interval=0.01)(functools.partial(tick, "timer"))
    app.crontab("* * * * *")(functools.partial(tick, "cron"))
    app.task(functools.partial(tick, "task"))
    assert any(t.name.endswith("tick") for t in app.timers)
    await app.start()
    await eventually(lambda: "timer" in ticks and "task" in ticks)


# -- Services --------------------------------------------------------------------------


async def test_a_service_as_in_fausts_docs(
    app: faust.App, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[str] = []

    class Dependency(faust.Service):
        async def on_start(self) -> None:
            events.append("dependency started")

        async def on_stop(self) -> None:
            events.append("dependency stopped")

    @app.service
    class Background(faust.Service):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.dependency = self.add_dependency(Dependency())

        async def on_start(self) -> None:
            self.log.info("STARTED")
            events.append("on_start")

        async def on_started(self) -> None:
            events.append("on_started")

        async def on_stop(self) -> None:
            self.log.info("STOPPED")
            events.append("on_stop")

        @faust.Service.task
        async def _background_task(self) -> None:
            while not self.should_stop:
                events.append("task")
                await self.sleep(3600.0)  # returns at once when the service stops

        @faust.Service.timer(0.01)
        async def _tick(self) -> None:
            events.append("tick")

    with caplog.at_level(logging.INFO, logger=__name__):
        await app.start()
        await eventually(lambda: events.count("tick") >= 2)
        lifecycle = [e for e in events if e not in ("task", "tick")]
        assert lifecycle == ["on_start", "dependency started", "on_started"]
        loop = asyncio.get_running_loop()
        began = loop.time()
        await app.stop()
    assert loop.time() - began < 5.0
    lifecycle = [e for e in events if e not in ("task", "tick")]
    assert lifecycle[3:] == ["on_stop", "dependency stopped"]
    assert events.count("task") == 1
    messages = [r.getMessage() for r in caplog.records if r.name == __name__]
    assert messages == ["[^Background]: STARTED", "[^Background]: STOPPED"]
    ticks = events.count("tick")
    await asyncio.sleep(0.05)
    assert events.count("tick") == ticks  # the timer ended with the service


async def test_a_failing_service_timer_is_logged_and_runs_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs: list[int] = []

    class Flaky(faust.Service):
        @faust.Service.timer(0.01)
        async def _tick(self) -> None:
            runs.append(1)
            raise RuntimeError("flaky")

    service = Flaky()
    with caplog.at_level(logging.ERROR, logger=__name__):
        await service.start()
        await eventually(lambda: len(runs) >= 2)
        await service.stop()
    assert any("[^Flaky]: Timer _tick raised" in r.getMessage() for r in caplog.records)


def test_service_timer_rejects_a_bad_interval() -> None:
    with pytest.raises(ValueError, match="interval must be a number of seconds"):
        faust.Service.timer(0)


async def test_a_subclass_overriding_a_task_replaces_it() -> None:
    ran: list[str] = []

    class Base(faust.Service):
        @faust.Service.task
        async def _work(self) -> None:
            ran.append("base")

    class Child(Base):
        async def _work(self) -> None:  # no longer a task
            ran.append("child")

    child = Child()
    await child.start()
    await asyncio.sleep(0.01)
    await child.stop()
    assert ran == []
    assert child.label == "Child" and "Child" in repr(child)


# -- Topic patterns --------------------------------------------------------------------


async def test_topic_pattern_reads_every_matching_topic_also_new_ones(app: faust.App) -> None:
    app.topic_pattern_refresh = 0.05
    first, other = app.topic("email-a", value_type=str), app.topic("sms-a", value_type=str)
    await first.maybe_declare()
    await other.maybe_declare()
    emails = app.topic(pattern="^email-.*", value_type=str)
    got: list[tuple[str, str]] = []

    @app.agent(emails)
    async def reader(stream: StreamT[str]) -> None:
        async for event in stream.events():
            got.append((event.message.topic, event.value))

    await app.start()
    await first.send(value="one")
    await other.send(value="not an email")
    await eventually(lambda: got == [("email-a", "one")])
    # A topic created after the start is read too, from its beginning.
    later = app.topic("email-b", value_type=str)
    await later.send(value="two")
    await eventually(lambda: ("email-b", "two") in got)
    assert all(topic.startswith("email-") for topic, _ in got)


async def test_topic_pattern_refuses_names_too_and_sending(app: faust.App) -> None:
    with pytest.raises(ValueError, match="names or a pattern, not both"):
        app.topic("orders", pattern="^o.*")
    with pytest.raises(ValueError, match="send to one of them by name"):
        await app.topic(pattern="^o.*").send(value=1)


def test_typing_submodules_faust_code_imports_from() -> None:
    from faust.types.agents import AgentT as Agent_T
    from faust.types.app import AppT as App_T
    from faust.types.streams import StreamT as Stream_T
    from faust.types.tables import TableT as Table_T
    from faust.types.topics import ChannelT as Channel_T
    from faust.types.topics import TopicT as Topic_T
    from faust.types.tuples import TP

    assert (Agent_T, App_T, Stream_T, Table_T, Channel_T, Topic_T) == (
        faust.Agent,
        faust.App,
        faust.Stream,
        faust.Table,
        faust.Channel,
        faust.Topic,
    )
    assert TP("t", 0).topic == "t"


async def test_a_service_whose_on_stop_raises_still_stops_its_tasks_and_dependencies() -> None:
    class Dependency(faust.Service):
        pass

    class Breaks(faust.Service):
        @faust.Service.task
        async def _wait(self) -> None:
            await asyncio.Event().wait()

        async def on_stop(self) -> None:
            raise RuntimeError("fails to stop")

    service = Breaks()
    dependency = service.add_dependency(Dependency())
    await service.start()
    assert dependency.started
    with pytest.raises(RuntimeError, match="fails to stop"):
        await service.stop()
    assert not dependency.started and service.should_stop
