"""The producer's buffer is bounded: streams wait while it is full."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence

import pytest

import faust
from faust.transport import producer as producer_module
from faust.transport.base import ProducerDriver, RecordMetadata, completed
from faust.transport.producer import Producer, SendPressure


class SlowDriver(ProducerDriver):
    """Acks a record only when the test lets it through."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.sent: list[bytes | None] = []

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def flush(self) -> None:
        pass

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
        await self.gate.wait()
        self.sent.append(value)
        return completed(RecordMetadata(topic, 0, len(self.sent) - 1, 0.0))


async def test_send_soon_raises_pressure_when_the_buffer_is_full(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(producer_module, "BUFFER_HIGH", 4)
    monkeypatch.setattr(producer_module, "BUFFER_LOW", 2)
    driver = SlowDriver()
    pressure = SendPressure()
    producer = Producer(driver, pressure)
    futures = [producer.send_soon("t", None, str(i).encode()) for i in range(5)]
    assert pressure.high
    waiter = asyncio.ensure_future(pressure.wait())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    driver.gate.set()
    await asyncio.wait_for(waiter, 1.0)
    assert not pressure.high
    metas = await asyncio.gather(*futures)
    assert [m.offset for m in metas] == [0, 1, 2, 3, 4]
    assert driver.sent == [b"0", b"1", b"2", b"3", b"4"]  # in order


async def test_a_stream_waits_while_sends_pile_up(app: faust.App) -> None:
    topic = app.topic("in", value_type=int, partitions=1)
    seen: list[int] = []

    @app.agent(topic)
    async def reader(stream):
        async for value in stream:
            seen.append(value)

    await app.start()
    app.send_pressure.raise_()
    await topic.send(value=1)
    await asyncio.sleep(0.05)
    assert seen == []  # held back while the producer is congested
    app.send_pressure.release()
    for _ in range(100):
        if seen:
            break
        await asyncio.sleep(0.01)
    assert seen == [1]
