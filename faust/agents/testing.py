"""Running an agent in a test, without a broker: ``agent.test_context()``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..channels import EventQueue
from ..events import Event
from ..services import wait_or_cancel
from ..transport.base import Message

if TYPE_CHECKING:
    from ..channels import Channel
    from .agent import Agent

__all__ = ["AgentTestWrapper"]


class AgentTestWrapper:
    """What ``agent.test_context()`` yields: put values in, read what the agent did.

    ``results`` maps the offset of each event put (``event.message.offset``) to the
    value the agent last yielded for it, or to None once the agent is done with it
    without yielding (an agent that only updates a table, or an event a filter
    dropped). An event the agent gave up on (it kept raising) has no entry; with
    ``on_error='dead_letter'`` it is in ``dead_letters``.

    ``group_by()`` and ``through()`` run inside the test, without a broker: the event
    reaches the agent's loop on the partition its new key selects, keeping its offset,
    and ``put()`` returns once the agent is done with it there.

    Example::

        async with count_orders.test_context() as agent:
            event = await agent.put(Order(account_id='1', amount=3))
            assert agent.results[event.message.offset] is None   # counted, no yield
            assert order_counts['1'] == 1
    """

    def __init__(self, agent: Agent, channel: Channel | None = None) -> None:
        self.agent = agent
        self.results: dict[int, Any] = {}
        #: Events the agent gave up on, with the error (``on_error='dead_letter'``): kept
        #: here instead of being sent to the dead-letter topic.
        self.dead_letters: list[tuple[Event, BaseException]] = []
        self.processed_offset = -1
        #: The offset the next ``put()`` gives its event (how many were put), as in Faust;
        #: with a ``channel``, its events and those sent to the channel share the numbers.
        self.sent_offset = 0
        self._gave_up: set[int] = set()  # offsets of the events the agent gave up on
        self._yielded: set[int] = set()  # offsets of the events the agent yielded for
        # A channel given to test_context(): what is sent to it reaches the agent too.
        self._channel = channel
        self._queue = EventQueue(agent.channel.maxsize) if channel is None else channel.subscribe()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> AgentTestWrapper:
        self.agent._test = self
        self.agent._stopping = False
        self._task = asyncio.get_running_loop().create_task(
            self.agent._supervise(self._queue, in_process=True)
        )
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self._queue.close()
        for stream in list(self.agent._streams):
            stream.close()
        if self._task is not None:
            await wait_or_cancel([self._task], 5.0)
        if self._channel is not None:
            self._channel.unsubscribe(self._queue)
        self.agent._test = None

    @property
    def output(self) -> list[Any]:
        """What the agent yielded, in the order of the events put (``results``' values
        for the events it yielded for).

        Example::

            async with double.test_context() as agent:
                await agent.put(2)
                await agent.put(5)
                assert agent.output == [4, 10]
        """
        return [value for offset, value in sorted(self.results.items()) if offset in self._yielded]

    async def throw(self, exc: BaseException) -> None:
        """Raise ``exc`` in the agent's ``async for`` (as :meth:`Agent.throw`)."""
        await self.agent.throw(exc)

    def gave_up(self, event: Event) -> None:
        """Called by the agent before it acks an event it gave up on (no result)."""
        self._gave_up.add(event.message.offset)

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
        """Deliver one event to the agent; with ``wait``, return once it is processed
        (also through ``group_by``/``through``). ``timestamp`` defaults to now."""
        loop = asyncio.get_running_loop()
        processed: asyncio.Future[None] = loop.create_future()
        topic = getattr(self.agent.channel, "name", self.agent.name)
        offset = self.sent_offset
        if self._channel is not None:
            # Numbered as what is sent to the channel: results are kept per offset, and
            # an event put here must not take the offset of one sent there.
            offset = self.sent_offset = next(self._channel._offsets)
        message = Message(
            topic,
            partition,
            offset,
            time.time() if timestamp is None else timestamp,
            None,
            None,
            list((headers or {}).items()),
            on_done=lambda done: self._processed(done, processed),
        )
        self.sent_offset += 1
        message.refcount = 1
        event = Event(self.agent.app, key, value, None, message)
        await self._queue.put_many([event])
        if wait:
            # The stream acks an event when the agent asks for the next one, which it
            # does as soon as it is done with this one (or gave up on it after its retries).
            assert self._task is not None, "use put() inside 'async with agent.test_context()'"
            await asyncio.wait([processed, self._task], return_when=asyncio.FIRST_COMPLETED)
            self.processed_offset = message.offset
        return event

    def _processed(self, message: Message, fut: asyncio.Future[None]) -> None:
        # Every stream that got the event (and every copy a repartition made) moved past
        # it: it is processed, with a result unless the agent gave up on it.
        if message.offset not in self._gave_up:
            self.results.setdefault(message.offset, None)
        if not fut.done():
            fut.set_result(None)
