"""Acked sends over ``AIOKafkaProducer``: each send returns a future of its metadata."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaProducer

from ...exceptions import ImproperlyConfigured
from ..base import ProducerDriver, RecordMetadata
from .clients import close_quietly

if TYPE_CHECKING:
    from .transport import KafkaTransport

__all__ = ["KafkaProducer"]


class KafkaProducer(ProducerDriver):
    """Sends records; each ``send`` returns a future resolved by the broker's ack."""

    def __init__(self, transport: KafkaTransport) -> None:
        self.transport = transport
        self._producer: AIOKafkaProducer | None = None
        self._start_lock = asyncio.Lock()
        self._existing: set[str] = set()

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
        if producer is not None:
            await producer.stop()

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        partition: int | None = None,
        timestamp: float | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> Awaitable[RecordMetadata]:
        producer = self._producer
        if producer is None:
            await self.start()
            producer = self._producer
            assert producer is not None
        if key is None and value is None:
            raise ValueError(
                f"Cannot send to topic {topic!r}: a Kafka record needs a key or a value."
            )
        if topic not in self._existing:
            # A send to a missing topic would create it with the broker's defaults.
            await self.transport.wait_for_topics({topic}, "Sending to")
            self._existing.add(topic)
        # Stamped here so the ack can report it (the broker echoes -1 for CreateTime),
        # in milliseconds as Kafka stores it, so consumers see the same value.
        timestamp_ms = round((time.time() if timestamp is None else timestamp) * 1000)
        ack = await producer.send(
            topic,
            value=value,
            key=key,
            partition=partition,
            timestamp_ms=timestamp_ms,
            headers=list(headers) if headers else None,
        )
        return _record_metadata(ack, timestamp_ms / 1000.0)

    async def flush(self) -> None:
        if self._producer is not None:
            await self._producer.flush()


def _record_metadata(ack: asyncio.Future[Any], timestamp: float) -> asyncio.Future[RecordMetadata]:
    """A future of faust RecordMetadata completed with aiokafka's ``ack``."""
    result: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()

    def _done(f: asyncio.Future[Any]) -> None:
        if result.done():
            return
        if f.cancelled():
            result.cancel()
            return
        exc = f.exception()
        if exc is not None:
            result.set_exception(exc)
            return
        meta = f.result()
        # timestamp_type 1 is LogAppendTime: the broker chose the timestamp.
        ts = meta.timestamp / 1000.0 if meta.timestamp_type == 1 else timestamp
        result.set_result(RecordMetadata(meta.topic, meta.partition, meta.offset, ts))

    ack.add_done_callback(_done)
    return result


def _make_producer(transport: KafkaTransport) -> AIOKafkaProducer:
    conf = transport.conf
    acks = conf.producer_acks
    try:
        return AIOKafkaProducer(
            **transport.client_options(),
            acks="all" if acks == -1 else acks,
            # With every in-sync replica acking, idempotence costs nothing more and
            # keeps a retried batch from being written twice or out of order.
            enable_idempotence=acks == -1,
            compression_type=conf.producer_compression_type,
            linger_ms=int(conf.producer_linger * 1000),
            max_batch_size=conf.producer_max_batch_size,
            max_request_size=conf.producer_max_request_size,
        )
    except RuntimeError as exc:  # aiokafka: "Compression library for lz4 not found"
        codec = conf.producer_compression_type
        raise ImproperlyConfigured(
            f"Setting producer_compression_type={codec!r}: {exc}. Install it "
            f"(pip install 'aiokafka[{codec}]') or choose another codec."
        ) from None
