"""Chaos: workers SIGKILLed and restarted, and a broker of three SIGKILLed, mid-stream.

The app under test (``table_workers.TABLE_WORKER_APP``) counts events per key in a
changelog-backed RocksDB table and, for every event, writes the new count with the
event's unique sequence number to an output topic. Each test checks from outside, with
plain aiokafka clients, what Faust promises under at-least-once:

* every sequence number reaches the output at least once;
* a table count is never below the truth: the count written for an event is at least
  the event's rank among its key's events (its key's events live in one partition, in
  offset order), and the table's final count per key, as its changelog says, is at least
  the number of that key's events. A count may be higher: events processed again after a
  kill are counted again;
* every source partition makes progress: none goes more than ``SILENCE_LIMIT`` seconds
  without a new event processed while it has events waiting.

The SIGKILL storm runs again with ``processing_guarantee='exactly_once'``, checked
(reading with ``isolation_level='read_committed'``) for what that promises: every
sequence number in the output exactly once, every count written the exact rank of its
event, and every final table count exact; and no partition without committed progress
for more than ``SILENCE_LIMIT_EXACTLY_ONCE`` seconds.

The faults are random, from a seed printed with every failure; ``FAUST_CHAOS_SEED=<seed>``
replays the same choices (the timing of the processes still varies).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from .conftest import OwnKafka
from .table_workers import (
    OutputWatch,
    TableCluster,
    end_offsets,
    own_every_partition,
    read_topic,
    table_from_changelog,
    wait_until,
)
from .workers import Worker

pytestmark = pytest.mark.chaos

# Longer than a takeover takes: the session timeout (6 s) for the group to notice a
# SIGKILL, a rebalance, the new owner's recovery from its standby, on a busy 2-core box.
SILENCE_LIMIT = 30.0
# Under exactly-once progress shows only when a transaction commits: nothing a killed
# worker did since its last commit shows, and its successor shows progress only with its
# first commit after its recovery. When the kills hit the owner of the same partitions
# three times in a row (as seed 581468448 does), each costs the session timeout (6 s), a
# rebalance (4-5 s) and a recovery (about 4 s with STORM_RESTORE_DELAY) before anything
# of those partitions commits: up to 29 s measured in other runs, over 40 s in that one.
SILENCE_LIMIT_EXACTLY_ONCE = 60.0
WORKERS = 3


def chaos_seed() -> int:
    """The seed of this run: FAUST_CHAOS_SEED, or a fresh one."""
    raw = os.environ.get("FAUST_CHAOS_SEED", "").strip()
    seed = int(raw) if raw else random.randrange(2**32)
    print(f"chaos seed: {seed} (FAUST_CHAOS_SEED={seed} replays it)", flush=True)
    return seed


def explain(exc: BaseException, seed: int, cluster: TableCluster) -> None:
    """Note on ``exc`` the seed and the last lines of each worker still running; write
    every worker's whole log (with a dump of its asyncio tasks if it was running) next
    to the test's data."""
    exc.add_note(f"chaos seed: {seed} (FAUST_CHAOS_SEED={seed} replays it)")
    running = [w for w in cluster.workers if w.proc.poll() is None]
    for worker in running:
        exc.add_note(
            f"--- worker pid {worker.proc.pid} (running), ends:\n{''.join(worker.lines[-6:])}"
        )
        # The worker prints every asyncio task's stack: what a stuck one waits for.
        worker.proc.send_signal(signal.SIGUSR1)
    if running:
        time.sleep(1.0)
    for n, worker in enumerate(cluster.workers):
        (cluster.tmp_path / f"worker-{n}-pid-{worker.proc.pid}.log").write_text(worker.output())
    exc.add_note(f"every worker's log: {cluster.tmp_path}/worker-*.log")


@contextlib.contextmanager
def explained(seed: int, cluster: TableCluster) -> Iterator[None]:
    """Explain a failure in the block (see ``explain``)."""
    try:
        yield
    except BaseException as exc:
        explain(exc, seed, cluster)
        raise


@contextlib.contextmanager
def chaos_run(seed: int, cluster: TableCluster) -> Iterator[None]:
    """Explain a failure (as the workers were then); stop every worker at the end."""
    try:
        with explained(seed, cluster):
            yield
    finally:
        cluster.stop_all()


async def sleep_watching(watch: OutputWatch, seconds: float) -> None:
    """Sleep, failing as soon as a partition has been silent too long."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        watch.check(SILENCE_LIMIT_EXACTLY_ONCE if watch.exactly_once else SILENCE_LIMIT)
        await asyncio.sleep(min(0.5, left))


async def drain(watch: OutputWatch, total: int, timeout: float) -> None:
    """Wait until all ``total`` sequence numbers are in the output."""
    deadline = time.monotonic() + timeout
    while len(watch.seqs) < total:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{total - len(watch.seqs)} of {total} events still unprocessed after "
                f"{timeout:.0f} s; silences now: {watch.silences()}"
            )
        await sleep_watching(watch, 0.5)


async def wait_committed(cluster: TableCluster, timeout: float) -> None:
    """Wait until the group has committed the whole source topic."""
    ends = await end_offsets(cluster.bootstrap, cluster.source, range(cluster.partitions))

    async def all_committed() -> bool:
        try:
            return await cluster.committed() == ends
        except Exception:  # e.g. the coordinator is moving; ask again
            return False

    await wait_until(all_committed, timeout, "the group to commit the whole source topic")


def stop_cleanly(cluster: TableCluster, workers: list[Worker]) -> None:
    """Stop the workers gracefully (all at once) and check each exits with 0."""
    for worker in workers:
        worker.interrupt()
    for worker in workers:
        code = worker.stop()
        assert code == 0, f"worker {worker.proc.pid} exited with {code}:\n{worker.output()[-3000:]}"


async def ranks(cluster: TableCluster, total: int) -> dict[tuple[int, int], int]:
    """The truth, from the source topic (which must hold ``total`` events): each event's
    rank among its key's events (one partition, offset order), by (partition, offset)."""
    source = await read_topic(cluster.bootstrap, cluster.source)
    assert len(source) == total, f"the source topic holds {len(source)} events, sent {total}"
    rank: dict[tuple[int, int], int] = {}
    seen: Counter[bytes | None] = Counter()
    for partition, offset, key, _ in sorted(source):
        seen[key] += 1
        rank[(partition, offset)] = seen[key]
    return rank


async def check_at_least_once(cluster: TableCluster, total: int, per_key: dict[str, int]) -> str:
    """Assert every event was processed and no count is below the truth; returns a
    summary of the run for the log."""
    rank = await ranks(cluster, total)
    outputs = await cluster.output()
    missing = set(range(total)) - {o["seq"] for o in outputs}
    assert not missing, f"{len(missing)} sequence numbers never processed: {sorted(missing)[:10]}"
    low = [o for o in outputs if o["count"] < rank[(o["partition"], o["offset"])]]
    assert not low, (
        f"{len(low)} outputs say a count below the number of their key's events so far "
        "(an increment was lost), e.g. "
        + "; ".join(
            f"{o['key']}={o['count']} at its event #{rank[(o['partition'], o['offset'])]} "
            f"(partition {o['partition']} offset {o['offset']}, pid {o['pid']})"
            for o in low[:5]
        )
    )
    final = await table_from_changelog(cluster.bootstrap, cluster.changelog)
    under = {k: (final.get(k), n) for k, n in per_key.items() if final.get(k, 0) < n}
    assert not under, (
        f"{len(under)} of {len(per_key)} keys end below their number of events "
        f"(key: (final count, events)): {dict(sorted(under.items())[:10])}"
    )
    over = sum(final[k] - n for k, n in per_key.items())
    return (
        f"{len(outputs)} outputs for {total} events ({len(outputs) - total} processed again); "
        f"final counts {over} above the input in total"
    )


async def check_exactly_once(cluster: TableCluster, total: int, per_key: dict[str, int]) -> str:
    """Assert, reading committed transactions only, that every event's effects are
    there exactly once: one output per sequence number, each output's count the exact
    rank of its event among its key's events, and every final table count exact."""
    rank = await ranks(cluster, total)
    outputs = await cluster.output()
    times = Counter(o["seq"] for o in outputs)
    missing = set(range(total)) - set(times)
    assert not missing, f"{len(missing)} sequence numbers never processed: {sorted(missing)[:10]}"
    twice = {seq: n for seq, n in times.items() if n > 1}
    assert not twice, (
        f"{len(twice)} sequence numbers are in the committed output more than once "
        f"(seq: times), e.g. {dict(sorted(twice.items())[:10])}"
    )
    wrong = [o for o in outputs if o["count"] != rank[(o["partition"], o["offset"])]]
    assert not wrong, (
        f"{len(wrong)} committed outputs carry a count other than their event's rank "
        "among its key's events, e.g. "
        + "; ".join(
            f"{o['key']}={o['count']} at its event #{rank[(o['partition'], o['offset'])]} "
            f"(partition {o['partition']} offset {o['offset']}, pid {o['pid']})"
            for o in wrong[:5]
        )
    )
    final = await table_from_changelog(cluster.bootstrap, cluster.changelog, "read_committed")
    off = {k: (final.get(k), n) for k, n in per_key.items() if final.get(k) != n}
    assert not off, (
        f"{len(off)} of {len(per_key)} keys end with a count other than their number of "
        f"events (key: (final count, events)): {dict(sorted(off.items())[:10])}"
    )
    return f"{len(outputs)} committed outputs for {total} events, every count exact"


# -- a. SIGKILL storm: three workers, each killed and restarted at random


STORM_KILLS = 10
STORM_EVENTS = 100_000  # sent in STORM_KILLS bursts, one before each kill
STORM_KEYS = 600
STORM_PARTITIONS = 6
# 1 ms of I/O per event: with a kill every ~10 s, three workers fall behind the bursts
# (by 5,000-20,000 events in a run on a 2-core box), so from the second kill on every
# rebalance finds the agents' queues full, as in workers that are behind.
STORM_EVENT_DELAY = 0.001
# Every changelog read waits this long first (as a big table or a slow broker makes it), so
# recoveries last long enough for the next rebalance to land in one.
STORM_RESTORE_DELAY = 1.0


@pytest.mark.timeout(290)
@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
async def test_sigkill_storm_loses_nothing_and_never_stalls(
    tmp_path: Path, kafka_bootstrap: str, guarantee: str
) -> None:
    """At least once: nothing lost. Exactly once: every effect once (read_committed)."""
    seed = chaos_seed()
    rng = random.Random(seed)
    cluster = TableCluster(
        tmp_path,
        kafka_bootstrap,
        partitions=STORM_PARTITIONS,
        event_delay=STORM_EVENT_DELAY,
        guarantee=guarantee,
    )
    cluster.loglevel = "info"
    await cluster.create_topics(cluster.partitions)
    slots = [
        cluster.start_worker(f"worker-{i}", restore_delay=STORM_RESTORE_DELAY)
        for i in range(WORKERS)
    ]
    per_key: Counter[str] = Counter()
    with chaos_run(seed, cluster):

        async def settled() -> bool:
            return own_every_partition(slots, cluster.partitions)

        await wait_until(settled, 90, "three workers to own every partition")
        watching = OutputWatch(
            cluster.bootstrap, cluster.out, cluster.source, cluster.isolation_level
        )
        async with watching as watch:
            burst = STORM_EVENTS // STORM_KILLS
            kills: list[tuple[int, int, int]] = []  # (slot, events sent, events processed)
            for n in range(STORM_KILLS):
                per_key.update(
                    await cluster.produce(burst, STORM_KEYS, chunk=burst, start=n * burst)
                )
                await sleep_watching(watch, rng.uniform(8.0, 12.0))
                slot = rng.randrange(WORKERS)
                kills.append((slot, (n + 1) * burst, len(watch.seqs)))
                slots[slot].kill()  # SIGKILL: no flush, no commit, no goodbye
                # On the same datadir, as a restarted machine would.
                slots[slot] = cluster.start_worker(f"worker-{slot}", STORM_RESTORE_DELAY)
            print("kills (worker, events sent, events processed):", kills, flush=True)
            await drain(watch, STORM_EVENTS, timeout=150)
            longest = {p: round(s, 1) for p, s in sorted(watch.longest.items())}
            print("longest silence per partition (s):", longest, flush=True)
        await wait_committed(cluster, 60)
        stop_cleanly(cluster, slots)
    with explained(seed, cluster):
        if guarantee == "exactly_once":
            print(await check_exactly_once(cluster, STORM_EVENTS, per_key), flush=True)
        else:
            print(await check_at_least_once(cluster, STORM_EVENTS, per_key), flush=True)


# -- b. three brokers, replication factor 3: the group coordinator SIGKILLed and restarted


BROKERS_EVENTS = 40_000
BROKERS_KEYS = 400


@pytest.mark.timeout(290)
async def test_broker_sigkill_in_three_broker_cluster_loses_nothing(
    tmp_path: Path, own_kafka: OwnKafka
) -> None:
    seed = chaos_seed()
    rng = random.Random(seed)
    # min.insync.replicas=2 for every topic, the app's changelog too: an acked write
    # is on two brokers, so losing one loses nothing.
    bootstrap = own_kafka.up("--brokers", "3", "--config", "min.insync.replicas=2")
    cluster = TableCluster(tmp_path, bootstrap, partitions=4, replication=3)
    cluster.loglevel = "info"
    await cluster.create_topics(cluster.partitions, 3, {"min.insync.replicas": "2"})
    workers = [cluster.start_worker(f"worker-{i}") for i in range(WORKERS)]
    with chaos_run(seed, cluster):

        async def settled() -> bool:
            return own_every_partition(workers, cluster.partitions)

        await wait_until(settled, 90, "three workers to own every partition")
        async with OutputWatch(cluster.bootstrap, cluster.out, cluster.source) as watch:
            # Spread over ~20 s, so the broker dies and comes back mid-stream.
            producing = asyncio.ensure_future(
                cluster.produce(BROKERS_EVENTS, BROKERS_KEYS, chunk=1000, pause=0.5)
            )
            try:
                await sleep_watching(watch, rng.uniform(3.0, 8.0))
                # The group's coordinator: the broker whose loss hurts the group most
                # (it also leads about a third of every topic's partitions).
                victim = await coordinator(bootstrap, cluster.app_id)
                print(f"killing broker {victim} after {len(watch.seqs)} events", flush=True)
                await asyncio.to_thread(own_kafka.run, "stop-broker", str(victim), "--kill")
                await sleep_watching(watch, rng.uniform(5.0, 10.0))
                await asyncio.to_thread(own_kafka.run, "start-broker", str(victim), timeout=180)
                print(f"broker {victim} back after {len(watch.seqs)} events", flush=True)
                per_key = await producing
            finally:
                producing.cancel()
            await drain(watch, BROKERS_EVENTS, timeout=120)
            longest = {p: round(s, 1) for p, s in sorted(watch.longest.items())}
            print("longest silence per partition (s):", longest, flush=True)
        await wait_committed(cluster, 60)
        stop_cleanly(cluster, workers)
    with explained(seed, cluster):
        print(await check_at_least_once(cluster, BROKERS_EVENTS, per_key), flush=True)


async def coordinator(bootstrap: str, group: str) -> int:
    """The node id of the broker coordinating ``group``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return await admin.find_coordinator(group)
    finally:
        await admin.close()
