"""Events: a decoded message as the stream hands it to the user, with its ack."""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from .transport.base import Message, SendCallback

if TYPE_CHECKING:
    from .channels import Channel, Headers
    from .schemas import Schema
    from .serializers import CodecArg

__all__ = ["Event", "current_event"]

_current_event: ContextVar[Event | None] = ContextVar("faust_current_event", default=None)


def current_event() -> Event | None:
    """The event the current agent is processing, or None outside a stream.

    Example::

        @app.agent(orders)
        async def process(stream):
            async for order in stream:
                event = faust.current_event()
                print(event.message.partition, event.message.offset)
    """
    return _current_event.get()


class Event:
    """A key and value decoded from ``message``, delivered to one stream:
    ``Event(app, key, value, headers, message)`` as in Faust (``headers`` None: the
    message's).

    The stream acks the event when the agent moves on to the next one; a stream made
    with ``.noack()`` leaves that to the user (``event.ack()``).
    """

    __slots__ = ("app", "key", "value", "message", "acked", "_headers")

    def __init__(
        self,
        app: Any,
        key: Any,
        value: Any,
        headers: Mapping[str, bytes] | Message | None,
        message: Message | None = None,
    ) -> None:
        # Faust's order is (app, key, value, headers, message); the 1.0 pre-release's
        # Event(app, key, value, message) is still accepted.
        if message is None:
            if not isinstance(headers, Message):
                raise TypeError(
                    "Event(app, key, value, headers, message): message is required (the "
                    "faust.transport.base.Message the event was decoded from)."
                )
            message, headers = headers, None
        self.app = app
        self.key = key
        self.value = value
        self.message = message
        self.acked = False
        #: Given headers; None: the message's own (read when asked for).
        self._headers: Mapping[str, bytes] | None = headers  # type: ignore[assignment]

    @property
    def headers(self) -> Mapping[str, bytes]:
        """The record's headers as a mapping (the ones given to ``Event()``, else the
        message's).

        Example::

            trace_id = faust.current_event().headers.get('trace-id')
        """
        headers = self._headers
        return dict(self.message.headers) if headers is None else headers

    def _own_headers(self) -> Headers:
        given = self._headers
        return (self.message.headers or None) if given is None else given

    def ack(self) -> bool:
        """Mark this event processed; returns False if it already was."""
        if self.acked:
            return False
        self.acked = True
        # Message.decref() inlined: this runs once per event on the hot path.
        message = self.message
        message.refcount -= 1
        if message.refcount == 0:
            on_done = message.on_done
            if on_done is not None:
                on_done(message)
        return True

    async def send(
        self,
        channel: str | Channel,
        key: Any = None,
        value: Any = None,
        *,
        partition: int | None = None,
        timestamp: float | None = None,
        headers: Headers = None,
        schema: Schema | None = None,
        key_serializer: CodecArg | None = None,
        value_serializer: CodecArg | None = None,
        callback: SendCallback | None = None,
        force: bool = False,
    ) -> Any:
        """Send ``value`` (default: this event's value) with ``key`` (default: this
        event's key) to another channel or topic; the other arguments are those of
        :meth:`Topic.send <faust.Topic.send>`.

        Example::

            event = faust.current_event()
            await event.send('audit', value={'seen': event.value})
        """
        target = self.app.topic(channel) if isinstance(channel, str) else channel
        return await target.send(
            key=self.key if key is None else key,
            value=self.value if value is None else value,
            partition=partition,
            timestamp=timestamp,
            headers=headers,
            schema=schema,
            key_serializer=key_serializer,
            value_serializer=value_serializer,
            callback=callback,
            force=force,
        )

    async def forward(
        self,
        channel: str | Channel,
        key: Any = None,
        value: Any = None,
        *,
        partition: int | None = None,
        timestamp: float | None = None,
        headers: Headers = None,
        schema: Schema | None = None,
        key_serializer: CodecArg | None = None,
        value_serializer: CodecArg | None = None,
        callback: SendCallback | None = None,
        force: bool = False,
    ) -> Any:
        """Send this event's key, value and headers (unless given) to another channel
        or topic, as :meth:`send` does.

        Example::

            await faust.current_event().forward('orders-copy')
        """
        return await self.send(
            channel,
            key,
            value,
            partition=partition,
            timestamp=timestamp,
            headers=self._own_headers() if headers is None else headers,
            schema=schema,
            key_serializer=key_serializer,
            value_serializer=value_serializer,
            callback=callback,
            force=force,
        )

    def __repr__(self) -> str:
        m = self.message
        return f"<Event {m.topic}[{m.partition}]@{m.offset}: {self.value!r}>"
