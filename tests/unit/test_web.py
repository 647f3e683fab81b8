"""The worker's web server: real aiohttp servers on free ports, asked with aiohttp's
client, around apps on the embedded broker."""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import faust
from faust import Worker
from faust.exceptions import ImproperlyConfigured
from faust.web import Blueprint, Request, Response, View

from ..conftest import eventually
from .test_cli_errors import Worker as WorkerProcess

_ids = itertools.count()


def _app(**options: Any) -> faust.App:
    options.setdefault("web_bind", "127.0.0.1")
    return faust.App(f"web-{next(_ids)}", topic_partitions=2, **options)


@asynccontextmanager
async def serving(app: faust.App) -> AsyncIterator[aiohttp.ClientSession]:
    """The app's web server on a free port, and a client session for its URL."""
    await app.web.start()
    try:
        async with aiohttp.ClientSession(app.web.url) as session:
            yield session
    finally:
        await app.web.stop()


async def _json(response: aiohttp.ClientResponse) -> Any:
    assert response.content_type == "application/json", await response.text()
    return await response.json()


# -- views


class Point(faust.Record):
    x: int
    y: int


async def test_function_pages_and_view_classes() -> None:
    app = _app()

    @app.page("/greet/{name}/")
    async def greet(self: View, request: Request, name: str) -> Response:
        return self.json({"hello": name, "app": self.app.conf.id})

    @app.page("/points/{x}/")
    class Points(View):
        async def get(self, request: Request, x: str) -> Response:
            return self.json(Point(int(x), 2))

        async def post(self, request: Request, x: str) -> Response:
            body = await self.read_json(request)
            return self.json({"x": x, "got": body}, status=201)

        async def delete(self, request: Request, x: str) -> Any:
            return {"deleted": x}  # not a response: sent as JSON

    @app.page("/old/")
    async def old(self: View, request: Request) -> Response:
        assert self.web is app.web
        raise web.HTTPFound("/greet/moved/")  # a redirect is no error

    @app.page("/misc/")
    class Misc(View):
        async def get(self, request: Request) -> Response:
            kind = self.query_param(request, "kind", default="text")
            if kind == "html":
                return self.html("<b>hi</b>")
            if kind == "bytes":
                return self.bytes(b"\x00\x01")
            limit = self.query_param(request, "limit", type=int, default=10)
            return self.text(f"limit={limit}", headers={"X-Limit": str(limit)})

    async with serving(app) as http:
        async with http.get("/greet/ann/") as r:
            assert r.status == 200 and await _json(r) == {"hello": "ann", "app": app.conf.id}
        async with http.get("/points/4/") as r:
            body = await _json(r)
            assert (body["x"], body["y"]) == (4, 2)
        async with http.post("/points/4/", json={"a": [1, 2]}) as r:
            assert r.status == 201 and await _json(r) == {"x": "4", "got": {"a": [1, 2]}}
        async with http.delete("/points/5/") as r:
            assert await _json(r) == {"deleted": "5"}
        async with http.head("/points/5/") as r:
            assert r.status == 200
        async with http.get("/old/") as r:
            assert r.history[0].status == 302 and (await _json(r))["hello"] == "moved"
        async with http.get("/misc/", params={"kind": "html"}) as r:
            assert r.content_type == "text/html" and await r.text() == "<b>hi</b>"
        async with http.get("/misc/", params={"kind": "bytes"}) as r:
            assert r.content_type == "application/octet-stream" and await r.read() == b"\0\1"
        async with http.get("/misc/", params={"limit": "3"}) as r:
            assert await r.text() == "limit=3" and r.headers["X-Limit"] == "3"
    assert Points.view_path == "/points/{x}/" and greet.view_name == "greet"


async def test_blueprint_mounts_its_views_under_a_prefix() -> None:
    app = _app()
    users = Blueprint("users")

    @users.route("/", name="list")
    class UserList(View):
        async def get(self, request: Request) -> Response:
            return self.json(["ann", "bob"])

    @users.route("/{user_id}/")
    async def user(self: View, request: Request, user_id: str) -> Response:
        return self.json({"user": user_id})

    users.register(app, url_prefix="/users/")
    async with serving(app) as http:
        async with http.get("/users/") as r:
            assert await _json(r) == ["ann", "bob"]
        async with http.get("/users/bob/") as r:
            assert await _json(r) == {"user": "bob"}
    assert [r.name for r in app.web.routes] == ["users.list", "users.user"]


async def test_a_page_at_a_builtin_path_replaces_the_builtin() -> None:
    app = _app()

    @app.page("/")
    async def home(self: View, request: Request) -> Response:
        return self.text("my home")

    async with serving(app) as http:
        async with http.get("/") as r:
            assert await r.text() == "my home"


def test_pages_are_declared_with_clear_errors() -> None:
    app = _app()
    with pytest.raises(TypeError, match="async function or a View subclass"):
        app.page("/sync/")(lambda self, request: None)
    with pytest.raises(TypeError, match="must subclass faust.View"):
        app.page("/cls/")(type("NotAView", (), {}))
    with pytest.raises(TypeError, match="Sync.get must be an async method"):
        app.page("/sync-class/")(type("Sync", (View,), {"get": lambda self, request: None}))
    with pytest.raises(ValueError, match="must start with '/'"):
        app.page("nope/")(View)

    @app.page("/once/")
    async def once(self: View, request: Request) -> Response:
        return self.text("")

    with pytest.raises(ValueError, match="A page at '/once/' exists already"):
        app.page("/once/")(once)
    with pytest.raises(ValueError, match="cors_options: origin '\\*': unknown option"):
        app.page("/cors/", cors_options={"*": {"allow_everything": True}})(once)


async def test_a_page_added_after_the_start_is_refused() -> None:
    app = _app()
    async with serving(app):
        with pytest.raises(RuntimeError, match="declare pages before the worker starts"):

            @app.page("/late/")
            async def late(self: View, request: Request) -> Response:
                return self.text("")


async def test_a_hung_view_does_not_hold_the_stop() -> None:
    from faust.web.server import SHUTDOWN_TIMEOUT

    app = _app()
    entered = asyncio.Event()

    @app.page("/hang/")
    async def hang(self: View, request: Request) -> Response:
        entered.set()
        await asyncio.Event().wait()
        raise AssertionError("never")

    async with serving(app) as http:
        request = asyncio.ensure_future(http.get("/hang/"))
        await asyncio.wait_for(entered.wait(), 5)
        began = time.monotonic()
        await app.web.stop()
        assert time.monotonic() - began < 2 * SHUTDOWN_TIMEOUT + 1
        with pytest.raises(aiohttp.ClientError):
            await request


# -- errors


async def test_bad_requests_get_a_4xx_json_error() -> None:
    app = _app(web_port=0)

    @app.page("/items/")
    class Items(View):
        async def get(self, request: Request) -> Response:
            return self.json({"limit": self.query_param(request, "limit", type=int)})

        async def post(self, request: Request) -> Response:
            return self.json(await self.read_json(request))

    @app.page("/forbidden/")
    async def forbidden(self: View, request: Request) -> Response:
        raise web.HTTPForbidden(text="members only")

    @app.page("/conflict/")
    async def conflict(self: View, request: Request) -> Response:
        return self.error(409, "exists", item="x")

    async with serving(app) as http:
        async with http.get("/nothing/here") as r:
            assert r.status == 404 and await _json(r) == {"error": "not found"}
        async with http.put("/items/") as r:
            assert r.status == 405 and await _json(r) == {"error": "method not allowed"}
            assert r.headers["Allow"] == "GET,HEAD,POST"
        async with http.post("/items/", data=b'{"a": ') as r:
            assert r.status == 400
            assert (await _json(r))["error"].startswith("malformed JSON body")
        async with http.post("/items/", data=b"") as r:
            assert r.status == 400 and (await _json(r))["error"].startswith("expected a JSON body")
        async with http.get("/items/") as r:
            assert await _json(r) == {"error": "missing query parameter 'limit'"}
        async with http.get("/items/", params={"limit": "ten"}) as r:
            assert r.status == 400
            assert await _json(r) == {"error": "query parameter 'limit': expected int, got 'ten'"}
        async with http.get("/forbidden/") as r:
            assert r.status == 403 and await _json(r) == {"error": "members only"}
        async with http.get("/conflict/") as r:
            assert r.status == 409 and await _json(r) == {"error": "exists", "item": "x"}
        async with http.post("/items/", data=b"x" * (3 * 1024 * 1024)) as r:
            assert r.status == 413 and "error" in await _json(r)


async def test_a_view_that_raises_is_a_500_with_an_error_id_and_a_logged_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = _app()

    @app.page("/boom/")
    async def boom(self: View, request: Request) -> Response:
        raise RuntimeError("the secret cause")

    @app.page("/forgot/")
    async def forgot(self: View, request: Request) -> None:
        self.json({})  # no return

    with caplog.at_level(logging.ERROR, logger="faust.web"):
        async with serving(app) as http:
            async with http.get("/boom/?q=1") as r:
                assert r.status == 500
                body = await _json(r)
            async with http.get("/health/live") as r:  # still answering
                assert r.status == 200
            async with http.get("/forgot/") as r:
                assert r.status == 500
    assert body.keys() == {"error", "error_id"} and body["error"] == "internal error"
    assert re.fullmatch(r"[0-9a-f]{8}", body["error_id"])
    record, forgotten = [r for r in caplog.records if r.name == "faust.web"]
    assert record.getMessage() == f"Error {body['error_id']} in GET /boom/?q=1"
    assert record.exc_info is not None and "the secret cause" in str(record.exc_info[1])
    assert forgotten.exc_info is not None
    assert "forgot returned None for GET /forgot/" in str(forgotten.exc_info[1])


# -- CORS


async def test_cors_preflight_and_headers() -> None:
    app = _app(web_cors_options={"https://shop.example": {"allow_methods": ["GET"]}})

    @app.page("/open/", cors_options={"*": {"allow_headers": "*", "expose_headers": "*"}})
    class Open(View):
        async def get(self, request: Request) -> Response:
            return self.json({}, headers={"X-Total": "3"})

        async def post(self, request: Request) -> Response:
            return self.error(422, "nope")

    @app.page("/shop/")
    class Shop(View):
        async def get(self, request: Request) -> Response:
            return self.json({})

        async def post(self, request: Request) -> Response:
            return self.json({})

    preflight = {"Origin": "https://a.example", "Access-Control-Request-Method": "POST"}
    async with serving(app) as http:
        headers = {**preflight, "Access-Control-Request-Headers": "X-Token, Content-Type"}
        async with http.options("/open/", headers=headers) as r:
            assert r.status == 200
            assert r.headers["Access-Control-Allow-Origin"] == "https://a.example"
            assert r.headers["Access-Control-Allow-Methods"] == "POST"
            assert r.headers["Access-Control-Allow-Headers"] == "x-token, content-type"
        async with http.get("/open/", headers={"Origin": "https://a.example"}) as r:
            assert r.headers["Access-Control-Allow-Origin"] == "https://a.example"
            assert r.headers["Access-Control-Expose-Headers"] == "X-Total"
        async with http.post("/open/", headers={"Origin": "https://a.example"}) as r:
            # Errors carry the headers too, so the page's script can read the reason.
            assert r.status == 422 and r.headers["Access-Control-Allow-Origin"]
        # The app-wide setting: one origin, GET only.
        async with http.options("/shop/", headers=preflight) as r:
            assert r.status == 403
            assert await _json(r) == {"error": "CORS: origin 'https://a.example' is not allowed"}
        shop = {"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"}
        async with http.options("/shop/", headers=shop) as r:
            assert r.status == 403 and "method 'POST' is not allowed" in (await _json(r))["error"]
        async with http.options(
            "/shop/", headers={**shop, "Access-Control-Request-Method": "GET"}
        ) as r:
            assert r.status == 200
        async with http.get("/shop/", headers={"Origin": "https://evil.example"}) as r:
            assert r.status == 200 and "Access-Control-Allow-Origin" not in r.headers
        # Built-in pages have the app-wide options too; no Origin: no CORS headers.
        async with http.get("/health/live") as r:
            assert "Access-Control-Allow-Origin" not in r.headers


async def test_without_cors_options_options_is_method_not_allowed() -> None:
    app = _app()
    async with serving(app) as http:
        headers = {"Origin": "https://a.example", "Access-Control-Request-Method": "GET"}
        async with http.options("/health/live", headers=headers) as r:
            assert r.status == 405 and "Access-Control-Allow-Origin" not in r.headers


# -- built-in pages


async def test_index_live_and_metrics() -> None:
    app = _app()
    async with serving(app) as http, app:
        await app.wait_ready()
        async with http.get("/") as r:
            index = await _json(r)
        async with http.get("/health/live") as r:
            assert await _json(r) == {"status": "live"}
        async with http.get("/metrics") as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
    assert index["app"] == app.conf.id and index["worker"] == app.web.url
    assert index["version"] == faust.__version__ and index["ready"] is True
    assert isinstance(index["pid"], int) and isinstance(index["assigned"], dict)


async def test_ready_only_once_partitions_are_assigned_and_tables_recovered() -> None:
    broker = f"memory://web-ready-{next(_ids)}"
    first = _app(broker=broker)
    first.Table("counts", default=int)
    async with first:
        await first.wait_ready()
    app = _app(broker=broker)
    counts = app.Table("counts", default=int)
    gate = asyncio.Event()

    @counts.on_recover
    async def hold() -> None:
        # A recovery that takes long (a big changelog): held until the test says so.
        await gate.wait()

    async with serving(app) as http:
        async with http.get("/health/ready") as r:
            assert r.status == 503
            assert await _json(r) == {"status": "not ready", "reason": "not started"}
        await app.start()
        try:
            await eventually(lambda: app.tables.recovering)
            async with http.get("/health/ready") as r:
                assert r.status == 503 and (await _json(r))["reason"].startswith("recovering")
            gate.set()
            await app.wait_ready()
            async with http.get("/health/ready") as r:
                assert r.status == 200 and await _json(r) == {"status": "ready"}
        finally:
            await app.stop()


async def test_the_ready_reason_names_the_tables_and_partitions_being_recovered() -> None:
    from .tables.test_manager import _count_first, _counting_app, _slow_reads

    broker = f"memory://web-reason-{next(_ids)}"
    app_id = f"web-reason-{next(_ids)}"
    await _count_first(broker, app_id, 100)
    app, _, _ = _counting_app(broker, app_id)
    _slow_reads(app, 0.3)  # each changelog batch: ~1.2 s for the four partitions
    async with serving(app) as http:
        await app.start()
        try:
            await eventually(lambda: app.tables.recovering)
            async with http.get("/health/ready") as r:
                reason = (await _json(r))["reason"]
            assert re.fullmatch(r"recovering tables: counts partitions \[[0-3, ]+\]", reason)
            await app.wait_ready()
        finally:
            await app.stop()


# -- settings


def test_web_settings() -> None:
    conf = faust.App("s", web_port=0, web_host="w1.example").conf
    assert conf.web_port == 0 and conf.web_enabled and conf.web_bind == "0.0.0.0"
    conf.set_web_address(port=41000)
    assert conf.canonical_url == "http://w1.example:41000"
    given = faust.App("s", canonical_url="https://lb.example/", web_port=0).conf
    given.set_web_address(port=41000)
    assert given.canonical_url == "https://lb.example"  # set by the user: kept


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"FAUST_WEB_PORT": "-1"}, "Setting web_port (from environment variable FAUST_WEB_PORT)"),
        ({"FAUST_WEB_ENABLED": "maybe"}, "expected true or false"),
        ({"FAUST_WEB_CORS_OPTIONS": "{"}, "expected a JSON object of origin -> options"),
        ({"FAUST_WEB_CORS_OPTIONS": '{"*": {"max_age": -1}}'}, "max_age must be seconds >= 0"),
        ({"FAUST_CANONICAL_URL": "w1:6066"}, "expected an http:// or https:// URL"),
    ],
)
def test_wrong_web_settings(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ImproperlyConfigured, match=re.escape(expected)):
        faust.App("bad-web")


def test_web_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAUST_WEB_ENABLED", "false")
    monkeypatch.setenv("FAUST_WEB_CORS_OPTIONS", '{"*": {"allow_methods": ["get"]}}')
    conf = faust.App("env-web").conf
    assert conf.web_enabled is False
    assert conf.web_cors_options["*"].allow_methods == ("GET",)


# -- the worker


async def test_the_worker_serves_health_while_it_starts_and_stops_the_server_last() -> None:
    app = _app(worker_shutdown_timeout=5.0)
    counts = app.Table("counts", default=int)
    topic = app.topic("jobs", value_type=int)
    recovered, finish, busy = asyncio.Event(), asyncio.Event(), asyncio.Event()
    counts.on_recover(recovered.wait)

    @app.agent(topic)
    async def slow(stream: Any) -> None:
        async for _ in stream:
            busy.set()
            await finish.wait()  # the stop waits for the event in hand

    worker = Worker(app, quiet=True)
    running = asyncio.ensure_future(worker.run())
    try:
        await eventually(lambda: app.web.started)
        async with aiohttp.ClientSession(app.web.url) as http:
            async with http.get("/health/live") as r:
                assert r.status == 200
            await eventually(lambda: app.tables.recovering)
            async with http.get("/health/ready") as r:
                assert r.status == 503
            recovered.set()
            await app.wait_ready()
            async with http.get("/health/ready") as r:
                assert r.status == 200
            await topic.send(value=1)
            await asyncio.wait_for(busy.wait(), 5)
            worker.stop()
            await eventually(lambda: app.web.stopping)
            async with http.get("/health/ready") as r:  # the app is still stopping
                assert r.status == 503 and (await _json(r))["reason"] == "stopping"
            finish.set()
        port = app.web.port
        assert port and app.conf.canonical_url == f"http://{socket.gethostname()}:{port}"
    finally:
        worker.stop()
        finish.set()
        await asyncio.wait_for(running, 10)
    assert not app.web.started
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # free again


async def test_a_client_or_a_worker_without_web_runs_no_server() -> None:
    for options in ({"client_only": True}, {"producer_only": True}, {"web_enabled": False}):
        app = _app(**options)
        worker = Worker(app, quiet=True)
        running = asyncio.ensure_future(worker.run())
        try:
            await eventually(lambda app=app: app.started)
            assert not worker.web_enabled and not app.web.started
        finally:
            worker.stop()
            await asyncio.wait_for(running, 10)


async def test_app_start_alone_runs_no_server() -> None:
    app = _app()
    async with app:
        assert not app.web.started


# -- the command line

WEBAPP = """
import faust

app = faust.App('webcli', topic_partitions=2)


@app.page('/hello/')
async def hello(self, request):
    return self.json({'hello': 'world'})
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "webcli.py").write_text(WEBAPP)
    return tmp_path


def _taken_port() -> socket.socket:
    sock = socket.socket()
    sock.bind(("0.0.0.0", 0))
    sock.listen()
    return sock


def test_a_port_in_use_stops_the_worker_with_one_line(project: Path) -> None:
    from .test_cli_errors import _faust

    with _taken_port() as sock:
        port = sock.getsockname()[1]
        result = _faust("-A", "webcli", "worker", "--web-port", str(port), cwd=project)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"faust: error: web server: port {port} on 0.0.0.0 is in use")
    assert "--web-port" in lines[0] and "web_port=" in lines[0]


def test_without_web_the_port_is_not_needed(project: Path) -> None:
    with _taken_port() as sock:
        port = str(sock.getsockname()[1])
        worker = WorkerProcess(
            ["-m", "faust", "-A", "webcli", "worker", "--without-web", "--web-port", port],
            project,
        )
        try:
            worker.wait_for("Worker ready")
            assert re.search(r"web\s+off", worker.output)
        finally:
            assert worker.stop() == 0


async def test_the_worker_command_serves_the_app_pages(project: Path) -> None:
    worker = WorkerProcess(
        ["-m", "faust", "-A", "webcli", "worker", "--web-port", "0", "--web-host", "127.0.0.1"],
        project,
    )
    try:
        await asyncio.to_thread(worker.wait_for, "Worker ready")
        match = re.search(r"web\s+(http://127\.0\.0\.1:\d+)", worker.output)
        assert match, worker.output
        async with aiohttp.ClientSession(match.group(1)) as http:
            async with http.get("/hello/") as r:
                assert await _json(r) == {"hello": "world"}
            async with http.get("/") as r:
                assert (await _json(r))["worker"] == match.group(1)
    finally:
        assert worker.stop() == 0


def test_web_imports_lazily() -> None:
    import subprocess

    code = "import sys, faust; print('aiohttp' in sys.modules); faust.View; print(faust.web)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.splitlines()[0] == "False" and "faust.web" in out.stdout
