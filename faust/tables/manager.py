"""The table manager: changelog subscriptions, recovery on assignment, standbys, flushes.

On assignment, every newly assigned partition is paused while the tables' changelog
partitions that came with it are restored; then they resume, so no event is processed
against a table that is not up to date. Changelog partitions are subscribed in the
consumer group (so the assignor keeps changelog partition ``p`` with source partition
``p``) but never consumed as a stream: they stay paused and are read by the recovery.
Global tables are read in full at start and followed for as long as the app runs.

Each assignment supersedes the recovery in progress: a recovery belongs to one
assignment generation, restores every assigned changelog partition not yet restored, and
only then resumes the paused partitions. A superseded one is cancelled between two
batches, so a changelog partition's position (the store's persisted offset) only ever
covers records that were applied, and the next recovery goes on from there.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from functools import partial
from typing import Any, TypeVar

from ..services import BackgroundTasks
from ..transport.base import TP, Message
from .base import Collection

__all__ = ["TableManager"]

logger = logging.getLogger(__name__)

C = TypeVar("C", bound=Collection)

# A recovery longer than this reports progress (records, rate, ETA) at this interval.
PROGRESS_INTERVAL = 5.0
# A recovery that reads nothing for this long says so (and what it waits for).
STALL_WARNING_AFTER = 15.0
# How often global tables and standbys look for new changelog records.
FOLLOW_INTERVAL = 0.2


class TableManager:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.tables: dict[str, Collection] = {}
        self._by_changelog: dict[str, Collection] = {}
        self._recovery: asyncio.Task[None] | None = None
        # Source partitions paused until the recovery of this generation is done.
        self._pending: set[TP] = set()
        # Changelog partitions assigned to this worker, and those fully restored since.
        self._active: set[TP] = set()
        self._restored: set[TP] = set()
        self._generation = 0
        self._recovered = asyncio.Event()
        self._recovered.set()
        self._tasks = BackgroundTasks(self)
        self._standbys: set[TP] = set()
        self._standby_task: asyncio.Task[Any] | None = None
        self.records_restored = 0
        self.started = False

    def add(self, table: C) -> C:
        if table.name in self.tables:
            raise ValueError(f"A table named {table.name!r} already exists in this app")
        self.tables[table.name] = table
        self._by_changelog[table.changelog_topic.name] = table
        return table

    def __getitem__(self, name: str) -> Collection:
        return self.tables[name]

    def __iter__(self) -> Iterator[Collection]:
        return iter(self.tables.values())

    def __len__(self) -> int:
        return len(self.tables)

    def __contains__(self, name: object) -> bool:
        return name in self.tables

    # -- lifecycle
    async def start(self) -> None:
        if not self.tables or self.started:
            return
        self.started = True
        app = self.app
        for table in self.tables.values():
            await app.declare_topic(table.changelog_topic)
            if not table.is_global:
                app.conductor.subscribe_passive(table.changelog_topic.name)
        app.consumer_hooks.append(self.flush)
        app.consumer_after_commit.append(self.persist_flushed)
        for table in self.tables.values():
            if table.is_global:
                await self._restore_global(table)
                self._tasks.supervise(
                    partial(self._follow_global, table), f"global table {table.name!r} follower"
                )
            if table.windowing is not None:
                self._tasks.supervise(
                    partial(self._expire_windows, table), f"window expiry of table {table.name!r}"
                )

    async def stop(self) -> None:
        # Cancels the recovery, the standby and global followers and window expiry.
        self._standbys = set()
        await self._tasks.cancel()
        for table in self.tables.values():
            if table._store is not None:
                table._store.close()
        self.started = False

    @property
    def recovering(self) -> bool:
        """True while assigned table partitions are being restored from their changelogs."""
        return not self._recovered.is_set()

    def partitions_to_recover(self) -> dict[str, list[int]]:
        """Table name -> the partitions assigned here and not restored yet (for
        ``/health/ready``); empty while no recovery runs or it only runs the tables'
        ``on_recover`` callbacks."""
        pending: dict[str, list[int]] = {}
        for tp in sorted(self._active - self._restored):
            pending.setdefault(self._by_changelog[tp.topic].name, []).append(tp.partition)
        return pending

    async def wait_recovered(self) -> None:
        """Return once no recovery is in progress (at once if none is)."""
        await self._recovered.wait()

    async def flush(self) -> None:
        """Send every table's pending changes to its changelog (before a commit).

        Changes to a partition still being restored stay pending until it is: flushing
        them would persist a changelog position past records not applied yet. (Only an
        event taken before a rebalance makes such a change; its offset is not committed.)
        """
        restoring = self._active - self._restored
        for table in self.tables.values():
            topic = table.changelog_topic.name
            await table.flush(hold={tp.partition for tp in restoring if tp.topic == topic})

    def persist_flushed(self) -> None:
        """After a commit: under exactly-once, the stores persist what was flushed."""
        if self.app.txn_gate is None:
            return
        for table in self.tables.values():
            if table._unpersisted:
                table.persist_flushed()

    def forget_uncommitted(self) -> None:
        """Exactly-once, after an abort: every active partition drops what no
        committed transaction holds, and is restored again when next assigned."""
        for tp in self._active:
            table = self._by_changelog[tp.topic]
            table.forget_uncommitted({tp.partition})
        self._restored -= self._active

    def is_changelog(self, topic: str) -> bool:
        """True if ``topic`` is the changelog of one of the app's tables."""
        return topic in self._by_changelog

    def fetchable(self, assigned: set[TP]) -> set[TP]:
        """The partitions of ``assigned`` to fetch now: not changelogs (read by the
        recovery), nor sources waiting for it."""
        by_changelog = self._by_changelog
        return {tp for tp in assigned if tp.topic not in by_changelog and tp not in self._pending}

    def rewind(self, assigned: set[TP]) -> None:
        """Exactly-once, after an abort: go back to the committed state of every
        assigned partition (restored again from the changelogs; the source partitions
        wait meanwhile)."""
        if not self.tables:
            return
        self.forget_uncommitted()
        self.on_partitions_revoked(set(self._active))
        self.on_partitions_assigned(assigned)

    # -- rebalancing
    def on_partitions_assigned(self, assigned: set[TP]) -> None:
        if not self.tables:
            return
        changelogs = {tp for tp in assigned if tp.topic in self._by_changelog}
        driver = self.app.consumer.driver
        self._update_standbys(driver.standby_partitions() - changelogs)
        # Changelogs are read by the recovery, never as a stream.
        driver.pause(changelogs)
        for tp in changelogs:
            table = self._by_changelog[tp.topic]
            table.active_partitions.add(tp.partition)
            table.store.open_partition(tp.partition)
        self._active |= changelogs
        if not self.recovering and not (self._active - self._restored):
            return
        sources = assigned - changelogs
        driver.pause(sources)
        self._pending |= sources
        self._start_recovery()

    def _start_recovery(self) -> None:
        """Start the recovery of a new generation, superseding the one in progress."""
        self._generation += 1
        generation = self._generation
        previous = self._recovery
        if previous is not None:
            previous.cancel()
        self._recovered.clear()
        self._recovery = self._tasks.supervise(
            lambda: self._recover(generation, previous), f"table recovery #{generation}"
        )

    def _update_standbys(self, standbys: set[TP]) -> None:
        """Follow ``standbys`` (changelog partitions another worker owns) from now on."""
        standbys = {tp for tp in standbys if tp.topic in self._by_changelog}
        for tp in self._standbys - standbys:
            table = self._by_changelog[tp.topic]
            table.standby_partitions.discard(tp.partition)
            if tp.partition not in table.active_partitions:
                table.store.close_partition(tp.partition)
        for tp in standbys - self._standbys:
            table = self._by_changelog[tp.topic]
            table.standby_partitions.add(tp.partition)
            table.store.open_partition(tp.partition)
        self._standbys = standbys
        if standbys and (self._standby_task is None or self._standby_task.done()):
            # Ends by itself once there are no standbys left.
            self._standby_task = self._tasks.supervise(self._follow_standbys, "standby follower")

    async def _follow_standbys(self) -> None:
        """Keep standby partitions close to their changelog's end, so a takeover
        replays only the tail."""
        transport = self.app.transport
        while self._standbys:
            for tp in list(self._standbys):
                table = self._by_changelog[tp.topic]
                start = _next_offset(table.store.persisted_offset(tp.partition))
                end = await transport.end_offset(tp)
                if end > start:
                    async for messages in transport.read_partition(tp, start, end):
                        if tp not in self._standbys:
                            break  # became active (or moved away) meanwhile
                        table.apply_changelog(tp.partition, messages)
            await asyncio.sleep(FOLLOW_INTERVAL)

    def on_partitions_revoked(self, revoked: set[TP]) -> None:
        changelogs = {tp for tp in revoked if tp.topic in self._by_changelog}
        if self.recovering and changelogs & (self._active - self._restored):
            # Stop restoring what is no longer ours; the next assignment's recovery
            # (every revoke is followed by one) restores what is left.
            if self._recovery is not None:
                self._recovery.cancel()
        for tp in changelogs:
            table = self._by_changelog[tp.topic]
            table.active_partitions.discard(tp.partition)
            if table._dirty.pop(tp.partition, None):
                # Changed after the revoke's flush by an event still in hand: that
                # event is not committed, so its change must not survive here.
                table.store.forget_partition(tp.partition)
            else:
                table.store.close_partition(tp.partition)
        self._active -= changelogs
        self._restored -= changelogs
        self._pending -= revoked

    async def _recover(self, generation: int, previous: asyncio.Task[Any] | None) -> None:
        """Restore every assigned changelog partition not yet restored, then resume the
        paused partitions, unless a newer assignment superseded this recovery."""
        if previous is not None and not previous.done():
            # Cancelled by the caller: wait until it has let go of its readers.
            await asyncio.wait([previous])
        for tp in sorted(self._active - self._restored):
            await self._restore(self._by_changelog[tp.topic], tp)
            self._restored.add(tp)
        for table in {self._by_changelog[tp.topic] for tp in self._active}:
            await table.call_recover_callbacks()
        if generation != self._generation:
            return  # superseded meanwhile: the newer recovery resumes what it restored
        pending, self._pending = self._pending, set()
        consumer = self.app.consumer
        if consumer is not None:
            consumer.driver.resume(pending)
        self._recovered.set()

    async def _restore(self, table: Collection, tp: TP) -> int:
        """Read ``tp`` from the store's persisted offset to the end; returns records read."""
        transport = self.app.transport
        start = _next_offset(table.store.persisted_offset(tp.partition))
        end = await transport.end_offset(tp)
        if end <= start:
            return 0
        total = end - start
        began = time.monotonic()
        batches = transport.read_partition(tp, start, end)
        try:
            read = await self._apply_batches(table, tp, batches, total, began)
        finally:
            # A superseded recovery is cancelled mid-read: close the reader now rather
            # than whenever the generator is collected.
            aclose = getattr(batches, "aclose", None)
            if aclose is not None:
                await aclose()
        self.records_restored += read
        elapsed = time.monotonic() - began
        if read:
            logger.info(
                "Recovered table %r partition %d: %d records in %.2f s",
                table.name,
                tp.partition,
                read,
                elapsed,
            )
        return read

    async def _apply_batches(
        self,
        table: Collection,
        tp: TP,
        batches: AsyncIterator[list[Message]],
        total: int,
        began: float,
    ) -> int:
        """Apply ``batches`` of ``tp`` to ``table``, reporting progress and stalls."""
        read = 0
        last_report = last_progress = began
        sensors = self.app.sensors
        sensors.on_recovery_progress(table.name, tp.partition, 0, total)
        async for messages in batches:
            now = time.monotonic()
            if messages:
                size = table.recovery_buffer_size
                if len(messages) <= size:
                    table.apply_changelog(tp.partition, messages)
                else:
                    for i in range(0, len(messages), size):
                        table.apply_changelog(tp.partition, messages[i : i + size])
                read += len(messages)
                last_progress = now
                sensors.on_recovery_progress(table.name, tp.partition, read, total)
            elif now - last_progress > STALL_WARNING_AFTER:
                logger.warning(
                    "Recovery of table %r partition %d made no progress for %.0f s: read "
                    "%d of %d records of %s[%d]. Is the broker reachable?",
                    table.name,
                    tp.partition,
                    now - last_progress,
                    read,
                    total,
                    tp.topic,
                    tp.partition,
                )
                last_progress = now
            if now - last_report > PROGRESS_INTERVAL:
                rate = read / max(now - began, 1e-9)
                eta = (total - read) / rate if rate else float("inf")
                logger.info(
                    "Recovering table %r partition %d: %d/%d records (%.0f/s, ETA %.0f s)",
                    table.name,
                    tp.partition,
                    read,
                    total,
                    rate,
                    eta,
                )
                last_report = now
        return read

    # -- global tables
    async def _restore_global(self, table: Collection) -> None:
        for partition in range(table.partitions):
            table.store.open_partition(partition)
            table.active_partitions.add(partition)
            await self._restore(table, TP(table.changelog_topic.name, partition))
        await table.call_recover_callbacks()

    async def _follow_global(self, table: Collection) -> None:
        transport = self.app.transport
        while True:
            await asyncio.sleep(FOLLOW_INTERVAL)
            for partition in range(table.partitions):
                tp = TP(table.changelog_topic.name, partition)
                start = _next_offset(table.store.persisted_offset(partition))
                end = await transport.end_offset(tp)
                if end > start:
                    async for messages in transport.read_partition(tp, start, end):
                        table.apply_changelog(partition, messages)

    async def _expire_windows(self, table: Collection) -> None:
        """Close stale windows every ``table_cleanup_interval`` seconds (on every worker:
        each closes the windows of its own partitions). The tombstones go out with the
        next commit's flush."""
        windowing = table.windowing
        assert windowing is not None
        while True:
            await asyncio.sleep(windowing.cleanup_interval)
            await windowing.cleanup()

    def recovery_state(
        self, table: Collection, progress: dict[tuple[str, int], list[int]]
    ) -> list[dict[str, Any]]:
        """Per local partition of ``table``: its ``state`` (``recovering``, ``recovered``
        or ``standby``) and the ``read``/``total`` records of its last recovery
        (``progress``: what the Monitor heard from ``on_recovery_progress``)."""
        topic = table.changelog_topic.name
        out: list[dict[str, Any]] = []
        partitions = set(table.active_partitions) | set(table.standby_partitions)
        for partition in sorted(partitions):
            tp = TP(topic, partition)
            read, total = progress.get((table.name, partition), (0, 0))
            if partition in table.standby_partitions and partition not in table.active_partitions:
                state = "standby"
            elif table.is_global:
                state = "recovering" if read < total else "recovered"
            elif tp in self._active and tp not in self._restored:
                state = "recovering"
            else:
                state = "recovered"
            out.append({"partition": partition, "state": state, "read": read, "total": total})
        return out

    def __repr__(self) -> str:
        return f"<TableManager of {self.app!r}>"


def _next_offset(persisted: int | None) -> int:
    return 0 if persisted is None else persisted + 1
