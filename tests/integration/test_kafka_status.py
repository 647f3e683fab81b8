"""``faust status`` against real Kafka: two worker processes, then none.

The command runs in its own process, as an operator would run it, and is checked
against what the test knows: the workers it started (their URLs), the partitions of the
topics, and the records it produced while the group was stopped.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from faust.cli.status import NO_MEMBERS
from tests.test_readme import free_port

from .workers import REPO, WorkerCluster

STATUS_APP = """
import os
import faust

app = faust.App(
    os.environ["STATUS_APP_ID"],
    topic_partitions=4,
    broker_commit_interval=0.2,
    broker_session_timeout=6,
    broker_heartbeat_interval=1.0,
)
source = app.topic(os.environ["STATUS_SOURCE"], key_type=str, value_type=str)
seen = app.Table("seen", default=int)


@app.agent(source)
async def process(stream):
    async for key, value in stream.items():
        seen[key] += 1


@app.on_partitions_assigned.connect
def assigned(app, tps, **kwargs):
    print("ASSIGNED", sorted(tp.partition for tp in tps if tp.topic == source.name), flush=True)
"""

PARTITIONS = 4


class StatusCluster(WorkerCluster):
    prefix = "status"

    def __init__(self, tmp_path: Path, bootstrap: str) -> None:
        super().__init__(tmp_path, bootstrap, "status_app", STATUS_APP)
        self.env = {
            "STATUS_APP_ID": self.app_id,
            "STATUS_SOURCE": self.source,
            "FAUST_BROKER": f"kafka://{bootstrap}",
        }

    def start_worker(self, web_port: int) -> Any:
        # Each worker its own port, so each advertises its own URL in the group.
        return self.spawn({**self.env, "FAUST_WEB_PORT": str(web_port)})

    def status(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        full_env = dict(os.environ)
        full_env.update(
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), full_env.get("PYTHONPATH")])),
            **self.env,
            **(env or {}),
        )
        return subprocess.run(
            [sys.executable, "-m", "faust", "-A", self.module, "status", *args],
            cwd=self.tmp_path,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def status_json(self, expect: int | None = None) -> dict[str, Any]:
        done = self.status("--json")
        if expect is not None:
            assert done.returncode == expect, done.stdout + done.stderr
        assert done.returncode in (0, NO_MEMBERS), done.stdout + done.stderr
        return json.loads(done.stdout)

    async def produce(self, count: int) -> Counter[int]:
        """Send ``count`` records with distinct keys; how many went to each partition."""
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap)
        await producer.start()
        per_partition: Counter[int] = Counter()
        try:
            for i in range(count):
                meta = await producer.send_and_wait(
                    self.source, key=f"key-{uuid.uuid4().hex[:6]}-{i}".encode(), value=b'"x"'
                )
                per_partition[meta.partition] += 1
        finally:
            await producer.stop()
        return per_partition


async def _until(predicate: Any, what: str, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout} s")
        await asyncio.sleep(0.5)


def _source_rows(report: dict[str, Any], cluster: StatusCluster) -> list[dict[str, Any]]:
    return [p for p in report["partitions"] if p["topic"] == cluster.source]


async def test_status_of_two_workers_then_of_the_stopped_group(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    cluster = StatusCluster(tmp_path, kafka_bootstrap)
    await cluster.create_topics(partitions=PARTITIONS)
    ports = [free_port(), free_port()]
    urls = {f"http://{socket.gethostname()}:{port}" for port in ports}
    workers = [cluster.start_worker(port) for port in ports]
    try:
        await cluster.wait_assigned(workers)
        first = await cluster.produce(40)
        assert len(first) == PARTITIONS  # every partition has records (and commits)

        async def settled() -> dict[str, Any] | None:
            report = cluster.status_json()
            rows = _source_rows(report, cluster)
            owners = {row["owner"] for row in rows}
            members = {m["member_id"] for m in report["members"]}
            done = (
                report["state"] == "Stable"
                and len(members) == 2
                and len(rows) == PARTITIONS
                and owners <= members
                and len(owners) == 2
                and all(row["lag"] == 0 and row["committed"] == row["end"] for row in rows)
            )
            return report if done else None

        report = await _until(settled, "two members owning every partition, nothing left")
        assert report["version"] == 1 and report["app"] == cluster.app_id
        assert report["group"] == cluster.app_id
        assert report["broker"] == f"kafka://{kafka_bootstrap}"
        assert {m["url"] for m in report["members"]} == urls
        assert sum(m["leader"] for m in report["members"]) == 1
        for row in _source_rows(report, cluster):
            assert row["kind"] == "source"
            assert row["end"] == first[row["partition"]]
            owner = next(m for m in report["members"] if m["member_id"] == row["owner"])
            assert row["owner_url"] == owner["url"]
            assert {"topic": cluster.source, "partition": row["partition"]} in owner["partitions"]
        changelog = f"{cluster.app_id}-seen-changelog"
        changelog_rows = [p for p in report["partitions"] if p["topic"] == changelog]
        assert len(changelog_rows) == PARTITIONS
        assert all(p["kind"] == "changelog" and p["lag"] is None for p in changelog_rows)
        assert report["lag"] == 0 and report["missing_topics"] == []

        # The readable form names the same workers.
        text = cluster.status()
        assert text.returncode == 0, text.stderr
        assert f"Group {cluster.app_id!r}" in text.stdout and "Stable, 2 member(s)" in text.stdout
        for url in urls:
            assert url in text.stdout
    finally:
        cluster.stop_all()
    for worker in workers:
        assert worker.proc.returncode == 0, worker.output()

    # Stopped: the group has no members; what arrives now is lag.
    more = await cluster.produce(25)
    report = cluster.status_json(expect=NO_MEMBERS)
    assert report["state"] == "Empty" and report["members"] == []
    rows = _source_rows(report, cluster)
    assert [row["partition"] for row in rows] == list(range(PARTITIONS))
    for row in rows:
        partition = row["partition"]
        assert row["owner"] is None
        assert row["committed"] == first[partition]
        assert row["end"] == first[partition] + more[partition]
        assert row["lag"] == more[partition]
    assert report["lag"] == 25
    text = cluster.status()
    assert text.returncode == NO_MEMBERS, text.stderr
    assert "has no members" in text.stdout and "lag 25" in text.stdout


async def test_status_of_a_group_that_never_ran(kafka_bootstrap: str, tmp_path: Path) -> None:
    cluster = StatusCluster(tmp_path, kafka_bootstrap)
    await cluster.create_topics(partitions=PARTITIONS)
    records = await cluster.produce(6)
    report = cluster.status_json(expect=NO_MEMBERS)
    assert report["state"] == "Dead" and report["members"] == []
    rows = _source_rows(report, cluster)
    assert [r["committed"] for r in rows] == [None] * PARTITIONS
    # A new group starts from the earliest offset: everything there is waits.
    assert [r["lag"] for r in rows] == [records[p] for p in range(PARTITIONS)]
    # The table's changelog is not created until a worker starts.
    assert report["missing_topics"] == [f"{cluster.app_id}-seen-changelog"]
    text = cluster.status()
    assert text.returncode == NO_MEMBERS
    assert f"Group {cluster.app_id!r} does not exist" in text.stdout


async def test_status_needs_no_web_server(kafka_bootstrap: str, tmp_path: Path) -> None:
    cluster = StatusCluster(tmp_path, kafka_bootstrap)
    await cluster.create_topics(partitions=PARTITIONS)
    worker = cluster.spawn({**cluster.env, "FAUST_WEB_ENABLED": "false"})
    try:
        await cluster.wait_assigned([worker])
        report = cluster.status_json(expect=0)
        [member] = report["members"]
        assert member["leader"]
        assert {row["owner"] for row in _source_rows(report, cluster)} == {member["member_id"]}
    finally:
        cluster.stop_all()
    assert worker.proc.returncode == 0, worker.output()
