"""Apache Kafka through aiokafka: the driver behind ``broker='kafka://host:9092'``.

Example::

    app = faust.App('orders', broker='kafka://k1:9092;kafka://k2:9092')

The driver moves bytes and nothing more: the consumer fetches batches and commits what
the layers above say is processed (auto-commit is off), the producer returns a future
per record that resolves on the broker's ack, and the admin client declares topics.

The transport's first contact with the cluster waits at most ``broker_connect_timeout``
seconds (default 30) and then fails with one line naming the URLs, so a worker pointed
at a broker that is down stops with a clear error instead of hanging.

Leader election for ``on_leader`` timers uses the consumer group: every worker's
consumer also subscribes to the one-partition topic ``{app.id}-__leader``, and the
worker assigned its partition 0 is the leader (see :meth:`KafkaTransport.is_leader`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import (
    ConsumerStoppedError,
    InvalidReplicationFactorError,
    KafkaConnectionError,
    KafkaError,
    TopicAlreadyExistsError,
    for_code,
)
from aiokafka.structs import OffsetAndMetadata, TopicPartition

from ..exceptions import ImproperlyConfigured, PartitionCountMismatch
from .base import (
    TP,
    ConsumerDriver,
    Message,
    ProducerDriver,
    RebalanceListener,
    RecordMetadata,
    TopicSpec,
    Transport,
)

__all__ = [
    "KafkaTransport",
    "KafkaConsumer",
    "KafkaProducer",
    "BrokerUnreachable",
    "bootstrap_servers",
]

logger = logging.getLogger(__name__)

DEFAULT_PORT = 9092
DEFAULT_HOST = "localhost"
SCHEMES = ("kafka", "aiokafka")

#: Seconds to wait for the first answer from the cluster when ``app.conf`` has no
#: ``broker_connect_timeout``: long enough for a broker that is still starting (a
#: container next to the worker), short enough that a wrong URL is reported quickly.
DEFAULT_CONNECT_TIMEOUT = 30.0

# Between attempts to reach the cluster: start fast (a broker that is just coming up
# answers within a second), back off so a long wait does not flood the log.
_RETRY_FIRST = 0.2
_RETRY_MAX = 2.0

# Kafka 4.0 made 5 ms the Java producer's default linger (KIP-1030). Here it would delay
# every awaited send by 5 ms, and records already batch without it: aiokafka keeps one
# request in flight per broker, and what is sent meanwhile goes out as one batch.
PRODUCER_LINGER_MS = 0

# Range assignment gives partition N of every topic with the same partition count to
# the same member, which keeps co-partitioned topics (a stream and the changelog of the
# table it updates) together.
PARTITION_ASSIGNORS = (RangePartitionAssignor,)


class BrokerUnreachable(ImproperlyConfigured):
    """No broker named in the ``broker`` setting answered within the connect timeout."""


def bootstrap_servers(urls: Sequence[str]) -> list[str]:
    """``host:port`` for each broker named by ``kafka://`` URLs.

    Example::

        >>> bootstrap_servers(['kafka://k1', 'aiokafka://k2:9093,k3'])
        ['k1:9092', 'k2:9093', 'k3:9092']
    """
    servers: list[str] = []
    for url in urls:
        scheme, sep, rest = url.partition("://")
        if not sep or scheme not in SCHEMES:
            raise ImproperlyConfigured(
                f"Setting broker: {url!r} is not a Kafka URL; use 'kafka://host:9092'."
            )
        netloc = rest.split("/", 1)[0]
        for hostport in netloc.split(",") if netloc else [""]:
            try:
                parts = urlsplit(f"//{hostport.strip()}")
                port = parts.port or DEFAULT_PORT
            except ValueError:
                raise ImproperlyConfigured(
                    f"Setting broker: {url!r} has a bad host:port {hostport!r}; "
                    "use 'kafka://host:9092'."
                ) from None
            host = parts.hostname or DEFAULT_HOST
            servers.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    if not servers:
        servers.append(f"{DEFAULT_HOST}:{DEFAULT_PORT}")
    return servers


class KafkaTransport(Transport):
    """Consumers, producers and topic declarations on one Kafka cluster."""

    scheme = "kafka"

    def __init__(self, urls: Sequence[str], app: Any) -> None:
        super().__init__(urls, app)
        self.servers = bootstrap_servers(self.urls or ["kafka://"])
        #: What aiokafka's ``bootstrap_servers`` gets: ``"h1:9092,h2:9092"``.
        self.bootstrap_servers = ",".join(self.servers)
        conf = getattr(app, "conf", None)
        self.client_id: str = getattr(conf, "broker_client_id", "faust")
        self.auto_offset_reset: str = getattr(conf, "consumer_auto_offset_reset", "earliest")
        self.connect_timeout = float(
            getattr(conf, "broker_connect_timeout", DEFAULT_CONNECT_TIMEOUT)
        )
        app_id = getattr(conf, "id", None)
        #: The topic whose partition 0 makes a worker the leader (None without an app).
        self.leader_topic: str | None = f"{app_id}-__leader" if app_id else None
        self._leader_replicas: int = getattr(conf, "topic_replication_factor", 1)
        self._admin: AIOKafkaAdminClient | None = None
        self._admin_lock = asyncio.Lock()
        self._consumers: weakref.WeakSet[KafkaConsumer] = weakref.WeakSet()

    # -- clients
    def create_consumer(self, group_id: str, listener: RebalanceListener) -> KafkaConsumer:
        consumer = KafkaConsumer(self, group_id, listener)
        self._consumers.add(consumer)
        return consumer

    def create_producer(self) -> KafkaProducer:
        return KafkaProducer(self)

    async def connect(self) -> AIOKafkaAdminClient:
        """The transport's admin client, connected (waits ``broker_connect_timeout``).

        Every client calls this before starting, so an unreachable cluster is reported
        once, the same way, whichever part of the app touches Kafka first.
        """
        if self._admin is not None:
            return self._admin
        async with self._admin_lock:
            if self._admin is None:
                admin = AIOKafkaAdminClient(
                    bootstrap_servers=self.bootstrap_servers, client_id=self.client_id
                )
                try:
                    await self._start_within_timeout(admin)
                except BaseException:
                    await _quietly(admin.close())
                    raise
                self._admin = admin
        return self._admin

    async def _start_within_timeout(self, admin: AIOKafkaAdminClient) -> None:
        timeout = self.connect_timeout
        delay = _RETRY_FIRST
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                while True:
                    try:
                        await admin.start()
                        return
                    except (KafkaConnectionError, OSError) as exc:
                        logger.warning(
                            "Kafka at %s does not answer yet (%s); retrying for up to %g s",
                            self.describe(),
                            exc,
                            timeout - (time.monotonic() - started),
                        )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _RETRY_MAX)
        except TimeoutError:
            raise BrokerUnreachable(
                f"Cannot reach Kafka at {self.describe()} after {timeout:g} s: start it "
                "(scripts/kafka up in a clone of Faust) or fix the broker setting; "
                "broker_connect_timeout sets how long to wait."
            ) from None

    def describe(self) -> str:
        """The brokers as URLs, for messages: ``kafka://h1:9092, kafka://h2:9092``."""
        return ", ".join(f"kafka://{server}" for server in self.servers)

    async def close(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            await admin.close()

    # -- topics
    async def declare_topic(self, spec: TopicSpec) -> None:
        admin = await self.connect()
        new_topic = NewTopic(
            spec.name,
            spec.partitions,
            spec.replication_factor,
            topic_configs=topic_config(spec),
        )
        response = await admin.create_topics([new_topic])
        for name, code, *details in response.topic_errors:
            if not code:
                logger.info("Created topic %r with %d partitions", name, spec.partitions)
                continue
            error = for_code(code)
            if error is TopicAlreadyExistsError:
                await self._check_partitions(spec)
            elif error is InvalidReplicationFactorError:
                raise ImproperlyConfigured(
                    f"Topic {name!r}: replication factor {spec.replication_factor} is more "
                    f"than the brokers at {self.describe()} can hold ({details[0] or ''}). "
                    "Lower topic_replication_factor (or replicas= on the topic)."
                )
            else:
                reason = details[0] if details and details[0] else error.description
                raise ImproperlyConfigured(
                    f"Kafka at {self.describe()} refused to create topic {name!r} "
                    f"({error.message}: {reason})."
                )

    async def _check_partitions(self, spec: TopicSpec) -> None:
        actual = await self.partition_count(spec.name)
        if actual is not None and actual != spec.partitions:
            raise PartitionCountMismatch(
                f"Topic {spec.name!r} exists with {actual} partitions, but the app declares "
                f"{spec.partitions}. Use partitions={actual} for this topic, or delete it."
            )

    async def partition_count(self, topic: str) -> int | None:
        admin = await self.connect()
        # Metadata for all topics: asking for one topic by name makes a broker with
        # auto.create.topics.enable create it, which a question must not do.
        for info in await admin.describe_topics():
            if info["topic"] == topic and not info["error_code"]:
                return len(info["partitions"])
        return None

    # -- leader election
    def is_leader(self) -> bool:
        """True on the one worker of the app's group assigned ``{app.id}-__leader``.

        Each worker's consumer subscribes to that one-partition topic, so Kafka's group
        protocol gives its partition 0 to exactly one member at a time. Between a
        rebalance's revoke and assign no worker is leader, so two never overlap.
        """
        if self.leader_topic is None:
            return True
        leader = TP(self.leader_topic, 0)
        return any(leader in consumer.assigned for consumer in self._consumers)

    def leader_spec(self) -> TopicSpec | None:
        if self.leader_topic is None:
            return None
        return TopicSpec(self.leader_topic, 1, replication_factor=self._leader_replicas)


def topic_config(spec: TopicSpec) -> dict[str, str]:
    """Kafka topic configs for ``spec``; its own ``config`` entries win."""
    config: dict[str, str] = {}
    if spec.compacting:
        config["cleanup.policy"] = "compact,delete" if spec.deleting else "compact"
    if spec.retention is not None:
        config["retention.ms"] = str(int(spec.retention * 1000))
    config.update(spec.config)
    return config


class _Rebalance(ConsumerRebalanceListener):
    """Tells the app's listener about aiokafka's rebalances, in faust TPs."""

    def __init__(self, consumer: KafkaConsumer) -> None:
        self.consumer = consumer

    async def on_partitions_revoked(self, revoked: Any) -> None:
        tps = {TP(tp.topic, tp.partition) for tp in revoked}
        # Dropped before the app hears of it: leadership ends with the revoke.
        self.consumer.assigned = set()
        if tps:
            await self.consumer.listener.on_partitions_revoked(tps)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        tps = {TP(tp.topic, tp.partition) for tp in assigned}
        self.consumer.assigned = tps
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

    async def start(self) -> None:
        if self._consumer is not None:
            return
        transport = self.transport
        await transport.connect()
        leader = transport.leader_spec()
        if leader is not None:
            await transport.declare_topic(leader)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=transport.bootstrap_servers,
            client_id=transport.client_id,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset=transport.auto_offset_reset,
            partition_assignment_strategy=PARTITION_ASSIGNORS,
        )
        self._consumer = consumer
        self._apply_subscription()
        try:
            # Joins the group and waits for the first assignment when subscribed.
            await consumer.start()
        except BaseException:
            self._consumer = None
            await _quietly(consumer.stop())
            raise

    async def stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        self.assigned = set()
        self._subscribed = frozenset()
        if consumer is not None:
            await consumer.stop()

    def subscribe(self, topics: Iterable[str]) -> None:
        self._topics = frozenset(topics)
        if self._consumer is not None:
            self._apply_subscription()

    def _apply_subscription(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        wanted = set(self._topics)
        if self.transport.leader_topic is not None:
            # Every member takes part in leader election, even one with nothing to read.
            wanted.add(self.transport.leader_topic)
        if frozenset(wanted) == self._subscribed:
            return
        self._subscribed = frozenset(wanted)
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
        try:
            batches = await consumer.getmany(
                timeout_ms=int(timeout * 1000), max_records=max_records
            )
        except ConsumerStoppedError:
            return {}
        except KafkaError as exc:
            # Group and fetch errors surface here; the next fetch retries them.
            logger.warning("Fetch from Kafka at %s failed: %r", self.transport.describe(), exc)
            await asyncio.sleep(min(timeout, 1.0))
            return {}
        fetched: dict[TP, list[Message]] = {}
        for (topic, partition), records in batches.items():
            fetched[TP(topic, partition)] = [
                Message(
                    topic,
                    partition,
                    record.offset,
                    record.timestamp / 1000.0,
                    record.key,
                    record.value,
                    record.headers,
                )
                for record in records
            ]
        return fetched

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
        skipped = len(offsets) - len(to_commit)
        if skipped:
            logger.debug("Not committing %d partitions no longer assigned", skipped)

    def assignment(self) -> set[TP]:
        consumer = self._consumer
        if consumer is None:
            return set()
        return {TP(tp.topic, tp.partition) for tp in consumer.assignment()}

    async def committed(self, tp: TP) -> int | None:
        consumer = self._consumer
        if consumer is None:
            raise RuntimeError(f"Consumer of group {self.group_id!r} is not started")
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


class KafkaProducer(ProducerDriver):
    """Sends records; each ``send`` returns a future resolved by the broker's ack."""

    def __init__(self, transport: KafkaTransport) -> None:
        self.transport = transport
        self._producer: AIOKafkaProducer | None = None
        self._start_lock = asyncio.Lock()

    async def start(self) -> None:
        if self._producer is not None:
            return
        # Sends made while the start is in progress wait for it here.
        async with self._start_lock:
            if self._producer is not None:
                return
            transport = self.transport
            await transport.connect()
            producer = AIOKafkaProducer(
                bootstrap_servers=transport.bootstrap_servers,
                client_id=transport.client_id,
                # Acked by every in-sync replica; with idempotence a retried batch is
                # not written twice and keeps its place in the partition.
                acks="all",
                enable_idempotence=True,
                linger_ms=PRODUCER_LINGER_MS,
            )
            try:
                await producer.start()
            except BaseException:
                await _quietly(producer.stop())
                raise
            self._producer = producer

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        partition: int | None = None,
        timestamp: float | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> Awaitable[RecordMetadata]:
        producer = self._producer
        if producer is None:
            await self.start()
            producer = self._producer
            assert producer is not None
        if key is None and value is None:
            raise ValueError(
                f"Cannot send to topic {topic!r}: a Kafka record needs a key or a value."
            )
        # Stamped here so the ack can report it: the broker echoes -1 for CreateTime.
        if timestamp is None:
            timestamp = time.time()
        ack = await producer.send(
            topic,
            value=value,
            key=key,
            partition=partition,
            timestamp_ms=int(timestamp * 1000),
            headers=list(headers) if headers else None,
        )
        return _record_metadata(ack, timestamp)

    async def flush(self) -> None:
        if self._producer is not None:
            await self._producer.flush()


def _record_metadata(ack: asyncio.Future[Any], timestamp: float) -> asyncio.Future[RecordMetadata]:
    """A future of faust RecordMetadata completed with aiokafka's ``ack``."""
    result: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()

    def _done(f: asyncio.Future[Any]) -> None:
        if result.done():
            return
        if f.cancelled():
            result.cancel()
            return
        exc = f.exception()
        if exc is not None:
            result.set_exception(exc)
            return
        meta = f.result()
        # timestamp_type 1 is LogAppendTime: the broker chose the timestamp.
        ts = meta.timestamp / 1000.0 if meta.timestamp_type == 1 else timestamp
        result.set_result(RecordMetadata(meta.topic, meta.partition, meta.offset, ts))

    ack.add_done_callback(_done)
    return result


async def _quietly(aw: Awaitable[Any]) -> None:
    """Release a client that failed to start; its own error is the one to report."""
    try:
        await aw
    except Exception:
        logger.debug("Error while closing a Kafka client that did not start", exc_info=True)
