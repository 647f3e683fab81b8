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

# Seconds without a connection error before the outage counts as over (one client can
# fetch again while another is still reconnecting).
QUIET_BEFORE_RECOVERED = 3.0

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
        self.last_error = 0.0
        self.last_success = 0.0
        self.suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        message = record.getMessage()
        lowered = message.lower()
        if not any(fragment in lowered for fragment in _CONNECTION_TROUBLE):
            return True
        self.last_error = time.monotonic()
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

    def succeeded(self) -> None:
        """A request went through (records fetched, offsets committed)."""
        self.last_success = time.monotonic()
        self.check()

    def check(self) -> None:
        """End the outage (logging it once) when requests succeed again and the
        errors have stopped for a few seconds; called at least once per fetch."""
        # Some request went through since the outage began, and aiokafka (which logs
        # every retry while a broker is unreachable) has been quiet for a while.
        if self.outage_since is None or self.last_success <= self.outage_since:
            return
        now = time.monotonic()
        if now - self.last_error < QUIET_BEFORE_RECOVERED:
            return  # clients reconnect one by one: wait until the errors have stopped
        logger.warning(
            "Connection to Kafka is back after %.1f s (%d repeated errors not logged).",
            self.last_error - self.outage_since,
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
