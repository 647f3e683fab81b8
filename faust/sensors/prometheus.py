"""Prometheus metrics for ``/metrics``, read from the app's Monitor at scrape time.

Nothing here runs per event: a custom collector turns ``app.monitor`` into metric
families when Prometheus scrapes, in a registry of the app's own (never the global one,
so two apps in a process, or a test, do not mix). Names follow Prometheus' conventions:
``faust_`` prefix, counters end in ``_total``, times are ``_seconds``.

=========================================  ==========================================
``faust_topic_messages_in_total``          messages fetched, per ``topic``
``faust_topic_events_in_total``            of those, decoded into events
``faust_topic_events_out_total``           messages fully processed (committable)
``faust_agent_events_in_total``            events delivered to an ``agent``'s queue
``faust_agent_events_out_total``           events the agent took from it
``faust_agent_processing_seconds``         histogram: the agent's busy time per event
``faust_consumer_committed_offset``        per ``topic`` and ``partition``
``faust_consumer_end_offset``              the log end offset (last fetch)
``faust_consumer_lag``                     end offset minus committed offset
``faust_commits_total``                    commits of the consumer's offsets
``faust_commit_latency_seconds``           histogram: a commit with its table flushes
``faust_sends_initiated_total``            records handed to the producer, per ``topic``
``faust_sends_completed_total``            records the broker acked
``faust_send_errors_total``                records that could not be sent
``faust_producer_buffered_records``        records waiting in the producer's buffer
``faust_producer_backlogged``              1 while the consumer holds back fetching
``faust_backpressure_waits_total``         times the fetch loop waited out a backlog
``faust_backpressure_seconds_total``       the seconds it waited
``faust_table_gets_total``                 key reads, per ``table`` (and sets, deletes)
``faust_table_changelog_records_total``    changelog records sent and acked
``faust_table_keys``                       keys held locally (RocksDB: an estimate)
``faust_table_recovery_records``           records read by the last recovery, and its
                                           ``faust_table_recovery_records_expected``
``faust_table_recovering_partitions``      partitions still being restored
``faust_rebalances_total``                 rebalances this worker took part in
``faust_errors_total``                     per ``kind``: decode, agent, send,
                                           dead_lettered, dead_letter_failed, skipped
=========================================  ==========================================

Example (what the web server's ``/metrics`` handler does)::

    body, content_type = render_metrics(app)
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from .monitor import Histogram

__all__ = ["render_metrics", "registry_for", "FaustCollector"]

_registries: weakref.WeakKeyDictionary[Any, CollectorRegistry] = weakref.WeakKeyDictionary()


def render_metrics(app: Any) -> tuple[bytes, str]:
    """The body and content type of ``/metrics`` for ``app``.

    Example::

        body, content_type = render_metrics(app)
        assert b'faust_commits_total' in body
    """
    return generate_latest(registry_for(app)), CONTENT_TYPE_LATEST


def registry_for(app: Any) -> CollectorRegistry:
    """The app's own registry, holding a :class:`FaustCollector` (made once)."""
    registry = _registries.get(app)
    if registry is None:
        registry = _registries[app] = CollectorRegistry(auto_describe=False)
        registry.register(FaustCollector(app))
    return registry


def _histogram(name: str, doc: str, labels: list[str]) -> HistogramMetricFamily:
    return HistogramMetricFamily(name, doc, labels=labels)


def _add_histogram(family: HistogramMetricFamily, labels: list[str], hist: Histogram) -> None:
    buckets = [("+Inf" if b == float("inf") else repr(float(b)), c) for b, c in hist.cumulative()]
    family.add_metric(labels, buckets, hist.sum)


class FaustCollector(Collector):
    """Turns ``app.monitor`` into metric families when the registry is collected."""

    def __init__(self, app: Any) -> None:
        self._app = weakref.ref(app)

    def collect(self) -> Iterator[Metric]:
        app = self._app()
        monitor = getattr(app, "monitor", None)
        enabled = GaugeMetricFamily(
            "faust_sensors_enabled", "1 if the app's Monitor is on (setting sensors_enabled)"
        )
        enabled.add_metric([], 0 if monitor is None else 1)
        yield enabled
        if monitor is None:
            return
        snap = monitor.snapshot()
        yield from _topics(snap)
        yield from _agents(snap, monitor)
        yield from _partitions(snap)
        yield from _commits(snap, monitor)
        yield from _sends(snap)
        yield from _tables(snap)
        yield from _rebalances_and_errors(snap)


def _counter(name: str, doc: str, labels: list[str]) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, labels=labels)


def _topics(snap: dict[str, Any]) -> Iterator[Metric]:
    fields = (
        ("faust_topic_messages_in", "Messages fetched from the topic", "messages_in"),
        ("faust_topic_events_in", "Messages of the topic decoded into events", "events_in"),
        ("faust_topic_events_out", "Messages of the topic fully processed", "messages_out"),
    )
    for name, doc, key in fields:
        family = _counter(name, doc, ["topic"])
        for topic, counts in sorted(snap["topics"].items()):
            family.add_metric([topic], counts[key])
        yield family


def _agents(snap: dict[str, Any], monitor: Any) -> Iterator[Metric]:
    events_in = _counter("faust_agent_events_in", "Events delivered to the agent", ["agent"])
    events_out = _counter("faust_agent_events_out", "Events the agent took", ["agent"])
    latency = _histogram(
        "faust_agent_processing_seconds",
        "The agent's busy time per event (measured per batch of events, see docs)",
        ["agent"],
    )
    for name, agent in sorted(snap["agents"].items()):
        events_in.add_metric([name], agent["events_in"])
        events_out.add_metric([name], agent["events_out"])
        _add_histogram(latency, [name], monitor.agents[name].latency)
    yield events_in
    yield events_out
    yield latency


def _partitions(snap: dict[str, Any]) -> Iterator[Metric]:
    labels = ["topic", "partition"]
    committed = GaugeMetricFamily(
        "faust_consumer_committed_offset", "The partition's committed offset", labels=labels
    )
    end = GaugeMetricFamily(
        "faust_consumer_end_offset", "The partition's log end offset (last fetch)", labels=labels
    )
    lag = GaugeMetricFamily(
        "faust_consumer_lag", "Log end offset minus committed offset", labels=labels
    )
    for row in snap["partitions"]:
        values = [row["topic"], str(row["partition"])]
        if row["committed"] is not None:
            committed.add_metric(values, row["committed"])
        if row["end_offset"] is not None:
            end.add_metric(values, row["end_offset"])
        if row["lag"] is not None:
            lag.add_metric(values, row["lag"])
    yield committed
    yield end
    yield lag


def _commits(snap: dict[str, Any], monitor: Any) -> Iterator[Metric]:
    yield CounterMetricFamily(
        "faust_commits", "Commits of the consumer's offsets", value=snap["commits"]["count"]
    )
    latency = _histogram("faust_commit_latency_seconds", "A commit, its table flushes included", [])
    _add_histogram(latency, [], monitor.commit_latency)
    yield latency
    producer = snap["producer"]
    yield GaugeMetricFamily(
        "faust_producer_buffered_records",
        "Records waiting in the producer's buffer",
        value=producer["buffered"],
    )
    yield GaugeMetricFamily(
        "faust_producer_backlogged",
        "1 while the app holds so much unsent work that the consumer stops fetching",
        value=1 if producer["backlogged"] else 0,
    )
    yield CounterMetricFamily(
        "faust_backpressure_waits",
        "Times the fetch loop waited out a backlog",
        value=producer["backpressure_waits"],
    )
    yield CounterMetricFamily(
        "faust_backpressure_seconds",
        "Seconds the fetch loop waited out backlogs",
        value=producer["backpressure_seconds"],
    )


def _sends(snap: dict[str, Any]) -> Iterator[Metric]:
    fields = (
        ("faust_sends_initiated", "Records handed to the producer", "initiated"),
        ("faust_sends_completed", "Records the broker acknowledged", "completed"),
        ("faust_send_errors", "Records that could not be sent", "errors"),
    )
    for name, doc, key in fields:
        family = _counter(name, doc, ["topic"])
        for topic, counts in sorted(snap["sends"].items()):
            family.add_metric([topic], counts[key])
        yield family


def _tables(snap: dict[str, Any]) -> Iterator[Metric]:
    tables = sorted(snap["tables"].items())
    ops = (
        ("faust_table_gets", "Key reads", "gets"),
        ("faust_table_sets", "Key writes", "sets"),
        ("faust_table_deletes", "Key deletes", "deletes"),
        ("faust_table_changelog_records", "Changelog records sent and acked", "changelog_records"),
    )
    for name, doc, key in ops:
        family = _counter(name, doc, ["table"])
        for table, counts in tables:
            family.add_metric([table], counts[key])
        yield family
    keys = GaugeMetricFamily(
        "faust_table_keys", "Keys held locally (RocksDB: its estimate)", labels=["table"]
    )
    recovering = GaugeMetricFamily(
        "faust_table_recovering_partitions",
        "Partitions of the table still being restored",
        labels=["table"],
    )
    read = GaugeMetricFamily(
        "faust_table_recovery_records",
        "Changelog records read by the partition's last recovery",
        labels=["table", "partition"],
    )
    expected = GaugeMetricFamily(
        "faust_table_recovery_records_expected",
        "Changelog records the partition's last recovery had to read",
        labels=["table", "partition"],
    )
    for table, info in tables:
        keys.add_metric([table], info["size"])
        rows = info["recovery"]
        recovering.add_metric([table], sum(1 for r in rows if r["state"] == "recovering"))
        for row in rows:
            read.add_metric([table, str(row["partition"])], row["read"])
            expected.add_metric([table, str(row["partition"])], row["total"])
    yield keys
    yield recovering
    yield read
    yield expected


def _rebalances_and_errors(snap: dict[str, Any]) -> Iterator[Metric]:
    rebalances = snap["rebalances"]
    yield CounterMetricFamily(
        "faust_rebalances", "Rebalances this worker took part in", value=rebalances["count"]
    )
    yield GaugeMetricFamily(
        "faust_rebalance_in_progress",
        "1 while a rebalance is in progress",
        value=1 if rebalances["in_progress"] else 0,
    )
    errors = snap["errors"]
    family = _counter("faust_errors", "Errors by kind", ["kind"])
    for kind, key in (
        ("decode", "decode"),
        ("agent", "agent"),
        ("send", "send"),
        ("dead_lettered", "dead_lettered"),
        ("dead_letter_failed", "dead_letter_failures"),
        ("skipped", "skipped"),
    ):
        family.add_metric([kind], errors[key])
    yield family
