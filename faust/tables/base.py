"""What every table shares: partitions, the changelog, the write-back of changes.

A table's data is split like its source topics: a change made while processing an event
of partition ``p`` belongs to partition ``p`` of the table and of its changelog topic
``{app}-{table}-changelog``. Changes are applied to the store at once (reads see them)
and remembered as dirty keys; before the consumer commits, ``flush`` sends one changelog
record per dirty key (so a hot key costs one write per commit, not one per event), waits
for the broker's acks and then lets the store persist the offset they reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any

from ..events import Event, _current_event
from ..exceptions import EncodeError, ImproperlyConfigured, PartitionCountMismatch
from ..stores import MISSING, Store, create_store
from ..transport.base import Message
from ..transport.partitioner import partition_for_key
from .windows import hashable

if TYPE_CHECKING:
    from .windows import TableWindowing

__all__ = ["Collection"]

#: Changed keys (of all partitions) at which a table asks for a commit (and so a flush)
#: and the consumer stops fetching until it is done: the changes held in memory and the
#: next flush stay small whatever the commit interval and the number of distinct keys.
#: Twice the default ``broker_commit_every`` (10,000 events), so the regular commits
#: flush first unless the flushes fall behind; 20,000 pending keys and their flush hold
#: about 10-20 MB (bench rss: 1,000,000 keys in ~130 MB).
MAX_DIRTY_KEYS = 20_000

#: Writes checked, from each new source topic, for a key that does not belong to the
#: event's partition (a stream not partitioned by the table's key, see
#: ``_check_key_partition``). Unkeyed input hashes a key to its event's partition with
#: probability 1/partitions, so 100 such writes all pass unnoticed with probability
#: 2**-100 at most; after that the write path pays one counter test.
KEY_CHECKS = 100

logger = logging.getLogger(__name__)


class Collection:
    """Base of Table, GlobalTable and SetTable."""

    #: Every worker holds every partition (GlobalTable).
    is_global = False

    def __init__(
        self,
        app: Any,
        name: str,
        *,
        default: Callable[[], Any] | None = None,
        key_type: Any = None,
        value_type: Any = None,
        partitions: int | None = None,
        store: str | None = None,
        help: str | None = None,
        on_recover: Callable[..., Any] | None = None,
        on_changelog_event: Callable[..., Any] | None = None,
        use_partitioner: bool = False,
        changelog_topic: Any = None,
        key_serializer: str = "json",
        value_serializer: str = "json",
        extra_topic_configs: dict[str, Any] | None = None,
        retention: float | None = None,
        on_window_close: Callable[[Any, Any], Any] | None = None,
        recovery_buffer_size: int = 1000,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"Table name must be a non-empty string, not {name!r}")
        if default is not None and not callable(default):
            raise TypeError(
                f"Table {name!r}: default must be callable (like int or list), not {default!r}"
            )
        if (
            isinstance(recovery_buffer_size, bool)
            or not isinstance(recovery_buffer_size, int)
            or recovery_buffer_size < 1
        ):
            raise ValueError(
                f"Table {name!r}: recovery_buffer_size must be an int >= 1 (changelog "
                f"records applied to the store at a time), not {recovery_buffer_size!r}"
            )
        self.app = app
        self.name = name
        self.default = default
        #: Changelog records applied to the store at a time during recovery (as Faust).
        self.recovery_buffer_size = recovery_buffer_size
        self.key_type = key_type
        self.value_type = value_type
        self.partitions = partitions or app.conf.topic_partitions
        self.store_url = store or app.conf.store
        self.help = help or ""
        self.use_partitioner = use_partitioner
        self._on_recover: list[Callable[..., Any]] = [on_recover] if on_recover else []
        self.on_changelog_event = on_changelog_event
        if changelog_topic is None:
            changelog_topic = app.topic(
                f"{app.conf.id}-{name}-changelog",
                key_type=key_type,
                value_type=self._changelog_value_type(value_type),
                key_serializer=key_serializer,
                value_serializer=value_serializer,
                partitions=self.partitions,
                compacting=True,
                deleting=retention is not None,
                retention=retention,
                internal=True,
                config=extra_topic_configs,
                allow_empty=True,
            )
        self.changelog_topic = changelog_topic
        #: Called as ``on_window_close((key, (start, end)), value)`` by windowed tables.
        self.on_window_close = on_window_close
        #: Set when the table is windowed (``table.tumbling(...)`` and friends).
        self.windowing: TableWindowing | None = None
        self.active_partitions: set[int] = set()
        self.standby_partitions: set[int] = set()
        self._store: Store | None = None
        self._dirty: dict[int, set[Any]] = {}
        # Exactly-once: (partition, snapshot, changelog offset) flushed into the open
        # transaction, persisted once it commits.
        self._unpersisted: list[tuple[int, dict[Any, Any], int]] = []
        self._checked_topics: set[str] = set()
        #: Topics a global table is written from whose partition count is not the
        #: table's: each key goes to its own partition (every worker reads them all).
        self._keyed_topics: set[str] = set()
        # A global table holds every partition and one with use_partitioner writes each
        # key to its own partition: neither can split a key over partitions.
        self._key_checks_left = 0 if self.is_global or use_partitioner else KEY_CHECKS
        self._key_warned = False
        self._null: bytes | None = None
        self.changelog_records_sent = 0
        #: Key reads, writes and deletes (read by ``app.monitor``): an increment per
        #: operation, 12-20 ns measured, next to ~0.4 µs for ``table[key] += 1``.
        self.gets = 0
        self.sets = 0
        self.deletes = 0
        self._op_hooked = False
        #: The per-key hooks (on_key_get, ...) this table's class overrides: found once
        #: here; a hook no subclass overrides is never called.
        self._key_hooks = frozenset(
            hook
            for hook in ("on_key_get", "on_key_set", "on_key_del")
            if getattr(type(self), hook) is not getattr(Collection, hook)
        )
        sensors = getattr(app, "sensors", None)
        if sensors is not None:
            sensors._watchers.append(self._sensors_changed)
        self._sensors_changed()

    # -- Faust's per-key hooks: override them in a subclass
    def on_key_get(self, key: Any) -> None:
        """Called after each read of ``key`` (``table[key]``, ``get``, ``in``), when a
        subclass overrides it (as in Faust); the table's own work does not depend on it.

        Example::

            class AuditedTable(faust.Table):
                def on_key_get(self, key):
                    reads[key] += 1
        """

    def on_key_set(self, key: Any, value: Any) -> None:
        """Called after ``key`` is set to ``value`` (``table[key] = value``, ``+=``),
        when a subclass overrides it; the changelog is written whether or not it is.

        Example::

            class AuditedTable(faust.Table):
                def on_key_set(self, key, value):
                    print('set', key, value)
        """

    def on_key_del(self, key: Any) -> None:
        """Called after ``key`` is deleted (``del table[key]``, ``pop``), when a
        subclass overrides it.

        Example::

            class AuditedTable(faust.Table):
                def on_key_del(self, key):
                    print('deleted', key)
        """

    def _sensors_changed(self) -> None:
        """Call the per-operation hooks (sensors' ``on_table_*``, the table's
        overridden ``on_key_*``) only while there are some: the wrappers shadow
        ``_get``/``_set``/``_del`` on this instance, and are removed again (the plain
        methods cost nothing extra)."""
        sensors = getattr(self.app, "sensors", None)
        hooked = False
        for name, hook, key_hook in (
            ("_get", "on_table_get", "on_key_get"),
            ("_set", "on_table_set", "on_key_set"),
            ("_del", "on_table_del", "on_key_del"),
        ):
            wanted = sensors.wants(hook) if sensors is not None else []
            own = getattr(self, key_hook) if key_hook in self._key_hooks else None
            if wanted or own is not None:
                setattr(self, name, _sensed(self, name, hook, wanted, own))
                hooked = True
            elif self._op_hooked:
                # Not through self.__dict__: touching it makes CPython keep the instance's
                # attributes in a real dict, and every attribute read of the table's hot
                # path slower (measured: table[k] += 1 from ~0.44 to ~0.65 µs).
                with contextlib.suppress(AttributeError):
                    delattr(self, name)
        #: A sensor wants a call per read or write (windowed tables check it).
        self._op_hooked = hooked

    @classmethod
    def _changelog_value_type(cls, value_type: Any) -> Any:
        """The type a changelog value decodes to, from the table's ``value_type``."""
        return value_type

    # -- the store
    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = create_store(self.store_url, self)
        return self._store

    def on_recover(self, fun: Callable[..., Any]) -> Callable[..., Any]:
        """Decorate a function called after the table was restored from its changelog."""
        self._on_recover.append(fun)
        return fun

    # -- partitions
    def _partition_for_write(self, key: Any) -> int:
        event = _current_event.get()
        if self.use_partitioner or (event is None and self.is_global):
            return self._partition_of_key(key)
        if event is None:
            raise ImproperlyConfigured(
                f"Table {self.name!r}: cannot write key {key!r} outside of a stream: the "
                "partition comes from the event being processed. Write from an agent, or "
                "create the table with use_partitioner=True to partition by key."
            )
        message = event.message
        if message.topic not in self._checked_topics:
            if message.topic not in self._keyed_topics:
                self._check_copartitioned(message)
            if message.topic in self._keyed_topics:
                return self._partition_of_key(key)
        return message.partition

    def _partition_of_key(self, key: Any) -> int:
        data = self.changelog_topic.schema.dumps_key(key)
        return 0 if data is None else partition_for_key(data, self.partitions)

    def _check_copartitioned(self, message: Message) -> None:
        count = self.app.partition_count_of(message.topic)
        if count is not None and count != self.partitions:
            if self.is_global and self.windowing is None:
                self._keyed_topics.add(message.topic)
                return
            raise PartitionCountMismatch(
                f"Table {self.name!r} has {self.partitions} partitions but is written from "
                f"topic {message.topic!r} with {count}: they must be equal (give the table "
                f"partitions={count}, or repartition the stream with group_by)."
            )
        self._checked_topics.add(message.topic)
        if not (self._key_warned or self.is_global or self.use_partitioner):
            self._key_checks_left = KEY_CHECKS  # a new source: check its first writes too

    def _check_key_partition(self, key: Any, event: Event) -> None:
        """Warn (once per table) when ``key`` is written from an event of a partition the
        key does not belong to: the stream is not partitioned by the table's key, so each
        partition keeps its own value for the key (a count split over the partitions).

        Only the first ``KEY_CHECKS`` writes per source topic are checked. A key is taken
        to belong to the event's partition when it is the event's key (the source is keyed
        by it, whatever its serializer) or a tuple that starts with it, or when it hashes
        there as the changelog encodes it (as ``group_by`` and ``use_partitioner`` place
        it) or, for text, as raw bytes.
        """
        self._key_checks_left -= 1
        if event.key == key:
            return
        if type(key) is tuple and key and key[0] == event.key:
            return  # a key made from the event's key, like (account, day): one partition too
        partition = event.message.partition
        try:
            home = self._partition_of_key(key)
        except Exception:  # a diagnostic must never fail the write it looks at
            return
        if home == partition:
            return
        if isinstance(key, str) and partition_for_key(key.encode(), self.partitions) == partition:
            return
        self._key_checks_left = 0
        self._key_warned = True
        logger.warning(
            "Table %r: key %r was written while processing topic %r partition %d, but the "
            "key belongs to partition %d: the stream is not partitioned by the table's "
            "key, so each partition keeps its own value for it. Repartition the stream by "
            "the key before writing: async for x in stream.group_by(...).",
            self.name,
            key,
            event.message.topic,
            partition,
            home,
        )

    def _read_partitions(self, key: Any) -> Iterator[int]:
        """Partitions to look in for ``key``: the event's, else every local one."""
        if self.use_partitioner:
            yield self._partition_of_key(key)
            return
        event = _current_event.get()
        if event is not None and not self.is_global:
            yield event.message.partition
            return
        yield from sorted(self.store.partitions())

    # -- reads and writes (decoded keys and values)
    # _get and _set run once per event for ``table[key] += 1``: the common case (a
    # partitioned table read and written from a stream) takes the event's partition
    # straight away, without the generator and calls of the general path.
    def _get(self, key: Any) -> Any:
        self.gets += 1
        store = self._store
        if store is None:
            store = self.store
        if not (self.use_partitioner or self.is_global):
            event = _current_event.get()
            if event is not None:
                return store.get(event.message.partition, key)
        for partition in self._read_partitions(key):
            value = store.get(partition, key)
            if value is not MISSING:
                return value
        return MISSING

    def _set(self, key: Any, value: Any) -> None:
        if value is None and self.value_type is not None:
            self._refuse_none(key)
        self.sets += 1
        event = _current_event.get()
        if (
            event is not None
            and not self.use_partitioner
            and event.message.topic in self._checked_topics
        ):
            partition = event.message.partition
        else:
            partition = self._partition_for_write(key)
        if self._key_checks_left and event is not None:
            # A windowed table's key is (key, window range): the key is what must match.
            self._check_key_partition(key if self.windowing is None else key[0], event)
        store = self._store
        if store is None:
            store = self.store
        store.set(partition, key, value)
        dirty = self._dirty.get(partition)
        if dirty is None:
            dirty = self._dirty[partition] = set()
        dirty.add(key)

    def _refuse_none(self, key: Any) -> None:
        # A typed changelog cannot decode null as value_type: the value would be lost
        # (or stop the recovery) on restore, so it is refused here, where it is made.
        raise TypeError(
            f"Table {self.name!r} has value_type={self.value_type!r}: key {key!r} cannot "
            f"hold None. Delete the key instead (del table[key]), or declare the table "
            f"without value_type to store None."
        )

    def encoded_null(self) -> bytes:
        """The changelog value of None: the codec's own (``null`` in JSON), never an empty
        record, which is a tombstone and means the key was deleted."""
        if self._null is None:
            codec = self.changelog_topic.schema.value_codec
            try:
                self._null = codec.dumps(None)
            except EncodeError as exc:
                raise EncodeError(
                    f"Table {self.name!r}: the value None cannot be written to changelog "
                    f"{self.changelog_topic.name!r} with the {codec.name} serializer ({exc}). "
                    f"Delete the key instead, or use value_serializer='json'."
                ) from exc
        return self._null

    def _del(self, key: Any) -> None:
        self.deletes += 1
        partition = self._partition_for_write(key)
        self.store.delete(partition, key)
        self._mark_dirty(partition, key)

    def _mark_dirty(self, partition: int, key: Any) -> None:
        dirty = self._dirty.get(partition)
        if dirty is None:
            dirty = self._dirty[partition] = set()
        dirty.add(key)

    @property
    def backlogged(self) -> bool:
        """So many keys changed since the last flush that it should happen now."""
        return sum(map(len, self._dirty.values())) >= MAX_DIRTY_KEYS

    def _local_partitions(self) -> list[int]:
        return sorted(self.store.partitions())

    def _iter_items(self) -> Iterator[tuple[Any, Any]]:
        store = self.store
        for partition in self._local_partitions():
            yield from store.items(partition)

    # -- the changelog
    async def flush(self, hold: AbstractSet[int] = frozenset()) -> None:
        """Send one changelog record per changed key, wait for acks, persist the offsets.

        Changes to the partitions in ``hold`` stay pending (the table manager holds back
        partitions still being restored).
        """
        if not self._dirty:
            return
        dirty: dict[int, set[Any]] = {}
        held: dict[int, set[Any]] = {}
        for partition, keys in self._dirty.items():
            (held if partition in hold else dirty)[partition] = keys
        self._dirty = held
        if not dirty:
            return
        store = self.store
        topic = self.changelog_topic
        pending: list[tuple[int, asyncio.Future[Any]]] = []
        snapshots: dict[int, dict[Any, Any]] = {}
        for partition, keys in dirty.items():
            snapshot = snapshots[partition] = {}
            for key in keys:
                value = snapshot[key] = store.get(partition, key)
                if value is MISSING:
                    value = None  # a tombstone: the key was deleted
                elif value is None:
                    value = self.encoded_null()
                fut = topic.send_soon(key=key, value=value, partition=partition)
                pending.append((partition, fut))
        highest: dict[int, int] = {}
        try:
            for partition, fut in pending:
                metadata = await fut
                if metadata.offset > highest.get(partition, -1):
                    highest[partition] = metadata.offset
        except BaseException:
            # Not acked: those keys are dirty again, so the next flush sends them and the
            # consumer does not commit past the events that changed them.
            for partition, keys in dirty.items():
                for key in keys:
                    self._mark_dirty(partition, key)
            raise
        self.changelog_records_sent += len(pending)
        if pending:
            self.app.sensors.on_changelog_records(self.name, len(pending))
        if self.app.txn_gate is not None:
            # Exactly-once: the records are in the open transaction; the store persists
            # them once it commits (persist_flushed), never those of an aborted one.
            for partition, offset in highest.items():
                self._unpersisted.append((partition, snapshots[partition], offset))
            return
        for partition, offset in highest.items():
            store.persist(partition, snapshots[partition], offset)

    def persist_flushed(self) -> None:
        """Exactly-once: persist what the last flush sent, now that it committed."""
        flushed, self._unpersisted = self._unpersisted, []
        store = self.store
        for partition, snapshot, offset in flushed:
            if partition in store.partitions():
                store.persist(partition, snapshot, offset)

    def forget_uncommitted(self, partitions: AbstractSet[int]) -> None:
        """Exactly-once, after an abort: drop the changes of ``partitions`` that no
        committed transaction holds (the store goes back to what it persisted; a store
        that keeps nothing across restarts starts over)."""
        self._unpersisted = [f for f in self._unpersisted if f[0] not in partitions]
        for partition in partitions:
            self._dirty.pop(partition, None)
            self.store.forget_partition(partition)

    def apply_changelog(self, partition: int, messages: list[Message]) -> None:
        """Apply changelog records read during recovery or by a standby."""
        if not messages:
            return
        store = self.store
        dirty = self._dirty.get(partition)
        if not dirty and self.on_changelog_event is None and hasattr(store, "apply_messages"):
            # The store keeps the changelog's encoding: write the bytes as they are.
            store.apply_messages(partition, messages)
            return
        schema = self.changelog_topic.schema
        load_key = schema.key_loader()
        load_value = schema.value_loader()
        # A key changed here and not yet flushed is newer than any record read back
        # (a global table reads its own writes): keep the local value.
        dirty = dirty or set()
        records = []
        for message in messages:
            key = self._store_key(load_key(message.key))
            if key in dirty:
                continue
            value = MISSING if message.value is None else load_value(message.value)
            records.append((key, value))
            if self.on_changelog_event is not None:
                self.on_changelog_event(message)
        store.apply_changelog(partition, records, messages[-1].offset)

    def _store_key(self, key: Any) -> Any:
        """The store's key for a key decoded from the changelog: JSON gives a tuple key
        back as a list (unhashable, and unequal to the key written); windows make it
        ``(key, (start, end))``."""
        if self.windowing is not None:
            return self.windowing.store_key(key)
        return hashable(key) if type(key) is list else key

    async def call_recover_callbacks(self) -> None:
        for callback in self._on_recover:
            result = callback()
            if asyncio.iscoroutine(result):
                await result

    # -- display
    def size(self) -> int:
        return sum(self.store.size(p) for p in self._local_partitions())

    def clear(self) -> None:
        """Delete every key this worker holds; each deletion goes to the changelog as a
        tombstone with the next flush, so the table restored from it is empty too.

        Example::

            @app.timer(86400)
            async def reset_daily_counts():
                daily_counts.clear()
        """
        store = self.store
        for partition in self._local_partitions():
            keys = [key for key, _ in store.items(partition)]
            for key in keys:
                store.delete(partition, key)
                self._mark_dirty(partition, key)
            self.deletes += len(keys)

    def as_ansitable(
        self,
        title: str | None = "{table.name}",
        *,
        key: str = "Key",
        value: str = "Value",
        sort: bool = False,
        sortkey: Callable[[tuple[Any, Any]], Any] | None = None,
        target: Any = None,
    ) -> str:
        """The table as text with box-drawing borders, as Faust draws it (for logs and
        the console): ``title`` may use ``{table.name}``; ``sort`` orders the rows by
        ``sortkey`` (default: the key); ``target`` is accepted for Faust's signature (the
        text is returned, never printed).

        Example::

            print(word_counts.as_ansitable(title='Words', sort=True))
        """
        import io

        from rich.console import Console
        from rich.table import Table as RichTable

        items = list(self._iter_items())
        if sort:
            items.sort(key=sortkey or _item_key)
        drawn = RichTable(title=title.format(table=self) if title else None)
        drawn.add_column(key)
        drawn.add_column(value)
        for k, v in items:
            drawn.add_row(repr(k), repr(v))
        out = io.StringIO()
        # Plain text whatever the terminal: the string goes to logs as well.
        Console(file=out, width=200, color_system=None, force_terminal=False).print(drawn)
        return out.getvalue().rstrip("\n")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}: {self.partitions} partitions>"


def _item_key(item: tuple[Any, Any]) -> Any:
    """Sort key of a table row: the key, by its repr when keys do not compare."""
    return repr(item[0])


def _sensed(
    table: Collection,
    name: str,
    hook: str,
    sensors: list[Any],
    own: Callable[..., None] | None = None,
) -> Callable[..., Any]:
    """``table.<name>`` (``_get``, ``_set`` or ``_del``) that also calls the table's
    ``own`` key hook with the arguments, then ``hook`` of each of ``sensors`` with the
    table's name and the arguments."""
    method = getattr(type(table), name).__get__(table)
    label = table.name
    call = table.app.sensors.call if sensors else None

    def sensed(*args: Any) -> Any:
        result = method(*args)
        if own is not None:
            own(*args)
        if call is not None:
            call(sensors, hook, label, *args)
        return result

    return sensed
