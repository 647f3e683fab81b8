"""Faust's App API on real Kafka: topics subscribed by pattern, rebalance signals."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

import faust
from tests.conftest import eventually

# Joining a consumer group and a rebalance take a few seconds on a busy 2-core machine.
WAIT = 60.0


@pytest.fixture
async def kafka_app(kafka_bootstrap: str) -> AsyncIterator[faust.App]:
    app = faust.App(
        f"it-compat-{uuid.uuid4().hex[:10]}",
        broker=f"kafka://{kafka_bootstrap}",
        topic_partitions=2,
    )
    yield app
    if app.started:
        await app.stop()


async def test_pattern_topic_and_rebalance_signals_on_kafka(kafka_app: faust.App) -> None:
    app = kafka_app
    app.topic_pattern_refresh = 0.5
    prefix = f"pat-{uuid.uuid4().hex[:8]}"
    first = app.topic(f"{prefix}-a", value_type=str)
    unrelated = app.topic(f"other-{prefix}", value_type=str)
    await first.maybe_declare()
    await unrelated.maybe_declare()
    got: list[tuple[str, str]] = []
    signals: list[str] = []
    app.on_rebalance_start.connect(lambda sender, **kw: signals.append("start"))
    app.on_rebalance_complete.connect(lambda sender, **kw: signals.append("complete"))
    app.on_rebalance_end.connect(lambda sender, **kw: signals.append("end"))

    @app.agent(app.topic(pattern=f"^{prefix}-.*", value_type=str))
    async def reader(stream: Any) -> None:
        async for event in stream.events():
            got.append((event.message.topic, event.value))

    await app.start()
    await app.wait_ready()
    await eventually(lambda: signals[:3] == ["start", "complete", "end"], timeout=WAIT)
    assert not app.rebalancing
    await first.send(value="one")
    await unrelated.send(value="not matched")
    await eventually(lambda: got == [(f"{prefix}-a", "one")], timeout=WAIT)
    # A matching topic created later joins the subscription (a rebalance), read from
    # its beginning.
    later = app.topic(f"{prefix}-b", value_type=str)
    await later.send(value="two")
    await eventually(lambda: (f"{prefix}-b", "two") in got, timeout=WAIT)
    # At least once: the event an agent still holds when the group rebalances (here
    # "one", acked when the next arrives) is read again from the committed offset.
    assert set(got) == {(f"{prefix}-a", "one"), (f"{prefix}-b", "two")}
    assert signals.count("start") >= 2 and signals[-1] in ("complete", "end")
