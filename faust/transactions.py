"""The gate an exactly-once commit closes: no agent starts an event while it commits.

Under ``processing_guarantee='exactly_once'`` a Kafka transaction holds what a worker
sent and changed since its last commit, and the commit adds the input offsets reached.
Those offsets must cover exactly the events whose effects the transaction holds: no
event may be half processed when the transaction commits. So a commit first stops the
fetch loop from delivering, then closes this gate: a stream that moves to its next event
acks the event its agent finished and waits at the gate before taking the next one, and
the commit waits until no stream holds an event it handed to its agent (``is_idle``).
Events still in the queues stay there, unprocessed (their offsets are not committed),
and are processed in the next transaction once the gate opens.

Under ``at_least_once`` there is no gate: a stream pays one test per event for it
(``Stream.__anext__``).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Any

__all__ = ["TransactionGate"]

logger = logging.getLogger(__name__)

#: How often a closing gate looks whether the agents finished their current events.
IDLE_POLL = 0.001


class TransactionGate:
    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._open.set()
        #: Every gated stream with the task iterating it (None: not known yet). Weak: a
        #: stream nobody iterates any more goes away with its last reference.
        self.readers: weakref.WeakKeyDictionary[Any, asyncio.Task[Any] | None] = (
            weakref.WeakKeyDictionary()
        )
        #: Counts the times the worker dropped what it had fetched (a revoke, an abort):
        #: an event taken before that and waiting at the gate is stale, not processed.
        self.epoch = 0
        #: A stream whose agent ended while it held an event (see is_idle), or None.
        self.interrupted: str | None = None
        #: Read by every stream once per event: a plain attribute, not a property over
        #: ``_open.is_set()`` (two Python calls, ~0.1 µs an event).
        self.closed = False

    def close(self) -> None:
        self.closed = True
        self._open.clear()

    def open(self) -> None:
        self.closed = False
        self._open.set()

    async def opened(self) -> None:
        while self.closed:
            await self._open.wait()

    def read_by(self, stream: Any) -> None:
        """``stream`` is iterated by the current task (looked up here, at the start of an
        iteration and when a stream waited for input: ``asyncio.current_task()`` makes a
        system call on Python 3.11, too much for every event)."""
        try:
            task = asyncio.current_task()
        except RuntimeError:  # no running loop (iter() called outside one): found later
            task = None
        self.readers[stream] = task

    def is_idle(self) -> bool:
        """True when no stream holds an event it handed to its agent and that is not
        acked yet, or one an async processor of it awaits on. A stream whose task ended
        is forgotten; if it held an event (an agent cancelled midway, by a stop that did
        not wait), ``interrupted`` names it: what its agent did of that event must not
        commit."""
        idle = True
        readers = self.readers
        for stream, task in list(readers.items()):
            holds = _holds_event(stream)
            if task is not None and task.done():
                del readers[stream]
                if holds:
                    self.interrupted = repr(stream)
            elif holds:
                idle = False
        return idle

    async def wait_idle(self, patience: float) -> bool:
        """Wait until no agent holds an event; False if one still does after
        ``patience`` seconds (e.g. waiting for a reply that needs a gated agent)."""
        if self.is_idle():
            return True
        deadline = time.monotonic() + patience
        while not self.is_idle():
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(IDLE_POLL)
        return True

    def describe_busy(self) -> str:
        busy = sorted(repr(stream) for stream in list(self.readers) if _holds_event(stream))
        return ", ".join(busy) or "none"


def _holds_event(stream: Any) -> bool:
    if stream._processing is not None:
        return True
    taken = stream._taken
    if taken:
        return any(not event.acked for event in taken)
    prev = stream._prev
    return prev is not None and not prev.acked
