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
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

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
    """Override ``on_start``/``on_stop``; tasks from ``spawn`` are cancelled on stop."""

    def __init__(self, app: Any = None) -> None:
        self.app = app
        self.started = False
        self._tasks = BackgroundTasks(self)

    async def on_start(self) -> None:
        """Called when the service starts."""

    async def on_stop(self) -> None:
        """Called when the service stops, before its spawned tasks are cancelled."""

    async def start(self) -> None:
        if not self.started:
            self.started = True
            await self.on_start()

    async def stop(self) -> None:
        if not self.started:
            return
        self.started = False
        await self.on_stop()
        await self._tasks.cancel()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any]:
        """Run ``coro`` in the background until the service stops; a crash is logged."""
        return self._tasks.spawn(coro, name)

    def supervise(self, loop: Callable[[], Awaitable[Any]], name: str) -> asyncio.Task[Any]:
        """Run the long-running ``loop()`` until the service stops, restarted (with
        back-off) whenever it crashes; see :class:`Supervised`."""
        return self._tasks.supervise(loop, name)


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
