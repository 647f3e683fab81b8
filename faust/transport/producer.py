"""The app's producer: serialized records in, broker acks out.

``send`` awaits the broker's acknowledgement; ``send_soon`` returns a future at once. For
brokers whose driver can append synchronously (the embedded broker) both complete at
once; otherwise ``send_soon`` records go through a buffer that one task drains in order,
so records sent from one agent keep their order.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Sequence

from .base import ProducerDriver, RecordMetadata, completed

__all__ = ["Producer", "SendPressure"]

# Records waiting in send_soon's buffer before streams stop handing out events, and the
# level at which they go on. Bounded so a fast agent sending to a slow broker (or a big
# table flush) cannot queue without limit; the gap between them avoids flapping.
BUFFER_HIGH = 10_000
BUFFER_LOW = 5_000


class SendPressure:
    """Set while the producer's buffer is over its high mark; streams wait on it."""

    __slots__ = ("high", "_resume")

    def __init__(self) -> None:
        self.high = False
        self._resume: asyncio.Event | None = None

    def raise_(self) -> None:
        if not self.high:
            self.high = True
            if self._resume is not None:
                self._resume.clear()

    def release(self) -> None:
        if self.high:
            self.high = False
            if self._resume is not None:
                self._resume.set()

    async def wait(self) -> None:
        if self._resume is None:
            self._resume = asyncio.Event()
        if self.high:
            self._resume.clear()
            await self._resume.wait()


logger = logging.getLogger(__name__)

_Pending = tuple[
    str,
    bytes | None,
    bytes | None,
    int | None,
    float | None,
    Sequence[tuple[str, bytes]] | None,
    "asyncio.Future[RecordMetadata]",
]


class Producer:
    def __init__(self, driver: ProducerDriver, pressure: SendPressure | None = None) -> None:
        self.driver = driver
        self.pressure = pressure or SendPressure()
        self._send_now = getattr(driver, "send_now", None)
        self._buffer: deque[_Pending] = deque()
        self._drainer: asyncio.Task[None] | None = None
        self.started = False
        self.sent = 0

    async def start(self) -> None:
        if self.started:
            return
        await self.driver.start()
        self.started = True

    async def stop(self) -> None:
        if not self.started:
            return
        await self.flush()
        if self._drainer is not None:
            self._drainer.cancel()
            self._drainer = None
        await self.driver.stop()
        self.started = False

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
        self.sent += 1
        if self._send_now is not None:
            return completed(self._send_now(topic, key, value, partition, timestamp, headers))
        if self._buffer:
            # Keep order with records buffered by send_soon before this one.
            return self.send_soon(
                topic, key, value, partition=partition, timestamp=timestamp, headers=headers
            )
        return await self.driver.send(
            topic, key, value, partition=partition, timestamp=timestamp, headers=headers
        )

    def send_soon(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        partition: int | None = None,
        timestamp: float | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[RecordMetadata]:
        self.sent += 1
        if self._send_now is not None:
            return completed(self._send_now(topic, key, value, partition, timestamp, headers))
        fut: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()
        buffer = self._buffer
        buffer.append((topic, key, value, partition, timestamp, headers, fut))
        if len(buffer) >= BUFFER_HIGH:
            self.pressure.raise_()
        # One drainer at a time keeps buffered records in order.
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.get_running_loop().create_task(self._drain())
        return fut

    async def _drain(self) -> None:
        buffer = self._buffer
        pressure = self.pressure
        while buffer:
            topic, key, value, partition, timestamp, headers, fut = buffer.popleft()
            if pressure.high and len(buffer) <= BUFFER_LOW:
                pressure.release()
            try:
                ack = await self.driver.send(
                    topic, key, value, partition=partition, timestamp=timestamp, headers=headers
                )
            except Exception as exc:
                logger.error("Could not send to topic %r: %r", topic, exc)
                if not fut.done():
                    fut.set_exception(exc)
                continue
            _chain(ack, fut)

    async def flush(self) -> None:
        """Wait until every buffered record is handed to the driver and acked."""
        if self._drainer is not None and not self._drainer.done():
            await asyncio.shield(self._drainer)
        await self.driver.flush()


def _chain(source: Awaitable[RecordMetadata], target: asyncio.Future[RecordMetadata]) -> None:
    inner = asyncio.ensure_future(source)

    def _copy(f: asyncio.Future[RecordMetadata]) -> None:
        if target.done():
            return
        if f.cancelled():
            target.cancel()
        elif f.exception() is not None:
            target.set_exception(f.exception())  # type: ignore[arg-type]
        else:
            target.set_result(f.result())

    inner.add_done_callback(_copy)
