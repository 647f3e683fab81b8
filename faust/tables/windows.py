"""Windows: which time ranges an event belongs to, and when a range is over.

A window range is a half-open interval ``[start, end)`` of epoch seconds, kept as a
``(start, end)`` tuple of floats. Ranges are aligned to the epoch (a 60 s tumbling
window starts on a whole minute), like Kafka Streams and Faust.

``expires`` says how long a range is kept once stream time has passed its end: a range
is *stale* when ``end <= latest - expires`` (``latest`` is the newest timestamp seen),
and an event is *late* when ``timestamp <= latest - expires``. A late event never lands
in a stale range: each of its ranges ends after its timestamp. ``expires`` defaults to
the span of one range (``size``; ``before + after`` for sliding windows): results of a
range stay readable, and out-of-order events are accepted, for one more range's worth
of stream time.

:class:`TableWindowing` applies these rules to one table: it keeps each partition's
stream time, drops late events (logged and counted, never silently) and closes stale
ranges (:meth:`TableWindowing.cleanup`).

Example::

    >>> TumblingWindow(60).ranges(125.0)
    [(120.0, 180.0)]
    >>> HoppingWindow(60, 30).ranges(125.0)
    [(90.0, 150.0), (120.0, 180.0)]
"""

from __future__ import annotations

import abc
import datetime
import heapq
import inspect
import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..events import Event
from ..exceptions import ImproperlyConfigured
from ..models.record import Record
from ..stores import MISSING

if TYPE_CHECKING:
    from .table import Table

__all__ = [
    "Window",
    "TumblingWindow",
    "HoppingWindow",
    "SlidingWindow",
    "WindowRange",
    "TableWindowing",
]

logger = logging.getLogger(__name__)

#: ``(start, end)``: the range ``start <= t < end`` in epoch seconds.
WindowRange = tuple[float, float]

Seconds = float | int | datetime.timedelta


def signed_seconds(value: Seconds, what: str) -> float:
    """``value`` (seconds or a timedelta) as a finite float; errors name ``what``."""
    if isinstance(value, datetime.timedelta):
        number = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        raise TypeError(f"Window {what} must be a number of seconds or a timedelta, not {value!r}")
    if math.isnan(number) or math.isinf(number):
        raise ValueError(f"Window {what} must be a finite number of seconds, not {value!r}")
    return number


def _seconds(value: Seconds, what: str, *, allow_zero: bool = False) -> float:
    number = signed_seconds(value, what)
    if number < 0 or (number == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"Window {what} must be {bound} seconds, not {value!r}")
    return number


class Window(abc.ABC):
    """What every window type answers; see the module docstring for the rules."""

    #: Seconds a range is kept after stream time passed its end.
    expires: float

    @property
    @abc.abstractmethod
    def span(self) -> float:
        """The length of one range in seconds."""

    @abc.abstractmethod
    def ranges(self, timestamp: float) -> list[WindowRange]:
        """Every range that contains ``timestamp``, oldest first."""

    def ranges_of(self, timestamp: float) -> tuple[WindowRange, ...]:
        """:meth:`ranges` as a tuple (windows that can cache it do)."""
        return tuple(self.ranges(timestamp))

    def current(self, timestamp: float) -> WindowRange:
        """The newest range that contains ``timestamp`` (the one reads look at)."""
        return self.ranges(timestamp)[-1]

    def earliest(self, timestamp: float) -> WindowRange:
        """The oldest range that contains ``timestamp``."""
        return self.ranges(timestamp)[0]

    def delta(self, timestamp: float, d: Seconds) -> WindowRange:
        """The range :meth:`current` gives ``d`` seconds before ``timestamp`` (after, if
        ``d`` is negative)."""
        return self.current(timestamp - signed_seconds(d, "delta"))

    def stale(self, end_or_timestamp: float, latest_timestamp: float) -> bool:
        """True if a range ending at (or an event at) this time is past ``expires``."""
        return end_or_timestamp <= latest_timestamp - self.expires

    @property
    def retention(self) -> float:
        """How long the changelog must keep a range's record: its span plus ``expires``.

        A range's last record can be written as early as its start, and the range is
        read until stream time reaches ``end + expires``.
        """
        return self.span + self.expires


class HoppingWindow(Window):
    """Ranges of ``size`` seconds starting every ``step`` seconds (they overlap).

    Example: ``app.Table('clicks', default=int).hopping(60, 10, expires=3600)`` counts
    the last minute, refreshed every 10 s; each event is in ``ceil(size / step)`` ranges.
    """

    def __init__(self, size: Seconds, step: Seconds, expires: Seconds | None = None) -> None:
        self.size = _seconds(size, "size")
        self.step = _seconds(step, "step")
        if self.step > self.size:
            raise ValueError(
                f"Hopping window step ({self.step:g} s) must not exceed its size "
                f"({self.size:g} s): that would leave gaps no range covers"
            )
        self.expires = self.size if expires is None else _seconds(expires, "expires")
        self._cached: tuple[float, float, tuple[WindowRange, ...]] | None = None

    @property
    def span(self) -> float:
        return self.size

    def _newest(self, timestamp: float) -> int:
        """k of the newest range ``[k*step, k*step + size)`` that contains ``timestamp``."""
        step = self.step
        k = math.floor(timestamp / step)
        # The division may round across a multiple of step: keep start <= t < end.
        if k * step > timestamp:
            k -= 1
        elif k * step + self.size <= timestamp:
            k += 1
        return k

    def ranges(self, timestamp: float) -> list[WindowRange]:
        step, size = self.step, self.size
        k = self._newest(timestamp)
        found = []
        while True:
            start = k * step
            found.append((float(start), float(start + size)))
            k -= 1
            if k * step + size <= timestamp:
                break
        found.reverse()
        return found

    def current(self, timestamp: float) -> WindowRange:
        start = self._newest(timestamp) * self.step
        return (float(start), float(start + self.size))

    def ranges_of(self, timestamp: float) -> tuple[WindowRange, ...]:
        """:meth:`ranges` as a tuple, from a cache while ``timestamp`` stays where the
        same ranges contain it (a stream's timestamps mostly do): shared, do not change."""
        cached = self._cached
        if cached is not None and cached[0] <= timestamp < cached[1]:
            return cached[2]
        step, size = self.step, self.size
        newest = self._newest(timestamp)
        found = tuple(self.ranges(timestamp))
        oldest = newest - len(found) + 1
        # Exactly the comparisons _newest and ranges make: start <= t < end.
        low = max(newest * step, (oldest - 1) * step + size)
        high = min((newest + 1) * step, oldest * step + size)
        self._cached = (low, high, found)
        return found

    def __repr__(self) -> str:
        return f"HoppingWindow(size={self.size:g}, step={self.step:g}, expires={self.expires:g})"


class TumblingWindow(HoppingWindow):
    """Back-to-back ranges of ``size`` seconds: every event is in exactly one.

    Example: ``app.Table('views', default=int).tumbling(60, expires=3600)``.
    """

    def __init__(self, size: Seconds, expires: Seconds | None = None) -> None:
        super().__init__(size, size, expires)

    def ranges(self, timestamp: float) -> list[WindowRange]:
        return [self.current(timestamp)]

    def __repr__(self) -> str:
        return f"TumblingWindow(size={self.size:g}, expires={self.expires:g})"


class SlidingWindow(Window):
    """A range around each event: from ``before`` seconds before it to ``after``
    seconds after, both ends included, holding every event of its key in that range.

    As Faust defines it (``s1.ts - before <= s2.ts <= s1.ts + after``): the range of an
    event at ``t`` is stored under ``(key, (t - before, t + after))``, and a write at
    ``t`` changes every range of its key that contains ``t`` (those of the events
    ``after`` before to ``before`` after it) and makes the event's own range from the
    events already in it. ``table[key].current()`` in an agent reads the event's range:
    its key's events from ``before`` seconds before it to ``after`` seconds after.

    The events a new range is made from are kept in memory from the worker's start on
    (and until they are ``expires + before`` behind stream time): after a restart, the
    ranges restored keep taking new events, and a new event's range is made from the
    events seen since the restart.
    """

    def __init__(self, before: Seconds, after: Seconds, expires: Seconds | None = None) -> None:
        self.before = _seconds(before, "before", allow_zero=True)
        self.after = _seconds(after, "after", allow_zero=True)
        # The event itself must be inside its half-open range [t - before, t + after).
        if self.after <= 0:
            raise ValueError(
                f"Sliding window after must be > 0 seconds, not {after!r}: the range "
                "[t - before, t + after) would not contain the event itself"
            )
        self.expires = self.span if expires is None else _seconds(expires, "expires")

    @property
    def span(self) -> float:
        return self.before + self.after

    def ranges(self, timestamp: float) -> list[WindowRange]:
        return [(float(timestamp - self.before), float(timestamp + self.after))]

    def __repr__(self) -> str:
        return (
            f"SlidingWindow(before={self.before:g}, after={self.after:g}, expires={self.expires:g})"
        )


#: The default of ``table_cleanup_interval``: how often stale ranges are deleted.
DEFAULT_CLEANUP_INTERVAL = 30.0


def is_window_key(key: Any) -> bool:
    """True for a store key of a windowed table: ``(key, (start, end))``."""
    return type(key) is tuple and len(key) == 2 and type(key[1]) is tuple and len(key[1]) == 2


def hashable(obj: Any) -> Any:
    """JSON gives lists where tuples were stored: turn them back (recursively)."""
    if isinstance(obj, list):
        return tuple(hashable(item) for item in obj)
    return obj


class _ExpiryIndex:
    """The window keys of one partition by the end of their range, soonest first."""

    __slots__ = ("_by_end", "_ends")

    def __init__(self) -> None:
        self._by_end: dict[float, dict[Any, None]] = {}
        self._ends: list[float] = []  # a heap of the keys of _by_end

    def add(self, window_key: Any) -> None:
        end = window_key[1][1]
        keys = self._by_end.get(end)
        if keys is None:
            keys = self._by_end[end] = {}
            heapq.heappush(self._ends, end)
        keys[window_key] = None

    def pop_stale(self, window: Window, latest: float) -> list[Any]:
        stale: list[Any] = []
        ends = self._ends
        while ends and window.stale(ends[0], latest):
            stale.extend(self._by_end.pop(heapq.heappop(ends)))
        return stale


class TableWindowing:
    """What a windowed table knows besides its data: the window, stream time per
    partition, late events, and which ranges to close. One per table, shared by every
    :class:`WindowWrapper` of it (``table.windowing``).
    """

    def __init__(
        self,
        table: Table,
        window: Window,
        on_window_close: Callable[[Any, Any], Any] | None = None,
    ) -> None:
        existing = getattr(table, "windowing", None)
        if existing is not None:
            raise ValueError(
                f"Table {table.name!r} is already windowed ({existing.window!r}): "
                "use one table per window"
            )
        if table._store is not None or table.app.tables.started:
            # The store and the declared changelog topic already use the plain keys.
            raise ImproperlyConfigured(
                f"Table {table.name!r}: make the window where the table is declared, "
                f"before the app starts: app.Table({table.name!r}, ...).tumbling(...)"
            )
        self.table = table
        self.window = window
        self.on_window_close = on_window_close
        #: Events dropped because they were ``expires`` seconds behind stream time.
        self.late_events = 0
        #: Ranges deleted by :meth:`cleanup` so far.
        self.windows_closed = 0
        # Stream time: partition (None when the table uses its partitioner) -> newest
        # timestamp written. In memory only; after a restart each partition starts from
        # the newest range start in its store, a lower bound of the lost value.
        self._clocks: dict[int | None, float] = {}
        self._expiry: dict[int, _ExpiryIndex] = {}
        self._written: set[int] = set()
        self._last_late: Any = None
        key_type = table.key_type
        self._key_model = (
            key_type if isinstance(key_type, type) and issubclass(key_type, Record) else None
        )
        self._configure_changelog()
        # Recovery and rebalancing change what the store holds: rebuild the index.
        table.on_recover(self._forget_expiry_index)
        #: Sliding windows, per stream-time partition (see _clock_partition) and key:
        #: the ranges stored, and the (timestamp, op, value) written since the start.
        self._slides: dict[int | None, dict[Any, dict[WindowRange, None]]] = {}
        self._contributions: dict[int | None, dict[Any, list[tuple[float, Any, Any]]]] = {}
        if isinstance(window, SlidingWindow):
            # Instead of a check per write: a sliding table writes another way.
            self.apply_in_event = self._apply_sliding_in_event  # type: ignore[method-assign]
        table.windowing = self

    def _configure_changelog(self) -> None:
        topic = self.table.changelog_topic
        # Keys are (key, (start, end)): JSON whatever the table's key_type says (a str
        # key type would turn the decoded list into its repr); store_key restores the
        # tuples and the key's type on recovery.
        schema = topic.schema.derive(key_type=None, key_serializer="json")
        retention = self.window.retention
        if topic.retention is not None:
            retention = max(retention, topic.retention)
        # Closed ranges are deleted (tombstones); retention removes what a crash left.
        self.table.changelog_topic = topic.derive(
            schema=schema, compacting=True, deleting=True, retention=retention
        )

    @property
    def cleanup_interval(self) -> float:
        """Seconds between two :meth:`cleanup` calls (setting ``table_cleanup_interval``)."""
        conf = self.table.app.conf
        return float(getattr(conf, "table_cleanup_interval", DEFAULT_CLEANUP_INTERVAL))

    # -- keys
    def store_key(self, key: Any) -> Any:
        """The store's key for a key decoded from the changelog: tuples again."""
        if (
            isinstance(key, list)
            and len(key) == 2
            and isinstance(key[1], list)
            and len(key[1]) == 2
        ):
            inner = key[0]
            if self._key_model is not None and isinstance(inner, dict):
                inner = self._key_model.from_data(inner)
            else:
                inner = hashable(inner)
            return (inner, (float(key[1][0]), float(key[1][1])))
        return hashable(key)

    # -- stream time and late events
    def _clock_partition(self, event: Event | None) -> int | None:
        if event is None or self.table.use_partitioner:
            return None
        return event.message.partition

    def latest(self, partition: int) -> float | None:
        """Stream time of ``partition``: the newest timestamp written to it, or None."""
        clock = None if self.table.use_partitioner else partition
        return self._clocks.get(clock, self._clocks.get(None))

    def admit(self, event: Event | None, timestamp: float, key: Any) -> bool:
        """Advance stream time with ``timestamp``; False (logged, counted) if it is late."""
        partition = self._clock_partition(event)
        if partition is not None:
            self._expiry_index(partition)  # seeds stream time after a restart
        latest = self._clocks.get(partition)
        if latest is not None and self.window.stale(timestamp, latest):
            self._drop_late(event, key, timestamp, latest)
            return False
        if latest is None or timestamp > latest:
            self._clocks[partition] = timestamp
        return True

    def _drop_late(self, event: Event | None, key: Any, timestamp: float, latest: float) -> None:
        message = event.message if event is not None else None
        if message is not None and message is self._last_late:
            return  # the same event writing again (another key or operator): said once
        self._last_late = message
        self.late_events += 1
        where = (
            f"{message.topic}[{message.partition}]@{message.offset}"
            if message is not None
            else "no event"
        )
        logger.warning(
            "Table %r: dropped a late event for key %r (%s): its timestamp %.3f is "
            "%.3f s behind stream time %.3f, past expires=%g s. Raise expires to "
            "accept events this late.",
            self.table.name,
            key,
            where,
            timestamp,
            latest - timestamp,
            latest,
            self.window.expires,
        )

    # -- writes
    def _expiry_index(self, partition: int) -> _ExpiryIndex:
        index = self._expiry.get(partition)
        if index is None:
            index = self._expiry[partition] = _ExpiryIndex()
            newest_start = None
            slides = None
            if isinstance(self.window, SlidingWindow):
                clock = None if self.table.use_partitioner else partition
                slides = self._slides.setdefault(clock, {})
            for key, _ in self.table.store.items(partition):
                if is_window_key(key):
                    index.add(key)
                    if slides is not None:
                        slides.setdefault(key[0], {})[key[1]] = None
                    start = key[1][0]
                    if newest_start is None or start > newest_start:
                        newest_start = start
            if newest_start is not None:
                clock = None if self.table.use_partitioner else partition
                if self._clocks.get(clock, newest_start) <= newest_start:
                    self._clocks[clock] = newest_start
        return index

    def _forget_expiry_index(self) -> None:
        self._expiry.clear()
        self._slides.clear()

    # -- sliding windows
    def _apply_sliding_in_event(
        self, event: Event, key: Any, timestamp: float, op: Callable[[Any, Any], Any], value: Any
    ) -> None:
        self.apply_sliding(event, key, timestamp, op, value)

    def apply_sliding(
        self,
        event: Event | None,
        key: Any,
        timestamp: float,
        op: Callable[[Any, Any], Any],
        value: Any,
    ) -> None:
        """``table[key] op= value`` at ``timestamp`` in a sliding-windowed table: every
        stored range of ``key`` that contains it changes, and the event's own range is
        made (from the events of the key already in it) if it is new."""
        window = self.window
        assert isinstance(window, SlidingWindow)
        if not self.admit(event, timestamp, key):
            return
        table = self.table
        clock = self._clock_partition(event)
        if clock is None:
            for partition in table.store.partitions():
                self._expiry_index(partition)  # loads the ranges the store holds
        else:
            self._expiry_index(clock)
        ranges = self._slides.setdefault(clock, {}).setdefault(key, {})
        for window_range in [r for r in ranges if r[0] <= timestamp <= r[1]]:
            window_key = (key, window_range)
            old = table._get(window_key)
            if old is MISSING:  # closed, or deleted by the user
                del ranges[window_range]
                continue
            self.set(window_key, op(old, value))
        contributions = self._contributions.setdefault(clock, {}).setdefault(key, [])
        own = (float(timestamp - window.before), float(timestamp + window.after))
        if own not in ranges:
            default = table.default
            if default is None:
                raise KeyError((key, own))
            seed = default()
            for at, earlier_op, earlier in contributions:
                if own[0] <= at <= own[1]:
                    seed = earlier_op(seed, earlier)
            self.set((key, own), op(seed, value))
            ranges[own] = None
        contributions.append((timestamp, op, value))

    def _forget_contributions(self, clock: int | None, latest: float) -> None:
        """Drop what no range an event can still open would take: events at least
        ``expires + before`` behind stream time."""
        window = self.window
        assert isinstance(window, SlidingWindow)
        horizon = latest - window.expires - window.before
        by_key = self._contributions.get(clock)
        if not by_key:
            return
        for key in list(by_key):
            kept = [c for c in by_key[key] if c[0] > horizon]
            if kept:
                by_key[key] = kept
            else:
                del by_key[key]

    def set(self, window_key: Any, value: Any) -> None:
        """Write one range through the table (changelog, dirty tracking) and index it."""
        table = self.table
        partition = table._partition_for_write(window_key)
        index = self._expiry_index(partition)
        table._set(window_key, value)
        index.add(window_key)
        self._written.add(partition)

    def apply_in_event(
        self, event: Event, key: Any, timestamp: float, op: Callable[[Any, Any], Any], value: Any
    ) -> None:
        """``table[key] op= value`` in every range of ``timestamp``, for an event of a
        partitioned table: :meth:`admit` and :meth:`set` for each range, in one pass
        (this runs once per event of a windowed aggregation)."""
        message = event.message
        partition = message.partition
        table = self.table
        if message.topic not in table._checked_topics:
            table._check_copartitioned(message)
        if table._key_checks_left:
            table._check_key_partition(key, event)
        index = self._expiry.get(partition)
        if index is None:
            index = self._expiry_index(partition)  # seeds stream time after a restart
        clocks = self._clocks
        window = self.window
        latest = clocks.get(partition)
        if latest is not None and timestamp <= latest - window.expires:  # window.stale
            self._drop_late(event, key, timestamp, latest)
            return
        if latest is None or timestamp > latest:
            clocks[partition] = timestamp
        store = table.store
        dirty = table._dirty.get(partition)
        if dirty is None:
            dirty = table._dirty[partition] = set()
        default = table.default
        by_end = index._by_end
        ranges = window.ranges_of(timestamp)
        # A read and a write per range, counted as table[key] op= value would count them.
        table.gets += len(ranges)
        table.sets += len(ranges)
        for window_range in ranges:
            window_key = (key, window_range)
            old = store.get(partition, window_key)
            if old is MISSING:
                if default is None:
                    raise KeyError(window_key)
                old = default()
            new = op(old, value)
            store.set(partition, window_key, new)
            dirty.add(window_key)
            if table._op_hooked:
                _tell_sensors(table, window_key, new)
            indexed = by_end.get(window_range[1])
            if indexed is None:
                index.add(window_key)
            else:
                indexed[window_key] = None
        if partition not in self._written:
            self._written.add(partition)

    # -- expiry
    def _expire(self, now: float | None) -> list[tuple[Any, Any]]:
        table = self.table
        # A global table's partitions are expired by the worker that writes them.
        partitions = self._written if table.is_global else table.active_partitions
        store = table.store
        closed: list[tuple[Any, Any]] = []
        for partition in sorted(partitions):
            index = self._expiry_index(partition)
            if now is not None:
                # Stream time moves to `now`, so events that would go to a range closed
                # here are late from now on: a range never closes twice.
                clock = None if table.use_partitioner else partition
                if self._clocks.get(clock, now) <= now:
                    self._clocks[clock] = now
            latest = self.latest(partition)
            if latest is None:
                continue
            sliding = isinstance(self.window, SlidingWindow)
            clock = None if table.use_partitioner else partition
            if sliding:
                self._forget_contributions(clock, latest)
            for window_key in index.pop_stale(self.window, latest):
                if sliding:
                    ranges = self._slides.get(clock, {}).get(window_key[0])
                    if ranges is not None:
                        ranges.pop(window_key[1], None)
                value = store.get(partition, window_key)
                if value is MISSING:  # deleted by the user meanwhile
                    continue
                # Not table._del: there is no event here to give the partition.
                store.delete(partition, window_key)
                table._mark_dirty(partition, window_key)
                closed.append((window_key, value))
        self.windows_closed += len(closed)
        return closed

    async def cleanup(self, now: float | None = None) -> int:
        """Delete every range that ended ``expires`` before stream time; returns how many.

        Each deleted range is sent to the changelog as a tombstone with the next flush,
        and ``on_window_close((key, (start, end)), value)`` (sync or async) is called
        once for it. ``now`` advances the stream time of every local partition to at
        least ``now`` first (for tests and tools). The table manager calls this every
        ``table_cleanup_interval`` seconds.
        """
        # Ranges are deleted before any callback runs, so a cleanup started while a
        # callback awaits cannot close the same range again.
        closed = self._expire(now)
        if closed:
            logger.debug("Table %r: closed %d windows", self.table.name, len(closed))
        callback = self.on_window_close
        if callback is None:
            return len(closed)
        for window_key, value in closed:
            try:
                result = callback(window_key, value)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception(
                    "Table %r: on_window_close raised for window %r; the window stays closed",
                    self.table.name,
                    window_key,
                )
        return len(closed)


def _tell_sensors(table: Table, window_key: Any, value: Any) -> None:
    """The per-operation hooks of a range read and written in one pass."""
    hooks = table._key_hooks
    if "on_key_get" in hooks:
        table.on_key_get(window_key)
    if "on_key_set" in hooks:
        table.on_key_set(window_key, value)
    sensors = table.app.sensors
    sensors.call(sensors.wants("on_table_get"), "on_table_get", table.name, window_key)
    sensors.call(sensors.wants("on_table_set"), "on_table_set", table.name, window_key, value)
