"""A stateless agent over JSON Records on the embedded broker, beside a plain loop.

    python -m bench.embedded [--events 200000] [--runs 3]

The data (about 100-byte JSON values, 1,000 keys, 4 partitions) is written to the broker
before timing starts. Faust's figure covers the whole path: fetch, decode into Records,
deliver to the stream, the agent's loop, acks and offset tracking. The baseline is a
plain Python loop over the same bytes that decodes each value with orjson and counts per
key: what a hand-written consumer loop costs before any framework.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections import Counter

import orjson

import faust


class Reading(faust.Record, serializer="json"):
    sensor: str
    value: float
    unit: str
    seq: int


def make_data(events: int, keys: int = 1000) -> list[tuple[bytes, bytes]]:
    return [
        (
            f"sensor-{i % keys:04d}".encode(),
            orjson.dumps(
                {"sensor": f"sensor-{i % keys:04d}", "value": i * 0.5, "unit": "celsius", "seq": i}
            ),
        )
        for i in range(events)
    ]


def baseline(data: list[tuple[bytes, bytes]]) -> float:
    counts: Counter[str] = Counter()
    start = time.process_time()
    for _key, value in data:
        counts[orjson.loads(value)["sensor"]] += 1
    elapsed = time.process_time() - start
    assert sum(counts.values()) == len(data)
    return len(data) / elapsed


async def faust_run(data: list[tuple[bytes, bytes]], run: int) -> float:
    app = faust.App(f"bench-embedded-{run}", topic_partitions=4)
    topic = app.topic("readings", key_type=str, value_type=Reading, partitions=4)
    counts: Counter[str] = Counter()
    total = len(data)
    done = asyncio.Event()
    seen = 0

    @app.agent(topic)
    async def count(stream):
        nonlocal seen
        async for reading in stream:
            counts[reading.sensor] += 1
            seen += 1
            if seen == total:
                done.set()

    await topic.declare()
    for key, value in data:
        app.transport.broker.append("readings", key, value, None, 0.0, None)
    start = time.process_time()
    await app.start()
    faust.worker.tune_gc()  # as the worker does after start-up
    await done.wait()
    elapsed = time.process_time() - start
    await app.stop()
    assert sum(counts.values()) == total
    return total / elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    data = make_data(args.events)
    faust.worker.install_uvloop()
    faust_rates, base_rates = [], []
    for run in range(args.runs):
        base_rates.append(baseline(data))
        faust_rates.append(asyncio.run(faust_run(data, run)))
    f, b = statistics.median(faust_rates), statistics.median(base_rates)
    print(f"events: {args.events:,}  runs: {args.runs} (median)")
    print(f"faust agent (embedded broker):{f:>12,.0f} events/s")
    print(f"plain loop (orjson + count):   {b:>12,.0f} events/s")
    print(f"ratio faust/plain:             {f / b:>12.2f}")


if __name__ == "__main__":
    main()
