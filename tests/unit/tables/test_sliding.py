"""Sliding windows with Faust's semantics, against a plain model of them.

Faust defines the sliding window of an event at ``t`` as the events of its key with
``t - before <= ts <= t + after``. The model keeps every event and sums the matching
ones; the table must read the same in the agent, for every event, whatever the order
of the timestamps.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import faust

_ids = itertools.count()
BASE = 1_700_000_000.0

EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["a", "b"]),  # key
        st.integers(0, 40),  # timestamp offset (seconds)
        st.integers(-5, 5),  # value
    ),
    min_size=1,
    max_size=25,
)


def _model(events: list[tuple[str, int, int]], before: int, after: int) -> list[tuple[int, int]]:
    """(sum of the event's window, count in it) as read after each event."""
    reads = []
    for i, (key, ts, _) in enumerate(events):
        seen = [e for e in events[: i + 1] if e[0] == key and ts - before <= e[1] <= ts + after]
        reads.append((sum(e[2] for e in seen), len(seen)))
    return reads


async def _run(events: list[tuple[str, int, int]], before: int, after: int) -> list[Any]:
    app = faust.App(f"sliding-{next(_ids)}", broker=f"memory://{uuid.uuid4().hex}")
    topic = app.topic("values", key_type=str, value_type=int, partitions=1)
    # expires covers every timestamp drawn: no event is late, no range closes.
    totals = app.Table("totals", default=int, partitions=1).sliding(before, after, expires=100)
    counts = app.Table("counts", default=int, partitions=1).sliding(before, after, expires=100)
    reads: list[Any] = []

    @app.agent(topic)
    async def add(stream):
        async for key, value in stream.items():
            totals[key] += value
            counts[key] += 1
            reads.append((totals[key].current(), counts[key].current()))

    await app.start()
    try:
        for key, ts, value in events:
            await topic.send(key=key, value=value, timestamp=BASE + ts)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while len(reads) < len(events) and loop.time() < deadline:
            await asyncio.sleep(0.005)
    finally:
        await app.stop()
    return reads


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=EVENTS, before=st.integers(0, 10), after=st.integers(1, 10))
def test_sliding_windows_hold_the_events_around_each_event(
    events: list[tuple[str, int, int]], before: int, after: int
) -> None:
    assert asyncio.run(_run(events, before, after)) == _model(events, before, after)


async def test_sliding_window_reads_the_range_around_the_event(app: faust.App) -> None:
    """The example of the docs: a 10 s window either side of each click."""
    topic = app.topic("clicks", key_type=str, value_type=int, partitions=1)
    clicks = app.Table("clicks", default=int, partitions=1).sliding(10, 10, expires=60)
    around: list[int] = []

    @app.agent(topic)
    async def count(stream):
        async for key, _ in stream.items():
            clicks[key] += 1
            around.append(clicks[key].current())

    await app.start()
    for offset in (0, 5, 30, 12):
        await topic.send(key="page", value=1, timestamp=BASE + offset)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while len(around) < 4 and loop.time() < deadline:
        await asyncio.sleep(0.005)
    # 0: itself; 5: 0 and 5; 30: itself; 12: 5, 12 (0 is 12 s before, 30 is 18 s after).
    assert around == [1, 2, 1, 2]
    # And the earlier ranges took the later events: the range around 5 now holds 0, 5, 12.
    assert clicks.table[("page", (BASE - 5, BASE + 15))] == 3


async def test_restored_sliding_ranges_take_new_events() -> None:
    """The ranges a restarted worker restores keep taking the events they contain."""
    broker = f"memory://sliding-{uuid.uuid4().hex}"
    app_id = f"sliding-restore-{next(_ids)}"

    def build() -> tuple[faust.App, faust.Topic, Any, list[int]]:
        app = faust.App(app_id, broker=broker, broker_commit_interval=0.05)
        topic = app.topic("clicks", key_type=str, value_type=int, partitions=1)
        clicks = app.Table("clicks", default=int, partitions=1).sliding(10, 10, expires=60)
        done: list[int] = []

        @app.agent(topic)
        async def count(stream):
            async for key, value in stream.items():
                clicks[key] += value
                done.append(value)

        return app, topic, clicks, done

    async def wait_for(done: list[int], n: int) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while len(done) < n and loop.time() < deadline:
            await asyncio.sleep(0.005)
        assert len(done) == n

    first, topic, clicks, done = build()
    await first.start()
    await topic.send(key="page", value=1, timestamp=BASE)
    await topic.send(key="page", value=1, timestamp=BASE + 5)
    await wait_for(done, 2)
    await first.stop()

    second, topic, clicks, done = build()
    await second.start()
    try:
        await topic.send(key="page", value=1, timestamp=BASE + 8)
        await wait_for(done, 1)
        # Both restored ranges contain BASE + 8: each holds the three clicks now.
        assert clicks.table[("page", (BASE - 10, BASE + 10))] == 3
        assert clicks.table[("page", (BASE - 5, BASE + 15))] == 3
    finally:
        await second.stop()
