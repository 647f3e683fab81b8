"""Table routes across two worker processes on real Kafka.

Each worker counts words (repartitioned by ``group_by``) into a table of 4 partitions
and serves ``/count/{word}/`` through ``@app.table_route``. Every worker answers for
every word, from the worker that owns the word's partition (named by ``/router/``),
directly or by forwarding; ``/table/counts/{word}/`` likewise. After one worker is
killed, every request still ends within a bounded time: 502/503/504 while the group
notices and rebalances, then the right count from the survivor. Below that, the Kafka
driver's ``routing()``, which the routes forward by.
"""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaProducer

import faust
from faust.transport.partitioner import partition_for_key

from .table_workers import table_from_changelog, wait_until
from .workers import Worker, WorkerCluster

PARTITIONS = 4
SERVED_BY = "X-Faust-Served-By"
# A request may take the forward timeout (10 s) plus a little; never longer.
REQUEST_TIMEOUT = 15.0

ROUTES_APP = """
import os

import faust

app = faust.App(
    os.environ["WR_APP_ID"],
    broker=os.environ["WR_BROKER"],
    topic_partitions=4,
    broker_commit_interval=0.3,
    broker_session_timeout=6.0,
    broker_heartbeat_interval=1.0,
    web_bind="127.0.0.1",
    web_host="127.0.0.1",
)
words = app.topic(os.environ["WR_SOURCE"], value_type=str, value_serializer="raw")
counts = app.Table("counts", default=int)


@app.agent(words)
async def count(stream):
    async for word in stream.group_by(lambda word: word, name="word"):
        counts[word] += 1


@app.page("/count/{word}/")
@app.table_route(table=counts, match_info="word")
async def get_count(self, request, word):
    return self.json({"word": word, "count": counts[word], "by": app.conf.canonical_url})


@app.task
async def announce_ready():
    await app.wait_ready()
    print("READY", app.conf.canonical_url, flush=True)
"""


class RoutesCluster(WorkerCluster):
    prefix = "routes"

    def __init__(self, tmp_path: Path, bootstrap: str) -> None:
        super().__init__(tmp_path, bootstrap, "routes_app", ROUTES_APP)
        self.changelog = f"{self.app_id}-counts-changelog"

    def start_worker(self, port: int) -> Worker:
        return self.spawn(
            {
                "WR_APP_ID": self.app_id,
                "WR_BROKER": f"kafka://{self.bootstrap}",
                "WR_SOURCE": self.source,
                "FAUST_WEB_PORT": str(port),
            }
        )

    async def produce(self, expected: dict[str, int]) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5)
        await producer.start()
        try:
            for word, n in expected.items():
                for _ in range(n):
                    await producer.send(self.source, value=word.encode())
            await producer.flush()
        finally:
            await producer.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def owner_of(info: dict[str, Any], word: str) -> str | None:
    """The worker ``/router/`` names for ``word``'s partition of table counts (where
    group_by put the word: its raw text, hashed)."""
    partition = partition_for_key(word.encode(), PARTITIONS)
    owner: str | None = info["tables"]["counts"]["partitions"][str(partition)]
    return owner


async def fetch(http: aiohttp.ClientSession, url: str) -> tuple[int, Any, str | None]:
    """Status, JSON body and serving worker of ``url``; fails if it takes too long."""
    began = time.monotonic()
    async with http.get(url) as response:
        body = await response.json()
        result = response.status, body, response.headers.get(SERVED_BY)
    assert time.monotonic() - began < REQUEST_TIMEOUT, f"{url} took too long"
    return result


async def router_info(http: aiohttp.ClientSession, url: str) -> dict[str, Any] | None:
    try:
        async with http.get(f"{url}/router/") as response:
            return await response.json()  # type: ignore[no-any-return]
    except aiohttp.ClientError:
        return None  # not listening yet


async def test_table_route_answers_from_the_owner_through_either_worker(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    cluster = RoutesCluster(tmp_path, kafka_bootstrap)
    await cluster.create_topics(partitions=PARTITIONS)
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    workers = [cluster.start_worker(port) for port in ports]
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as http:
            await wait_for_group(http, workers, urls)
            expected = {f"word{i}": i + 1 for i in range(24)}
            await cluster.produce(expected)
            await wait_until(
                lambda: counted(http, urls[0], expected), 90, "the words to be counted"
            )
            info = await router_info(http, urls[0])
            other = await router_info(http, urls[1])
            assert info is not None and other is not None
            assert info["workers"] == other["workers"] and info["tables"] == other["tables"]
            await check_every_word_from_its_owner(http, urls, info, expected)

            # The survivor restores the killed worker's partitions from the changelog.
            await wait_until(
                lambda: changelog_has(cluster, expected), 60, "the changelog to hold every count"
            )
            workers[1].kill()
            await check_during_takeover(http, urls[0], expected)
    finally:
        cluster.stop_all()
        for worker in cluster.workers:
            if worker.proc.returncode not in (0, -9):
                print(worker.output())


async def wait_for_group(
    http: aiohttp.ClientSession, workers: list[Worker], urls: list[str]
) -> None:
    """Until both workers are ready and agree that each owns part of the table."""

    async def ready() -> bool:
        for worker in workers:
            assert worker.proc.poll() is None, worker.output()
        if not all("READY" in worker.output() for worker in workers):
            return False
        infos = [await router_info(http, url) for url in urls]
        tables = [info and info["tables"] for info in infos]
        if not tables[0] or tables[0] != tables[1]:
            return False
        owners = tables[0]["counts"]["partitions"].values()
        return set(owners) == set(urls)

    await wait_until(ready, 120, "both workers to own table partitions")


async def counted(http: aiohttp.ClientSession, url: str, expected: dict[str, int]) -> bool:
    for word, n in expected.items():
        status, body, _ = await fetch(http, f"{url}/table/counts/{word}/")
        if status != 200 or body["value"] != n:
            return False
    return True


async def changelog_has(cluster: RoutesCluster, expected: dict[str, int]) -> bool:
    return await table_from_changelog(cluster.bootstrap, cluster.changelog) == expected


async def check_every_word_from_its_owner(
    http: aiohttp.ClientSession, urls: list[str], info: dict[str, Any], expected: dict[str, int]
) -> None:
    forwarded = {url: 0 for url in urls}
    for word, n in expected.items():
        owner = owner_of(info, word)
        assert owner in urls
        for url in urls:
            status, body, served_by = await fetch(http, f"{url}/count/{word}/")
            assert status == 200, body
            assert body == {"word": word, "count": n, "by": owner}
            assert served_by == owner
            status, body, served_by = await fetch(http, f"{url}/table/counts/{word}/")
            assert (status, body, served_by) == (
                200,
                {"table": "counts", "key": word, "value": n},
                owner,
            )
            forwarded[url] += owner != url
    # Each worker answered some words through the other.
    assert all(forwarded.values()), forwarded


async def check_during_takeover(
    http: aiohttp.ClientSession, survivor: str, expected: dict[str, int]
) -> None:
    """Every request ends in time: an error naming why while the group rebalances, then
    the right count from the survivor for every word."""
    seen: set[int] = set()

    async def all_answered() -> bool:
        right = 0
        for word, n in expected.items():
            for path in (f"/count/{word}/", f"/table/counts/{word}/"):
                status, body, served_by = await fetch(http, survivor + path)
                seen.add(status)
                if status == 200:
                    assert body.get("count", body.get("value")) == n, body
                    assert served_by is not None
                    right += served_by == survivor
                else:
                    assert status in (502, 503, 504), body
                    assert body["error"] and body["table"] == "counts"
        return right == 2 * len(expected)

    await wait_until(all_answered, 90, "the survivor to answer for every word", interval=0.2)
    # The killed worker's words failed fast (refused) before the group moved them.
    assert seen & {502, 503}, seen


async def test_the_consumer_driver_names_each_members_partitions(kafka_bootstrap: str) -> None:
    """``routing()`` of the Kafka driver: every member's URL and partitions from the
    group's assignment, and nothing while a rebalance is in progress."""
    app_id = f"routing-{uuid.uuid4().hex[:8]}"
    apps = [
        faust.App(
            app_id,
            broker=f"kafka://{kafka_bootstrap}",
            topic_partitions=PARTITIONS,
            canonical_url=f"http://worker-{i}:6066",
            broker_heartbeat_interval=0.5,
        )
        for i in range(2)
    ]
    seen_at_revoke: list[Any] = []
    for app in apps:
        source = app.topic(f"{app_id}-source", value_type=str)

        @app.agent(source)
        async def consume(stream: Any) -> None:
            async for _ in stream:
                pass

    @apps[0].on_partitions_revoked.connect
    def revoked(app: faust.App, tps: Any, **kwargs: Any) -> None:
        seen_at_revoke.append(app.router.routing())

    def routing(app: faust.App) -> dict[str, Any]:
        assert app.consumer is not None
        return {url: sorted(tps) for url, tps in app.consumer.driver.routing().items()}

    try:
        for app in apps:
            await app.start()

        async def shared() -> bool:
            maps = [routing(app) for app in apps]
            return maps[0] == maps[1] and len(maps[0]) == 2

        await wait_until(shared, 60, "both members in the routing map")
        source_tps = [tp for tps in routing(apps[0]).values() for tp in tps if "source" in tp.topic]
        assert sorted(tp.partition for tp in source_tps) == list(range(PARTITIONS))
        await apps[1].stop()

        async def alone() -> bool:
            return list(routing(apps[0])) == ["http://worker-0:6066"]

        await wait_until(alone, 60, "the survivor alone in the routing map")
        assert seen_at_revoke and all(seen == {} for seen in seen_at_revoke)
    finally:
        for app in apps:
            if app.started:
                await app.stop()
