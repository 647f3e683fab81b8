"""The app's producer: serialized records in, broker acks out.

``send`` awaits the broker's acknowledgement; ``send_soon`` returns a future at once. For
brokers whose driver can append synchronously (the embedded broker) both complete at
once; otherwise ``send_soon`` records go through a buffer that one task drains in order,
handing the driver everything buffered since its last turn (Kafka appends them to
per-partition batches), so records sent from one agent keep their order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from .base import Message, OutgoingRecord, ProducerDriver, RecordMetadata, SendCallback

__all__ = ["Producer"]

logger = logging.getLogger(__name__)

#: Records the drainer hands the driver at a time: enough to fill 256 KiB batches for a
#: few partitions at once, while ``buffered`` keeps telling how far behind the broker the
#: app is.
DRAIN_CHUNK = 5_000
#: Buffered records at which the consumer stops fetching (see ``backlogged``): a record
#: waiting here holds ~0.5 KB (its bytes, OutgoingRecord and future), so ~10 MB; and it is
#: 0.1-0.2 s of sending at the rates measured in bench e, so the drain never runs dry
#: while the agents catch up.
BUFFER_HIGH = 20_000


class SendCounts:
    """Records sent per topic: handed to the producer, and acked by the broker.

    Counted inline (a dict update per record handed over, and per ack batch; on the
    embedded broker, which acks each record on its own, per record) and read by the
    Monitor when asked; sensors overriding ``on_records_sending``/``on_records_acked``
    are called too, and those overriding Faust's ``on_send_initiated``/
    ``on_send_completed``/``on_send_error`` once per record (see :meth:`sense`). A
    failure reaches every sensor's ``on_records_failed``.
    """

    __slots__ = (
        "initiated",
        "completed",
        "sensors",
        "send_sensors",
        "_initiated_sensors",
        "_completed_sensors",
    )

    def __init__(self, sensors: Any = None) -> None:
        self.initiated: dict[str, int] = {}
        self.completed: dict[str, int] = {}
        self.sensors = sensors
        # The delegate's own lists, kept up to date by it: usually empty.
        self._initiated_sensors: list[Any] = (
            sensors.wants("on_records_sending") if sensors is not None else []
        )
        self._completed_sensors: list[Any] = (
            sensors.wants("on_records_acked") if sensors is not None else []
        )
        #: Sensors overriding Faust's per-record send hooks (a live list).
        self.send_sensors: list[Any] = sensors.send_sensors if sensors is not None else []

    def handed_over(self, topic: str) -> None:
        initiated = self.initiated
        initiated[topic] = initiated.get(topic, 0) + 1
        if self._initiated_sensors:
            self.sensors.call(self._initiated_sensors, "on_records_sending", topic, 1)

    def sense(self, producer: Any, record: OutgoingRecord) -> None:
        """Faust's ``on_send_initiated`` for ``record`` now, and ``on_send_completed``
        or ``on_send_error`` when its future is done (only while a sensor overrides
        one of them)."""
        sensors = self.sensors
        state = sensors.on_send_initiated(
            producer, record.topic, record, len(record.key or b""), len(record.value or b"")
        )

        def done(fut: asyncio.Future[RecordMetadata]) -> None:
            if fut.cancelled():
                sensors.on_send_error(producer, asyncio.CancelledError(), state)
            elif fut.exception() is not None:
                sensors.on_send_error(producer, fut.exception(), state)
            else:
                sensors.on_send_completed(producer, state, fut.result())

        record.future.add_done_callback(done)

    def acked(self, topic: str, count: int) -> None:
        completed = self.completed
        completed[topic] = completed.get(topic, 0) + count
        if self._completed_sensors:
            self.sensors.call(self._completed_sensors, "on_records_acked", topic, count)

    def failed(self, topic: str, count: int, exc: BaseException) -> None:
        if self.sensors is not None:
            self.sensors.on_records_failed(topic, count, exc)


class Producer:
    """``sensors``, the app's ``SensorDelegate``: what is sent is counted per topic in
    :attr:`counts` (see :class:`SendCounts`)."""

    def __init__(self, driver: ProducerDriver, sensors: Any = None) -> None:
        self.driver = driver
        #: Records handed over and acked, per topic.
        self.counts = SendCounts(sensors)
        self._send_now = getattr(driver, "send_now", None)
        self._buffer: list[OutgoingRecord] = []
        self._drainer: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.started = False
        self.sent = 0

    @property
    def buffered(self) -> int:
        """Records handed to ``send_soon`` and not yet passed to the driver."""
        return len(self._buffer)

    @property
    def backlogged(self) -> bool:
        """More is buffered than the broker takes in a moment: stop adding work."""
        return len(self._buffer) >= BUFFER_HIGH

    async def start(self) -> None:
        if self.started:
            return
        await self.driver.start()
        self.started = True

    async def stop(self) -> None:
        if not self.started:
            return
        try:
            await self.flush()
        finally:
            # Stopped even if the flush failed: an unstopped client keeps its connections.
            if self._drainer is not None:
                self._drainer.cancel()
                self._drainer = None
            self.started = False
            self._loop = None
            await self.driver.stop()

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        partition: int | None = None,
        timestamp: float | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
        holder: Message | None = None,
        callback: SendCallback | None = None,
    ) -> asyncio.Future[RecordMetadata]:
        """Hand a record to the driver; the future returned resolves on its ack.

        ``holder`` and ``callback`` are as in :meth:`send_soon`.
        """
        if (
            self._send_now is not None
            or self._buffer
            or (self._drainer is not None and not self._drainer.done())
        ):
            # The embedded broker stores it at once; otherwise this keeps the order with
            # records that send_soon buffered before it.
            return self.send_soon(
                topic,
                key,
                value,
                partition=partition,
                timestamp=timestamp,
                headers=headers,
                holder=holder,
                callback=callback,
            )
        self.sent += 1
        self.counts.handed_over(topic)
        fut: asyncio.Future[RecordMetadata] = self._get_loop().create_future()
        if holder is not None:
            holder.refcount += 1
        record = OutgoingRecord(
            topic, key, value, partition, timestamp, headers, fut, holder, callback, self.counts
        )
        if self.counts.send_sensors:
            self.counts.sense(self, record)
        try:
            await self.driver.send_many((record,))
        except BaseException as exc:
            # Settled even when cancelled: its future and callback must not wait forever.
            record.failed(exc)
            if not isinstance(exc, Exception):
                raise
        return fut

    def send_soon(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        partition: int | None = None,
        timestamp: float | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
        holder: Message | None = None,
        callback: SendCallback | None = None,
    ) -> asyncio.Future[RecordMetadata]:
        """Buffer a record; the future resolves on its ack (or fails with its error).

        ``holder``, the message of the event this record is sent for, does not count as
        processed (its offset is not committed) until the record is acked. ``callback``
        is called once with the future when it is done (see :class:`OutgoingRecord`).
        """
        self.sent += 1
        # Counted here, per record, for exact per-topic figures: ~0.1 µs next to the
        # ~3 µs a record costs on its way to the broker.
        self.counts.handed_over(topic)
        loop = self._loop
        if loop is None or loop.is_closed():
            loop = self._get_loop()
        fut: asyncio.Future[RecordMetadata] = loop.create_future()
        if holder is not None:
            holder.refcount += 1
        record = OutgoingRecord(
            topic, key, value, partition, timestamp, headers, fut, holder, callback, self.counts
        )
        if self.counts.send_sensors:
            self.counts.sense(self, record)
        if self._send_now is not None:
            self._send_now(record)
            return fut
        self._buffer.append(record)
        # One drainer at a time keeps buffered records in order.
        drainer = self._drainer
        if drainer is None or drainer.done():
            self._drainer = loop.create_task(self._drain())
        return fut

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        # Looked up once: asyncio.get_running_loop() costs a system call (getpid).
        loop = self._loop
        if loop is None or loop.is_closed():
            loop = self._loop = asyncio.get_running_loop()
        return loop

    async def _drain(self) -> None:
        while self._buffer:
            buffer = self._buffer
            if len(buffer) <= DRAIN_CHUNK:
                records, self._buffer = buffer, []
            else:
                records = buffer[:DRAIN_CHUNK]
                del buffer[:DRAIN_CHUNK]
            try:
                await self.driver.send_many(records)
            except Exception as exc:
                logger.error(
                    "Could not send %d record(s) (first to topic %r): %r",
                    len(records),
                    records[0].topic,
                    exc,
                )
                for record in records:
                    record.failed(exc)

    def fail_buffered(self, exc: BaseException) -> int:
        """Fail every record not yet handed to the driver with ``exc``; how many."""
        records, self._buffer = self._buffer, []
        for record in records:
            record.failed(exc)
        return len(records)

    async def flush(self) -> None:
        """Wait until every buffered record is handed to the driver and acked."""
        if self._drainer is not None and not self._drainer.done():
            await asyncio.shield(self._drainer)
        await self.driver.flush()
