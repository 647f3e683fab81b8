"""Acked sends over ``AIOKafkaProducer``: each record is settled by its batch's ack.

``send_many`` (what every send goes through) skips aiokafka's per-record path: it picks
partitions itself (Kafka's murmur2, hashes cached), appends the records to one batch per
partition and submits each batch once, settling the records from the batch's ack. A
record then costs about what the batch encoder costs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaProducer

from ...exceptions import ImproperlyConfigured
from ..base import OutgoingRecord, ProducerDriver, RecordMetadata, run_callback
from ..partitioner import KeyPartitioner, RoundRobin
from .clients import close_quietly
from .transactions import Transactions, check_settings

if TYPE_CHECKING:
    from .transport import KafkaTransport

__all__ = ["KafkaProducer"]

logger = logging.getLogger(__name__)

# Bytes a record may take in a batch beyond its key, value and headers (varints, attributes).
_RECORD_OVERHEAD = 64
_NO_HEADERS: list[tuple[str, bytes]] = []


class KafkaProducer(ProducerDriver):
    """Sends records in per-partition batches; each is settled by its batch's ack."""

    def __init__(self, transport: KafkaTransport) -> None:
        self.transport = transport
        self._producer: AIOKafkaProducer | None = None
        self._start_lock = asyncio.Lock()
        self._existing: set[str] = set()
        self._keys = KeyPartitioner()
        self._round_robin = RoundRobin()
        #: Under processing_guarantee='exactly_once': the per-task transactional
        #: producers an event's records go through (see transactions.py).
        self.transactions: Transactions | None = None
        if transport.conf.processing_guarantee == "exactly_once":
            check_settings(transport.conf)
            self.transactions = Transactions(transport, _producer_options(transport))

    async def start(self) -> None:
        if self._producer is not None:
            return
        # Sends made while the start is in progress wait for it here.
        async with self._start_lock:
            if self._producer is not None:
                return
            transport = self.transport
            await transport.connect()
            producer = _make_producer(transport)
            try:
                await producer.start()
            except BaseException:
                await close_quietly(producer.stop())
                raise
            self._producer = producer

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if self.transactions is not None:
            await self.transactions.stop()
        if producer is not None:
            await producer.stop()

    async def send_many(self, records: Sequence[OutgoingRecord]) -> None:
        producer = self._producer
        if producer is None:
            await self.start()
            producer = self._producer
            assert producer is not None
        counts: dict[str, int] = {}
        for topic in {record.topic for record in records}:
            if topic not in self._existing:
                await self.transport.ensure_topic(topic)
                self._existing.add(topic)
            counts[topic] = len(await producer.partitions_for(topic))
        transactions = self.transactions
        if transactions is None:
            await self._send_batches(producer, records, counts, None)
            return
        # Exactly-once: each record through the producer of its event's task.
        by_task: dict[Any, list[OutgoingRecord]] = {}
        task_of = transactions.task_of
        for record in records:
            task = task_of(record)
            group = by_task.get(task)
            if group is None:
                group = by_task[task] = []
            group.append(record)
        for task, group in by_task.items():
            if task is None:
                await self._send_batches(producer, group, counts, None)
                continue
            task_producer = transactions.producers.get(task)
            if task_producer is None:
                error = RuntimeError(
                    f"Cannot send to topic {group[0].topic!r} for partition {task[1]} of "
                    f"the topics with {task[0]} partitions: this worker no longer owns it "
                    "(its events are processed again by the new owner)."
                )
                for record in group:
                    record.failed(error)
                continue
            await self._send_batches(task_producer, group, counts, task)

    async def _send_batches(
        self,
        producer: AIOKafkaProducer,
        records: Sequence[OutgoingRecord],
        counts: dict[str, int],
        task: Any,
    ) -> None:
        """Send ``records`` through ``producer``; ``task``: the transaction's task,
        which a failed record makes abort (None: not transactional)."""
        transactions = self.transactions if task is not None else None
        limit = self.transport.conf.producer_max_request_size - _RECORD_OVERHEAD
        now_ms = round(time.time() * 1000)
        open_batches: dict[tuple[str, int], _Batch] = {}
        full: list[_Batch] = []
        # Records as large as this need their exact size checked.
        large = limit // 2
        key_partition = self._keys.partition
        for record in records:
            topic, key, value, partition = record.topic, record.key, record.value, record.partition
            count = counts[topic]
            if partition is None:
                if key is not None:
                    partition = key_partition(key, count)
                else:
                    partition = self._round_robin.next(topic, count)
            if (
                (key is None and value is None)
                or not 0 <= partition < count
                or (value is not None and len(value) > large)
                or (key is not None and len(key) > large)
                or record.headers
            ):
                error = _invalid(record, partition, count, limit)
                if error is not None:
                    record.failed(error)
                    if transactions is not None:
                        transactions.fail(task, error)
                    continue
            timestamp = record.timestamp
            timestamp_ms = now_ms if timestamp is None else round(timestamp * 1000)
            batch = open_batches.get((topic, partition))
            if batch is None:
                batch = open_batches[topic, partition] = _Batch(producer, topic, partition)
            if not batch.append(record, timestamp_ms):
                full.append(batch)
                batch = open_batches[topic, partition] = _Batch(producer, topic, partition)
                batch.append(record, timestamp_ms)
        # Per partition, the batches that filled up came first.
        for batch in [*full, *open_batches.values()]:
            try:
                ack = await producer.send_batch(
                    batch.builder, batch.topic, partition=batch.partition
                )
            except Exception as exc:
                logger.error(
                    "Could not send %d record(s) to topic %r partition %d: %r",
                    len(batch.records),
                    batch.topic,
                    batch.partition,
                    exc,
                )
                for record in batch.records:
                    record.failed(exc)
                if transactions is not None:
                    transactions.fail(task, exc)
                continue
            if transactions is not None:
                batch.on_failure = partial(transactions.fail, task)
            ack.add_done_callback(batch.acked)

    async def flush(self) -> None:
        if self._producer is not None:
            await self._producer.flush()
        if self.transactions is not None:
            await self.transactions.flush()


class _Batch:
    """Records for one partition, encoded into one aiokafka batch, acked together."""

    __slots__ = ("builder", "topic", "partition", "records", "timestamps", "on_failure")

    def __init__(self, producer: AIOKafkaProducer, topic: str, partition: int) -> None:
        self.builder = producer.create_batch()
        self.topic = topic
        self.partition = partition
        self.records: list[OutgoingRecord] = []
        self.timestamps: list[int] = []
        #: Called with the error if the batch is not written (exactly-once aborts).
        self.on_failure: Any = None

    def append(self, record: OutgoingRecord, timestamp_ms: int) -> bool:
        """Add a record; False if the batch is full (an empty batch takes any record)."""
        headers = record.headers
        if (
            self.builder.append(
                timestamp=timestamp_ms,
                key=record.key,
                value=record.value,
                headers=list(headers) if headers else _NO_HEADERS,
            )
            is None
        ):
            return False
        self.records.append(record)
        self.timestamps.append(timestamp_ms)
        return True

    def acked(self, ack: asyncio.Future[Any]) -> None:
        records = self.records
        exc = asyncio.CancelledError() if ack.cancelled() else ack.exception()
        if exc is not None:
            logger.error(
                "Could not send %d record(s) to topic %r partition %d: %r",
                len(records),
                self.topic,
                self.partition,
                exc,
            )
            for record in records:
                record.failed(exc)
            if self.on_failure is not None:
                self.on_failure(exc)
            return
        meta = ack.result()
        topic, partition, offset = self.topic, self.partition, meta.offset
        # timestamp_type 1 is LogAppendTime: the broker chose the timestamp.
        appended = meta.timestamp / 1000.0 if meta.timestamp_type == 1 else None
        counts = records[0].counts if records else None
        if counts is not None:
            counts.acked(topic, len(records))
        for record, timestamp_ms in zip(records, self.timestamps, strict=True):
            ts = timestamp_ms / 1000.0 if appended is None else appended
            # record.acked() inlined: this runs once per record sent.
            future = record.future
            if not future.done():
                future.set_result(RecordMetadata(topic, partition, offset, ts))
            holder = record.holder
            if holder is not None:
                holder.decref()
            callback = record.callback
            if callback is not None:
                record.callback = None
                run_callback(callback, future, topic)
            offset += 1


def _invalid(record: OutgoingRecord, partition: int, count: int, limit: int) -> Exception | None:
    """Why ``record`` cannot be sent to ``partition`` of its topic, if it cannot."""
    topic, key, value, headers = record.topic, record.key, record.value, record.headers
    if key is None and value is None:
        return ValueError(f"Cannot send to topic {topic!r}: a Kafka record needs a key or a value.")
    if not 0 <= partition < count:
        return ValueError(
            f"Cannot send to topic {topic!r} partition {partition}: the topic has {count} "
            f"partition(s), numbered 0 to {count - 1}."
        )
    size = len(key or b"") + len(value or b"")
    if headers:
        size += sum(len(name) + len(data) for name, data in headers)
    if size > limit:
        return ValueError(
            f"Cannot send a record of {size:,} bytes to topic {topic!r}: larger than the "
            f"setting producer_max_request_size allows ({limit + _RECORD_OVERHEAD:,}). "
            "Raise the setting (and the broker's message.max.bytes) or send smaller records."
        )
    return None


def _producer_options(transport: KafkaTransport) -> dict[str, Any]:
    conf = transport.conf
    acks = conf.producer_acks
    options = transport.client_options()
    if conf.producer_request_timeout is not None:
        options["request_timeout_ms"] = int(conf.producer_request_timeout * 1000)
    options.update(
        acks="all" if acks == -1 else acks,
        # With every in-sync replica acking, idempotence costs nothing more and
        # keeps a retried batch from being written twice or out of order.
        enable_idempotence=acks == -1,
        compression_type=conf.producer_compression_type,
        linger_ms=int(conf.producer_linger * 1000),
        max_batch_size=conf.producer_max_batch_size,
        max_request_size=conf.producer_max_request_size,
    )
    return options


def _make_producer(transport: KafkaTransport) -> AIOKafkaProducer:
    conf = transport.conf
    try:
        return AIOKafkaProducer(**_producer_options(transport))
    except RuntimeError as exc:  # aiokafka: "Compression library for lz4 not found"
        codec = conf.producer_compression_type
        raise ImproperlyConfigured(
            f"Setting producer_compression_type={codec!r}: {exc}. Install it "
            f"(pip install 'aiokafka[{codec}]') or choose another codec."
        ) from None
