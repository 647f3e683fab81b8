"""Flow control: pause and resume the delivery of new events to the app's streams.

``app.flow_control`` is active while the app runs. ``suspend()`` makes the consumer
fetch nothing after the fetch in progress (streams finish what is already buffered or
being fetched, commits go on); ``resume()`` lets it fetch again. Rebalances need no
suspension here: the consumer drops what is buffered for revoked partitions itself.

Example::

    app.flow_control.suspend()      # e.g. while a downstream service is down
    ...
    app.flow_control.resume()

A suspension longer than the consumer's poll interval (``broker_max_poll_interval``)
makes the group drop this member and move its partitions, as Kafka does for any consumer
that stops polling.
"""

from __future__ import annotations

import asyncio

__all__ = ["FlowControl"]


class FlowControl:
    """Active or suspended; ``await acquire()`` waits until active.

    >>> flow = FlowControl()
    >>> flow.is_active()
    True
    >>> flow.suspend(); flow.is_active()
    False
    >>> flow.resume(); flow.is_active()
    True
    """

    def __init__(self) -> None:
        self._active = asyncio.Event()
        self._active.set()

    def is_active(self) -> bool:
        return self._active.is_set()

    def suspend(self) -> None:
        """Fetch no new events until :meth:`resume`."""
        self._active.clear()

    def resume(self) -> None:
        """Fetch events again."""
        self._active.set()

    #: Faust's name for :meth:`suspend`.
    clear = suspend

    async def acquire(self) -> None:
        """Wait until active (at once if it is)."""
        await self._active.wait()

    def __repr__(self) -> str:
        return f"<FlowControl: {'active' if self.is_active() else 'suspended'}>"
