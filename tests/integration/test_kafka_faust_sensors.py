"""Faust's sensor hooks and Topic(acks=False) on real Kafka: a sensor written for Faust
hears of each message, event and record with Faust's arguments, of the commit and the
rebalance, and (this worker leads the group) of the partition assignment; a topic
declared with acks=False is read but never committed."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

import faust
from faust.transport.base import TP
from tests.integration.test_kafka_metrics import until

pytestmark = pytest.mark.timeout(300)

EVENTS = 5


class FaustSensor(faust.Sensor):
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def on_message_in(self, tp, offset, message):  # type: ignore[no-untyped-def]
        self.calls.append(("message_in", tp, offset))

    def on_message_out(self, tp, offset, message):  # type: ignore[no-untyped-def]
        self.calls.append(("message_out", tp, offset))

    def on_stream_event_in(self, tp, offset, stream, event):  # type: ignore[no-untyped-def]
        return event.value

    def on_stream_event_out(self, tp, offset, stream, event, state=None):  # type: ignore[no-untyped-def]
        self.calls.append(("event_out", tp, offset, state))

    def on_send_initiated(self, producer, topic, message, keysize, valsize):  # type: ignore[no-untyped-def]
        return (topic, valsize)

    def on_send_completed(self, producer, state, metadata):  # type: ignore[no-untyped-def]
        self.calls.append(("send_completed", state, metadata.topic))

    def on_commit_initiated(self, consumer):  # type: ignore[no-untyped-def]
        return "commit"

    def on_commit_completed(self, consumer, state):  # type: ignore[no-untyped-def]
        self.calls.append(("commit_completed", state))

    def on_rebalance_start(self, app):  # type: ignore[no-untyped-def]
        return "rebalance"

    def on_rebalance_end(self, app, state):  # type: ignore[no-untyped-def]
        self.calls.append(("rebalance_end", state))

    def on_assignment_start(self, assignor):  # type: ignore[no-untyped-def]
        return type(assignor).__name__

    def on_assignment_completed(self, assignor, state):  # type: ignore[no-untyped-def]
        self.calls.append(("assignment_completed", state))

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        return [call for call in self.calls if call[0] == kind]


async def test_faust_sensor_hooks_and_acks_false_on_kafka(kafka_bootstrap: str) -> None:
    app_id = f"faust-sensors-{uuid.uuid4().hex[:10]}"
    app = faust.App(
        app_id, broker=f"kafka://{kafka_bootstrap}", topic_partitions=1, broker_commit_interval=0.2
    )
    sensor = FaustSensor()
    app.sensors.add(sensor)
    counted = app.topic(f"{app_id}-counted", value_type=int, partitions=1)
    unacked = app.topic(f"{app_id}-unacked", value_type=int, partitions=1, acks=False)
    seen: list[tuple[str, int]] = []

    @app.agent(counted)
    async def read_counted(stream):
        async for value in stream:
            seen.append(("counted", value))

    @app.agent(unacked)
    async def read_unacked(stream):
        async for value in stream:
            seen.append(("unacked", value))

    try:
        await app.start()
        for value in range(EVENTS):
            await counted.send(value=value)
            await unacked.send(value=value)
        await until(lambda: len(seen) == 2 * EVENTS, "every event processed")
        tp = TP(counted.name, 0)
        await until(
            lambda: len([c for c in sensor.of("message_out") if c[1] == tp]) == EVENTS,
            "every counted message out",
        )
        assert [c[2] for c in sensor.of("message_in") if c[1] == tp] == list(range(EVENTS))
        assert [c[3] for c in sensor.of("event_out") if c[1] == tp] == list(range(EVENTS))
        sent = [c for c in sensor.of("send_completed") if c[2] == counted.name]
        assert sent == [("send_completed", (counted.name, 1), counted.name)] * EVENTS
        assert ("rebalance_end", "rebalance") in sensor.calls
        assert ("assignment_completed", "PartitionAssignor") in sensor.calls
        assert app.consumer is not None
        await app.consumer.commit()
        await until(lambda: bool(sensor.of("commit_completed")), "a commit")
        assert sensor.of("commit_completed")[-1] == ("commit_completed", "commit")
        await app.stop()  # commits what is processed, as at any shutdown
        committed = await broker_committed(kafka_bootstrap, app.conf.group_id, counted, unacked)
        assert committed == {counted.name: EVENTS, unacked.name: None}
    finally:
        if app.started:
            await app.stop()
        transport = faust.App("cleanup", broker=f"kafka://{kafka_bootstrap}").transport
        try:
            for topic in (counted, unacked):
                await transport.delete_topic(topic.name)
        finally:
            await transport.close()


async def broker_committed(
    bootstrap: str, group_id: str, *topics: faust.Topic
) -> dict[str, int | None]:
    """Partition 0's committed offset of each topic, as the broker has it."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        return {t.name: await consumer.committed(TopicPartition(t.name, 0)) for t in topics}
    finally:
        await consumer.stop()
