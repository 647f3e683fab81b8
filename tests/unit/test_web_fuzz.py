"""Random requests against a running worker's web server: never a 5xx (except from the
view that raises on purpose), always JSON for an error, and the worker still answers."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yarl import URL

from .test_cli_errors import Worker as WorkerProcess

FUZZ_APP = """
import faust

app = faust.App(
    'webfuzz',
    topic_partitions=2,
    web_cors_options={'https://a.example': {'allow_headers': '*', 'expose_headers': '*'}},
)
counts = app.Table('counts', default=int)


@app.page('/count/{word}/')
class Count(faust.View):
    async def get(self, request, word):
        limit = self.query_param(request, 'limit', type=int, default=10)
        return self.json({'word': word, 'count': counts[word], 'limit': limit})

    async def post(self, request, word):
        body = await self.read_json(request)
        return self.json({'word': word, 'got': body}, status=201)


@app.page('/boom/')
async def boom(self, request):
    raise RuntimeError('deliberate')
"""

KNOWN = ["/", "/health/live", "/health/ready", "/metrics", "/count/a/", "/count/", "/boom/"]
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
# Methods of other HTTP extensions: no view answers them. (A token that is no HTTP method
# at all is refused by aiohttp's parser with a plain-text 400, before any view.)
OTHER_METHODS = ["TRACE", "PROPFIND", "MKCOL", "PURGE", "REPORT", "SEARCH", "LINK"]

segment = st.one_of(
    st.text(max_size=12).map(lambda s: quote(s, safe="")),
    st.sampled_from(["..", ".", "", "%", "%zz", "%00", "count", "health", "{word}", "a%20b"]),
)
paths = st.one_of(
    st.sampled_from(KNOWN),
    st.builds(
        lambda prefix, parts, slash: prefix + "/".join(parts) + slash,
        st.sampled_from(["/", "/count/", "/health/", "//"]),
        st.lists(segment, max_size=4),
        st.sampled_from(["", "/"]),
    ),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children),
    max_leaves=10,
)
bodies = st.one_of(
    st.none(),
    st.binary(max_size=300),
    json_values.map(lambda v: __import__("json").dumps(v).encode()),
)
requests = st.fixed_dictionaries(
    {
        "method": st.sampled_from(METHODS + OTHER_METHODS),
        "path": paths,
        "query": st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
        "body": bodies,
        "origin": st.none() | st.sampled_from(["https://a.example", "null", ""]),
        # With OPTIONS and an Origin: a CORS preflight.
        "preflight": st.none() | st.sampled_from(METHODS + ["BREW", ""]),
    }
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    project: Path = tmp_path_factory.mktemp("webfuzz")
    (project / "webfuzz.py").write_text(FUZZ_APP)
    worker = WorkerProcess(
        ["-m", "faust", "-A", "webfuzz", "worker", "--web-port", "0", "--web-host", "127.0.0.1"],
        project,
    )
    try:
        worker.wait_for("Worker ready")
        match = re.search(r"web\s+(http://127\.0\.0\.1:\d+)", worker.output)
        assert match, worker.output
        yield match.group(1)
        # Still answering after everything it was sent, and still running.
        assert asyncio.run(_request(match.group(1), "GET", "/health/live"))[0] == 200
        assert worker.proc.poll() is None, worker.output
        # The only errors logged are the deliberate ones (no aiohttp "Error handling
        # request": nothing failed outside the views).
        errors = [line for line in worker.output.splitlines() if "[ERROR]" in line]
        assert all(re.search(r"faust.web: Error \w+ in \w+ /boom/", e) for e in errors), errors
    finally:
        assert worker.stop() == 0, worker.output


async def _request(
    base: str, method: str, path: str, body: bytes | None = None, headers: Any = None
) -> tuple[int, str, bytes]:
    async with aiohttp.ClientSession() as http:
        url = URL(base + path, encoded=True)
        async with http.request(method, url, data=body, headers=headers) as r:
            return r.status, r.content_type, await r.read()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request=requests)
def test_random_requests_get_no_5xx_and_json_errors(server: str, request: dict[str, Any]) -> None:
    path = request["path"]
    query = urlencode(request["query"])
    headers = {} if request["origin"] is None else {"Origin": request["origin"]}
    if request["preflight"] is not None:
        headers["Access-Control-Request-Method"] = request["preflight"]
        headers["Access-Control-Request-Headers"] = "X-Token"
    status, content_type, body = asyncio.run(
        _request(
            server,
            request["method"],
            path + ("?" + query if query else ""),
            request["body"],
            headers,
        )
    )
    if status >= 500:
        assert unquote(path) == "/boom/", (status, body)
        assert status == 500 and (request["method"] == "HEAD" or b'"error_id"' in body)
    if status >= 400:
        assert content_type == "application/json", (status, content_type, body)


def test_malformed_http_gets_a_400_and_the_server_goes_on(server: str) -> None:
    # Not HTTP at all: aiohttp's parser answers 400 (plain text) before any view.
    url = URL(server)
    with socket.create_connection((url.host, url.port), timeout=10) as sock:
        sock.sendall(b"\x16\x03\x01 not http\r\n\r\n")
        assert b" 400 Bad Request" in sock.recv(100)
    assert asyncio.run(_request(server, "GET", "/health/live"))[0] == 200
