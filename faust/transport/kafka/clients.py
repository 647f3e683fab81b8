"""What the transport's aiokafka clients share."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Iterable
from typing import Any

from ..base import Message

__all__ = ["close_quietly", "to_messages"]

logger = logging.getLogger(__name__)


async def close_quietly(aw: Awaitable[Any]) -> None:
    """Release a client that failed to start; its own error is the one to report."""
    try:
        await aw
    except Exception:
        logger.debug("Error while closing a Kafka client that did not start", exc_info=True)


def to_messages(topic: str, partition: int, records: Iterable[Any]) -> list[Message]:
    """Faust messages from aiokafka's ConsumerRecords (timestamps in seconds)."""
    return [
        Message(
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
