"""Streams: the user's ``async for`` over a channel, and its operators.

A stream pops events from its queue without awaiting while any are buffered, so the cost
of one event is a few attribute lookups, not a trip through the event loop. The previous
event is acked when the agent asks for the next one: the agent "has moved past it".
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from .channels import EventQueue
from .events import Event, _current_event
from .transport.base import Message
from .transport.partitioner import partition_for_key

if TYPE_CHECKING:
    from .channels import Channel
    from .topics import Topic

__all__ = ["Stream"]

logger = logging.getLogger(__name__)

# Returned by a processor to drop the event (used by filter).
_SKIP = object()

Processor = Callable[[Any], Any]


class Stream:
    """An infinite async iterator of values from a channel or topic.

    Example::

        @app.agent(orders_topic)
        async def process(orders):
            async for order in orders.filter(lambda o: o.amount > 100):
                print(order)
    """

    def __init__(
        self,
        app: Any,
        queue: EventQueue,
        *,
        channel: Channel | None = None,
        processors: list[Processor] | None = None,
        autoack: bool = True,
        parent: Stream | None = None,
        in_process: bool = False,
    ) -> None:
        self.app = app
        #: Repartition (group_by, through) inside this process instead of through the
        #: broker: set for ``agent.test_context()``, which runs without a consumer.
        self.in_process = in_process
        self.queue = queue
        self.channel = channel
        self.autoack = autoack
        self._processors: list[Processor] = list(processors or ())
        self._parent = parent
        self._children: list[Stream] = []
        self._prev: Event | None = None
        #: The list ``take()`` handed out and has not acked yet (retried on a crash).
        self._taken: list[Event] | None = None
        self._feeder: Callable[[], Coroutine[Any, Any, None]] | None = None
        self._feeder_task: asyncio.Task[None] | None = None
        self._error: BaseException | None = None
        #: Set on an agent's stream: queues of streams its last run derived, to reuse.
        self._parked: ParkedQueues | None = None
        #: The agent whose stream this is (names its repartition topics, as in Faust).
        self._agent_name: str | None = None
        #: The channel's name already starts with the agent's (a repartition topic).
        self._channel_prefixed = False
        if parent is not None:
            parent._children.append(self)

    # -- iteration
    def __aiter__(self) -> Stream:
        self._start_feeder()
        return self

    async def __anext__(self) -> Any:
        # This runs once per event: Event.ack and EventQueue.pop are inlined.
        prev = self._prev
        if prev is not None:
            self._prev = None
            if self.autoack and not prev.acked:
                prev.acked = True
                message = prev.message
                message.refcount -= 1
                if message.refcount == 0:
                    on_done = message.on_done
                    if on_done is not None:
                        on_done(message)
        queue = self.queue
        # Fast path: an event is buffered and no operator needs to see it first.
        buffer = queue.buffer
        if buffer and not self._processors and not queue.closed:
            event = buffer.popleft()
            if queue._putter is not None:
                queue.wake_putter()
            _current_event.set(event)
            self._prev = event
            return event.value
        event = await self._take_event(None)
        self._prev = event
        return event.value

    async def _take_event(self, timeout: float | None) -> Event:
        """Pop the next event that passes the processors (not acked); None never returned.

        Raises StopAsyncIteration when the queue closes, TimeoutError after ``timeout``.
        """
        queue = self.queue
        processors = self._processors
        while True:
            if queue.closed:
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            event = queue.pop()
            if event is None:
                if not await queue.wait(timeout):
                    raise TimeoutError
                continue
            if processors:
                _current_event.set(event)
                value = event.value
                for processor in processors:
                    value = processor(value)
                    if inspect.isawaitable(value):
                        value = await value
                    if value is _SKIP:
                        break
                if value is _SKIP:
                    event.ack()
                    continue
                event.value = value
            _current_event.set(event)
            return event

    # -- views of the same events
    async def items(self) -> AsyncIterator[tuple[Any, Any]]:
        """Iterate over ``(key, value)`` pairs."""
        async for value in self:
            event = self._prev
            yield (event.key if event is not None else None), value

    async def events(self) -> AsyncIterator[Event]:
        """Iterate over :class:`~faust.Event` objects (key, value, headers, message)."""
        async for _ in self:
            event = self._prev
            assert event is not None
            yield event

    async def enumerate(self, start: int = 0) -> AsyncIterator[tuple[int, Any]]:
        """Iterate over ``(index, value)`` pairs."""
        index = start
        async for value in self:
            yield index, value
            index += 1

    async def take(self, max_: int, within: float | None = None) -> AsyncIterator[list[Any]]:
        """Yield lists of up to ``max_`` values; with ``within``, a shorter list after that
        many seconds. The events of a list are acked when the next list is asked for.

        Example::

            async for batch in stream.take(100, within=5.0):
                await bulk_insert(batch)
        """
        if max_ < 1:
            raise ValueError(f"take(max_={max_}): max_ must be at least 1")
        self._start_feeder()
        loop = asyncio.get_running_loop()
        while True:
            events: list[Event] = []
            deadline = None if within is None else loop.time() + within
            try:
                while len(events) < max_:
                    timeout = None if deadline is None else max(deadline - loop.time(), 0.0)
                    try:
                        events.append(await self._take_event(timeout))
                    except TimeoutError:
                        if events:
                            break
                        deadline = None if within is None else loop.time() + within
            except StopAsyncIteration:
                if events:
                    self._taken = events
                    yield [event.value for event in events]
                    self._taken = None
                    self._ack_all(events)
                return
            self._taken = events
            yield [event.value for event in events]
            self._taken = None
            self._ack_all(events)

    def _ack_all(self, events: list[Event]) -> None:
        if self.autoack:
            for event in events:
                event.ack()

    # -- operators that return a new stream over the same queue
    def _clone(self, **changes: Any) -> Stream:
        kwargs: dict[str, Any] = {
            "channel": self.channel,
            "processors": self._processors,
            "autoack": self.autoack,
            "in_process": self.in_process,
        }
        kwargs.update(changes)
        clone = Stream(self.app, self.queue, parent=self, **kwargs)
        clone._agent_name = self._agent_name
        clone._channel_prefixed = self._channel_prefixed
        clone._feeder = self._feeder
        self._feeder = None
        return clone

    def filter(self, predicate: Callable[[Any], Any]) -> Stream:
        """Only values for which ``predicate(value)`` is true (it may be async)."""

        def _filter(value: Any) -> Any:
            result = predicate(value)
            if inspect.isawaitable(result):
                return _await_filter(result, value)
            return value if result else _SKIP

        return self._clone(processors=[*self._processors, _filter])

    def add_processor(self, processor: Processor) -> None:
        """Run ``processor(value)`` on each value; what it returns replaces the value."""
        self._processors.append(processor)

    def noack(self) -> Stream:
        """A stream whose events are not acked automatically: call ``event.ack()``."""
        return self._clone(autoack=False)

    async def ack(self, event: Event) -> bool:
        """Ack an event of a ``noack()`` stream."""
        return event.ack()

    def echo(self, *channels: str | Channel) -> Stream:
        """Also send every value to ``channels`` (names or topics)."""
        targets = [self.app.topic(c) if isinstance(c, str) else c for c in channels]

        def _echo(value: Any) -> Any:
            event = _current_event.get()
            key = event.key if event is not None else None
            for target in targets:
                target.send_soon(key=key, value=value)
            return value

        return self._clone(processors=[*self._processors, _echo])

    # -- operators that move events through another topic
    # The event's headers go along (a reply to ``ask()`` follows the event to whichever
    # agent yields for it, through any number of repartitions).
    def through(self, channel: str | Channel) -> Stream:
        """Forward every event to ``channel`` and return a stream reading from it.

        Example::

            async for order in orders.through('orders-audited'):
                ...
        """
        target = self.app.topic(channel) if isinstance(channel, str) else channel
        return self._derive(target, None)

    def group_by(
        self,
        key: Any,
        *,
        name: str | None = None,
        topic: Topic | None = None,
        partitions: int | None = None,
    ) -> Stream:
        """Repartition by a new key through an internal topic named as Faust names it:
        ``{agent}-{source topic}-{name}-repartition`` in an agent, and
        ``{source topic}-{name}-repartition`` outside one.

        ``key`` is a model field (``Order.account_id``, named ``Order.account_id``) or a
        callable taking the value (give it ``name=``). Keys are encoded with the source
        topic's key serializer (the app's ``key_serializer``, raw by default: a str key
        is its UTF-8 bytes), so an app moved over from faust-streaming keeps reading and
        writing the repartition topic it had.

        Example::

            async for order in orders.group_by(Order.account_id):
                totals[order.account_id] += order.amount
        """
        getter: Callable[[Any], Any]
        field_name = getattr(key, "field", None)
        key_type: Any = None
        if field_name is not None and hasattr(key, "getattr"):
            getter = key.getattr
            model = getattr(key, "model", None)
            name = name or (f"{model.__name__}.{field_name}" if model else field_name)
            # Decode the repartitioned key to the field's type where the codec can.
            field_type = getattr(key, "value_type", None)
            if field_type in _KEY_TYPES or _is_record_type(field_type):
                key_type = field_type
        elif callable(key):
            getter = key
            if name is None and topic is None:
                raise ValueError(
                    "group_by() with a callable key needs name=...: it names the "
                    "repartition topic {agent}-{topic}-{name}-repartition."
                )
        else:
            raise TypeError(f"group_by() key must be a model field or a callable, not {key!r}")
        # Values go to the repartition topic as they came, in bytes, unless something
        # may have changed them (a processor, or a topic of the caller's with its own
        # schema): re-encoding would give the same value at a cost.
        from .topics import Topic, legal_topic_name

        as_received = topic is None and isinstance(self.channel, Topic) and not self._processors
        derives_topic = topic is None
        if topic is None:
            schema = self.channel.schema if self.channel is not None else None
            source = self.channel.name if self.channel is not None else self.app.conf.id
            topic = self.app.topic(
                legal_topic_name(f"{self._repartition_prefix()}{source}-{name}-repartition"),
                key_type=key_type,
                value_type=schema.value_type if schema is not None else None,
                key_serializer=schema.key_serializer if schema is not None else None,
                value_serializer=schema.value_serializer if schema is not None else None,
                partitions=partitions or _partitions_of(self.channel),
                internal=True,
            )
        derived = self._derive(topic, getter, as_received=as_received)
        # Faust prefixes a repartition topic once: a group_by of it adds no agent name.
        derived._channel_prefixed = derives_topic and bool(self._agent_name)
        return derived

    def _repartition_prefix(self) -> str:
        """``{agent}-`` for a repartition topic of an agent's stream, unless the source
        topic already carries it (the agent's own topic, or a repartition topic)."""
        agent = self._agent_name
        if not agent or self._channel_prefixed:
            return ""
        if self.channel is not None and self.channel.name == _agent_topic(self.app, agent):
            return ""
        return f"{agent}-"

    def _derive(
        self,
        target: Channel,
        key_of: Callable[[Any], Any] | None,
        *,
        as_received: bool = False,
    ) -> Stream:
        """A stream over ``target``, fed with this stream's events under the key
        ``key_of(value)`` (None: the event's key); ``as_received``: send the value in the
        bytes it came in."""
        if self.in_process:
            return self._derive_in_process(target, key_of)
        queue = self._take_parked(target)
        derived = target.stream() if queue is None else Stream(self.app, queue, channel=target)
        derived._parent = self
        derived._agent_name = self._agent_name
        self._children.append(derived)

        async def forward() -> None:
            async for event in self.events():
                message = event.message
                received = message.value
                target.send_soon(
                    key=event.key if key_of is None else key_of(event.value),
                    # In-memory channels deliver no bytes.
                    value=received if as_received and received is not None else event.value,
                    headers=message.headers or None,
                )

        derived._feeder = forward
        return derived

    def _derive_in_process(self, target: Channel, key_of: Callable[[Any], Any] | None) -> Stream:
        """``_derive`` without a broker (``agent.test_context()``): each event goes straight
        to the derived stream, on the partition its key would get on ``target``, keeping
        its offset, timestamp and headers; its message counts as processed once the
        derived stream has moved past it (so ``put()`` returns when the agent is done)."""
        derived = Stream(
            self.app,
            self._take_parked(target) or EventQueue(target.maxsize),
            channel=target,
            parent=self,
            in_process=True,
        )
        derived._agent_name = self._agent_name
        from .topics import Topic

        queue = derived.queue
        partitions = _partitions_of(target) or self.app.conf.topic_partitions
        # A topic partitions by the key's bytes; an in-memory channel has no partitions.
        dumps_key = target.schema.dumps_key if isinstance(target, Topic) else None

        async def forward() -> None:
            async for event in self.events():
                original = event.message
                key = event.key if key_of is None else key_of(event.value)
                data = dumps_key(key) if dumps_key is not None else None
                partition = (
                    original.partition if data is None else partition_for_key(data, partitions)
                )
                original.refcount += 1  # released by the copy's on_done
                copy = Message(
                    target.name,
                    partition,
                    original.offset,
                    original.timestamp,
                    None,
                    None,
                    original.headers,
                    on_done=_releaser(original),
                )
                await queue.put_many([Event(self.app, key, event.value, copy)])

        derived._feeder = forward
        return derived

    def _take_parked(self, target: Channel) -> EventQueue | None:
        """The queue a previous run of this stream's agent derived over ``target``."""
        stream: Stream | None = self
        while stream is not None:
            if stream._parked is not None:
                return stream._parked.take(target)
            stream = stream._parent
        return None

    def _start_feeder(self) -> None:
        feeder = self._feeder
        if feeder is None or self._feeder_task is not None:
            return
        task = asyncio.get_running_loop().create_task(feeder(), name=f"feeder:{self!r}")
        task.add_done_callback(self._on_feeder_done)
        self._feeder_task = task

    def _on_feeder_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            # Surface the failure in the agent reading this stream, so its supervisor
            # logs it and restarts the agent instead of the stream hanging forever.
            self._error = exc
            self.queue.close()

    # -- lifecycle
    def close(self) -> None:
        """Stop iteration at the next event; closes derived streams and their feeders."""
        for child in self._children:
            child.close()
        if self._feeder_task is not None:
            self._feeder_task.cancel()
        self.queue.close()
        unsubscribe = getattr(self.channel, "unsubscribe", None)
        if unsubscribe is not None:
            unsubscribe(self.queue)

    def __repr__(self) -> str:
        return f"<Stream: {self.channel!r}>"


class ParkedQueues:
    """The queues of the streams an agent's run derived (group_by, through), kept
    open and subscribed while the agent restarts after a crash.

    The restarted agent derives the same streams again and gets these queues back,
    with the events they buffered; meanwhile records fetched for their topics still
    have a reader (a topic without one counts its records as processed).
    """

    def __init__(self) -> None:
        self._queues: dict[Any, tuple[Channel, EventQueue]] = {}

    def park_derived(self, stream: Stream) -> None:
        """Stop the feeders of the streams derived from ``stream``; keep their queues."""
        for child in stream._children:
            if child.queue is not stream.queue and child.channel is not None:
                if child._feeder_task is not None:
                    child._feeder_task.cancel()
                key = _channel_key(child.channel)
                if key in self._queues or child.queue.closed:
                    child.close()  # a second stream over the same target: not reused
                else:
                    self._queues[key] = (child.channel, child.queue)
            self.park_derived(child)

    def take(self, target: Channel) -> EventQueue | None:
        entry = self._queues.pop(_channel_key(target), None)
        if entry is None or entry[1].closed:
            return None
        return entry[1]

    def queue_for(self, topic: str) -> EventQueue | None:
        """The parked queue that reads ``topic`` (where a retried event goes back)."""
        for channel, queue in self._queues.values():
            if topic in (getattr(channel, "topics", None) or (channel.name,)):
                return queue
        return None

    def close(self) -> None:
        for channel, queue in self._queues.values():
            queue.close()
            channel.unsubscribe(queue)
        self._queues.clear()


def _channel_key(channel: Channel) -> Any:
    # A repartition topic object is made anew by each run's group_by: key by its name.
    topics = getattr(channel, "topics", None)
    return tuple(topics) if topics else id(channel)


def _releaser(original: Message) -> Callable[[Message], None]:
    """What releases ``original`` once its in-process copy is processed."""
    return lambda _copy: original.decref()


async def _await_filter(result: Awaitable[Any], value: Any) -> Any:
    return value if await result else _SKIP


#: Key types a repartition topic decodes its keys to (what the raw codec writes back).
_KEY_TYPES = (str, bytes, int, float)


def _is_record_type(tp: Any) -> bool:
    from .models import Record

    return isinstance(tp, type) and issubclass(tp, Record)


def _agent_topic(app: Any, agent: str) -> str:
    """The topic an agent without a channel of its own reads (``{app id}-{agent}``)."""
    from .topics import legal_topic_name

    return legal_topic_name(f"{app.conf.id}-{agent}")


def _partitions_of(channel: Any) -> int | None:
    return getattr(channel, "partitions", None)
