"""Which offset of a partition may be committed.

Events finish out of order (agents with concurrency, sends acked later), and offsets
have gaps (compaction, transaction markers). The tracker keeps the fetched batches in
order; a message is processed when its reference count (streams still holding it,
sends not yet acked) is zero. The committable offset is the first unprocessed message's,
or one past the last fetched. ``advance`` moves past processed messages at the head and
stops at the first pending one, so each message is looked at about once: the hot path
pays no call per event, only the reference count its stream already drops.
"""

from __future__ import annotations

from collections import deque

from .base import TP, Message

__all__ = ["OffsetTracker"]


class OffsetTracker:
    __slots__ = ("tp", "_batches", "_index", "_next", "processed")

    def __init__(self, tp: TP, position: int) -> None:
        self.tp = tp
        self._batches: deque[list[Message]] = deque()
        self._index = 0  # first message of _batches[0] not known to be processed
        # One past the last fetched offset: what to commit when nothing is pending.
        self._next = position
        self.processed = 0

    def fetched(self, messages: list[Message]) -> None:
        """Track a fetched batch (in offset order)."""
        if messages:
            self._batches.append(messages)

    def advance(self) -> int:
        """Move past processed messages and return the offset to commit."""
        batches = self._batches
        index = self._index
        processed = 0
        while batches:
            batch = batches[0]
            size = len(batch)
            start = index
            while index < size and batch[index].refcount == 0:
                index += 1
            processed += index - start
            if index < size:
                self._index = index
                self.processed += processed
                return batch[index].offset
            self._next = batch[-1].offset + 1
            batches.popleft()
            index = 0
        self._index = 0
        self.processed += processed
        return self._next

    committable = advance

    @property
    def pending_count(self) -> int:
        """Fetched messages not yet processed (after the last ``advance``)."""
        pending = sum(len(b) for b in self._batches) - self._index
        return pending
