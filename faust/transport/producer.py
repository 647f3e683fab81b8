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

__all__ = ["Producer"]

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
    def __init__(self, driver: ProducerDriver) -> None:
        self.driver = driver
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
        self._buffer.append((topic, key, value, partition, timestamp, headers, fut))
        # One drainer at a time keeps buffered records in order.
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.get_running_loop().create_task(self._drain())
        return fut

    async def _drain(self) -> None:
        buffer = self._buffer
        while buffer:
            topic, key, value, partition, timestamp, headers, fut = buffer.popleft()
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
