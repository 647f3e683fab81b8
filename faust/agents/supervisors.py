"""What an agent's supervisor does when one of its actors crashes (Faust's
``supervisor_strategy``).

- :class:`OneForOneSupervisor` (the default): only the actor that crashed restarts.
- :class:`OneForAllSupervisor`: every actor of the agent restarts with it (its
  concurrency siblings, or the actors of its other partitions with
  ``isolated_partitions``); the events they held go back first in line, unacked.
- :class:`CrashingSupervisor`: a crash stops the worker (exit code 1); the event is not
  committed and is processed again after the restart.

The strategies of ``mode`` (``mode.OneForAllSupervisor``, ...) that Faust programs pass
are accepted by name.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CrashingSupervisor", "OneForAllSupervisor", "OneForOneSupervisor", "strategy_name"]


class OneForOneSupervisor:
    """Restart only the actor that crashed (the default)."""


class OneForAllSupervisor:
    """Restart every actor of the agent when one crashes."""


class CrashingSupervisor:
    """Stop the worker when an actor crashes."""


# mode's strategies by class name, and ours (mode's Forfeit* variants, which never
# restart, are not accepted: an agent that silently stops would lose its input).
_NAMES = {
    "OneForOneSupervisor": "one_for_one",
    "OneForAllSupervisor": "one_for_all",
    "CrashingSupervisor": "crashing",
}


def strategy_name(strategy: Any, agent: str) -> str:
    """``'one_for_one'``, ``'one_for_all'`` or ``'crashing'`` for ``strategy`` (a class
    above, mode's class of that name, or one of these strings; None: one_for_one)."""
    if strategy is None:
        return "one_for_one"
    if isinstance(strategy, str) and strategy in _NAMES.values():
        return strategy
    name = getattr(strategy, "__name__", None)
    if name in _NAMES:
        return _NAMES[name]
    raise ValueError(
        f"Agent {agent}: unknown supervisor_strategy {strategy!r}. Use "
        "faust.agents.OneForOneSupervisor (the default), OneForAllSupervisor or "
        "CrashingSupervisor (mode's classes of those names work too)."
    )
