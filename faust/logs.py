"""How a worker logs, fitted into the logging the user has set up.

The worker adds its own handler (stderr, or ``--logfile``) only when the root logger
has none: a handler the user installed before starting the worker (JSON logs to a
collector, say) keeps receiving every record. The ``logging_config`` setting, a
:func:`logging.config.dictConfig` dict, is applied first, so it decides the handlers
when it names any. Log lines name their logger; ``log_format='json'`` (or
``faust worker --json-logs``) writes one JSON object per line instead.

aiokafka logs each step of its clients' lives at INFO (connections, coordinators,
group joins): a worker's own INFO lines say what matters, so aiokafka's loggers are
set to WARNING unless the worker logs at DEBUG (or the user set their level).
"""

from __future__ import annotations

import datetime
import json
import logging
import logging.config
import sys
from collections.abc import Mapping
from typing import Any

from .exceptions import ImproperlyConfigured
from .settings import LOG_FORMATS

__all__ = ["setup_logging", "JSONFormatter", "TEXT_FORMAT", "LOG_FORMATS"]

TEXT_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"
#: Loggers of libraries whose INFO lines are internals of a worker's INFO story.
CHATTY_LOGGERS = ("aiokafka",)

# Marks the handler the worker added, so a second setup (a test running two workers
# in one process) replaces it instead of adding another beside it.
_OURS = "_faust_handler"
# Levels the worker set on CHATTY_LOGGERS: a level other than these is the user's.
_chatty_levels_set: dict[str, int] = {}


class JSONFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message (and exception).

    Example::

        handler = logging.StreamHandler()
        handler.setFormatter(faust.logs.JSONFormatter())
        # {"time": "2026-01-05T10:00:00.123+00:00", "level": "INFO",
        #  "logger": "faust.worker", "message": "Worker ready", "pid": 4242}
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        # default=str: a message argument that JSON cannot hold is still logged.
        return json.dumps(entry, ensure_ascii=False, default=str)


def parse_level(loglevel: str | int) -> int:
    """``'info'`` -> ``logging.INFO``; ``ValueError`` naming the choices otherwise."""
    if isinstance(loglevel, int):
        level: Any = loglevel
    else:
        name = loglevel.upper()
        # Faust's short names: -l crit, -l warn.
        level = logging.getLevelName({"CRIT": "CRITICAL", "WARN": "WARNING"}.get(name, name))
    if not isinstance(level, int):
        raise ValueError(
            f"Unknown log level {loglevel!r}: use debug, info, warning, error or critical."
        )
    return level


def setup_logging(
    loglevel: str | int = "info",
    logfile: str | None = None,
    *,
    log_format: str = "text",
    logging_config: Mapping[str, Any] | None = None,
) -> None:
    """Configure logging for a worker without undoing the user's configuration.

    ``ValueError`` for a bad level or log file, ``ImproperlyConfigured`` for a
    ``logging_config`` that :func:`logging.config.dictConfig` rejects.

    Example::

        setup_logging('info', log_format='json')
    """
    level = parse_level(loglevel)
    if log_format not in LOG_FORMATS:
        raise ValueError(f"Unknown log format {log_format!r}: use one of {', '.join(LOG_FORMATS)}.")
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(handler)
        handler.close()
    # The level first, so that a logging_config stating the root level has the last word.
    root.setLevel(level)
    if logging_config:
        apply_logging_config(logging_config)
    if logfile or not root.handlers:
        root.addHandler(_our_handler(logfile, log_format))
    for name in CHATTY_LOGGERS:
        _quieten(logging.getLogger(name), root.getEffectiveLevel())


def apply_logging_config(config: Mapping[str, Any]) -> None:
    """Apply the ``logging_config`` setting with :func:`logging.config.dictConfig`.

    ``version`` defaults to 1 and ``disable_existing_loggers`` to False: dictConfig's
    own default (True) would silence every logger created before it runs, which for a
    worker is all of Faust's.
    """
    config = {"version": 1, "disable_existing_loggers": False, **config}
    try:
        logging.config.dictConfig(config)
    except (ValueError, TypeError, AttributeError, ImportError) as exc:
        cause = f" ({exc.__cause__})" if exc.__cause__ is not None else ""
        raise ImproperlyConfigured(
            f"Setting logging_config: logging.config.dictConfig rejected it: {exc}{cause}. "
            "See the configuration dictionary schema in Python's logging.config documentation."
        ) from None


def _our_handler(logfile: str | None, log_format: str) -> logging.Handler:
    handler: logging.Handler
    if logfile:
        try:
            handler = logging.FileHandler(logfile)
        except OSError as exc:
            raise ValueError(
                f"Cannot write the log file {logfile!r} (--logfile): {exc.strerror}. "
                "Create its directory or choose another path."
            ) from None
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JSONFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    setattr(handler, _OURS, True)
    return handler


def _quieten(log: logging.Logger, worker_level: int) -> None:
    """WARNING for ``log`` unless the worker logs at DEBUG; a level the user gave it
    (in ``logging_config`` or in code) is left alone."""
    if log.level not in (logging.NOTSET, _chatty_levels_set.get(log.name)):
        return
    level = logging.DEBUG if worker_level <= logging.DEBUG else logging.WARNING
    log.setLevel(level)
    _chatty_levels_set[log.name] = level
