"""Worker processes of an app that counts events per key in a RocksDB table, on Kafka.

The app reads keyed events from a source topic and adds one to the key's count in the
table ``counts`` (standby replicas on, each worker with its own datadir). For every
event it sends an ``Out`` record (key, the new count, the source partition and offset,
its pid) to an output topic, so a test sees from outside what each worker counted. Each
time a table recovery finishes, the worker prints one line::

    RECOVERED {"restored": <records restored so far>, "active": [...], "standby": [...]}

so a test can tell how many changelog records a takeover read, and once the app says it
is ready (``app.wait_ready()``)::

    READY {"restored": <records restored so far>}

With ``restore_delay`` every changelog read of the worker first waits that many seconds
(as a big table or a slow broker makes a recovery slow); the data read is unchanged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from .workers import Worker, WorkerCluster, read_topic

REPO = Path(__file__).resolve().parents[2]
PARTITIONS = 4

TABLE_WORKER_APP = """
import asyncio
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

RESTORE_DELAY = float(os.environ.get("TW_RESTORE_DELAY", "0"))
if RESTORE_DELAY:
    read_partition = app.transport.read_partition

    async def slow_read_partition(tp, start, end):
        await asyncio.sleep(RESTORE_DELAY)
        async for batch in read_partition(tp, start, end):
            yield batch

    app.transport.read_partition = slow_read_partition


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


@app.task
async def announce_ready():
    await app.wait_ready()
    print("READY", json.dumps({"restored": app.tables.records_restored}), flush=True)


@app.on_partitions_assigned.connect
def assigned(app, tps, **kwargs):
    print("ASSIGNED", sorted(tp.partition for tp in tps if tp.topic == source.name), flush=True)
"""


class TableCluster(WorkerCluster):
    """Worker processes of the counting app, plus helpers to feed and read its topics."""

    prefix = "tables"

    def __init__(self, tmp_path: Path, bootstrap: str) -> None:
        super().__init__(tmp_path, bootstrap, "table_app", TABLE_WORKER_APP)
        self.changelog = f"{self.app_id}-counts-changelog"

    def start_worker(self, datadir: str, restore_delay: float = 0.0) -> Worker:
        return self.spawn(
            {
                "TW_APP_ID": self.app_id,
                "TW_BROKER": f"kafka://{self.bootstrap}",
                "TW_SOURCE": self.source,
                "TW_OUT": self.out,
                "TW_DATADIR": str(self.tmp_path / datadir),
                "TW_RESTORE_DELAY": str(restore_delay),
            }
        )

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

    async def output(self) -> list[dict]:
        """Every ``Out`` record written so far."""
        records = await read_topic(self.bootstrap, self.out)
        return [orjson.loads(value) for _, _, _, value in records if value is not None]


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
