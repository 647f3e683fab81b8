"""faust.contrib.asgi: a Faust app run by a real uvicorn server's lifespan (FastAPI), on
the embedded broker."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

import faust
from faust.contrib.asgi import (
    AsgiService,
    FaustLifespanMiddleware,
    LoopMismatch,
    bind_to_running_loop,
    faust_app_running,
    serve_asgi,
)
from faust.exceptions import ImproperlyConfigured
from faust.stores.datadir import DataDirLock

SERVICE = textwrap.dedent(
    """
    import faust
    from fastapi import FastAPI

    from faust.contrib.asgi import faust_lifespan

    app = faust.App("asgi-test", web_enabled=False, store=STORE, datadir="data")
    words = app.topic("words", key_type=str, value_type=str)
    counts = app.Table("counts", default=int, partitions=PARTITIONS)


    @app.agent(words)
    async def count(stream):
        async for word in stream:
            counts[word] += 1
            print("counted", word, flush=True)


    api = FastAPI(lifespan=faust_lifespan(app))


    @api.post("/words/{word}")
    async def send(word: str):
        await words.send(key=word, value=word)
        return {"sent": word}


    @api.get("/count/{word}")
    def read(word: str):
        return {word: counts[word]}
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http(method: str, url: str) -> Any:
    request = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def uvicorn(
    tmp_path: Path, store: str, port: int, partitions: int | None = None
) -> subprocess.Popen[str]:
    program = SERVICE.replace("STORE", repr(store)).replace("PARTITIONS", repr(partitions))
    (tmp_path / "service.py").write_text(program)
    return subprocess.Popen(
        [sys.executable, "-W", "always::ResourceWarning", "-m", "uvicorn", "service:api",
         "--port", str(port)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip


def test_fastapi_under_uvicorn_runs_the_app_and_stops_it_cleanly(tmp_path: Path) -> None:
    port = free_port()
    server = uvicorn(tmp_path, "memory://", port)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # uvicorn listens once the lifespan's startup (the app's) is done
            try:
                assert http("POST", f"{base}/words/fox") == {"sent": "fox"}
                break
            except urllib.error.URLError:
                assert server.poll() is None, server.communicate()[0]
                assert time.monotonic() < deadline, "uvicorn did not answer within 60 s"
                time.sleep(0.2)
        http("POST", f"{base}/words/fox")
        http("POST", f"{base}/words/owl")
        deadline = time.monotonic() + 30
        while http("GET", f"{base}/count/fox") != {"fox": 2}:
            assert time.monotonic() < deadline, http("GET", f"{base}/count/fox")
            time.sleep(0.1)
        assert http("GET", f"{base}/count/owl") == {"owl": 1}
    finally:
        # Ctrl-C. (On SIGTERM uvicorn ends by re-raising the signal: exit -15.)
        server.send_signal(signal.SIGINT)
        output, _ = server.communicate(timeout=60)
    assert server.returncode == 0, output
    assert output.count("counted fox") == 2 and "counted owl" in output
    assert "Application shutdown complete" in output
    assert "Unclosed" not in output and "Traceback" not in output, output


def test_an_app_that_cannot_start_fails_the_servers_startup(tmp_path: Path) -> None:
    # Another worker holds the app's data directory: the app cannot open its stores.
    lock = DataDirLock(tmp_path / "data")
    lock.acquire()
    try:
        server = uvicorn(tmp_path, "rocksdb://", free_port())
        output, _ = server.communicate(timeout=60)
    finally:
        lock.release()
    assert server.returncode != 0
    assert "Application startup failed. Exiting." in output
    # The error's one line names the directory and the fix, right before uvicorn's.
    lines = output.splitlines()
    error = lines[lines.index("ERROR:    Application startup failed. Exiting.") - 2]
    assert error.startswith(
        "faust.exceptions.ImproperlyConfigured: Data directory 'data' is in use by another "
        "worker (pid "
    ), output
    assert "faust/worker.py" not in output, output


def test_an_app_that_crashes_shuts_the_server_down(tmp_path: Path) -> None:
    # The table's partitions are not its source topic's: the agent cannot go on.
    port = free_port()
    server = uvicorn(tmp_path, "memory://", port, partitions=3)
    deadline = time.monotonic() + 60
    while True:
        try:
            http("POST", f"http://127.0.0.1:{port}/words/fox")
            break
        except urllib.error.URLError:
            assert server.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
    output, _ = server.communicate(timeout=60)
    assert server.returncode != 0
    (line,) = [ln for ln in output.splitlines() if ln.startswith("faust: error: ")]
    assert "Table 'counts' has 3 partitions" in line and line.endswith("; shutting the server down")
    assert "Application shutdown complete." in output, output


async def test_the_app_runs_inside_and_stops_on_exit(app: faust.App) -> None:
    topic = app.topic("greetings", value_type=str)
    seen: list[str] = []

    @app.agent(topic)
    async def greet(stream: Any) -> None:
        async for greeting in stream:
            seen.append(greeting)

    async with faust_app_running(app) as running:
        assert running is app and app.started and app.ready
        await topic.send(value="hello")
        for _ in range(200):
            if seen:
                break
            await asyncio.sleep(0.01)
    assert seen == ["hello"] and not app.started


async def test_starting_it_twice_is_a_clear_error(app: faust.App) -> None:
    async with faust_app_running(app):
        with pytest.raises(ImproperlyConfigured, match="is already running: start it once"):
            async with faust_app_running(app):
                pass
    assert not app.started
    async with faust_app_running(app):  # once stopped, it may start again
        assert app.started


async def test_a_stop_that_takes_too_long_times_out(app: faust.App) -> None:
    @app.on_before_shutdown.connect
    async def slow(*args: Any, **kwargs: Any) -> None:
        await asyncio.sleep(5)

    with pytest.raises(TimeoutError):
        async with faust_app_running(app, stop_timeout=0.1):
            pass


def test_binding_needs_a_running_loop() -> None:
    app = faust.App("asgi-no-loop")
    with pytest.raises(ImproperlyConfigured, match="no event loop is running here"):
        bind_to_running_loop(app)


def test_an_app_runs_on_one_loop_at_a_time() -> None:
    app = faust.App("asgi-two-loops")
    other = asyncio.new_event_loop()
    bound = threading.Event()

    def serve() -> None:
        other.call_soon(lambda: (bind_to_running_loop(app), bound.set()))
        other.run_forever()

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        assert bound.wait(10)

        async def bind_here() -> None:
            bind_to_running_loop(app)

        with pytest.raises(LoopMismatch, match="runs on another event loop that is still"):
            asyncio.run(bind_here())
    finally:
        other.call_soon_threadsafe(other.stop)
        thread.join()
        other.close()
    asyncio.run(bind_here())  # its loop has stopped: it may run on this one


async def test_serve_asgi_serves_an_api_from_the_worker_once_ready(app: faust.App) -> None:
    from fastapi import FastAPI

    api = FastAPI()

    @api.get("/ready")
    def ready() -> dict[str, bool]:
        return {"ready": app.ready}

    port = free_port()
    service = serve_asgi(app, api, port=port, log_config=None)
    assert service in app.services
    url = f"http://127.0.0.1:{port}/ready"
    loop = asyncio.get_running_loop()
    async with faust_app_running(app):
        for _ in range(100):
            try:
                answer = await loop.run_in_executor(None, http, "GET", url)
                break
            except urllib.error.URLError:
                await asyncio.sleep(0.05)
        assert answer == {"ready": True}
    with pytest.raises(urllib.error.URLError):  # stopped with the app
        await loop.run_in_executor(None, http, "GET", url)


async def test_the_middleware_runs_the_app_with_the_lifespan_protocol(app: faust.App) -> None:
    passed_on: list[str] = []

    async def framework(scope: Any, receive: Any, send: Any) -> None:
        passed_on.append(scope["type"])

    asgi = FaustLifespanMiddleware(framework, app)
    inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    sent: list[dict[str, str]] = []

    async def send(message: dict[str, str]) -> None:
        sent.append(message)

    await inbox.put({"type": "lifespan.startup"})
    lifespan = asyncio.ensure_future(asgi({"type": "lifespan"}, inbox.get, send))
    for _ in range(200):
        if sent:
            break
        await asyncio.sleep(0.01)
    assert sent == [{"type": "lifespan.startup.complete"}] and app.started
    await asgi({"type": "http"}, inbox.get, send)
    await inbox.put({"type": "lifespan.shutdown"})
    await lifespan
    assert sent[1:] == [{"type": "lifespan.shutdown.complete"}] and not app.started
    assert passed_on == ["http"]
    # An app that cannot start: the server is told why, in one line.
    async with faust_app_running(app):
        sent.clear()
        await inbox.put({"type": "lifespan.startup"})
        await asgi({"type": "lifespan"}, inbox.get, send)
    ((failed),) = sent
    assert failed["type"] == "lifespan.startup.failed"
    assert failed["message"].startswith(f"faust: Faust app {app.conf.id!r} is already running")


ASGI_WORKER = textwrap.dedent(
    """
    import os

    import faust
    from fastapi import FastAPI

    from faust.contrib.asgi import serve_asgi

    app = faust.App("asgi-port", web_enabled=False, datadir="data")
    serve_asgi(app, FastAPI(), port=int(os.environ["API_PORT"]), log_config=None)
    """
)


def test_serve_asgi_on_a_port_in_use_stops_the_worker_with_one_line(tmp_path: Path) -> None:
    """Bound when the worker starts (not once the app is ready, by uvicorn, which would
    log it and exit the process later): exit 1 and one line with the fix."""
    from .test_cli_errors import _error_line, _faust

    (tmp_path / "asgiport.py").write_text(ASGI_WORKER)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _faust("-A", "asgiport", "worker", cwd=tmp_path, env={"API_PORT": str(port)})
    _error_line(
        result, f"serve_asgi: port {port} on 127.0.0.1 is in use", "port=...", "0 takes a free one"
    )


async def test_serve_asgi_on_port_0_takes_a_free_one(
    app: faust.App, caplog: pytest.LogCaptureFixture
) -> None:
    from fastapi import FastAPI

    api = FastAPI()

    @api.get("/ping")
    def ping() -> str:
        return "pong"

    caplog.set_level(logging.INFO, logger="uvicorn.error")
    serve_asgi(app, api, port=0, log_config=None)
    loop = asyncio.get_running_loop()
    async with faust_app_running(app):
        service = next(s for s in app._running_services if isinstance(s, AsgiService))
        assert service.port != 0
        for _ in range(100):
            try:
                answer = await loop.run_in_executor(None, http, "GET", f"{service.url}/ping")
                break
            except urllib.error.URLError:
                await asyncio.sleep(0.05)
        assert answer == "pong"
    # uvicorn's own line, as when it binds the port itself.
    assert f"Uvicorn running on {service.url} (Press CTRL+C to quit)" in caplog.text
