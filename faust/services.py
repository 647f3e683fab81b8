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
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

__all__ = ["Service", "BackgroundTasks", "cancel_tasks"]

logger = logging.getLogger(__name__)


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


async def cancel_tasks(tasks: set[asyncio.Task[Any]] | list[asyncio.Task[Any]]) -> None:
    """Cancel tasks and wait until they have finished."""
    pending = [t for t in tasks if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
