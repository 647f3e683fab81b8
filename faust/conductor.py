"""The conductor: routes fetched messages to the queues of the streams reading them.

Messages of one partition arrive as a batch; each batch is decoded once per schema and
the resulting events go to every subscribed queue. A message that cannot be decoded is
logged with its topic, partition and offset, counted, and handled as its topic's
``on_error`` says: written to a dead-letter topic (the default), stopping the worker, or
skipped.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .deadletter import error_headers
from .events import Event
from .exceptions import DecodeError
from .transport.base import TP, Message

if TYPE_CHECKING:
    from .channels import EventQueue
    from .topics import Topic

__all__ = ["Conductor"]

logger = logging.getLogger(__name__)


class Conductor:
    def __init__(self, app: Any, on_topics_changed: Callable[[], None] | None = None) -> None:
        self.app = app
        self._subscriptions: dict[str, list[tuple[Topic, EventQueue]]] = {}
        # Subscribed in the consumer group but never read as a stream (table changelogs).
        self._passive: set[str] = set()
        self.on_topics_changed = on_topics_changed
        # Topics subscribed by pattern (app.topic(pattern=...)) and their queues.
        self._patterns: list[tuple[Topic, EventQueue]] = []
        # Whether any reader a topic (or pattern) ever had acks (see acks_enabled_for).
        self._acks: dict[str, bool] = {}
        self._pattern_acks: list[tuple[re.Pattern[str], bool]] = []

    @property
    def decode_errors(self) -> int:
        """Records that could not be decoded (``app.error_counts.decode_errors``)."""
        return int(self.app.error_counts.decode_errors)

    def subscribe(self, topic: Topic, queue: EventQueue) -> None:
        if topic.pattern is not None:
            # Subscribed to the names it matches as the app finds them (match_patterns).
            self._patterns.append((topic, queue))
            self._pattern_acks.append((topic.pattern, topic.acks))
            if self.on_topics_changed is not None:
                self.on_topics_changed()
            return
        changed = False
        for name in topic.topics:
            self._acks[name] = self._acks.get(name, False) or topic.acks
            subs = self._subscriptions.setdefault(name, [])
            changed = changed or not subs
            subs.append((topic, queue))
        if changed and self.on_topics_changed is not None:
            self.on_topics_changed()

    def unsubscribe(self, topic: Topic, queue: EventQueue) -> None:
        if topic.pattern is not None:
            self._patterns = [(t, q) for t, q in self._patterns if q is not queue]
        for name in topic.topics or list(self._subscriptions):
            subs = self._subscriptions.get(name)
            if subs is None:
                continue
            subs[:] = [(t, q) for t, q in subs if q is not queue]
            # The topic stays subscribed on the broker side even with no reader left:
            # re-subscribing costs a rebalance, and an agent restart re-reads it at once.

    def acks_enabled_for(self, name: str) -> bool:
        """False if every reader topic ``name`` had was declared with ``acks=False``
        (Faust's flag): its offsets are then never committed (not at shutdown either,
        after the readers are gone)."""
        acks = self._acks.get(name)
        if acks is not None:
            return acks
        matching = [a for pattern, a in self._pattern_acks if pattern.match(name)]
        return not matching or any(matching)

    def subscribed_topics(self) -> list[Topic]:
        """One Topic object per subscribed name group (for declaring them)."""
        seen: dict[tuple[str, ...], Topic] = {}
        for subs in self._subscriptions.values():
            for topic, _ in subs:
                seen.setdefault(topic.topics, topic)
        return list(seen.values())

    def drop_buffered(self, tps: set[TP]) -> int:
        """Remove buffered, unprocessed events of ``tps`` from every queue."""
        topics = {tp.topic for tp in tps}
        dropped = 0
        for topic in topics:
            for _, queue in self._subscriptions.get(topic, ()):
                dropped += queue.discard(lambda e: (e.message.topic, e.message.partition) in tps)
        return dropped

    @property
    def has_patterns(self) -> bool:
        return bool(self._patterns)

    def match_patterns(self, names: Iterable[str]) -> bool:
        """Subscribe each pattern topic's queue to the ``names`` it matches (Kafka's
        internal ``__`` topics excepted); True if the consumer must subscribe more."""
        changed = False
        for topic, queue in self._patterns:
            assert topic.pattern is not None
            for name in names:
                if name.startswith("__") or not topic.pattern.match(name):
                    continue
                subs = self._subscriptions.setdefault(name, [])
                if all(q is not queue for _, q in subs):
                    changed = changed or not subs
                    subs.append((topic, queue))
        return changed

    def subscribe_passive(self, name: str) -> None:
        """Subscribe ``name`` without a reader: its partitions are assigned, not streamed."""
        if name not in self._passive:
            self._passive.add(name)
            if self.on_topics_changed is not None:
                self.on_topics_changed()

    def passive_topic_names(self) -> set[str]:
        return set(self._passive)

    def topic_names(self) -> set[str]:
        return set(self._subscriptions) | self._passive

    async def deliver(self, tp: TP, messages: list[Message]) -> None:
        subs = self._subscriptions.get(tp.topic)
        if not subs:
            # Nobody reads this topic now: the messages count as processed.
            for message in messages:
                message.refcount = 1
                message.decref()
            return
        count = len(subs)
        if count == 1:
            # A fetched message starts with one ref: its single reader's.
            topic, queue = subs[0]
            await queue.put_many(self._decode(topic, messages, 1))
            return
        for message in messages:
            message.refcount = count
        # Decode once per schema, then give each queue its own events (acks are per queue).
        by_schema: dict[int, list[tuple[Topic, EventQueue]]] = {}
        for topic, queue in subs:
            by_schema.setdefault(id(topic.schema), []).append((topic, queue))
        app = self.app
        for group in by_schema.values():
            events = self._decode(group[0][0], messages, len(group))
            for index, (_, queue) in enumerate(group):
                if index:
                    events = [Event(app, e.key, e.value, None, e.message) for e in events]
                await queue.put_many(events)

    def _decode(self, topic: Topic, messages: list[Message], readers: int) -> list[Event]:
        app = self.app
        custom = topic.message_loaders
        key_of: Callable[[Message], Any]
        value_of: Callable[[Message], Any]
        if custom is None:
            load_key = topic.schema.key_loader()
            load_value = topic.schema.value_loader()
            try:
                return [Event(app, load_key(m.key), load_value(m.value), None, m) for m in messages]
            except Exception:  # noqa: BLE001 - the slow path below finds and reports the bad ones
                pass

            def key_of(message: Message) -> Any:
                return load_key(message.key)

            def value_of(message: Message) -> Any:
                return load_value(message.value)

        else:
            key_of, value_of = custom  # the schema's own loads_key/loads_value
        events = []
        for message in messages:
            try:
                key = key_of(message)
            except Exception as exc:
                self._on_decode_error(topic, message, "key", exc, readers)
                continue
            try:
                value = value_of(message)
            except Exception as exc:
                self._on_decode_error(topic, message, "value", exc, readers)
                continue
            events.append(Event(app, key, value, None, message))
        return events

    def _on_decode_error(
        self, topic: Topic, message: Message, part: str, exc: Exception, readers: int
    ) -> None:
        app = self.app
        app.error_counts.decode_errors += 1
        app.sensors.on_decode_error(message, exc)
        reason = exc.args[0] if isinstance(exc, DecodeError) and exc.args else repr(exc)
        where = f"topic={message.topic} partition={message.partition} offset={message.offset}"
        action = topic.on_error or app.conf.on_error
        if action == "stop":
            # Not released: the record is never committed and is read again on restart.
            app.crash(
                f"Message {where} cannot be decoded ({part}): {reason}; on_error='stop' "
                f"stops the worker. Check the producer's serializer against {topic!r}, then "
                "restart (the message was not committed)."
            )
            return
        # The message reaches none of the queues reading with this schema: their refs go
        # now, but one, which the dead letter releases once it holds the message.
        for _ in range(readers - 1):
            message.decref()
        if action == "dead_letter":
            dead_letters = app.dead_letters
            target = dead_letters.topic_name(message.topic, topic.dead_letter_topic)
            headers = error_headers(message, exc)
            dead_letters.submit(target, message, headers, release=message.decref)
            outcome = f"writing it to dead-letter topic {target!r}"
        else:
            message.decref()
            app.error_counts.skipped += 1
            outcome = "skipping it (on_error='skip')"
        logger.error(
            "Message %s cannot be decoded (%s): %s; %s. Check the producer's serializer "
            "against %r.",
            where,
            part,
            reason,
            outcome,
            topic,
        )
