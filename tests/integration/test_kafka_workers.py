"""Several worker processes on real Kafka: group_by, a SIGKILL, a join, a broker restart.

Every test checks the at-least-once promise from outside: each input event appears in
the output topic, per-key order is kept, and no committed offset ever passed an event
whose output was not yet written.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from faust.transport.partitioner import partition_for_key

from .workers import Cluster, first_seen_order

pytestmark = pytest.mark.timeout(600)


async def _wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.5)


async def test_group_by_pipeline_across_three_workers(tmp_path: Path, kafka_bootstrap: str) -> None:
    cluster = Cluster(tmp_path, kafka_bootstrap, group_by=True)
    await cluster.create_topics()
    workers = [cluster.start_worker() for _ in range(3)]
    try:
        await cluster.wait_assigned(workers)
        total = 3000
        await cluster.produce(total, keys=50)
        records = await cluster.read_output(total, timeout=180)
    finally:
        cluster.stop_all()
    seqs = {r["seq"] for r in records}
    assert seqs == set(range(total)), [w.output()[-2000:] for w in workers]
    # After group_by, a key lives on one repartition partition, chosen like Kafka's Java
    # client would from the key as the source topic encodes it (raw text, as in
    # faust-streaming), and is handled by one worker at a time.
    pids_per_partition: dict[int, set[int]] = {}
    for r in records:
        assert r["partition"] == partition_for_key(r["key"].encode(), 4), r
        pids_per_partition.setdefault(r["partition"], set()).add(r["pid"])
    assert len({pid for pids in pids_per_partition.values() for pid in pids}) >= 2
    for key, order in first_seen_order(records).items():
        assert order == sorted(order), key
    for worker in workers:
        assert worker.proc.returncode == 0, worker.output()[-3000:]


async def test_sigkill_and_join_lose_nothing(tmp_path: Path, kafka_bootstrap: str) -> None:
    cluster = Cluster(tmp_path, kafka_bootstrap)
    await cluster.create_topics()
    total = 100_000
    samples: list[dict[int, int]] = []
    progress = [0]
    stop_sampling = asyncio.Event()

    async def sample_commits() -> None:
        while not stop_sampling.is_set():
            try:
                samples.append(await cluster.committed())
            except Exception:  # the group may not exist yet
                pass
            await asyncio.sleep(0.5)

    workers = [cluster.start_worker() for _ in range(3)]
    sampler = asyncio.ensure_future(sample_commits())
    try:
        await cluster.produce(total)
        reader = asyncio.ensure_future(cluster.read_output(total, timeout=400, progress=progress))

        async def some_progress() -> bool:
            return progress[0] >= total // 3

        await _wait_for(some_progress, 180, "a third of the events to be processed")
        workers[1].kill()  # SIGKILL: no commit, no goodbye
        cluster.start_worker()  # and a new worker joins
        records = await reader
        # Every output exists, but the killed worker may have processed events it never
        # committed: its partitions wait out the session timeout, go to another worker,
        # are processed again from the committed offset, and committed there.
        source = await cluster.source_offsets()
        ends: dict[int, int] = {}
        for p, o in source:
            ends[p] = max(ends.get(p, -1), o + 1)

        async def caught_up() -> bool:
            return await cluster.committed() == ends

        await _wait_for(caught_up, 120, "the group to commit every partition to its end")
    finally:
        stop_sampling.set()
        await sampler
        cluster.stop_all()
    records = await cluster.read_output(total, timeout=60)
    processed = {(r["partition"], r["offset"]) for r in records}
    missing = set(source) - processed
    assert not missing, f"{len(missing)} events never processed, e.g. {sorted(missing)[:5]}"
    assert {r["seq"] for r in records} == set(range(total))
    for key, order in first_seen_order(records).items():
        assert order == sorted(order), f"key {key} out of order"
    # No committed offset ever passed an event whose output was not written first.
    for sample in samples:
        for partition, committed in sample.items():
            below = [o for (p, o) in source if p == partition and o < committed]
            assert all((partition, o) in processed for o in below)
    assert samples and max(samples[-1].values(), default=0) > 0
    assert await cluster.committed() == ends


async def test_broker_restart_mid_stream_loses_nothing(
    tmp_path: Path, kafka_bootstrap: str, kafka_script, kafka_is_external: bool
) -> None:
    if kafka_is_external:
        pytest.fail(
            "this test restarts the broker: run it against the script's Kafka "
            "(unset KAFKA_BOOTSTRAP_SERVERS)",
            pytrace=False,
        )
    cluster = Cluster(tmp_path, kafka_bootstrap)
    await cluster.create_topics()
    worker = cluster.start_worker()
    try:
        await cluster.produce(20_000)
        progress = [0]
        reader = asyncio.ensure_future(cluster.read_output(1000, timeout=60, progress=progress))
        records = await reader
        assert len({r["seq"] for r in records}) >= 1000
        # The worker is mid-stream (most of the 20,000 are still to come) when the
        # only broker goes away.
        stopped = kafka_script("stop-broker", "1", timeout=120)
        assert stopped.returncode == 0, stopped.stderr
        await asyncio.sleep(3)
        started = kafka_script("start-broker", "1", timeout=180)
        assert started.returncode == 0, started.stderr
        await cluster.produce(5000, start=20_000)
        records = await cluster.read_output(25_000, timeout=240)

        async def says_recovered() -> bool:
            return "Connection to Kafka is back" in worker.output()

        await _wait_for(says_recovered, 60, "the worker to report the connection back")
    finally:
        cluster.stop_all()
    output = worker.output()
    assert {r["seq"] for r in records} == set(range(25_000)), output[-3000:]
    assert worker.proc.returncode == 0, output[-3000:]
    # The outage is reported once, and its end once, not once per retry.
    assert output.count("Lost the connection to Kafka") == 1, output[-3000:]
    assert output.count("Connection to Kafka is back") == 1, output[-3000:]
    assert "[ERROR] Unable connect to node" not in output


async def test_static_member_restarting_keeps_its_partitions(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    cluster = Cluster(tmp_path, kafka_bootstrap)
    await cluster.create_topics()
    first = cluster.start_worker(instance_id="worker-a")
    other = cluster.start_worker(instance_id="worker-b")
    try:
        await cluster.wait_assigned([first, other])
        await asyncio.sleep(2)  # let the group settle after the second join

        def assignments(worker) -> list[str]:  # type: ignore[no-untyped-def]
            return [line for line in worker.output().splitlines() if line.startswith("ASSIGNED")]

        before = assignments(first)[-1]
        other_rebalances = len(assignments(other))
        first.kill()
        again = cluster.start_worker(instance_id="worker-a")  # back within the session
        try:
            await cluster.wait_assigned([again], timeout=40)
        except AssertionError:
            raise AssertionError(again.output()[-4000:]) from None
        # Same partitions as before, and the other member saw no rebalance at all.
        assert assignments(again)[-1] == before
        await asyncio.sleep(2)
        assert len(assignments(other)) == other_rebalances
        await cluster.produce(200)
        records = await cluster.read_output(200, timeout=60)
        assert {r["seq"] for r in records} == set(range(200))
    finally:
        cluster.stop_all()


async def test_a_rebalance_is_logged_as_a_rebalance(tmp_path: Path, kafka_bootstrap: str) -> None:
    cluster = Cluster(tmp_path, kafka_bootstrap)
    cluster.loglevel = "info"
    await cluster.create_topics()
    first = cluster.start_worker()
    try:
        await cluster.wait_assigned([first])
        await cluster.produce(500)
        second = cluster.start_worker()  # joins: the group rebalances
        await cluster.wait_assigned([first, second])
        await cluster.produce(500, start=500)
        records = await cluster.read_output(1000, timeout=120)
        # Long enough for a connection log to end an outage (it waits for quiet).
        await asyncio.sleep(5)
    finally:
        cluster.stop_all()
    assert {r["seq"] for r in records} == set(range(1000))
    for worker in (first, second):
        output = worker.output()
        assert worker.proc.returncode == 0, output[-3000:]
        assert "Lost the connection" not in output, output[-3000:]
        assert "Connection to Kafka is back" not in output, output[-3000:]
        assert " -0.0" not in output and "after -" not in output, output[-3000:]
        # One line per rebalance, naming what moved, instead of aiokafka's steps.
        assert "Rebalanced group" in output, output[-3000:]
        assert "Setting newly assigned partitions" not in output, output[-3000:]
    assert f"gained {cluster.source}[" in second.output()
    lost = [line for line in first.output().splitlines() if f"lost {cluster.source}[" in line]
    assert len(lost) == 1, first.output()[-3000:]
