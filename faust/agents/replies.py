"""Request/reply for ``agent.ask()``: requests carry reply headers, replies come back on
the app's own reply topic and resolve the waiting future by correlation id."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import orjson

from ..serializers import dumps as codec_dumps

if TYPE_CHECKING:
    from ..events import Event
    from ..streams import Stream
    from ..topics import Topic

__all__ = ["ReplyConsumer", "REPLY_TO", "CORRELATION_ID", "encode_reply", "decode_reply"]

logger = logging.getLogger(__name__)

REPLY_TO = "faust-reply-to"
CORRELATION_ID = "faust-correlation-id"


def encode_reply(value: Any) -> bytes:
    """Replies are JSON; Records keep their namespace so the asker gets a Record back."""
    return codec_dumps("json", value)


def decode_reply(data: bytes) -> Any:
    from ..models import registry

    def revive(obj: Any) -> Any:
        if isinstance(obj, dict):
            meta = obj.get("__faust")
            if isinstance(meta, dict) and meta.get("ns") in registry:
                return registry[meta["ns"]].from_data(obj)
            return {k: revive(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [revive(v) for v in obj]
        return obj

    return revive(orjson.loads(data))


class ReplyConsumer:
    """Reads this app instance's reply topic and completes pending ``ask()`` calls."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.pending: dict[str, asyncio.Future[Any]] = {}
        self.topic: Topic = app.topic(
            app.conf.reply_to,
            key_serializer="raw",
            value_serializer="raw",
            partitions=1,
            retention=app.conf.reply_expires,
            internal=True,
        )
        self._stream: Stream | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._stream = self.topic.stream()
            self._task = asyncio.get_running_loop().create_task(self._consume(), name="replies")

    async def stop(self) -> None:
        if self._stream is not None:
            self._stream.close()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        self._task = None
        for fut in self.pending.values():
            if not fut.done():
                fut.cancel()

    def expect(self, correlation_id: str) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending[correlation_id] = fut
        return fut

    async def _consume(self) -> None:
        assert self._stream is not None
        async for event in self._stream.events():
            self._on_reply(event)

    def _on_reply(self, event: Event) -> None:
        key = event.key
        correlation_id = key.decode() if isinstance(key, bytes) else str(key)
        fut = self.pending.pop(correlation_id, None)
        if fut is None or fut.done():
            return
        try:
            fut.set_result(decode_reply(event.value))
        except Exception as exc:  # a reply we cannot decode fails the ask(), loudly
            fut.set_exception(exc)
