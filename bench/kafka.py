"""A stateless agent on real Kafka, beside a raw aiokafka loop over the same topic.

    python -m bench.kafka [--events 200000] [--runs 3]

Uses ``KAFKA_BOOTSTRAP_SERVERS`` if set, else brings up Kafka with ``scripts/kafka up``
(and takes it down again). The data (200,000 JSON values of about 100 bytes, 1,000 keys,
4 partitions) is produced once. Each run then reads the whole topic twice in the same
process: once with a raw aiokafka loop that consumes, decodes with orjson and counts per
key, once with a Faust app whose agent decodes into Records and counts per key. Rates are
events per CPU-second of this process, from the first event to the last (the broker's
own CPU and the consumer group's join are not counted).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

import faust

from .embedded import Reading

REPO = Path(__file__).resolve().parents[1]


async def produce(bootstrap: str, topic: str, events: int, keys: int = 1000) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 4, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=256 * 1024
    )
    await producer.start()
    try:
        for i in range(events):
            key = f"sensor-{i % keys:04d}"
            value = orjson.dumps({"sensor": key, "value": i * 0.5, "unit": "celsius", "seq": i})
            await producer.send(topic, key=key.encode(), value=value)
        await producer.flush()
    finally:
        await producer.stop()


async def raw_loop(bootstrap: str, topic: str, events: int) -> float:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    counts: Counter[str] = Counter()
    seen = 0
    start = None
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(4)])
        await consumer.seek_to_beginning()
        while seen < events:
            batch = await consumer.getmany(timeout_ms=1000, max_records=2000)
            if batch and start is None:
                start = time.process_time()
            for messages in batch.values():
                for message in messages:
                    counts[orjson.loads(message.value)["sensor"]] += 1
                seen += len(messages)
        elapsed = time.process_time() - (start or 0.0)
    finally:
        await consumer.stop()
    return events / elapsed


class FirstToLast:
    """CPU seconds of this process from the first of ``events`` events to the last.

    An agent calls :meth:`seen` as it takes each event; ``done`` is set at the last one
    (whoever waits on it resumes once the agent has finished that event and yields).
    :meth:`first` starts the clock earlier, where an event is seen before the agent
    (the source stream of a ``group_by``).
    """

    def __init__(self, events: int) -> None:
        self.events = events
        self.count = 0
        self.start: float | None = None
        self.done = asyncio.Event()

    def first(self) -> None:
        if self.start is None:
            self.start = time.process_time()

    def seen(self) -> None:
        if self.start is None:
            self.start = time.process_time()
        self.count += 1
        if self.count == self.events:
            self.done.set()

    def elapsed(self) -> float:
        return time.process_time() - (self.start or 0.0)


#: Called with each app a case starts, right after its start (bench/sensors.py renders
#: its /metrics from there).
ON_APP_STARTED: Callable[[faust.App], None] | None = None


async def run_until_done(app: faust.App, clock: FirstToLast, timeout: float | None = None) -> None:
    """Start ``app`` (its GC tuned as the worker does after start-up) and wait until
    ``clock`` has seen its last event."""
    await app.start()
    if ON_APP_STARTED is not None:
        ON_APP_STARTED(app)
    faust.worker.tune_gc()
    await asyncio.wait_for(clock.done.wait(), timeout)


async def produce_batches(
    bootstrap: str, topic: str, records: Iterable[tuple[int, bytes, bytes]]
) -> int:
    """Write ``(partition, key, value)`` records through 1 MiB batches per partition
    (aiokafka's batch API: fast enough for millions of records); returns the count."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_batch_size=1024 * 1024)
    await producer.start()
    count = 0
    try:
        batches: dict[int, Any] = {}
        pending = []
        for partition, key, value in records:
            count += 1
            batch = batches.get(partition)
            if batch is None:
                batch = batches[partition] = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:
                batch.close()
                pending.append(await producer.send_batch(batch, topic, partition=partition))
                batch = batches[partition] = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)
        for partition, batch in batches.items():
            batch.close()
            pending.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return count


async def faust_run(bootstrap: str, topic_name: str, events: int) -> float:
    app = faust.App(
        f"bench-kafka-{uuid.uuid4().hex[:8]}",
        broker=f"kafka://{bootstrap}",
        topic_partitions=4,
    )
    topic = app.topic(topic_name, key_type=str, value_type=Reading, partitions=4)
    counts: Counter[str] = Counter()
    clock = FirstToLast(events)

    @app.agent(topic)
    async def count(stream):
        async for reading in stream:
            clock.seen()
            counts[reading.sensor] += 1

    await run_until_done(app, clock)
    elapsed = clock.elapsed()
    await app.stop()
    return events / elapsed


def bring_up_kafka() -> tuple[str, bool]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        return external, False
    script = [sys.executable, str(REPO / "scripts" / "kafka")]
    already_up = subprocess.run([*script, "status"], capture_output=True).returncode == 0
    up = subprocess.run([*script, "up"], capture_output=True, text=True, check=False)
    if up.returncode != 0:
        raise SystemExit(f"could not start Kafka with scripts/kafka up:\n{up.stderr}")
    return up.stdout.strip().splitlines()[-1], not already_up


async def main_async(args: argparse.Namespace, bootstrap: str) -> tuple[list[float], list[float]]:
    topic = f"bench-readings-{uuid.uuid4().hex[:8]}"
    await produce(bootstrap, topic, args.events)
    raw_rates, faust_rates = [], []
    for _ in range(args.runs):
        raw_rates.append(await raw_loop(bootstrap, topic, args.events))
        faust_rates.append(await faust_run(bootstrap, topic, args.events))
    return raw_rates, faust_rates


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    bootstrap, started = bring_up_kafka()
    try:
        faust.worker.install_uvloop()
        raw_rates, faust_rates = asyncio.run(main_async(args, bootstrap))
    finally:
        if started:
            subprocess.run([sys.executable, str(REPO / "scripts" / "kafka"), "down"], check=False)
    raw, fst = statistics.median(raw_rates), statistics.median(faust_rates)
    print(f"events: {args.events:,}  runs: {args.runs} (median, events per CPU-second)")
    print(f"faust agent (Kafka):             {fst:>12,.0f} events/s")
    print(f"raw aiokafka loop (orjson+count): {raw:>11,.0f} events/s")
    print(f"ratio faust/raw:                  {fst / raw:>11.2f}")


if __name__ == "__main__":
    main()
