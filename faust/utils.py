"""Small helpers of Faust's public API."""

from __future__ import annotations

import uuid as _uuid

__all__ = ["uuid"]


def uuid() -> str:
    """A new random UUID as text, e.g. for a request or correlation id.

    >>> import faust
    >>> len(faust.uuid()), faust.uuid() != faust.uuid()
    (36, True)
    """
    return str(_uuid.uuid4())
