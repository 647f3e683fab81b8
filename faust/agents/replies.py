"""Request/reply for ``agent.ask()``: requests carry reply headers, replies come back on
the app instance's own reply topic and resolve the waiting future by correlation id.

The reply topic is read outside the consumer group: it belongs to one app instance, and
as part of the group's subscription every worker start would change the group's
metadata (a rebalance), and a static member restarting would be handed its previous
instance's reply topic.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import orjson

from ..serializers import dumps as codec_dumps
from ..transport.base import TP, Message

if TYPE_CHECKING:
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
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None

    async def start(self) -> None:
        if self._task is None:
            await self.app.declare_topic(self.topic)
            self._ready = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._consume(), name="replies")
        assert self._ready is not None
        await self._ready.wait()

    async def stop(self) -> None:
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
        assert self._ready is not None
        transport = self.app.transport
        tp = TP(self.topic.name, 0)
        # The topic is this instance's own: only replies sent from now on are ours.
        start = await transport.end_offset(tp)
        self._ready.set()
        while True:
            try:
                async for messages in transport.follow_partition(tp, start):
                    for message in messages:
                        self._on_reply(message)
                        start = message.offset + 1
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("Reading replies from %s failed; retrying", tp.topic)
                await asyncio.sleep(1.0)

    def _on_reply(self, message: Message) -> None:
        key = message.key or b""
        fut = self.pending.pop(key.decode(), None)
        if fut is None or fut.done() or message.value is None:
            return
        try:
            fut.set_result(decode_reply(message.value))
        except Exception as exc:  # a reply we cannot decode fails the ask(), loudly
            fut.set_exception(exc)
