"""What the transport's aiokafka clients share."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

__all__ = ["close_quietly"]

logger = logging.getLogger(__name__)


async def close_quietly(aw: Awaitable[Any]) -> None:
    """Release a client that failed to start; its own error is the one to report."""
    try:
        await aw
    except Exception:
        logger.debug("Error while closing a Kafka client that did not start", exc_info=True)
