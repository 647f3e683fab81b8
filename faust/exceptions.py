"""Errors raised by Faust.

Every error names what it is about (the setting, topic, partition, offset or key)
and what to do about it.
"""

from __future__ import annotations

__all__ = [
    "FaustError",
    "ImproperlyConfigured",
    "DecodeError",
    "KeyDecodeError",
    "ValueDecodeError",
    "EncodeError",
    "ValidationError",
    "SecurityError",
    "NotReady",
    "PartitionCountMismatch",
    "AskError",
    "SameNode",
]


class FaustError(Exception):
    """Base class of every error Faust raises."""


class ImproperlyConfigured(FaustError):
    """A setting has a value Faust cannot work with (raised at start-up)."""


class DecodeError(FaustError):
    """A message could not be deserialized."""


class KeyDecodeError(DecodeError):
    """The key of a message could not be deserialized."""


class ValueDecodeError(DecodeError):
    """The value of a message could not be deserialized."""


class EncodeError(FaustError):
    """A key or value could not be serialized."""


class ValidationError(FaustError, ValueError):
    """A model field failed validation.

    ``field`` is the name of the field, ``value`` the rejected value.
    """

    def __init__(self, reason: str, *, field: str | None = None, value: object = None) -> None:
        self.reason = reason
        self.field = field
        self.value = value
        super().__init__(reason)


class SecurityError(FaustError):
    """Credentials or certificates are missing or wrong."""


class NotReady(FaustError):
    """The app or a component was used before it was started."""


class PartitionCountMismatch(ImproperlyConfigured):
    """Two topics that must be co-partitioned have different partition counts."""


class AskError(FaustError):
    """The agent gave up on the value an ``ask()`` sent: it raised on it past its retries,
    and the event went to its dead-letter topic or was skipped (``on_error``).

    ``agent`` names the agent, ``error_type`` and ``reason`` what it raised.
    """

    def __init__(self, reason: str, *, agent: str = "", error_type: str = "") -> None:
        self.reason = reason
        self.agent = agent
        self.error_type = error_type
        super().__init__(f"Agent {agent} raised {error_type}: {reason}" if agent else reason)


class SameNode(FaustError):
    """A request was to be forwarded to the worker that is this one (Faust's name; the
    table routes here serve such a request locally instead of raising it)."""
