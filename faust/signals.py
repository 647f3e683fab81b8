"""Signals: hooks the app fires at points of its life (start, assignment, revoke, stop).

Example::

    @app.on_partitions_assigned.connect
    async def on_assigned(app, assigned, **kwargs):
        print('now reading', sorted(assigned))
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["Signal", "SyncSignal"]

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


class Signal:
    """Receivers are called as ``receiver(sender, *args, **kwargs)``; sync or async."""

    def __init__(self, name: str, sender: Any = None) -> None:
        self.name = name
        self.sender = sender
        self.receivers: list[Callable[..., Any]] = []

    def connect(self, fun: F) -> F:
        if fun not in self.receivers:
            self.receivers.append(fun)
        return fun

    def disconnect(self, fun: Callable[..., Any]) -> None:
        if fun in self.receivers:
            self.receivers.remove(fun)

    async def send(self, *args: Any, **kwargs: Any) -> None:
        """Call every receiver; one that raises is logged and the rest still run."""
        for receiver in list(self.receivers):
            try:
                result = receiver(self.sender, *args, **kwargs)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("Receiver %r of signal %s raised", receiver, self.name)

    def __repr__(self) -> str:
        return f"<Signal {self.name}: {len(self.receivers)} receivers>"


class SyncSignal(Signal):
    """A signal sent from synchronous code: receivers are plain functions, called at
    once (as Faust's ``on_configured``, ``on_rebalance_start`` or ``on_produce_message``).

    Example::

        @app.on_rebalance_start.connect
        def paused(app, **kwargs):
            print('rebalancing')
    """

    def connect(self, fun: F) -> F:
        if inspect.iscoroutinefunction(fun):
            raise TypeError(
                f"Signal {self.name} is sent from synchronous code: its receiver "
                f"{getattr(fun, '__qualname__', fun)!r} must be a plain def, not async def "
                "(spawn a task from it to run async work)."
            )
        return super().connect(fun)

    def send_sync(self, *args: Any, **kwargs: Any) -> None:
        """Call every receiver now; one that raises is logged and the rest still run."""
        for receiver in list(self.receivers):
            try:
                receiver(self.sender, *args, **kwargs)
            except Exception:
                logger.exception("Receiver %r of signal %s raised", receiver, self.name)
