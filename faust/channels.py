"""Channels: where events wait for the streams that read them.

An :class:`EventQueue` is one subscriber's buffer; a stream pops events from it without a
trip through the event loop while it holds any. A :class:`Channel` is the in-process
kind (``app.channel()``): values sent to it go straight to its subscribers' queues.
Topics (``faust.topics``) are channels backed by the broker.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .events import Event
from .transport.base import Message, RecordMetadata, SendCallback, run_callback

if TYPE_CHECKING:
    from .schemas import Schema
    from .sensors.base import StreamStats
    from .serializers import CodecArg
    from .streams import Stream

__all__ = ["EventQueue", "Channel", "Headers"]

#: Headers of a record to send: a mapping or ``(name, value)`` pairs; str values are
#: sent UTF-8 encoded.
Headers = Mapping[str, bytes | str] | Sequence[tuple[str, bytes | str]] | None


def encode_headers(headers: Headers) -> list[tuple[str, bytes]]:
    """``headers`` as the ``(name, bytes)`` pairs a record carries."""
    if not headers:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(k, v.encode() if isinstance(v, str) else v) for k, v in items]


class EventQueue:
    """A bounded buffer of events between the broker side and one stream.

    ``put_many`` waits while the buffer is full (backpressure reaches the consumer, which
    stops fetching); ``close`` makes readers stop at their next ``get``. Events a waiting
    ``put_many`` still holds count as the queue's: ``discard`` removes them too.

    ``stats``, set for an agent's queue (``app.sensors.watch``), counts what goes through
    it per batch: what is appended, and, when the reader is about to wait, what it took.
    """

    __slots__ = (
        "buffer",
        "maxsize",
        "_low_water",
        "_getter",
        "_putter",
        "_held",
        "closed",
        "stats",
        "__weakref__",
    )

    def __init__(self, maxsize: int = 4096) -> None:
        self.buffer: deque[Event] = deque()
        self.maxsize = maxsize
        # Resume a blocked producer side once half the buffer is free, so it refills in
        # large batches rather than one event per wake-up.
        self._low_water = maxsize // 2
        self._getter: asyncio.Future[None] | None = None
        self._putter: asyncio.Future[None] | None = None
        # What a put_many waiting for room has yet to append (see discard).
        self._held: list[Event] | None = None
        self.closed = False
        self.stats: StreamStats | None = None

    def __len__(self) -> int:
        return len(self.buffer)

    def put_nowait(self, event: Event) -> None:
        self.buffer.append(event)
        stats = self.stats
        if stats is not None:
            stats.delivered(1)
            stats.settle(self, busy=True)
        getter = self._getter
        if getter is not None:
            self._getter = None
            if not getter.done():
                getter.set_result(None)

    async def put_many(self, events: list[Event]) -> None:
        """Append events, waiting whenever the buffer is full (so it never holds more
        than ``maxsize``). Events removed by ``discard`` while it waits are not
        appended."""
        buffer = self.buffer
        stats = self.stats
        while events:
            space = self.maxsize - len(buffer)
            if space > 0 or self.closed:
                if self.closed or space >= len(events):
                    added = len(events)
                    buffer.extend(events)
                    events = []
                else:
                    added = space
                    buffer.extend(events[:space])
                    events = events[space:]
                if stats is not None:
                    stats.delivered(added)
                    # What the reader took meanwhile goes with the time it was busy.
                    stats.settle(self, busy=True)
                getter = self._getter
                if getter is not None:
                    self._getter = None
                    if not getter.done():
                        getter.set_result(None)
            if events:
                self._held = events
                self._putter = asyncio.get_running_loop().create_future()
                try:
                    await self._putter
                finally:
                    # discard may have filtered what was held meanwhile.
                    events = self._held or []
                    self._held = None

    def pop(self) -> Event | None:
        """Take the next event if one is buffered (no await)."""
        buffer = self.buffer
        if not buffer:
            return None
        event = buffer.popleft()
        if self._putter is not None:
            self.wake_putter()
        return event

    def wake_putter(self) -> None:
        """Let a waiting ``put_many`` go on once the buffer is down to half."""
        putter = self._putter
        if putter is not None and len(self.buffer) <= self._low_water:
            self._putter = None
            if not putter.done():
                putter.set_result(None)

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait until an event is buffered or the queue closes; False on timeout."""
        if self.buffer or self.closed:
            return True
        stats = self.stats
        if stats is not None:
            # The reader took everything: settle its busy run before it idles.
            stats.settle(self, busy=False)
        getter = self._getter
        if getter is None or getter.done():
            getter = self._getter = asyncio.get_running_loop().create_future()
        if timeout is None:
            await asyncio.shield(getter)
            return True
        try:
            await asyncio.wait_for(asyncio.shield(getter), timeout)
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        self.closed = True
        stats = self.stats
        if stats is not None:
            stats.settle(self, busy=False)
        for fut in (self._getter, self._putter):
            if fut is not None and not fut.done():
                fut.set_result(None)
        self._getter = self._putter = None

    def discard(self, predicate: Callable[[Event], bool]) -> int:
        """Remove events for which ``predicate`` is true, buffered or still held by a
        waiting ``put_many``; returns how many.

        A waiting ``put_many`` is woken: the room made here may be all it waits for (a
        rebalance that drops every buffered event leaves the stream nothing to pop, so
        nothing else would wake it).
        """
        buffer = self.buffer
        kept = [event for event in buffer if not predicate(event)]
        dropped = len(buffer) - len(kept)
        if dropped:
            buffer.clear()
            buffer.extend(kept)
            if self.stats is not None:
                self.stats.dropped += dropped
        held = self._held
        if held:
            kept_held = [event for event in held if not predicate(event)]
            dropped += len(held) - len(kept_held)
            self._held = kept_held
        putter = self._putter
        if putter is not None and (dropped or len(buffer) < self.maxsize):
            self._putter = None
            if not putter.done():
                putter.set_result(None)
        return dropped


#: The type of a channel's values: ``faust.Channel[Order]`` in annotations.
T = TypeVar("T")


class Channel(Generic[T]):
    """An in-process channel: values sent go to every stream reading it.

    Example::

        channel = app.channel()

        @app.agent(channel)
        async def printer(stream):
            async for value in stream:
                print(value)

        await channel.send(value='hello')
    """

    _offsets = itertools.count()

    def __init__(
        self,
        app: Any,
        *,
        schema: Schema | None = None,
        key_type: Any = None,
        value_type: Any = None,
        maxsize: int | None = None,
        is_iterator: bool = False,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.app = app
        if schema is None:
            schema = app.schema(key_type=key_type, value_type=value_type)
        self.schema = schema
        self.maxsize = maxsize or app.conf.stream_buffer_maxsize
        self._queues: list[EventQueue] = []
        self.name = f"channel-{id(self):x}"
        # Faust's loop= argument: everything runs on the running loop, so only that one
        # (or None) makes sense; checked again when the channel is first read.
        self._loop = loop
        self._check_loop()
        #: This channel's own queue, read by get() (see clone(is_iterator=True)).
        self._own_queue: EventQueue | None = None
        #: The event get() returned last: acked when the next one is asked for.
        self._got: Event | None = None
        self.is_iterator = is_iterator
        if is_iterator:
            self._own_queue = self.subscribe()

    def _check_loop(self) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop.is_closed() or (running is not None and loop is not running):
            raise ValueError(
                f"{type(self).__name__}(loop={loop!r}): a channel runs on the running "
                "asyncio event loop; this one is another (or closed). Leave loop= out."
            )

    @property
    def key_type(self) -> Any:
        return self.schema.key_type

    @property
    def value_type(self) -> Any:
        return self.schema.value_type

    def subscribe(self) -> EventQueue:
        """A new queue that receives every event sent from now on."""
        self._check_loop()
        queue = EventQueue(self.maxsize)
        self._queues.append(queue)
        return queue

    def unsubscribe(self, queue: EventQueue) -> None:
        if queue in self._queues:
            self._queues.remove(queue)

    def stream(self, **kwargs: Any) -> Stream:
        """A stream over this channel (each stream gets every value)."""
        from .streams import Stream

        return Stream(self.app, self.subscribe(), channel=self, **kwargs)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self.stream().__aiter__()

    # -- Faust's queue-like API: the channel's own queue
    def clone(self, *, is_iterator: bool | None = None, **changes: Any) -> Channel[T]:
        """A channel that receives what is sent to this one; ``is_iterator=True``: it
        has its own queue from now on, read with :meth:`get` (as in Faust).

        Example::

            reader = channel.clone(is_iterator=True)
            await channel.send(value=1)
            event = await reader.get(timeout=1.0)   # event.value == 1
        """
        options: dict[str, Any] = {
            "schema": self.schema,
            "maxsize": self.maxsize,
            "loop": self._loop,
            **changes,
        }
        clone: Channel[T] = Channel(self.app, **options)
        # One list of subscribers: a send to either reaches every reader of both.
        clone._queues = self._queues
        clone.name = self.name
        if is_iterator if is_iterator is not None else self.is_iterator:
            clone.is_iterator = True
            clone._own_queue = clone.subscribe()
        return clone

    def _queue_for_get(self) -> EventQueue:
        queue = self._own_queue
        if queue is None:
            queue = self._own_queue = self.subscribe()
            self.is_iterator = True
        return queue

    async def put(self, value: Any) -> None:
        """Hand ``value`` (a plain value, or an :class:`~faust.Event`, whose key, value
        and headers go along) to this process's readers of the channel, without the
        broker (for a topic too, as in Faust).

        Example::

            await channel.put(42)
        """
        if isinstance(value, Event):
            key, value, headers = value.key, value.value, value._own_headers()
        else:
            key, headers = None, None
        offset = next(self._offsets)
        message = Message(self.name, 0, offset, time.time(), None, None, encode_headers(headers))
        Channel.deliver(self, message, key, value)

    async def get(self, *, timeout: float | None = None) -> Event:
        """The next event sent to this channel (its own queue, subscribed at the first
        ``get()`` or by ``clone(is_iterator=True)``); raises ``TimeoutError`` after
        ``timeout`` seconds. The event returned before is acked now (moved past).

        Example::

            reader = channel.clone(is_iterator=True)
            event = await reader.get(timeout=5.0)
            print(event.key, event.value)
        """
        queue = self._queue_for_get()
        got, self._got = self._got, None
        if got is not None:
            got.ack()
        while True:
            event = queue.pop()
            if event is not None:
                self._got = event
                return event
            if queue.closed:
                raise RuntimeError(f"{self!r}: its queue is closed; nothing more to get.")
            if not await queue.wait(timeout):
                raise TimeoutError(f"{self!r}: no event within {timeout} s")

    def empty(self) -> bool:
        """True if this channel's own queue (see :meth:`get`) holds no event.

        Example::

            if not reader.empty():
                event = await reader.get()
        """
        queue = self._own_queue
        return queue is None or not queue.buffer

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
        """Deliver a value to every stream reading this channel, as it is (in-process,
        nothing is serialized, so ``schema`` and the serializers are refused).

        ``callback`` and ``force`` are as in :meth:`Topic.send <faust.Topic.send>`.

        Example::

            metadata = await channel.send(key='k', value={'n': 1})
        """
        if schema is not None or key_serializer is not None or value_serializer is not None:
            raise ValueError(
                f"{self!r} passes values in-process without serializing them: schema, "
                "key_serializer and value_serializer apply only to topics (app.topic())."
            )
        offset = next(self._offsets)
        ts = time.time() if timestamp is None else timestamp
        partition = partition or 0
        message = Message(self.name, partition, offset, ts, None, None, encode_headers(headers))
        self.deliver(message, key, value)
        metadata = RecordMetadata(self.name, partition, offset, ts)
        if callback is not None:
            fut: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()
            fut.set_result(metadata)
            run_callback(callback, fut, self.name)
        return metadata

    def deliver(self, message: Message, key: Any, value: Any) -> None:
        queues = self._queues
        message.refcount = len(queues)
        for queue in queues:
            queue.put_nowait(Event(self.app, key, value, None, message))

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
        """:meth:`send` without waiting: the future resolves once it is delivered."""
        return asyncio.ensure_future(
            self.send(
                key=key,
                value=value,
                partition=partition,
                timestamp=timestamp,
                headers=headers,
                schema=schema,
                key_serializer=key_serializer,
                value_serializer=value_serializer,
                callback=callback,
                force=force,
            )
        )

    def __repr__(self) -> str:
        return f"<Channel {self.name}>"
