"""The committable offset never passes an unprocessed event."""

from faust.transport.base import TP, Message
from faust.transport.offsets import OffsetTracker

TP0 = TP("t", 0)


def _messages(*offsets: int) -> list[Message]:
    return [Message("t", 0, o, 0.0, None, None) for o in offsets]


def test_in_order_completion_advances_watermark() -> None:
    tracker = OffsetTracker(TP0, 0)
    messages = _messages(0, 1, 2)
    tracker.fetched(messages)
    assert tracker.committable() == 0
    tracker.message_done(messages[0])
    assert tracker.committable() == 1
    tracker.message_done(messages[1])
    tracker.message_done(messages[2])
    assert tracker.committable() == 3


def test_out_of_order_completion_waits_for_the_oldest() -> None:
    tracker = OffsetTracker(TP0, 0)
    messages = _messages(0, 1, 2, 3)
    tracker.fetched(messages)
    tracker.message_done(messages[2])
    tracker.message_done(messages[1])
    assert tracker.committable() == 0
    tracker.message_done(messages[0])
    assert tracker.committable() == 3
    assert tracker.pending_count == 1


def test_gaps_in_offsets_are_skipped() -> None:
    # Compacted topics and transaction markers leave holes between offsets.
    tracker = OffsetTracker(TP0, 10)
    messages = _messages(10, 14, 20)
    tracker.fetched(messages)
    tracker.message_done(messages[0])
    assert tracker.committable() == 14
    tracker.message_done(messages[2])
    assert tracker.committable() == 14
    tracker.message_done(messages[1])
    assert tracker.committable() == 21


def test_nothing_fetched_commits_the_start_position() -> None:
    assert OffsetTracker(TP0, 7).committable() == 7
