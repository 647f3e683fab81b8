"""The contract between Faust and a broker driver (memory or Kafka).

A driver moves bytes: it fetches batches of :class:`Message` for the partitions assigned
to this process, commits offsets, and produces records. Everything above it (decoding,
routing, acking) is the same for every broker.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

__all__ = [
    "TP",
    "Message",
    "RecordMetadata",
    "TopicSpec",
    "ConsumerDriver",
    "ProducerDriver",
    "PendingRecord",
    "Transport",
    "RebalanceListener",
]

logger = logging.getLogger("faust.transport")


class TP(NamedTuple):
    """A topic partition."""

    topic: str
    partition: int


class RecordMetadata(NamedTuple):
    """Where the broker stored a record that was sent."""

    topic: str
    partition: int
    offset: int
    timestamp: float


class Message:
    """One record fetched from a broker, still in bytes.

    ``refcount`` counts what must happen before the offset counts as processed: one per
    stream the message was delivered to (released when the stream moves past it) and one
    per record sent on its behalf (released when the broker acknowledges it). It starts
    at 1, the consumer's hold until the conductor has delivered it; the offset tracker
    sees a message as processed once it is zero. ``on_done``, if set, is called then
    (used where no tracker is involved, such as ``agent.test_context()``).
    """

    __slots__ = (
        "topic",
        "partition",
        "offset",
        "timestamp",
        "key",
        "value",
        "headers",
        "refcount",
        "on_done",
        "__weakref__",
    )

    def __init__(
        self,
        topic: str,
        partition: int,
        offset: int,
        timestamp: float,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]] | None = None,
        on_done: Callable[[Message], None] | None = None,
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.timestamp = timestamp
        self.key = key
        self.value = value
        self.headers = headers or ()
        self.refcount = 1
        self.on_done = on_done

    @property
    def tp(self) -> TP:
        return TP(self.topic, self.partition)

    def decref(self) -> None:
        self.refcount -= 1
        if self.refcount == 0 and self.on_done is not None:
            self.on_done(self)

    def header(self, name: str) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def __repr__(self) -> str:
        return f"<Message {self.topic}[{self.partition}]@{self.offset}>"


class TopicSpec(NamedTuple):
    """What a topic should look like when Faust declares it."""

    name: str
    partitions: int
    replication_factor: int = 1
    config: Mapping[str, str] = {}
    compacting: bool = False
    deleting: bool = True
    retention: float | None = None


class RebalanceListener(abc.ABC):
    """Told by the consumer driver when partitions move to or from this process."""

    @abc.abstractmethod
    async def on_partitions_revoked(self, revoked: set[TP]) -> None: ...

    @abc.abstractmethod
    async def on_partitions_assigned(self, assigned: set[TP]) -> None: ...


class ConsumerDriver(abc.ABC):
    """Fetches records for this process's share of the subscribed topics."""

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None: ...

    @abc.abstractmethod
    def subscribe(self, topics: Iterable[str]) -> None:
        """Set the topics this consumer group member reads (replaces the previous set)."""

    @abc.abstractmethod
    async def getmany(self, timeout: float, max_records: int) -> dict[TP, list[Message]]:
        """Return fetched messages per partition, waiting at most ``timeout`` seconds.

        Fair between partitions: while several have records waiting, the ones served
        least recently come first, and none gives more than one batch before every other
        waiting partition has had its turn (so none waits for another's whole backlog).
        """

    @abc.abstractmethod
    async def commit(self, offsets: Mapping[TP, int]) -> None:
        """Commit the next offset to read for each partition."""

    @abc.abstractmethod
    def assignment(self) -> set[TP]: ...

    @abc.abstractmethod
    async def committed(self, tp: TP) -> int | None: ...

    @abc.abstractmethod
    def seek(self, tp: TP, offset: int) -> None: ...

    @abc.abstractmethod
    def pause(self, tps: Iterable[TP]) -> None: ...

    @abc.abstractmethod
    def resume(self, tps: Iterable[TP]) -> None: ...

    def set_standby_topics(self, topics: Iterable[str]) -> None:  # noqa: B027
        """Topics whose partitions other members should also follow (table changelogs)."""

    def standby_partitions(self) -> set[TP]:
        """Partitions this member follows as a standby since the last rebalance."""
        return set()


#: A record waiting in the producer's buffer: ``(topic, key, value, partition, timestamp,
#: headers, future, holder)``. ``future`` is what its sender holds; ``holder`` is the
#: message it was sent on behalf of (or None): one of that message's refs, released when
#: the record is acked (see :func:`settle`). A plain tuple: one is made per record sent.
PendingRecord = tuple[
    str,
    bytes | None,
    bytes | None,
    int | None,
    float | None,
    Sequence[tuple[str, bytes]] | None,
    "asyncio.Future[RecordMetadata]",
    "Message | None",
]


class ProducerDriver(abc.ABC):
    """Sends records; ``send`` returns a future completed by the broker's ack."""

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None: ...

    @abc.abstractmethod
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
        """Queue a record and return a future for its metadata (resolved on ack)."""

    async def send_many(self, records: Sequence[PendingRecord]) -> None:
        """Queue ``records`` in order; each one's future is completed by its ack (or error).

        Returns once all are queued. Drivers that can batch override this; the default
        sends one record at a time.
        """
        for topic, key, value, partition, timestamp, headers, future, holder in records:
            try:
                ack = await self.send(
                    topic, key, value, partition=partition, timestamp=timestamp, headers=headers
                )
            except Exception as exc:
                settle(future, holder, exc=exc)
                continue
            chain(ack, future, holder)

    @abc.abstractmethod
    async def flush(self) -> None: ...


class Transport(abc.ABC):
    """A broker: makes consumers and producers, declares topics."""

    scheme: str = ""

    def __init__(self, urls: Sequence[str], app: Any) -> None:
        self.urls = list(urls)
        self.app = app

    @abc.abstractmethod
    def create_consumer(self, group_id: str, listener: RebalanceListener) -> ConsumerDriver: ...

    @abc.abstractmethod
    def create_producer(self) -> ProducerDriver: ...

    @abc.abstractmethod
    async def declare_topic(self, spec: TopicSpec) -> None:
        """Create the topic if missing; fail clearly if it exists with other partitions."""

    @abc.abstractmethod
    async def delete_topic(self, name: str) -> None:
        """Delete the topic and its records; a topic that does not exist is no error."""

    @abc.abstractmethod
    async def partition_count(self, topic: str) -> int | None:
        """The topic's partition count, or None if it does not exist."""

    @abc.abstractmethod
    async def end_offset(self, tp: TP) -> int:
        """One past the last offset of ``tp`` (the high watermark)."""

    @abc.abstractmethod
    def read_partition(self, tp: TP, start: int, end: int) -> AsyncIterator[list[Message]]:
        """Read ``tp`` from ``start`` up to ``end`` (exclusive) outside the consumer group,
        in batches (table recovery and standbys). A batch may be empty while waiting."""

    @abc.abstractmethod
    def follow_partition(self, tp: TP, start: int) -> AsyncIterator[list[Message]]:
        """Read ``tp`` from ``start`` on forever, outside the consumer group (this app
        instance's reply topic); batches may be empty while nothing arrives."""

    async def close(self) -> None:  # noqa: B027 - optional hook, most drivers need none
        """Release shared resources (admin clients, the embedded broker)."""


def completed(
    result: RecordMetadata, loop: asyncio.AbstractEventLoop | None = None
) -> asyncio.Future[RecordMetadata]:
    """A future that is already resolved (for brokers that ack synchronously).

    Pass ``loop`` where it is known: looking up the running loop costs a system call.
    """
    if loop is None:
        loop = asyncio.get_running_loop()
    fut: asyncio.Future[RecordMetadata] = loop.create_future()
    fut.set_result(result)
    return fut


def settle(
    future: asyncio.Future[RecordMetadata],
    holder: Message | None,
    result: RecordMetadata | None = None,
    exc: BaseException | None = None,
) -> None:
    """Complete a sent record's future with its ack (``result``) or its error.

    On an ack, the ``holder`` message (the event it was sent for) gets its ref back. On
    an error it does not: that event never counts as processed, so its offset is not
    committed and it is processed again after a restart.
    """
    if exc is None:
        if not future.done():
            future.set_result(result)  # type: ignore[arg-type]
        if holder is not None:
            holder.decref()
        return
    if not future.done():
        future.set_exception(exc)
    if holder is not None:
        logger.error(
            "Send on behalf of %s[%s]@%s failed: %r; its offset will not be committed.",
            holder.topic,
            holder.partition,
            holder.offset,
            exc,
        )


def chain(
    source: Awaitable[RecordMetadata],
    target: asyncio.Future[RecordMetadata],
    holder: Message | None = None,
) -> None:
    """Settle ``target`` (and ``holder``) the way ``source`` completes."""
    inner = asyncio.ensure_future(source)

    def _copy(f: asyncio.Future[RecordMetadata]) -> None:
        if f.cancelled():
            settle(target, holder, exc=asyncio.CancelledError())
        elif (exc := f.exception()) is not None:
            settle(target, holder, exc=exc)
        else:
            settle(target, holder, f.result())

    inner.add_done_callback(_copy)
