"""Streams: the user's ``async for`` over a channel, and its operators.

A stream pops events from its queue without awaiting while any are buffered, so the cost
of one event is a few attribute lookups, not a trip through the event loop. The previous
event is acked when the agent asks for the next one: the agent "has moved past it".
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .channels import EventQueue
from .events import Event, _current_event
from .transport.base import TP, Message
from .transport.partitioner import partition_for_key

if TYPE_CHECKING:
    from .channels import Channel
    from .topics import Topic
    from .transactions import TransactionGate

__all__ = ["Stream"]

logger = logging.getLogger(__name__)

# Returned by a processor to drop the event (used by filter).
_SKIP = object()

Processor = Callable[[Any], Any]


#: The type of a stream's values: ``faust.Stream[Order]`` in annotations.
T = TypeVar("T")


class Stream(Generic[T]):
    """An infinite async iterator of values from a channel or topic.

    Example::

        @app.agent(orders_topic)
        async def process(orders):
            async for order in orders.filter(lambda o: o.amount > 100):
                print(order)
    """

    #: True for the class a stream switches to while a sensor wants its events (see
    #: ``_sensed_class``), and what Faust's stream hooks returned for the current event.
    _sensed = False
    _sensor_state: dict[Any, Any] | None = None

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
        active_partitions: set[TP] | None = None,
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
        #: Set by ``throw()``: raised in the reader at its next event or wake-up.
        self._thrown: BaseException | None = None
        #: Set on an agent's stream: queues of streams its last run derived, to reuse.
        self._parked: ParkedQueues | None = None
        #: The agent whose stream this is (names its repartition topics, as in Faust).
        self._agent_name: str | None = None
        #: The channel's name already starts with the agent's (a repartition topic).
        self._channel_prefixed = False
        #: The streams a combined stream (``s1 & s2``) reads; empty for any other.
        self._combined: list[Stream] = []
        self._closed = False
        #: processing_guarantee='exactly_once': the app's gate (faust/transactions.py).
        self._gate: TransactionGate | None = getattr(app, "txn_gate", None)
        #: The event an async processor (filter, map, ...) is awaiting on, or None.
        self._processing: Event | None = None
        #: Only events of these partitions are yielded (None: all), as in Faust; the
        #: others are acked and skipped. A processor does it: no cost when None.
        self.active_partitions = active_partitions
        if active_partitions is not None:
            partitions = frozenset(active_partitions)

            def _in_active_partitions(value: Any) -> Any:
                event = _current_event.get()
                return value if event is None or event.message.tp in partitions else _SKIP

            self._processors.append(_in_active_partitions)
        if parent is not None:
            parent._children.append(self)

    @property
    def current_event(self) -> Event | None:
        """The event whose value the stream last yielded (None before the first).

        Example::

            async for value in stream:
                print(stream.current_event.message.offset)
        """
        return self._prev or _current_event.get()

    # -- iteration
    def __aiter__(self) -> Stream:
        self._start_feeder()
        gate = getattr(self.app, "txn_gate", None)
        if gate is not None:
            # processing_guarantee='exactly_once': events wait while a commit runs.
            self._gate = gate
            gate.read_by(self)
        sensors = getattr(self.app, "sensors", None)
        if sensors is not None and sensors.stream_sensors and not self._sensed:
            # A sensor overrides Faust's per-event stream hooks: this stream calls them
            # from now on (decided here, once per iteration; otherwise no cost at all).
            self.__class__ = _sensed_class(type(self))
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
        gate = self._gate
        if gate is not None and gate.closed:
            # An exactly-once commit runs: no new event until it is done. The previous
            # one is acked, so the commit does not wait for this stream.
            await gate.opened()
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
        if gate is None:
            event = await self._take_event(None)
        else:
            event = await self._take_event_gated(gate)
        self._prev = event
        return event.value

    async def _take_event_gated(self, gate: TransactionGate) -> Event:
        """``_take_event`` under exactly-once: an event that arrives while a commit runs
        (it lets a delivery in progress finish) is kept here, not held by the stream,
        until the gate opens; dropped if the worker went back meanwhile (it is read
        again from the last commit)."""
        while True:
            event = await self._take_event(None)
            if gate.closed:
                # The epoch when it was taken, not when the wait for it began: a worker
                # that went back during that wait delivered it afterwards (it is due).
                epoch = gate.epoch
                await gate.opened()
                if gate.epoch != epoch:
                    continue
            # Where the task is looked up: not per event (see read_by).
            gate.read_by(self)
            return event

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
                if self._thrown is not None:
                    self._raise_thrown()
                if not await queue.wait(timeout):
                    raise TimeoutError
                continue
            if processors:
                _current_event.set(event)
                value = event.value
                for processor in processors:
                    value = processor(value)
                    if inspect.isawaitable(value):
                        # Held meanwhile: an exactly-once commit waits for it, as for
                        # an event an agent holds (see TransactionGate.is_idle).
                        self._processing = event
                        try:
                            value = await value
                        finally:
                            self._processing = None
                    if value is _SKIP:
                        break
                if value is _SKIP:
                    event.ack()
                    continue
                event.value = value
            _current_event.set(event)
            return event

    async def throw(self, exc: BaseException) -> None:
        """Raise ``exc`` in the code iterating this stream, at its next event (or now,
        if it waits for one); the event it would have got stays first in line.

        Example::

            await stream.throw(RuntimeError('reload the model'))
        """
        # Into the streams derived from this one too (filter, group_by, ...): the
        # one the code iterates raises.
        for stream in self._tree():
            stream._thrown = exc
            # A processor makes the reader leave the fast path; it only runs on the
            # next event, and puts that event back before raising.
            if stream._throw_processor not in stream._processors:
                stream._processors.insert(0, stream._throw_processor)
            getter = stream.queue._getter
            if getter is not None and not getter.done():
                getter.set_result(None)

    def _tree(self) -> list[Stream]:
        streams = [self]
        for child in self._children:
            streams.extend(child._tree())
        return streams

    def _throw_processor(self, value: Any) -> Any:
        event = _current_event.get()
        if event is not None:
            self.queue.buffer.appendleft(event)
        # Not the agent's failed event: it was put back, untouched.
        _current_event.set(None)
        self._raise_thrown()

    def _raise_thrown(self) -> None:
        exc, self._thrown = self._thrown, None
        if self._throw_processor in self._processors:
            self._processors.remove(self._throw_processor)
        assert exc is not None
        raise exc

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
        async for events in self._batches(max_, within, "take"):
            yield [event.value for event in events]

    async def take_events(
        self, max_: int, within: float | None = None
    ) -> AsyncIterator[list[Event]]:
        """As :meth:`take`, but yield the :class:`~faust.Event` objects (key, value,
        headers, message); they are acked when the next list is asked for.

        Example::

            async for events in stream.take_events(100, within=5.0):
                offsets = [event.message.offset for event in events]
        """
        async for events in self._batches(max_, within, "take_events"):
            yield list(events)

    async def take_with_timestamp(
        self, max_: int, within: float | None, timestamp_field_name: str
    ) -> AsyncIterator[list[Any]]:
        """As :meth:`take`, adding each message's timestamp (seconds since the epoch, as
        the broker stored it) to dict values under ``timestamp_field_name``; other values
        are yielded unchanged (as in Faust).

        Example::

            async for batch in stream.take_with_timestamp(100, 5.0, 'ts'):
                latest = max(value['ts'] for value in batch)
        """
        async for events in self._batches(max_, within, "take_with_timestamp"):
            values = []
            for event in events:
                value = event.value
                if isinstance(value, dict) and timestamp_field_name:
                    value[timestamp_field_name] = event.message.timestamp
                values.append(value)
            yield values

    async def _batches(
        self, max_: int, within: float | None, caller: str
    ) -> AsyncIterator[list[Event]]:
        """Lists of up to ``max_`` events (shorter after ``within`` seconds), each acked
        when the next list is asked for."""
        if max_ < 1:
            raise ValueError(f"{caller}(max_={max_}): max_ must be at least 1")
        self._start_feeder()
        loop = asyncio.get_running_loop()
        # processing_guarantee='exactly_once': a list waits while a commit runs.
        gate = getattr(self.app, "txn_gate", None)
        if gate is not None:
            gate.read_by(self)
        while True:
            events: list[Event] = []
            # The epoch at which the list's events were taken (see _take_event_gated).
            epoch = None if gate is None else gate.epoch
            deadline = None if within is None else loop.time() + within
            try:
                while len(events) < max_:
                    timeout = None if deadline is None else max(deadline - loop.time(), 0.0)
                    try:
                        event = await self._take_event(timeout)
                    except TimeoutError:
                        if events:
                            break
                        deadline = None if within is None else loop.time() + within
                        continue
                    if gate is not None and gate.epoch != epoch:
                        # The worker went back while this list was filling: what it has
                        # is read again; this event came after, so it is due.
                        events.clear()
                        epoch = gate.epoch
                    events.append(event)
            except StopAsyncIteration:
                if events:
                    self._taken = events
                    yield events
                    self._taken = None
                    self._ack_all(events)
                return
            if gate is not None:
                if gate.closed:
                    await gate.opened()
                if gate.epoch != epoch:
                    continue  # dropped meanwhile (read again): not processed here
                gate.read_by(self)
            self._taken = events
            yield events
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
        clone: Stream[Any] = type(self)(self.app, self.queue, parent=self, **kwargs)
        clone.active_partitions = self.active_partitions
        clone._combined = self._combined
        clone._agent_name = self._agent_name
        clone._channel_prefixed = self._channel_prefixed
        clone._feeder = self._feeder
        self._feeder = None
        return clone

    def derive(self, channel: Channel | None = None, **kwargs: Any) -> Stream:
        """A new stream with this one's options (processors, acking), some changed by
        ``kwargs`` (``autoack=``, ``processors=``, ...), as in Faust; with ``channel`` it
        reads that channel instead (every event sent there from now on).

        Example::

            manual = stream.derive(autoack=False)
        """
        if channel is None or channel is self.channel:
            return self._clone(**kwargs)
        options: dict[str, Any] = {
            "processors": self._processors,
            "autoack": self.autoack,
            "in_process": self.in_process,
            **kwargs,
        }
        derived = channel.stream(parent=self, **options)
        derived._agent_name = self._agent_name
        return derived

    def get_active_stream(self) -> Stream:
        """The last stream of the chain this one starts (as in Faust): the stream a
        ``group_by``, ``through``, ``filter``, ... made from it, and so on; itself if
        none was made.

        Example::

            regrouped = stream.group_by(Order.account_id)
            assert stream.get_active_stream() is regrouped
        """
        stream = self
        while stream._children:
            stream = stream._children[-1]
        return stream

    def tee(self, n: int = 2) -> tuple[Stream, ...]:
        """``n`` streams that each get every event of this one (``itertools.tee`` for
        streams). An event is acked once all ``n`` have moved past it; a slow one holds
        the others back once its buffer (``stream_buffer_maxsize``) is full.

        Example::

            audit, count = orders.stream().tee(2)
        """
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"tee(n={n!r}): n must be an int >= 1")
        maxsize = self.channel.maxsize if self.channel is not None else 4096
        copies: tuple[Stream[Any], ...] = tuple(
            Stream(self.app, EventQueue(maxsize), channel=self.channel, parent=self)
            for _ in range(n)
        )
        queues = [copy.queue for copy in copies]

        async def forward() -> None:
            try:
                async for event in self.events():
                    if all(queue.closed for queue in queues):
                        return  # every copy was closed: leave this stream's events be
                    original = event.message
                    original.refcount += n  # each copy's on_done releases one
                    for queue in queues:
                        duplicate = Message(
                            original.topic,
                            original.partition,
                            original.offset,
                            original.timestamp,
                            original.key,
                            original.value,
                            original.headers,
                            on_done=_releaser(original),
                        )
                        await queue.put_many(
                            [Event(self.app, event.key, event.value, event._headers, duplicate)]
                        )
                # This stream ended: end the copies once they took what they hold.
                while any(queue.buffer for queue in queues if not queue.closed):
                    await asyncio.sleep(FEED_DRAIN_POLL)
            except Exception as exc:
                for copy in copies:
                    copy._error = exc
                raise
            finally:
                for queue in queues:
                    queue.close()

        # Started by the first copy read; this stream's own feeder (if any) is left to
        # this stream, which forward() iterates.
        started: list[asyncio.Task[None]] = []

        async def start_source() -> None:
            if not started:
                task = asyncio.get_running_loop().create_task(forward(), name=f"tee:{self!r}")
                # Its error is raised in the copies' readers (copy._error).
                task.add_done_callback(lambda t: t.cancelled() or t.exception())
                started.append(task)

        for copy in copies:
            copy._feeder = start_source
        return copies

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

    # -- combining streams
    def combine(self, *others: Stream) -> Stream:
        """One stream yielding the events of this stream and of ``others`` as they come
        (``s1 & s2`` is ``s1.combine(s2)``). Each event is acked once, when the combined
        stream moves past it, so the offsets of every source are committed as usual.

        Example::

            async for value in orders.stream() & refunds.stream():
                ...
        """
        sources = [self, *others]
        for source in sources:
            if not isinstance(source, Stream):
                raise TypeError(f"combine() takes streams, not {source!r}: use topic.stream()")
        for source in others:
            if source._parent is None and source.channel is not None:
                # The agent restarted: what its last run's stream of this channel held
                # (parked by the supervisor) comes first, in order.
                parked = self._take_parked(source.channel)
                if parked is not None:
                    _hand_over(parked, source.queue, source.channel)
        # Never filled: a combined stream pops from its sources' queues directly, so
        # nothing is in flight between them (a crash loses no buffered event).
        combined = CombinedStream(self.app, EventQueue(1), parent=self, in_process=self.in_process)
        combined._combined = sources
        for source in others:
            source._children.append(combined)
        return combined

    def __and__(self, other: Stream) -> Stream:
        return self.combine(other)

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
        queue = self._take_parked(target)
        derived: Stream[Any] = Stream(
            self.app,
            EventQueue(target.maxsize) if queue is None else queue,
            channel=target,
            parent=self,
            in_process=True,
        )
        derived._agent_name = self._agent_name
        from .topics import Topic

        queue = derived.queue
        partitions = _partitions_of(target) or self.app.conf.topic_partitions
        # A topic partitions by the key's bytes; an in-memory channel has no partitions.
        schema = target.schema
        dumps_key = (
            (lambda key: schema.encode_key(self.app, key)) if isinstance(target, Topic) else None
        )

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
                await queue.put_many([Event(self.app, key, event.value, None, copy)])

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
        if self._closed:
            return
        self._closed = True
        for source in self._combined:
            source.close()
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


class CombinedStream(Stream):
    """What ``s1 & s2`` returns: events of every source, taken from their queues in
    turn (so a busy source does not starve another)."""

    _turn = 0

    async def _take_event(self, timeout: float | None) -> Event:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        sources = self._combined
        count = len(sources)
        while True:
            if self.queue.closed:
                raise StopAsyncIteration
            if self._thrown is not None:
                self._raise_thrown()
            open_sources = [source for source in sources if not source.queue.closed]
            if not open_sources:
                raise StopAsyncIteration
            for i in range(count):
                source = sources[(self._turn + i) % count]
                if not source.queue.buffer or source.queue.closed:
                    continue
                try:
                    # Buffered: returns at once, unless the source's own filters drop
                    # every buffered event.
                    event = await source._take_event(0.0)
                except (TimeoutError, StopAsyncIteration):
                    continue
                self._turn = (self._turn + i + 1) % count
                if self._processors and await self._process(event) is _SKIP:
                    event.ack()
                    break
                _current_event.set(event)
                return event
            else:
                remaining = None if deadline is None else max(deadline - loop.time(), 0.0)
                if remaining == 0.0:
                    raise TimeoutError
                waiters = [
                    loop.create_task(q.wait())
                    for q in (self.queue, *(source.queue for source in open_sources))
                ]
                done, pending = await asyncio.wait(
                    waiters, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
                for waiter in pending:
                    waiter.cancel()
                if not done:
                    raise TimeoutError

    async def _process(self, event: Event) -> Any:
        """Run this stream's processors (``combined.filter(...)``) on ``event``."""
        _current_event.set(event)
        value = event.value
        for processor in self._processors:
            value = processor(value)
            if inspect.isawaitable(value):
                value = await value
            if value is _SKIP:
                return _SKIP
        event.value = value
        return value


def _sensed_class(cls: type[Stream]) -> type[Stream]:
    """``cls`` with an ``__anext__`` calling Faust's per-event stream hooks: each event
    the stream yields is reported in, and out when the stream moves past it. Used while
    a sensor overrides ``on_stream_event_in``/``on_stream_event_out``; a direct subclass,
    so a stream's class can be switched to it."""
    sensed = _sensed_classes.get(cls)
    if sensed is not None:
        return sensed
    plain_anext = cls.__anext__

    async def __anext__(self: Stream) -> Any:
        sensors = self.app.sensors
        prev = self._prev
        state = self._sensor_state
        if prev is not None and state is not None:
            self._sensor_state = None
            message = prev.message
            sensors.on_stream_event_out(message.tp, message.offset, self, prev, state)
        value = await plain_anext(self)
        event = self._prev
        if event is not None:
            message = event.message
            self._sensor_state = sensors.on_stream_event_in(message.tp, message.offset, self, event)
        return value

    sensed = type(f"Sensed{cls.__name__}", (cls,), {"__anext__": __anext__, "_sensed": True})
    _sensed_classes[cls] = sensed
    return sensed


_sensed_classes: dict[type[Stream], type[Stream]] = {}


def _hand_over(old: EventQueue, new: EventQueue, channel: Channel) -> None:
    """Move the events ``old`` holds (buffered, or waiting to be put) to the front of
    ``new``, and stop ``old`` receiving: an event is in one of them, never both."""
    moved = [*old.buffer, *(old._held or ())]
    old.discard(lambda _event: True)
    old.close()
    channel.unsubscribe(old)
    new.buffer.extendleft(reversed(moved))


#: How often ``stream_of`` looks whether the reader took its last values (seconds): it
#: polls only once its input is exhausted, to end the stream after them.
FEED_DRAIN_POLL = 0.005


def stream_of(app: Any, values: Any, **kwargs: Any) -> Stream[Any]:
    """A stream over the values of an iterable or async iterable, ending after the last
    (``app.stream(values)``). Its events carry no broker message: nothing to commit.

    Example::

        async for value in stream_of(app, [1, 2, 3]):
            print(value)
    """
    if not hasattr(values, "__aiter__") and not hasattr(values, "__iter__"):
        raise TypeError(
            f"app.stream() takes a channel, a topic or an (async) iterable, not {values!r}"
        )
    queue = EventQueue()
    stream: Stream[Any] = Stream(app, queue, **kwargs)

    async def feed() -> None:
        offset = 0

        async def put(value: Any) -> None:
            nonlocal offset
            message = Message("", 0, offset, time.time(), None, None)
            offset += 1
            await queue.put_many([Event(app, None, value, None, message)])

        try:
            if hasattr(values, "__aiter__"):
                async for value in values:
                    await put(value)
            else:
                for value in values:
                    await put(value)
            # Closing drops what is still buffered: close once the reader has taken it.
            while queue.buffer:
                await asyncio.sleep(FEED_DRAIN_POLL)
        finally:
            queue.close()

    stream._feeder = feed
    return stream


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
            for source in child._combined:
                # A stream combined with the agent's (s1 & topic.stream()): kept with
                # its events until the next run combines a stream of the same channel.
                if source is not stream and source._parent is None:
                    self._park(source)
            if child.queue is not stream.queue and child.channel is not None:
                self._park(child)
            self.park_derived(child)

    def _park(self, child: Stream) -> None:
        assert child.channel is not None
        if child._feeder_task is not None:
            child._feeder_task.cancel()
        key = _channel_key(child.channel)
        entry = self._queues.get(key)
        if entry is not None and entry[1] is child.queue:
            return  # parked already (a stream reached twice, as a combined one's source)
        if entry is not None or child.queue.closed:
            child.close()  # a second stream over the same target: not reused
        else:
            self._queues[key] = (child.channel, child.queue)

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
