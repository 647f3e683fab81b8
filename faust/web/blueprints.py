"""Blueprints: views declared together, mounted on an app under a path prefix.

Example::

    users = faust.Blueprint('users')

    @users.route('/', name='list')
    class UserList(faust.View):
        async def get(self, request):
            return self.json(list(accounts.keys()))

    @users.route('/{user_id}/')
    async def user(self, request, user_id):
        return self.json(accounts[user_id])

    users.register(app, url_prefix='/users/')   # GET /users/ and /users/{user_id}/
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .views import View

if TYPE_CHECKING:
    from ..app import App

__all__ = ["Blueprint"]


@dataclass
class _BlueprintRoute:
    path: str
    handler: Any
    name: str | None
    base: type[View]
    cors_options: Mapping[str, Any] | None


class Blueprint:
    """A group of views under one name; ``register`` mounts them on an app."""

    def __init__(self, name: str, *, url_prefix: str | None = None) -> None:
        self.name = name
        self.url_prefix = url_prefix
        self.routes: list[_BlueprintRoute] = []

    def route(
        self,
        uri: str,
        *,
        name: str | None = None,
        base: type[View] = View,
        cors_options: Mapping[str, Any] | None = None,
    ) -> Callable[[Any], Any]:
        """Declare a view (an ``async def`` or a View subclass) at ``uri``, relative
        to the prefix it is registered under."""

        def _decorate(handler: Any) -> Any:
            self.routes.append(_BlueprintRoute(uri, handler, name, base, cors_options))
            return handler

        return _decorate

    def register(self, app: App, *, url_prefix: str | None = None) -> None:
        """Add the blueprint's views to ``app`` under ``url_prefix`` (or the one given
        at creation; ``/`` without either)."""
        prefix = url_prefix if url_prefix is not None else (self.url_prefix or "")
        for route in self.routes:
            app.page(
                _join(prefix, route.path),
                base=route.base,
                name=f"{self.name}.{route.name or _name_of(route.handler)}",
                cors_options=route.cors_options,
            )(route.handler)

    def __repr__(self) -> str:
        return f"<Blueprint {self.name}: {len(self.routes)} routes>"


def _name_of(handler: Any) -> str:
    return str(getattr(handler, "__name__", "view"))


def _join(prefix: str, path: str) -> str:
    """``/users/`` + ``/{id}/`` -> ``/users/{id}/``; ``/users`` + ``/`` -> ``/users/``."""
    joined = "/" + "/".join(p.strip("/") for p in (prefix, path) if p.strip("/"))
    return joined + "/" if path.endswith("/") and joined != "/" else joined
