"""The Kafka that scripts/kafka starts is real and usable: admin, produce, consume, groups."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from subprocess import CompletedProcess

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

Runner = Callable[..., CompletedProcess[str]]

PARTITIONS = 4
MESSAGES = 100
KEYS = 10


def test_status_exits_zero_while_up(
    kafka_bootstrap: str, kafka_script: Runner, kafka_is_external: bool
) -> None:
    if kafka_is_external:
        # Not started by the script: its `check` command probes any cluster.
        result = kafka_script("check", kafka_bootstrap)
    else:
        result = kafka_script("status")
        assert kafka_bootstrap in result.stdout
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_fails_for_a_closed_port(kafka_script: Runner) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = kafka_script("check", f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert f"127.0.0.1:{port}" in result.stderr


async def test_produce_and_consume_keyed_messages_in_order(kafka_bootstrap: str) -> None:
    topic = f"faust-it-{uuid.uuid4().hex[:12]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
        replication = min(3, len(cluster["brokers"]))
        await admin.create_topics([NewTopic(topic, PARTITIONS, replication)])

        # Produce 100 keyed messages; remember where each landed.
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await producer.start()
        try:
            futures = [
                await producer.send(topic, key=f"key-{i % KEYS}".encode(), value=str(i).encode())
                for i in range(MESSAGES)
            ]
            metas = await asyncio.gather(*futures)
        finally:
            await producer.stop()
        produced: dict[int, list[int]] = defaultdict(list)
        partition_of_key: dict[str, int] = {}
        for i, meta in enumerate(metas):
            key = f"key-{i % KEYS}"
            assert partition_of_key.setdefault(key, meta.partition) == meta.partition
            produced[meta.partition].append(i)
        for partition in produced:
            offsets = [m.offset for m in metas if m.partition == partition]
            assert offsets == sorted(offsets), f"partition {partition} acked out of order"
        assert set(produced) <= set(range(PARTITIONS))
        assert len(produced) > 1, "10 keys should spread over more than one partition"

        # Consume them all back in a consumer group.
        group = f"{topic}-group"
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            consumed: dict[int, list[int]] = defaultdict(list)
            consumed_offsets: dict[int, list[int]] = defaultdict(list)
            total = 0
            deadline = time.monotonic() + 60
            while total < MESSAGES and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=1000)
                for tp, records in batches.items():
                    for record in records:
                        assert record.key is not None and record.value is not None
                        assert partition_of_key[record.key.decode()] == tp.partition
                        consumed[tp.partition].append(int(record.value))
                        consumed_offsets[tp.partition].append(record.offset)
                        total += 1
            assert total == MESSAGES
            assert dict(consumed) == dict(produced)  # per-partition order is the send order
            for offsets in consumed_offsets.values():
                assert offsets == list(range(offsets[0], offsets[0] + len(offsets)))

            # Commits reach the group coordinator (the offsets topic works).
            await consumer.commit()
            for partition, values in produced.items():
                tp = TopicPartition(topic, partition)
                assert await consumer.committed(tp) == consumed_offsets[partition][-1] + 1
                assert len(values) == consumed_offsets[partition][-1] + 1
        finally:
            await consumer.stop()
    finally:
        try:
            await admin.delete_topics([topic])
        finally:
            await admin.close()
