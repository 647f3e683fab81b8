"""One log line when the connection to Kafka breaks, one when it is back.

While a broker is down, aiokafka logs an error for every retry of every request (about
ten lines a second per client). This filter lets the first such message through as a
warning saying the worker retries, drops the repeats, and the consumer reports the
recovery once it fetches again, with how long the outage lasted.
"""

from __future__ import annotations

import logging
import time

__all__ = ["ConnectionLog", "connection_log"]

logger = logging.getLogger("faust.transport.kafka")

# Fragments (lower case) of aiokafka's messages that mean "cannot reach a broker now".
_CONNECTION_TROUBLE = (
    "unable connect to node",
    "unable to update metadata",
    "unable to request metadata",
    "failed fetch messages",
    "group coordinator request failed",
    "nodenotreadyerror",
    "connection refused",
    "kafkaconnectionerror",
    "heartbeat failed",
    "heartbeat session expired",
    "coordinator dead",
    "got error produce response",
)


class ConnectionLog(logging.Filter):
    """A filter for aiokafka's loggers; shared by every client of the process."""

    def __init__(self) -> None:
        super().__init__()
        self.outage_since: float | None = None
        self.suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        message = record.getMessage()
        lowered = message.lower()
        if not any(fragment in lowered for fragment in _CONNECTION_TROUBLE):
            return True
        if self.outage_since is None:
            self.outage_since = time.monotonic()
            self.suppressed = 0
            logger.warning(
                "Lost the connection to Kafka (%s); retrying until it is back. Repeats "
                "of this are not logged; the worker says when it has recovered.",
                message,
            )
        else:
            self.suppressed += 1
        return False

    def recovered(self) -> None:
        """The consumer fetched again: end the outage (logs once)."""
        if self.outage_since is None:
            return
        lasted = time.monotonic() - self.outage_since
        logger.warning(
            "Connection to Kafka is back after %.1f s (%d repeated errors not logged).",
            lasted,
            self.suppressed,
        )
        self.outage_since = None


connection_log = ConnectionLog()


def install() -> None:
    """Attach the filter to aiokafka's loggers (idempotent; call after importing aiokafka).

    A filter on a logger does not see records of its child loggers, and aiokafka's
    modules log under their own names, so each existing ``aiokafka.*`` logger gets it.
    """
    import aiokafka  # noqa: F401 - its modules create their loggers on import

    names = ["aiokafka"] + [
        name for name in logging.root.manager.loggerDict if name.startswith("aiokafka.")
    ]
    for name in names:
        log = logging.getLogger(name)
        if connection_log not in log.filters:
            log.addFilter(connection_log)
