"""The worker: runs an app until Ctrl-C or SIGTERM, then stops it gracefully.

The first signal starts a graceful stop (agents finish the event in hand, pending sends
are flushed, offsets committed); a second one during the stop exits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

from .blocking import BlockingDetector
from .exceptions import ImproperlyConfigured
from .logs import setup_logging
from .stores.datadir import open_stores

__all__ = ["Worker"]

logger = logging.getLogger("faust.worker")

# Container allocations between two young-generation collections (CPython's default
# is 700). A stream allocates a few objects per event and keeps a buffer of events
# alive, so at 700 the collector runs every ~100 events and mostly re-scans buffered
# events that are still in use; at 20,000 the embedded benchmark runs ~30% faster.
# Garbage without cycles is freed by reference counting either way.
GC_YOUNG_THRESHOLD = 20_000


def tune_gc() -> None:
    """Tune the garbage collector for a worker process (the worker calls this).

    Objects alive after start-up (modules, classes, the app) live as long as the
    process: freezing them keeps full collections from walking them again and again.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def install_uvloop() -> bool:
    """Use uvloop's event loop when it is installed (faster I/O and callbacks)."""
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


def dump_tasks() -> None:
    """Print every asyncio task to stderr, with the chain of awaits it is suspended in
    (outermost first): where a stuck task waits."""
    for task in asyncio.all_tasks():
        print(f"--- {task.get_name()}", file=sys.stderr)
        for line in _await_chain(task.get_coro()):
            print(f"    {line}", file=sys.stderr)
    sys.stderr.flush()


def _await_chain(awaitable: Any, limit: int = 30) -> list[str]:
    """Where ``awaitable`` (a coroutine or async generator) and what it awaits, in
    turn, are suspended: ``file:line in function``; the innermost may be a future."""
    lines: list[str] = []
    while awaitable is not None and len(lines) < limit:
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "ag_frame", None)
        frame = frame or getattr(awaitable, "gi_frame", None)
        if frame is None:
            lines.append(repr(awaitable)[:200])
            break
        code = frame.f_code
        lines.append(f"{code.co_filename}:{frame.f_lineno} in {code.co_name}")
        awaitable = (
            getattr(awaitable, "cr_await", None)
            or getattr(awaitable, "ag_await", None)
            or getattr(awaitable, "gi_yieldfrom", None)
        )
    return lines


class Worker:
    """Runs ``app`` in this process.

    Example::

        Worker(app, loglevel='info').execute_from_commandline()
    """

    def __init__(
        self,
        app: Any,
        *,
        loglevel: str | int = "info",
        logfile: str | None = None,
        quiet: bool = False,
        log_format: str | None = None,
        loop: str | None = None,
        debug: bool = False,
        embedded: bool = False,
    ) -> None:
        self.app = app
        #: Another program owns the process and its loop (an ASGI server): no GC
        #: tuning and no banner (:meth:`run`, which handles signals, is not used).
        self.embedded = embedded
        #: ``asyncio``, ``uvloop``, or None: uvloop when it is installed.
        self.loop = loop
        #: asyncio debug mode: slow callbacks (blocking calls) are logged.
        self.debug = debug
        self.loglevel = loglevel
        self.logfile = logfile
        #: ``text`` or ``json``; None: the app's ``log_format`` setting.
        self.log_format = log_format
        self.quiet = quiet
        self._stop_requested: asyncio.Event | None = None
        self._signals = 0
        self.exit_code = 0

    def execute_from_commandline(self) -> int:
        """Run until stopped; returns the process exit code (1 on a configuration error)."""
        try:
            setup_logging(
                self.loglevel,
                self.logfile,
                log_format=self._log_format(),
                logging_config=self.app.conf.logging_config,
            )
            for handler in self.app.conf.loghandlers:
                logging.getLogger().addHandler(handler)
        except (ValueError, ImproperlyConfigured) as exc:
            print(f"faust: error: {exc}", file=sys.stderr)
            return 1
        uvloop = self.loop != "asyncio" and install_uvloop()
        if self.loop == "uvloop" and not uvloop:
            print("faust: error: --loop uvloop: uvloop is not installed", file=sys.stderr)
            return 1
        try:
            asyncio.run(self.run(uvloop=uvloop), debug=self.debug)
            return self.exit_code
        except ImproperlyConfigured as exc:
            # One line naming the setting and the fix; a traceback would bury it.
            print(f"faust: error: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 1

    async def run(self, uvloop: bool = False) -> None:
        loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, self._on_signal, signum)
            except (NotImplementedError, RuntimeError):  # not the main thread
                pass
        try:
            # `kill -USR1 <pid>` prints what every task is waiting for (a stuck worker).
            loop.add_signal_handler(signal.SIGUSR1, dump_tasks)
        except (NotImplementedError, RuntimeError):
            pass
        self.app.on_crash = self._on_crash
        detector = None
        if self.app.conf.blocking_timeout:
            detector = BlockingDetector(self.app.conf.blocking_timeout)
            await detector.start()
        try:
            await self._run(loop, uvloop)
        finally:
            if detector is not None:
                await detector.stop()

    async def _run(self, loop: asyncio.AbstractEventLoop, uvloop: bool) -> None:
        assert self._stop_requested is not None
        async with self.running(uvloop=uvloop) as ready:
            if ready:
                await self._stop_requested.wait()

    @contextlib.asynccontextmanager
    async def running(self, uvloop: bool = False) -> AsyncIterator[bool]:
        """Start the app as a worker does and stop it gracefully on exit.

        Opens the stores (taking the data directory's lock), starts the web server when
        :attr:`web_enabled`, starts the app and waits until it is ready (its partitions
        assigned, its tables recovered). Yields True then, or False when :meth:`stop`
        was called while it started. The ASGI lifespan
        (:func:`faust.contrib.asgi.faust_app_running`) runs an app through this too.

        Example::

            async with Worker(app, embedded=True).running():
                ...  # the app runs on this event loop
        """
        if self._stop_requested is None:
            self._stop_requested = asyncio.Event()
        await self.app.on_worker_init.send()
        # Before anything starts: a store that cannot open (a missing driver, a data
        # directory another worker uses) stops the start here, with one line.
        self.app.discover()
        datadir_lock = open_stores(self.app)
        try:
            # Before the app: health checks answer while it starts and recovers, and the
            # URL it advertises to the group is the one really listened on.
            await self._start_web()
        except BaseException:
            if datadir_lock is not None:
                datadir_lock.release()
            raise
        try:
            yield await self._start_app(uvloop)
        finally:
            logger.info("Stopping worker...")
            if self.web_enabled:
                # Readiness probes fail from now on: traffic goes to other workers.
                self.app.web.stopping = True
            try:
                await self.app.stop()
            except Exception:
                logger.exception("Error while stopping the worker")
            # Last: health checks answer (not ready) until the app has stopped.
            if self.web_enabled:
                await self.app.web.stop()
            if datadir_lock is not None:
                datadir_lock.release()
            logger.info("Worker stopped")

    async def _start_app(self, uvloop: bool) -> bool:
        """Start the app and wait until it is ready; False if a stop came first."""
        assert self._stop_requested is not None
        # Ctrl-C must work while the start waits (e.g. for an unreachable broker).
        starting = asyncio.ensure_future(self.app.start())
        stopping = asyncio.ensure_future(self._stop_requested.wait())
        try:
            await asyncio.wait([starting, stopping], return_when=asyncio.FIRST_COMPLETED)
            if not starting.done():
                starting.cancel()
                logger.info("Stopped while starting")
                await asyncio.gather(starting, return_exceptions=True)
                return False
            starting.result()
            if not self.embedded:
                tune_gc()
            # JSON logs are read by programs: no free text on stderr beside them.
            if not self.quiet and not self.embedded and self._log_format() != "json":
                self._print_banner(uvloop)
            # Ready only once the assigned table partitions are recovered: whoever
            # waits for this line (a process manager, a test) may read the tables.
            if not self.app.ready:
                logger.info("Worker started; waiting for its partitions and table recovery")
                ready = asyncio.ensure_future(self.app.wait_ready())
                await asyncio.wait([ready, stopping], return_when=asyncio.FIRST_COMPLETED)
                ready.cancel()
            if stopping.done():
                return False
            logger.info("Worker ready")
            return True
        finally:
            stopping.cancel()
            if not starting.done():  # cancelled from outside (e.g. a lifespan's timeout)
                starting.cancel()

    @property
    def web_enabled(self) -> bool:
        """Whether this worker runs the web server (``web_enabled``; never for a
        client)."""
        conf = self.app.conf
        return bool(conf.web_enabled and not conf.client_only and not conf.producer_only)

    async def _start_web(self) -> None:
        if self.web_enabled:
            await self.app.web.start()

    def _log_format(self) -> str:
        return self.log_format or self.app.conf.log_format

    def stop(self) -> None:
        """Ask the worker to stop gracefully (what Ctrl-C does)."""
        if self._stop_requested is not None:
            self._stop_requested.set()

    def _on_crash(self, reason: str) -> None:
        if not self.exit_code:
            print(f"faust: error: {reason}", file=sys.stderr, flush=True)
        self.exit_code = 1
        self.stop()

    def _on_signal(self, signum: int) -> None:
        self._signals += 1
        if self._signals > 1:
            logger.warning(
                "Second %s: exiting without a graceful stop", signal.Signals(signum).name
            )
            os._exit(1)
        logger.info(
            "%s received: stopping gracefully (again to force)", signal.Signals(signum).name
        )
        self.stop()

    def _print_banner(self, uvloop: bool) -> None:
        conf = self.app.conf
        lines = [
            f"faust worker: {conf.id}",
            f"  broker    {';'.join(conf.broker)}",
            f"  store     {conf.store}",
            f"  agents    {len(self.app.agents)}",
            f"  web       {self.app.web.url if self.web_enabled else 'off'}",
            f"  loop      {'uvloop' if uvloop else 'asyncio'}",
            f"  pid       {os.getpid()}",
        ]
        print("\n".join(lines), file=sys.stderr, flush=True)
