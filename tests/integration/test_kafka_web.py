"""The worker's web server on real Kafka: ``/health/ready`` follows a slow table
recovery, and the URL the worker advertises to its group is the one it listens on."""

from __future__ import annotations

import asyncio
import re
import time
import zlib
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata

from .table_workers import TableCluster, end_offsets
from .workers import Worker

WAIT = 120.0


async def _get(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http:
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=5)) as r:
            return r.status, await r.json()


async def _web_url(worker: Worker) -> str:
    """The URL in the worker's banner (its web server took a free port)."""
    deadline = time.monotonic() + WAIT
    while not (match := re.search(r"web\s+(http://\S+)", worker.output())):
        assert worker.proc.poll() is None, worker.output()
        assert time.monotonic() < deadline, worker.output()
        await asyncio.sleep(0.1)
    return match.group(1)


async def _advertised_urls(bootstrap: str, group: str) -> list[str]:
    """The URLs the group's members sent in their assignor metadata (user data:
    zlib-compressed JSON, see faust/transport/kafka/assignor.py)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    [(_, _, _, _, _, members)] = response.groups
    urls = []
    for member in members:
        metadata = ConsumerProtocolMemberMetadata.decode(member[3])
        urls.append(orjson.loads(zlib.decompress(metadata.user_data))["url"])
    return urls


async def test_ready_is_503_while_a_table_recovers_and_200_after(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    cluster = TableCluster(tmp_path, kafka_bootstrap)
    await cluster.create_topics(partitions=cluster.partitions)
    try:
        # A first worker fills the table (and its changelog), then stops.
        first = cluster.start_worker("a")
        per_key = await cluster.produce(2000, keys=50)
        url = await _web_url(first)

        async def counted() -> bool:
            return len(await cluster.output()) >= sum(per_key.values())

        await asyncio.wait_for(_until(counted), WAIT)
        assert (await _get(url + "/health/ready"))[0] == 200
        assert first.stop() == 0
        changelog = sum((await end_offsets(kafka_bootstrap, cluster.changelog, range(4))).values())
        assert changelog > 0

        # A second worker on an empty disk restores the whole changelog, each changelog
        # read made slow (table_workers' restore_delay: a big table, a slow broker).
        second = cluster.start_worker("b", restore_delay=2.0)
        url = await _web_url(second)
        seen: list[tuple[int, Any]] = []
        deadline = time.monotonic() + WAIT
        while "READY" not in second.output():
            assert second.proc.poll() is None and time.monotonic() < deadline, second.output()
            seen.append(await _get(url + "/health/ready"))
            assert (await _get(url + "/health/live"))[0] == 200
            await asyncio.sleep(0.2)
        recovering = [body["reason"] for status, body in seen if status == 503]
        assert any(
            re.fullmatch(r"recovering tables: counts partitions \[[0-3, ]+\]", reason)
            for reason in recovering
        ), seen
        assert (await _get(url + "/health/ready")) == (200, {"status": "ready"})
        status, index = await _get(url + "/")
        assert index["worker"] == url and index["ready"] is True
        assert sorted(index["assigned"][cluster.source]) == [0, 1, 2, 3]
        # The port was chosen at start (FAUST_WEB_PORT=0): the group knows the real one.
        assert await _advertised_urls(kafka_bootstrap, cluster.app_id) == [url]
        assert second.stop() == 0
    finally:
        cluster.stop_all()


async def _until(predicate: Any) -> None:
    while not await predicate():
        await asyncio.sleep(0.3)
