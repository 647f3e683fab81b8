"""The worker's web server: one aiohttp server with the app's views and the built-ins.

The worker starts it before the app (so ``/health/live`` and ``/health/ready`` answer
while partitions are assigned and tables recover) and stops it last; ``app.start()``
alone never does. ``app.web`` is the app's server::

    server = app.web
    await server.start()        # binds web_bind:web_port (0: a free port)
    server.url                  # 'http://localhost:6066', also app.conf.canonical_url
    await server.stop()

Every failed request answers JSON: ``{"error": ...}`` with its 4xx status, or 500 with
``"error_id"`` for a view that raised; the traceback is logged (logger ``faust.web``)
with that id.
"""

from __future__ import annotations

import errno
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from ..app import App

from ..exceptions import ImproperlyConfigured
from .cors import Cors, CorsOptions, check_cors_options
from .views import HTTPError, View, error_response

__all__ = ["WebServer"]

logger = logging.getLogger("faust.web")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Route:
    """A view declared at ``path`` (``app.page``, a blueprint, a built-in page)."""

    path: str
    view: type[View]
    name: str
    cors_options: Mapping[str, CorsOptions] | None = None


def to_error_response(request: web.Request, exc: Exception) -> web.StreamResponse:
    """The JSON answer for an exception raised while handling ``request``; a redirect
    (an HTTPException below 400) is raised again for aiohttp to send."""
    if isinstance(exc, HTTPError):
        return exc.response()
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        default_text = f"{exc.status}: {exc.reason}"
        # The text the view gave (HTTPForbidden(text=...)), else the status's reason.
        given = exc.text if exc.text and exc.text != default_text else None
        reason = given or exc.reason.lower()
        headers = {k: v for k, v in exc.headers.items() if k.lower() not in _BODY_HEADERS}
        return error_response(exc.status, reason, headers=headers)
    error_id = secrets.token_hex(4)
    logger.error("Error %s in %s %s", error_id, request.method, request.path_qs, exc_info=exc)
    return error_response(500, "internal error", error_id=error_id)


_BODY_HEADERS = {"content-type", "content-length"}


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    # Errors outside views: an unknown path, a body too large, a malformed request.
    try:
        return await handler(request)
    except Exception as exc:
        return to_error_response(request, exc)


def _handler(server: WebServer, route: Route) -> Handler:
    view_cls = route.view
    options = route.cors_options
    if options is None:
        options = server.app.conf.web_cors_options
    cors = Cors(options) if options else None

    async def handle(request: web.Request) -> web.StreamResponse:
        if cors is not None and Cors.is_preflight(request):
            return cors.preflight(request, view_cls.allowed_methods())
        try:
            response = await view_cls(server.app, server).dispatch(request)
        except Exception as exc:
            response = to_error_response(request, exc)
        if cors is not None:
            cors.decorate(request, response)
        return response

    return handle


class WebServer:
    """The app's web server (``app.web``): the declared views and, once started, the
    aiohttp server answering them."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.routes: list[Route] = []
        self.web_app: web.Application | None = None
        self._runner: web.AppRunner | None = None
        #: The port it listens on once started (the real one when ``web_port`` is 0).
        self.port: int | None = None
        #: Set by the worker when it begins to stop (``/health/ready`` says so).
        self.stopping = False

    @property
    def started(self) -> bool:
        return self._runner is not None

    @property
    def url(self) -> str:
        """Where other workers reach this one (``canonical_url``)."""
        return str(self.app.conf.canonical_url)

    def add_view(
        self,
        view: type[View],
        path: str,
        *,
        name: str | None = None,
        cors_options: Mapping[str, Any] | None = None,
    ) -> None:
        """Serve ``view`` at ``path`` (``app.page`` calls this)."""
        if not path.startswith("/"):
            raise ValueError(f"Page path {path!r} must start with '/': '/{path}'.")
        if self.started:
            raise RuntimeError(
                f"Page {path!r} added after the web server started: declare pages "
                "before the worker starts (at import time, like agents)."
            )
        view.check()
        if any(r.path == path for r in self.routes):
            raise ValueError(f"A page at {path!r} exists already.")
        try:
            cors = check_cors_options(cors_options)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"Page {path!r}: cors_options: {exc}") from None
        self.routes.append(Route(path, view, name or view.__name__, cors))

    def build(self) -> web.Application:
        """The aiohttp application: the app's views, the built-in pages, then the
        routing and dashboard pages (a path the app declares itself wins)."""
        from . import dashboard, pages, routing

        web_app = web.Application(middlewares=[_errors])
        taken = set()
        for route in self.routes + pages.ROUTES:
            if route.path not in taken:
                taken.add(route.path)
                web_app.router.add_route("*", route.path, _handler(self, route))
        routing.add_routes(web_app, self.app)
        dashboard.add_routes(web_app, self.app)
        return web_app

    async def start(self) -> None:
        """Listen on ``web_bind:web_port``; a port in use raises ImproperlyConfigured
        with the fix (``--web-port``)."""
        if self.started:
            return
        conf = self.app.conf
        self.web_app = self.build()
        runner = web.AppRunner(self.web_app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, conf.web_bind, conf.web_port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ImproperlyConfigured(_bind_error(conf.web_bind, conf.web_port, exc)) from None
        self._runner = runner
        self.port = _bound_port(runner, conf.web_port)
        if conf.web_port == 0:
            # Advertised in the consumer group: the port that was really taken.
            conf.set_web_address(port=self.port)
        logger.info("Web server at %s (listening on %s:%d)", self.url, conf.web_bind, self.port)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        self.stopping = False


def _bound_port(runner: web.AppRunner, default: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return default


def _bind_error(bind: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"web server: port {port} on {bind} is in use: give another with --web-port "
            "(or web_port=..., or FAUST_WEB_PORT; 0 takes a free one), or turn the server "
            "off with --without-web"
        )
    if exc.errno == errno.EACCES:
        return (
            f"web server: no permission to listen on port {port}: give a port above 1023 "
            "with --web-port (or web_port=...)"
        )
    return (
        f"web server: cannot listen on {bind}:{port} ({exc.strerror or exc}): check web_bind "
        "(--web-bind) and web_port (--web-port)"
    )
