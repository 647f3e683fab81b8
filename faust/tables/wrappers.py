"""Windowed tables: a value per key and time range, closed once stream time moves on.

Example::

    class Order(faust.Record):
        account: str
        created: datetime

    per_minute = app.Table('orders-per-minute', default=int).tumbling(
        60, expires=3600, on_window_close=report,
    ).relative_to_field(Order.created)

    @app.agent(orders)
    async def count(stream):
        async for order in stream.group_by(Order.account, name='by-account'):
            per_minute[order.account] += 1              # every range of the event
            per_minute[order.account].value()           # the range of this event
            per_minute[order.account].delta(60)         # the range a minute before

The table stores one value per ``(key, (start, end))``. A write changes every range that
contains the event's timestamp (taken from the message, a field of the value, or the
clock: ``relative_to_stream/field/now``). Each partition keeps its *stream time*, the
newest timestamp written to it: an event at least ``expires`` seconds behind it is late
(dropped, logged and counted in ``late_events``), and :meth:`TableWindowing.cleanup`
deletes every range that ended ``expires`` seconds before it, calling
``on_window_close(key, value)`` once per range (``key`` is ``(key, (start, end))``).
"""

from __future__ import annotations

import datetime
import operator
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ..events import Event, _current_event, current_event
from ..exceptions import ImproperlyConfigured
from ..models.fields import FieldDescriptor
from ..stores import MISSING
from .windows import (
    Seconds,
    SlidingWindow,
    TableWindowing,
    Window,
    WindowRange,
    is_window_key,
)

if TYPE_CHECKING:
    from .table import Table

__all__ = ["WindowWrapper", "WindowSet"]


def _epoch_seconds(value: Any, source: str) -> float:
    if isinstance(value, datetime.datetime):
        # A naive datetime is taken as UTC, like broker timestamps (not as local time,
        # which would make windows depend on the machine's time zone).
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        return value.timestamp()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return _epoch_seconds(datetime.datetime.fromisoformat(value), source)
        except ValueError:
            pass
    raise TypeError(
        f"{source} must be a datetime (or ISO 8601 text) or epoch seconds to place it in a "
        f"window, not {value!r}"
    )


class WindowWrapper:
    """A windowed view of a table: ``table.tumbling(10)[key]`` is a :class:`WindowSet`.

    Example::

        views = app.Table('views', default=int).tumbling(60, expires=3600)
        views[page] += 1                 # in an agent: every range of the event
        views[page].current()            # the value of the event's range

    ``relative_to_now/field/stream`` return another view of the same table whose
    timestamps come from the clock, a field of the event's value, or the message.
    """

    def __init__(
        self,
        table: Table,
        window: Window | None = None,
        *,
        key_index: bool = False,
        on_window_close: Callable[[Any, Any], Any] | None = None,
        relative_to: Any = None,
    ) -> None:
        self.table = table
        if window is None:
            windowing = getattr(table, "windowing", None)
            if windowing is None:
                raise ValueError(
                    f"Table {table.name!r} is not windowed: use table.tumbling(), "
                    ".hopping() or .sliding()"
                )
            if on_window_close is not None:
                raise ValueError(
                    f"Table {table.name!r}: give on_window_close when the window is made"
                )
        else:
            if on_window_close is None:
                on_window_close = getattr(table, "on_window_close", None)
            windowing = TableWindowing(table, window, on_window_close)
        self.windowing: TableWindowing = windowing
        self.key_index = key_index
        self._relative: tuple[str, Any] = _relative_spec(relative_to)

    @property
    def name(self) -> str:
        return self.table.name

    @property
    def window(self) -> Window:
        return self.windowing.window

    @property
    def late_events(self) -> int:
        """Events dropped because they arrived ``expires`` seconds behind stream time."""
        return self.windowing.late_events

    async def cleanup(self, now: float | None = None) -> int:
        """Close stale ranges now (see :meth:`TableWindowing.cleanup`)."""
        return await self.windowing.cleanup(now)

    # -- time relativity
    def relative_to(self, ts: Any) -> WindowWrapper:
        """A view whose timestamps come from ``ts``: a Record field, a function of the
        event, a datetime or number (a fixed time), or None (the message timestamp)."""
        return WindowWrapper(self.table, key_index=self.key_index, relative_to=ts)

    def relative_to_now(self) -> WindowWrapper:
        """A view that uses the wall clock (``time.time()``) as each event's timestamp."""
        return self.relative_to(_NOW)

    def relative_to_field(self, field: FieldDescriptor[Any]) -> WindowWrapper:
        """A view that takes timestamps from a field (datetime or epoch seconds)::

        table.tumbling(60).relative_to_field(Order.created)
        """
        if not isinstance(field, FieldDescriptor):
            raise TypeError(
                f"relative_to_field needs a Record field like Order.created, not {field!r}"
            )
        return self.relative_to(field)

    def relative_to_stream(self) -> WindowWrapper:
        """A view that takes timestamps from the message (the default)."""
        return self.relative_to(None)

    def get_timestamp(self, event: Event | None = None) -> float:
        """The timestamp this view places ``event`` (default: the current one) at."""
        mode, arg = self._relative
        if mode == "now":
            return time.time()
        if mode == "fixed":
            return float(arg)
        if event is None:
            event = current_event()
            if event is None:
                raise RuntimeError(
                    f"Table {self.name!r}: a window relative to the {mode} needs the event "
                    "being processed: use it inside an agent, pass event=, or use "
                    ".relative_to_now()"
                )
        if mode == "stream":
            return event.message.timestamp
        if mode == "field":
            return _epoch_seconds(arg.getattr(event.value), f"Field {arg.field!r}")
        return _epoch_seconds(arg(event), f"relative_to function {arg!r}")

    # -- the dict API
    def __getitem__(self, key: Any) -> WindowSet:
        return WindowSet(key, self, _current_event.get())

    def __setitem__(self, key: Any, value: Any) -> None:
        if isinstance(value, WindowSet):
            if value.wrapper.table is not self.table or value.key != key:
                raise ValueError(
                    f"Table {self.name!r}: cannot assign the windows of {value!r} to key "
                    f"{key!r}; assign a value instead"
                )
            return  # `table[k] += 1` already wrote every range; this is its assignment
        event = current_event()
        timestamp = self.get_timestamp(event)
        windowing = self.windowing
        if windowing.admit(event, timestamp, key):
            for window_range in windowing.window.ranges(timestamp):
                windowing.set((key, window_range), value)

    def __delitem__(self, key: Any) -> None:
        table = self.table
        for window_range in self.window.ranges(self.get_timestamp()):
            window_key = (key, window_range)
            if table._get(window_key) is not MISSING:
                table._del(window_key)

    def __contains__(self, key: object) -> bool:
        window_range = self.window.current(self.get_timestamp())
        return self.table._get((key, window_range)) is not MISSING

    def _default(self) -> Any:
        default = self.table.default
        return None if default is None else default()

    # -- key index
    def _require_key_index(self, method: str) -> None:
        if not self.key_index:
            raise ImproperlyConfigured(
                f"Table {self.name!r}: {method}() of a windowed table needs key_index=True, "
                f"e.g. app.Table({self.name!r}).tumbling(60, key_index=True)"
            )

    def _keys_by_partition(self) -> Iterator[tuple[int, dict[Any, None], float | None]]:
        """Per local partition: its keys, and the newest range start (stream time's
        lower bound)."""
        store = self.table.store
        for partition in self.table._local_partitions():
            keys: dict[Any, None] = {}
            newest_start: float | None = None
            for window_key, _ in store.items(partition):
                if is_window_key(window_key):
                    keys[window_key[0]] = None
                    start = window_key[1][0]
                    if newest_start is None or start > newest_start:
                        newest_start = start
            yield partition, keys, newest_start

    def keys(self) -> Iterator[Any]:
        """Every key with a value in some range (reads each local range once)."""
        self._require_key_index("keys")
        return self._keys()

    def _keys(self) -> Iterator[Any]:
        seen: dict[Any, None] = {}
        for _, keys, _ in self._keys_by_partition():
            for key in keys:
                if key not in seen:
                    seen[key] = None
                    yield key

    def __iter__(self) -> Iterator[Any]:
        return self.keys()

    def items(self, event: Event | None = None) -> Iterator[tuple[Any, Any]]:
        """``(key, value)`` for every key, the value of the range this view's time is in.

        Outside an agent a view relative to the stream or a field uses the stream time
        of the key's partition (its newest timestamp).
        """
        self._require_key_index("items")
        return self._items(event)

    def _items(self, event: Event | None) -> Iterator[tuple[Any, Any]]:
        table = self.table
        store = table.store
        window = self.window
        if event is None:
            event = current_event()
        fixed: float | None = None
        if event is not None or self._relative[0] in ("now", "fixed"):
            fixed = self.get_timestamp(event)
        seen: dict[Any, None] = {}
        for partition, keys, newest_start in self._keys_by_partition():
            timestamp = fixed
            if timestamp is None:
                timestamp = self.windowing.latest(partition)
                if timestamp is None:
                    timestamp = newest_start
            if timestamp is None:
                continue
            window_range = window.current(timestamp)
            for key in keys:
                if key in seen:
                    continue
                seen[key] = None
                window_key = (key, window_range)
                if table.use_partitioner:
                    value = table._get(window_key)
                else:
                    value = store.get(partition, window_key)
                yield key, self._default() if value is MISSING else value

    def values(self, event: Event | None = None) -> Iterator[Any]:
        """The value of every key (see :meth:`items`)."""
        self._require_key_index("values")
        return (value for _, value in self._items(event))

    def __repr__(self) -> str:
        return f"<WindowWrapper {self.name}: {self.window!r}, relative to {self._relative[0]}>"


_NOW = object()


def _relative_spec(ts: Any) -> tuple[str, Any]:
    if ts is None:
        return ("stream", None)
    if ts is _NOW:
        return ("now", None)
    if isinstance(ts, FieldDescriptor):
        return ("field", ts)
    if isinstance(ts, datetime.datetime | int | float) and not isinstance(ts, bool):
        return ("fixed", _epoch_seconds(ts, "relative_to"))
    if callable(ts):
        return ("function", ts)
    raise TypeError(
        f"relative_to needs a Record field, a function of the event, a datetime or epoch "
        f"seconds, not {ts!r}"
    )


class WindowSet:
    """The ranges of one key: read one with :meth:`value`, change them all with ``+=``.

    Example (inside an agent)::

        views[page] += 1
        views[page].value()        # the range of this event, per the view's timestamps
        views[page].current()      # the range of this event's message timestamp
        views[page].now()          # the range of the wall clock
        views[page].delta(60)      # the range 60 s before this event

    A range nothing was written to reads as ``default()`` (None without a default).
    """

    __slots__ = ("key", "wrapper", "event")

    def __init__(self, key: Any, wrapper: WindowWrapper, event: Event | None = None) -> None:
        self.key = key
        self.wrapper = wrapper
        self.event = event

    def _event(self, event: Event | None) -> Event | None:
        return event if event is not None else self.event

    def _read(self, window_range: WindowRange) -> Any:
        value = self.wrapper.table._get((self.key, window_range))
        return self.wrapper._default() if value is MISSING else value

    def apply(
        self, op: Callable[[Any, Any], Any], value: Any, event: Event | None = None
    ) -> WindowSet:
        """Set every range of the event's timestamp to ``op(old, value)``."""
        wrapper = self.wrapper
        if event is None:
            event = self.event
        timestamp = wrapper.get_timestamp(event)
        windowing = wrapper.windowing
        table = wrapper.table
        if event is not None and not (table.use_partitioner or table.is_global):
            windowing.apply_in_event(event, self.key, timestamp, op, value)
            return self
        if isinstance(windowing.window, SlidingWindow):
            windowing.apply_sliding(event, self.key, timestamp, op, value)
            return self
        if not windowing.admit(event, timestamp, self.key):
            return self
        for window_range in windowing.window.ranges(timestamp):
            window_key = (self.key, window_range)
            old = table._get(window_key)
            if old is MISSING:
                if table.default is None:
                    raise KeyError(window_key)
                old = table.default()
            windowing.set(window_key, op(old, value))
        return self

    def value(self, event: Event | None = None) -> Any:
        """The value in the range of the event's timestamp, as the wrapper takes it
        (``relative_to_stream/field/now``)."""
        timestamp = self.wrapper.get_timestamp(self._event(event))
        return self._read(self.wrapper.window.current(timestamp))

    def now(self) -> Any:
        """The value in the range of the wall clock's time."""
        return self._read(self.wrapper.window.current(time.time()))

    def current(self, event: Event | None = None) -> Any:
        """The value in the range of the event's message timestamp (stream time)."""
        event = self._event(event) or current_event()
        if event is None:
            raise RuntimeError(
                f"Table {self.wrapper.name!r}: current() needs the event being processed: "
                "use it inside an agent or pass event="
            )
        return self._read(self.wrapper.window.current(event.message.timestamp))

    def delta(self, d: Seconds, event: Event | None = None) -> Any:
        """The value in the range ``d`` seconds (or timedelta) before :meth:`value`'s."""
        timestamp = self.wrapper.get_timestamp(self._event(event))
        return self._read(self.wrapper.window.delta(timestamp, d))

    def __getitem__(self, which: Any) -> Any:
        """``ws[event]`` is ``ws.value(event)``; ``ws[(start, end)]`` reads that range."""
        if isinstance(which, Event):
            return self.value(which)
        if isinstance(which, tuple) and len(which) == 2:
            return self._read((float(which[0]), float(which[1])))
        raise TypeError(
            f"A WindowSet is indexed by an event or a (start, end) range, not {which!r}"
        )

    # `table[k] op= v` calls these, then assigns the set back (a no-op).
    def __iadd__(self, other: Any) -> WindowSet:
        return self.apply(operator.add, other)

    def __isub__(self, other: Any) -> WindowSet:
        return self.apply(operator.sub, other)

    def __imul__(self, other: Any) -> WindowSet:
        return self.apply(operator.mul, other)

    def __itruediv__(self, other: Any) -> WindowSet:
        return self.apply(operator.truediv, other)

    def __ifloordiv__(self, other: Any) -> WindowSet:
        return self.apply(operator.floordiv, other)

    def __imod__(self, other: Any) -> WindowSet:
        return self.apply(operator.mod, other)

    def __ipow__(self, other: Any) -> WindowSet:
        return self.apply(operator.pow, other)

    def __ilshift__(self, other: Any) -> WindowSet:
        return self.apply(operator.lshift, other)

    def __irshift__(self, other: Any) -> WindowSet:
        return self.apply(operator.rshift, other)

    def __iand__(self, other: Any) -> WindowSet:
        return self.apply(operator.and_, other)

    def __ixor__(self, other: Any) -> WindowSet:
        return self.apply(operator.xor, other)

    def __ior__(self, other: Any) -> WindowSet:
        return self.apply(operator.or_, other)

    def __repr__(self) -> str:
        return f"<WindowSet {self.wrapper.name}[{self.key!r}]>"
