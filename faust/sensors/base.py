"""The sensor interface: hooks called as events flow, and the app's set of sensors.

Hooks are called where the code already handles a batch (a fetched batch, a delivery to
a stream's queue, a commit, a producer batch, a table flush, a recovery batch), with
the batch's count, so a sensor costs nothing per event. Two kinds of hooks are per
operation by nature (a table read or write, a record handed to the producer): those are
dispatched only to sensors that override them, and the default :class:`Monitor` reads
exact counters kept inline instead, so with only the Monitor installed nothing is
called per operation.

Every count a hook gets is exact; only timings (``on_stream_event_out``'s ``seconds``)
are measured per batch rather than per event.

Example::

    class Counting(faust.Sensor):
        def __init__(self):
            self.fetched = 0

        def on_message_in(self, tp, messages):
            self.fetched += len(messages)

    counting = Counting()
    app.sensors.add(counting)
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from weakref import WeakSet

from ..transport.base import TP, Message

if TYPE_CHECKING:
    from ..channels import EventQueue

__all__ = ["Sensor", "SensorDelegate", "StreamStats"]

#: Hooks called once per operation (not per batch): dispatched only to sensors that
#: override them (see :meth:`SensorDelegate.wants`).
PER_OPERATION_HOOKS = ("on_table_get", "on_table_set", "on_table_del", "on_send_initiated")


class Sensor:
    """Receives the hooks of an app's data path; every hook does nothing by default.

    Subclass it, override what you need and add an instance with
    ``app.sensors.add(sensor)``. Hooks must be quick and must not raise (what one
    raises is not caught: it would fail the fetch, commit or send that called it).

    Example::

        class Lag(faust.Sensor):
            def on_commit_completed(self, offsets, seconds):
                print(f'committed {len(offsets)} partitions in {seconds * 1000:.1f} ms')

        app.sensors.add(Lag())
    """

    # -- the consumer
    def on_message_in(self, tp: TP, messages: Sequence[Message]) -> None:
        """A batch of ``messages`` of ``tp`` was fetched (in offset order)."""

    def on_message_out(self, tp: TP, count: int, offset: int) -> None:
        """``count`` more messages of ``tp`` are fully processed (their streams moved
        past them and what they sent is acked); ``offset`` is now committable."""

    def on_commit_initiated(self, offsets: Mapping[TP, int]) -> None:
        """A commit of ``offsets`` starts (tables flush their changelogs first)."""

    def on_commit_completed(self, offsets: Mapping[TP, int], seconds: float) -> None:
        """``offsets`` are committed; ``seconds`` from the start (flushes included)."""

    def on_rebalance_start(self, revoked: set[TP]) -> None:
        """The group rebalances; ``revoked`` partitions are given up (may be empty)."""

    def on_rebalance_end(self, assigned: set[TP], seconds: float) -> None:
        """The rebalance ended with ``assigned`` newly assigned to this worker."""

    # -- streams and agents
    def on_stream_event_in(self, stream: str, count: int) -> None:
        """``count`` events were delivered to the queue of ``stream`` (an agent's name)."""

    def on_stream_event_out(self, stream: str, count: int, seconds: float) -> None:
        """``stream`` took ``count`` more events from its queue, busy ``seconds`` with
        them (the time it was not waiting for input; see :class:`StreamStats`)."""

    def on_agent_error(self, agent: str, exc: BaseException) -> None:
        """Agent ``agent`` raised ``exc`` (it is restarted)."""

    def on_decode_error(self, message: Message, exc: BaseException) -> None:
        """``message`` could not be decoded."""

    def on_dead_letter(self, message: Message, topic: str) -> None:
        """The broker acked the dead letter of ``message`` in ``topic``."""

    # -- the producer
    def on_send_initiated(self, topic: str, count: int) -> None:
        """``count`` records to ``topic`` were handed to the producer (per record)."""

    def on_send_completed(self, topic: str, count: int) -> None:
        """The broker acked ``count`` records sent to ``topic``."""

    def on_send_error(self, topic: str, count: int, exc: BaseException) -> None:
        """``count`` records to ``topic`` could not be sent."""

    # -- tables
    def on_table_get(self, table: str, key: Any) -> None:
        """A key of ``table`` was read (per read: only called when overridden)."""

    def on_table_set(self, table: str, key: Any, value: Any) -> None:
        """A key of ``table`` was written (per write: only called when overridden)."""

    def on_table_del(self, table: str, key: Any) -> None:
        """A key of ``table`` was deleted (per delete: only called when overridden)."""

    def on_changelog_records(self, table: str, count: int) -> None:
        """``count`` changelog records of ``table`` were sent and acked (a flush)."""

    def on_recovery_progress(self, table: str, partition: int, read: int, total: int) -> None:
        """Recovering ``table`` partition ``partition``: ``read`` of ``total`` records."""


class StreamStats:
    """Counts and busy time of one stream's queue, kept per batch, not per event.

    ``events_in`` counts what was appended to the queue. Events leave the queue one at
    a time without a call, so how many were taken is worked out when it is needed (on
    a delivery, when the stream waits for input, once a second, and at a scrape): what
    came in, minus what is buffered, minus what a rebalance dropped, plus what an agent
    handed back for a retry. Busy time runs from the end of a wait for input to the
    next wait; at each settlement its seconds go with the events taken meanwhile.

    Measured on this machine (bench a, Kafka): a clock read per event would be ~60 ns on
    ~2.2 µs per event (2-3%); settling per batch costs two clock reads per batch of up
    to ``broker_max_poll_records`` events (~0.1 µs per batch), nothing per event.
    """

    __slots__ = (
        "name",
        "events_in",
        "taken",
        "dropped",
        "requeued",
        "_busy_since",
        "_delegate",
        "__weakref__",
    )

    def __init__(self, name: str, delegate: SensorDelegate) -> None:
        self.name = name
        self.events_in = 0
        self.taken = 0
        self.dropped = 0
        self.requeued = 0
        # perf_counter() at the start of the current busy run, or None while waiting.
        self._busy_since: float | None = None
        self._delegate = delegate

    def delivered(self, count: int) -> None:
        self.events_in += count
        for sensor in self._delegate._sensors:
            sensor.on_stream_event_in(self.name, count)

    def settle(self, queue: EventQueue, busy: bool) -> None:
        """Report the events taken since the last settlement with their busy time;
        ``busy``: the stream goes on without waiting (else it waits for input)."""
        taken = self.events_in + self.requeued - self.dropped - len(queue.buffer)
        count = taken - self.taken
        since = self._busy_since
        if count > 0:
            now = time.perf_counter()
            self.taken = taken
            seconds = 0.0 if since is None else now - since
            for sensor in self._delegate._sensors:
                sensor.on_stream_event_out(self.name, count, seconds)
            self._busy_since = now if busy else None
        elif not busy:
            self._busy_since = None
        elif since is None:
            self._busy_since = time.perf_counter()


class SensorDelegate:
    """The app's sensors (``app.sensors``): hooks called on it reach each of them.

    ``app.monitor`` (the in-memory :class:`~faust.Monitor`) is in it unless the
    ``sensors_enabled`` setting is False.

    Example::

        app.sensors.add(my_sensor)
        assert my_sensor in app.sensors
        app.sensors.remove(my_sensor)
    """

    def __init__(self, app: Any = None) -> None:
        self.app = app
        self._sensors: list[Sensor] = []
        #: Sensors overriding each per-operation hook (empty: that hook is not called).
        self._per_operation: dict[str, list[Sensor]] = {h: [] for h in PER_OPERATION_HOOKS}
        self._streams: WeakSet[EventQueue] = WeakSet()
        #: Installed by the tables and the producer: called when the per-operation
        #: sensors change, so they call hooks per operation only while someone listens.
        self._watchers: list[Any] = []

    # -- the set of sensors
    def add(self, sensor: Sensor) -> None:
        """Add ``sensor``: it gets every hook from now on."""
        if not isinstance(sensor, Sensor):
            raise TypeError(
                f"app.sensors.add() takes a faust.Sensor (subclass it and override the "
                f"hooks you need), not {sensor!r}"
            )
        if sensor in self._sensors:
            return
        self._sensors.append(sensor)
        self._refresh()

    def remove(self, sensor: Sensor) -> None:
        """Remove ``sensor`` (a sensor not added is no error)."""
        if sensor in self._sensors:
            self._sensors.remove(sensor)
            self._refresh()

    def __iter__(self) -> Iterator[Sensor]:
        return iter(list(self._sensors))

    def __len__(self) -> int:
        return len(self._sensors)

    def __contains__(self, sensor: object) -> bool:
        return sensor in self._sensors

    def wants(self, hook: str) -> list[Sensor]:
        """The sensors that override per-operation ``hook`` (the list is live)."""
        return self._per_operation[hook]

    def _refresh(self) -> None:
        for hook, sensors in self._per_operation.items():
            default = getattr(Sensor, hook)
            sensors[:] = [
                s for s in self._sensors if getattr(type(s), hook, default) is not default
            ]
        for watcher in list(self._watchers):
            watcher()

    # -- streams
    def watch(self, queue: EventQueue, name: str) -> StreamStats:
        """Count what goes through ``queue``, the queue of stream ``name``."""
        stats = queue.stats
        if stats is None or stats.name != name:
            stats = queue.stats = StreamStats(name, self)
        self._streams.add(queue)
        return stats

    def settle_streams(self) -> None:
        """Bring every stream's taken count and busy time up to now."""
        for queue in list(self._streams):
            stats = queue.stats
            if stats is not None:
                stats.settle(queue, busy=stats._busy_since is not None)

    # -- hooks called on the delegate reach every sensor
    def on_message_in(self, tp: TP, messages: Sequence[Message]) -> None:
        for sensor in self._sensors:
            sensor.on_message_in(tp, messages)

    def on_message_out(self, tp: TP, count: int, offset: int) -> None:
        for sensor in self._sensors:
            sensor.on_message_out(tp, count, offset)

    def on_commit_initiated(self, offsets: Mapping[TP, int]) -> None:
        for sensor in self._sensors:
            sensor.on_commit_initiated(offsets)

    def on_commit_completed(self, offsets: Mapping[TP, int], seconds: float) -> None:
        for sensor in self._sensors:
            sensor.on_commit_completed(offsets, seconds)

    def on_rebalance_start(self, revoked: set[TP]) -> None:
        for sensor in self._sensors:
            sensor.on_rebalance_start(revoked)

    def on_rebalance_end(self, assigned: set[TP], seconds: float) -> None:
        for sensor in self._sensors:
            sensor.on_rebalance_end(assigned, seconds)

    def on_agent_error(self, agent: str, exc: BaseException) -> None:
        for sensor in self._sensors:
            sensor.on_agent_error(agent, exc)

    def on_decode_error(self, message: Message, exc: BaseException) -> None:
        for sensor in self._sensors:
            sensor.on_decode_error(message, exc)

    def on_dead_letter(self, message: Message, topic: str) -> None:
        for sensor in self._sensors:
            sensor.on_dead_letter(message, topic)

    def on_send_completed(self, topic: str, count: int) -> None:
        for sensor in self._sensors:
            sensor.on_send_completed(topic, count)

    def on_send_error(self, topic: str, count: int, exc: BaseException) -> None:
        for sensor in self._sensors:
            sensor.on_send_error(topic, count, exc)

    def on_changelog_records(self, table: str, count: int) -> None:
        for sensor in self._sensors:
            sensor.on_changelog_records(table, count)

    def on_recovery_progress(self, table: str, partition: int, read: int, total: int) -> None:
        for sensor in self._sensors:
            sensor.on_recovery_progress(table, partition, read, total)

    def __repr__(self) -> str:
        return f"<SensorDelegate: {len(self._sensors)} sensors>"
