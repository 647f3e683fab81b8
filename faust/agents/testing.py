"""Running an agent in a test, without a broker: ``agent.test_context()``."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..channels import EventQueue
from ..events import Event
from ..services import wait_or_cancel
from ..transport.base import Message

if TYPE_CHECKING:
    from .agent import Agent

__all__ = ["AgentTestWrapper"]


class AgentTestWrapper:
    """What ``agent.test_context()`` yields: put values in, read what the agent yielded."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.results: dict[int, Any] = {}
        #: Events the agent gave up on, with the error (``on_error='dead_letter'``): kept
        #: here instead of being sent to the dead-letter topic.
        self.dead_letters: list[tuple[Event, BaseException]] = []
        self.processed_offset = -1
        self._queue = EventQueue(agent.channel.maxsize)
        self._offset = 0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> AgentTestWrapper:
        self.agent._results = self.results
        self.agent._dead_letter_sink = self.dead_letters
        self.agent._stopping = False
        self._task = asyncio.get_running_loop().create_task(self.agent._supervise(self._queue))
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self._queue.close()
        for stream in list(self.agent._streams):
            stream.close()
        if self._task is not None:
            await wait_or_cancel([self._task], 5.0)
        self.agent._results = None
        self.agent._dead_letter_sink = None

    async def put(
        self,
        value: Any = None,
        key: Any = None,
        *,
        partition: int = 0,
        timestamp: float | None = None,
        headers: Mapping[str, bytes] | None = None,
        wait: bool = True,
    ) -> Event:
        """Deliver one event to the agent; with ``wait``, return once it is processed."""
        loop = asyncio.get_running_loop()
        processed: asyncio.Future[None] = loop.create_future()
        topic = getattr(self.agent.channel, "name", self.agent.name)
        message = Message(
            topic,
            partition,
            self._offset,
            loop.time() if timestamp is None else timestamp,
            None,
            None,
            list((headers or {}).items()),
            on_done=lambda _: _resolve(processed),
        )
        self._offset += 1
        message.refcount = 1
        event = Event(self.agent.app, key, value, message)
        await self._queue.put_many([event])
        if wait:
            # The stream acks an event when the agent asks for the next one, which it
            # does as soon as it is done with this one (or gave up on it after its retries).
            assert self._task is not None, "use put() inside 'async with agent.test_context()'"
            await asyncio.wait([processed, self._task], return_when=asyncio.FIRST_COMPLETED)
            self.processed_offset = message.offset
        return event


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
