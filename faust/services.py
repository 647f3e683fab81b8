"""Services: long-running components started and stopped with the app.

Example::

    @app.service
    class Heartbeat(faust.Service):
        async def on_start(self):
            self.spawn(self.beat())

        async def beat(self):
            while True:
                await asyncio.sleep(1.0)
                print('alive')

Long-running loops inside Faust (fetching, committing, following changelogs, expiring
windows, recovery) run under :class:`Supervised`: a crash is logged with its traceback
and the loop starts again after a back-off, instead of leaving the worker half-alive.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

__all__ = [
    "Service",
    "Backoff",
    "BackgroundTasks",
    "StopFlag",
    "Supervised",
    "cancel_tasks",
    "wait_or_cancel",
]

logger = logging.getLogger(__name__)

#: First wait before a crashed loop starts again (seconds): long enough that a loop that
#: fails at once (broker gone) does not spin, short next to a rebalance or a recovery.
RESTART_BACKOFF = 1.0
#: The back-off doubles per crash up to this, so a loop that keeps failing logs about
#: twice a minute rather than once a second.
MAX_RESTART_BACKOFF = 30.0
#: A loop that ran this long before it crashed counts as healthy: its back-off starts
#: again from RESTART_BACKOFF (one crash an hour must not wait like ten in a row).
HEALTHY_AFTER = 60.0


class Service:
    """A component started and stopped with the app (``@app.service``), or with the
    service that added it (``add_dependency``).

    Override ``on_start`` (before its tasks start), ``on_started`` (once they and its
    dependencies run) and ``on_stop``; ``@Service.task`` methods run in the background
    while it runs, ``@Service.timer(seconds)`` methods every ``seconds``. Tasks are
    cancelled on stop; ``should_stop`` and ``sleep`` let a loop end in time.

    Example::

        @app.service
        class Poller(faust.Service):
            async def on_start(self):
                self.log.info('starting')      # logs '[^Poller]: starting'

            @faust.Service.task
            async def _poll(self):
                while not self.should_stop:
                    await poll_once()
                    await self.sleep(5.0)      # returns early on stop

            @faust.Service.timer(60.0)
            async def _report(self):
                self.log.info('still polling')
    """

    def __init__(self, app: Any = None, *, beacon: Any = None, loop: Any = None) -> None:
        # beacon and loop: accepted as Faust's (mode's) Service takes them; unused here.
        self.app = app
        self.started = False
        self._tasks = BackgroundTasks(self)
        self._stopping = StopFlag()
        self._dependencies: list[Service] = []
        #: A logger whose messages start with ``[^ServiceName]: ``.
        self.log: logging.LoggerAdapter[logging.Logger] = _ServiceLog(self)

    @staticmethod
    def task(fun: M) -> M:
        """Run the decorated ``async def method(self)`` in the background while the
        service runs (cancelled on stop)."""
        fun._service_task = True  # type: ignore[attr-defined]
        return fun

    @staticmethod
    def timer(interval: float | datetime.timedelta) -> Callable[[M], M]:
        """Call the decorated ``async def method(self)`` every ``interval`` seconds
        while the service runs; a call that raises is logged and the next one runs."""
        seconds = interval.total_seconds() if isinstance(interval, datetime.timedelta) else interval
        if not isinstance(seconds, int | float) or seconds <= 0:
            raise ValueError(
                f"@Service.timer({interval!r}): the interval must be a number of seconds > 0"
            )

        def _decorate(fun: M) -> M:
            fun._service_timer = float(seconds)  # type: ignore[attr-defined]
            return fun

        return _decorate

    @property
    def label(self) -> str:
        return type(self).__name__

    shortlabel = label

    @property
    def should_stop(self) -> bool:
        """True once the service has begun to stop."""
        return self._stopping.is_set()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``, returning early when the service stops."""
        await self._stopping.sleep(seconds)

    def add_dependency(self, service: S) -> S:
        """Start ``service`` with this one (after ``on_start``) and stop it with this
        one (after ``on_stop``); returns it."""
        if service not in self._dependencies:
            self._dependencies.append(service)
            if service.app is None:
                service.app = self.app
        return service

    async def on_start(self) -> None:
        """Called when the service starts, before its tasks and dependencies."""

    async def on_started(self) -> None:
        """Called once the service runs: its tasks and dependencies have started."""

    async def on_stop(self) -> None:
        """Called when the service stops, before its spawned tasks are cancelled."""

    async def start(self) -> None:
        if self.started:
            return
        self.started = True
        self._stopping.clear()
        await self.on_start()
        for name, method in _marked_methods(type(self)):
            interval = getattr(method, "_service_timer", None)
            run = method(self) if interval is None else self._every(interval, name, method)
            self.spawn(run, name=f"{self.label}.{name}")
        for dependency in self._dependencies:
            await dependency.start()
        await self.on_started()

    async def stop(self) -> None:
        if not self.started:
            return
        self.started = False
        self._stopping.set()
        try:
            await self.on_stop()
        finally:
            # Also when on_stop raised: its tasks and dependencies must not outlive it.
            await self._tasks.cancel()
            for dependency in reversed(self._dependencies):
                await dependency.stop()

    async def _every(self, interval: float, name: str, method: Callable[..., Any]) -> None:
        while not self.should_stop:
            await self.sleep(interval)
            if self.should_stop:
                return
            try:
                await method(self)
            except Exception:
                self.log.exception("Timer %s raised; it runs again in %s s", name, interval)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any]:
        """Run ``coro`` in the background until the service stops; a crash is logged."""
        return self._tasks.spawn(coro, name)

    def supervise(self, loop: Callable[[], Awaitable[Any]], name: str) -> asyncio.Task[Any]:
        """Run the long-running ``loop()`` until the service stops, restarted (with
        back-off) whenever it crashes; see :class:`Supervised`."""
        return self._tasks.supervise(loop, name)

    def __repr__(self) -> str:
        return f"<{self.label}: {'running' if self.started else 'stopped'}>"


M = TypeVar("M", bound=Callable[..., Any])
S = TypeVar("S", bound=Service)


def _marked_methods(cls: type) -> list[tuple[str, Callable[..., Any]]]:
    """The ``@Service.task``/``@Service.timer`` methods of ``cls`` and its bases (a
    subclass's method of the same name replaces its base's)."""
    seen: dict[str, Callable[..., Any]] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if callable(value) and (
                getattr(value, "_service_task", False)
                or getattr(value, "_service_timer", None) is not None
            ):
                seen[name] = value
            elif name in seen:
                del seen[name]
    return list(seen.items())


class _ServiceLog(logging.LoggerAdapter):
    """Prefixes each message with ``[^ServiceName]: `` as Faust's services do."""

    def __init__(self, service: Service) -> None:
        super().__init__(logging.getLogger(type(service).__module__), {})
        self.service = service

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"[^{self.service.label}]: {msg}", kwargs


class StopFlag:
    """Set when its owner (an app, a service) begins to stop: ``sleep`` returns early
    then, so a loop that sleeps between rounds does not hold up the stop.

    Example::

        while not app.should_stop:
            await poll_once()
            await app.sleep(10.0)    # returns at once when the app stops
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def is_set(self) -> bool:
        return self._event.is_set()

    def set(self) -> None:
        self._event.set()

    def clear(self) -> None:
        self._event.clear()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or less if the flag is set meanwhile."""
        if self._event.is_set():
            return
        try:
            await asyncio.wait_for(self._event.wait(), timeout=max(float(seconds), 0.0))
        except TimeoutError:
            pass


class BackgroundTasks:
    """Tasks an owner (app, service, table manager) runs until it stops: each is kept
    until done, and one that crashes is logged with its owner and traceback."""

    def __init__(self, owner: Any) -> None:
        self.owner = owner
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def supervise(
        self, loop: Callable[[], Awaitable[Any]], name: str, **options: float
    ) -> asyncio.Task[Any]:
        """Run ``loop()`` under a :class:`Supervised` until cancelled (options: its
        ``backoff``, ``max_backoff``, ``healthy_after``)."""
        return self.spawn(Supervised(loop, name, owner=self.owner, **options).run(), name)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "Background task %s of %r crashed",
                task.get_name(),
                self.owner,
                exc_info=task.exception(),
            )

    async def cancel(self) -> None:
        """Cancel every task and wait until they have finished."""
        await cancel_tasks(self._tasks)


class Backoff:
    """The wait before a restart: ``first``, doubling per crash in a row up to
    ``maximum``, and ``first`` again after a run of ``healthy_after`` seconds.

    Example::

        backoff = Backoff(0.5, maximum=30.0, healthy_after=10.0)
        backoff.next(ran_for=0.1)    # 0.5
        backoff.next(ran_for=0.1)    # 1.0
        backoff.next(ran_for=60.0)   # 0.5: it ran healthy in between
    """

    __slots__ = ("first", "maximum", "healthy_after", "_next")

    def __init__(self, first: float, maximum: float, healthy_after: float) -> None:
        self.first = first
        self.maximum = maximum
        self.healthy_after = healthy_after
        self._next = first

    def next(self, ran_for: float) -> float:
        """The wait after a crash that came ``ran_for`` seconds after the last restart."""
        if ran_for >= self.healthy_after:
            self._next = self.first
        delay = self._next
        self._next = min(delay * 2, self.maximum)
        return delay


class Supervised:
    """Runs a long-running loop for as long as it is needed: when ``loop()`` raises, the
    crash is logged with its traceback and ``loop()`` is called again after a back-off
    that doubles per crash (``backoff`` up to ``max_backoff``) and starts over once the
    loop has run ``healthy_after`` seconds without crashing. It ends when ``loop()``
    returns (its work is done) or when cancelled.

    Example::

        async def follow():
            while True:
                await read_more()

        task = asyncio.create_task(Supervised(follow, 'follower').run())
        ...
        task.cancel()  # stops it
    """

    def __init__(
        self,
        loop: Callable[[], Awaitable[Any]],
        name: str,
        *,
        owner: Any = None,
        backoff: float = RESTART_BACKOFF,
        max_backoff: float = MAX_RESTART_BACKOFF,
        healthy_after: float = HEALTHY_AFTER,
    ) -> None:
        self.loop = loop
        self.name = name
        self.owner = owner
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.healthy_after = healthy_after
        #: How many times the loop crashed, and the waits before each restart.
        self.crashes = 0
        # The latest waits only: a loop may crash for days.
        self.delays: deque[float] = deque(maxlen=100)

    async def run(self) -> None:
        clock = asyncio.get_running_loop().time
        backoff = Backoff(self.backoff, self.max_backoff, self.healthy_after)
        while True:
            started = clock()
            try:
                await self.loop()
                return
            except Exception:
                ran = clock() - started
                delay = backoff.next(ran)
                self.crashes += 1
                self.delays.append(delay)
                logger.error(
                    "%s%s crashed after running %.1f s; restarting it in %.1f s "
                    "(crash %d; the traceback says why)",
                    self.name,
                    "" if self.owner is None else f" of {self.owner!r}",
                    ran,
                    delay,
                    self.crashes,
                    exc_info=True,
                )
            await asyncio.sleep(delay)


async def cancel_tasks(tasks: set[asyncio.Task[Any]] | list[asyncio.Task[Any]]) -> None:
    """Cancel tasks and wait until they have finished."""
    pending = [t for t in tasks if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)


async def wait_or_cancel(tasks: list[asyncio.Task[None]], timeout: float) -> None:
    """Wait up to ``timeout`` seconds for ``tasks`` to finish; cancel the rest and wait
    until they have ended."""
    pending = [t for t in tasks if not t.done()]
    if not pending:
        return
    _, still_running = await asyncio.wait(pending, timeout=timeout)
    for task in still_running:
        task.cancel()
    if still_running:
        await asyncio.wait(still_running)
