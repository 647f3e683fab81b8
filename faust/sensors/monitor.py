"""The default sensor: counters, timings and recent errors in memory (``app.monitor``).

The Monitor takes the batch hooks of :class:`~faust.Sensor` and, for what happens per
operation (table reads and writes, records handed to the producer), reads the counters
the tables and the producer keep inline when it is asked: nothing is called per event.
:meth:`Monitor.snapshot` gives it all as one JSON-ready dict (the dashboard's data);
``faust.sensors.prometheus`` turns it into Prometheus metrics at scrape time.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from ..transport.base import TP, Message
from .base import Sensor

__all__ = ["Monitor", "LATENCY_BUCKETS", "COMMIT_BUCKETS"]

#: Upper bounds (seconds) of the per-agent processing-time histogram: an event takes
#: from about a microsecond (a counter) to seconds (a remote call).
LATENCY_BUCKETS = (
    1e-6,
    2.5e-6,
    5e-6,
    1e-5,
    2.5e-5,
    5e-5,
    1e-4,
    2.5e-4,
    5e-4,
    1e-3,
    2.5e-3,
    5e-3,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
#: Upper bounds (seconds) of the commit-latency histogram (a commit with its flushes).
COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: Throughput history: one sample a second for the last five minutes.
HISTORY_INTERVAL = 1.0
HISTORY_LENGTH = 300
#: Recent errors kept (oldest dropped first).
RECENT_ERRORS = 50
#: Characters of an error's message kept in the recent errors.
ERROR_MESSAGE_CHARS = 500


class Histogram:
    """Cumulative counts per upper bound, their sum and count (Prometheus' model)."""

    __slots__ = ("bounds", "counts", "sum", "count")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last: above every bound
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float, weight: int = 1) -> None:
        """Record ``weight`` observations of ``value``."""
        index = 0
        bounds = self.bounds
        while index < len(bounds) and value > bounds[index]:
            index += 1
        self.counts[index] += weight
        self.sum += value * weight
        self.count += weight

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound, observations <= it)`` pairs, ending with ``(inf, count)``."""
        out = []
        total = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += count
            out.append((bound, total))
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "buckets": [["+Inf" if b == float("inf") else b, c] for b, c in self.cumulative()],
            "sum": self.sum,
            "count": self.count,
        }


class _AgentStats:
    __slots__ = ("events_in", "events_out", "busy_seconds", "latency")

    def __init__(self) -> None:
        self.events_in = 0
        self.events_out = 0
        self.busy_seconds = 0.0
        self.latency = Histogram(LATENCY_BUCKETS)


class Monitor(Sensor):
    """Counters and rates of an app in memory (``app.monitor``).

    Read it with :meth:`snapshot`; ``faust.sensors.prometheus.render_metrics(app)``
    renders the same figures for Prometheus.

    Example::

        app = faust.App('orders')
        snap = app.monitor.snapshot()
        snap['agents']        # {agent name: {'events_in': ..., 'events_out': ..., ...}}
    """

    def __init__(self, app: Any = None) -> None:
        self.app = app
        self.started_at = time.time()
        self.messages_in: dict[TP, int] = {}
        self.messages_out: dict[TP, int] = {}
        self.decode_errors_by_topic: dict[str, int] = {}
        self.agents: dict[str, _AgentStats] = {}
        self.send_errors: dict[str, int] = {}
        self.commits = 0
        self.commit_latency = Histogram(COMMIT_BUCKETS)
        self.last_commit_at: float | None = None
        self.changelog_records: dict[str, int] = {}
        #: (table, partition) -> [read, total] of the latest recovery batch.
        self.recovery: dict[tuple[str, int], list[int]] = {}
        self.rebalances = 0
        self.rebalance_seconds = 0.0
        self._rebalance_started: float | None = None
        self.errors: dict[str, int] = {"decode": 0, "agent": 0, "send": 0, "dead_lettered": 0}
        self.recent_errors: deque[dict[str, Any]] = deque(maxlen=RECENT_ERRORS)
        #: (time, {agent: events taken so far}) once a second; rates come from these.
        self._history: deque[tuple[float, dict[str, int]]] = deque(maxlen=HISTORY_LENGTH + 1)
        self._last_sample = 0.0

    # -- hooks
    def on_messages_in(self, tp: TP, messages: Sequence[Message]) -> None:
        counts = self.messages_in
        counts[tp] = counts.get(tp, 0) + len(messages)

    def on_messages_out(self, tp: TP, count: int, offset: int) -> None:
        counts = self.messages_out
        counts[tp] = counts.get(tp, 0) + count

    def on_stream_events_in(self, stream: str, count: int) -> None:
        agent = self.agents.get(stream)
        if agent is None:
            agent = self.agents[stream] = _AgentStats()
        agent.events_in += count

    def on_stream_events_out(self, stream: str, count: int, seconds: float) -> None:
        agent = self.agents.get(stream)
        if agent is None:
            agent = self.agents[stream] = _AgentStats()
        agent.events_out += count
        agent.busy_seconds += seconds
        # The mean of the batch stands for each of its events (see StreamStats).
        agent.latency.observe(seconds / count, count)

    def on_offsets_committed(self, offsets: Mapping[TP, int], seconds: float) -> None:
        self.commits += 1
        self.commit_latency.observe(seconds)
        self.last_commit_at = time.time()

    def on_partitions_revoking(self, revoked: set[TP]) -> None:
        self._rebalance_started = time.monotonic()

    def on_partitions_taken(self, assigned: set[TP], seconds: float) -> None:
        self.rebalances += 1
        self.rebalance_seconds = seconds
        self._rebalance_started = None

    def on_agent_error(self, agent: str, exc: BaseException) -> None:
        self._error("agent", f"agent {agent}: {exc!r}")

    def on_decode_error(self, message: Message, exc: BaseException) -> None:
        counts = self.decode_errors_by_topic
        counts[message.topic] = counts.get(message.topic, 0) + 1
        self._error("decode", f"{message.topic}[{message.partition}]@{message.offset}: {exc!r}")

    def on_dead_letter(self, message: Message, topic: str) -> None:
        self.errors["dead_lettered"] += 1
        self.recent_errors.append(
            {
                "time": time.time(),
                "kind": "dead_lettered",
                "message": f"{message.topic}[{message.partition}]@{message.offset} -> {topic}",
            }
        )

    def on_records_failed(self, topic: str, count: int, exc: BaseException) -> None:
        counts = self.send_errors
        counts[topic] = counts.get(topic, 0) + count
        self.errors["send"] += count - 1  # _error adds the one
        self._error("send", f"{count} record(s) to {topic}: {exc!r}")

    def on_changelog_records(self, table: str, count: int) -> None:
        counts = self.changelog_records
        counts[table] = counts.get(table, 0) + count

    def on_recovery_progress(self, table: str, partition: int, read: int, total: int) -> None:
        self.recovery[table, partition] = [read, total]

    def _error(self, kind: str, message: str) -> None:
        self.errors[kind] += 1
        self.recent_errors.append(
            {"time": time.time(), "kind": kind, "message": message[:ERROR_MESSAGE_CHARS]}
        )

    # -- throughput history
    def sample(self, now: float | None = None) -> None:
        """Record every agent's events taken so far (the ticker calls this each second)."""
        if now is None:
            now = time.time()
        self._sync()
        self._history.append((now, {name: a.events_out for name, a in self.agents.items()}))
        self._last_sample = now

    async def run(self) -> None:
        """Sample the throughput once a second (run by the app while it runs)."""
        while True:
            self.sample()
            await asyncio.sleep(HISTORY_INTERVAL)

    def _sync(self) -> None:
        if self.app is not None:
            self.app.sensors.settle_streams()

    def history(self) -> dict[str, list[list[float]]]:
        """Per agent, ``[time, events per second]`` between consecutive samples."""
        samples = list(self._history)
        out: dict[str, list[list[float]]] = {name: [] for name in self.agents}
        for (t0, before), (t1, after) in zip(samples, samples[1:], strict=False):
            span = t1 - t0
            if span <= 0:
                continue
            for name, total in after.items():
                rate = (total - before.get(name, 0)) / span
                out.setdefault(name, []).append([round(t1, 3), round(rate, 3)])
        return out

    # -- reading it all
    def snapshot(self) -> dict[str, Any]:
        """Everything the Monitor knows, as a JSON-serialisable dict.

        Counts are since the app was created. The schema (version 1)::

            {
              "version": 1, "app": str, "time": unix seconds, "started_at": unix seconds,
              "topics": {topic: {"messages_in", "events_in", "messages_out",
                                 "decode_errors"}},
              "partitions": [{"topic", "partition", "messages_in", "messages_out",
                              "committed", "end_offset", "lag"}],   # lag: null if unknown
              "agents": {name: {"events_in", "events_out", "buffered", "busy_seconds",
                                "mean_seconds", "history": [[unix time, events/s], ...]}},
              "history_interval": 1.0,
              "sends": {topic: {"initiated", "completed", "errors", "pending"}},
              "producer": {"buffered", "backlogged", "backpressure_waits",
                           "backpressure_seconds"},
              "commits": {"count", "latency_seconds_sum", "latency_seconds_mean",
                          "last_at"},
              "tables": {name: {"gets", "sets", "deletes", "changelog_records", "size",
                                "recovery": [{"partition", "state", "read", "total"}]}},
              "rebalances": {"count", "in_progress", "last_seconds"},
              "errors": {"decode", "agent", "send", "dead_lettered",
                         "dead_letter_failures", "retried", "skipped"},
              "recent_errors": [{"time", "kind", "message"}]   # oldest first
            }

        ``events_in`` of a topic is what was decoded from it (messages in minus decode
        errors); ``messages_out`` what was fully processed. An agent's ``events_in`` is
        what was delivered to its queue, ``events_out`` what it took from it (equal once
        it is idle; an event handed back for a retry is taken again); ``mean_seconds``
        its busy time per event. A table's ``size`` is the keys held here (RocksDB: its
        estimate; an exact count reads every key). A partition's ``lag`` is
        its end offset minus its committed offset (minus the offset it started at
        before a first commit). A recovery ``state`` is ``recovering``, ``recovered`` or
        ``standby``.

        Example::

            snap = app.monitor.snapshot()
            for name, agent in snap['agents'].items():
                print(name, agent['events_out'])
        """
        now = time.time()
        if now - self._last_sample >= HISTORY_INTERVAL:
            self.sample(now)  # no ticker (the app not started): sample on demand
        else:
            self._sync()
        app = self.app
        history = self.history()
        agents: dict[str, Any] = {}
        buffered = self._buffered()
        for name, stats in self.agents.items():
            agents[name] = {
                "events_in": stats.events_in,
                "events_out": stats.events_out,
                "buffered": buffered.get(name, 0),
                "busy_seconds": stats.busy_seconds,
                "mean_seconds": stats.busy_seconds / stats.events_out if stats.events_out else None,
                "history": history.get(name, []),
            }
        errors = dict(self.errors)
        counts = getattr(app, "error_counts", None)
        for name in ("dead_letter_failures", "retried", "skipped"):
            errors[name] = getattr(counts, name, 0)
        return {
            "version": 1,
            "app": app.conf.id if app is not None else None,
            "time": now,
            "started_at": self.started_at,
            "topics": self._topics(),
            "partitions": self._partitions(),
            "agents": agents,
            "history_interval": HISTORY_INTERVAL,
            "sends": self._sends(),
            "producer": self._producer(),
            "commits": {
                "count": self.commits,
                "latency_seconds_sum": self.commit_latency.sum,
                "latency_seconds_mean": (
                    self.commit_latency.sum / self.commits if self.commits else None
                ),
                "last_at": self.last_commit_at,
            },
            "tables": self._tables(),
            "rebalances": {
                "count": self.rebalances,
                "in_progress": self._rebalance_started is not None,
                "last_seconds": self.rebalance_seconds,
            },
            "errors": errors,
            "recent_errors": list(self.recent_errors),
        }

    def _buffered(self) -> dict[str, int]:
        out: dict[str, int] = {}
        if self.app is None:
            return out
        for queue in list(self.app.sensors._streams):
            stats = queue.stats
            if stats is not None:
                out[stats.name] = out.get(stats.name, 0) + len(queue.buffer)
        return out

    def _topics(self) -> dict[str, dict[str, int]]:
        topics: dict[str, dict[str, int]] = {}

        def entry(name: str) -> dict[str, int]:
            found = topics.get(name)
            if found is None:
                found = topics[name] = {
                    "messages_in": 0,
                    "events_in": 0,
                    "messages_out": 0,
                    "decode_errors": 0,
                }
            return found

        for tp, count in self.messages_in.items():
            item = entry(tp.topic)
            item["messages_in"] += count
            item["events_in"] += count
        for tp, count in self.messages_out.items():
            entry(tp.topic)["messages_out"] += count
        for topic, count in self.decode_errors_by_topic.items():
            item = entry(topic)
            item["decode_errors"] += count
            item["events_in"] -= count
        return topics

    def partition_offsets(self) -> list[dict[str, Any]]:
        """Per assigned partition: committed offset, end offset and lag (see snapshot)."""
        return self._partitions()

    def _partitions(self) -> list[dict[str, Any]]:
        app = self.app
        consumer = getattr(app, "consumer", None)
        if consumer is None:
            return []
        driver = consumer.driver
        passive = app.conductor.passive_topic_names()
        rows = []
        for tp in sorted(driver.assignment()):
            if tp.topic in passive:
                continue  # table changelogs: read by the recovery, never committed
            committed = consumer.committed.get(tp)
            end = driver.highwater(tp)
            base = committed if committed is not None else consumer.started_at.get(tp)
            if base is None and end == 0:
                base = 0  # an empty partition: nothing to read, wherever it starts
            lag = None if end is None or base is None else max(end - base, 0)
            rows.append(
                {
                    "topic": tp.topic,
                    "partition": tp.partition,
                    "messages_in": self.messages_in.get(tp, 0),
                    "messages_out": self.messages_out.get(tp, 0),
                    "committed": committed,
                    "end_offset": end,
                    "lag": lag,
                }
            )
        return rows

    def _sends(self) -> dict[str, dict[str, int]]:
        producer = getattr(self.app, "_producer", None)
        initiated: Mapping[str, int] = producer.counts.initiated if producer is not None else {}
        acked: Mapping[str, int] = producer.counts.completed if producer is not None else {}
        sends: dict[str, dict[str, int]] = {}
        for topic in {*initiated, *acked, *self.send_errors}:
            started = initiated.get(topic, 0)
            completed = acked.get(topic, 0)
            failed = self.send_errors.get(topic, 0)
            sends[topic] = {
                "initiated": started,
                "completed": completed,
                "errors": failed,
                "pending": max(started - completed - failed, 0),
            }
        return sends

    def _producer(self) -> dict[str, Any]:
        app = self.app
        producer = getattr(app, "_producer", None)
        consumer = getattr(app, "consumer", None)
        return {
            "buffered": producer.buffered if producer is not None else 0,
            "backlogged": bool(producer is not None and producer.backlogged)
            or any(t.backlogged for t in getattr(app, "tables", ())),
            "backpressure_waits": consumer.backlog_waits if consumer is not None else 0,
            "backpressure_seconds": consumer.backlog_seconds if consumer is not None else 0.0,
        }

    def _tables(self) -> dict[str, dict[str, Any]]:
        app = self.app
        manager = getattr(app, "tables", None)
        if manager is None:
            return {}
        out: dict[str, dict[str, Any]] = {}
        for table in manager:
            out[table.name] = {
                "gets": table.gets,
                "sets": table.sets,
                "deletes": table.deletes,
                "changelog_records": self.changelog_records.get(table.name, 0),
                "size": _approximate_size(table),
                "recovery": manager.recovery_state(table, self.recovery),
            }
        return out


def _approximate_size(table: Any) -> int:
    store = table._store
    if store is None:
        return 0
    return sum(store.approximate_size(p) for p in sorted(store.partitions()))
