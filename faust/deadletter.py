"""Dead letters: where an event goes when it cannot be processed, and the error counts.

A record that cannot be decoded, and an event whose agent still raises after its
retries, is written unchanged (its key, value and headers, in bytes) to a dead-letter
topic, ``{app_id}-{name}-dlq`` by default, where ``name`` is the agent's name or the
source topic's. Headers say why and where from:

=========================  ==========================================================
``faust.error.type``       the exception's class (``ValueError``, ``myapp.DbDown``)
``faust.error.message``    ``str(exception)``, cut to 1,000 characters
``faust.source.topic``     the topic the record was read from
``faust.source.partition`` its partition (the dead letter goes to the same partition)
``faust.source.offset``    its offset
``faust.agent``            the agent that raised (not set for undecodable records)
``faust.error.attempts``   how many times the agent was handed the event
=========================  ==========================================================

The source record's offset is committed only once the broker has acked its dead letter
(the record is sent on the source message's behalf, like any send from an agent).

Example (read a dead-letter topic with an agent)::

    dlq = app.topic('orders-app-process-dlq', value_serializer='raw')

    @app.agent(dlq)
    async def inspect(stream):
        async for event in stream.events():
            print(event.headers['faust.error.type'], event.message.value)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from .exceptions import PartitionCountMismatch
from .topics import legal_topic_name
from .transport.base import Message, RecordMetadata

__all__ = [
    "ErrorCounts",
    "DeadLetters",
    "HEADER_ERROR_TYPE",
    "HEADER_ERROR_MESSAGE",
    "HEADER_SOURCE_TOPIC",
    "HEADER_SOURCE_PARTITION",
    "HEADER_SOURCE_OFFSET",
    "HEADER_AGENT",
    "HEADER_ATTEMPTS",
]

logger = logging.getLogger(__name__)

HEADER_ERROR_TYPE = "faust.error.type"
HEADER_ERROR_MESSAGE = "faust.error.message"
HEADER_SOURCE_TOPIC = "faust.source.topic"
HEADER_SOURCE_PARTITION = "faust.source.partition"
HEADER_SOURCE_OFFSET = "faust.source.offset"
HEADER_AGENT = "faust.agent"
HEADER_ATTEMPTS = "faust.error.attempts"

# Long enough for any useful message, short enough that a header never nears Kafka's
# record size limit.
MAX_MESSAGE_CHARS = 1000


@dataclass
class ErrorCounts:
    """What went wrong since the app started: read it as ``app.error_counts``.

    Example::

        counts = app.error_counts
        print(counts.dead_lettered, counts.as_dict())
    """

    #: Records that could not be decoded (key or value).
    decode_errors: int = 0
    #: Times an agent raised while processing (each attempt counts).
    agent_errors: int = 0
    #: Events handed again to a restarted agent after it raised on them.
    retried: int = 0
    #: Dead letters the broker acknowledged.
    dead_lettered: int = 0
    #: Dead letters that could not be written (their source offset stays uncommitted).
    dead_letter_failures: int = 0
    #: Events and records dropped without a dead letter (``on_error='skip'``).
    skipped: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def dead_letter_topic_name(template: str, app_id: str, name: str) -> str:
    """The dead-letter topic for ``name`` (an agent or topic), as a legal Kafka name."""
    full = template.replace("{app_id}", app_id).replace("{name}", name)
    return legal_topic_name(full)


def error_headers(
    message: Message, exc: BaseException, *, agent: str | None = None, attempts: int = 0
) -> list[tuple[str, bytes]]:
    """The source record's headers plus the ``faust.*`` headers saying what failed."""
    kind = type(exc)
    type_name = kind.__qualname__
    if kind.__module__ != "builtins":
        type_name = f"{kind.__module__}.{type_name}"
    headers = [
        *message.headers,
        (HEADER_ERROR_TYPE, type_name.encode()),
        (HEADER_ERROR_MESSAGE, str(exc)[:MAX_MESSAGE_CHARS].encode("utf-8", "replace")),
        (HEADER_SOURCE_TOPIC, message.topic.encode()),
        (HEADER_SOURCE_PARTITION, str(message.partition).encode()),
        (HEADER_SOURCE_OFFSET, str(message.offset).encode()),
    ]
    if agent is not None:
        headers.append((HEADER_AGENT, agent.encode()))
    if attempts:
        headers.append((HEADER_ATTEMPTS, str(attempts).encode()))
    return headers


class DeadLetters:
    """Writes dead letters for an app (``app.dead_letters``); declares each dead-letter
    topic before its first record, with the source topic's partition count."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.counts: ErrorCounts = app.error_counts
        # Topic name -> its partition count, once declared.
        self._declared: dict[str, int] = {}
        # Declarations one at a time: dead letters of one partition keep their order.
        self._lock: asyncio.Lock | None = None

    def topic_name(self, name: str, override: str | None = None) -> str:
        """The dead-letter topic of agent or topic ``name`` (``override`` if given)."""
        template = override or self.app.conf.dead_letter_topic
        return dead_letter_topic_name(template, self.app.conf.id, name)

    def submit(
        self,
        topic: str,
        message: Message,
        headers: list[tuple[str, bytes]],
        *,
        release: Callable[[], Any],
        key: bytes | None = None,
        value: bytes | None = None,
    ) -> None:
        """Write ``message`` (or ``key``/``value`` for in-process events) to ``topic``.

        ``release`` (the caller's ack of the message) is called once the record is handed
        to the producer on the message's behalf, so the offset is committed only after the
        broker acks the dead letter. If it cannot be written, ``release`` is never called:
        the offset is not committed and the record is read again after a restart.
        """
        if message.key is not None or message.value is not None:
            key, value = message.key, message.value
        count = self._declared.get(topic)
        if count is not None:
            self._send(topic, count, message, key, value, headers, release)
            return
        self.app._spawn(
            self._declare_and_send(topic, message, key, value, headers, release),
            name=f"dead-letter:{topic}",
        )

    async def _declare_and_send(
        self,
        topic: str,
        message: Message,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]],
        release: Callable[[], Any],
    ) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        try:
            async with self._lock:
                count = self._declared.get(topic)
                if count is None:
                    count = await self._declare(topic, message.topic)
        except Exception as exc:
            self.counts.dead_letter_failures += 1
            logger.error(
                "Could not create dead-letter topic %r for %s[%s]@%s: %r. Its offset is not "
                "committed: the record is processed again after a restart. Create the topic "
                "or fix the broker settings.",
                topic,
                message.topic,
                message.partition,
                message.offset,
                exc,
            )
            return
        self._send(topic, count, message, key, value, headers, release)

    async def _declare(self, topic: str, source: str) -> int:
        app = self.app
        partitions = app.partition_count_of(source)
        if partitions is None:
            partitions = await app.transport.partition_count(source)
        partitions = partitions or app.conf.topic_partitions
        try:
            await app.declare_topic(app.topic(topic, partitions=partitions, internal=True))
        except PartitionCountMismatch:
            # Created earlier with another count: use it as it is (records whose source
            # partition it lacks are spread by key instead).
            existing = await app.transport.partition_count(topic)
            logger.warning(
                "Dead-letter topic %r exists with %s partitions, not %s like %r: dead letters "
                "keep their source partition only where it exists.",
                topic,
                existing,
                partitions,
                source,
            )
            partitions = existing or partitions
        self._declared[topic] = partitions
        return partitions

    def _send(
        self,
        topic: str,
        partitions: int,
        message: Message,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]],
        release: Callable[[], Any],
    ) -> None:
        partition = message.partition if 0 <= message.partition < partitions else None
        try:
            self.app.producer_for_send_soon().send_soon(
                topic,
                key,
                value,
                partition=partition,
                headers=headers,
                holder=message,
                callback=lambda f: self._on_sent(f, topic, message),
            )
        except Exception as exc:
            # Not released: the source offset is never committed past a lost record.
            self._failed(topic, message, exc)
            return
        # The record now holds the message until its ack.
        release()

    def _on_sent(self, fut: asyncio.Future[RecordMetadata], topic: str, message: Message) -> None:
        if fut.cancelled():
            self._failed(topic, message, asyncio.CancelledError())
        elif (exc := fut.exception()) is not None:
            self._failed(topic, message, exc)
        else:
            self.counts.dead_lettered += 1
            self.app.sensors.on_dead_letter(message, topic)

    def _failed(self, topic: str, message: Message, exc: BaseException) -> None:
        self.counts.dead_letter_failures += 1
        logger.error(
            "Dead letter of %s[%s]@%s to %r failed: %r. Its offset is not committed: the "
            "record is processed again after a restart.",
            message.topic,
            message.partition,
            message.offset,
            topic,
            exc,
        )
