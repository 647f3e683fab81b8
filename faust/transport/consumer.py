"""The app's consumer: fetch batches, hand them to the conductor, commit what is done.

The fetch loop hands each batch to its partition's offset tracker and the conductor; the
commit loop commits each partition's committable offset every
``broker_commit_interval`` seconds, after ``broker_commit_every`` processed events, on
revoke and on shutdown. Before committing it runs the ``before_commit`` hooks (tables
flush their write-back caches there).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ..services import BackgroundTasks
from ..transactions import IDLE_POLL
from .base import TP, ConsumerDriver, Message, RebalanceListener
from .offsets import OffsetTracker

__all__ = ["Consumer"]

logger = logging.getLogger(__name__)

#: How often a fetch loop held back by a backlog looks again (seconds): short next to a
#: drain or a flush (tens of milliseconds), and 200 wake-ups a second only while held.
BACKLOG_POLL = 0.005
#: Exactly-once: how long a commit waits for the agents to finish the events they hold
#: before it is postponed (seconds); and how often it looks.
QUIESCE_PATIENCE = 10.0
#: Exactly-once: how long the records sent before an abort may take to reach the
#: transactions it aborts (seconds).
SETTLE_TIMEOUT = 30.0


class Consumer(RebalanceListener):
    def __init__(self, app: Any, conductor: Any) -> None:
        self.app = app
        self.conductor = conductor
        # Before the driver: it hands them to its partition assignor.
        self.sensors = app.sensors
        self.driver: ConsumerDriver = app.transport.create_consumer(app.conf.group_id, self)
        self.trackers: dict[TP, OffsetTracker] = {}
        self.committed: dict[TP, int] = {}
        self.before_commit: list[Callable[[], Awaitable[None]]] = []
        self._tasks = BackgroundTasks(self)
        # Partitions revoked since the fetch loop's current batch was fetched: the rest
        # of that batch is not delivered for them (the new owner, maybe this worker
        # again, reads them from the committed offset).
        self._revoked_since_fetch: set[TP] = set()
        #: Set once this member knows its partitions (the first assignment or fetch).
        self.assigned_once = asyncio.Event()
        self._commit_now = asyncio.Event()
        self._stopping = False
        self._processed_at_commit = 0
        self._commit_every = app.conf.broker_commit_every
        self._commit_lock = asyncio.Lock()
        #: The first offset fetched of each partition (its lag's base before a commit).
        self.started_at: dict[TP, int] = {}
        #: Times the fetch loop waited out a backlog, and the seconds it waited.
        self.backlog_waits = 0
        self.backlog_seconds = 0.0
        self._rebalance_began: float | None = None
        # What the sensors' on_rebalance_start returned, for their return/end hooks.
        self._rebalance_state: dict[Any, Any] = {}
        #: Called after each commit (under exactly-once: once the transactions commit).
        self.after_commit: list[Callable[[], Any]] = []
        # Exactly-once: cleared while a commit holds the fetch loop before delivering.
        self._deliver_ok = asyncio.Event()
        self._deliver_ok.set()
        self._delivering = False
        # Exactly-once: why the open transactions must be aborted (an agent raised).
        self._rewind_reason: str | None = None
        # Exactly-once: times each event an agent raised on has failed.
        self._event_failures: dict[tuple[str, int, int], int] = {}

    async def start(self) -> None:
        self.update_subscription()
        await self.driver.start()
        # The loops must outlive any single failure: if one ended, the worker would sit
        # idle forever with its partitions assigned.
        self._tasks.supervise(self._fetch_batches, "faust-consumer-fetch")
        self._tasks.supervise(self._commit_loop, "faust-consumer-commit")

    def update_subscription(self) -> None:
        self.driver.set_standby_topics(self.conductor.passive_topic_names())
        self.driver.subscribe(self.conductor.topic_names())

    async def stop(self) -> None:
        """Stop fetching; the caller commits after the agents have stopped."""
        self._stopping = True
        await self._tasks.cancel()

    async def close(self) -> None:
        """Commit and leave the group (after the agents have stopped)."""
        await self._give_up(self.driver.assignment())
        await self.driver.stop()

    # -- rebalance
    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        """Commit what is processed, then drop what is still buffered for ``revoked``.

        Buffered events of a revoked partition are dropped unprocessed (the new owner
        reads them from the committed offset); an event an agent holds right now may
        finish, but its partition's offset is no longer committed here.
        """
        self._rebalance_began = time.monotonic()
        self._rebalance_state = self.sensors.on_rebalance_start(self.app)
        self.sensors.on_partitions_revoking(revoked)
        await self._give_up(revoked)

    async def _give_up(self, revoked: set[TP]) -> None:
        try:
            await self.commit(revoked)
        except Exception:
            # E.g. the group already moved on (this worker was too slow): the events
            # are processed again by the new owner; still drop what is buffered.
            logger.exception("Could not commit revoked partitions; their owner resumes")
        gate = self.app.txn_gate
        if gate is not None:
            # Events taken and held at the gate meanwhile are not processed either.
            gate.epoch += 1
        self._revoked_since_fetch |= revoked
        dropped = self.conductor.drop_buffered(revoked)
        if dropped:
            logger.info(
                "Dropped %d buffered events of revoked partitions %s",
                dropped,
                ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(revoked)),
            )
        for tp in revoked:
            self.trackers.pop(tp, None)
            self.committed.pop(tp, None)
            self.started_at.pop(tp, None)
        await self.app.partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TP]) -> None:
        sensors = self.sensors
        began, self._rebalance_began = self._rebalance_began, None
        if began is None:
            # Nothing was revoked first (a first assignment, or only new partitions).
            began = time.monotonic()
            self._rebalance_state = sensors.on_rebalance_start(self.app)
            sensors.on_partitions_revoking(set())
        state, self._rebalance_state = self._rebalance_state, {}
        sensors.on_rebalance_return(self.app, state)
        transactions = self.transactions
        if transactions is None:
            await self.app.partitions_assigned(assigned)
        else:
            # Nothing is processed before its task has a producer; and that comes before
            # the tables read their changelogs: it fences the task's previous owner and
            # aborts the transaction it left open. No commit (or abort) runs meanwhile.
            async with self._commit_lock:
                self.driver.pause(assigned)
                await self._assign_tasks(transactions, assigned)
                await self._seek_committed(assigned)
                await self.app.partitions_assigned(assigned)
                self.driver.resume(self.app.tables.fetchable(assigned))
        self.assigned_once.set()
        sensors.on_partitions_taken(assigned, time.monotonic() - began)
        sensors.on_rebalance_end(self.app, state)

    # -- fetching
    async def _fetch_batches(self) -> None:
        driver = self.driver
        deliver = self.conductor.deliver
        trackers = self.trackers
        commit_every = self._commit_every
        max_records = self.app.conf.broker_max_poll_records
        revoked = self._revoked_since_fetch
        sensors = self.sensors
        # Faust's per-message hooks: live lists, empty unless a sensor overrides them.
        message_in = sensors.wants("on_message_in")
        message_out = sensors.wants("on_message_out")
        while not self._stopping:
            records = await driver.getmany(1.0, max_records)
            # Cleared only now: a rebalance inside getmany already left out what it
            # revoked, and what it fetched after it is valid.
            revoked.clear()
            # A driver that rebalances inside getmany (the embedded broker) has applied
            # its first assignment by now, even an empty one.
            self.assigned_once.set()
            for tp, messages in records.items():
                if not self._deliver_ok.is_set():
                    # An exactly-once commit runs: it may go back to the last commit.
                    await self._deliver_ok.wait()
                if revoked and tp in revoked:
                    # Revoked while an earlier batch of this fetch waited for room (or
                    # an exactly-once rewind went back before it).
                    continue
                tracker = trackers.get(tp)
                if tracker is None:
                    tracker = trackers[tp] = OffsetTracker(tp, messages[0].offset)
                    self.started_at.setdefault(tp, messages[0].offset)
                tracker.fetched(messages)
                # Per fetched batch (up to broker_max_poll_records messages), not per event.
                sensors.on_messages_in(tp, messages)
                if message_in or message_out:
                    self._sense_messages(tp, messages, message_in, message_out)
                self._delivering = True
                try:
                    await deliver(tp, messages)
                finally:
                    self._delivering = False
                if revoked and tp in revoked:
                    # Revoked while this batch waited for room: the revoke emptied the
                    # queues, but a topic with several readers got the batch into the
                    # queues after the first one since; nothing newer of tp is there yet.
                    self.conductor.drop_buffered({tp})
                    continue
                # Keeps the tracker's backlog to what is still in flight.
                self._advance(tracker)
            # Checked per batch rather than per event: cheap, and a batch is small
            # next to broker_commit_every.
            if not records:
                # The input went quiet: count what the agents finished since the fetch.
                for tracker in trackers.values():
                    self._advance(tracker)
            processed = sum(t.processed for t in trackers.values())
            since_commit = processed - self._processed_at_commit
            if since_commit >= commit_every or (not records and since_commit):
                # Also when the input went quiet (a fetch found nothing): otherwise the
                # tail processed after the last commit (its offsets, its tables' changed
                # keys) waits for broker_commit_interval, however long that is.
                self._commit_now.set()
            if self.app.backlogged():
                await self._wait_out_backlog()

    def _sense_messages(
        self, tp: TP, messages: list[Message], message_in: list[Any], message_out: list[Any]
    ) -> None:
        """Faust's per-message hooks, only while a sensor overrides them: each message in
        now, and out when it is processed (its ``on_done``)."""
        sensors = self.sensors
        if message_in:
            for message in messages:
                sensors.call(message_in, "on_message_in", tp, message.offset, message)
        if message_out:

            def message_done(message: Message) -> None:
                sensors.call(message_out, "on_message_out", tp, message.offset, message)

            for message in messages:
                if message.on_done is None:
                    message.on_done = message_done

    async def _wait_out_backlog(self) -> None:
        """Fetch nothing more while the app holds too much unsent work.

        Agents finish what is buffered meanwhile. Only this loop waits: nothing that
        clears the backlog (the producer's drain, the commit and its table flushes, a
        rebalance) waits for it, so the wait always ends.
        """
        began = time.monotonic()
        self.backlog_waits += 1
        try:
            while self.app.backlogged() and not self._stopping:
                await asyncio.sleep(BACKLOG_POLL)
        finally:
            self.backlog_seconds += time.monotonic() - began

    def _advance(self, tracker: OffsetTracker) -> int:
        """``tracker.advance()``, telling the sensors how many messages it moved past."""
        before = tracker.processed
        offset = tracker.advance()
        done = tracker.processed - before
        if done:
            self.sensors.on_messages_out(tracker.tp, done, offset)
        return offset

    def request_commit(self) -> None:
        """Commit as soon as possible instead of at the next interval."""
        self._commit_now.set()

    def request_rewind(
        self,
        reason: str,
        failed: Sequence[tuple[str, int, int]] = (),
        retries: int = 0,
    ) -> None:
        """Exactly-once: abort the open transactions (at once, instead of committing
        them) and process again from the last commit.

        ``failed``: the (topic, partition, offset) of the events an agent raised on; one
        that has failed ``retries`` times already stops the worker instead (it would
        fail again after every abort, and hold back every partition of the worker).
        """
        if self._rewind_reason is None:
            # Set first: a stop for the failure below aborts too, commits nothing.
            self._rewind_reason = reason
        self._commit_now.set()
        for where in failed:
            attempts = self._event_failures[where] = self._event_failures.get(where, 0) + 1
            if attempts > retries:
                topic, partition, offset = where
                self.app.crash(
                    f"Exactly-once: {reason}, for the {attempts}th time on topic={topic} "
                    f"partition={partition} offset={offset}. An event an agent raised on "
                    "is processed again from the last commit, with every event since; "
                    "this one fails every time, so the worker stops (nothing since the "
                    "last commit is committed). Fix the cause and restart."
                )
                return

    # -- committing
    async def _commit_loop(self) -> None:
        interval = self.app.conf.broker_commit_interval
        while not self._stopping:
            try:
                await asyncio.wait_for(self._commit_now.wait(), interval)
            except TimeoutError:
                pass
            self._commit_now.clear()
            try:
                await self.commit()
            except Exception:
                logger.exception("Commit failed; will retry in %.1f s", interval)

    async def commit(self, tps: set[TP] | None = None) -> dict[TP, int]:
        """Commit the committable offset of ``tps`` (default: every assigned partition).

        Under exactly-once every partition's, in the transactions (see
        :meth:`_commit_transactions`).

        The offsets are taken *before* the ``before_commit`` hooks run: a hook (a table
        flushing its changelog) awaits, agents go on meanwhile, and an event processed
        during that wait may have changes the hook did not flush, so it must not be
        committed this time.
        """
        if self.app.txn_gate is not None:
            return await self._commit_transactions(revoking=tps is not None)
        async with self._commit_lock:
            offsets = self._committable(tps)
            began = time.perf_counter()
            state = self._committing(offsets)
            for hook in self.before_commit:
                await hook()
            if offsets:
                await self.driver.commit(offsets)
            self._committed(offsets, began, state)
            for after in self.after_commit:
                after()
            return offsets

    def _committable(self, tps: set[TP] | None = None) -> dict[TP, int]:
        """The offset past the processed events of each partition of ``tps`` (default:
        every one), where it moved since the last commit."""
        offsets: dict[TP, int] = {}
        acks_enabled_for = self.conductor.acks_enabled_for
        for tp, tracker in list(self.trackers.items()):
            if tps is not None and tp not in tps:
                continue
            if not acks_enabled_for(tp.topic):
                continue  # app.topic(..., acks=False): never committed
            offset = self._advance(tracker)
            if offset > self.committed.get(tp, -1):
                offsets[tp] = offset
        self._processed_at_commit = sum(t.processed for t in self.trackers.values())
        return offsets

    def _committing(self, offsets: dict[TP, int]) -> Any:
        """Tell the sensors ``offsets`` are being committed; what they return."""
        if not offsets:
            return None
        state = self.sensors.on_commit_initiated(self)
        self.sensors.on_offsets_committing(offsets)
        return state

    def _committed(self, offsets: dict[TP, int], began: float, state: Any) -> None:
        """Record ``offsets`` as committed (the commit began at ``began``) and tell the
        sensors, with what their ``on_commit_initiated`` returned."""
        if offsets:
            self.committed.update(offsets)
            self.sensors.on_offsets_committed(offsets, time.perf_counter() - began)
            self.sensors.on_commit_completed(self, state)

    # -- exactly-once
    async def _seek_committed(self, assigned: set[TP]) -> None:
        """Exactly-once, on assignment: start each source partition at the offset the
        broker shows now. The client may have read it before the previous owner's last
        commit showed (its offsets appear once the transaction's markers are written);
        the producers just started waited for that."""
        tables = self.app.tables
        leader = getattr(self.app.transport, "leader_topic", None)
        for tp in sorted(assigned):
            if tp.topic == leader or tables.is_changelog(tp.topic):
                continue
            offset = await self._committed_on_broker(tp)
            if offset is not None:
                self.committed[tp] = offset
                self.driver.seek(tp, offset)

    async def _settle_sends(self) -> None:
        """Before an abort: hand every record the agents sent to the driver, into the
        transactions about to be aborted (a record left in the buffer would go into the
        next ones and be committed). What cannot be handed over in time is failed."""
        producer = self.app._producer
        if producer is None:
            return
        try:
            async with asyncio.timeout(SETTLE_TIMEOUT):
                await producer.flush()
        except Exception as exc:  # noqa: BLE001 - failed sends are what the abort is for
            logger.debug("Flush before an abort: %r", exc)
        failed = producer.fail_buffered(RuntimeError("its transaction was aborted"))
        if failed:
            logger.warning(
                "Exactly-once: %d records not sent before the abort were dropped", failed
            )

    async def _committed_on_broker(self, tp: TP) -> int | None:
        """The group's committed offset of ``tp`` (None: none yet), asked until the
        brokers answer."""
        return await _until_it_works(
            lambda: self.driver.committed(tp),
            f"read the committed offset of {tp.topic}[{tp.partition}] to go back to",
        )

    async def _assign_tasks(self, transactions: Any, assigned: set[TP]) -> None:
        """A transactional producer per task of ``assigned`` (none for the others); what
        is open is aborted first (nothing since the revoke's commit may count). Tried
        until it works: without them this worker cannot process anything."""
        transport = self.app.transport
        leader = getattr(transport, "leader_topic", None)
        tps = {tp for tp in assigned if tp.topic != leader}

        async def assign() -> None:
            counts = await transport.partition_counts({tp.topic for tp in tps})
            await transactions.abort()
            await transactions.assign(tps, counts)

        await _until_it_works(
            assign, "start the transactional producers of this worker's partitions"
        )

    @property
    def transactions(self) -> Any:
        producer = self.app._producer
        return None if producer is None else getattr(producer.driver, "transactions", None)

    async def _quiesce(self) -> bool:
        """Hold the fetch loop, close the gate and wait until no agent is midway through
        an event; False (and everything running again) if one still is after
        QUIESCE_PATIENCE s.

        A delivery in progress may go on (into queues the gated agents do not take
        from): what it adds is not processed, so not committed, this time.
        """
        gate = self.app.txn_gate
        self._deliver_ok.clear()
        gate.close()
        if await gate.wait_idle(QUIESCE_PATIENCE):
            return True
        logger.warning(
            "Commit postponed: an agent has been processing one event for %g s (busy: "
            "%s). Under exactly-once a commit waits until no event is half processed; "
            "an agent awaiting another agent's reply (ask) can hold it.",
            QUIESCE_PATIENCE,
            gate.describe_busy(),
        )
        self._resume_processing()
        return False

    def _resume_processing(self) -> None:
        self.app.txn_gate.open()
        self._deliver_ok.set()

    async def _commit_transactions(self, revoking: bool = False) -> dict[TP, int]:
        """Exactly-once: with no event half processed, flush the tables, wait for every
        record's ack, and commit each task's transaction with its input offsets.

        If that fails (a send failed, a producer was fenced, the brokers did not answer
        in time), or an agent raised since the last commit, the transactions are aborted
        and the worker goes back to its last commit (:meth:`_rewind`); ``revoking``: the
        partitions are being given up, so only what is uncommitted is dropped.
        """
        async with self._commit_lock:
            transactions = self.transactions
            if transactions is None:
                return {}
            if not await self._quiesce():
                return {}
            try:
                reason = self._rewind_reason
                gate = self.app.txn_gate
                if reason is None and gate.interrupted is not None:
                    reason = f"the agent of {gate.interrupted} stopped midway through an event"
                    self._rewind_reason = reason
                gate.interrupted = None
                offsets: dict[TP, int] = {}
                if reason is None:
                    try:
                        offsets = await self._commit_in_transactions(transactions)
                    except Exception as exc:  # noqa: BLE001 - every failure aborts
                        reason = f"the commit failed: {exc}"
                if reason is not None:
                    await self._rewind(transactions, reason, revoking)
                    return {}
                return offsets
            finally:
                self._resume_processing()

    async def _commit_in_transactions(self, transactions: Any) -> dict[TP, int]:
        began = time.perf_counter()
        for hook in self.before_commit:
            await hook()
        producer = self.app._producer
        if producer is not None:
            await producer.flush()
        offsets = self._committable()
        state = self._committing(offsets)
        await transactions.commit(offsets)
        if self._event_failures:
            # Failures of events now committed (they passed) are forgotten.
            self._event_failures = {
                where: n
                for where, n in self._event_failures.items()
                if where[2] >= self.committed.get(TP(where[0], where[1]), -1)
                and where[2] >= offsets.get(TP(where[0], where[1]), -1)
            }
        self._committed(offsets, began, state)
        for after in self.after_commit:
            after()
        return offsets

    async def _rewind(self, transactions: Any, reason: str, revoking: bool) -> None:
        """Abort the open transactions and go back to the last commit: drop what is
        buffered and fetched, seek each partition to its committed offset, and restore
        the tables' partitions to their committed state."""
        logger.error(
            "Exactly-once: aborting the open transactions (%s); the events since the last "
            "commit are processed again.",
            reason,
        )
        await self._settle_sends()
        lost = await transactions.abort()
        # Only now: a rewind cancelled before this (the worker stopping) leaves the
        # reason, so the stop's own commit aborts instead of committing.
        self._rewind_reason = None
        if lost:
            # Fenced: maybe this worker is no longer a member. Rejoining settles it:
            # the rebalance gives each task it still owns a new producer.
            logger.warning(
                "Exactly-once: the producers of %s were fenced; rejoining the group",
                ", ".join(transactions.transactional_id(task) for task in sorted(lost)),
            )
            self.driver.rejoin()
        tables = self.app.tables
        if revoking:
            tables.forget_uncommitted()
            return
        assigned = self.driver.assignment()
        tracked = [tp for tp in self.trackers if tp in assigned]
        started = dict(self.started_at)
        self.app.txn_gate.epoch += 1
        self._revoked_since_fetch |= assigned
        self.conductor.drop_buffered(assigned)
        # A delivery waiting for room when the gate closed completes into the room the
        # drop made: those events are dropped too (the agents take nothing meanwhile).
        while self._delivering:
            await asyncio.sleep(IDLE_POLL)
            self.conductor.drop_buffered(assigned)
        self.trackers.clear()
        self.started_at.clear()
        self._processed_at_commit = 0
        for tp in tracked:
            # The later of the two: the broker may not show a commit that succeeded a
            # moment ago (its offsets appear once the transaction's markers are written),
            # and this worker may not know of one whose answer was lost.
            candidates = (self.committed.get(tp), await self._committed_on_broker(tp))
            known = [o for o in candidates if o is not None]
            offset = max(known) if known else started.get(tp)
            if offset is not None:
                self.committed[tp] = offset
                self.driver.seek(tp, offset)
        tables.rewind(assigned)


async def _until_it_works(attempt: Callable[[], Awaitable[Any]], what: str) -> Any:
    """``await attempt()`` until it returns, backing off from 0.5 s to 5 s between
    failures (the brokers may be back soon); each failure is logged as a try to ``what``."""
    delay = 0.5
    while True:
        try:
            return await attempt()
        except Exception as exc:  # noqa: BLE001 - retried, and logged
            logger.warning(
                "Exactly-once: could not %s (%r); trying again in %.1f s", what, exc, delay
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)
