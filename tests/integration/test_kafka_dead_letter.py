"""On real Kafka: an event its agent keeps raising on goes to the dead-letter topic with
headers naming the error and its source, every other event is processed, and the
group's committed offset moves past it."""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.conftest import eventually
from tests.integration.test_kafka_transport import (
    KEYS,
    PARTITIONS,
    WAIT,
    AppFactory,
    Item,
    kafka_app,  # noqa: F401 - the fixture
    unique,
)

EVENTS = 60
BAD = 13


async def _read_all(bootstrap: str, topic: str, expected: int) -> list[Any]:
    """Every record of ``topic``, read with a plain aiokafka consumer (no group)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    records: list[Any] = []
    try:

        async def fetch() -> bool:
            batches = await consumer.getmany(timeout_ms=500)
            for batch in batches.values():
                records.extend(batch)
            return len(records) >= expected

        for _ in range(int(WAIT / 0.5)):
            if await fetch():
                break
        partitions = consumer.partitions_for_topic(topic)
    finally:
        await consumer.stop()
    assert partitions == set(range(PARTITIONS))  # as many as its source
    return records


async def test_an_event_that_keeps_raising_lands_in_the_dead_letter_topic(
    kafka_app: AppFactory,  # noqa: F811
    kafka_bootstrap: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = kafka_app(unique("it-dlq"), agent_restart_backoff=0.05)
    topic = app.topic(unique("it-payments"), key_type=str, value_type=Item)
    processed: list[int] = []
    attempts = 0

    @app.agent(topic, retries=2)
    async def pay(stream: Any) -> None:
        nonlocal attempts
        async for item in stream:
            if item.seq == BAD:
                attempts += 1
                raise ValueError(f"payment {item.seq} is refused")
            processed.append(item.seq)

    await app.start()
    sent = {}
    per_partition: dict[int, int] = defaultdict(int)
    with caplog.at_level(logging.WARNING):
        for seq in range(EVENTS):
            key = f"user-{seq % KEYS}"
            sent[seq] = await topic.send(
                key=key, value=Item(key=key, seq=seq), headers={"seq": str(seq).encode()}
            )
            per_partition[sent[seq].partition] += 1
        await eventually(
            lambda: len(processed) == EVENTS - 1 and app.error_counts.dead_lettered == 1,
            timeout=WAIT,
        )
        await app.stop()  # commits what was processed and dead-lettered
    assert sorted(processed) == [seq for seq in range(EVENTS) if seq != BAD]
    assert attempts == 3
    counts = app.error_counts
    assert (counts.agent_errors, counts.retried, counts.dead_lettered) == (3, 2, 1)

    dlq = pay.dead_letter_topic
    assert dlq == f"{app.conf.id}-{pay.name}-dlq".replace("<", "_").replace(">", "_")
    [record] = await _read_all(kafka_bootstrap, dlq, 1)
    bad = sent[BAD]
    assert record.partition == bad.partition  # keeps its source partition
    assert record.key == f"user-{BAD % KEYS}".encode()
    assert Item.loads(record.value, serializer="json") == Item(key=f"user-{BAD % KEYS}", seq=BAD)
    assert dict(record.headers) == {
        "seq": str(BAD).encode(),
        "faust.error.type": b"ValueError",
        "faust.error.message": f"payment {BAD} is refused".encode(),
        "faust.source.topic": topic.get_topic_name().encode(),
        "faust.source.partition": str(bad.partition).encode(),
        "faust.source.offset": str(bad.offset).encode(),
        "faust.agent": pay.name.encode(),
        "faust.error.attempts": b"3",
    }
    # The dead-letter topic is created before its first record: no client complains
    # about a topic it cannot find.
    noisy = [
        r.getMessage()
        for r in caplog.records
        if dlq in r.getMessage() and not r.name.startswith("faust.agents")
    ]
    assert not noisy, noisy

    # The group's committed offset of each partition is one past its last record,
    # past the dead-lettered one too.
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=app.conf.group_id)
    await consumer.start()
    try:
        for partition in range(PARTITIONS):
            committed = await consumer.committed(TopicPartition(topic.get_topic_name(), partition))
            assert (committed or 0) == per_partition[partition], partition
    finally:
        await consumer.stop()


async def test_a_record_that_cannot_be_decoded_lands_in_the_dead_letter_topic(
    kafka_app: AppFactory,  # noqa: F811
    kafka_bootstrap: str,
) -> None:
    app = kafka_app(unique("it-undecodable"))
    topic = app.topic(unique("it-items"), key_type=str, value_type=Item, partitions=1)
    processed: list[int] = []

    @app.agent(topic)
    async def collect(stream: Any) -> None:
        async for item in stream:
            processed.append(item.seq)

    await app.start()
    raw = app.topic(topic.get_topic_name(), key_serializer="raw", value_serializer="raw")
    await topic.send(key="a", value=Item(key="a", seq=0))
    await raw.send(key=b"a", value=b"\x00not json")
    await topic.send(key="a", value=Item(key="a", seq=2))
    await eventually(
        lambda: processed == [0, 2] and app.error_counts.dead_lettered == 1, timeout=WAIT
    )
    await app.stop()
    assert app.error_counts.decode_errors == 1

    dlq = f"{app.conf.id}-{topic.get_topic_name()}-dlq"
    consumer = AIOKafkaConsumer(
        dlq, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=int(WAIT * 1000), max_records=10)
        records = [record for batch in batches.values() for record in batch]
    finally:
        await consumer.stop()
    [record] = records
    assert (record.key, record.value) == (b"a", b"\x00not json")
    headers = dict(record.headers)
    assert headers["faust.error.type"] == b"faust.exceptions.ValueDecodeError"
    assert headers["faust.source.offset"] == b"1"

    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=app.conf.group_id)
    await consumer.start()
    try:
        committed = await consumer.committed(TopicPartition(topic.get_topic_name(), 0))
    finally:
        await consumer.stop()
    assert committed == 3
