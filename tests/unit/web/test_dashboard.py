"""``/dashboard`` and ``/dashboard/data.json``: apps on the embedded broker, each with its
real web server (port 0), read over HTTP as the page reads them."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

import faust
from tests.conftest import eventually

_ids = itertools.count()
WORDS = ["apple", "banana", "cherry", "date", "elder"]
#: What test_data_counts_events_tables_and_errors sends each agent.
EVENTS = {"count": 3 * len(WORDS), "odd_fails": 4}


class Worker:
    """A word-count app (an agent filling a table) and an agent that raises on odd
    numbers, so that there are errors and dead letters."""

    def __init__(self, app_id: str, broker: str, **options: Any) -> None:
        self.app = app = faust.App(
            app_id,
            broker=broker,
            topic_partitions=4,
            web_bind="127.0.0.1",
            agent_restart_backoff=0.01,
            **options,
        )
        self.words = app.topic("words", key_type=str, value_type=str)
        self.numbers = app.topic("numbers", key_type=str, value_type=int)
        self.counts = counts = app.Table("counts", default=int)

        @app.agent(self.words, name="count")
        async def count(stream: Any) -> None:
            async for word in stream:
                counts[word] += 1

        @app.agent(self.numbers, name="odd_fails", retries=0)
        async def odd_fails(stream: Any) -> None:
            async for n in stream:
                if n % 2:
                    raise ValueError(f"{n} is odd")

        self.count, self.odd_fails = count, odd_fails

    @property
    def url(self) -> str:
        return str(self.app.conf.canonical_url)

    async def start(self) -> None:
        await self.app.web.start()
        await self.app.start()

    async def stop(self) -> None:
        if self.app.started:
            await self.app.stop()
        await self.app.web.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def worker() -> AsyncIterator[Worker]:
    app_id = f"dash-{next(_ids)}"
    running = Worker(app_id, f"memory://{app_id}")
    await running.start()
    await running.app.wait_ready()
    try:
        yield running
    finally:
        await running.stop()


async def get_data(http: aiohttp.ClientSession, worker: Worker) -> dict[str, Any]:
    async with http.get(worker.url + "/dashboard/data.json") as response:
        assert response.status == 200
        assert response.headers["Cache-Control"] == "no-store"
        return dict(await response.json())


async def data_when(
    http: aiohttp.ClientSession,
    worker: Worker,
    predicate: Callable[[dict[str, Any]], bool],
    timeout: float = 10.0,
) -> dict[str, Any]:
    """``/dashboard/data.json`` once ``predicate`` holds for it (fail if not in time)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate(data := await get_data(http, worker)):
        if loop.time() > deadline:
            pytest.fail(f"data.json did not meet {predicate} within {timeout}s: {data}")
        await asyncio.sleep(0.05)
    return data


async def test_page_and_its_files(worker: Worker, http: aiohttp.ClientSession) -> None:
    for path in ("/dashboard", "/dashboard/"):
        async with http.get(worker.url + path) as response:
            assert response.status == 200
            assert response.content_type == "text/html"
            html = await response.text()
    # Everything the page loads comes from the worker (no CDN: it may have no internet).
    assert 'src="/dashboard/static/dashboard.js"' in html
    assert 'href="/dashboard/static/dashboard.css"' in html
    assert "https://" not in html
    for name, content_type in (("dashboard.js", "text/javascript"), ("dashboard.css", "text/css")):
        async with http.get(f"{worker.url}/dashboard/static/{name}") as response:
            assert response.status == 200
            assert response.content_type == content_type
            assert "https://" not in await response.text()
    async with http.get(worker.url + "/dashboard/static/secret.py") as response:
        assert response.status == 404
        assert "no dashboard file 'secret.py'" in (await response.json())["error"]
    async with http.get(worker.url + "/dashboard/static/..%2Fdashboard.py") as response:
        assert response.status == 404


async def test_data_counts_events_tables_and_errors(
    worker: Worker, http: aiohttp.ClientSession
) -> None:
    for _ in range(3):
        for word in WORDS:
            await worker.words.send(key=word, value=word)
    for n in range(4):
        await worker.numbers.send(key=str(n), value=n)
    app = worker.app
    await eventually(lambda: app.error_counts.dead_lettered == 2 and len(worker.counts) == 5)
    data = await data_when(
        http, worker, lambda data: {a["name"]: a["events"] for a in data["agents"]} == EVENTS
    )
    assert data["app"] == {
        "id": app.conf.id,
        "version": faust.__version__,
        "url": worker.url,
        "state": "running",
        "sensors": True,
    }
    agents = {agent["name"]: agent for agent in data["agents"]}
    assert agents["count"]["buffered"] == 0
    assert agents["count"]["mean_seconds"] > 0
    assert data["tables"] == [
        {
            "name": "counts",
            "size": 5,
            "partitions": 4,
            "standby": 0,
            "global": False,
            "state": "recovered",
            "recovery": {"partitions": [], "read": 0, "total": 0},
        }
    ]
    errors = data["errors"]
    assert errors["dead_lettered"] == 2
    assert errors["counts"]["agent"] == 2
    assert errors["total"] == 2
    assert [e["kind"] for e in errors["recent"]].count("dead_lettered") == 2


async def test_data_partitions_and_lag(worker: Worker, http: aiohttp.ClientSession) -> None:
    for word in WORDS:
        await worker.words.send(key=word, value=word)
    await eventually(lambda: len(worker.counts) == 5)

    def caught_up(data: dict[str, Any]) -> bool:
        # (An empty partition never had a commit: its lag may be unknown, None.)
        words = [row for row in data["partitions"] if row["topic"] == "words" and row["end"]]
        return all(row["committed"] == row["end"] and row["lag"] == 0 for row in words)

    # Everything sent was processed: once committed, no partition lags.
    data = await data_when(http, worker, caught_up)
    rows = {(row["topic"], row["partition"]): row for row in data["partitions"]}
    # The topics read as streams; not the table's changelog, which is never consumed.
    assert set(rows) == {(t, p) for t in ("words", "numbers") for p in range(4)}
    assert sum(rows["words", p]["end"] for p in range(4)) == len(WORDS)
    for row in rows.values():
        if row["committed"] is not None:
            assert row["lag"] == row["end"] - row["committed"] >= 0


async def test_history_gives_the_chart_points(worker: Worker, http: aiohttp.ClientSession) -> None:
    for word in WORDS:
        await worker.words.send(key=word, value=word)
    # The monitor samples once a second: a rate needs two samples.
    data = await data_when(http, worker, lambda data: len(data["agents"][0]["history"]) >= 2)
    count = data["agents"][0]
    assert count["name"] == "count"
    times = [t for t, _ in count["history"]]
    assert times == sorted(times)
    assert all(rate >= 0 for _, rate in count["history"])
    # History times are rounded to the millisecond; data["time"] is not.
    assert data["time"] - 5 <= times[-1] <= data["time"] + 0.001
    assert count["rate"] == count["history"][-1][1]
    assert data["window"] >= 60


async def test_workers_of_the_group(http: aiohttp.ClientSession) -> None:
    app_id = f"dash-{next(_ids)}"
    broker = f"memory://{app_id}"
    one, two = Worker(app_id, broker), Worker(app_id, broker)
    await one.start()
    await two.start()
    try:
        data = await data_when(http, one, lambda data: len(data["workers"]) == 2)
        workers = {w["url"]: w for w in data["workers"]}
        assert set(workers) == {one.url, two.url}
        assert workers[one.url]["self"] and not workers[two.url]["self"]
        # Every partition of a topic is read by exactly one of them.
        for topic in ("words", "numbers"):
            parts = [p for w in workers.values() for p in w["partitions"].get(topic, [])]
            assert sorted(parts) == [0, 1, 2, 3], topic

        # Lag of the group's partitions: each row from the worker that reads it.
        def group_partitions(data: dict[str, Any]) -> bool:
            return len(data["partitions"]) == 8 and all(
                w.get("reachable", True) for w in data["workers"]
            )

        data = await data_when(http, one, group_partitions)
        others = [w for w in data["workers"] if not w["self"]]
        assert [w["url"] for w in others] == [two.url] and others[0]["reachable"]
        owners = {(row["topic"], row["partition"]): row["worker"] for row in data["partitions"]}
        for url, worker in workers.items():
            for topic, parts in worker["partitions"].items():
                for part in parts:
                    if not topic.endswith("-changelog"):
                        assert owners[topic, part] == url
        # Asked for its own only, a worker does not ask the others.
        async with http.get(one.url + "/dashboard/data.json?scope=local") as response:
            local = await response.json()
        assert {row["worker"] for row in local["partitions"]} == {one.url}
        assert all("reachable" not in w for w in local["workers"])

        # A worker whose web server is gone (still in the group): named as not answering.
        await two.app.web.stop()
        data = await data_when(
            http, one, lambda data: any(w.get("reachable") is False for w in data["workers"])
        )
        (gone,) = [w for w in data["workers"] if not w["self"]]
        assert gone["url"] == two.url
        assert two.url in gone["error"]
        assert {row["worker"] for row in data["partitions"]} == {one.url}
    finally:
        await two.stop()
        await one.stop()


async def test_state_before_the_app_starts(http: aiohttp.ClientSession) -> None:
    app_id = f"dash-{next(_ids)}"
    waiting = Worker(app_id, f"memory://{app_id}")
    await waiting.app.web.start()  # the worker starts its web server before the app
    try:
        data = await get_data(http, waiting)
        assert data["app"]["state"] == "starting"
        assert data["partitions"] == []
        assert [w["url"] for w in data["workers"]] == [waiting.url]
    finally:
        await waiting.app.web.stop()


async def test_without_sensors_the_data_says_so(http: aiohttp.ClientSession) -> None:
    app_id = f"dash-{next(_ids)}"
    quiet = Worker(app_id, f"memory://{app_id}", sensors_enabled=False)
    await quiet.start()
    try:
        await quiet.words.send(key="apple", value="apple")
        await eventually(lambda: len(quiet.counts) == 1)
        data = await get_data(http, quiet)
        assert data["app"]["sensors"] is False
        assert [a["name"] for a in data["agents"]] == ["count", "odd_fails"]
        assert all(a["events"] == 0 and a["history"] == [] for a in data["agents"])
        assert data["partitions"] == []
        assert [t["name"] for t in data["tables"]] == ["counts"]
        assert [w["url"] for w in data["workers"]] == [quiet.url]
    finally:
        await quiet.stop()
