"""On real Kafka: Faust's client settings reach aiokafka and a worker runs with them."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.integration.test_kafka_transport import (
    WAIT,
    AppFactory,
    kafka_app,  # noqa: F401 - the fixture
    unique,
)


async def test_app_with_faust_client_settings_sends_receives_and_replies(
    kafka_app: AppFactory,  # noqa: F811
) -> None:
    app = kafka_app(
        unique("it-settings"),
        broker_api_version="2.0",
        broker_check_crcs=False,
        broker_rebalance_timeout=30,
        broker_metadata_max_age=60,
        broker_connections_max_idle=120,
        producer_request_timeout=30,
        producer_linger_ms=5,
        reply_create_topic=True,
        stream_wait_empty=False,
        debug=True,
    )
    topic = app.topic(unique("it-settings-in"), value_type=str)
    seen: list[str] = []
    done = asyncio.Event()

    @app.agent(topic)
    async def collect(stream: Any) -> Any:
        async for value in stream:
            seen.append(value)
            if len(seen) == 3:
                done.set()
            yield value.upper()

    await app.start()
    assert app.replies is not None  # reply_create_topic: reading replies from the start
    for value in ("a", "b", "c"):
        await topic.send(value=value)
    await asyncio.wait_for(done.wait(), WAIT)
    assert seen == ["a", "b", "c"]
    assert await asyncio.wait_for(collect.ask(value="d"), WAIT) == "D"
    assert app.conf.producer_linger == 0.005
