"""Topics: channels backed by the broker.

Sending serializes the key and value with the topic's schema and hands the bytes to the
producer; reading subscribes a queue with the conductor, which the consumer feeds.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .channels import Channel, EventQueue, Headers, T, encode_headers
from .events import _current_event
from .settings import check_on_error
from .transport.base import RecordMetadata, SendCallback, TopicSpec

if TYPE_CHECKING:
    from .schemas import Schema
    from .serializers import CodecArg

__all__ = ["Topic", "check_topic_name", "legal_topic_name"]

# Kafka's own rule for topic names (its Topic.validate): ASCII letters and digits,
# '.', '_' and '-', at most 249 characters, and not '.' or '..'.
_NOT_IN_TOPIC_NAME = re.compile(r"[^a-zA-Z0-9._-]")
MAX_TOPIC_NAME = 249


def check_topic_name(name: str) -> None:
    """Raise ``ValueError`` naming the rule if Kafka would reject topic ``name``.

    Example::

        check_topic_name('orders-v2')         # fine
        check_topic_name('bad topic/name!')   # ValueError
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"Topic names must be non-empty strings, not {name!r}")
    bad = sorted(set(_NOT_IN_TOPIC_NAME.findall(name)))
    if bad:
        raise ValueError(
            f"Topic name {name!r} has characters Kafka rejects ({''.join(bad)!r}): use only "
            "ASCII letters, digits, '.', '_' and '-'."
        )
    if len(name) > MAX_TOPIC_NAME:
        raise ValueError(
            f"Topic name {name[:40]!r}... is {len(name)} characters long: Kafka allows at "
            f"most {MAX_TOPIC_NAME}."
        )
    if name in (".", ".."):
        raise ValueError(f"Topic name {name!r} is reserved by Kafka: choose another name.")


def legal_topic_name(text: str) -> str:
    """``text`` made into a topic name Kafka accepts, for names Faust derives itself
    (e.g. from an agent declared in a function: ``test.<locals>.agent``).

    Example::

        legal_topic_name('tests.test_x.<locals>.agent')   # 'tests.test_x._locals_.agent'
    """
    name = _NOT_IN_TOPIC_NAME.sub("_", text)[:MAX_TOPIC_NAME]
    return "_" + name if name in (".", "..", "") else name


class Topic(Channel[T]):
    """A named topic on the app's broker.

    Example::

        orders = app.topic('orders', key_type=str, value_type=Order, partitions=8)
        await orders.send(key='acct-1', value=Order(amount=10))
    """

    def __init__(
        self,
        app: Any,
        *,
        topics: Sequence[str],
        schema: Schema | None = None,
        key_type: Any = None,
        value_type: Any = None,
        key_serializer: Any = None,
        value_serializer: Any = None,
        partitions: int | None = None,
        retention: float | None = None,
        compacting: bool | None = None,
        deleting: bool | None = None,
        replicas: int | None = None,
        internal: bool = False,
        config: Mapping[str, Any] | None = None,
        maxsize: int | None = None,
        allow_empty: bool = False,
        on_error: str | None = None,
        dead_letter_topic: str | None = None,
        pattern: str | re.Pattern[str] | None = None,
        acks: bool = True,
        is_iterator: bool = False,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not isinstance(acks, bool):
            raise TypeError(
                f"app.topic({', '.join(map(repr, topics))}, acks={acks!r}): acks is Faust's "
                "consumer-side flag, True or False (False: offsets read from this topic are "
                "never committed). The producer's acks (0, 1, -1) are the producer_acks "
                "setting."
            )
        if pattern is not None and topics:
            raise ValueError(
                f"app.topic({', '.join(map(repr, topics))}, pattern={pattern!r}): give topic "
                "names or a pattern, not both."
            )
        if not topics and pattern is None:
            raise ValueError("app.topic() needs at least one topic name (or pattern=...)")
        #: Subscribe every topic whose name matches (``re.match``; see
        #: :mod:`faust.topic_patterns`); None: the named ``topics``.
        self.pattern = re.compile(pattern) if isinstance(pattern, str) else pattern
        for name in topics:
            check_topic_name(name)
        if partitions is not None and (not isinstance(partitions, int) or partitions < 1):
            raise ValueError(
                f"Topic {topics[0]!r}: partitions must be an int >= 1, not {partitions!r}"
            )
        if on_error is not None:
            check_on_error(on_error, f"Topic {topics[0]!r}")
        if schema is None:
            schema = app.schema(
                key_type=key_type,
                value_type=value_type,
                key_serializer=key_serializer,
                value_serializer=value_serializer,
                allow_empty=allow_empty,
            )
        super().__init__(app, schema=schema, maxsize=maxsize, loop=loop)
        self.topics = tuple(topics)
        #: False: this app never commits offsets of these topics (Faust's ``acks``);
        #: what it reads from them is read again after a restart.
        self.acks = acks
        if self.pattern is not None:
            self.name = f"pattern:{self.pattern.pattern}"
        else:
            self.name = self.topics[0]
        self.partitions = partitions
        self.retention = retention
        self.compacting = compacting
        self.deleting = deleting
        self.replicas = replicas
        self.internal = internal
        self.config = dict(config or {})
        #: For records that cannot be decoded; None: the app's ``on_error`` setting.
        self.on_error = on_error
        #: Their dead-letter topic; None: the app's ``dead_letter_topic`` setting.
        self.dead_letter_topic = dead_letter_topic
        self._key_dumps = schema.key_dumper()
        self._value_dumps = schema.value_dumper()
        #: A schema subclass encodes (Faust's dumps_key/dumps_value): every send asks it.
        self._custom_dumps = schema.custom_dumps()
        #: Set when the schema overrides loads_key/loads_value (decoded per message).
        self.message_loaders = schema.message_loaders(app)
        if is_iterator:
            self.is_iterator = True
            self._own_queue = self.subscribe()

    def get_topic_name(self) -> str:
        if self.pattern is not None:
            raise ValueError(
                f"Topic {self.name!r} reads the topics its pattern matches: send to one of "
                "them by name (app.topic('name')) instead."
            )
        if len(self.topics) > 1:
            raise ValueError(
                f"Topic {self.topics!r} names several topics; send to one of them instead."
            )
        return self.name

    # -- reading
    def subscribe(self) -> EventQueue:
        queue = EventQueue(self.maxsize)
        self._queues.append(queue)
        self.app.conductor.subscribe(self, queue)
        return queue

    def unsubscribe(self, queue: EventQueue) -> None:
        super().unsubscribe(queue)
        self.app.conductor.unsubscribe(self, queue)

    # -- sending
    async def send(
        self,
        *,
        key: Any = None,
        value: Any = None,
        partition: int | None = None,
        timestamp: float | None = None,
        headers: Headers = None,
        schema: Schema | None = None,
        key_serializer: CodecArg | None = None,
        value_serializer: CodecArg | None = None,
        callback: SendCallback | None = None,
        force: bool = False,
    ) -> RecordMetadata:
        """Send a record and wait until the broker has stored it; returns where it is.

        ``partition`` None: chosen by the key (Kafka's partitioner), else round robin.
        ``timestamp`` in seconds (default: now). ``headers``: a mapping or pairs.
        ``schema``, ``key_serializer``, ``value_serializer``: encode this record other
        than the topic does. ``callback(future)`` is called once when the send is done:
        ``future.result()`` is the :class:`RecordMetadata`, or raises the error (see
        ``future.exception()``); it may be ``async def``; what it raises is logged.
        ``force`` is accepted as in Faust: records are never held back here.

        The result can be awaited again (it gives itself), as Faust code does::

            metadata = await orders.send(key='acct-1', value=Order(amount=10))
            print(metadata.partition, metadata.offset)
            metadata = await metadata   # the same

        Inside an agent, the event being processed is not committed until the record is
        acknowledged.
        """
        producer = await self.app.maybe_start_producer()
        event = _current_event.get()
        if (
            schema is None
            and key_serializer is None
            and value_serializer is None
            and not self._custom_dumps
        ):
            key_bytes, value_bytes = self._key_dumps(key), self._value_dumps(value)
        else:
            key_bytes, value_bytes, headers = self._dumps(
                key, value, schema, key_serializer, value_serializer, headers
            )
        headers_out = encode_headers(headers) if headers else None
        if self.app.on_produce_message.receivers:
            headers_out = self._on_produce(
                key_bytes, value_bytes, partition, timestamp, headers_out
            )
        fut = await producer.send(
            self.get_topic_name(),
            key_bytes,
            value_bytes,
            partition=partition,
            timestamp=timestamp,
            headers=headers_out,
            # Its offset is not committed until this record is acked.
            holder=None if event is None else event.message,
            callback=callback,
        )
        return await fut

    def send_soon(
        self,
        *,
        key: Any = None,
        value: Any = None,
        partition: int | None = None,
        timestamp: float | None = None,
        headers: Headers = None,
        schema: Schema | None = None,
        key_serializer: CodecArg | None = None,
        value_serializer: CodecArg | None = None,
        callback: SendCallback | None = None,
        force: bool = False,
    ) -> asyncio.Future[RecordMetadata]:
        """Buffer a record for sending and return at once; the future resolves on ack
        (or fails with the error). The arguments are those of :meth:`send`.

        Inside an agent, the event being processed is not committed until the record is
        acknowledged.

        Example::

            fut = orders.send_soon(key='acct-1', value=Order(amount=10))
            metadata = await fut
        """
        event = _current_event.get()
        if (
            schema is None
            and key_serializer is None
            and value_serializer is None
            and not self._custom_dumps
        ):
            key_bytes, value_bytes = self._key_dumps(key), self._value_dumps(value)
        else:
            key_bytes, value_bytes, headers = self._dumps(
                key, value, schema, key_serializer, value_serializer, headers
            )
        headers_out = encode_headers(headers) if headers else None
        if self.app.on_produce_message.receivers:
            headers_out = self._on_produce(
                key_bytes, value_bytes, partition, timestamp, headers_out
            )
        return self.app.producer_for_send_soon().send_soon(
            self.get_topic_name(),
            key_bytes,
            value_bytes,
            partition=partition,
            timestamp=timestamp,
            headers=headers_out,
            # Its offset is not committed until this record is acked.
            holder=None if event is None else event.message,
            callback=callback,
        )

    def _on_produce(
        self,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: list[tuple[str, bytes]] | None,
    ) -> list[tuple[str, bytes]] | None:
        """Send ``app.on_produce_message`` for a record; its receivers may append
        headers (e.g. a tracing id). Only called while it has receivers."""
        headers = list(headers or ())
        self.app.on_produce_message.send_sync(
            key=key, value=value, partition=partition, timestamp=timestamp, headers=headers
        )
        return headers or None

    def _dumps(
        self,
        key: Any,
        value: Any,
        schema: Schema | None,
        key_serializer: CodecArg | None,
        value_serializer: CodecArg | None,
        headers: Headers,
    ) -> tuple[bytes | None, bytes | None, Headers]:
        """Key, value and headers encoded with another schema or serializer than the
        topic's, or through a schema subclass's ``dumps_key``/``dumps_value``."""
        schema = self.schema if schema is None else schema
        if schema.custom_dumps():
            # Faust's form: the serializers are the override's arguments.
            return schema.encode(
                self.app,
                key,
                value,
                headers,
                key_serializer=key_serializer,
                value_serializer=value_serializer,
            )
        changes: dict[str, Any] = {}
        if key_serializer is not None:
            changes["key_serializer"] = key_serializer
        if value_serializer is not None:
            changes["value_serializer"] = value_serializer
        if changes:
            schema = schema.derive(**changes)
        return schema.dumps_key(key), schema.dumps_value(value), headers

    # -- declaring
    def specs(self) -> list[TopicSpec]:
        conf = self.app.conf
        return [
            TopicSpec(
                name=name,
                partitions=self.partitions or conf.topic_partitions,
                replication_factor=self.replicas or conf.topic_replication_factor,
                config={str(k): str(v) for k, v in self.config.items()},
                compacting=bool(self.compacting),
                deleting=self.deleting if self.deleting is not None else not self.compacting,
                retention=self.retention,
            )
            for name in self.topics
        ]

    async def declare(self) -> None:
        """Create the topic on the broker if it does not exist."""
        for spec in self.specs():
            await self.app.transport.declare_topic(spec)

    async def maybe_declare(self) -> None:
        """Create the topic on the broker unless this app has already declared it.

        Example::

            await app.topic('orders', partitions=8).maybe_declare()
        """
        await self.app.declare_topic(self)

    def derive(self, **changes: Any) -> Topic:
        """A copy of this topic with some options changed."""
        options: dict[str, Any] = {
            "topics": self.topics,
            "schema": self.schema,
            "partitions": self.partitions,
            "retention": self.retention,
            "compacting": self.compacting,
            "deleting": self.deleting,
            "replicas": self.replicas,
            "internal": self.internal,
            "config": self.config,
            "maxsize": self.maxsize,
            "on_error": self.on_error,
            "dead_letter_topic": self.dead_letter_topic,
            "pattern": self.pattern,
            "acks": self.acks,
            "loop": self._loop,
        }
        options.update(changes)
        return Topic(self.app, **options)

    def clone(self, *, is_iterator: bool | None = None, **changes: Any) -> Topic:
        """A topic object reading the same topics (see :meth:`Channel.clone`): with
        ``is_iterator=True`` it has its own queue from now on, read with ``get()``.

        Example::

            reader = orders.clone(is_iterator=True)
            event = await reader.get(timeout=5.0)
        """
        clone = self.derive(**changes)
        if is_iterator if is_iterator is not None else self.is_iterator:
            clone.is_iterator = True
            clone._own_queue = clone.subscribe()
        return clone

    def __repr__(self) -> str:
        return f"<Topic {','.join(self.topics) or self.name}>"
