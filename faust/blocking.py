"""The blocking detector: a warning, with the stack, when the event loop stops turning.

Every agent, timer and web view of a worker shares one asyncio loop. A call that does not
await (``time.sleep``, a slow synchronous HTTP request, a CPU-bound loop) stalls all of
them: commits stop, the consumer misses its poll interval, health checks time out. The
detector makes that visible. An asyncio task notes the time every quarter of the timeout;
a daemon thread checks the note, and when the loop has not turned for ``timeout``
seconds it logs one warning with the stack of the loop's thread at that moment, which
names the blocking call. It warns again only after the loop has turned.

It is off by default; ``blocking_timeout=`` (or ``faust worker --blocking-timeout``) turns
it on. It costs one timer callback per quarter timeout, nothing per event.

Example::

    app = faust.App('orders', blocking_timeout=2.0)
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback

__all__ = ["BlockingDetector"]

logger = logging.getLogger(__name__)


class BlockingDetector:
    """Watches the running loop from a thread; warns when it blocks for ``timeout`` s.

    >>> BlockingDetector(0.5).timeout
    0.5
    """

    def __init__(self, timeout: float) -> None:
        if not timeout > 0:
            raise ValueError(f"blocking_timeout must be > 0 seconds, not {timeout!r}")
        self.timeout = float(timeout)
        #: How many times the loop was found blocked (one per blocked episode).
        self.detections = 0
        self._beat = time.monotonic()
        self._loop_thread_id = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start watching the running loop (call from the loop's thread)."""
        self._loop_thread_id = threading.get_ident()
        self._beat = time.monotonic()
        self._stop.clear()
        self._task = asyncio.ensure_future(self._heartbeat())
        self._thread = threading.Thread(
            target=self._watch, name="faust-blocking-detector", daemon=True
        )
        self._thread.start()

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._thread is not None:
            # The thread wakes at least every quarter timeout; never wait long for it.
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join, self.timeout)
            self._thread = None

    async def _heartbeat(self) -> None:
        interval = self.timeout / 4
        while True:
            self._beat = time.monotonic()
            await asyncio.sleep(interval)

    def _watch(self) -> None:
        interval = self.timeout / 4
        warned_for = None
        while not self._stop.wait(interval):
            beat = self._beat
            stalled = time.monotonic() - beat
            if stalled >= self.timeout and warned_for != beat:
                warned_for = beat
                self.detections += 1
                logger.warning(
                    "The event loop has been blocked for %.1f s (blocking_timeout=%.1f): "
                    "a call that does not await holds up every agent, timer, commit and "
                    "web request. Where the loop's thread is now:\n%s",
                    stalled,
                    self.timeout,
                    self._loop_stack(),
                )

    def _loop_stack(self) -> str:
        frame = sys._current_frames().get(self._loop_thread_id)
        if frame is None:
            return "  (the loop's thread has ended)"
        return "".join(traceback.format_stack(frame))
