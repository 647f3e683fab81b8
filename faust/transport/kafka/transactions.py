"""Exactly-once on Kafka: one transactional producer per task.

A *task* is partition ``p`` of the input topics that have ``n`` partitions: topics with
as many partitions are co-partitioned (a table and its source topic, a ``group_by``'s
repartition topic and its reader), so the worker that owns ``p`` of one owns ``p`` of
the others. Each task has its own producer with ``transactional_id``
``{group_id}-eos-{n}-{p}``: the worker that takes a task over starts a producer with
the same id, which fences the previous owner (a worker presumed dead that comes back
cannot commit over its successor) and aborts the transaction it left open. aiokafka's
``send_offsets_to_transaction`` speaks the protocol from before KIP-447 (the offsets do
not carry the group's generation), which is why the producers are per task, not per
worker.

What an event sends goes through its task's producer; a table's changelog records
through the task of their partition; records sent outside any event (timers, web
views) through a plain idempotent producer, visible at once. A commit adds each task's
input offsets to its transaction and commits them all together.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaProducer
from aiokafka.structs import OffsetAndMetadata, TopicPartition

from ...agents.replies import REPLY_TO
from ...exceptions import ImproperlyConfigured
from ..base import TP, OutgoingRecord
from .clients import close_quietly

if TYPE_CHECKING:
    from .transport import KafkaTransport

__all__ = ["Transactions", "TransactionFailed", "COMMIT_TIMEOUT"]

logger = logging.getLogger(__name__)

#: Seconds a commit (offsets added, transactions committed) may take before it is given
#: up and aborted: a broker that does not answer, or a group the coordinator does not
#: know (aiokafka retries that without end).
COMMIT_TIMEOUT = 30.0

Task = tuple[int, int]


class TransactionFailed(Exception):
    """The open transactions cannot commit: they are aborted and the worker goes back
    to its last commit."""


class Transactions:
    """The task producers of one exactly-once worker."""

    def __init__(self, transport: KafkaTransport, options: dict[str, Any]) -> None:
        self.transport = transport
        self.group_id: str = transport.conf.group_id
        self._options = options
        #: Partition counts of the topics this worker reads or writes tables to.
        self.counts: dict[str, int] = {}
        self.producers: dict[Task, AIOKafkaProducer] = {}
        #: Why a task's open transaction cannot commit (a send failed).
        self.failures: dict[Task, BaseException] = {}
        self._lock = asyncio.Lock()
        conf = transport.conf
        self._reply_prefix: str = conf.reply_to_prefix or f"{conf.id}-reply-"

    def transactional_id(self, task: Task) -> str:
        n, p = task
        return f"{self.group_id}-eos-{n}-{p}"

    # -- routing
    def task_of(self, record: OutgoingRecord) -> Task | None:
        """The task whose transaction ``record`` belongs to; None: the plain producer.

        ``ask()`` requests and their replies are outside the transactions: the agent
        that asks holds its event until the reply comes, and a commit waits for that,
        so a request or reply visible only at a commit would never arrive.
        """
        holder = record.holder
        if holder is not None and (
            record.topic.startswith(self._reply_prefix)
            or (record.headers and any(name == REPLY_TO for name, _ in record.headers))
        ):
            return None
        if holder is not None:
            n = self.counts.get(holder.topic)
            if n is not None:
                return (n, holder.partition)
            return None
        partition = record.partition
        if partition is not None:
            # A changelog record flushed at commit: its partition's task (one whose
            # producer is gone fails the record: it must not be written outside it).
            n = self.counts.get(record.topic)
            if n is not None:
                return (n, partition)
        return None

    def fail(self, task: Task, exc: BaseException) -> None:
        """A record of ``task``'s transaction was not written: it must abort."""
        self.failures.setdefault(task, exc)

    # -- assignment
    async def assign(self, tps: Iterable[TP], counts: Mapping[str, int]) -> None:
        """Have a producer (its transaction begun) for each task of ``tps``, and none
        for the tasks this worker no longer owns. Starting one fences the task's
        previous owner and aborts what it left open, before this worker reads the
        task's changelogs or offsets."""
        async with self._lock:
            self.counts.update(counts)
            wanted = {(counts[tp.topic], tp.partition) for tp in tps if tp.topic in counts}
            for task in sorted(set(self.producers) - wanted):
                producer = self.producers.pop(task)
                self.failures.pop(task, None)
                await close_quietly(producer.stop())
            new = sorted(wanted - set(self.producers))
            if new:
                started = await asyncio.gather(
                    *(self._start(task) for task in new), return_exceptions=True
                )
                for task, result in zip(new, started, strict=True):
                    if isinstance(result, BaseException):
                        raise result
                    self.producers[task] = result

    async def _start(self, task: Task) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(**self._options, transactional_id=self.transactional_id(task))
        try:
            # Waits while the previous owner's transaction completes; not forever.
            async with asyncio.timeout(COMMIT_TIMEOUT):
                await producer.start()
                await producer.begin_transaction()
        except BaseException:
            await close_quietly(producer.stop())
            raise
        return producer

    # -- committing
    async def commit(self, offsets: Mapping[TP, int]) -> None:
        """Commit every task's transaction with its input ``offsets``; begin the next.

        Raises :class:`TransactionFailed` (the caller aborts) if a send failed, the
        producer was fenced, or the brokers did not answer within COMMIT_TIMEOUT.
        """
        if self.failures:
            task, exc = next(iter(self.failures.items()))
            raise TransactionFailed(
                f"a record of task {self.transactional_id(task)!r} was not written: {exc!r}"
            )
        by_task: dict[Task, dict[TopicPartition, OffsetAndMetadata]] = {}
        for tp, offset in offsets.items():
            n = self.counts.get(tp.topic)
            if n is None or (n, tp.partition) not in self.producers:
                continue
            by_task.setdefault((n, tp.partition), {})[TopicPartition(*tp)] = OffsetAndMetadata(
                offset, ""
            )
        tasks = list(self.producers.items())
        try:
            async with asyncio.timeout(COMMIT_TIMEOUT):
                results = await asyncio.gather(
                    *(self._commit_one(p, by_task.get(task)) for task, p in tasks),
                    return_exceptions=True,
                )
        except TimeoutError:
            raise TransactionFailed(
                f"the commit did not finish within {COMMIT_TIMEOUT:g} s (Kafka at "
                f"{self.transport.describe()} does not answer, or consumer group "
                f"{self.group_id!r} is unknown to it)"
            ) from None
        for (task, _), result in zip(tasks, results, strict=True):
            if isinstance(result, BaseException):
                raise TransactionFailed(
                    f"the transaction of {self.transactional_id(task)!r} did not commit: {result!r}"
                ) from result

    async def _commit_one(
        self, producer: AIOKafkaProducer, offsets: dict[TopicPartition, OffsetAndMetadata] | None
    ) -> None:
        if offsets:
            await producer.send_offsets_to_transaction(offsets, self.group_id)
        await producer.commit_transaction()
        await producer.begin_transaction()

    async def abort(self) -> set[Task]:
        """Abort every open transaction and begin new ones; returns the tasks whose
        producer could not abort (fenced: another worker owns the task now, or its
        transaction timed out) and was closed. Only :meth:`assign`, after a rebalance,
        starts one again: a worker that is no longer a member must not get a fresh
        producer epoch, with which it could commit over its successor."""
        closed: set[Task] = set()
        async with self._lock:
            self.failures.clear()
            for task, producer in list(self.producers.items()):
                try:
                    async with asyncio.timeout(COMMIT_TIMEOUT):
                        await producer.abort_transaction()
                        await producer.begin_transaction()
                    continue
                except Exception as exc:  # noqa: BLE001 - any failure: start over
                    logger.warning(
                        "Could not abort the transaction of %r (%r): closing its producer",
                        self.transactional_id(task),
                        exc,
                    )
                del self.producers[task]
                closed.add(task)
                await close_quietly(producer.stop())
        return closed

    async def flush(self) -> None:
        await asyncio.gather(*(p.flush() for p in self.producers.values()))

    async def stop(self) -> None:
        """Abort what is open (a stop commits first) and close every producer."""
        producers, self.producers = self.producers, {}
        for producer in producers.values():
            await close_quietly(producer.stop())


def check_settings(conf: Any) -> None:
    """What exactly-once needs from the other settings."""
    if conf.producer_acks != -1:
        raise ImproperlyConfigured(
            f"Setting producer_acks={conf.producer_acks}: "
            "processing_guarantee='exactly_once' needs producer_acks=-1 (every in-sync "
            "replica acks; Kafka's transactions require it). Remove producer_acks."
        )
