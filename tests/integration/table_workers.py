"""Worker processes of an app that counts events per key in a RocksDB table, on Kafka.

The app reads keyed events from a source topic (each value a unique sequence number)
and adds one to the key's count in the table ``counts`` (standby replicas on, each worker
with its own datadir). For every event it sends an ``Out`` record (key, the new count, the
event's sequence number, source partition and offset, its pid) to an output topic, so a
test sees from outside what each worker counted. Each time a table recovery finishes, the
worker prints one line::

    RECOVERED {"restored": <records restored so far>, "active": [...], "standby": [...]}

so a test can tell how many changelog records a takeover read, and once the app says it
is ready (``app.wait_ready()``)::

    READY {"restored": <records restored so far>}

With ``restore_delay`` every changelog read of the worker first waits that many seconds
(as a big table or a slow broker makes a recovery slow); the data read is unchanged.
``OutputWatch`` follows the output topic while the workers run, to tell when a partition
stops making progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from .workers import Worker, WorkerCluster, partitions_of, read_topic

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
    seq: int
    partition: int
    offset: int
    pid: int


app = faust.App(
    os.environ["TW_APP_ID"],
    broker=os.environ["TW_BROKER"],
    store="rocksdb://",
    datadir=os.environ["TW_DATADIR"],
    topic_partitions=int(os.environ.get("TW_PARTITIONS", "4")),
    topic_replication_factor=int(os.environ.get("TW_REPLICATION", "1")),
    table_standby_replicas=1,
    consumer_max_fetch_size=int(os.environ.get("TW_MAX_FETCH") or 1_048_576),
    broker_commit_interval=0.3,
    broker_session_timeout=6.0,
    broker_heartbeat_interval=1.0,
    processing_guarantee=os.environ.get("TW_GUARANTEE", "at_least_once"),
)
source = app.topic(os.environ["TW_SOURCE"], key_type=str, value_type=int)
out = app.topic(os.environ["TW_OUT"], key_type=str, value_type=Out)
counts = app.Table("counts", default=int)
PID = os.getpid()
# Stands for per-event I/O (a lookup, a call) when a test wants workers behind their input.
EVENT_DELAY = float(os.environ.get("TW_EVENT_DELAY", "0"))

RESTORE_DELAY = float(os.environ.get("TW_RESTORE_DELAY", "0"))
if RESTORE_DELAY:
    read_partition = app.transport.read_partition

    async def slow_read_partition(tp, start, end):
        await asyncio.sleep(RESTORE_DELAY)
        async for batch in read_partition(tp, start, end):
            yield batch

    app.transport.read_partition = slow_read_partition


# Faults for the exactly-once abort paths, each once per process at the events whose
# sequence numbers are listed: the agent raises after changing the table and sending the
# event's output (TW_RAISE_AT; TW_RAISE_ALWAYS_AT: every time), or sends a record the
# broker cannot take (TW_BAD_SEND_AT).
RAISE_AT = {int(s) for s in os.environ.get("TW_RAISE_AT", "").split(",") if s}
BAD_SEND_AT = {int(s) for s in os.environ.get("TW_BAD_SEND_AT", "").split(",") if s}
# The agent raises at this event every time (a bug, not a passing fault).
RAISE_ALWAYS_AT = int(os.environ.get("TW_RAISE_ALWAYS_AT") or -1)


@app.agent(source)
async def count(stream):
    async for event in stream.events():
        if EVENT_DELAY:
            await asyncio.sleep(EVENT_DELAY)
        key = event.key
        counts[key] += 1
        m = event.message
        out.send_soon(
            key=key,
            value=Out(
                key=key,
                count=counts[key],
                seq=event.value,
                partition=m.partition,
                offset=m.offset,
                pid=PID,
            ),
        )
        if event.value in BAD_SEND_AT:
            BAD_SEND_AT.discard(event.value)
            print("BAD SEND", event.value, flush=True)
            # Larger than the broker's message.max.bytes (1 MiB by default).
            out.send_soon(key=key, value=b"x" * 2_000_000, value_serializer="raw")
        if event.value == RAISE_ALWAYS_AT:
            raise RuntimeError(f"always failing at {event.value}")
        if event.value in RAISE_AT:
            RAISE_AT.discard(event.value)
            print("RAISING", event.value, flush=True)
            raise RuntimeError(f"failing on purpose at {event.value}")


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

    def __init__(
        self,
        tmp_path: Path,
        bootstrap: str,
        *,
        partitions: int = PARTITIONS,
        replication: int = 1,
        event_delay: float = 0.0,
        max_fetch: int | None = None,
        guarantee: str = "at_least_once",
        env: dict[str, str] | None = None,
    ) -> None:
        """``partitions`` and ``replication`` of the app's topics (its changelog too);
        ``event_delay``: seconds the agent waits per event, as if it did some I/O;
        ``max_fetch``: the app's consumer_max_fetch_size; ``guarantee``: its
        processing_guarantee."""
        super().__init__(tmp_path, bootstrap, "table_app", TABLE_WORKER_APP)
        self.changelog = f"{self.app_id}-counts-changelog"
        self.partitions = partitions
        self.replication = replication
        self.event_delay = event_delay
        self.max_fetch = max_fetch
        self.guarantee = guarantee
        #: More environment for every worker (TW_RAISE_AT, TW_BAD_SEND_AT).
        self.env = dict(env or {})

    def start_worker(self, datadir: str, restore_delay: float = 0.0) -> Worker:
        return self.spawn(
            {
                "TW_APP_ID": self.app_id,
                "TW_BROKER": f"kafka://{self.bootstrap}",
                "TW_SOURCE": self.source,
                "TW_OUT": self.out,
                "TW_DATADIR": str(self.tmp_path / datadir),
                "TW_RESTORE_DELAY": str(restore_delay),
                "TW_PARTITIONS": str(self.partitions),
                "TW_REPLICATION": str(self.replication),
                "TW_EVENT_DELAY": str(self.event_delay),
                "TW_MAX_FETCH": str(self.max_fetch or ""),
                "TW_GUARANTEE": self.guarantee,
                **self.env,
            }
        )

    async def produce(
        self, count: int, keys: int, chunk: int = 1000, pause: float = 0.0, start: int = 0
    ) -> dict[str, int]:
        """Send ``count`` events numbered from ``start`` (event i has key k{i % keys} and
        value i, its sequence number), ``chunk`` at a time with ``pause`` seconds between
        chunks; returns the number of events per key."""
        # acks=all: an event acked by the leader alone could vanish with a killed
        # broker, and the test would blame the workers for the loss.
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, linger_ms=5, acks="all", enable_idempotence=True
        )
        await producer.start()
        per_key: dict[str, int] = {}
        try:
            for i in range(start, start + count):
                key = f"k{i % keys}"
                per_key[key] = per_key.get(key, 0) + 1
                await producer.send(self.source, key=key.encode(), value=str(i).encode())
                if pause and (i + 1 - start) % chunk == 0:
                    await producer.flush()
                    await asyncio.sleep(pause)
            await producer.flush()
        finally:
            await producer.stop()
        return per_key

    @property
    def isolation_level(self) -> str:
        """How a reader of the app's outputs must read them: only committed
        transactions under exactly-once."""
        if self.guarantee == "exactly_once":
            return "read_committed"
        return "read_uncommitted"

    async def output(self) -> list[dict]:
        """Every ``Out`` record written so far (under exactly-once: committed)."""
        records = await read_topic(self.bootstrap, self.out, self.isolation_level)
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


async def table_from_changelog(
    bootstrap: str, topic: str, isolation_level: str = "read_uncommitted"
) -> dict[Any, Any]:
    """A table as its changelog says: the last value of each (JSON) key, tombstones
    deleting (``isolation_level='read_committed'``: as its committed transactions say)."""
    table: dict[Any, Any] = {}
    for _, _, key, value in await read_topic(bootstrap, topic, isolation_level):
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


class OutputWatch:
    """Reads the output topic while the workers write it: which source events have been
    processed, and how long each source partition has gone without progress.

    A source partition is *silent* while some of its events are unprocessed and none of
    them was processed (for the first time) since it last moved on, or since its pending
    events arrived. Use as ``async with OutputWatch(...) as watch:``.
    """

    def __init__(
        self, bootstrap: str, out: str, source: str, isolation_level: str = "read_uncommitted"
    ) -> None:
        self.bootstrap = bootstrap
        self.isolation_level = isolation_level
        #: Reading what an exactly-once app committed (progress shows at its commits).
        self.exactly_once = isolation_level == "read_committed"
        self.out = out
        self.source = source
        self.records: list[dict] = []
        self.seqs: set[int] = set()
        self.processed: dict[int, set[int]] = defaultdict(set)  # source partition -> offsets
        self.ends: dict[int, int] = {}  # source partition -> its end offset when last asked
        self.longest: dict[int, float] = defaultdict(float)  # longest silence seen so far
        self._since: dict[int, float] = {}  # when each partition last moved on (or fell behind)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> OutputWatch:
        self._task = asyncio.ensure_future(self._follow())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def silences(self) -> dict[int, float]:
        """Seconds each behind partition has been silent now (0 when caught up)."""
        now = time.monotonic()
        return {
            p: (now - self._since[p]) if len(self.processed[p]) < end else 0.0
            for p, end in self.ends.items()
        }

    def check(self, limit: float) -> None:
        """Fail if a partition has been silent for more than ``limit`` seconds."""
        self._note_silences()
        if self._task is not None and self._task.done():
            self._task.result()  # the reader itself failed: say why
        silent = {p: s for p, s in self.silences().items() if s > limit}
        if silent:
            raise AssertionError(
                f"source partition(s) of {self.source} silent for more than {limit:.0f} s: "
                + ", ".join(
                    f"[{p}] {s:.0f} s with {len(self.processed[p])} of {self.ends[p]} processed"
                    for p, s in sorted(silent.items())
                )
            )

    def _note_silences(self) -> None:
        for p, silence in self.silences().items():
            self.longest[p] = max(self.longest[p], silence)

    async def _follow(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            auto_offset_reset="earliest",
            isolation_level=self.isolation_level,
        )
        await consumer.start()
        try:
            out_tps = [TopicPartition(self.out, p) for p in await partitions_of(consumer, self.out)]
            source_tps = [
                TopicPartition(self.source, p) for p in await partitions_of(consumer, self.source)
            ]
            consumer.assign(out_tps)
            await consumer.seek_to_beginning()
            ask_ends_at = 0.0
            while True:
                now = time.monotonic()
                if now >= ask_ends_at:
                    ask_ends_at = now + 0.5
                    for tp, end in (await consumer.end_offsets(source_tps)).items():
                        p = tp.partition
                        caught_up = len(self.processed[p]) >= self.ends.get(p, 0)
                        if caught_up and end > self.ends.get(p, 0):
                            self._since[p] = now  # new events: the silence clock starts
                        self.ends[p] = end
                batch = await consumer.getmany(timeout_ms=200)
                now = time.monotonic()
                for messages in batch.values():
                    for m in messages:
                        record = orjson.loads(m.value)
                        self.records.append(record)
                        self.seqs.add(record["seq"])
                        offsets = self.processed[record["partition"]]
                        if record["offset"] not in offsets:
                            offsets.add(record["offset"])
                            self._since[record["partition"]] = now
                self._note_silences()
        finally:
            await consumer.stop()


def own_every_partition(workers: Iterable[Worker], partitions: int) -> bool:
    """True when each worker's latest recovery left it active partitions, and together
    they are all ``partitions`` of the table."""
    latest = [recoveries(w)[-1:] for w in workers]
    if not all(found and found[0]["active"] for found in latest):
        return False
    return sorted(p for found in latest for p in found[0]["active"]) == list(range(partitions))
