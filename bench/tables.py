"""Tables on RocksDB: a per-key sum beside a raw aiokafka loop, and changelog recovery.

    python -m bench.tables [--events 200000] [--runs 3] [--restore-records 1000000]
                           [--restore-keys 100000] [--only sum|restore] [--no-embedded]

Uses ``KAFKA_BOOTSTRAP_SERVERS`` if set, else brings up Kafka with ``scripts/kafka up``
(and takes it down again if this run started it). Every table lives in a RocksDB store
under a temporary datadir, with its changelog on.

Sum: the data of bench/kafka.py (200,000 JSON values of about 100 bytes, 1,000 keys, 4
partitions) is produced once. Each run reads the whole topic three times in the same
process: with a raw aiokafka loop that consumes, decodes with orjson and sums ``value`` per
key in a dict, with a Faust app whose agent decodes into Records and does
``table[reading.sensor] += reading.value`` on ``app.Table(..., default=int,
store='rocksdb://')``, and with bench/kafka.py's agent that only counts (no table), which
shows what the table itself adds. Rates are events per CPU-second of this process from the first
event to the last (the broker's CPU and the group join are not counted; the changelog
flushes the consumer's commits make meanwhile are). The same Faust case then runs on the
embedded broker (``memory://``), timed the same way.

Restore: a changelog ``{app}-{table}-changelog`` of ``--restore-records`` records over
``--restore-keys`` keys (written with aiokafka the way the table writes it: JSON key,
JSON int value, murmur2 partition of the key bytes, 4 partitions) is produced once. Each
run starts an App with that table in a fresh datadir and times, in wall-clock seconds
(I/O and CPU), from the assignment of the partitions to the moment
``app.tables.records_restored`` reaches the total. The baseline, in the same run, reads
the same partitions with a raw aiokafka consumer and writes each fetched batch to one
RocksDB database per partition with rocksdict (what recovery has to do at the least).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from rocksdict import Options, Rdict, WriteBatch

import faust
from faust.transport.memory import MemoryTransport
from faust.transport.partitioner import partition_for_key

from .embedded import Reading, make_data
from .kafka import REPO, FirstToLast, bring_up_kafka, produce, produce_batches, run_until_done
from .kafka import faust_run as stateless_run

PARTITIONS = 4
TABLE = "sums"
TIMEOUT = 600.0


# -- the per-key sum ------------------------------------------------------------------------


def expected_sums(events: int, keys: int = 1000) -> dict[str, float]:
    """The sums per key of the data bench/kafka.py produces, added in production order
    (each key lives in one partition, so every reader adds its values in this order)."""
    sums: dict[str, float] = defaultdict(int)
    for i in range(events):
        sums[f"sensor-{i % keys:04d}"] += i * 0.5
    return dict(sums)


async def raw_sum(bootstrap: str, topic: str, events: int) -> tuple[float, dict[str, float]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    sums: dict[str, float] = defaultdict(int)
    seen = 0
    start = None
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        await consumer.seek_to_beginning()
        while seen < events:
            batch = await consumer.getmany(timeout_ms=1000, max_records=2000)
            if batch and start is None:
                start = time.process_time()
            for messages in batch.values():
                for message in messages:
                    data = orjson.loads(message.value)
                    sums[data["sensor"]] += data["value"]
                seen += len(messages)
        elapsed = time.process_time() - (start or 0.0)
    finally:
        await consumer.stop()
    return events / elapsed, sums


async def faust_sum(
    app: faust.App,
    topic: Any,
    events: int,
    before_start: Callable[[], Any] | None = None,
    until_committed: bool = False,
) -> tuple[float, dict[str, float], int]:
    """Run the table-summing agent over ``events`` events of ``topic``; returns events per
    CPU-second (first to last event; ``until_committed``: to the end of the commit after
    it, which sends the last changelog records, and under exactly-once commits them), the
    table's contents and changelog records sent."""
    table = app.Table(TABLE, default=int, store="rocksdb://", partitions=PARTITIONS)
    clock = FirstToLast(events)

    @app.agent(topic)
    async def summing(stream):
        async for reading in stream:
            clock.seen()
            table[reading.sensor] += reading.value

    if before_start is not None:
        await before_start()
    try:
        await run_until_done(app, clock, TIMEOUT)
        elapsed = clock.elapsed()
        assert app.consumer is not None
        await app.consumer.commit()  # flush the last changes, so the check sees them sent
        if until_committed:
            elapsed = clock.elapsed()
        sums = table.as_dict()
        sent = table.changelog_records_sent
    finally:
        await app.stop()
    return events / elapsed, sums, sent


async def kafka_faust_sum(
    bootstrap: str,
    topic_name: str,
    events: int,
    datadir: str,
    guarantee: str = "at_least_once",
    until_committed: bool = False,
) -> tuple[float, dict[str, float], int]:
    app = faust.App(
        f"bench-tables-{uuid.uuid4().hex[:8]}",
        broker=f"kafka://{bootstrap}",
        topic_partitions=PARTITIONS,
        datadir=datadir,
        processing_guarantee=guarantee,
    )
    topic = app.topic(topic_name, key_type=str, value_type=Reading, partitions=PARTITIONS)
    try:
        return await faust_sum(app, topic, events, until_committed=until_committed)
    finally:
        await delete_topics(bootstrap, prefix=f"{app.conf.id}-")


async def embedded_faust_sum(
    data: list[tuple[bytes, bytes]], run: int, datadir: str
) -> tuple[float, dict[str, float], int]:
    app = faust.App(f"bench-tables-{run}", topic_partitions=PARTITIONS, datadir=datadir)
    topic = app.topic("readings", key_type=str, value_type=Reading, partitions=PARTITIONS)

    async def fill() -> None:
        await topic.declare()
        broker = cast(MemoryTransport, app.transport).broker
        for key, value in data:
            broker.append("readings", key, value, None, 0.0, None)

    return await faust_sum(app, topic, len(data), fill)


def plain_sum(data: list[tuple[bytes, bytes]]) -> float:
    """The embedded case's reference: orjson and a dict sum over the same bytes."""
    sums: dict[str, float] = defaultdict(int)
    start = time.process_time()
    for _key, value in data:
        item = orjson.loads(value)
        sums[item["sensor"]] += item["value"]
    return len(data) / (time.process_time() - start)


def check_sums(name: str, got: dict[str, float], expected: dict[str, float]) -> None:
    if got != expected:
        wrong = sum(1 for k, v in expected.items() if got.get(k) != v)
        raise SystemExit(f"{name}: {wrong} of {len(expected)} sums differ from the data's")


# -- the restore ----------------------------------------------------------------------------


def changelog_record(i: int, keys: int) -> tuple[bytes, bytes]:
    return orjson.dumps(f"key-{i % keys:07d}"), orjson.dumps(i)


async def produce_changelog(bootstrap: str, topic: str, records: int, keys: int) -> None:
    """Write the changelog as the table would: JSON keys, JSON int values, compacted."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(topic, PARTITIONS, 1, topic_configs={"cleanup.policy": "compact"})]
        )
    finally:
        await admin.close()
    await produce_batches(
        bootstrap,
        topic,
        (
            (partition_for_key(key, PARTITIONS), key, value)
            for key, value in (changelog_record(i, keys) for i in range(records))
        ),
    )


def expected_restore(records: int, keys: int) -> dict[str, int]:
    return {f"key-{k:07d}": (records - 1 - k) // keys * keys + k for k in range(min(keys, records))}


async def faust_restore(
    app: faust.App, records: int, keys: int, before_start: Callable[[], Any] | None = None
) -> tuple[float, float, dict[str, int]]:
    """Start ``app`` (which has the table) and time its recovery from assignment to the
    last record restored; returns records per wall-second and per CPU-second, and the
    restored table."""
    table = cast(faust.Table, app.tables[TABLE])
    source = app.topic(f"{app.conf.id}-source", key_type=str, value_type=int)

    @app.agent(source)
    async def idle(stream):
        async for _ in stream:
            pass

    began: list[tuple[float, float]] = []
    assigned = app.tables.on_partitions_assigned

    def on_assigned(tps: Any) -> None:
        if not began:
            began.append((time.perf_counter(), time.process_time()))
        assigned(tps)

    app.tables.on_partitions_assigned = on_assigned  # type: ignore[method-assign,assignment]
    if before_start is not None:
        await before_start()
    await app.start()
    try:
        deadline = time.monotonic() + TIMEOUT
        while app.tables.records_restored < records:
            recovery = app.tables._recovery
            if recovery is not None and recovery.done():
                raise SystemExit(
                    f"recovery ended after {app.tables.records_restored:,} of {records:,} records"
                )
            if time.monotonic() > deadline:
                raise SystemExit("recovery did not finish in time")
            await asyncio.sleep(0.002)
        wall = time.perf_counter() - began[0][0]
        cpu = time.process_time() - began[0][1]
        restored = table.as_dict()
    finally:
        await app.stop()
    return records / wall, records / cpu, restored


async def kafka_faust_restore(
    bootstrap: str, app_id: str, records: int, keys: int, datadir: str
) -> tuple[float, float, dict[str, int]]:
    app = faust.App(
        app_id, broker=f"kafka://{bootstrap}", topic_partitions=PARTITIONS, datadir=datadir
    )
    app.Table(TABLE, default=int, store="rocksdb://", partitions=PARTITIONS)
    return await faust_restore(app, records, keys)


async def embedded_faust_restore(
    run: int, records: int, keys: int, datadir: str
) -> tuple[float, float, dict[str, int]]:
    app = faust.App(f"bench-restore-{run}", topic_partitions=PARTITIONS, datadir=datadir)
    table = app.Table(TABLE, default=int, store="rocksdb://", partitions=PARTITIONS)

    async def fill() -> None:
        topic = table.changelog_topic
        await topic.declare()
        append = cast(MemoryTransport, app.transport).broker.append
        for i in range(records):
            key, value = changelog_record(i, keys)
            append(topic.name, key, value, None, 0.0, None)

    return await faust_restore(app, records, keys, fill)


async def raw_restore(
    bootstrap: str, topic: str, records: int, datadir: str
) -> tuple[float, float]:
    """aiokafka into rocksdict, one database per partition: records per wall- and CPU-second."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    dbs: dict[int, Rdict] = {}
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning()
        wall, cpu = time.perf_counter(), time.process_time()
        for tp in partitions:
            dbs[tp.partition] = Rdict(f"{datadir}/raw-{tp.partition}.rocksdb", options)
        seen = 0
        while seen < records:
            fetched = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for tp, messages in fetched.items():
                batch = WriteBatch(raw_mode=True)
                for message in messages:
                    batch.put(message.key, message.value)
                batch.put(b"\x00offset", str(messages[-1].offset).encode())
                dbs[tp.partition].write(batch)
                seen += len(messages)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        for db in dbs.values():
            db.close()
        await consumer.stop()
    return records / wall, records / cpu


# -- running it all -------------------------------------------------------------------------


async def delete_topics(bootstrap: str, topics: Sequence[str] = (), prefix: str = "") -> None:
    """Delete ``topics`` and, with ``prefix``, every topic named so (the app's own)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    names = list(topics)
    try:
        if prefix:
            names += [t for t in await admin.list_topics() if t.startswith(prefix)]
        await admin.delete_topics(names)
    except Exception as exc:  # only tidying up
        print(f"(could not delete topics {names}: {exc})", file=sys.stderr)
    finally:
        await admin.close()


def fresh_dir(base: str, name: str) -> str:
    path = Path(base) / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return str(path)


async def run_sum(args: argparse.Namespace, bootstrap: str, tmp: str) -> dict[str, list[float]]:
    rates: dict[str, list[float]] = defaultdict(list)
    expected = expected_sums(args.events)
    topic = f"bench-tables-readings-{uuid.uuid4().hex[:8]}"
    await produce(bootstrap, topic, args.events)
    try:
        for run in range(args.runs):
            rate, sums = await raw_sum(bootstrap, topic, args.events)
            check_sums("raw aiokafka loop", sums, expected)
            rates["raw"].append(rate)
            rate, sums, sent = await kafka_faust_sum(
                bootstrap, topic, args.events, fresh_dir(tmp, f"sum-kafka-{run}")
            )
            check_sums("faust table (Kafka)", sums, expected)
            rates["faust"].append(rate)
            rates["sent"].append(sent)
            # The same agent without the table (bench/kafka.py's): what the table adds.
            rates["stateless"].append(await stateless_run(bootstrap, topic, args.events))
    finally:
        await delete_topics(bootstrap, [topic])
    if args.embedded:
        data = make_data(args.events)
        for run in range(args.runs):
            rates["plain"].append(plain_sum(data))
            rate, sums, sent = await embedded_faust_sum(
                data, run, fresh_dir(tmp, f"sum-embedded-{run}")
            )
            check_sums("faust table (embedded)", sums, expected)
            rates["embedded"].append(rate)
            rates["embedded_sent"].append(sent)
    return rates


async def run_restore(args: argparse.Namespace, bootstrap: str, tmp: str) -> dict[str, list[float]]:
    rates: dict[str, list[float]] = defaultdict(list)
    records, keys = args.restore_records, args.restore_keys
    expected = expected_restore(records, keys)
    app_id = f"bench-restore-{uuid.uuid4().hex[:8]}"
    changelog = f"{app_id}-{TABLE}-changelog"
    began = time.perf_counter()
    await produce_changelog(bootstrap, changelog, records, keys)
    print(f"(changelog of {records:,} records produced in {time.perf_counter() - began:.1f} s)")
    try:
        for run in range(args.runs):
            wall, cpu = await raw_restore(
                bootstrap, changelog, records, fresh_dir(tmp, f"restore-raw-{run}")
            )
            rates["raw_wall"].append(wall)
            rates["raw_cpu"].append(cpu)
            wall, cpu, restored = await kafka_faust_restore(
                bootstrap, app_id, records, keys, fresh_dir(tmp, f"restore-kafka-{run}")
            )
            if restored != expected:
                raise SystemExit("restored table (Kafka) differs from its changelog")
            rates["faust_wall"].append(wall)
            rates["faust_cpu"].append(cpu)
    finally:
        await delete_topics(bootstrap, prefix=f"{app_id}-")
    if args.embedded:
        for run in range(args.runs):
            wall, cpu, restored = await embedded_faust_restore(
                run, records, keys, fresh_dir(tmp, f"restore-embedded-{run}")
            )
            if restored != expected:
                raise SystemExit("restored table (embedded) differs from its changelog")
            rates["embedded_wall"].append(wall)
            rates["embedded_cpu"].append(cpu)
    return rates


def median(rates: dict[str, list[float]], name: str) -> float:
    return statistics.median(rates[name])


def spread(rates: dict[str, list[float]], name: str) -> str:
    """The runs' lowest and highest figures (the machine is shared: they vary)."""
    return f"({min(rates[name]):,.0f} .. {max(rates[name]):,.0f})"


def report_sum(args: argparse.Namespace, rates: dict[str, list[float]]) -> None:
    faust_rate, raw = median(rates, "faust"), median(rates, "raw")
    print(f"events: {args.events:,}  runs: {args.runs} (median, events per CPU-second)")
    rows = [
        ("faust table sum, RocksDB (Kafka)", "faust"),
        ("raw aiokafka loop (orjson + dict sum)", "raw"),
        ("faust agent, no table (Kafka)", "stateless"),
    ]
    if args.embedded:
        rows += [
            ("faust table sum, RocksDB (embedded)", "embedded"),
            ("plain loop (orjson + dict sum)", "plain"),
        ]
    for label, name in rows:
        print(f"{label + ':':<39}{median(rates, name):>10,.0f} events/s  {spread(rates, name)}")
    print(f"{'ratio faust table/raw:':<39}{faust_rate / raw:>10.2f}")
    print(f"{'ratio faust no table/raw:':<39}{median(rates, 'stateless') / raw:>10.2f}")
    sent = f"{median(rates, 'sent'):,.0f} (Kafka)"
    if args.embedded:
        sent += f", {median(rates, 'embedded_sent'):,.0f} (embedded)"
    print(f"changelog records sent per run:        {sent}")


def report_restore(args: argparse.Namespace, rates: dict[str, list[float]]) -> None:
    print(
        f"changelog records: {args.restore_records:,} over {args.restore_keys:,} keys, "
        f"{PARTITIONS} partitions  runs: {args.runs} (median, records/s)"
    )
    print("                                        wall clock    CPU time")
    rows = [("faust recovery, RocksDB (Kafka)", "faust"), ("raw aiokafka -> rocksdict", "raw")]
    if args.embedded:
        rows.append(("faust recovery, RocksDB (embedded)", "embedded"))
    for label, name in rows:
        wall, cpu = median(rates, f"{name}_wall"), median(rates, f"{name}_cpu")
        print(f"{label + ':':<38}{wall:>12,.0f}{cpu:>12,.0f}  {spread(rates, f'{name}_wall')}")
    ratio = median(rates, "faust_wall") / median(rates, "raw_wall")
    print(f"{'ratio faust/raw (Kafka, wall):':<38}{ratio:>12.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--restore-records", type=int, default=1_000_000)
    parser.add_argument("--restore-keys", type=int, default=100_000)
    parser.add_argument("--only", choices=["sum", "restore"])
    parser.add_argument(
        "--no-embedded", dest="embedded", action="store_false", help="Kafka cases only"
    )
    args = parser.parse_args(argv)
    bootstrap, started = bring_up_kafka()
    tmp = tempfile.mkdtemp(prefix="faust-bench-tables-")
    try:
        faust.worker.install_uvloop()
        if args.only in (None, "sum"):
            report_sum(args, asyncio.run(run_sum(args, bootstrap, tmp)))
        if args.only in (None, "restore"):
            report_restore(args, asyncio.run(run_restore(args, bootstrap, tmp)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if started:
            subprocess.run([sys.executable, str(REPO / "scripts" / "kafka"), "down"], check=False)


if __name__ == "__main__":
    main()
