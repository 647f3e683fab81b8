"""Which worker owns a key, and forwarding a request to it (table and topic routes).

Placeholder: the contract is :func:`add_routes`, which the web server calls to add the
built-in ``/router/`` and ``/table/{name}/{key}/`` pages.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web


def add_routes(web_app: web.Application, app: Any) -> None:
    """Add this module's built-in pages to ``web_app`` (a placeholder adds none)."""
