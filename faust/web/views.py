"""Views: what answers a request to a path of the worker's web server.

A view is a :class:`View` subclass with a method per HTTP verb, or an ``async def``
that answers every verb; both get the path's ``{parameters}`` as keyword arguments::

    @app.page('/greet/{name}/')
    async def greet(self, request, name):
        return self.json({'hello': name})

    @app.page('/orders/')
    class Orders(faust.View):
        async def get(self, request):
            return self.json(list(orders.values()))

        async def post(self, request):
            order = await self.read_json(request)
            await orders_topic.send(value=order)
            return self.json({'queued': True}, status=202)

A method returns a response (``self.json``, ``self.text``, ...); anything else it
returns is sent as JSON. A verb the view has no method for answers 405 with ``Allow``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

if TYPE_CHECKING:
    from ..app import App
    from .server import WebServer

from ..serializers import json_default

__all__ = ["View", "Request", "Response", "HTTPError", "json_response", "HTTP_METHODS"]

Request = web.Request
Response = web.Response

#: The verbs a view may answer, each by the method of that name (lowercase).
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

_MISSING: Any = object()


def json_response(
    value: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """``value`` as a JSON response (Records as their fields, datetimes as ISO text)."""
    body = orjson.dumps(value, default=json_default, option=orjson.OPT_NON_STR_KEYS)
    return web.Response(body=body, status=status, headers=headers, content_type="application/json")


def error_response(
    status: int, reason: str, *, headers: Mapping[str, str] | None = None, **extra: Any
) -> web.Response:
    """The JSON error every failed request gets: ``{"error": reason, **extra}``."""
    return json_response({"error": reason, **extra}, status=status, headers=headers)


class View:
    """A page of the worker's web server; subclass it with ``get``, ``post``, ``put``,
    ``patch`` or ``delete`` methods, each ``async def method(self, request, **params)``.

    ``self.app`` is the app, ``self.web`` its web server. Example::

        @app.page('/count/{word}/')
        class Count(faust.View):
            async def get(self, request, word):
                return self.json({'word': word, 'count': counts[word]})
    """

    #: Set by ``app.page``: the view's name and path.
    view_name: str = ""
    view_path: str = ""

    def __init__(self, app: App, web: WebServer) -> None:
        self.app = app
        self.web = web

    @classmethod
    def from_handler(cls, fun: Callable[..., Any]) -> type[View]:
        """A View class answering every verb with ``fun(self, request, **params)``."""
        if not inspect.iscoroutinefunction(fun):
            raise TypeError(
                f"A page must be an async function or a View subclass, not {fun!r}: "
                "write `async def name(self, request): ...`."
            )
        handlers = {method.lower(): fun for method in HTTP_METHODS}
        namespace = {**handlers, "__doc__": fun.__doc__, "__module__": fun.__module__}
        return type(fun.__name__, (cls,), namespace)

    @classmethod
    def check(cls) -> None:
        """``TypeError`` unless each verb method is an ``async def``."""
        for verb in HTTP_METHODS:
            method = getattr(cls, verb.lower(), None)
            if method is not None and not inspect.iscoroutinefunction(method):
                raise TypeError(
                    f"{cls.__name__}.{verb.lower()} must be an async method: "
                    f"`async def {verb.lower()}(self, request, **params)`."
                )

    @classmethod
    def allowed_methods(cls) -> list[str]:
        """The verbs this view answers (``HEAD`` with ``GET``)."""
        allowed = [m for m in HTTP_METHODS if callable(getattr(cls, m.lower(), None))]
        return allowed + ["HEAD"] if "GET" in allowed else allowed

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        """Call the method for ``request``'s verb with the path's parameters."""
        verb = "GET" if request.method == "HEAD" else request.method
        handler = getattr(self, verb.lower(), None) if verb in HTTP_METHODS else None
        if not callable(handler):
            allowed = self.allowed_methods()
            raise web.HTTPMethodNotAllowed(request.method, allowed)
        result = await handler(request, **request.match_info)
        if isinstance(result, web.StreamResponse):
            return result
        return self.json(result)

    # -- responses
    def json(
        self, value: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> web.Response:
        """``value`` as JSON (Records, datetimes, Decimals, sets included)."""
        return json_response(value, status=status, headers=headers)

    def text(
        self,
        value: str,
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        content_type: str = "text/plain",
    ) -> web.Response:
        return web.Response(text=value, status=status, headers=headers, content_type=content_type)

    def html(
        self, value: str, *, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> web.Response:
        return self.text(value, status=status, headers=headers, content_type="text/html")

    def bytes(
        self,
        value: bytes,
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        content_type: str = "application/octet-stream",
    ) -> web.Response:
        return web.Response(body=value, status=status, headers=headers, content_type=content_type)

    def error(self, status: int, reason: str, **extra: Any) -> web.Response:
        """A JSON error: ``self.error(409, 'order exists', order_id=oid)`` answers
        ``{"error": "order exists", "order_id": ...}`` with status 409."""
        return error_response(status, reason, **extra)

    def notfound(self, reason: str = "not found", **extra: Any) -> web.Response:
        return error_response(404, reason, **extra)

    # -- reading the request
    async def read_json(self, request: web.Request) -> Any:
        """The request body as JSON; a body that is not JSON answers 400 at once."""
        body = await request.read()
        if not body.strip():
            raise bad_request("expected a JSON body, got an empty one")
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise bad_request(f"malformed JSON body: {exc}") from None

    def query_param(
        self,
        request: web.Request,
        name: str,
        *,
        type: Callable[[str], Any] = str,
        default: Any = _MISSING,
    ) -> Any:
        """Query parameter ``name`` converted with ``type``; missing (without a
        ``default``) or not convertible answers 400 naming it.

        Example: ``limit = self.query_param(request, 'limit', type=int, default=10)``.
        """
        raw = request.query.get(name)
        if raw is None:
            if default is _MISSING:
                raise bad_request(f"missing query parameter {name!r}")
            return default
        try:
            return type(raw)
        except (TypeError, ValueError):
            kind = getattr(type, "__name__", str(type))
            raise bad_request(f"query parameter {name!r}: expected {kind}, got {raw!r}") from None


class HTTPError(Exception):
    """Raise it in a view to answer a JSON error at once (aiohttp's ``web.HTTPNotFound``
    and the like work too)::

        raise HTTPError(404, 'no such order', order_id=order_id)
    """

    def __init__(self, status: int, reason: str, **extra: Any) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.extra = extra

    def response(self) -> web.Response:
        return error_response(self.status, self.reason, **self.extra)


def bad_request(reason: str) -> HTTPError:
    return HTTPError(400, reason)
