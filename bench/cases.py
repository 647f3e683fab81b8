"""The cases of ``python -m bench`` that bench/kafka.py and bench/tables.py do not cover.

Each function runs one Faust app on Kafka over a topic holding the data of
bench/kafka.py (JSON readings of about 100 bytes, 1,000 keys, 4 partitions), checks what
it computed against the data and returns its figure:

- :func:`group_by_count`: ``stream.group_by(...)`` through a repartition topic, then a
  count per key in a Table (memory store, the default; changelog on);
- :func:`window_count`: a count per key in ``app.Table(..., default=int).tumbling(60,
  expires=3600)`` placed by the messages' timestamps;
- :func:`transform_send`: each reading becomes another Record sent to an output topic
  with ``send_soon``; the run ends when every record sent is acknowledged (so the output
  topic holds them all), and the output is read back and counted afterwards;
- :func:`latency`: a producer in the same process sends at a fixed rate with the send
  time in the value; the agent records ``time.time() - sent``;
- :func:`rss_run`: a worker subprocess (``python -m bench.cases rss-worker ...``, the
  real :class:`faust.Worker`) fills a RocksDB table with one key per event and reports
  when it has committed them all; its peak RSS is ``VmHWM`` of ``/proc/<pid>/status``.

Throughput figures are events per CPU-second of this process (``time.process_time``),
from the first event to the last, like the other modules.
"""

from __future__ import annotations

import asyncio
import signal
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from rocksdict import AccessType, Options, Rdict

import faust
from faust.topics import legal_topic_name

from .embedded import Reading
from .kafka import FirstToLast, produce_batches, run_until_done
from .tables import delete_topics

REPO = Path(__file__).resolve().parents[1]
PARTITIONS = 4
KEYS = 1000
TIMEOUT = 600.0
#: Events per second the latency case sends.
LATENCY_RATE = 5_000
#: At most this many events per latency run (10 s at 5,000 events/s).
LATENCY_MAX_EVENTS = 50_000
RSS_TABLE = "latest"
#: The RSS worker is killed above this many MB (the machine is shared).
RSS_LIMIT_MB = 2048.0


class Fahrenheit(faust.Record, serializer="json"):
    sensor: str
    fahrenheit: float
    seq: int


class Stamped(faust.Record, serializer="json"):
    sensor: str
    value: float
    unit: str
    seq: int
    sent: float


# -- helpers --------------------------------------------------------------------------------


def expected_counts(events: int, keys: int = KEYS) -> Counter[str]:
    """Events per key in the data of bench/kafka.py's ``produce``."""
    return Counter(f"sensor-{i % keys:04d}" for i in range(events))


def check(name: str, got: Any, expected: Any) -> None:
    if got != expected:
        raise SystemExit(f"{name}: the result differs from the data's")


def new_app(prefix: str, bootstrap: str, datadir: str, **options: Any) -> faust.App:
    return faust.App(
        f"{prefix}-{uuid.uuid4().hex[:8]}",
        broker=f"kafka://{bootstrap}",
        topic_partitions=PARTITIONS,
        datadir=datadir,
        **options,
    )


async def create_topic(bootstrap: str, name: str, partitions: int = PARTITIONS) -> None:
    """Create the topic and wait until each partition has a leader."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            (described,) = await admin.describe_topics([name])
            found = described.get("partitions", [])
            if len(found) == partitions and all(
                p["error_code"] == 0 and p["leader"] >= 0 for p in found
            ):
                break
            await asyncio.sleep(0.05)
    finally:
        await admin.close()


async def delete_app_topics(bootstrap: str, app_id: str) -> None:
    """Delete the topics named ``{app_id}-...`` (changelogs, repartition, leader, ...)."""
    await delete_topics(bootstrap, prefix=f"{app_id}-")


def isolation_level(guarantee: str) -> str:
    """How a reader must read what an app with ``guarantee`` wrote."""
    return "read_committed" if guarantee == "exactly_once" else "read_uncommitted"


async def end_offsets(
    bootstrap: str, partitions: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """The offsets past the end of the logs of ``partitions`` (read_uncommitted)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        return await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()


async def read_back(
    bootstrap: str, topic: str, isolation: str = "read_uncommitted"
) -> tuple[Counter[str], int]:
    """Records per key in ``topic`` (read with a raw consumer) and how many there are
    (under read_committed: those of committed transactions; the offsets of transaction
    markers are not records)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level=isolation
    )
    await consumer.start()
    counts: Counter[str] = Counter()
    seen = 0
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning()
        ends = await consumer.end_offsets(partitions)
        deadline = time.monotonic() + 60.0
        if isolation == "read_committed":
            # A transaction's commit returns before its markers are written (the
            # coordinator writes them afterwards): until they are, the last stable
            # offsets stop short of its records. The writer has stopped, so wait until
            # they reach the ends of the logs.
            logged = await end_offsets(bootstrap, partitions)
            while ends != logged and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                ends = await consumer.end_offsets(partitions)
        while time.monotonic() < deadline:
            if all([await consumer.position(tp) >= ends[tp] for tp in partitions]):
                break
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for messages in batch.values():
                for message in messages:
                    counts[message.key.decode()] += 1
                seen += len(messages)
    finally:
        await consumer.stop()
    return counts, seen


# -- (c) group_by, then a count per key in a table --------------------------------------------


async def group_by_count(bootstrap: str, topic_name: str, events: int, datadir: str) -> float:
    app = new_app("bench-groupby", bootstrap, datadir)
    topic = app.topic(topic_name, key_type=str, value_type=Reading, partitions=PARTITIONS)
    counts = app.Table("counts", default=int, partitions=PARTITIONS)
    clock = FirstToLast(events)

    def by_sensor(reading: Reading) -> str:
        # The repartition key; called for each event of the source topic, so the clock
        # starts at the first event read, before any is repartitioned.
        clock.first()
        return reading.sensor

    @app.agent(topic)
    async def count(stream):
        async for reading in stream.group_by(by_sensor, name="by-sensor"):
            clock.seen()
            counts[reading.sensor] += 1

    try:
        await run_until_done(app, clock, TIMEOUT)
        elapsed = clock.elapsed()
        check("group_by + table count", Counter(counts.as_dict()), expected_counts(events))
    finally:
        await app.stop()
        await delete_app_topics(bootstrap, app.conf.id)
        # The repartition topic is named after the agent and the source, as in Faust.
        await delete_topics(bootstrap, prefix=legal_topic_name(f"{count.name}-{topic_name}-"))
    return events / elapsed


# -- (d) a tumbling-window count per key ---------------------------------------------------


async def window_count(bootstrap: str, topic_name: str, events: int, datadir: str) -> float:
    app = new_app("bench-window", bootstrap, datadir)
    topic = app.topic(topic_name, key_type=str, value_type=Reading, partitions=PARTITIONS)
    table = app.Table("per-minute", default=int, partitions=PARTITIONS)
    per_minute = table.tumbling(60, expires=3600)  # by the messages' timestamps
    clock = FirstToLast(events)

    @app.agent(topic)
    async def count(stream):
        async for reading in stream:
            clock.seen()
            per_minute[reading.sensor] += 1

    try:
        await run_until_done(app, clock, TIMEOUT)
        elapsed = clock.elapsed()
        per_key: Counter[str] = Counter()
        for (key, _range), value in table.as_dict().items():
            per_key[key] += value
        check("tumbling-window count", per_key, expected_counts(events))
        if per_minute.late_events:
            raise SystemExit(f"tumbling-window count: {per_minute.late_events} late events")
    finally:
        await app.stop()
        await delete_app_topics(bootstrap, app.conf.id)
    return events / elapsed


# -- (e) consume, transform, send to another topic ----------------------------------------


async def transform_send(
    bootstrap: str,
    topic_name: str,
    events: int,
    datadir: str,
    guarantee: str = "at_least_once",
    until_committed: bool = False,
) -> float:
    """``guarantee``: the app's processing_guarantee; ``until_committed``: the clock
    stops once the last events' offsets (and under exactly-once their transactions) are
    committed, not only once every record sent is acknowledged."""
    app = new_app("bench-transform", bootstrap, datadir, processing_guarantee=guarantee)
    topic = app.topic(topic_name, key_type=str, value_type=Reading, partitions=PARTITIONS)
    out_name = f"{app.conf.id}-fahrenheit"
    await create_topic(bootstrap, out_name)
    out = app.topic(out_name, key_type=str, value_type=Fahrenheit, partitions=PARTITIONS)
    clock = FirstToLast(events)

    @app.agent(topic)
    async def convert(stream):
        async for reading in stream:
            clock.seen()
            out.send_soon(
                key=reading.sensor,
                value=Fahrenheit(
                    sensor=reading.sensor, fahrenheit=reading.value * 1.8 + 32.0, seq=reading.seq
                ),
            )

    try:
        try:
            await run_until_done(app, clock, TIMEOUT)
            if until_committed:
                assert app.consumer is not None
                await app.consumer.commit()
            producer = await app.maybe_start_producer()
            await producer.flush()  # every record acknowledged: the output topic holds them
            elapsed = clock.elapsed()
        finally:
            await app.stop()
        counts, total = await read_back(bootstrap, out_name, isolation_level(guarantee))
        check("consume, transform, send (records in the output)", total, events)
        check("consume, transform, send (records per key)", counts, expected_counts(events))
    finally:
        await delete_app_topics(bootstrap, app.conf.id)
    return events / elapsed


# -- (g) end-to-end latency at a fixed rate ------------------------------------------------


async def pace(producer: AIOKafkaProducer, topic: str, events: int, rate: float) -> float:
    """Send ``events`` stamped readings at ``rate`` per second; returns the rate achieved."""
    began = time.perf_counter()
    sent = 0
    while sent < events:
        due = min(events, int((time.perf_counter() - began) * rate) + 1)
        while sent < due:
            key = f"sensor-{sent % KEYS:04d}"
            value = orjson.dumps(
                {
                    "sensor": key,
                    "value": sent * 0.5,
                    "unit": "celsius",
                    "seq": sent,
                    "sent": time.time(),
                }
            )
            await producer.send(topic, key=key.encode(), value=value)
            sent += 1
        await asyncio.sleep(0.0005)
    await producer.flush()
    return events / (time.perf_counter() - began)


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def summary(latencies: list[float], events: int, rate: float, achieved: float) -> dict[str, float]:
    """Percentiles in ms after a warm-up of a tenth of the events (at most 1 s worth)."""
    ordered = sorted(latencies[min(int(rate), events // 10) :])
    return {
        "p50_ms": percentile(ordered, 0.50) * 1000.0,
        "p99_ms": percentile(ordered, 0.99) * 1000.0,
        "max_ms": ordered[-1] * 1000.0,
        "mean_ms": statistics.fmean(ordered) * 1000.0,
        "rate": achieved,
        "timed": len(ordered),
    }


async def latency(
    bootstrap: str, events: int, datadir: str, rate: float = LATENCY_RATE
) -> dict[str, float]:
    """Send to the agent: p50 and p99 in ms, the rate achieved and the events timed."""
    events = min(events, LATENCY_MAX_EVENTS)
    app = new_app("bench-latency", bootstrap, datadir)
    topic_name = f"{app.conf.id}-stamped"
    await create_topic(bootstrap, topic_name)
    topic = app.topic(topic_name, key_type=str, value_type=Stamped, partitions=PARTITIONS)
    latencies: list[float] = []
    done = asyncio.Event()

    @app.agent(topic)
    async def measure(stream):
        async for reading in stream:
            latencies.append(time.time() - reading.sent)
            if len(latencies) == events:
                done.set()

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await app.start()
        faust.worker.tune_gc()
        assert app.consumer is not None
        deadline = time.monotonic() + 60.0
        while len(app.consumer.driver.assignment()) < PARTITIONS:
            if time.monotonic() > deadline:
                raise SystemExit("latency: the app got no assignment within 60 s")
            await asyncio.sleep(0.05)
        achieved = await pace(producer, topic_name, events, rate)
        await asyncio.wait_for(done.wait(), TIMEOUT)
    finally:
        await producer.stop()
        await app.stop()
        await delete_app_topics(bootstrap, app.conf.id)
    return summary(latencies, events, rate, achieved)


async def raw_latency(bootstrap: str, events: int, rate: float = LATENCY_RATE) -> dict[str, float]:
    """The same with a raw aiokafka consumer loop (orjson.loads each value) instead of an
    agent: what the broker, the client and the machine cost on their own."""
    events = min(events, LATENCY_MAX_EVENTS)
    topic = f"bench-latency-raw-{uuid.uuid4().hex[:8]}"
    await create_topic(bootstrap, topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    latencies: list[float] = []

    async def consume() -> None:
        while len(latencies) < events:
            batch = await consumer.getmany(timeout_ms=1000, max_records=2000)
            for messages in batch.values():
                for message in messages:
                    latencies.append(time.time() - orjson.loads(message.value)["sent"])

    try:
        await consumer.start()
        await producer.start()
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning()
        for tp in partitions:
            await consumer.position(tp)  # ready to fetch before the first send
        reader = asyncio.ensure_future(consume())
        achieved = await pace(producer, topic, events, rate)
        await asyncio.wait_for(reader, TIMEOUT)
    finally:
        await producer.stop()
        await consumer.stop()
        await delete_topics(bootstrap, [topic])
    return summary(latencies, events, rate, achieved)


# -- peak RSS of a worker holding many keys in RocksDB -------------------------------------


def keyed_readings(keys: int) -> Iterable[tuple[bytes, bytes]]:
    """One reading per key ``key-0000000``..., values like the other data (~100 bytes)."""
    for i in range(keys):
        key = f"key-{i:07d}"
        value = {"sensor": key, "value": i * 0.5, "unit": "celsius", "seq": i}
        yield key.encode(), orjson.dumps(value)


async def produce_batched(
    bootstrap: str, topic: str, records: Iterable[tuple[bytes, bytes]]
) -> int:
    """Write ``records`` round-robin over the partitions in large batches; returns the count."""
    await create_topic(bootstrap, topic)
    return await produce_batches(
        bootstrap,
        topic,
        ((count % PARTITIONS, key, value) for count, (key, value) in enumerate(records, 1)),
    )


def rss_worker(bootstrap: str, topic_name: str, keys: int, datadir: str, app_id: str) -> int:
    """The worker process: ``table[key] = value`` for each event, then print ``FILLED``
    once a commit has flushed the last of them (changelog sent, RocksDB written)."""
    app = faust.App(
        app_id,
        broker=f"kafka://{bootstrap}",
        store="rocksdb://",
        datadir=datadir,
        topic_partitions=PARTITIONS,
        # A worker's web server is part of its memory; any free port, so that a bench
        # run does not collide with a worker on 6066.
        web_port=0,
    )
    topic = app.topic(topic_name, key_type=str, value_type=Reading, partitions=PARTITIONS)
    table = app.Table(RSS_TABLE, default=float, partitions=PARTITIONS)
    seen = 0
    reporting: list[asyncio.Task[None]] = []

    async def report() -> None:
        assert app.consumer is not None
        await app.consumer.commit()
        print(f"FILLED {table.changelog_records_sent}", flush=True)

    @app.agent(topic)
    async def fill(stream):
        nonlocal seen
        async for reading in stream:
            table[reading.sensor] = reading.value
            seen += 1
            if seen == keys:
                reporting.append(asyncio.ensure_future(report()))

    return faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


def proc_status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise SystemExit(f"no {field} in /proc/{pid}/status")


def keys_on_disk(datadir: str, table: str) -> int:
    total = 0
    for path in sorted((Path(datadir) / "tables").glob(f"{table}-*.rocksdb")):
        db = Rdict(str(path), Options(raw_mode=True), access_type=AccessType.read_only())
        try:
            total += sum(1 for key in db.keys() if isinstance(key, bytes) and key[:1] != b"\0")
        finally:
            db.close()
    return total


async def rss_run(
    bootstrap: str, topic_name: str, keys: int, datadir: str, limit_mb: float = RSS_LIMIT_MB
) -> dict[str, Any]:
    """Run the worker until its table holds ``keys`` keys; its peak and current RSS in MB.

    A worker whose RSS passes ``limit_mb`` is killed (the machine is shared): then
    ``limited`` is true and ``peak_mb`` is only a lower bound.
    """
    app_id = f"bench-rss-{uuid.uuid4().hex[:8]}"
    log = Path(datadir) / "worker.log"
    with log.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.cases",
            "rss-worker",
            bootstrap,
            topic_name,
            str(keys),
            datadir,
            app_id,
            cwd=REPO,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
    limited = False
    try:
        assert proc.stdout is not None
        reading = asyncio.ensure_future(proc.stdout.readline())
        deadline = time.monotonic() + TIMEOUT
        while not reading.done():
            await asyncio.wait([reading], timeout=0.1)
            if reading.done():
                break
            if proc_status_kb(proc.pid, "VmRSS") / 1024 > limit_mb:
                limited = True
                peak = proc_status_kb(proc.pid, "VmHWM") / 1024
                reading.cancel()
                break
            if time.monotonic() > deadline:
                reading.cancel()
                raise SystemExit(f"the RSS worker did not fill its table in {TIMEOUT:.0f} s")
        if limited:
            proc.kill()
            await proc.wait()
            return {"peak_mb": peak, "rss_mb": peak, "keys": 0, "limited": True}
        line = reading.result()
        if not line.startswith(b"FILLED"):
            tail = log.read_text(errors="replace")[-2000:]
            raise SystemExit(f"the RSS worker stopped before filling its table:\n{tail}")
        peak = proc_status_kb(proc.pid, "VmHWM") / 1024
        current = proc_status_kb(proc.pid, "VmRSS") / 1024
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 60.0)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await delete_app_topics(bootstrap, app_id)
    stored = keys_on_disk(datadir, RSS_TABLE)
    check("RSS worker: keys in its RocksDB table", stored, keys)
    return {"peak_mb": peak, "rss_mb": current, "keys": stored, "limited": False}


if __name__ == "__main__":
    if len(sys.argv) == 7 and sys.argv[1] == "rss-worker":
        bootstrap, topic_name, keys, datadir, app_id = sys.argv[2:]
        sys.exit(rss_worker(bootstrap, topic_name, int(keys), datadir, app_id))
    sys.exit("usage: python -m bench.cases rss-worker BOOTSTRAP TOPIC KEYS DATADIR APP_ID")
