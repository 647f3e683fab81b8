"""Worker processes of an app that counts events per key in a RocksDB table, on Kafka.

The app reads keyed events from a source topic and adds one to the key's count in the
table ``counts`` (standby replicas on, each worker with its own datadir). For every
event it sends an ``Out`` record (key, the new count, the source partition and offset,
its pid) to an output topic, so a test sees from outside what each worker counted. Each
time a table recovery finishes, the worker prints one line::

    RECOVERED {"restored": <records restored so far>, "active": [...], "standby": [...]}

so a test can tell how many changelog records a takeover read.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from .workers import Worker

REPO = Path(__file__).resolve().parents[2]
PARTITIONS = 4

TABLE_WORKER_APP = """
import json
import os

import faust


class Out(faust.Record, serializer="json"):
    key: str
    count: int
    partition: int
    offset: int
    pid: int


app = faust.App(
    os.environ["TW_APP_ID"],
    broker=os.environ["TW_BROKER"],
    store="rocksdb://",
    datadir=os.environ["TW_DATADIR"],
    topic_partitions=4,
    table_standby_replicas=1,
    broker_commit_interval=0.3,
    broker_session_timeout=6.0,
    broker_heartbeat_interval=1.0,
)
source = app.topic(os.environ["TW_SOURCE"], key_type=str, value_type=int)
out = app.topic(os.environ["TW_OUT"], key_type=str, value_type=Out)
counts = app.Table("counts", default=int)
PID = os.getpid()


@app.agent(source)
async def count(stream):
    async for event in stream.events():
        key = event.key
        counts[key] += 1
        m = event.message
        out.send_soon(
            key=key,
            value=Out(key=key, count=counts[key], partition=m.partition, offset=m.offset, pid=PID),
        )


@counts.on_recover
def recovered():
    state = {
        "restored": app.tables.records_restored,
        "active": sorted(counts.active_partitions),
        "standby": sorted(counts.standby_partitions),
    }
    print("RECOVERED", json.dumps(state), flush=True)


@app.on_partitions_assigned.connect
def assigned(app, tps, **kwargs):
    print("ASSIGNED", sorted(tp.partition for tp in tps if tp.topic == source.name), flush=True)
"""


class TableCluster:
    """Worker processes of the counting app, plus helpers to feed and read its topics."""

    def __init__(self, tmp_path: Path, bootstrap: str) -> None:
        self.tmp_path = tmp_path
        self.bootstrap = bootstrap
        suffix = uuid.uuid4().hex[:8]
        self.app_id = f"tables-{suffix}"
        self.source = f"tables-source-{suffix}"
        self.out = f"tables-out-{suffix}"
        self.changelog = f"{self.app_id}-counts-changelog"
        self.workers: list[Worker] = []
        (tmp_path / "table_app.py").write_text(TABLE_WORKER_APP)

    def start_worker(self, datadir: str) -> Worker:
        env = dict(os.environ)
        env.update(
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
            PYTHONUNBUFFERED="1",
            TW_APP_ID=self.app_id,
            TW_BROKER=f"kafka://{self.bootstrap}",
            TW_SOURCE=self.source,
            TW_OUT=self.out,
            TW_DATADIR=str(self.tmp_path / datadir),
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "faust", "-A", "table_app", "worker", "-l", "warning"],
            cwd=self.tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        worker = Worker(proc)
        stdout = proc.stdout
        assert stdout is not None
        threading.Thread(
            target=lambda: worker.lines.extend(iter(stdout.readline, "")), daemon=True
        ).start()
        self.workers.append(worker)
        return worker

    def stop_all(self) -> None:
        for worker in self.workers:
            if worker.proc.poll() is None:
                try:
                    worker.stop()
                except subprocess.TimeoutExpired:
                    pass

    async def create_topics(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            await admin.create_topics(
                [NewTopic(self.source, PARTITIONS, 1), NewTopic(self.out, PARTITIONS, 1)]
            )
        finally:
            await admin.close()

    async def produce(
        self, count: int, keys: int, chunk: int = 1000, pause: float = 0.0
    ) -> dict[str, int]:
        """Send ``count`` events (event i has key k{i % keys}), ``chunk`` at a time with
        ``pause`` seconds between chunks; returns the number of events per key."""
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5)
        await producer.start()
        per_key: dict[str, int] = {}
        try:
            for i in range(count):
                key = f"k{i % keys}"
                per_key[key] = per_key.get(key, 0) + 1
                await producer.send(self.source, key=key.encode(), value=b"1")
                if pause and (i + 1) % chunk == 0:
                    await producer.flush()
                    await asyncio.sleep(pause)
            await producer.flush()
        finally:
            await producer.stop()
        return per_key

    async def committed(self) -> dict[int, int]:
        """The group's committed offset per source partition."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            offsets = await admin.list_consumer_group_offsets(self.app_id)
        finally:
            await admin.close()
        return {
            tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == self.source
        }

    async def output(self) -> list[dict]:
        """Every ``Out`` record written so far."""
        records = await read_topic(self.bootstrap, self.out)
        return [orjson.loads(value) for _, _, _, value in records if value is not None]


Record = tuple[int, int, bytes | None, bytes | None]


async def read_topic(bootstrap: str, topic: str) -> list[Record]:
    """Every record of ``topic`` now, as (partition, offset, key, value), in offset order
    per partition."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    records: list[Record] = []
    try:
        partitions = await _partitions(consumer, topic)
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        end = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning()
        while [tp for tp in tps if await consumer.position(tp) < end[tp]]:
            for tp, messages in (await consumer.getmany(timeout_ms=500)).items():
                records.extend(
                    (tp.partition, m.offset, m.key, m.value) for m in messages if m.offset < end[tp]
                )
    finally:
        await consumer.stop()
    return records


async def end_offsets(bootstrap: str, topic: str, partitions: Iterable[int]) -> dict[int, int]:
    """One past the last offset of each of ``topic``'s ``partitions``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
    finally:
        await consumer.stop()
    return {tp.partition: offset for tp, offset in ends.items()}


async def table_from_changelog(bootstrap: str, topic: str) -> dict[Any, Any]:
    """A table as its changelog says: the last value of each (JSON) key, tombstones
    deleting."""
    table: dict[Any, Any] = {}
    for _, _, key, value in await read_topic(bootstrap, topic):
        assert key is not None
        name = orjson.loads(key)
        if isinstance(name, list):
            name = _tuples(name)
        if value is None:
            table.pop(name, None)
        else:
            table[name] = orjson.loads(value)
    return table


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[int]:
    """The topic's partitions (the metadata of a fresh client may lag a moment)."""
    deadline = time.monotonic() + 30
    while True:
        partitions = consumer.partitions_for_topic(topic)
        if partitions:
            return sorted(partitions)
        if time.monotonic() > deadline:
            raise AssertionError(f"topic {topic!r} has no partitions in the metadata")
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.2)


def _tuples(obj: Any) -> Any:
    return tuple(_tuples(item) for item in obj) if isinstance(obj, list) else obj


def recoveries(worker: Worker) -> list[dict]:
    """The worker's RECOVERED lines, decoded, oldest first."""
    return [
        orjson.loads(line.partition(" ")[2])
        for line in worker.output().splitlines()
        if line.startswith("RECOVERED ")
    ]


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], timeout: float, what: str, interval: float = 0.3
) -> None:
    """Wait until ``await predicate()`` is true, or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)
