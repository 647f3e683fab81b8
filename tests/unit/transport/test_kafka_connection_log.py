"""What a worker logs about Kafka: outages once, rebalances as rebalances, no negative
durations. aiokafka's messages are fed to the filter as aiokafka logs them."""

from __future__ import annotations

import logging

import pytest

from faust.transport.base import TP
from faust.transport.kafka import connection_log as module
from faust.transport.kafka.connection_log import (
    ConnectionLog,
    Trouble,
    classify,
    format_partitions,
    rebalance_line,
)

COORDINATOR_LOG = "aiokafka.consumer.group_coordinator"


class Clock:
    """A monotonic clock the test moves; every reading also ticks a microsecond, as a
    real clock does between two calls."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        self.now += 1e-6
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def log(clock: Clock) -> ConnectionLog:
    return ConnectionLog(clock=clock)


def aiokafka_says(
    log: ConnectionLog, message: str, level: int = logging.ERROR, name: str = COORDINATOR_LOG
) -> bool:
    """Pass one aiokafka record through the filter; True if it would be printed."""
    record = logging.LogRecord(name, level, "aiokafka.py", 1, message, None, None)
    return log.filter(record)


def said(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == module.logger.name]


REBALANCING = "Heartbeat failed for group orders because it is rebalancing"
UNREACHABLE = "Unable connect to node with id 1: KafkaConnectionError: Connection refused"
NO_COORDINATOR = "Group Coordinator Request failed: [Error 15] GroupCoordinatorNotAvailableError"


@pytest.mark.parametrize(
    ("message", "trouble"),
    [
        (REBALANCING, Trouble.REBALANCE),
        ("Heartbeat failed for group orders: generation id is not  current.", Trouble.REBALANCE),
        (
            "OffsetCommit failed for group orders due to group error "
            "([Error 27] RebalanceInProgressError: orders), will rejoin",
            Trouble.REBALANCE,
        ),
        (UNREACHABLE, Trouble.CONNECTION),
        (
            "Unable connect to \"127.0.0.1:1\": [Errno 111] Connect call failed ('127.0.0.1', 1)",
            Trouble.CONNECTION,
        ),
        ("Failed fetch messages from 1: NodeNotReadyError: Attempt to send", Trouble.CONNECTION),
        ("Heartbeat session expired - marking coordinator dead", Trouble.CONNECTION),
        (NO_COORDINATOR, Trouble.COORDINATOR),
        (
            "Group Coordinator Request failed: KafkaConnectionError: Connection refused",
            Trouble.CONNECTION,
        ),
        (
            "Heartbeat failed for group orders: coordinator (node 1) is either not started "
            "or not valid",
            Trouble.COORDINATOR,
        ),
        ("Marking the coordinator dead (node 1)for group orders.", Trouble.COORDINATOR),
        (
            "Got error produce response on topic-partition TopicPartition(topic='orders', "
            "partition=0), retrying. Error: <class "
            "'aiokafka.errors.NotLeaderForPartitionError'>",
            Trouble.LEADERSHIP,
        ),
        (
            "Got error produce response on topic-partition TopicPartition(topic='orders', "
            "partition=0), retrying. Error: KafkaConnectionError",
            Trouble.CONNECTION,
        ),
        ("Heartbeat failed: local member_id was not recognized; resetting", None),
        ("Topic orders not found in cluster metadata", None),
        (
            'Unable connect to "localhost:9093": SaslAuthenticationFailed: [Error 58] '
            "SaslAuthenticationFailed: Authentication failed: Invalid username or password",
            None,
        ),
    ],
)
def test_aiokafka_messages_are_sorted_by_what_they_mean(
    message: str, trouble: Trouble | None
) -> None:
    assert classify(message) is trouble


def test_an_ordinary_rebalance_is_no_lost_connection(
    log: ConnectionLog, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    assert not aiokafka_says(log, REBALANCING, logging.WARNING)
    log.succeeded()
    clock.now += 10
    log.check()
    assert said(caplog) == []
    assert log.outage_since is None


def test_a_moving_partition_leader_is_no_lost_connection(
    log: ConnectionLog, caplog: pytest.LogCaptureFixture
) -> None:
    # A topic just created, or a leader elected after a broker left: the producer
    # retries on the new leader.
    caplog.set_level(logging.INFO)
    message = (
        "Got error produce response on topic-partition TopicPartition(topic='orders-dlq', "
        "partition=2), retrying. Error: <class 'aiokafka.errors.NotLeaderForPartitionError'>"
    )
    assert not aiokafka_says(log, message, logging.WARNING, name="aiokafka.producer.sender")
    assert said(caplog) == []
    assert log.outage_since is None


def test_an_outage_is_logged_once_and_its_end_once_with_its_duration(
    log: ConnectionLog, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    assert not aiokafka_says(log, UNREACHABLE)
    for _ in range(50):  # aiokafka retries
        clock.now += 0.1
        assert not aiokafka_says(log, UNREACHABLE)
    clock.now += 0.5
    log.succeeded()  # at 5.5 s: back
    log.check()  # errors stopped only now: not yet reported
    assert len(said(caplog)) == 1
    clock.now += module.QUIET_BEFORE_RECOVERED
    log.succeeded()  # later successes do not stretch the outage
    log.check()
    (lost, back) = said(caplog)
    assert lost[0] == "WARNING" and lost[1].startswith(
        f"Lost the connection to Kafka ({UNREACHABLE})"
    )
    assert back == (
        "WARNING",
        "Connection to Kafka is back after 5.5 s (50 repeated errors not logged).",
    )
    log.check()
    assert len(said(caplog)) == 2


def test_a_one_error_outage_lasts_zero_seconds_not_minus_zero(
    log: ConnectionLog, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    # The error and the success in the same instant: the old log said "back after -0.0 s".
    caplog.set_level(logging.INFO)
    aiokafka_says(log, UNREACHABLE)
    log.succeeded()
    clock.now += module.QUIET_BEFORE_RECOVERED
    log.check()
    assert said(caplog)[-1][1].startswith("Connection to Kafka is back after 0.0 s")


def test_an_error_after_the_first_success_extends_the_outage(
    log: ConnectionLog, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    aiokafka_says(log, UNREACHABLE)
    clock.now += 1
    log.succeeded()  # one client is back...
    clock.now += 2
    aiokafka_says(log, UNREACHABLE)  # ...another is still reconnecting
    clock.now += module.QUIET_BEFORE_RECOVERED
    log.check()
    assert said(caplog)[-1][1].startswith("Connection to Kafka is back after 3.0 s")


def test_waiting_for_the_group_coordinator_is_no_lost_connection(
    log: ConnectionLog, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    # A new cluster creates __consumer_offsets while the first worker looks it up.
    caplog.set_level(logging.INFO)
    for _ in range(12):
        assert not aiokafka_says(log, NO_COORDINATOR)
        clock.now += 0.1
    log.succeeded()  # joined the group
    clock.now += module.QUIET_BEFORE_RECOVERED
    log.check()
    assert said(caplog) == [
        (
            "INFO",
            f"Waiting for Kafka's group coordinator ({NO_COORDINATOR}); retrying until it answers.",
        ),
        ("INFO", "Kafka's group coordinator answered after 1.2 s."),
    ]


def test_a_coordinator_that_never_answers_is_a_warning(
    log: ConnectionLog, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    aiokafka_says(log, NO_COORDINATOR)
    clock.now += module.COORDINATOR_PATIENCE
    aiokafka_says(log, NO_COORDINATOR)
    aiokafka_says(log, NO_COORDINATOR)
    levels = [level for level, _ in said(caplog)]
    assert levels == ["INFO", "WARNING"]
    assert "offsets.topic.replication.factor" in said(caplog)[1][1]


def test_a_coordinator_outage_that_turns_out_a_lost_connection_says_so_once(
    log: ConnectionLog, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    aiokafka_says(log, "Marking the coordinator dead (node 1)for group orders.", logging.WARNING)
    aiokafka_says(log, UNREACHABLE)
    aiokafka_says(log, NO_COORDINATOR)
    aiokafka_says(log, UNREACHABLE)
    clock.now += 2
    log.succeeded()
    clock.now += module.QUIET_BEFORE_RECOVERED
    log.check()
    messages = [message for _, message in said(caplog)]
    assert sum(m.startswith("Lost the connection to Kafka") for m in messages) == 1
    assert messages[-1].startswith("Connection to Kafka is back after 2.0 s (2 repeated")


def test_other_aiokafka_messages_pass_unchanged(log: ConnectionLog) -> None:
    assert aiokafka_says(
        log, "Heartbeat failed: local member_id was not recognized", logging.WARNING
    )
    assert aiokafka_says(log, "LeaveGroup request succeeded", logging.INFO)
    assert aiokafka_says(log, "anything at all", logging.DEBUG)


def test_rebalance_steps_are_shown_only_at_debug(
    log: ConnectionLog, caplog: pytest.LogCaptureFixture
) -> None:
    step = "Setting newly assigned partitions {TopicPartition(topic='o', partition=0)} for group g"
    caplog.set_level(logging.INFO, logger="aiokafka")
    assert not aiokafka_says(log, step, logging.INFO)
    assert not aiokafka_says(log, "(Re-)joining group g", logging.INFO)
    caplog.set_level(logging.DEBUG, logger="aiokafka")
    assert aiokafka_says(log, step, logging.INFO)


def test_partitions_are_written_as_ranges_per_topic() -> None:
    tps = [TP("orders", p) for p in (5, 0, 2, 1, 7, 8)] + [TP("counts", 3)]
    assert format_partitions(tps) == "counts[3], orders[0-2,5,7-8]"
    assert format_partitions([]) == "none"
    many = [TP(f"t{i}", 0) for i in range(module.MAX_TOPICS_SHOWN + 3)]
    assert format_partitions(many).endswith("t5[0], and 3 more topics")


def test_a_rebalance_line_says_what_moved() -> None:
    before = {TP("orders", p) for p in range(4)}
    after = {TP("orders", 0), TP("orders", 1), TP("orders-__leader", 0)}
    assert rebalance_line("orders", 7, 0.31, before, after) == (
        "Rebalanced group 'orders' (generation 7) in 0.31 s: holding orders[0-1], "
        "orders-__leader[0]; gained orders-__leader[0]; lost orders[2-3]"
    )
    assert rebalance_line("g", None, 0.0, set(), set()) == (
        "Rebalanced group 'g' in 0.00 s: holding none; gained none; lost none"
    )
