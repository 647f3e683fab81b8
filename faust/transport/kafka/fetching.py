"""Faust Messages built straight from aiokafka's fetched record batches.

aiokafka turns every fetched record into a ``ConsumerRecord`` (a Python object with
eleven fields, through two Python calls) that Faust would only copy into a
:class:`~faust.transport.base.Message`: together about a third of the fetch cost per
record. Before each ``getmany``, :func:`adopt` switches the consumer's pending fetch
results to :class:`MessageRecords`, which yields Messages instead. Results fetched during
the ``getmany`` itself still arrive as ConsumerRecords; :func:`to_messages` converts
those, so a list of either kind works.

aiokafka hands out one partition's fetch result (up to ``max_partition_fetch_bytes``, a
whole backlog of thousands of records) before the next partition's. :func:`waiting` lists
the partitions with records at hand, so the consumer can ask for each in turn.

This reaches into aiokafka's fetcher (private attributes): :func:`supports` checks them
when a consumer starts, and without them every record takes the ConsumerRecord path.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from aiokafka.consumer import fetcher as _fetcher

from ..base import Message

__all__ = ["MessageRecords", "adopt", "supports", "to_messages", "waiting"]

logger = logging.getLogger(__name__)

_PartitionRecords: Any = getattr(_fetcher, "PartitionRecords", None)
_FetchResult: Any = getattr(_fetcher, "FetchResult", None)


class MessageRecords(_PartitionRecords or object):  # type: ignore[misc]
    """aiokafka's records of one fetched partition, yielded as faust Messages."""

    def __iter__(self) -> Any:
        # The generator itself: one Python call less per record than __next__.
        iterator = self._records_iterator
        return iterator if iterator is not None else iter(())

    def _consumer_record(self, tp: Any, record: Any) -> Message:
        return Message(
            tp.topic,
            tp.partition,
            record.offset,
            record.timestamp / 1000.0,
            record.key,
            record.value,
            record.headers,
        )


def _parameters(function: Any) -> list[str] | None:
    try:
        return list(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return None


# What the installed aiokafka's classes offer, checked once.
_CLASSES_MATCH = (
    _PartitionRecords is not None
    and _FetchResult is not None
    and callable(getattr(_PartitionRecords, "_unpack_records", None))
    and _parameters(getattr(_PartitionRecords, "_consumer_record", None))
    == ["self", "tp", "record"]
)


def supports(consumer: Any) -> bool:
    """True if ``consumer``'s fetcher has what :func:`adopt` relies on."""
    fetcher = getattr(consumer, "_fetcher", None)
    ok = _CLASSES_MATCH and isinstance(getattr(fetcher, "_records", None), dict)
    if not ok:
        logger.debug("aiokafka's fetcher is not the expected one: using ConsumerRecords")
    return ok


def adopt(consumer: Any) -> None:
    """Let the pending fetch results of ``consumer`` yield Messages."""
    for result in consumer._fetcher._records.values():
        if type(result) is _FetchResult:
            records = getattr(result, "_partition_records", None)
            if (
                type(records) is _PartitionRecords
                and getattr(records, "_records_iterator", None) is not None
            ):
                records.__class__ = MessageRecords


def waiting(consumer: Any) -> list[Any]:
    """The partitions whose fetched records ``consumer`` holds, ready to hand out.

    Empty when a partition holds a fetch error instead: aiokafka's plain getmany raises
    it (and clears it so the partition is fetched again), which only it should do.
    """
    records = getattr(getattr(consumer, "_fetcher", None), "_records", None)
    if not isinstance(records, dict) or _FetchResult is None:
        return []
    ready = []
    for tp, result in records.items():
        if type(result) is not _FetchResult:
            return []
        if result.has_more():
            ready.append(tp)
    return ready


def to_messages(topic: str, partition: int, records: Any) -> list[Message]:
    """Faust messages from what aiokafka returned: Messages already, or ConsumerRecords
    (timestamps in milliseconds) to copy."""
    if type(records) is list and records and type(records[0]) is type(records[-1]) is Message:
        return records  # one fetch result's records: all of a kind
    return [
        record
        if type(record) is Message
        else Message(
            topic,
            partition,
            record.offset,
            record.timestamp / 1000.0,
            record.key,
            record.value,
            record.headers,
        )
        for record in records
    ]
