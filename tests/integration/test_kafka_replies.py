"""On real Kafka: ask() through a group_by is answered by the agent that yields, once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

import faust
from faust.exceptions import AskError
from tests.integration.test_kafka_transport import (
    WAIT,
    AppFactory,
    kafka_app,  # noqa: F401 - the fixture
    unique,
)
from tests.integration.workers import REPO, WorkerCluster, read_topic


class Order(faust.Record, serializer="json"):
    account: str
    amount: int


async def test_ask_through_group_by_answers_within_seconds(
    kafka_app: AppFactory,  # noqa: F811
) -> None:
    app = kafka_app(unique("it-ask"))
    orders = app.topic(unique("it-orders"), key_type=str, value_type=Order)

    @app.agent(orders)
    async def large_orders(stream: Any) -> AsyncIterator[int]:
        async for order in stream.filter(lambda o: o.amount > 100).group_by(Order.account):
            yield order.amount

    await app.start()
    # The first ask waits for the group to form and the reply topic to exist.
    assert await large_orders.ask(Order(account="a-1", amount=500), timeout=WAIT) == 500
    started = time.monotonic()
    answers = await asyncio.wait_for(
        large_orders.join([Order(account=f"a-{i}", amount=101 + i) for i in range(10)]), 10
    )
    assert answers == [101 + i for i in range(10)]
    assert time.monotonic() - started < 5.0


async def test_ask_nowait_and_a_combined_stream_on_kafka(
    kafka_app: AppFactory,  # noqa: F811
) -> None:
    """ask_nowait's promise is answered through the reply topic; an agent over two
    combined topics answers asks sent to either and commits both."""
    app = kafka_app(unique("it-nowait"))
    orders = app.topic(unique("it-orders"), key_type=str, value_type=Order)
    refunds = app.topic(unique("it-refunds"), key_type=str, value_type=Order)

    seen: list[tuple[str, int]] = []

    @app.agent(orders)
    async def amounts(stream: Any) -> AsyncIterator[int]:
        async for order in stream & refunds.stream():
            seen.append((faust.current_event().message.topic, order.amount))
            yield order.amount

    await app.start()
    assert await amounts.ask(Order(account="a", amount=1), timeout=WAIT) == 1
    promises = [await amounts.ask_nowait(Order(account="b", amount=i)) for i in range(5)]
    replies = await asyncio.wait_for(asyncio.gather(*promises), 10)
    assert replies == list(range(5))
    await refunds.send(key="c", value=Order(account="c", amount=-7))
    deadline = time.monotonic() + WAIT
    while (refunds.topics[0], -7) not in seen and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert (refunds.topics[0], -7) in seen


async def test_ask_raises_ask_error_when_the_agent_dead_letters_the_request_on_kafka(
    kafka_app: AppFactory,  # noqa: F811
    kafka_bootstrap: str,
) -> None:
    """The error reply travels through Kafka (its header survives the broker) and the
    dead letter, read back from Kafka, has no reply headers; the next ask is answered."""
    app = kafka_app(unique("it-askerr"))
    amounts = app.topic(unique("it-amounts"), key_type=str, value_type=int)

    @app.agent(amounts, retries=1)
    async def picky(stream: Any) -> AsyncIterator[int]:
        async for value in stream:
            if value < 0:
                raise ValueError(f"negative: {value}")
            yield value

    await app.start()
    assert await picky.ask(1, key="k", timeout=WAIT) == 1
    started = time.monotonic()
    with pytest.raises(AskError) as info:
        await picky.ask(-1, key="k", timeout=WAIT)
    assert time.monotonic() - started < 10  # the error reply, not the timeout
    assert info.value.agent == picky.name and info.value.error_type == "ValueError"
    assert "negative: -1" in str(info.value) and "dead-letter topic" in str(info.value)
    assert await picky.ask(2, key="k", timeout=WAIT) == 2
    bootstrap = kafka_bootstrap
    letters = await read_topic(bootstrap, picky.dead_letter_topic)
    assert [value for _, _, _, value in letters] == [b"-1"]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign([TopicPartition(picky.dead_letter_topic, 0)])
        batch = await consumer.getmany(timeout_ms=5000)
        headers = {name for messages in batch.values() for m in messages for name, _ in m.headers}
    finally:
        await consumer.stop()
    assert "faust-reply-to" not in headers and "faust-correlation-id" not in headers


# The README tour, on Kafka (its ids made unique), with a line telling the test when the
# worker has the orders topic's partitions.
TOUR = """
import os

import faust


class Order(faust.Record, serializer='json'):
    account: str
    amount: int


app = faust.App(os.environ['TOUR_APP_ID'], broker=os.environ['TOUR_BROKER'], topic_partitions=8)
orders = app.topic(os.environ['TOUR_ORDERS'], key_type=str, value_type=Order)


@app.agent(orders, concurrency=1)
async def large_orders(stream):
    async for order in stream.filter(lambda o: o.amount > 100).group_by(Order.account):
        yield order.amount


@app.crontab('*/5 * * * *', timezone='Europe/Oslo')
async def report():
    print('five minutes passed')


@app.command(faust.cli.option('--amount', type=int, default=500))
async def buy(self, amount):
    print(await large_orders.ask(Order(account='a-1', amount=amount)))


@app.on_partitions_assigned.connect
def assigned(app, tps, **kwargs):
    print('ASSIGNED', sorted(tp.partition for tp in tps if tp.topic == orders.name), flush=True)
"""


async def test_the_tour_buy_command_is_answered_by_a_worker(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    """`faust -A tour worker` in one process, `faust -A tour buy` in another."""
    cluster = WorkerCluster(tmp_path, kafka_bootstrap, "tour", TOUR)
    env = {
        "TOUR_APP_ID": cluster.app_id,
        "TOUR_BROKER": f"kafka://{kafka_bootstrap}",
        "TOUR_ORDERS": cluster.source,
    }
    worker = cluster.spawn(env)
    try:
        await cluster.wait_assigned([worker])
        buy = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "faust", "-A", "tour", "buy", "--amount", "700"],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(REPO), **env},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=WAIT,
        )
    finally:
        cluster.stop_all()
    assert buy.returncode == 0, buy.stderr[-3000:]
    assert buy.stdout.strip().splitlines()[-1] == "700", (buy.stdout, worker.output()[-3000:])
