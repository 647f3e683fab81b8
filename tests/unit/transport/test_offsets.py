"""The committable offset never passes an unprocessed event."""

from faust.transport.base import TP, Message
from faust.transport.offsets import OffsetTracker

TP0 = TP("t", 0)


def _messages(*offsets: int) -> list[Message]:
    return [Message("t", 0, o, 0.0, None, None) for o in offsets]


def _done(message: Message) -> None:
    message.refcount = 0


def test_in_order_completion_advances() -> None:
    tracker = OffsetTracker(TP0, 0)
    messages = _messages(0, 1, 2)
    tracker.fetched(messages)
    assert tracker.advance() == 0
    _done(messages[0])
    assert tracker.advance() == 1
    _done(messages[1])
    _done(messages[2])
    assert tracker.advance() == 3
    assert tracker.processed == 3


def test_out_of_order_completion_waits_for_the_oldest() -> None:
    tracker = OffsetTracker(TP0, 0)
    messages = _messages(0, 1, 2, 3)
    tracker.fetched(messages)
    _done(messages[2])
    _done(messages[1])
    assert tracker.advance() == 0
    _done(messages[0])
    assert tracker.advance() == 3
    assert tracker.pending_count == 1


def test_across_batches() -> None:
    tracker = OffsetTracker(TP0, 0)
    first, second = _messages(0, 1), _messages(2, 3)
    tracker.fetched(first)
    tracker.fetched(second)
    for m in second:
        _done(m)
    assert tracker.advance() == 0
    for m in first:
        _done(m)
    assert tracker.advance() == 4
    assert tracker.pending_count == 0


def test_gaps_in_offsets_are_skipped() -> None:
    # Compacted topics and transaction markers leave holes between offsets.
    tracker = OffsetTracker(TP0, 10)
    messages = _messages(10, 14, 20)
    tracker.fetched(messages)
    _done(messages[0])
    assert tracker.advance() == 14
    _done(messages[2])
    assert tracker.advance() == 14
    _done(messages[1])
    assert tracker.advance() == 21


def test_a_message_held_by_a_pending_send_blocks_the_commit() -> None:
    tracker = OffsetTracker(TP0, 0)
    messages = _messages(0, 1)
    tracker.fetched(messages)
    messages[0].refcount = 1  # a send on its behalf is not acked yet
    _done(messages[1])
    assert tracker.advance() == 0
    messages[0].decref()
    assert tracker.advance() == 2


def test_nothing_fetched_commits_the_start_position() -> None:
    assert OffsetTracker(TP0, 7).advance() == 7
