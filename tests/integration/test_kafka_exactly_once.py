"""processing_guarantee='exactly_once' on real Kafka: each event's effects exactly once.

The app (``table_workers.TABLE_WORKER_APP``) counts events per key in a RocksDB table
and writes, for every event, the new count and the event's sequence number to an output
topic. Every test reads the output and the changelog with ``read_committed`` and checks
(``check_exactly_once``): every sequence number once, every count the exact rank of its
event among its key's events, every final table count exact. The faults: an agent that
raises midway through an event, a send that fails, a worker paused (SIGSTOP) past its
session timeout while its partitions move (fencing), and the broker restarted while the
workers commit. Workers SIGKILLed at random, ten times over, are the storm of
``test_chaos.py`` run under exactly-once.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from .conftest import OwnKafka
from .table_workers import TableCluster, own_every_partition, wait_until
from .test_chaos import chaos_run, check_exactly_once, stop_cleanly, wait_committed
from .test_kafka_transport import (
    WAIT,
    AppFactory,
    kafka_app,  # noqa: F401 - the fixture
    unique,
)
from .workers import Worker, read_topic

pytestmark = pytest.mark.kafka

KEYS = 50


async def processed(cluster: TableCluster, total: int, timeout: float) -> None:
    """Wait until the committed output holds every one of ``total`` sequence numbers
    and the group committed the whole source."""

    async def done() -> bool:
        return len({o["seq"] for o in await cluster.output()}) >= total

    await wait_until(done, timeout, f"{total} events in the committed output", interval=1.0)
    await wait_committed(cluster, timeout)


async def start_workers(cluster: TableCluster, count: int) -> list[Worker]:
    """Start ``count`` workers and wait until together they own every partition."""
    workers = [cluster.start_worker(f"w{i}") for i in range(count)]
    await wait_until(
        lambda: asyncio.sleep(0, own_every_partition(workers, cluster.partitions)),
        90,
        f"{count} worker(s) to own every partition",
    )
    return workers


def eos_cluster(tmp_path: Path, bootstrap: str, **env: str) -> TableCluster:
    cluster = TableCluster(
        tmp_path, bootstrap, partitions=4, guarantee="exactly_once", env=dict(env)
    )
    cluster.loglevel = "info"
    return cluster


@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    "fault", [{"TW_RAISE_AT": "700,1900"}, {"TW_BAD_SEND_AT": "900,2100"}], ids=["raise", "send"]
)
async def test_aborted_transactions_leave_no_trace(
    tmp_path: Path, kafka_bootstrap: str, fault: dict[str, str]
) -> None:
    """An agent raising midway through an event (after it changed the table and sent
    its output), or a send that fails: the open transaction is aborted, the worker goes
    back to its last commit, and what it had done since is not in the committed output
    or the table."""
    cluster = eos_cluster(tmp_path, kafka_bootstrap, **fault)
    await cluster.create_topics(cluster.partitions)
    with chaos_run(0, cluster):
        (worker,) = await start_workers(cluster, 1)
        per_key = await cluster.produce(3_000, KEYS)
        await processed(cluster, 3_000, 120)
        log = worker.output()
        assert log.count("RAISING") + log.count("BAD SEND") == 2, log[-3000:]
        assert "aborting the open transactions" in log, log[-3000:]
        print(await check_exactly_once(cluster, 3_000, per_key))
        stop_cleanly(cluster, [worker])


@pytest.mark.timeout(120)
async def test_an_event_that_always_fails_stops_the_worker_naming_it(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    """Each failure aborts and goes back, so the event comes again; after ``retries``
    more failures (agent_retries, 3) the worker stops with exit code 1, naming where
    the event is, instead of going back forever with every partition held up. What it
    committed before is exact, and nothing of the failing event is committed."""
    cluster = eos_cluster(tmp_path, kafka_bootstrap, TW_RAISE_ALWAYS_AT="1500")
    await cluster.create_topics(cluster.partitions)
    with chaos_run(0, cluster):
        worker = cluster.start_worker("w0")
        await cluster.produce(3_000, KEYS)
        assert worker.proc.wait(timeout=90) == 1, worker.output()[-3000:]
        log = worker.output()
        assert log.count("always failing at 1500") >= 4, log[-3000:]
        assert "for the 4th time on topic=" in log and "Fix the cause and restart" in log, log[
            -3000:
        ]
        outputs = await cluster.output()
        assert 1500 not in {o["seq"] for o in outputs}
        twice = [seq for seq, n in Counter(o["seq"] for o in outputs).items() if n > 1]
        assert not twice, f"outputs committed twice: {twice[:10]}"


@pytest.mark.timeout(240)
async def test_paused_worker_is_fenced_after_its_partitions_move(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    """A worker paused (SIGSTOP) past its session timeout while it processes: the other
    worker takes its partitions over. Resumed, the paused one still holds events and an
    open transaction, but it cannot commit them: its producers were fenced."""
    cluster = eos_cluster(tmp_path, kafka_bootstrap)
    cluster.event_delay = 0.001
    await cluster.create_topics(cluster.partitions)
    per_key: Counter[str] = Counter()
    with chaos_run(0, cluster):
        workers = await start_workers(cluster, 2)
        per_key.update(await cluster.produce(4_000, KEYS))
        await asyncio.sleep(1.0)
        workers[0].pause()
        # Past the session timeout (6 s): the group moves its partitions to worker 1.
        per_key.update(await cluster.produce(2_000, KEYS, start=4_000))
        await asyncio.sleep(12.0)
        workers[0].resume()
        per_key.update(await cluster.produce(2_000, KEYS, start=6_000))
        await processed(cluster, 8_000, 150)
        print(await check_exactly_once(cluster, 8_000, per_key))
        stop_cleanly(cluster, workers)


@pytest.mark.timeout(300)
async def test_broker_restart_while_committing(tmp_path: Path, own_kafka: OwnKafka) -> None:
    """The (only) broker SIGKILLed while the workers process and commit, then started
    again: the commits in flight fail, the workers abort and go back, and the committed
    output is still exact."""
    bootstrap = own_kafka.up()
    cluster = eos_cluster(tmp_path, bootstrap)
    cluster.event_delay = 0.0005
    await cluster.create_topics(cluster.partitions)
    per_key: Counter[str] = Counter()
    with chaos_run(0, cluster):
        workers = await start_workers(cluster, 2)
        per_key.update(await cluster.produce(6_000, KEYS))
        await asyncio.sleep(1.5)
        own_kafka.run("stop-broker", "1", "--kill")
        await asyncio.sleep(3.0)
        own_kafka.run("start-broker", "1")
        per_key.update(await cluster.produce(2_000, KEYS, start=6_000))
        await processed(cluster, 8_000, 200)
        print(await check_exactly_once(cluster, 8_000, per_key))
        stop_cleanly(cluster, workers)


async def test_an_agent_asking_another_agent_is_answered(
    kafka_app: AppFactory,  # noqa: F811
    kafka_bootstrap: str,
) -> None:
    """``ask()`` from inside an agent: the request and the reply are outside the
    transactions (a reply visible only at the asker's commit, which waits for the asker,
    would never come), so the asking agent is answered and the worker goes on
    committing; what the asker sends with the answer is in its transaction."""
    app = kafka_app(unique("eos-ask"), processing_guarantee="exactly_once")
    requests = app.topic(unique("eos-requests"), key_type=str, value_type=int)
    answers = app.topic(unique("eos-answers"), key_type=str, value_type=int)

    @app.agent(value_type=int)
    async def double(stream: Any) -> AsyncIterator[int]:
        async for value in stream:
            yield value * 2

    @app.agent(requests)
    async def ask_and_send(stream: Any) -> None:
        async for event in stream.events():
            doubled = await double.ask(event.value, timeout=WAIT)
            await answers.send(key=event.key, value=doubled)

    await app.start()
    for i in range(20):
        await requests.send(key=f"k{i}", value=i)
    deadline = time.monotonic() + WAIT
    got: dict[str, int] = {}
    while len(got) < 20 and time.monotonic() < deadline:
        records = await read_topic(kafka_bootstrap, answers.topics[0], "read_committed")
        got = {key.decode(): orjson.loads(value) for _, _, key, value in records}
        await asyncio.sleep(0.5)
    assert got == {f"k{i}": 2 * i for i in range(20)}
