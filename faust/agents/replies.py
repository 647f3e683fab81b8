"""Request/reply for ``agent.ask()``: requests carry reply headers, replies come back on
the app instance's own reply topic and resolve the waiting future by correlation id.

The reply topic is read outside the consumer group: it belongs to one app instance, and
as part of the group's subscription every worker start would change the group's
metadata (a rebalance), and a static member restarting would be handed its previous
instance's reply topic.

Its lifetime: the first ``ask()`` (or ``map``/``kvmap``/``join``) creates it, so a
worker that never asks has none; a clean stop deletes it when its name was generated
(``{app_id}-reply-{hex}``, the default; a ``reply_to`` you set is yours to keep). A
worker that dies without stopping leaves its topic behind: Kafka never deletes a topic
by itself, but the topic keeps records only about ``reply_expires`` seconds (up to twice
that: Kafka drops whole segments, and a segment closes after ``reply_expires``). What
remains is an empty one-partition topic; delete such leftovers with
``kafka-topics.sh --delete --topic '{app_id}-reply-.*'`` while the app is stopped.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import orjson

from ..exceptions import AskError
from ..serializers import dumps as codec_dumps
from ..transport.base import TP, Message

if TYPE_CHECKING:
    from ..topics import Topic

__all__ = [
    "ReplyConsumer",
    "ReplyPromise",
    "REPLY_TO",
    "CORRELATION_ID",
    "REPLY_ERROR",
    "encode_reply",
    "encode_error_reply",
    "decode_reply",
    "is_generated_reply_topic",
]

logger = logging.getLogger(__name__)

# A stop waits this long for the broker to delete the reply topic (a broker that is down
# would otherwise hold the shutdown for a whole request timeout).
DELETE_WITHIN = 5.0

REPLY_TO = "faust-reply-to"
CORRELATION_ID = "faust-correlation-id"
#: On a reply saying the agent gave up on the request (the value says why): the
#: ``ask()`` raises :class:`~faust.exceptions.AskError` instead of waiting for nothing.
REPLY_ERROR = "faust-reply-error"


def is_generated_reply_topic(name: str, app_id: str) -> bool:
    """Whether ``name`` is a reply topic named by the ``reply_to`` default (one per app
    instance, so deleting it on stop takes nothing from anyone else).

    Example::

        >>> is_generated_reply_topic('orders-reply-0f3a9c1b2d4e', 'orders')
        True
    """
    prefix = f"{app_id}-reply-"
    suffix = name[len(prefix) :]
    return (
        name.startswith(prefix)
        and len(suffix) == 12
        and all(c in "0123456789abcdef" for c in suffix)
    )


def encode_reply(value: Any) -> bytes:
    """Replies are JSON; Records keep their namespace so the asker gets a Record back."""
    return codec_dumps("json", value)


def encode_error_reply(agent: str, exc: BaseException, outcome: str) -> bytes:
    """The value of an error reply (sent with the :data:`REPLY_ERROR` header)."""
    return orjson.dumps(
        {"agent": agent, "type": type(exc).__qualname__, "reason": str(exc), "outcome": outcome}
    )


def _error_from_reply(data: bytes | None) -> AskError:
    try:
        info = orjson.loads(data or b"{}")
        return AskError(
            f"{info['reason']} ({info['outcome']})",
            agent=str(info["agent"]),
            error_type=str(info["type"]),
        )
    except (ValueError, KeyError, TypeError):
        return AskError(f"the agent gave up on the request; its error reply was {data!r}")


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


class ReplyPromise(asyncio.Future[Any]):
    """The reply to an ``agent.ask_nowait()``: await it for the value the agent yields.

    Example::

        promise = await adder.ask_nowait(Add(a=1, b=2))
        total = await promise
    """

    def __init__(self, reply_to: str, correlation_id: str) -> None:
        super().__init__()
        self.reply_to = reply_to
        self.correlation_id = correlation_id


class ReplyConsumer:
    """Reads this app instance's reply topic and completes pending ``ask()`` calls.

    Example (what ``agent.ask()`` does)::

        replies = await app.maybe_start_replies()   # creates the topic the first time
        reply = replies.expect(correlation_id)       # then send with reply headers
        value = await reply
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.pending: dict[str, asyncio.Future[Any]] = {}
        expires = app.conf.reply_expires
        self.topic: Topic = app.topic(
            app.conf.reply_to,
            key_serializer="raw",
            value_serializer="raw",
            partitions=1,
            retention=expires,
            # Kafka applies retention to closed segments only; by default a segment
            # closes after 7 days or 1 GiB, far beyond what a small reply topic reaches.
            config={"segment.ms": int(expires * 1000)},
            internal=True,
        )
        #: The name was generated for this app instance: stop() deletes the topic.
        self.owns_topic = is_generated_reply_topic(app.conf.reply_to, app.conf.id)
        self._declared = False
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Create the reply topic and follow it from its end (once; later calls return)."""
        if self._task is not None:
            return
        async with self._lock:  # concurrent first asks create and follow it once
            if self._task is not None:
                return
            await self.topic.declare()
            self._declared = True
            tp = TP(self.topic.name, 0)
            # The topic is this instance's own: only replies sent from now on are ours.
            # Every ask() sends after this returns, so its reply is at or past ``start``.
            start = await self.app.transport.end_offset(tp)
            self._task = asyncio.get_running_loop().create_task(
                self._consume(tp, start), name=f"replies:{tp.topic}"
            )

    async def stop(self) -> None:
        """Stop reading, cancel pending asks, and delete the topic if it is ours."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        for fut in self.pending.values():
            if not fut.done():
                fut.cancel()
        self.pending.clear()
        if self._declared and self.owns_topic:
            self._declared = False
            name = self.topic.name
            try:
                async with asyncio.timeout(DELETE_WITHIN):
                    await self.app.transport.delete_topic(name)
            except TimeoutError:
                self._not_deleted(name, f"no answer within {DELETE_WITHIN:g} s")
            except Exception as exc:
                self._not_deleted(name, repr(exc))

    def _not_deleted(self, name: str, reason: str) -> None:
        logger.warning(
            "Could not delete this worker's reply topic %r (%s); it keeps no records "
            "after reply_expires=%g s. Delete it with kafka-topics.sh --delete --topic %s",
            name,
            reason,
            self.app.conf.reply_expires,
            name,
        )

    def expect(self, correlation_id: str) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending[correlation_id] = fut
        return fut

    def promise(self, correlation_id: str) -> ReplyPromise:
        """A :class:`ReplyPromise` for ``correlation_id``, forgotten once done or
        cancelled (``ask_nowait()``)."""
        promise = ReplyPromise(self.topic.name, correlation_id)
        self.pending[correlation_id] = promise
        promise.add_done_callback(lambda _: self.pending.pop(correlation_id, None))
        return promise

    async def _consume(self, tp: TP, start: int) -> None:
        transport = self.app.transport
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
        if fut is None or fut.done():
            return
        if message.header(REPLY_ERROR) is not None:
            fut.set_exception(_error_from_reply(message.value))
            return
        if message.value is None:
            return
        try:
            fut.set_result(decode_reply(message.value))
        except Exception as exc:  # a reply we cannot decode fails the ask(), loudly
            fut.set_exception(exc)
