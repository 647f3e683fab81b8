"""The shortcut from aiokafka's fetcher to faust Messages, and its fallback."""

from __future__ import annotations

from aiokafka.structs import ConsumerRecord

from faust.transport.base import Message
from faust.transport.kafka import fetching


def _record(offset: int) -> ConsumerRecord:
    return ConsumerRecord(
        topic="t",
        partition=2,
        offset=offset,
        timestamp=1_700_000_000_123,
        timestamp_type=0,
        key=b"k",
        value=b"v%d" % offset,
        checksum=None,
        serialized_key_size=1,
        serialized_value_size=2,
        headers=(("h", b"1"),),
    )


def test_consumer_records_are_copied_into_messages() -> None:
    [message] = fetching.to_messages("t", 2, [_record(5)])
    assert type(message) is Message
    assert (message.topic, message.partition, message.offset) == ("t", 2, 5)
    assert message.timestamp == 1_700_000_000.123
    assert (message.key, message.value) == (b"k", b"v5")
    assert list(message.headers) == [("h", b"1")]


def test_messages_pass_through_and_mixed_lists_are_copied() -> None:
    made = Message("t", 2, 7, 1.0, b"k", b"v")
    assert fetching.to_messages("t", 2, [made])[0] is made
    mixed = fetching.to_messages("t", 2, [made, _record(8)])
    assert mixed[0] is made
    assert type(mixed[1]) is Message and mixed[1].offset == 8


def test_a_consumer_without_the_expected_fetcher_is_not_supported() -> None:
    class NotStarted:
        _fetcher = None

    assert not fetching.supports(NotStarted())
    assert not fetching.supports(object())
