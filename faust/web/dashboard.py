"""The live dashboard at ``/dashboard``.

Placeholder: the contract is :func:`add_routes`, which the web server calls.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web


def add_routes(web_app: web.Application, app: Any) -> None:
    """Add ``/dashboard`` and its JSON endpoint to ``web_app`` (a placeholder adds none)."""
