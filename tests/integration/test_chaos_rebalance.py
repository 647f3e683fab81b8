"""Rebalances at the worst moments, on real Kafka: while an agent has a full backlog, and
while tables are being recovered. Each ends in the right state, checked from outside
with plain aiokafka clients.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from .table_workers import (
    TableCluster,
    end_offsets,
    recoveries,
    table_from_changelog,
    wait_until,
)
from .workers import Cluster, Worker, partitions_of

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(300)]


class OutputWatcher:
    """Reads a worker app's output topic as it grows, counting records per worker pid."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.by_pid: Counter[int] = Counter()
        self.seqs: set[int] = set()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> OutputWatcher:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, auto_offset_reset="earliest")
        await consumer.start()
        partitions = await partitions_of(consumer, self.topic)
        consumer.assign([TopicPartition(self.topic, p) for p in partitions])
        await consumer.seek_to_beginning()
        self._task = asyncio.ensure_future(self._read(consumer))
        return self

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        try:
            while True:
                for messages in (await consumer.getmany(timeout_ms=200)).values():
                    for m in messages:
                        record = orjson.loads(m.value)
                        self.by_pid[record["pid"]] += 1
                        self.seqs.add(record["seq"])
        finally:
            await consumer.stop()

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


def _assignments(worker: Worker) -> list[str]:
    return [line for line in worker.output().splitlines() if line.startswith("ASSIGNED")]


async def test_a_rebalance_while_an_agent_has_a_full_backlog_keeps_its_partitions_moving(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    # The agent takes ~1 ms per event, so its queue is full and the fetch loop waits for
    # room when the second worker joins and every partition is revoked.
    total = 30_000
    cluster = Cluster(tmp_path, kafka_bootstrap)
    await cluster.create_topics(partitions=4)
    await cluster.produce(total, keys=400)
    first = cluster.start_worker(event_delay=0.001)
    try:
        async with OutputWatcher(kafka_bootstrap, cluster.out) as output:
            pid = first.proc.pid

            async def first_is_busy() -> bool:
                return output.by_pid[pid] >= 2000

            await wait_until(first_is_busy, 60, "the first worker to process its backlog")
            second = cluster.start_worker(event_delay=0.001)
            await cluster.wait_assigned([first, second], timeout=60)
            # The rebalance is over: from here the first worker's own partitions must
            # move within seconds (before the fix it processed nothing, for good).
            await asyncio.sleep(2)
            before = output.by_pid[pid]

            async def first_moves_again() -> bool:
                return output.by_pid[pid] >= before + 1000

            try:
                await wait_until(first_moves_again, 15, "the first worker's partitions to move")
            except AssertionError:
                raise AssertionError(
                    f"first worker stuck at {output.by_pid[pid]} records "
                    f"(assignments {_assignments(first)}):\n{first.output()[-3000:]}"
                ) from None

            async def everything_processed() -> bool:
                return len(output.seqs) == total

            await wait_until(everything_processed, 90, "every event to be processed")
            assert output.by_pid[second.proc.pid] > 0
    finally:
        cluster.stop_all()
    for worker in cluster.workers:
        assert worker.proc.returncode == 0, worker.output()[-3000:]


async def test_rebalances_during_a_slow_table_recovery_leave_exact_counts(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    cluster = TableCluster(tmp_path, kafka_bootstrap)
    await cluster.create_topics()
    keys = 400
    truth = Counter(await cluster.produce(8000, keys))
    writer = cluster.start_worker("writer")
    try:
        ends = await end_offsets(kafka_bootstrap, cluster.source, range(4))

        async def counted() -> bool:
            return await cluster.committed() == ends

        await wait_until(counted, 90, "the first worker to count and commit every event")
    finally:
        cluster.stop_all()
    assert writer.proc.returncode == 0, writer.output()[-3000:]

    # More events wait while a fresh worker (empty datadir) restores the whole table,
    # 3 s per partition; a second worker joins and leaves during that recovery.
    truth.update(await cluster.produce(4000, keys))
    restorer = cluster.start_worker("restorer", restore_delay=3.0)
    try:
        await cluster.wait_assigned([restorer], timeout=60)
        visitor = cluster.start_worker("visitor", restore_delay=3.0)
        await cluster.wait_assigned([visitor], timeout=60)
        assert visitor.stop() == 0, visitor.output()[-3000:]
        lines = restorer.output().splitlines()
        first_recovered = next(
            (i for i, line in enumerate(lines) if line.startswith("RECOVERED")), len(lines)
        )
        assigned_before = [line for line in lines[:first_recovered] if line.startswith("ASSIGNED")]
        assert len(assigned_before) >= 2, (
            "the rebalance came after the recovery, so this run tested nothing; "
            f"worker output:\n{restorer.output()[-3000:]}"
        )

        async def exact() -> bool:
            return await table_from_changelog(kafka_bootstrap, cluster.changelog) == truth

        try:
            await wait_until(exact, 90, "the changelog to hold the true counts")
        except AssertionError:
            table = await table_from_changelog(kafka_bootstrap, cluster.changelog)
            wrong = {k: (table.get(k), n) for k, n in truth.items() if table.get(k) != n}
            raise AssertionError(
                f"{len(wrong)} of {keys} keys wrong (changelog, truth), e.g. "
                f"{sorted(wrong.items())[:5]}:\n{restorer.output()[-3000:]}"
            ) from None
        # Ready was announced once, after the recovery that the worker finished.
        output = restorer.output().splitlines()
        ready = [i for i, line in enumerate(output) if line.startswith("READY")]
        recovered = [i for i, line in enumerate(output) if line.startswith("RECOVERED")]
        assert len(ready) == 1 and recovered and recovered[0] < ready[0], output[-40:]
        assert recoveries(restorer)[0]["active"] == [0, 1, 2, 3]
    finally:
        cluster.stop_all()
    # Counted once each: the output's highest count per key is the truth too.
    highest: dict[str, int] = {}
    for record in await cluster.output():
        highest[record["key"]] = max(highest.get(record["key"], 0), record["count"])
    assert highest == truth
