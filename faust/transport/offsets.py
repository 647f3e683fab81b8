"""Which offset of a partition may be committed.

Events finish out of order (agents with concurrency, sends acked later), and offsets
have gaps (compaction, transaction markers). The tracker keeps the fetched offsets that
are not yet done in fetch order, plus the set of those done ahead of the oldest one: the
committable offset is the oldest unfinished one, or one past the last fetched. Each event
costs O(1) amortised.
"""

from __future__ import annotations

from collections import deque

from .base import TP, Message

__all__ = ["OffsetTracker"]


class OffsetTracker:
    __slots__ = ("tp", "_pending", "_done", "_next", "processed", "on_processed")

    def __init__(self, tp: TP, position: int) -> None:
        self.tp = tp
        self._pending: deque[int] = deque()
        self._done: set[int] = set()
        # One past the last fetched offset: what to commit when nothing is pending.
        self._next = position
        self.processed = 0

    def fetched(self, messages: list[Message]) -> None:
        if not messages:
            return
        self._pending.extend([m.offset for m in messages])
        self._next = messages[-1].offset + 1

    def message_done(self, message: Message) -> None:
        """Called (as ``Message.on_done``) when a message is fully processed."""
        self.processed += 1
        offset = message.offset
        pending = self._pending
        if pending and pending[0] == offset:
            pending.popleft()
            done = self._done
            if done:
                while pending and pending[0] in done:
                    done.discard(pending.popleft())
        else:
            self._done.add(offset)

    def committable(self) -> int:
        """The offset to commit: every offset below it is processed."""
        pending = self._pending
        return pending[0] if pending else self._next

    @property
    def pending_count(self) -> int:
        return len(self._pending) - len(self._done)
