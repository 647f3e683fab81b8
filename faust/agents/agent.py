"""Agents: an ``async def`` over a stream, run by a supervisor.

The supervisor runs ``concurrency`` actors over one queue (each event goes to one of
them), or one actor per partition with ``isolated_partitions=True``. An actor that
raises is logged with its traceback and the event it was on, and restarted after a
back-off (see ``backoff.py``). The event it raised on is handed to the restarted actor
first, up to ``retries`` times; after that ``on_error`` decides: write it to the agent's
dead-letter topic and move on, stop the worker, or skip it. Values an async-generator
agent yields go to its sinks and, for ``ask()``, back to the caller.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..channels import Channel, EventQueue
from ..deadletter import error_headers
from ..events import Event, _current_event
from ..exceptions import ImproperlyConfigured
from ..naming import module_name
from ..services import Backoff, wait_or_cancel
from ..settings import check_on_error
from ..streams import ParkedQueues, Stream
from ..topics import legal_topic_name
from ..transport.base import TP
from .backoff import restart_backoff, retry_delay
from .replies import CORRELATION_ID, REPLY_ERROR, REPLY_TO, encode_error_reply, encode_reply
from .supervisors import strategy_name

if TYPE_CHECKING:
    from ..channels import Headers
    from ..serializers import CodecArg
    from ..transport.base import RecordMetadata, SendCallback
    from .replies import ReplyPromise
    from .testing import AgentTestWrapper

__all__ = ["Agent"]

logger = logging.getLogger(__name__)

AgentFun = Callable[[Stream], Any]


class Agent:
    """A stream processor declared with ``@app.agent(topic)``.

    ``retries`` (default: the ``agent_retries`` setting) is how many times the event the
    agent raised on is handed again to the restarted agent; then ``on_error`` (default:
    the ``on_error`` setting) applies: ``'dead_letter'`` writes it to
    ``dead_letter_topic`` (default ``{app_id}-{agent name}-dlq``), ``'stop'`` stops the
    worker, ``'skip'`` only logs and counts it.

    Without a channel the agent reads the topic ``{app_id}-{agent name}`` (as in Faust),
    where the agent's name is ``name`` or ``{module}.{function}``, the module being the
    one ``faust -A`` imports even when the app runs as ``python app.py``.

    Example::

        @app.agent(orders_topic)
        async def process(orders):
            async for order in orders:
                yield order.amount * 2

        await process.send(value=Order(amount=3))
        doubled = await process.ask(value=Order(amount=3))   # 6
    """

    def __init__(
        self,
        fun: AgentFun,
        *,
        app: Any,
        name: str | None = None,
        channel: str | Channel | None = None,
        concurrency: int = 1,
        sink: Iterable[Any] | None = None,
        isolated_partitions: bool = False,
        help: str | None = None,
        key_type: Any = None,
        value_type: Any = None,
        retries: int | None = None,
        on_error: str | None = None,
        dead_letter_topic: str | None = None,
        supervisor_strategy: Any = None,
    ) -> None:
        # functools.partial(async_def, ...) binds leading arguments (Faust programs pass
        # channels this way): named, documented and checked as the function it wraps.
        target = fun
        while isinstance(target, functools.partial):
            target = target.func
        label = name or target.__qualname__
        # A plain ``def`` would only fail once started, and then be restarted forever.
        # (Unwrapped: a decorator made with functools.wraps over an async def is fine.)
        call = target if inspect.isroutine(target) else getattr(target, "__call__", target)  # noqa: B004
        call = inspect.unwrap(call)
        if not (inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call)):
            raise TypeError(
                f"Agent {label}: an agent must be an async def (async def "
                f"{getattr(target, '__name__', 'agent')}(stream): async for value in stream: "
                "...), not a plain def."
            )
        if retries is None:
            retries = app.conf.agent_retries
        elif isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"Agent {label}: retries must be an int >= 0 (0: no retry)")
        if on_error is None:
            on_error = app.conf.on_error
        else:
            check_on_error(on_error, f"Agent {label}")
        if not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"Agent {label}: concurrency must be >= 1")
        if isolated_partitions and concurrency != 1:
            raise ValueError(
                f"Agent {label}: isolated_partitions runs one actor per "
                "partition and cannot be combined with concurrency > 1."
            )
        self.fun = fun
        self.app = app
        #: 'one_for_one', 'one_for_all' or 'crashing' (see ``supervisors.py``).
        self.supervisor_strategy = strategy_name(supervisor_strategy, label)
        # The same name however the app was started (python app.py, faust -A app).
        self.name = name or f"{module_name(target.__module__)}.{target.__qualname__}"
        self.concurrency = concurrency
        self.isolated_partitions = isolated_partitions
        self.retries: int = retries
        self.on_error: str = on_error
        self._dead_letter_topic = dead_letter_topic
        self.help = help or (inspect.getdoc(target) or "").split("\n")[0]
        self._sinks: list[Any] = list(sink or ())
        if channel is None or isinstance(channel, str):
            # Named {app_id}-{agent name} as in Faust: two apps whose agents share a module
            # and name must not read each other's events. Only a name the user wrote is
            # checked strictly: a derived one ('<locals>' in a qualname) is made legal.
            topic_name = channel or legal_topic_name(f"{app.conf.id}-{self.name}")
            channel = app.topic(topic_name, key_type=key_type, value_type=value_type)
        assert isinstance(channel, Channel)
        self.channel: Channel = channel
        self._actors: list[asyncio.Task[None]] = []
        self._queues: list[EventQueue] = []
        self._streams: set[Stream] = set()
        self._partition_actors: dict[int, tuple[EventQueue, asyncio.Task[None]]] = {}
        self._stopping = False
        # Set by test_context(): what the agent yields, and the events it gives up on,
        # are recorded there (dead letters are kept there instead of sent).
        self._test: AgentTestWrapper | None = None
        # Events the agent raised on and that are being retried -> failures so far
        # (shared by the actors: with concurrency > 1 another actor may take the retry).
        self._attempts: dict[Event, int] = {}
        self.__doc__ = target.__doc__
        self.__name__ = getattr(target, "__name__", self.name)
        self.__wrapped__ = fun

    def __call__(self, stream: Any) -> Any:
        """Call the agent function directly (useful in tests)."""
        return self.fun(stream)

    def add_sink(self, sink: Any) -> None:
        if sink not in self._sinks:
            self._sinks.append(sink)

    def stream(self, channel: Channel | None = None, **kwargs: Any) -> Stream:
        """A new stream over the agent's channel (or ``channel``), as in Faust: it sees
        every event sent there from now on, beside the agent's own actors.

        Example::

            async for value in my_agent.stream():
                print(value)
        """
        return (self.channel if channel is None else channel).stream(**kwargs)

    def info(self) -> dict[str, Any]:
        """What the agent was declared with, as Faust's ``Agent.info()`` gives it
        (``Agent(**agent.info())`` declares the same agent again).

        Example::

            assert my_agent.info()['concurrency'] == 1
        """
        return {
            "app": self.app,
            "fun": self.fun,
            "name": self.name,
            "channel": self.channel,
            "concurrency": self.concurrency,
            "sink": list(self._sinks),
            "on_error": self.on_error,
            "supervisor_strategy": self.supervisor_strategy,
            "help": self.help,
            "isolated_partitions": self.isolated_partitions,
            "retries": self.retries,
            "dead_letter_topic": self._dead_letter_topic,
        }

    def cancel(self) -> None:
        """Stop the agent's actors at once (the event each holds is not acked, so it is
        read again after a restart); the app keeps running. ``await agent.start()``
        starts them again.

        Example::

            my_agent.cancel()
        """
        self._stopping = True
        for queue in self._queues:
            queue.close()
            self.channel.unsubscribe(queue)
        for queue, _ in self._partition_actors.values():
            queue.close()
        for stream in list(self._streams):
            stream.close()
        for actor in self._actors:
            actor.cancel()
        self._actors.clear()
        self._queues.clear()
        self._partition_actors.clear()

    # -- lifecycle
    async def declare_channel(self) -> None:
        """Create the agent's topic on the broker (in-process channels need nothing)."""
        declare = getattr(self.channel, "declare", None)
        if declare is not None:
            await declare()

    async def start(self) -> None:
        self._stopping = False
        if self.isolated_partitions:
            self._start_isolated()
            return
        queue = self.channel.subscribe()
        self.app.sensors.watch(queue, self.name)
        self._queues.append(queue)
        loop = asyncio.get_running_loop()
        for index in range(self.concurrency):
            self._actors.append(
                loop.create_task(self._supervise(queue), name=f"agent:{self.name}#{index}")
            )

    def _start_isolated(self) -> None:
        router = _PartitionRouter(self)
        self.app.conductor.subscribe(self.channel, router)
        self._queues.append(router)  # type: ignore[arg-type]

    def _actor_for_partition(self, partition: int) -> EventQueue:
        entry = self._partition_actors.get(partition)
        if entry is None:
            queue = EventQueue(self.channel.maxsize)
            self.app.sensors.watch(queue, self.name)
            # The actor's stream.active_partitions, as in Faust (the router sends it only
            # these, so the stream needs no filter).
            tps = {TP(topic, partition) for topic in getattr(self.channel, "topics", ())}
            task = asyncio.get_running_loop().create_task(
                self._supervise(queue, active_partitions=tps),
                name=f"agent:{self.name}[{partition}]",
            )
            entry = self._partition_actors[partition] = (queue, task)
            self._actors.append(task)
        return entry[0]

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        """Forget retries of revoked partitions and stop their actors
        (``isolated_partitions`` agents)."""
        for event in [e for e in self._attempts if e.message.tp in revoked]:
            # Its new owner reads it again from the committed offset.
            del self._attempts[event]
        if not self.isolated_partitions:
            return
        topics = set(getattr(self.channel, "topics", ()))
        for tp in revoked:
            if tp.topic in topics and tp.partition in self._partition_actors:
                queue, task = self._partition_actors.pop(tp.partition)
                queue.close()
                await wait_or_cancel([task], self.app.conf.worker_shutdown_timeout)

    async def stop(self) -> None:
        """Let each actor finish the event in hand, then stop it."""
        self._stopping = True
        for queue in self._queues:
            queue.close()
        for queue, _ in self._partition_actors.values():
            queue.close()
        for stream in list(self._streams):
            stream.close()
        conf = self.app.conf
        # stream_wait_empty=False: cancel at once; the event is read again after restart.
        wait = conf.worker_shutdown_timeout if conf.stream_wait_empty else 0
        await wait_or_cancel(self._actors, wait)
        for queue in self._queues:
            unsubscribe = getattr(self.channel, "unsubscribe", None)
            if unsubscribe is not None:
                unsubscribe(queue)
        self._actors.clear()
        self._queues.clear()
        self._partition_actors.clear()
        self._attempts.clear()

    @property
    def dead_letter_topic(self) -> str:
        """Where events this agent gives up on go (``on_error='dead_letter'``)."""
        return str(self.app.dead_letters.topic_name(self.name, self._dead_letter_topic))

    async def _supervise(
        self,
        queue: EventQueue,
        *,
        in_process: bool = False,
        active_partitions: set[TP] | None = None,
    ) -> None:
        """Run the agent over ``queue``, restarting it after a crash; ``in_process``:
        its streams repartition without the broker (``test_context()``);
        ``active_partitions``: the only partitions ``queue`` gets (isolated actors)."""
        loop = asyncio.get_running_loop()
        backoff = restart_backoff(self.app.conf.agent_restart_backoff)
        retry: list[Event] = []
        # The queues of the streams a run derived (group_by, through), kept for the next
        # run: what they buffer is processed after a restart, not dropped, and their
        # topics never go without a reader (whose fetched records would count as done).
        parked = ParkedQueues()
        try:
            while not self._stopping and not queue.closed:
                for event in reversed(retry):
                    # First in line: before any later event of its partition
                    # (concurrency=1 keeps partition order through retries).
                    # (An EventQueue is falsy when empty: compare with None.)
                    target = parked.queue_for(event.message.topic)
                    if target is None:
                        target = queue
                    target.buffer.appendleft(event)
                    if target.stats is not None:
                        target.stats.requeued += 1
                retry = []
                # An event left current by the last run must not be taken for this run's.
                _current_event.set(None)
                stream: Stream[Any] = Stream(
                    self.app, queue, channel=self.channel, in_process=in_process
                )
                stream._agent_name = self.name
                stream._parked = parked
                if active_partitions is not None:
                    stream.active_partitions = active_partitions
                self._streams.add(stream)
                started = loop.time()
                failed: list[Event] = []
                try:
                    await self._run(stream)
                    return
                except asyncio.CancelledError:
                    raise
                except _RestartedWithSibling:
                    # One-for-all: another actor crashed; this one restarts at once with
                    # the event it was about to get still first in line.
                    continue
                except Exception as exc:
                    error = exc
                    failed = self._failed_events(stream)
                finally:
                    self._streams.discard(stream)
                    parked.park_derived(stream)
                if self.supervisor_strategy == "crashing":
                    self._crash_worker(error, failed)
                    return
                if self.supervisor_strategy == "one_for_all":
                    for sibling in list(self._streams):
                        await sibling.throw(_RestartedWithSibling())
                retryable = all(
                    self._reads(event) or parked.queue_for(event.message.topic) is not None
                    for event in failed
                )
                delay, retry = self._on_crash(
                    error, failed, backoff, loop.time() - started, retryable=retryable
                )
                if delay is None:
                    return
                if delay:
                    await asyncio.sleep(delay)
                # Events of partitions revoked meanwhile are left to their new owner.
                retry = [event for event in retry if event in self._attempts]
        finally:
            parked.close()

    def _crash_worker(self, exc: Exception, events: list[Event]) -> None:
        """``CrashingSupervisor``: stop the worker; ``events`` are not committed."""
        self.app.on_agent_error(self, exc)
        self.app.sensors.on_agent_error(self.name, exc)
        where = f" on {_describe(events)}" if events else ""
        logger.error("Agent %s crashed%s: %r", self.name, where, exc, exc_info=exc)
        self.app.crash(
            f"Agent {self.name} crashed{where}: {exc!r}; supervisor_strategy="
            "CrashingSupervisor stops the worker. The event was not committed and is "
            "processed again after the restart."
        )

    async def throw(self, exc: BaseException) -> None:
        """Raise ``exc`` in the agent's ``async for`` (every actor), as if its stream
        had raised it; the agent's supervisor handles it like any crash.

        Example::

            await my_agent.throw(RuntimeError('reload'))
        """
        for stream in list(self._streams):
            await stream.throw(exc)

    def _failed_events(self, stream: Stream) -> list[Event]:
        """The events the agent raised on: the list ``take()`` handed it, or the one it
        holds, or one a processor was on (none if they were acked)."""
        taken = _taken_events(stream)
        if taken:
            return [event for event in taken if not event.acked]
        event = stream._prev
        if event is None or event.acked:
            event = _current_event.get()
        if event is None or event.acked:
            return []
        stream._prev = None
        return [event]

    def _on_crash(
        self,
        exc: Exception,
        events: list[Event],
        backoff: Backoff,
        ran_for: float,
        *,
        retryable: bool = True,
    ) -> tuple[float | None, list[Event]]:
        """Log and count the crash; return the wait before the restart (None: do not
        restart) and the events to hand the restarted agent first (``retryable``: the
        restarted agent reads the queues ``events`` came from)."""
        app = self.app
        app.on_agent_error(self, exc)
        app.sensors.on_agent_error(self.name, exc)
        if app.txn_gate is not None and not isinstance(exc, ImproperlyConfigured):
            # Exactly-once: the open transaction holds part of the events' effects; it
            # is aborted and the worker reads again from its last commit, so the events
            # come back with the others (each counts as a retry), not retried here.
            where = f" on {_describe(events)}" if events else ""
            logger.error(
                "Agent %s raised%s: %r. Aborting the open transaction; the events since "
                "the last commit are processed again.",
                self.name,
                where,
                exc,
                exc_info=exc,
            )
            if app.consumer is not None:
                app.consumer.request_rewind(
                    f"agent {self.name!r} raised {exc!r}{where}",
                    failed=[
                        (e.message.topic, e.message.partition, e.message.offset) for e in events
                    ],
                    retries=self.retries,
                )
            return 0.0, []
        if isinstance(exc, ImproperlyConfigured):
            # A configuration error happens again on every event: stop the worker with
            # the message instead of restarting forever (the event is not committed).
            logger.error("Agent %s crashed: %r", self.name, exc, exc_info=exc)
            app.crash(str(exc))
            return None, []
        if not events:
            delay = backoff.next(ran_for)
            logger.error(
                "Agent %s crashed: %r. Restarting it in %.2f s.",
                self.name,
                exc,
                delay,
                exc_info=exc,
            )
            return delay, []
        # Forget events retried before and processed since (crashes are rare: no per-event
        # cost for the bookkeeping).
        for done in [e for e in self._attempts if e.acked]:
            del self._attempts[done]
        # A take() list fails and is retried as a whole: its first event counts for it.
        attempts = self._attempts.get(events[0], 0) + 1
        where = _describe(events)
        if attempts <= self.retries and retryable:
            self._attempts.update(dict.fromkeys(events, attempts))
            delay = retry_delay(app.conf.agent_restart_backoff, attempts)
            app.error_counts.retried += 1
            logger.error(
                "Agent %s raised on %s: %r. Retry %d of %d in %.2f s.",
                self.name,
                where,
                exc,
                attempts,
                self.retries,
                delay,
                # The traceback once per event; retries add one line each.
                exc_info=exc if attempts == 1 else None,
            )
            return delay, events
        for event in events:
            self._attempts.pop(event, None)
        tried = f" after {attempts} attempts" if attempts > 1 else ""
        if self.on_error == "stop":
            logger.error("Agent %s raised on %s%s: %r", self.name, where, tried, exc, exc_info=exc)
            app.crash(
                f"Agent {self.name} raised {exc!r} on {where}{tried}; on_error='stop' stops "
                "the worker. Fix the cause and restart: the event was not committed and is "
                "processed again."
            )
            return None, []
        for event in events:
            if self._test is not None:
                self._test.gave_up(event)
            if self.on_error == "dead_letter":
                target = self._dead_letter(event, exc, attempts)
                outcome = f"wrote it to dead-letter topic {target!r}"
            else:
                event.ack()
                app.error_counts.skipped += 1
                outcome = "skipped it (on_error='skip')"
            self._reply_error(event, exc, outcome)
        logger.error(
            "Agent %s raised on %s%s: %r; %s and moved on.",
            self.name,
            where,
            tried,
            exc,
            outcome if len(events) == 1 else outcome.replace(" it ", " them "),
            exc_info=exc,
        )
        return 0.0, []

    def _reply_error(self, event: Event, exc: BaseException, outcome: str) -> None:
        """Tell an ``ask()`` waiting for ``event`` that the agent gave up on it."""
        message = event.message
        reply_to = message.header(REPLY_TO)
        if reply_to is None or self._test is not None:
            return
        self.app.topic(reply_to.decode()).send_soon(
            key=message.header(CORRELATION_ID) or b"",
            value=encode_error_reply(self.name, exc, outcome),
            headers=[(REPLY_ERROR, b"1")],
            key_serializer="raw",
            value_serializer="raw",
        )

    def _reads(self, event: Event) -> bool:
        """True if ``event`` came from this agent's own queue (not a derived stream's,
        such as a group_by's repartition topic)."""
        topics = getattr(self.channel, "topics", None) or (self.channel.name,)
        return event.message.topic in topics

    def _dead_letter(self, event: Event, exc: BaseException, attempts: int) -> str:
        """Hand ``event`` to the dead-letter topic; it is acked (its offset committable)
        once the dead letter holds its message."""
        target = self.dead_letter_topic
        if self._test is not None:
            self._test.dead_letters.append((event, exc))
            event.ack()
            return target
        message = event.message
        key = value = None
        if message.key is None and message.value is None:
            # An in-process channel's event has no bytes: encode what it carries.
            key, value = self._encode(event)
        headers = [
            # Replayed from the dead-letter topic later, it must not answer an ask()
            # that was answered with the error already (or whose asker is gone).
            header
            for header in error_headers(message, exc, agent=self.name, attempts=attempts)
            if header[0] not in (REPLY_TO, CORRELATION_ID)
        ]
        self.app.dead_letters.submit(
            target, message, headers, release=event.ack, key=key, value=value
        )
        return target

    def _encode(self, event: Event) -> tuple[bytes | None, bytes | None]:
        schema = self.channel.schema
        try:
            return schema.encode_key(self.app, event.key), schema.encode_value(
                self.app, event.value
            )
        except Exception:  # noqa: BLE001 - a dead letter is better than none
            return None, repr(event.value).encode()

    async def _run(self, stream: Stream) -> None:
        result = self.fun(stream)
        if inspect.isasyncgen(result):
            async for value in result:
                await self._on_yield(value)
        elif inspect.isawaitable(result):
            await result
        else:
            raise TypeError(
                f"Agent {self.name} must be an 'async def' function (optionally with "
                f"'yield'), but calling it returned {result!r}."
            )

    async def _on_yield(self, value: Any) -> None:
        for sink in self._sinks:
            if isinstance(sink, Agent | Channel):
                await sink.send(value=value)
            else:
                result = sink(value)
                if inspect.isawaitable(result):
                    await result
        event = _current_event.get()
        if event is None:
            return
        if self._test is not None:
            self._test.results[event.message.offset] = value
            self._test._yielded.add(event.message.offset)
        # The event's own headers: a repartition (group_by, through) forwards them, so
        # the agent that finally yields answers, once, whichever topic it read.
        reply_to = event.message.header(REPLY_TO)
        if reply_to is not None:
            correlation_id = event.message.header(CORRELATION_ID) or b""
            await self.app.topic(reply_to.decode()).send(
                key=correlation_id,
                value=encode_reply(value),
                key_serializer="raw",
                value_serializer="raw",
            )

    # -- sending to the agent
    async def send(
        self,
        *,
        key: Any = None,
        value: Any = None,
        partition: int | None = None,
        timestamp: float | None = None,
        headers: Headers = None,
        key_serializer: CodecArg | None = None,
        value_serializer: CodecArg | None = None,
        callback: SendCallback | None = None,
        reply_to: str | None = None,
        correlation_id: str | None = None,
        force: bool = False,
    ) -> RecordMetadata:
        """Send a value to the agent's topic (or channel); the arguments are those of
        :meth:`Topic.send <faust.Topic.send>`, plus ``reply_to`` (a topic name) and
        ``correlation_id`` for a reply.

        Example::

            await adder.send(value=Add(a=1, b=2))
        """
        if reply_to is not None:
            headers = {
                **dict(headers or {}),
                REPLY_TO: reply_to.encode(),
                CORRELATION_ID: (correlation_id or uuid.uuid4().hex).encode(),
            }
        return await self.channel.send(
            key=key,
            value=value,
            partition=partition,
            timestamp=timestamp,
            headers=headers,
            key_serializer=key_serializer,
            value_serializer=value_serializer,
            callback=callback,
            force=force,
        )

    async def cast(
        self,
        value: Any = None,
        *,
        key: Any = None,
        partition: int | None = None,
        timestamp: float | None = None,
        headers: Headers = None,
    ) -> None:
        """Send a value to the agent without waiting for a reply.

        Example::

            await adder.cast(Add(a=1, b=2))
        """
        await self.send(
            key=key, value=value, partition=partition, timestamp=timestamp, headers=headers
        )

    async def ask(
        self,
        value: Any = None,
        *,
        key: Any = None,
        partition: int | None = None,
        timestamp: float | None = None,
        headers: Headers = None,
        reply_to: str | None = None,
        correlation_id: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Send a value and wait for the value the agent yields for it.

        Replies come back on this app's reply topic (the ``reply_to`` setting); a
        ``reply_to`` argument may only name that topic. If the agent gives up on the
        value (it raised past its retries; the event was dead-lettered or skipped), the
        ask raises :class:`~faust.exceptions.AskError` saying what it raised.

        Example::

            total = await adder.ask(value=Add(a=1, b=2))
        """
        promise = await self.ask_nowait(
            value,
            key=key,
            partition=partition,
            timestamp=timestamp,
            headers=headers,
            reply_to=reply_to,
            correlation_id=correlation_id,
        )
        try:
            return await asyncio.wait_for(promise, timeout) if timeout else await promise
        finally:
            promise.cancel()  # no longer waited for: forgotten (no-op once answered)

    async def ask_nowait(
        self,
        value: Any = None,
        *,
        key: Any = None,
        partition: int | None = None,
        timestamp: float | None = None,
        headers: Headers = None,
        reply_to: str | None = None,
        correlation_id: str | None = None,
        force: bool = False,
    ) -> ReplyPromise:
        """Send a value with reply headers and return at once with a
        :class:`~faust.agents.ReplyPromise`: await it for the value the agent yields
        (it raises :class:`~faust.exceptions.AskError` if the agent gives up on it).

        Example::

            promise = await adder.ask_nowait(Add(a=1, b=2))
            ...
            total = await promise
        """
        own = self.app.conf.reply_to
        if reply_to is not None and reply_to != own:
            raise ValueError(
                f"reply_to={reply_to!r}: replies are read from this app's reply topic "
                f"{own!r} only. Leave reply_to out, or set the app's reply_to setting."
            )
        replies = await self.app.maybe_start_replies()
        promise = replies.promise(correlation_id or uuid.uuid4().hex)
        try:
            await self.send(
                key=key,
                value=value,
                partition=partition,
                timestamp=timestamp,
                headers=headers,
                reply_to=own,
                correlation_id=promise.correlation_id,
                force=force,
            )
        except BaseException:
            promise.cancel()
            raise
        return promise

    async def map(
        self, values: Iterable[Any] | AsyncIterator[Any], key: Any = None
    ) -> AsyncIterator[Any]:
        """Ask for each value, yielding the replies in order (requests go out at once)."""
        pending = await self._ask_many([(key, v) async for v in _aiter(values)])
        for fut in pending:
            yield await fut

    async def kvmap(self, items: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> dict[Any, Any]:
        """Ask for each ``(key, value)``; return ``{key: reply}``."""
        pairs = list(items.items() if isinstance(items, Mapping) else items)
        pending = await self._ask_many(pairs)
        return {key: await fut for (key, _), fut in zip(pairs, pending, strict=True)}

    async def join(self, values: Iterable[Any], key: Any = None) -> list[Any]:
        """Ask for each value; return the replies as a list, in order."""
        pending = await self._ask_many([(key, v) for v in values])
        return [await fut for fut in pending]

    async def kvjoin(self, items: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> list[Any]:
        """Ask for each ``(key, value)``; return the replies as a list, in order.

        Example::

            totals = await adder.kvjoin([('a', Add(a=1, b=2)), ('b', Add(a=3, b=4))])
        """
        pairs = list(items.items() if isinstance(items, Mapping) else items)
        pending = await self._ask_many(pairs)
        return [await fut for fut in pending]

    async def _ask_many(self, pairs: list[tuple[Any, Any]]) -> list[asyncio.Future[Any]]:
        replies = await self.app.maybe_start_replies()
        futures = []
        for key, value in pairs:
            correlation_id = uuid.uuid4().hex
            futures.append(replies.expect(correlation_id))
            await self.send(
                key=key,
                value=value,
                reply_to=self.app.conf.reply_to,
                correlation_id=correlation_id,
            )
        return futures

    # -- testing
    def test_context(
        self,
        channel: Channel | None = None,
        supervisor_strategy: Any = None,
        on_error: str | None = None,
        **kwargs: Any,
    ) -> AgentTestWrapper:
        """Run this agent without a broker in a test (``group_by()`` and ``through()``
        included: they repartition inside the test). ``results`` holds, per offset put,
        what the agent yielded for the event, or None if it processed it without
        yielding.

        As in Faust, ``channel`` (values sent to it reach the agent too, beside what
        ``put()`` gives it), ``supervisor_strategy``, ``on_error`` and other options of
        the agent (``concurrency``, ``sink``, ``retries``, ...) run a copy of the agent
        declared with them instead.

        Example::

            async with my_agent.test_context() as agent:
                event = await agent.put(Order(amount=3))
                assert agent.results[event.message.offset] == 6
        """
        from .testing import AgentTestWrapper

        changes = dict(kwargs)
        if channel is not None:
            changes["channel"] = channel
        if supervisor_strategy is not None:
            changes["supervisor_strategy"] = supervisor_strategy
        if on_error is not None:
            changes["on_error"] = on_error
        if not changes:
            return AgentTestWrapper(self)
        options = {**self.info(), **changes}
        fun = options.pop("fun")
        return AgentTestWrapper(type(self)(fun, **options), channel=channel)

    def __repr__(self) -> str:
        return f"<Agent {self.name}>"


class _RestartedWithSibling(Exception):
    """Thrown into an actor's stream when a sibling crashed (one-for-all)."""


class _PartitionRouter:
    """Routes each partition's events to that partition's own actor."""

    closed = False

    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    async def put_many(self, events: list[Event]) -> None:
        if not events:
            return
        queue = self.agent._actor_for_partition(events[0].message.partition)
        await queue.put_many(events)

    def discard(self, predicate: Callable[[Event], bool]) -> int:
        return sum(q.discard(predicate) for q, _ in self.agent._partition_actors.values())

    def close(self) -> None:
        self.closed = True


async def _aiter(values: Iterable[Any] | AsyncIterator[Any]) -> AsyncIterator[Any]:
    if isinstance(values, AsyncIterator):
        async for value in values:
            yield value
    else:
        for value in values:
            yield value


def _describe(events: list[Event]) -> str:
    """Where ``events`` came from, for a log line (one event, or a take() list)."""
    first = events[0].message
    if len(events) == 1:
        return f"topic={first.topic} partition={first.partition} offset={first.offset}"
    places = ", ".join(sorted({f"{e.message.topic}[{e.message.partition}]" for e in events}))
    return f"{len(events)} events of a take() list ({places}) from {_describe(events[:1])}"


def _taken_events(stream: Stream) -> list[Event] | None:
    """The list ``take()`` handed the agent from ``stream`` or a stream derived from it."""
    if stream._taken:
        taken, stream._taken = stream._taken, None
        return taken
    for child in stream._children:
        found = _taken_events(child)
        if found:
            return found
    return None
