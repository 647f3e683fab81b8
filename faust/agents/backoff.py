"""How long an agent's supervisor waits before restarting an agent that raised.

Two cases, so that one fault never makes another wait:

* The agent raised on an event: that event is handed again after
  ``agent_restart_backoff * 2 ** (attempt - 1)`` seconds (0.5, 1, 2, ... by default). The
  wait belongs to the event: the next event that fails starts again at the first wait,
  however many failed before it.
* The agent raised with no event in hand (before its first event, say): the wait doubles
  with each such crash in a row and goes back to the first after a healthy run.
"""

from __future__ import annotations

from ..services import Backoff

__all__ = ["MAX_RESTART_BACKOFF", "HEALTHY_RUN", "restart_backoff", "retry_delay"]

#: No wait grows past this (seconds): a fault that clears is noticed within 30 s.
MAX_RESTART_BACKOFF = 30.0

#: An agent that ran this long (seconds) since its restart counts as healthy: its next
#: crash waits the first back-off again. Longer than the longest wait (30 s) would keep
#: an agent that recovered paying for an old fault; 10 s is many times the first wait
#: (0.5 s), so an agent crashing in a loop still spends nearly all its time backing off
#: and logs at most six crashes a minute at the first wait.
HEALTHY_RUN = 10.0


def retry_delay(first: float, attempt: int) -> float:
    """The wait before handing an event again after its ``attempt``-th failure (1-based)."""
    return min(first * 2 ** max(attempt - 1, 0), MAX_RESTART_BACKOFF)


def restart_backoff(first: float) -> Backoff:
    """The back-off of an agent's crashes with no event in hand (see the module doc).

    Example::

        backoff = restart_backoff(0.5)
        backoff.next(ran_for=0.1)    # 0.5
        backoff.next(ran_for=0.1)    # 1.0
        backoff.next(ran_for=60.0)   # 0.5: it ran healthy in between
    """
    return Backoff(first, MAX_RESTART_BACKOFF, HEALTHY_RUN)
