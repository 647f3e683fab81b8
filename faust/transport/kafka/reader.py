"""Reading partitions outside the consumer group: table recovery, standbys, global tables.

Each read uses an ``AIOKafkaConsumer`` without a group, assigned the one partition it
reads. A finished read leaves its consumer paused in a small pool, so a global table
that follows its changelog every fraction of a second reuses one per partition instead
of connecting again each time.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from ..base import TP, Message
from .clients import close_quietly
from .consumer import isolation_level
from .fetching import adopt, supports, to_messages

if TYPE_CHECKING:
    from .transport import KafkaTransport

__all__ = ["PartitionReader"]

# Records per batch handed to the table: as large as the memory broker's recovery batch;
# one fetch brings up to consumer_max_fetch_size bytes per partition anyway.
READ_BATCH = 10_000
# How long one fetch waits for records before the reader yields an empty batch (the
# caller reports a stalled recovery from those).
READ_WAIT_MS = 1000
# Idle readers kept for reuse; each holds connections to the brokers, so not one per
# partition of a big app (recovery reads them one after another anyway).
KEEP_IDLE = 8


class PartitionReader:
    def __init__(self, transport: KafkaTransport) -> None:
        self.transport = transport
        self._offsets: AIOKafkaConsumer | None = None
        self._offsets_lock = asyncio.Lock()
        self._idle: OrderedDict[TP, AIOKafkaConsumer] = OrderedDict()

    async def end_offset(self, tp: TP) -> int:
        """One past the last offset of ``tp`` (its high watermark)."""
        if self._offsets is None:
            async with self._offsets_lock:
                if self._offsets is None:
                    self._offsets = await self._new_consumer()
        partition = TopicPartition(tp.topic, tp.partition)
        offsets = await self._offsets.end_offsets([partition])
        return int(offsets[partition])

    async def read(self, tp: TP, start: int, end: int) -> AsyncIterator[list[Message]]:
        """Batches of ``tp`` from ``start`` up to ``end`` (exclusive), in offset order.

        Offsets may have gaps (compaction, transaction markers): the read ends when the
        position reaches ``end``, not after ``end - start`` records. A batch is empty
        when nothing arrived within a second.
        """
        if end <= start:
            return
        partition = TopicPartition(tp.topic, tp.partition)
        consumer = self._idle.pop(tp, None)
        if consumer is None:
            consumer = await self._new_consumer()
            consumer.assign([partition])
        else:
            consumer.resume(partition)
        finished = False
        try:
            consumer.seek(partition, start)
            direct = supports(consumer)
            while True:
                messages = await _fetch(consumer, partition, direct)
                if messages and messages[-1].offset >= end:
                    messages = [m for m in messages if m.offset < end]
                yield messages
                if await consumer.position(partition) >= end:
                    break
            finished = True
        finally:
            if finished:
                consumer.pause(partition)
                await self._keep(tp, consumer)
            else:
                # Abandoned midway (or failed): its position and buffer are unknown.
                await close_quietly(consumer.stop())

    async def follow(self, tp: TP, start: int) -> AsyncIterator[list[Message]]:
        """Batches of ``tp`` from ``start`` on, forever (long polls; empty batches while
        nothing arrives). Used for this worker's own reply topic."""
        partition = TopicPartition(tp.topic, tp.partition)
        consumer = await self._new_consumer()
        try:
            consumer.assign([partition])
            consumer.seek(partition, start)
            direct = supports(consumer)
            while True:
                yield await _fetch(consumer, partition, direct)
        finally:
            await close_quietly(consumer.stop())

    async def _keep(self, tp: TP, consumer: AIOKafkaConsumer) -> None:
        if tp in self._idle:  # two reads of one partition at once: keep one reader
            await close_quietly(consumer.stop())
            return
        self._idle[tp] = consumer
        while len(self._idle) > KEEP_IDLE:
            _, oldest = self._idle.popitem(last=False)
            await close_quietly(oldest.stop())

    async def _new_consumer(self) -> AIOKafkaConsumer:
        transport = self.transport
        await transport.connect()
        consumer = AIOKafkaConsumer(
            **transport.client_options(),
            group_id=None,
            enable_auto_commit=False,
            # Records below start may be gone (retention): begin at the oldest kept.
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=transport.conf.consumer_max_fetch_size,
            # Exactly-once: changelogs and standbys see committed transactions only, and
            # end_offset is the last stable offset (a read up to it never waits on an
            # open transaction).
            isolation_level=isolation_level(transport.conf),
        )
        try:
            await consumer.start()
        except BaseException:
            await close_quietly(consumer.stop())
            raise
        return consumer

    async def close(self) -> None:
        consumers = list(self._idle.values())
        self._idle.clear()
        if self._offsets is not None:
            consumers.append(self._offsets)
            self._offsets = None
        for consumer in consumers:
            await close_quietly(consumer.stop())


async def _fetch(
    consumer: AIOKafkaConsumer, partition: TopicPartition, direct: bool
) -> list[Message]:
    """The next batch of ``partition`` (empty after READ_WAIT_MS without records)."""
    if direct:
        adopt(consumer)
    batches = await consumer.getmany(partition, timeout_ms=READ_WAIT_MS, max_records=READ_BATCH)
    return to_messages(partition.topic, partition.partition, batches.get(partition, []))
