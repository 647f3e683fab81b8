"""Run Faust worker processes against real Kafka and read what they produced.

The worker app used here reads keyed ``Item`` records from a source topic and, for each,
sends an ``Out`` record (key, seq, the source partition and offset, the worker's pid) to
an output topic. Because that send is acked before the source offset is committed, the
output tells exactly which input events were processed, by whom, and in what order.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

REPO = Path(__file__).resolve().parents[2]

WORKER_APP = """
import asyncio
import os
import faust


class Item(faust.Record, serializer="json"):
    key: str
    seq: int


class Out(faust.Record, serializer="json"):
    key: str
    seq: int
    partition: int
    offset: int
    pid: int


app = faust.App(
    os.environ["CHAOS_APP_ID"],
    broker=os.environ["CHAOS_BROKER"],
    topic_partitions=int(os.environ.get("CHAOS_PARTITIONS", "4")),
    broker_commit_interval=0.5,
    broker_session_timeout=float(os.environ.get("CHAOS_SESSION_TIMEOUT", "6")),
    broker_heartbeat_interval=1.0,
    consumer_group_instance_id=os.environ.get("CHAOS_INSTANCE_ID") or None,
)
source = app.topic(os.environ["CHAOS_SOURCE"], key_type=str, value_type=Item)
out = app.topic(os.environ["CHAOS_OUT"], key_type=str, value_type=Out)
PID = os.getpid()
# Seconds the agent spends per event (a slow agent keeps its queue full).
EVENT_DELAY = float(os.environ.get("CHAOS_EVENT_DELAY", "0"))

if os.environ.get("CHAOS_GROUP_BY"):
    @app.agent(source)
    async def process(stream):
        async for event in stream.group_by(Item.key).events():
            m = event.message
            out.send_soon(
                key=event.value.key,
                value=Out(key=event.value.key, seq=event.value.seq,
                          partition=m.partition, offset=m.offset, pid=PID),
            )
else:
    @app.agent(source)
    async def process(stream):
        async for event in stream.events():
            if EVENT_DELAY:
                await asyncio.sleep(EVENT_DELAY)
            m = event.message
            out.send_soon(
                key=event.value.key,
                value=Out(key=event.value.key, seq=event.value.seq,
                          partition=m.partition, offset=m.offset, pid=PID),
            )


@app.on_partitions_assigned.connect
def assigned(app, tps, **kwargs):
    print("ASSIGNED", sorted(tp.partition for tp in tps if tp.topic == source.name), flush=True)
"""


@dataclass
class Worker:
    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    interrupted: bool = False

    def output(self) -> str:
        return "".join(self.lines)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)

    def pause(self) -> None:
        """SIGSTOP: the process stands still (no heartbeats) until :meth:`resume`."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def interrupt(self) -> None:
        """Ask for a graceful stop (Ctrl-C) once; a second SIGINT would force the exit."""
        if self.proc.poll() is None and not self.interrupted:
            self.interrupted = True
            self.proc.send_signal(signal.SIGINT)

    def stop(self, timeout: float = 60) -> int:
        self.interrupt()
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


class WorkerCluster:
    """Worker processes of one app module (written to ``tmp_path``), with the app's
    source and output topics, started with ``faust -A <module> worker``."""

    prefix = "cluster"
    #: The workers' ``-l`` level (INFO shows rebalances).
    loglevel = "warning"

    def __init__(self, tmp_path: Path, bootstrap: str, module: str, source: str) -> None:
        self.tmp_path = tmp_path
        self.bootstrap = bootstrap
        self.module = module
        suffix = uuid.uuid4().hex[:8]
        self.app_id = f"{self.prefix}-{suffix}"
        self.source = f"{self.prefix}-source-{suffix}"
        self.out = f"{self.prefix}-out-{suffix}"
        self.workers: list[Worker] = []
        (tmp_path / f"{module}.py").write_text(source)

    def spawn(self, env: dict[str, str]) -> Worker:
        """Start a worker process with ``env`` added to this process's environment."""
        full_env = dict(os.environ)
        full_env.update(
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), full_env.get("PYTHONPATH")])),
            PYTHONUNBUFFERED="1",
            **env,
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "faust", "-A", self.module, "worker", "-l", self.loglevel],
            cwd=self.tmp_path,
            env=full_env,
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
        # All at once: stopped one by one, each stop would rebalance the ones left.
        for worker in self.workers:
            worker.interrupt()
        for worker in self.workers:
            if worker.proc.poll() is None:
                try:
                    worker.stop()
                except subprocess.TimeoutExpired:
                    pass

    async def create_topics(
        self, partitions: int = 4, replication: int = 1, config: dict[str, str] | None = None
    ) -> None:
        """Create the source and output topics (``config``: topic settings such as
        ``min.insync.replicas``)."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            await admin.create_topics(
                [
                    NewTopic(name, partitions, replication, topic_configs=config or {})
                    for name in (self.source, self.out)
                ]
            )
        finally:
            await admin.close()

    async def wait_assigned(self, workers: list[Worker], timeout: float = 90) -> None:
        """Wait until each worker's latest assignment holds a source partition."""
        deadline = time.monotonic() + timeout
        while True:
            latest = [
                [line for line in w.output().splitlines() if line.startswith("ASSIGNED")][-1:]
                for w in workers
            ]
            if all(lines and lines[0] != "ASSIGNED []" for lines in latest):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"not every worker got partitions: {latest}")
            await asyncio.sleep(0.3)

    async def committed(self) -> dict[int, int]:
        """The consumer group's committed offset per source partition."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            offsets = await admin.list_consumer_group_offsets(self.app_id)
        finally:
            await admin.close()
        return {
            tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == self.source
        }


class Cluster(WorkerCluster):
    """Worker processes of the forwarding app, plus helpers to feed and read its topics."""

    prefix = "chaos"

    def __init__(self, tmp_path: Path, bootstrap: str, *, group_by: bool = False) -> None:
        super().__init__(tmp_path, bootstrap, "chaos_app", WORKER_APP)
        self.group_by = group_by

    def start_worker(self, instance_id: str | None = None, event_delay: float = 0.0) -> Worker:
        env = {
            "CHAOS_APP_ID": self.app_id,
            "CHAOS_BROKER": f"kafka://{self.bootstrap}",
            "CHAOS_SOURCE": self.source,
            "CHAOS_OUT": self.out,
        }
        if self.group_by:
            env["CHAOS_GROUP_BY"] = "1"
        if instance_id:
            env["CHAOS_INSTANCE_ID"] = instance_id
        if event_delay:
            env["CHAOS_EVENT_DELAY"] = str(event_delay)
        return self.spawn(env)

    async def produce(self, count: int, keys: int = 1000, start: int = 0) -> None:
        """Send ``count`` items; item i has key k{i % keys} and seq i."""
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5)
        await producer.start()
        try:
            for i in range(start, start + count):
                key = f"k{i % keys}"
                await producer.send(
                    self.source,
                    key=key.encode(),
                    value=orjson.dumps({"key": key, "seq": i}),
                )
            await producer.flush()
        finally:
            await producer.stop()

    async def read_output(
        self, until: int, timeout: float, progress: list[int] | None = None
    ) -> list[dict]:
        """Read the output topic from the start until ``until`` distinct seqs are seen."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, auto_offset_reset="earliest")
        await consumer.start()
        records: list[dict] = []
        seen: set[int] = set()
        try:
            partitions = await partitions_of(consumer, self.out)
            consumer.assign([TopicPartition(self.out, p) for p in partitions])
            await consumer.seek_to_beginning()
            deadline = time.monotonic() + timeout
            while len(seen) < until and time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=500)
                for tp, messages in batch.items():
                    for m in messages:
                        record = orjson.loads(m.value)
                        record["out_partition"] = tp.partition
                        records.append(record)
                        seen.add(record["seq"])
                if progress is not None:
                    progress[0] = len(seen)
        finally:
            await consumer.stop()
        return records

    async def source_offsets(self) -> dict[tuple[int, int], int]:
        """(partition, offset) -> seq for every record of the source topic."""
        return {
            (partition, offset): orjson.loads(value)["seq"]
            for partition, offset, _, value in await read_topic(self.bootstrap, self.source)
            if value is not None
        }


Record = tuple[int, int, bytes | None, bytes | None]


async def read_topic(
    bootstrap: str, topic: str, isolation_level: str = "read_uncommitted"
) -> list[Record]:
    """Every record of ``topic`` now, as (partition, offset, key, value), in offset order
    per partition. ``isolation_level='read_committed'``: only records of committed
    transactions (and those written outside transactions)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        isolation_level=isolation_level,
    )
    await consumer.start()
    records: list[Record] = []
    try:
        partitions = await partitions_of(consumer, topic)
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


async def partitions_of(consumer: AIOKafkaConsumer, topic: str) -> list[int]:
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


def first_seen_order(records: list[dict]) -> dict[str, list[int]]:
    """Per key, the seqs in the order they first appear in the output."""
    order: dict[str, list[int]] = defaultdict(list)
    seen: set[int] = set()
    for record in records:
        if record["seq"] not in seen:
            seen.add(record["seq"])
            order[record["key"]].append(record["seq"])
    return order
