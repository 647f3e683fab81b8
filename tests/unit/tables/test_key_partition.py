"""A table written from a stream not partitioned by the table's key says so, once."""

from __future__ import annotations

import logging

import pytest

import faust
from faust.tables.base import KEY_CHECKS
from tests.conftest import eventually

PAGES = ["home", "cart", "about", "faq", "blog"]


class View(faust.Record):
    page: str


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "not partitioned by the table's key" in r.getMessage()
    ]


async def _send_views(topic: faust.Topic, rounds: int = 4) -> int:
    # Unkeyed events spread over every partition, as a round-robin producer writes them.
    sent = 0
    for i in range(rounds):
        for j, page in enumerate(PAGES):
            await topic.send(value=View(page=page), partition=(i + j) % 4)
            sent += 1
    return sent


async def test_counting_without_group_by_warns_once_naming_the_fix(
    app: faust.App, caplog: pytest.LogCaptureFixture
) -> None:
    views = app.topic("views", value_type=View, partitions=4)
    counts = app.Table("view-counts", default=int, partitions=4)
    seen: list[str] = []

    @app.agent(views)
    async def count(stream):
        async for view in stream:
            counts[view.page] += 1
            seen.append(view.page)

    await app.start()
    sent = await _send_views(views)
    await eventually(lambda: len(seen) == sent)
    [warning] = _warnings(caplog)
    assert "Table 'view-counts'" in warning and "topic 'views' partition" in warning
    assert "stream.group_by(" in warning
    assert counts._key_checks_left == 0  # found: later writes are not checked


async def test_windowed_count_without_group_by_warns_once(
    app: faust.App, caplog: pytest.LogCaptureFixture
) -> None:
    views = app.topic("views", value_type=View, partitions=4)
    per_minute = app.Table("per-minute", default=int, partitions=4).tumbling(60, expires=3600)
    seen: list[str] = []

    @app.agent(views)
    async def count(stream):
        async for view in stream:
            per_minute[view.page] += 1
            seen.append(view.page)

    await app.start()
    sent = await _send_views(views)
    await eventually(lambda: len(seen) == sent)
    [warning] = _warnings(caplog)
    assert "Table 'per-minute'" in warning and "group_by(" in warning


async def test_counting_through_group_by_does_not_warn(
    app: faust.App, caplog: pytest.LogCaptureFixture
) -> None:
    views = app.topic("views", value_type=View, partitions=4)
    counts = app.Table("view-counts", default=int, partitions=4)
    per_minute = app.Table("per-minute", default=int, partitions=4).tumbling(60, expires=3600)

    @app.agent(views)
    async def count(stream):
        async for view in stream.group_by(View.page):
            counts[view.page] += 1
            per_minute[view.page] += 1

    await app.start()
    sent = await _send_views(views, rounds=KEY_CHECKS // len(PAGES) + 2)
    await eventually(lambda: sum(counts.values()) == sent)
    assert counts["home"] == sent // len(PAGES)
    assert _warnings(caplog) == []
    assert counts._key_checks_left == 0  # every write checked was fine: no more checks


@pytest.mark.parametrize("key_serializer", ["json", "raw"])
async def test_a_source_keyed_by_the_table_key_does_not_warn(
    app: faust.App, caplog: pytest.LogCaptureFixture, key_serializer: str
) -> None:
    views = app.topic(
        "views", key_type=str, value_type=View, key_serializer=key_serializer, partitions=4
    )
    counts = app.Table("view-counts", default=int, partitions=4)

    @app.agent(views)
    async def count(stream):
        async for view in stream:
            counts[view.page] += 1

    await app.start()
    for page in PAGES * 4:
        await views.send(key=page, value=View(page=page))
    await eventually(lambda: sum(counts.values()) == 4 * len(PAGES))
    assert _warnings(caplog) == []


async def test_a_key_made_from_the_event_key_does_not_warn(
    app: faust.App, caplog: pytest.LogCaptureFixture
) -> None:
    views = app.topic("views", key_type=str, value_type=View, partitions=4)
    per_day = app.Table("per-page-and-day", default=int, partitions=4)

    @app.agent(views)
    async def count(stream):
        async for page, _view in stream.items():
            per_day[(page, "2024-05-01")] += 1

    await app.start()
    for page in PAGES * 4:
        await views.send(key=page, value=View(page=page))
    await eventually(lambda: sum(per_day.values()) == 4 * len(PAGES))
    assert _warnings(caplog) == []


async def test_a_raw_keyed_source_read_as_text_does_not_warn(
    app: faust.App, caplog: pytest.LogCaptureFixture
) -> None:
    # Keys as another client writes them: bytes, hashed as they are.
    views = app.topic("views", key_serializer="raw", value_type=View, partitions=4)
    counts = app.Table("view-counts", default=int, partitions=4)

    @app.agent(views)
    async def count(stream):
        async for event in stream.events():
            counts[event.key.decode()] += 1

    await app.start()
    for page in PAGES * 4:
        await views.send(key=page.encode(), value=View(page=page))
    await eventually(lambda: sum(counts.values()) == 4 * len(PAGES))
    assert _warnings(caplog) == []


async def test_global_tables_and_tables_using_the_partitioner_are_not_checked(
    app: faust.App, caplog: pytest.LogCaptureFixture
) -> None:
    views = app.topic("views", value_type=View, partitions=4)
    everywhere = app.GlobalTable("everywhere", default=int, partitions=4)
    by_key = app.Table("by-key", default=int, partitions=4, use_partitioner=True)
    seen: list[str] = []

    @app.agent(views)
    async def count(stream):
        async for view in stream:
            everywhere[view.page] += 1
            by_key[view.page] += 1
            seen.append(view.page)

    @app.timer(interval=0.01)
    async def tick() -> None:
        by_key["ticks"] += 1  # outside any event

    await app.start()
    sent = await _send_views(views)
    await eventually(lambda: len(seen) == sent and by_key["ticks"] > 0)
    assert _warnings(caplog) == []
