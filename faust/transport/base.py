"""The contract between Faust and a broker driver (memory or Kafka).

A driver moves bytes: it fetches batches of :class:`Message` for the partitions assigned
to this process, commits offsets, and produces records. Everything above it (decoding,
routing, acking) is the same for every broker.
"""

from __future__ import annotations

import abc
import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

__all__ = [
    "TP",
    "Message",
    "RecordMetadata",
    "TopicSpec",
    "ConsumerDriver",
    "ProducerDriver",
    "OutgoingRecord",
    "SendCallback",
    "Transport",
    "RebalanceListener",
]

logger = logging.getLogger("faust.transport")


class TP(NamedTuple):
    """A topic partition."""

    topic: str
    partition: int


class RecordMetadata(NamedTuple):
    """Where the broker stored a record that was sent.

    Awaiting it gives it back at once, so code written for Faust, where ``send()``
    returns a future to await again, works unchanged::

        metadata = await topic.send(value=1)
        metadata = await metadata        # the same RecordMetadata
        print(metadata.partition, metadata.offset)
    """

    topic: str
    partition: int
    offset: int
    timestamp: float

    def __await__(self) -> Generator[Any, None, RecordMetadata]:
        yield from ()
        return self


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

    def highwater(self, tp: TP) -> int | None:
        """One past the last offset of ``tp`` as of the last fetch (None if not known
        yet): the end offset that consumer lag is measured against. No broker call."""
        return None

    def rejoin(self) -> None:  # noqa: B027 - a driver without a group has nothing to do
        """Rejoin the consumer group (a rebalance follows)."""

    def set_standby_topics(self, topics: Iterable[str]) -> None:  # noqa: B027
        """Topics whose partitions other members should also follow (table changelogs)."""

    def standby_partitions(self) -> set[TP]:
        """Partitions this member follows as a standby since the last rebalance."""
        return set()

    def routing(self) -> Mapping[str, frozenset[TP]]:
        """Each group member's URL and the partitions it reads, as of the last completed
        rebalance; empty before the first one and while one is in progress (nobody can
        say then who reads what). Table and topic routes forward requests by it."""
        return {}


#: Called once when a sent record is acked or has failed, with the record's future (done):
#: ``future.result()`` is its :class:`RecordMetadata` (or raises the error),
#: ``future.exception()`` the error or None. May be ``async def``.
SendCallback = Callable[["asyncio.Future[RecordMetadata]"], Any]


class OutgoingRecord:
    """One record on its way to the broker, from the producer's buffer to the driver's ack.

    ``key`` and ``value`` are bytes already; ``partition`` None lets the driver choose (by
    key, else round robin); ``timestamp`` None is "now". ``future`` is what the sender
    holds. ``holder`` is the message the record was sent on behalf of (or None): the
    producer took one of its refs, which :meth:`acked` gives back, so that message's
    offset is not committed before this record is stored. ``callback``, if given, is
    called once with ``future`` when the record is acked or has failed. ``counts`` (the
    producer's ``SendCounts``, or None) counts the ack or the failure; a driver that
    settles a batch of records at once counts them once per batch.

    The driver settles each record exactly once, with :meth:`acked` or :meth:`failed`.
    Slots, no defaults: one is made per record sent.
    """

    __slots__ = (
        "topic",
        "key",
        "value",
        "partition",
        "timestamp",
        "headers",
        "future",
        "holder",
        "callback",
        "counts",
    )

    def __init__(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: Sequence[tuple[str, bytes]] | None,
        future: asyncio.Future[RecordMetadata],
        holder: Message | None,
        callback: SendCallback | None,
        counts: Any = None,
    ) -> None:
        self.topic = topic
        self.key = key
        self.value = value
        self.partition = partition
        self.timestamp = timestamp
        self.headers = headers
        self.future = future
        self.holder = holder
        self.callback = callback
        self.counts = counts

    def acked(self, metadata: RecordMetadata) -> None:
        """The broker stored the record at ``metadata``: resolve it, release its holder."""
        future = self.future
        if not future.done():
            future.set_result(metadata)
        holder = self.holder
        if holder is not None:
            holder.decref()
        counts = self.counts
        if counts is not None:
            counts.acked(self.topic, 1)
        callback = self.callback
        if callback is not None:
            self.callback = None  # called once, whatever the driver does
            run_callback(callback, future, self.topic)

    def failed(self, exc: BaseException) -> None:
        """The record was not stored: fail its future and keep its holder.

        The holder's ref is not given back: the event it was sent for never counts as
        processed, so its offset is not committed and it is processed again after a
        restart.
        """
        future = self.future
        if not future.done():
            future.set_exception(exc)
        holder = self.holder
        if holder is not None:
            logger.error(
                "Send to topic %r on behalf of %s[%s]@%s failed: %r; its offset will not "
                "be committed.",
                self.topic,
                holder.topic,
                holder.partition,
                holder.offset,
                exc,
            )
        counts = self.counts
        if counts is not None:
            counts.failed(self.topic, 1, exc)
        callback = self.callback
        if callback is not None:
            self.callback = None  # called once, whatever the driver does
            run_callback(callback, future, self.topic)

    def __repr__(self) -> str:
        return f"<OutgoingRecord to {self.topic}[{self.partition}]>"


# Tasks of async callbacks still running: the loop keeps only weak references to tasks.
_callback_tasks: set[asyncio.Future[Any]] = set()


def run_callback(
    callback: SendCallback, future: asyncio.Future[RecordMetadata], topic: str
) -> None:
    """Run a send's ``callback``; what it raises is logged, never passed to the producer."""
    try:
        result = callback(future)
    except Exception:
        logger.exception("The send callback %r of a record to topic %r raised", callback, topic)
        return
    if inspect.isawaitable(result):
        task = asyncio.ensure_future(result)
        _callback_tasks.add(task)
        task.add_done_callback(lambda t: _callback_done(t, callback, topic))


def _callback_done(task: asyncio.Future[Any], callback: SendCallback, topic: str) -> None:
    _callback_tasks.discard(task)
    if not task.cancelled() and (exc := task.exception()) is not None:
        logger.error(
            "The send callback %r of a record to topic %r raised",
            callback,
            topic,
            exc_info=exc,
        )


class ProducerDriver(abc.ABC):
    """Sends records: each is settled (``acked``/``failed``) by the broker's answer."""

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None: ...

    @abc.abstractmethod
    async def send_many(self, records: Sequence[OutgoingRecord]) -> None:
        """Queue ``records`` in order; each is settled by its ack (or error) later.

        Returns once all are queued. A record that cannot be sent (a partition the topic
        lacks, too large) is settled with its error here, without stopping the others.
        """

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

    async def list_topics(self) -> set[str]:
        """The names of the topics on the broker (``app.topic(pattern=...)`` reads them)."""
        raise NotImplementedError(
            f"{type(self).__name__} cannot list topics, which app.topic(pattern=...) needs: "
            "name the topics instead."
        )

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
