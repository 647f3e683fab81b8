"""A consumer group member over ``AIOKafkaConsumer``: fetch, commit, rebalance."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.errors import ConsumerStoppedError, KafkaError
from aiokafka.structs import OffsetAndMetadata, TopicPartition

from ...exceptions import NotReady
from ..base import TP, ConsumerDriver, Message, RebalanceListener
from .assignor import PartitionAssignor
from .clients import close_quietly
from .connection_log import connection_log, format_partitions, rebalance_line
from .fetching import adopt, supports, to_messages, waiting

if TYPE_CHECKING:
    from .transport import KafkaTransport

__all__ = ["KafkaConsumer", "isolation_level"]

logger = logging.getLogger(__name__)

#: At most this many records of one partition in one getmany while other partitions have
#: records at hand too: aiokafka hands out a partition's whole fetch (up to
#: consumer_max_fetch_size, thousands of records) before the next one's, so a worker's
#: partitions take turns every few hundred events instead of a whole backlog at a time.
PARTITION_SHARE = 256


def isolation_level(conf: Any) -> str:
    """How this app's consumers read: under exactly-once, only committed transactions
    (records of aborted ones are skipped; the end of a partition is its last stable
    offset)."""
    return "read_committed" if conf.processing_guarantee == "exactly_once" else "read_uncommitted"


class _Rebalance(ConsumerRebalanceListener):
    """Tells the app's listener about aiokafka's rebalances, in faust TPs, and logs each
    rebalance as one line."""

    def __init__(self, consumer: KafkaConsumer) -> None:
        self.consumer = consumer
        self._held: set[TP] = set()
        self._since = time.monotonic()
        #: From the revoke to the assignment: the routing map is the last generation's.
        self.in_progress = False

    async def on_partitions_revoked(self, revoked: Any) -> None:
        tps = {TP(tp.topic, tp.partition) for tp in revoked}
        self.in_progress = True
        self._held = set(self.consumer.assigned)
        self._since = time.monotonic()
        logger.debug(
            "Rebalancing group %r: giving up %s", self.consumer.group_id, format_partitions(tps)
        )
        # Dropped before the app hears of it: leadership ends with the revoke.
        self.consumer.assigned = set()
        if tps:
            await self.consumer.listener.on_partitions_revoked(tps)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        tps = {TP(tp.topic, tp.partition) for tp in assigned}
        self.consumer.assigned = tps
        self.in_progress = False
        # Joining the group took answers from the coordinator.
        connection_log.succeeded()
        logger.info(
            rebalance_line(
                self.consumer.group_id,
                self.consumer.generation(),
                time.monotonic() - self._since,
                self._held,
                tps,
            )
        )
        await self.consumer.listener.on_partitions_assigned(tps)


class KafkaConsumer(ConsumerDriver):
    """A member of consumer group ``group_id``; commits only what it is told to."""

    def __init__(
        self, transport: KafkaTransport, group_id: str, listener: RebalanceListener
    ) -> None:
        self.transport = transport
        self.group_id = group_id
        self.listener = listener
        #: Partitions as of the last completed rebalance (for leader election).
        self.assigned: set[TP] = set()
        self._topics: frozenset[str] = frozenset()
        self._subscribed: frozenset[str] = frozenset()
        self._rebalance = _Rebalance(self)
        self._consumer: AIOKafkaConsumer | None = None
        #: Fetched records become Messages inside aiokafka's fetcher (see fetching.py).
        self._direct = False
        #: The fetch in which each partition last gave records (see _take_turns).
        self._served: dict[TopicPartition, int] = {}
        self._turn = 0
        self._resubscriber: asyncio.Task[None] | None = None
        conf = transport.conf
        # One per consumer, kept across restarts of it, so assignments stay sticky. A
        # worker without a web server gives no URL: nobody forwards requests to it.
        self.assignor = PartitionAssignor(
            url=conf.canonical_url if conf.web_enabled else "",
            standby_replicas=conf.table_standby_replicas,
        )
        self.assignor.sensors = getattr(listener, "sensors", None)

    async def start(self) -> None:
        if self._consumer is not None:
            return
        transport = self.transport
        await transport.connect()
        if transport.elects_leader():
            await transport.declare_topic(transport.leader_spec())
        conf = transport.conf
        consumer = AIOKafkaConsumer(
            **transport.client_options(),
            group_id=self.group_id,
            group_instance_id=conf.consumer_group_instance_id,
            # Offsets are committed by the app's consumer, only past processed events.
            enable_auto_commit=False,
            auto_offset_reset=conf.consumer_auto_offset_reset,
            partition_assignment_strategy=(self.assignor,),
            session_timeout_ms=int(conf.broker_session_timeout * 1000),
            heartbeat_interval_ms=int(conf.broker_heartbeat_interval * 1000),
            max_poll_interval_ms=int(conf.broker_max_poll_interval * 1000),
            max_poll_records=conf.broker_max_poll_records,
            max_partition_fetch_bytes=conf.consumer_max_fetch_size,
            rebalance_timeout_ms=int(conf.broker_rebalance_timeout * 1000),
            check_crcs=conf.broker_check_crcs,
            isolation_level=isolation_level(conf),
        )
        self._consumer = consumer
        try:
            await self._apply_subscription()
            # Joins the group and waits for the first assignment when subscribed.
            await consumer.start()
            self._direct = supports(consumer)
        except BaseException:
            self._consumer = None
            await close_quietly(consumer.stop())
            raise

    async def stop(self) -> None:
        resubscriber, self._resubscriber = self._resubscriber, None
        if resubscriber is not None:
            resubscriber.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await resubscriber
        consumer, self._consumer = self._consumer, None
        self.assigned = set()
        self._subscribed = frozenset()
        if consumer is not None:
            await consumer.stop()

    def generation(self) -> int | None:
        """The group generation this member joined last (None before it joined)."""
        # aiokafka keeps it on its (private) coordinator; only for the log line.
        coordinator = getattr(self._consumer, "_coordinator", None)
        generation = getattr(coordinator, "generation", None)
        return generation if isinstance(generation, int) and generation >= 0 else None

    def subscribe(self, topics: Iterable[str]) -> None:
        self._topics = frozenset(topics)
        if self._consumer is None:
            return  # start() subscribes
        if self._resubscriber is None or self._resubscriber.done():
            task = asyncio.get_running_loop().create_task(
                self._apply_subscription(), name=f"kafka-resubscribe:{self.group_id}"
            )
            task.add_done_callback(self._resubscribed)
            self._resubscriber = task

    def _resubscribed(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "Could not change the subscription of group %r",
                self.group_id,
                exc_info=task.exception(),
            )

    def _wanted(self) -> frozenset[str]:
        wanted = set(self._topics)
        if self.transport.elects_leader():
            # Every worker takes part in leader election, even one with nothing to read.
            wanted.add(self.transport.leader_spec().name)
        return frozenset(wanted)

    async def _apply_subscription(self) -> None:
        while (wanted := self._wanted()) != self._subscribed:
            added = wanted - self._subscribed
            if added:
                # aiokafka asks for metadata of what it subscribes to, and a broker with
                # auto.create.topics.enable would create a missing topic with its own
                # partition count: let a declaration in progress land first.
                await self.transport.wait_for_topics(added, "Subscribing to")
                if self._wanted() != wanted:
                    continue  # changed while waiting: take the newer set
            consumer = self._consumer
            if consumer is None:
                return
            self._subscribed = wanted
            if wanted:
                # Replaces the previous subscription; aiokafka rejoins the group, and the
                # rebalance listener hears the revoke and the new assignment.
                consumer.subscribe(topics=sorted(wanted), listener=self._rebalance)
            else:
                consumer.unsubscribe()

    async def getmany(self, timeout: float, max_records: int) -> dict[TP, list[Message]]:
        consumer = self._consumer
        if consumer is None or not self._subscribed:
            # Nothing to read: aiokafka would wait for an assignment without a timeout.
            await asyncio.sleep(timeout)
            return {}
        if self._direct:
            adopt(consumer)
        ready = waiting(consumer)
        try:
            if len(ready) > 1:
                batches = await self._take_turns(consumer, ready, max_records)
            else:
                # What is at hand (or what the wait brings) may be one partition's whole
                # backlog: while others may have records on the way, a share only.
                alone = len(self.assigned) < 2
                batches = await consumer.getmany(
                    timeout_ms=int(timeout * 1000),
                    max_records=max_records if alone else min(PARTITION_SHARE, max_records),
                )
        except ConsumerStoppedError:
            return {}
        except KafkaError as exc:
            # Group and fetch errors surface here; the next fetch retries them.
            logger.warning("Fetch from Kafka at %s failed: %r", self.transport.describe(), exc)
            await asyncio.sleep(min(timeout, 1.0))
            return {}
        if batches:
            connection_log.succeeded()
            # In the order served: of two served in one fetch, the first is the older.
            for tp in batches:
                self._turn += 1
                self._served[tp] = self._turn
        else:
            connection_log.check()
        fetched: dict[TP, list[Message]] = {}
        for (topic, partition), records in batches.items():
            fetched[TP(topic, partition)] = to_messages(topic, partition, records)
        return fetched

    async def _take_turns(
        self, consumer: AIOKafkaConsumer, ready: list[TopicPartition], max_records: int
    ) -> dict[TopicPartition, list[Any]]:
        """A share of each partition with records at hand, least recently served first.

        Each call drains only what is already fetched (no wait), so after the first none
        of them yields to the event loop: no rebalance can land between two partitions.
        """
        served = self._served
        ready.sort(key=lambda tp: served.get(tp, -1))
        share = min(PARTITION_SHARE, max_records)
        budget = max_records
        batches: dict[TopicPartition, list[Any]] = {}
        for tp in ready:
            got = await consumer.getmany(tp, timeout_ms=0, max_records=min(share, budget))
            records = got.get(tp)
            if records:
                batches[tp] = records
                budget -= len(records)
                if budget <= 0:
                    break
        return batches

    async def commit(self, offsets: Mapping[TP, int]) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        # Only partitions this member still owns: committing a revoked one would fail
        # (or overwrite the new owner's progress).
        assigned = consumer.assignment()
        to_commit = {
            TopicPartition(tp.topic, tp.partition): OffsetAndMetadata(offset, "")
            for tp, offset in offsets.items()
            if tp in assigned
        }
        if to_commit:
            await consumer.commit(to_commit)
            connection_log.succeeded()
        skipped = len(offsets) - len(to_commit)
        if skipped:
            logger.debug("Not committing %d partitions no longer assigned", skipped)

    def highwater(self, tp: TP) -> int | None:
        consumer = self._consumer
        if consumer is None:
            return None
        partition = TopicPartition(tp.topic, tp.partition)
        if partition not in consumer.assignment():
            return None  # aiokafka asserts on a partition it does not own
        highwater: int | None = consumer.highwater(partition)
        return highwater

    def rejoin(self) -> None:
        coordinator = getattr(self._consumer, "_coordinator", None)
        request = getattr(coordinator, "request_rejoin", None)
        if request is not None:
            request()

    def set_standby_topics(self, topics: Iterable[str]) -> None:
        self.assignor.changelog_topics = set(topics)

    def standby_partitions(self) -> set[TP]:
        return set(self.assignor.standbys)

    def routing(self) -> Mapping[str, frozenset[TP]]:
        return {} if self._rebalance.in_progress else self.assignor.routing

    def assignment(self) -> set[TP]:
        consumer = self._consumer
        if consumer is None:
            return set()
        return {TP(tp.topic, tp.partition) for tp in consumer.assignment()}

    async def committed(self, tp: TP) -> int | None:
        consumer = self._consumer
        if consumer is None:
            raise NotReady(f"Kafka consumer of group {self.group_id!r}: call start() first.")
        offset: int | None = await consumer.committed(TopicPartition(tp.topic, tp.partition))
        return offset

    def seek(self, tp: TP, offset: int) -> None:
        if self._consumer is not None:
            self._consumer.seek(TopicPartition(tp.topic, tp.partition), offset)

    def pause(self, tps: Iterable[TP]) -> None:
        owned = self._owned(tps)
        if owned:
            assert self._consumer is not None
            self._consumer.pause(*owned)

    def resume(self, tps: Iterable[TP]) -> None:
        owned = self._owned(tps)
        if owned:
            assert self._consumer is not None
            self._consumer.resume(*owned)

    def _owned(self, tps: Iterable[TP]) -> list[TopicPartition]:
        # aiokafka raises for a partition it does not own; one revoked a moment ago
        # needs no pausing.
        if self._consumer is None:
            return []
        assigned = self._consumer.assignment()
        return [TopicPartition(tp.topic, tp.partition) for tp in tps if tp in assigned]
