"""Tasks that run on a schedule: ``@app.timer`` (an interval) and ``@app.crontab``."""

from __future__ import annotations

import asyncio
import datetime
import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any

from croniter import croniter

from .exceptions import ImproperlyConfigured
from .settings_validation import time_zone as _timezone

__all__ = ["Timer", "Crontab", "call_with_app", "label_of"]

logger = logging.getLogger(__name__)


def call_with_app(fun: Callable[..., Any], app: Any) -> Any:
    """Call ``fun()`` or, if it takes one argument, ``fun(app)`` (the 1.0 timer style)."""
    try:
        params = [
            p
            for p in inspect.signature(fun).parameters.values()
            if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        params = []
    return fun(app) if params else fun()


def label_of(fun: Callable[..., Any]) -> str:
    """``module.qualname`` of a function; of the function inside a ``functools.partial``.

    >>> import functools, os.path
    >>> label_of(functools.partial(os.path.join, 'a'))
    'posixpath.join'
    """
    while isinstance(fun, functools.partial):
        fun = fun.func
    module = getattr(fun, "__module__", None) or type(fun).__module__
    name = getattr(fun, "__qualname__", None) or type(fun).__qualname__
    return f"{module}.{name}"


class _Scheduled:
    """A function run over and over by one task; a failing run is logged, not fatal."""

    def __init__(self, app: Any, fun: Callable[..., Any], name: str, on_leader: bool) -> None:
        self.app = app
        self.fun = fun
        self.name = name
        self.on_leader = on_leader
        self.runs = 0

    def next_delay(self) -> float:
        raise NotImplementedError

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.next_delay())
            if self.on_leader and not self.app.is_leader():
                continue
            try:
                result = call_with_app(self.fun, self.app)
                if inspect.isawaitable(result):
                    await result
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("Scheduled task %s raised; it runs again next time", self.name)
            self.runs += 1


class Timer(_Scheduled):
    def __init__(
        self, app: Any, fun: Callable[..., Any], interval: float, name: str, on_leader: bool
    ) -> None:
        super().__init__(app, fun, name, on_leader)
        if isinstance(interval, datetime.timedelta):
            interval = interval.total_seconds()
        try:
            interval = float(interval)
        except (TypeError, ValueError):
            interval = -1.0
        if interval <= 0:
            raise ImproperlyConfigured(
                f"@app.timer for {name}: interval must be a number of seconds > 0, "
                "e.g. @app.timer(interval=1.0)"
            )
        self.interval = interval
        self._loop_start: float | None = None

    def next_delay(self) -> float:
        # Keep to the schedule: runs at start + n * interval, whatever each run took.
        now = asyncio.get_running_loop().time()
        if self._loop_start is None:
            self._loop_start = now
        elapsed = now - self._loop_start
        return self.interval - (elapsed % self.interval)


class Crontab(_Scheduled):
    def __init__(
        self,
        app: Any,
        fun: Callable[..., Any],
        cron: str,
        name: str,
        on_leader: bool,
        timezone: datetime.tzinfo | str | None = None,
    ) -> None:
        super().__init__(app, fun, name, on_leader)
        if not isinstance(cron, str) or not croniter.is_valid(cron):
            raise ImproperlyConfigured(
                f"@app.crontab for {name}: {cron!r} is not a valid cron expression; "
                "use five fields like '*/5 * * * *' (minute hour day month weekday)."
            )
        self.cron = cron
        try:
            # At declaration: a misspelt zone must not wait for the first run to fail.
            self.timezone = None if timezone is None else _timezone(timezone)
        except ValueError as exc:
            raise ImproperlyConfigured(f"@app.crontab for {name}: {exc}") from None

    def next_delay(self) -> float:
        tz = self.timezone or self.app.conf.timezone
        now = datetime.datetime.now(tz)
        next_run = croniter(self.cron, now).get_next(datetime.datetime)
        # Said once at INFO: a daily job is otherwise silent for up to a day.
        logger.log(
            logging.DEBUG if self.runs else logging.INFO,
            "Crontab %s (%r): next run at %s",
            self.name,
            self.cron,
            next_run.isoformat(),
        )
        return max((next_run - now).total_seconds(), 0.0)
