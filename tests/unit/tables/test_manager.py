"""The table manager on the embedded broker: recovery per assignment, readiness, and
followers that survive errors."""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import pytest

import faust
from faust.transport.base import TP, Message
from faust.worker import Worker
from tests.conftest import eventually

_ids = itertools.count()


def _slow_reads(app: faust.App, delay: float) -> None:
    """Make every changelog read of ``app`` take ``delay`` seconds per batch (as a big
    table or a slow broker does); the data read is unchanged."""
    transport = app.transport
    read = transport.read_partition

    async def slow(tp: TP, start: int, end: int) -> AsyncIterator[list[Message]]:
        async for batch in read(tp, start, end):
            await asyncio.sleep(delay)
            yield batch

    transport.read_partition = slow  # type: ignore[method-assign]


def _counting_app(broker: str, app_id: str) -> tuple[faust.App, faust.Topic, faust.Table]:
    app = faust.App(app_id, broker=broker, topic_partitions=4, broker_commit_interval=0.05)
    topic = app.topic("events", key_type=str, value_type=int, partitions=4)
    counts = app.Table("counts", default=int, partitions=4)

    @app.agent(topic)
    async def count(stream):
        async for key, _ in stream.items():
            counts[key] += 1

    return app, topic, counts


async def _count_first(broker: str, app_id: str, events: int) -> Counter[str]:
    """Run one worker over ``events`` events until committed; returns the truth."""
    app, topic, counts = _counting_app(broker, app_id)
    await app.start()
    truth: Counter[str] = Counter()
    for i in range(events):
        key = f"k{i % 40}"
        truth[key] += 1
        await topic.send(key=key, value=i)
    await eventually(lambda: counts.as_dict() == truth)
    await app.stop()
    return truth


async def test_a_rebalance_during_recovery_supersedes_it_and_the_counts_stay_exact() -> None:
    broker = f"memory://manager-{uuid.uuid4().hex}"
    app_id = f"supersede-{next(_ids)}"
    truth = await _count_first(broker, app_id, 400)
    # Events waiting while the next worker restores its table.
    sender, topic, _ = _counting_app(broker, app_id)
    for i in range(400):
        key = f"k{i % 40}"
        truth[key] += 1
        await topic.send(key=key, value=i)

    first, _, counts = _counting_app(broker, app_id)
    _slow_reads(first, 0.3)  # ~1.2 s for the four partitions
    await first.start()
    await eventually(lambda: first.tables.recovering)
    # A second worker joins and leaves while the first one still restores: the first
    # loses two partitions, then gets them back, each time with a new assignment.
    second, _, _ = _counting_app(broker, app_id)
    _slow_reads(second, 0.3)
    await second.start()
    await eventually(lambda: len(counts.active_partitions) == 2)
    await second.stop()
    await eventually(lambda: len(counts.active_partitions) == 4)
    await eventually(lambda: counts.as_dict() == truth)
    assert not first.tables.recovering and first.ready
    await first.stop()


async def test_ready_only_once_the_tables_are_recovered(caplog: pytest.LogCaptureFixture) -> None:
    broker = f"memory://manager-{uuid.uuid4().hex}"
    app_id = f"ready-{next(_ids)}"
    truth = await _count_first(broker, app_id, 200)
    app, _, counts = _counting_app(broker, app_id)
    _slow_reads(app, 0.2)
    seen_at_ready: list[dict[str, int]] = []

    class AtReady(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage() == "Worker ready":
                seen_at_ready.append(counts.as_dict())

    worker = Worker(app, quiet=True)
    handler = AtReady()
    logging.getLogger("faust.worker").addHandler(handler)
    try:
        with caplog.at_level(logging.INFO, logger="faust.worker"):
            running = asyncio.ensure_future(worker.run())
            await eventually(lambda: app.started)
            assert not app.ready
            await asyncio.wait_for(app.wait_ready(), 10)
            assert app.ready and counts.as_dict() == truth
            await eventually(lambda: bool(seen_at_ready))
            worker.stop()
            await asyncio.wait_for(running, 10)
    finally:
        logging.getLogger("faust.worker").removeHandler(handler)
    # Logged after the recovery, not before: the table was complete at that moment.
    assert seen_at_ready == [dict(truth)]
    messages = [r.getMessage() for r in caplog.records]
    assert messages.index("Worker started; waiting for its partitions and table recovery") < (
        messages.index("Worker ready")
    )


async def test_ready_at_once_without_tables(app: faust.App) -> None:
    topic = app.topic("plain", partitions=1)

    @app.agent(topic)
    async def noop(stream):
        async for _ in stream:
            pass

    await app.start()
    await asyncio.wait_for(app.wait_ready(), 5)
    assert app.ready


async def test_a_global_table_follower_survives_an_error_and_catches_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = faust.App(f"follower-{next(_ids)}", topic_partitions=2)
    table = app.GlobalTable("settings", partitions=2)
    await app.start()
    try:
        transport = app.transport
        end_offset = transport.end_offset
        failures = [ConnectionError("broker went away")]

        async def failing_once(tp: TP) -> int:
            if failures:
                raise failures.pop()
            return await end_offset(tp)

        with caplog.at_level(logging.ERROR, logger="faust.services"):
            transport.end_offset = failing_once  # type: ignore[method-assign]
            await eventually(lambda: not failures)
            # Written by another worker while this one's follower was down.
            await table.changelog_topic.send(key="colour", value="blue", partition=1)
            await eventually(lambda: table.get("colour") == "blue")
        crashes = [r for r in caplog.records if "follower" in r.getMessage()]
        assert len(crashes) == 1 and "crashed" in crashes[0].getMessage()
        assert isinstance(crashes[0].exc_info[1], ConnectionError)  # type: ignore[index]
    finally:
        await app.stop()
