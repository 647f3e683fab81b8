"""The sensor interface: hooks called as events flow, and the app's set of sensors.

Two kinds of hooks:

- **Faust's hooks**, with Faust's names and arguments (``on_message_in(tp, offset,
  message)``, ``on_stream_event_in(tp, offset, stream, event)``, ``on_send_initiated(
  producer, topic, message, keysize, valsize)``, ``on_commit_initiated(consumer)``, ...),
  so a Faust sensor runs unchanged. Those called per message, event, record or table
  operation are called only for sensors that override them (decided when a sensor is
  added): with none, they cost nothing. What a ``*_start``/``*_initiated``/``*_in`` hook
  returns is handed to the same sensor's matching ``*_end``/``*_completed``/``*_out``
  hook as ``state``.
- **Batch hooks**, called where the code already handles a batch (a fetched batch, a
  delivery to a stream's queue, a commit, an ack batch, a table flush, a recovery
  batch) with the batch's count: ``on_messages_in(tp, messages)``,
  ``on_stream_events_out(stream, count, seconds)``, ``on_offsets_committed(offsets,
  seconds)``, ... The default :class:`Monitor` uses these, and reads exact counters
  kept inline, so with only the Monitor installed nothing is called per event.

Every count a hook gets is exact; only timings (``on_stream_events_out``'s ``seconds``)
are measured per batch rather than per event.

Example::

    class Counting(faust.Sensor):
        def __init__(self):
            self.fetched = 0

        def on_message_in(self, tp, offset, message):      # Faust's: per message
            self.fetched += 1

        def on_messages_in(self, tp, messages):            # ours: per fetched batch
            print(f'{len(messages)} fetched from {tp}')

    app.sensors.add(Counting())
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from weakref import WeakSet

from ..transport.base import TP, Message

if TYPE_CHECKING:
    from ..channels import EventQueue

__all__ = ["Sensor", "SensorDelegate", "StreamStats"]

logger = logging.getLogger(__name__)

#: Hooks called once per operation (a message, an event, a table read, a record handed
#: over or acked: the embedded broker acks each record on its own): dispatched only to
#: sensors that override them (see :meth:`SensorDelegate.wants`); the Monitor reads
#: inline counters instead.
PER_OPERATION_HOOKS = (
    "on_message_in",
    "on_message_out",
    "on_stream_event_in",
    "on_stream_event_out",
    "on_table_get",
    "on_table_set",
    "on_table_del",
    "on_send_initiated",
    "on_send_completed",
    "on_send_error",
    "on_records_sending",
    "on_records_acked",
)


class Sensor:
    """Receives the hooks of an app's data path; every hook does nothing by default.

    Subclass it, override what you need and add an instance with
    ``app.sensors.add(sensor)``. Hooks run inside the fetch loop, the streams, the
    commit and the producer's acks, so they must be quick; what one raises is logged
    and otherwise ignored (``app.sensors.failures`` counts it).

    Example::

        class Lag(faust.Sensor):
            def on_commit_initiated(self, consumer):
                return time.monotonic()

            def on_commit_completed(self, consumer, state):
                print(f'committed in {(time.monotonic() - state) * 1000:.1f} ms')

        app.sensors.add(Lag())
    """

    # -- Faust's hooks: per message (only called when overridden)
    def on_message_in(self, tp: TP, offset: int, message: Message) -> None:
        """``message`` (at ``offset`` of ``tp``) was fetched."""

    def on_message_out(self, tp: TP, offset: int, message: Message) -> None:
        """``message`` is fully processed: every stream moved past it and what was sent
        for it is acked (its offset may now be committed)."""

    # -- Faust's hooks: per stream event (only called when overridden)
    def on_stream_event_in(self, tp: TP, offset: int, stream: Any, event: Any) -> Any:
        """``stream`` (a :class:`~faust.Stream`) hands ``event`` to the code iterating
        it; what this returns is given to :meth:`on_stream_event_out` as ``state``."""
        return None

    def on_stream_event_out(
        self, tp: TP, offset: int, stream: Any, event: Any, state: Any = None
    ) -> None:
        """``stream`` moves past ``event`` (the agent asks for the next one)."""

    # -- Faust's hooks: the consumer (per commit, per rebalance)
    def on_commit_initiated(self, consumer: Any) -> Any:
        """``consumer`` starts a commit; what this returns is given to
        :meth:`on_commit_completed` as ``state``."""
        return None

    def on_commit_completed(self, consumer: Any, state: Any) -> None:
        """``consumer``'s commit is done."""

    def on_rebalance_start(self, app: Any) -> Any:
        """The consumer group of ``app`` rebalances (partitions are revoked); what this
        returns is given to :meth:`on_rebalance_return` and :meth:`on_rebalance_end`."""
        return None

    def on_rebalance_return(self, app: Any, state: Any) -> None:
        """The group's new assignment came back (the app is told its partitions)."""

    def on_rebalance_end(self, app: Any, state: Any) -> None:
        """``app`` has taken its new partitions (its callbacks ran)."""

    def on_assignment_start(self, assignor: Any) -> Any:
        """This worker leads the group and starts assigning partitions with
        ``assignor``; what this returns goes to the completed or error hook."""
        return None

    def on_assignment_completed(self, assignor: Any, state: Any) -> None:
        """``assignor`` assigned the partitions."""

    def on_assignment_error(self, assignor: Any, state: Any, exc: BaseException) -> None:
        """``assignor`` failed with ``exc``."""

    # -- Faust's hooks: the producer (per record: only called when overridden)
    def on_send_initiated(
        self, producer: Any, topic: str, message: Any, keysize: int, valsize: int
    ) -> Any:
        """``message`` (an :class:`~faust.transport.base.OutgoingRecord`: topic, key,
        value, partition, timestamp, headers) of ``keysize`` + ``valsize`` bytes was
        handed to ``producer``; what this returns goes to the completed or error hook."""
        return None

    def on_send_completed(self, producer: Any, state: Any, metadata: Any) -> None:
        """The broker acked the record: ``metadata`` is its
        :class:`~faust.transport.base.RecordMetadata`."""

    def on_send_error(self, producer: Any, exc: BaseException, state: Any) -> None:
        """The record could not be sent: ``exc``."""

    # -- Faust's hooks: tables (per operation: only called when overridden)
    def on_table_get(self, table: str, key: Any) -> None:
        """A key of ``table`` (its name) was read."""

    def on_table_set(self, table: str, key: Any, value: Any) -> None:
        """A key of ``table`` was written."""

    def on_table_del(self, table: str, key: Any) -> None:
        """A key of ``table`` was deleted."""

    # -- batch hooks: the consumer
    def on_messages_in(self, tp: TP, messages: Sequence[Message]) -> None:
        """A batch of ``messages`` of ``tp`` was fetched (in offset order)."""

    def on_messages_out(self, tp: TP, count: int, offset: int) -> None:
        """``count`` more messages of ``tp`` are fully processed (their streams moved
        past them and what they sent is acked); ``offset`` is now committable."""

    def on_offsets_committing(self, offsets: Mapping[TP, int]) -> None:
        """A commit of ``offsets`` starts (tables flush their changelogs first)."""

    def on_offsets_committed(self, offsets: Mapping[TP, int], seconds: float) -> None:
        """``offsets`` are committed; ``seconds`` from the start (flushes included)."""

    def on_partitions_revoking(self, revoked: set[TP]) -> None:
        """The group rebalances; ``revoked`` partitions are given up (may be empty)."""

    def on_partitions_taken(self, assigned: set[TP], seconds: float) -> None:
        """The rebalance ended with ``assigned`` newly assigned to this worker,
        ``seconds`` after it began."""

    # -- batch hooks: streams and agents
    def on_stream_events_in(self, stream: str, count: int) -> None:
        """``count`` events were delivered to the queue of ``stream`` (an agent's name)."""

    def on_stream_events_out(self, stream: str, count: int, seconds: float) -> None:
        """``stream`` took ``count`` more events from its queue, busy ``seconds`` with
        them (the time it was not waiting for input; see :class:`StreamStats`)."""

    def on_agent_error(self, agent: str, exc: BaseException) -> None:
        """Agent ``agent`` raised ``exc`` (it is restarted)."""

    def on_decode_error(self, message: Message, exc: BaseException) -> None:
        """``message`` could not be decoded."""

    def on_dead_letter(self, message: Message, topic: str) -> None:
        """The broker acked the dead letter of ``message`` in ``topic``."""

    # -- batch hooks: the producer
    def on_records_sending(self, topic: str, count: int) -> None:
        """``count`` records to ``topic`` were handed to the producer (per record: only
        called when overridden)."""

    def on_records_acked(self, topic: str, count: int) -> None:
        """The broker acked ``count`` records sent to ``topic`` (per ack batch; per
        record on the embedded broker: only called when overridden)."""

    def on_records_failed(self, topic: str, count: int, exc: BaseException) -> None:
        """``count`` records to ``topic`` could not be sent."""

    # -- batch hooks: tables
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
    handed back for a retry. Busy time runs from the delivery that ends a wait for
    input to the next wait; at each settlement its seconds go with the events taken
    meanwhile.

    Why per batch, measured on the 2-core benchmark machine: bench case a runs at
    ~430,000 events per CPU-second (~2.3 µs per event). Timing each event would cost a
    ``perf_counter()`` (43 ns) and the Monitor's ``on_stream_events_out`` with its
    histogram (220 ns) plus the dispatch, ~0.3 µs or 13-15% of an event; settled per
    batch (a few hundred events), the same ~0.3 µs is ~0.001 µs per event. What that
    gives up: the histogram holds each batch's mean time per event, not each event's.
    With ``concurrency`` > 1 the actors share the queue, so busy time is the queue's
    (some actor had events) and the time per event is divided by their overlap.
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
        self._delegate._dispatch("on_stream_events_in", self.name, count)

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
            self._delegate._dispatch("on_stream_events_out", self.name, count, seconds)
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
        #: Sensors overriding any of Faust's send hooks (each gets its state back), and
        #: any of its stream-event hooks: live lists, usually empty.
        self.send_sensors: list[Sensor] = []
        self.stream_sensors: list[Sensor] = []
        self._streams: WeakSet[EventQueue] = WeakSet()
        #: Times a sensor's hook raised (each is logged; the data path goes on).
        self.failures = 0
        self._failed_once: set[tuple[int, str]] = set()
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
        wants = self._per_operation
        for merged, hooks in (
            (self.send_sensors, ("on_send_initiated", "on_send_completed", "on_send_error")),
            (self.stream_sensors, ("on_stream_event_in", "on_stream_event_out")),
        ):
            merged[:] = [s for s in self._sensors if any(s in wants[h] for h in hooks)]
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

    # -- calling the sensors
    def _dispatch(self, hook: str, *args: Any) -> None:
        """Call ``hook`` of every sensor (as :meth:`call` does)."""
        for sensor in self._sensors:
            try:
                getattr(sensor, hook)(*args)
            except Exception as exc:  # noqa: BLE001 - see call()
                self._failed(sensor, hook, exc)

    def call(self, sensors: list[Sensor], hook: str, *args: Any) -> None:
        """Call ``hook(*args)`` of each of ``sensors``. What a hook raises is logged
        (with its traceback the first time for that sensor and hook) and counted in
        :attr:`failures`: a sensor never stops a fetch, a commit or a send."""
        for sensor in sensors:
            try:
                getattr(sensor, hook)(*args)
            except Exception as exc:  # noqa: BLE001 - see the docstring
                self._failed(sensor, hook, exc)

    def _failed(self, sensor: Sensor, hook: str, exc: Exception) -> None:
        key = (id(sensor), hook)
        first = key not in self._failed_once
        self._failed_once.add(key)
        self.failures += 1
        logger.error(
            "Sensor %r raised in %s: %r%s",
            sensor,
            hook,
            exc,
            "" if first else " (again; logged with its traceback the first time)",
            exc_info=exc if first else None,
        )

    # -- Faust's hooks with a state per sensor ({sensor: state})
    def _states(self, sensors: list[Sensor], hook: str, *args: Any) -> dict[Sensor, Any]:
        states: dict[Sensor, Any] = {}
        for sensor in sensors:
            try:
                states[sensor] = getattr(sensor, hook)(*args)
            except Exception as exc:  # noqa: BLE001 - see call()
                self._failed(sensor, hook, exc)
        return states

    def _ended(self, hook: str, states: Mapping[Sensor, Any], *args: Any, at: int = -1) -> None:
        """Call ``hook`` of each sensor in ``states`` with ``args`` and its state put in
        at position ``at`` (-1: last)."""
        for sensor, state in states.items():
            call_args = list(args)
            call_args.insert(len(call_args) if at == -1 else at, state)
            try:
                getattr(sensor, hook)(*call_args)
            except Exception as exc:  # noqa: BLE001 - see call()
                self._failed(sensor, hook, exc)

    def on_commit_initiated(self, consumer: Any) -> dict[Sensor, Any]:
        return self._states(self._sensors, "on_commit_initiated", consumer)

    def on_commit_completed(self, consumer: Any, state: Mapping[Sensor, Any]) -> None:
        self._ended("on_commit_completed", state, consumer)

    def on_rebalance_start(self, app: Any) -> dict[Sensor, Any]:
        return self._states(self._sensors, "on_rebalance_start", app)

    def on_rebalance_return(self, app: Any, state: Mapping[Sensor, Any]) -> None:
        self._ended("on_rebalance_return", state, app)

    def on_rebalance_end(self, app: Any, state: Mapping[Sensor, Any]) -> None:
        self._ended("on_rebalance_end", state, app)

    def on_assignment_start(self, assignor: Any) -> dict[Sensor, Any]:
        return self._states(self._sensors, "on_assignment_start", assignor)

    def on_assignment_completed(self, assignor: Any, state: Mapping[Sensor, Any]) -> None:
        self._ended("on_assignment_completed", state, assignor)

    def on_assignment_error(
        self, assignor: Any, state: Mapping[Sensor, Any], exc: BaseException
    ) -> None:
        self._ended("on_assignment_error", state, assignor, exc, at=1)

    def on_send_initiated(
        self, producer: Any, topic: str, message: Any, keysize: int, valsize: int
    ) -> dict[Sensor, Any]:
        return self._states(
            self.send_sensors, "on_send_initiated", producer, topic, message, keysize, valsize
        )

    def on_send_completed(self, producer: Any, state: Mapping[Sensor, Any], metadata: Any) -> None:
        self._ended("on_send_completed", state, producer, metadata, at=1)

    def on_send_error(self, producer: Any, exc: BaseException, state: Mapping[Sensor, Any]) -> None:
        self._ended("on_send_error", state, producer, exc)

    def on_stream_event_in(self, tp: TP, offset: int, stream: Any, event: Any) -> dict[Sensor, Any]:
        return self._states(self.stream_sensors, "on_stream_event_in", tp, offset, stream, event)

    def on_stream_event_out(
        self, tp: TP, offset: int, stream: Any, event: Any, state: Mapping[Sensor, Any]
    ) -> None:
        self._ended("on_stream_event_out", state, tp, offset, stream, event)

    # -- batch hooks called on the delegate reach every sensor
    def on_messages_in(self, tp: TP, messages: Sequence[Message]) -> None:
        self._dispatch("on_messages_in", tp, messages)

    def on_messages_out(self, tp: TP, count: int, offset: int) -> None:
        self._dispatch("on_messages_out", tp, count, offset)

    def on_offsets_committing(self, offsets: Mapping[TP, int]) -> None:
        self._dispatch("on_offsets_committing", offsets)

    def on_offsets_committed(self, offsets: Mapping[TP, int], seconds: float) -> None:
        self._dispatch("on_offsets_committed", offsets, seconds)

    def on_partitions_revoking(self, revoked: set[TP]) -> None:
        self._dispatch("on_partitions_revoking", revoked)

    def on_partitions_taken(self, assigned: set[TP], seconds: float) -> None:
        self._dispatch("on_partitions_taken", assigned, seconds)

    def on_agent_error(self, agent: str, exc: BaseException) -> None:
        self._dispatch("on_agent_error", agent, exc)

    def on_decode_error(self, message: Message, exc: BaseException) -> None:
        self._dispatch("on_decode_error", message, exc)

    def on_dead_letter(self, message: Message, topic: str) -> None:
        self._dispatch("on_dead_letter", message, topic)

    def on_records_failed(self, topic: str, count: int, exc: BaseException) -> None:
        self._dispatch("on_records_failed", topic, count, exc)

    def on_changelog_records(self, table: str, count: int) -> None:
        self._dispatch("on_changelog_records", table, count)

    def on_recovery_progress(self, table: str, partition: int, read: int, total: int) -> None:
        self._dispatch("on_recovery_progress", table, partition, read, total)

    def __repr__(self) -> str:
        return f"<SensorDelegate: {len(self._sensors)} sensors>"
