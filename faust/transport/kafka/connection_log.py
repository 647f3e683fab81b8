"""What a worker says about Kafka: one line when the connection breaks, one when it is
back, and one per rebalance.

aiokafka logs an error for every retry of every request while a broker is down (about
ten lines a second per client), and warns on every heartbeat during an ordinary
rebalance. This filter on aiokafka's loggers sorts those messages:

- a broker cannot be reached: the first message becomes one warning, ``Lost the
  connection to Kafka (...)``; repeats are dropped, and the consumer reports the
  recovery once (``Connection to Kafka is back after N s``);
- the group coordinator does not answer (a new cluster still creating its offsets
  topic, a coordinator moving to another broker): one INFO line, and a warning if it
  lasts longer than ``COORDINATOR_PATIENCE``;
- a partition's leader is moving (a topic just created, a leader elected after a broker
  left): the client retries the request on the new leader, so it is dropped unless DEBUG
  is on; a send that still fails is logged with its record's error where it was sent;
- the group is rebalancing (heartbeats and commits answered "rebalance in progress" or
  "stale generation"): dropped, as are aiokafka's INFO lines for each step of a
  rebalance unless DEBUG is on; the consumer logs each rebalance as one INFO line
  (:func:`rebalance_line`).

Durations come from one monotonic clock, so they are never negative.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Iterable

from ..base import TP

__all__ = ["ConnectionLog", "connection_log", "install", "rebalance_line", "format_partitions"]

# Seconds without a connection error before the outage counts as over (one client can
# fetch again while another is still reconnecting).
QUIET_BEFORE_RECOVERED = 3.0
# A coordinator lookup on a fresh cluster takes a second or two (the broker creates
# __consumer_offsets); this much longer means something is wrong with the brokers.
COORDINATOR_PATIENCE = 30.0
# Topics named in one rebalance line before the rest are only counted.
MAX_TOPICS_SHOWN = 6

logger = logging.getLogger("faust.transport.kafka")


class Trouble(enum.Enum):
    CONNECTION = "connection"
    COORDINATOR = "coordinator"
    LEADERSHIP = "leadership"
    REBALANCE = "rebalance"


# Fragments (lower case) of aiokafka's warnings and errors, by what they mean; checked
# in this order (a coordinator lookup that failed for want of a connection is a
# connection problem; a produce error is a lost connection unless its error says the
# partition's leader moved).
_FRAGMENTS: tuple[tuple[Trouble, tuple[str, ...]], ...] = (
    (
        Trouble.LEADERSHIP,
        (
            "notleaderforpartitionerror",
            "leadernotavailableerror",
            "not_leader_or_follower",
        ),
    ),
    (
        Trouble.CONNECTION,
        (
            "unable connect to node",
            'unable connect to "',  # a bootstrap server (host:port), before any node id
            "unable to update metadata",
            "unable to request metadata",
            "failed fetch messages",
            "nodenotreadyerror",
            "connection refused",
            "kafkaconnectionerror",
            "heartbeat session expired",
            "heartbeat send request failed",
            "got error produce response",
        ),
    ),
    (
        Trouble.REBALANCE,
        (
            "because it is rebalancing",
            "generation id is not",
            "due to group error",
        ),
    ),
    (
        Trouble.COORDINATOR,
        (
            "group coordinator request failed",
            "due to a coordinator error",
            "is either not started or not valid",
            "coordinator dead",
        ),
    ),
)

# aiokafka's INFO lines for the steps of each rebalance: the consumer's one line says
# what they add up to.
_REBALANCE_STEPS = (
    "revoking previously assigned partitions",
    "(re-)joining group",
    "joined group",
    "elected group leader",
    "successfully synced group",
    "setting newly assigned partitions",
    "updating subscribed topics to",
    "subscribed to topic(s)",
    "discovered coordinator",
)


def classify(message: str) -> Trouble | None:
    """What an aiokafka warning or error means, or None if it is none of the above."""
    lowered = message.lower()
    if "authenticationfailed" in lowered or "authentication failed" in lowered:
        # Wrong credentials: a setting to fix, not an outage to wait out. aiokafka's
        # line (with the broker's reason) stays as it is.
        return None
    for trouble, fragments in _FRAGMENTS:
        if any(fragment in lowered for fragment in fragments):
            return trouble
    return None


class ConnectionLog(logging.Filter):
    """A filter for aiokafka's loggers; shared by every client of the process.

    Example (what :func:`install` does)::

        logging.getLogger("aiokafka").addFilter(connection_log)
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.clock = clock
        #: When the current outage began (None: no outage).
        self.outage_since: float | None = None
        #: Whether this outage has been reported as a lost connection.
        self.lost_connection = False
        self.coordinator_warned = False
        self.last_error = 0.0
        #: The first request that went through after the latest error.
        self.recovered_at: float | None = None
        self.suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.INFO:
            return True
        message = record.getMessage()
        if record.levelno == logging.INFO and message.lower().startswith(_REBALANCE_STEPS):
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        trouble = classify(message)
        if trouble is None:
            return True
        if trouble is Trouble.LEADERSHIP:
            # Retried by the client on the new leader: neither an outage nor news.
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        if trouble is not Trouble.REBALANCE:
            self.failed(trouble, message)
        return False

    def failed(self, trouble: Trouble, message: str) -> None:
        """A request failed for ``trouble`` (aiokafka's ``message`` says how)."""
        now = self.clock()
        self.last_error = now
        if self.outage_since is None:
            self.outage_since = now
            self.lost_connection = self.coordinator_warned = False
            self.recovered_at = None
            self.suppressed = 0
            if trouble is Trouble.COORDINATOR:
                logger.info(
                    "Waiting for Kafka's group coordinator (%s); retrying until it answers.",
                    message,
                )
                return
        elif self.lost_connection or trouble is Trouble.COORDINATOR:
            self.suppressed += 1
            if trouble is Trouble.COORDINATOR and not self.lost_connection:
                self._warn_if_coordinator_is_late(now, message)
            return
        self.lost_connection = True
        logger.warning(
            "Lost the connection to Kafka (%s); retrying until it is back. Repeats "
            "of this are not logged; the worker says when it has recovered.",
            message,
        )

    def _warn_if_coordinator_is_late(self, now: float, message: str) -> None:
        assert self.outage_since is not None
        waited = now - self.outage_since
        if not self.coordinator_warned and waited >= COORDINATOR_PATIENCE:
            self.coordinator_warned = True
            logger.warning(
                "Kafka's group coordinator has not answered for %.0f s (%s): check the "
                "brokers' logs; the __consumer_offsets topic needs as many live brokers "
                "as offsets.topic.replication.factor.",
                waited,
                message,
            )

    def succeeded(self) -> None:
        """A request went through (records fetched, offsets committed, group joined)."""
        if self.outage_since is not None and (
            self.recovered_at is None or self.recovered_at < self.last_error
        ):
            self.recovered_at = self.clock()
        self.check()

    def check(self) -> None:
        """End the outage (logging it once) when requests succeed again and the
        errors have stopped for a few seconds; called at least once per fetch."""
        since, recovered = self.outage_since, self.recovered_at
        if since is None or recovered is None:
            return
        if self.clock() - self.last_error < QUIET_BEFORE_RECOVERED:
            return  # clients reconnect one by one: wait until the errors have stopped
        # Until the first success after the last error (if a client failed after the
        # first success, the outage lasted at least until then).
        lasted = max(recovered, self.last_error) - since
        if self.lost_connection:
            logger.warning(
                "Connection to Kafka is back after %.1f s (%d repeated errors not logged).",
                lasted,
                self.suppressed,
            )
        else:
            level = logging.WARNING if self.coordinator_warned else logging.INFO
            logger.log(level, "Kafka's group coordinator answered after %.1f s.", lasted)
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


def format_partitions(tps: Iterable[TP]) -> str:
    """Partitions in a short form: ranges per topic, topics in name order.

    Example::

        >>> format_partitions([TP('orders', 0), TP('orders', 1), TP('orders', 2),
        ...                    TP('orders', 5), TP('counts', 3)])
        'counts[3], orders[0-2,5]'
    """
    by_topic: dict[str, list[int]] = {}
    for topic, partition in tps:
        by_topic.setdefault(topic, []).append(partition)
    if not by_topic:
        return "none"
    parts = [
        f"{topic}[{_ranges(sorted(by_topic[topic]))}]"
        for topic in sorted(by_topic)[:MAX_TOPICS_SHOWN]
    ]
    hidden = len(by_topic) - MAX_TOPICS_SHOWN
    if hidden > 0:
        parts.append(f"and {hidden} more topics")
    return ", ".join(parts)


def _ranges(partitions: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``'0-2,5'`` (``partitions`` sorted, without repeats)."""
    spans: list[tuple[int, int]] = []
    first = last = partitions[0]
    for partition in partitions[1:]:
        if partition != last + 1:
            spans.append((first, last))
            first = partition
        last = partition
    spans.append((first, last))
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def rebalance_line(
    group_id: str, generation: int | None, seconds: float, before: set[TP], after: set[TP]
) -> str:
    """The INFO line a consumer logs when a rebalance hands it ``after``.

    Example::

        >>> rebalance_line('orders', 3, 0.25, {TP('o', 0), TP('o', 1)}, {TP('o', 0)})
        "Rebalanced group 'orders' (generation 3) in 0.25 s: holding o[0]; gained none; lost o[1]"
    """
    generation_part = f" (generation {generation})" if generation is not None else ""
    return (
        f"Rebalanced group {group_id!r}{generation_part} in {seconds:.2f} s: "
        f"holding {format_partitions(after)}; gained {format_partitions(after - before)}; "
        f"lost {format_partitions(before - after)}"
    )
