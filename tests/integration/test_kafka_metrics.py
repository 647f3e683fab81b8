"""The Monitor and /metrics on real Kafka: a worker consumes N known events.

While the agent is held on its first event, every partition shows the lag of what it
has not processed; once it is released, /metrics (parsed with prometheus-client's own
parser) shows N events in for the topic and for the agent, commits, and a lag of 0 on
every partition, the committed offsets equal to the end offsets.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

import faust
from faust.sensors.prometheus import render_metrics
from tests.conftest import metric_samples

pytestmark = pytest.mark.timeout(300)

PARTITIONS = 3
EVENTS = 600
# Joining the group and declaring topics take seconds on a busy 2-core machine.
WAIT = 60.0


def value(samples: dict[Any, float], name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def until(predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            pytest.fail(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.05)


async def produce(bootstrap: str, topic: str) -> Counter[int]:
    """Write EVENTS JSON ints over the partitions (round robin); records per partition."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    per_partition: Counter[int] = Counter()
    try:
        pending = []
        for i in range(EVENTS):
            partition = i % PARTITIONS
            per_partition[partition] += 1
            pending.append(
                await producer.send(topic, key=b'"k"', value=str(i).encode(), partition=partition)
            )
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return per_partition


async def test_metrics_count_the_events_a_worker_consumed(kafka_bootstrap: str) -> None:
    app_id = f"metrics-{uuid.uuid4().hex[:10]}"
    app = faust.App(
        app_id,
        broker=f"kafka://{kafka_bootstrap}",
        topic_partitions=PARTITIONS,
        broker_commit_interval=0.2,
    )
    topic = app.topic(f"{app_id}-numbers", key_type=str, value_type=int, partitions=PARTITIONS)
    gate = asyncio.Event()
    seen: list[int] = []

    @app.agent(topic)
    async def numbers(stream):
        async for number in stream:
            await gate.wait()  # held on the first event until the test looks at the lag
            seen.append(number)

    await app.declare_topic(topic)
    per_partition = await produce(kafka_bootstrap, topic.name)
    monitor = app.monitor
    assert monitor is not None
    try:
        await app.start()

        def lags() -> dict[int, Any]:
            return {
                row["partition"]: row["lag"]
                for row in monitor.snapshot()["partitions"]
                if row["topic"] == topic.name
            }

        # Held: every record of every partition is still to be processed.
        await until(
            lambda: lags() == {p: n for p, n in per_partition.items()}, "the lag of every record"
        )
        held = metric_samples(render_metrics(app)[0])
        for partition, count in per_partition.items():
            labels = {"topic": topic.name, "partition": str(partition)}
            assert value(held, "faust_consumer_lag", **labels) == count
            assert value(held, "faust_consumer_end_offset", **labels) == count
        assert not seen

        gate.set()
        await until(lambda: len(seen) == EVENTS, "every event processed")
        await until(lambda: set(lags().values()) == {0}, "a lag of 0 on every partition")
        assert sorted(seen) == list(range(EVENTS))

        samples = metric_samples(render_metrics(app)[0])
        assert value(samples, "faust_topic_messages_in_total", topic=topic.name) == EVENTS
        assert value(samples, "faust_topic_events_in_total", topic=topic.name) == EVENTS
        assert value(samples, "faust_topic_events_out_total", topic=topic.name) == EVENTS
        assert value(samples, "faust_agent_events_in_total", agent=numbers.name) == EVENTS
        assert value(samples, "faust_agent_events_out_total", agent=numbers.name) == EVENTS
        assert value(samples, "faust_agent_processing_seconds_count", agent=numbers.name) == EVENTS
        commits = value(samples, "faust_commits_total")
        assert commits is not None and commits > 0
        assert value(samples, "faust_commit_latency_seconds_count") == commits
        assert (value(samples, "faust_rebalances_total") or 0) >= 1
        assert value(samples, "faust_errors_total", kind="decode") == 0
        for partition, count in per_partition.items():
            labels = {"topic": topic.name, "partition": str(partition)}
            assert value(samples, "faust_consumer_lag", **labels) == 0
            assert value(samples, "faust_consumer_committed_offset", **labels) == count
            assert value(samples, "faust_consumer_end_offset", **labels) == count

        snap = monitor.snapshot()
        agent = snap["agents"][numbers.name]
        assert (agent["events_in"], agent["events_out"], agent["buffered"]) == (EVENTS, EVENTS, 0)
        # Busy time includes the wait at the gate: at least the time the test held it.
        assert agent["busy_seconds"] > 0
    finally:
        await app.stop()
        transport = faust.App("cleanup", broker=f"kafka://{kafka_bootstrap}").transport
        try:
            await transport.delete_topic(topic.name)
        finally:
            await transport.close()
