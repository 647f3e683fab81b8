"""Run a Faust app inside an ASGI web service (FastAPI, Starlette, ...), or an ASGI
application inside a Faust worker.

The app and the web server share one process and one event loop, so an endpoint can
send to a topic or read a table directly. Two directions:

1. **The ASGI server drives**: uvicorn serves your FastAPI application and the app
   starts and stops with its lifespan::

        import faust
        from fastapi import FastAPI
        from faust.contrib.asgi import faust_lifespan

        app = faust.App('hello', broker='kafka://localhost:9092', web_enabled=False)
        greetings = app.topic('greetings', value_type=str)

        api = FastAPI(lifespan=faust_lifespan(app))

        @api.post('/greet')
        async def greet(text: str):
            await greetings.send(value=text)
            return {'ok': True}

   Run it with ``uvicorn myapp:api``; ``faust -A myapp worker`` still runs it as a
   plain worker.

2. **The worker drives**: ``faust -A myapp worker`` serves the ASGI application from
   inside the worker, once its tables are recovered::

        serve_asgi(app, api, port=8000)

The app starts as ``faust worker`` starts it (the same code: stores opened and the data
directory locked, agents, tables, timers and the consumer started, then it waits until
its partitions are assigned and its tables recovered) and stops as gracefully. Its own
web server runs only when ``web_enabled`` is on (it is by default: set
``web_enabled=False`` when the ASGI server is the only one wanted).

Nothing here imports FastAPI or Starlette; :func:`serve_asgi` imports uvicorn
(``pip install 'faust[fastapi]'``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import socket
import sys
import weakref
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from ..exceptions import ImproperlyConfigured
from ..services import Service
from ..worker import Worker

__all__ = [
    "LoopMismatch",
    "AsgiService",
    "FaustLifespanMiddleware",
    "bind_to_running_loop",
    "faust_app_running",
    "faust_lifespan",
    "serve_asgi",
]

#: The loop each app is bound to (by :func:`bind_to_running_loop`).
_bound: weakref.WeakKeyDictionary[Any, asyncio.AbstractEventLoop] = weakref.WeakKeyDictionary()
#: Apps started by :func:`faust_app_running` and not yet stopped.
_running: weakref.WeakSet[Any] = weakref.WeakSet()


class LoopMismatch(ImproperlyConfigured):
    """The app is bound to another event loop, one that is still running."""


def bind_to_running_loop(app: Any) -> asyncio.AbstractEventLoop:
    """Bind ``app`` to the running event loop and return the loop.

    An app runs on one loop at a time: binding it to a second loop while the first still
    runs (another thread's, or another server's) raises :class:`LoopMismatch`. An app
    whose earlier loop has stopped may be bound again.

    Example::

        async def main():
            loop = bind_to_running_loop(app)
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        raise ImproperlyConfigured(
            f"Faust app {app.conf.id!r}: no event loop is running here. Start the app "
            "from a coroutine on the loop that serves it (an ASGI lifespan: "
            "FastAPI(lifespan=faust_lifespan(app))), not at import time."
        ) from None
    previous = _bound.get(app)
    if previous is not None and previous is not loop and previous.is_running():
        raise LoopMismatch(
            f"Faust app {app.conf.id!r} runs on another event loop that is still running "
            f"({previous!r}): an app runs on one loop at a time. Stop it there first, or "
            "declare a second app for this loop."
        )
    _bound[app] = loop
    return loop


@contextlib.asynccontextmanager
async def faust_app_running(
    app: Any,
    *,
    finalize: bool = True,
    discover: bool | None = None,
    stop_timeout: float | None = None,
    on_crash: Callable[[str], None] | None = None,
) -> AsyncIterator[Any]:
    """Start ``app`` on the running loop as a worker would, yield it once it is ready,
    and stop it gracefully on exit.

    Use it in a lifespan of your own (:func:`faust_lifespan` is this and nothing else)::

        @asynccontextmanager
        async def lifespan(api: FastAPI):
            async with faust_app_running(app):
                models['answer'] = load_model()
                yield
                models.clear()

        api = FastAPI(lifespan=lifespan)

    Arguments:
        app: the Faust app.
        finalize: send the app's configure signals first (its start does it anyway).
        discover: import the ``autodiscover`` modules first; None or True (the worker
            always does it: set ``autodiscover`` on the app to choose).
        stop_timeout: seconds the stop may take (None: as long as it needs).
        on_crash: called with the reason when the app cannot go on (as ``faust
            worker`` exits 1 then). By default the reason is printed as one line and
            the process is sent SIGTERM: the server shuts down gracefully, stopping
            the app, and a process manager sees the exit and restarts it.

    Raises :class:`~faust.exceptions.ImproperlyConfigured` when the app is already
    running (started twice), and :class:`LoopMismatch` when it runs on another loop.
    """
    if discover is False:
        raise ImproperlyConfigured(
            "faust_app_running(discover=False): the app imports its autodiscover modules "
            "whenever it starts, as `faust worker` does. Leave discover out and set "
            "autodiscover=False on the app instead."
        )
    if app in _running or app.started:
        raise ImproperlyConfigured(
            f"Faust app {app.conf.id!r} is already running: start it once per process "
            "(one faust_app_running/faust_lifespan, or one worker)."
        )
    bind_to_running_loop(app)
    _running.add(app)
    try:
        if finalize:
            app.finalize()
        worker = Worker(app, quiet=True, embedded=True)
        app.on_crash = on_crash or _ServerShutdown()
        async with contextlib.AsyncExitStack() as stack:
            try:
                await stack.enter_async_context(worker.running())
            except ImproperlyConfigured as exc:
                # Its message names the setting and the fix; the frames inside the
                # worker would only bury it in the server's log.
                raise exc.with_traceback(None) from None
            try:
                yield app
            finally:
                stopping = stack.pop_all()
                if stop_timeout is None:
                    await stopping.aclose()
                else:
                    await asyncio.wait_for(stopping.aclose(), timeout=stop_timeout)
    finally:
        app.on_crash = None
        _running.discard(app)


class _ServerShutdown:
    """The default ``on_crash``: one line, and SIGTERM to this process, once (a second
    SIGTERM would make the server exit without its graceful shutdown)."""

    def __init__(self) -> None:
        self.sent = False

    def __call__(self, reason: str) -> None:
        if self.sent:
            return
        self.sent = True
        print(f"faust: error: {reason}; shutting the server down", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGTERM)


def faust_lifespan(
    app: Any, *, opentelemetry: bool | None = None, **kwargs: Any
) -> Callable[..., Any]:
    """An ASGI ``lifespan`` that runs ``app`` while the server runs (the keyword
    arguments are :func:`faust_app_running`'s)::

        api = FastAPI(lifespan=faust_lifespan(app))

    If the app cannot start, the server's startup fails with the app's error.
    ``opentelemetry=True`` (instrumenting the ASGI app) is not available here.
    """
    if opentelemetry:
        raise ImproperlyConfigured(
            "faust_lifespan(opentelemetry=True): OpenTelemetry instrumentation is not "
            "part of this Faust. Instrument the ASGI application yourself "
            "(opentelemetry-instrumentation-fastapi) and leave opentelemetry out."
        )

    @contextlib.asynccontextmanager
    async def lifespan(*args: Any, **lifespan_kwargs: Any) -> AsyncIterator[None]:
        async with faust_app_running(app, **kwargs):
            # None, not the app: Starlette would take a value as the lifespan's state.
            yield None

    return lifespan


class FaustLifespanMiddleware:
    """ASGI middleware that runs a Faust app with the server's lifespan, for a
    framework whose lifespan cannot be given a function::

        asgi = FaustLifespanMiddleware(framework_app, app)   # uvicorn mymodule:asgi

    It answers the lifespan protocol itself (the wrapped application does not receive
    the lifespan events) and passes every other request on.
    """

    def __init__(self, asgi_app: Any, faust_app: Any, **kwargs: Any) -> None:
        self.asgi_app = asgi_app
        self.faust_app = faust_app
        self.faust_options = kwargs

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") != "lifespan":
            await self.asgi_app(scope, receive, send)
            return
        message = await receive()
        if message["type"] != "lifespan.startup":
            raise RuntimeError(f"ASGI lifespan: expected lifespan.startup, got {message!r}")
        phase = "startup"
        try:
            async with faust_app_running(self.faust_app, **self.faust_options):
                await send({"type": "lifespan.startup.complete"})
                phase = "shutdown"
                message = await receive()
        except Exception as exc:
            await send({"type": f"lifespan.{phase}.failed", "message": f"faust: {exc}"})
            return
        await send({"type": "lifespan.shutdown.complete"})


class AsgiService(Service):
    """Serves an ASGI application with uvicorn from inside the worker, on its loop; made
    by :func:`serve_asgi`. It starts serving once the app is ready (tables recovered)
    and stops serving before the app stops."""

    asgi_app: Any = None
    host: str = "127.0.0.1"
    port: int = 8000
    uvicorn_options: Mapping[str, Any] = {}

    async def on_start(self) -> None:
        try:
            import uvicorn
        except ImportError:
            raise ImproperlyConfigured(
                "serve_asgi() needs uvicorn: pip install 'faust[fastapi]'"
            ) from None

        class _Server(uvicorn.Server):
            # The worker handles SIGINT/SIGTERM and stops this service then.
            @contextlib.contextmanager
            def capture_signals(self) -> Any:
                yield

            async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                await super().startup(sockets=sockets)
                if sockets and self.started:
                    # uvicorn says where it listens ("Uvicorn running on ...") only
                    # for a socket it bound itself.
                    self._log_started_message(sockets)

        options = dict(self.uvicorn_options)
        # Bound now, not once the app is ready: a port in use stops the worker at start
        # with the fix (uvicorn would log it and exit the process later). Not when
        # uvicorn is told to use a Unix socket or a file descriptor instead.
        self._sockets: list[socket.socket] | None = None
        if "uds" not in options and "fd" not in options:
            sock = _listen(self.host, self.port)
            self._sockets = [sock]
            self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.asgi_app, host=self.host, port=self.port, **options)
        self._server = _Server(config)
        self._serving = asyncio.ensure_future(self._serve())

    async def _serve(self) -> None:
        await self.app.wait_ready()
        await self._server.serve(sockets=self._sockets)

    async def on_stop(self) -> None:
        self._server.should_exit = True
        if not self._server.started:
            self._serving.cancel()
        await asyncio.gather(self._serving, return_exceptions=True)
        for sock in self._sockets or ():
            sock.close()

    @property
    def url(self) -> str:
        """Where the application is served."""
        return f"http://{self.host}:{self.port}"


def _listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (port 0: a free one), for uvicorn to listen
    on; a clear ImproperlyConfigured if it cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            fix = "pass another to serve_asgi(app, asgi_app, port=...) (0 takes a free one)"
            raise ImproperlyConfigured(
                f"serve_asgi: port {port} on {host} is in use: {fix}"
            ) from None
        raise ImproperlyConfigured(
            f"serve_asgi: cannot listen on {host}:{port} ({exc.strerror or exc}): check the "
            "host and port given to serve_asgi()"
        ) from None
    return sock


def serve_asgi(
    app: Any,
    asgi_app: Any,
    *,
    host: str | None = None,
    port: int | None = None,
    **uvicorn_options: Any,
) -> type[AsgiService]:
    """Serve ``asgi_app`` with uvicorn from inside ``app``'s worker (``faust -A module
    worker``), on ``host:port`` (127.0.0.1:8000 by default); returns the service class
    registered with the app. Keyword arguments go to ``uvicorn.Config``::

        api = FastAPI()
        serve_asgi(app, api, port=8000)
    """
    service = type(
        "AsgiService",
        (AsgiService,),
        {
            "asgi_app": asgi_app,
            "host": host or AsgiService.host,
            "port": AsgiService.port if port is None else port,
            "uvicorn_options": dict(uvicorn_options),
        },
    )
    app.service(service)
    return service
