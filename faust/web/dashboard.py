"""The live dashboard at ``/dashboard``.

The page is plain HTML, CSS and one small script (``faust/web/static/``, no build step,
nothing fetched from elsewhere); the script polls ``/dashboard/data.json`` about once a
second and draws it: the group's workers and their partitions, lag per partition,
throughput per agent over the last minutes, tables with their size and recovery state,
error counts and recent errors. The web server calls :func:`add_routes`.

Agents, tables and errors are this worker's; the partitions and their lag are the whole
group's: the worker asks every other worker of the group for its own
(``/dashboard/data.json?scope=local``, each within :data:`PEER_TIMEOUT`), and marks a
worker that does not answer as unreachable.

Example (what the page reads, from any worker)::

    $ curl -s localhost:6066/dashboard/data.json | jq '.agents[0].events'
"""

from __future__ import annotations

import asyncio
import importlib.resources
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from .. import __version__
from .views import error_response, json_response

if TYPE_CHECKING:
    from ..app import App

__all__ = ["add_routes", "dashboard_data"]

#: The files under ``/dashboard/static/`` and their content types.
STATIC_FILES = {
    "dashboard.css": "text/css",
    "dashboard.js": "text/javascript",
}

#: Seconds of throughput history the chart shows at most (the Monitor keeps 300 samples,
#: one a second).
DEFAULT_WINDOW = 300.0
#: Seconds another worker has to give its partitions. The page asks once a second: a
#: worker that hangs (gone from another host, no refusal comes back) slows the page to
#: one update in two seconds, not to a stop.
PEER_TIMEOUT = 1.0


def add_routes(web_app: web.Application, app: App) -> None:
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

    peers = _Peers()

    async def data(request: web.Request) -> web.Response:
        answer = dashboard_data(app)
        if request.query.get("scope") != "local":
            await peers.add_partitions(answer)
        return json_response(answer, headers={"Cache-Control": "no-store"})

    web_app.on_cleanup.append(lambda _: peers.close())
    web_app.router.add_get("/dashboard", page)
    web_app.router.add_get("/dashboard/", page)
    web_app.router.add_get("/dashboard/data.json", data)
    web_app.router.add_get("/dashboard/static/{name}", static)


class _Peers:
    """Asks the group's other workers for their partitions (one connection pool, made
    on the first request and closed with the web server)."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def add_partitions(self, data: dict[str, Any]) -> None:
        """Add the other workers' partitions to ``data`` (each row with its ``worker``)
        and say of each worker whether it answered (``reachable``, else ``error``)."""
        others = [worker for worker in data["workers"] if not worker["self"]]
        answers = await asyncio.gather(*(self._ask(worker["url"]) for worker in others))
        for worker, answer in zip(others, answers, strict=True):
            if isinstance(answer, str):
                worker["reachable"] = False
                worker["error"] = answer
                continue
            worker["reachable"] = True
            for row in answer.get("partitions", ()):
                data["partitions"].append({**row, "worker": worker["url"]})
        data["partitions"].sort(key=lambda row: (row["topic"], row["partition"]))

    async def _ask(self, url: str) -> dict[str, Any] | str:
        """The worker's own data, or why it could not be had."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=PEER_TIMEOUT))
        target = url.rstrip("/") + "/dashboard/data.json?scope=local"
        try:
            async with self._session.get(target) as response:
                if response.status != 200:
                    return f"{target} answered {response.status}"
                return dict(await response.json())
        except TimeoutError:
            return f"{target} did not answer within {PEER_TIMEOUT:g} s"
        except (aiohttp.ClientError, ValueError) as exc:
            return f"{target}: {exc}"

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def _static_response(name: str, content_type: str) -> web.Response:
    body = importlib.resources.files(__package__).joinpath("static", name).read_bytes()
    return web.Response(
        body=body,
        content_type=content_type,
        charset="utf-8",
        # Small files: always fresh after an upgrade, and no stale script against new data.
        headers={"Cache-Control": "no-cache"},
    )


def dashboard_data(app: App) -> dict[str, Any]:
    """What ``/dashboard/data.json`` answers for ``app``: a JSON-ready dict, built from
    the app's state and ``app.monitor.snapshot()``.

    ============== =====================================================================
    ``app``        ``id``, ``version``, ``url`` (this worker), ``state`` (``starting``,
                   ``recovering``, ``running``), ``sensors`` (False: no counts, the
                   monitor is off with ``sensors_enabled=False``)
    ``time``       the worker's clock (unix seconds); ``window``: seconds of history
    ``workers``    ``[{url, self, partitions: {topic: [partition]}}]``, the group's;
                   the others with ``reachable`` (and ``error``) in the full answer
    ``partitions`` ``[{topic, partition, worker, committed, end, lag}]`` read as
                   streams (not the tables' changelogs), here or, in the full answer,
                   by the other workers; ``lag``: None until known
    ``agents``     ``[{name, events, rate, buffered, mean_seconds, history}]``;
                   ``events`` taken by the agent, ``rate`` events/s in the last
                   second, ``history`` ``[[unix time, events/s], ...]``
    ``tables``     ``[{name, size, partitions, standby, global, state, recovery}]``;
                   ``state`` ``recovering`` while a partition of it is (``recovery``:
                   which, and records ``read`` of ``total``), else ``recovered``
    ``errors``     ``counts`` by kind, ``total`` (decode + agent + send errors),
                   ``dead_lettered``, ``recent`` (``[{time, kind, message}]``)
    ============== =====================================================================

    Example::

        >>> import faust
        >>> data = dashboard_data(faust.App('dash-doc'))
        >>> data['app']['id'], data['app']['state'], data['agents']
        ('dash-doc', 'starting', [])
    """
    snapshot = _snapshot(app)
    return {
        "app": {
            "id": app.conf.id,
            "version": __version__,
            "url": _own_url(app),
            "state": _state(app),
            "sensors": app.monitor is not None,
        },
        "time": snapshot.get("time") or time.time(),
        "window": DEFAULT_WINDOW,
        "workers": _workers(app),
        "partitions": _partitions(_own_url(app), snapshot),
        "agents": _agents(app, snapshot),
        "tables": _tables(app, snapshot),
        "errors": _errors(snapshot),
    }


def _snapshot(app: App) -> Mapping[str, Any]:
    # No monitor with sensors_enabled=False: no counts to show (the page says why).
    return {} if app.monitor is None else app.monitor.snapshot()


def _own_url(app: App) -> str:
    return str(app.conf.canonical_url)


def _state(app: App) -> str:
    if not app.started:
        # The worker's web server answers before the app has started.
        return "starting"
    if app.ready:
        return "running"
    return "recovering" if app.tables.recovering else "starting"


def _by_topic(tps: Iterable[Any]) -> dict[str, list[int]]:
    topics: dict[str, list[int]] = {}
    for tp in tps:
        topics.setdefault(tp.topic, []).append(tp.partition)
    return {topic: sorted(parts) for topic, parts in sorted(topics.items())}


def _workers(app: App) -> list[dict[str, Any]]:
    """The group's workers and their partitions, from the assignment's routing; this
    worker from its own assignment when the group has none to tell (a rebalance)."""
    own = _own_url(app)
    routing = app.router.routing()
    if own not in routing:
        consumer = app.consumer
        routing[own] = _by_topic(consumer.driver.assignment() if consumer is not None else ())
    return [
        {"url": url, "self": url == own, "partitions": partitions}
        for url, partitions in sorted(routing.items())
    ]


def _partitions(own: str, snapshot: Mapping[str, Any]) -> list[dict[str, Any]]:
    # The monitor leaves out the tables' changelogs: the recovery reads them, no stream.
    return [
        {
            "topic": row["topic"],
            "partition": row["partition"],
            "worker": own,
            "committed": row.get("committed"),
            "end": row.get("end_offset"),
            "lag": row.get("lag"),
        }
        for row in snapshot.get("partitions", ())
    ]


def _agents(app: App, snapshot: Mapping[str, Any]) -> list[dict[str, Any]]:
    stats = snapshot.get("agents", {})
    rows = []
    for name in sorted(set(app.agents) | set(stats)):
        agent = stats.get(name, {})
        history = agent.get("history", [])
        rows.append(
            {
                "name": name,
                "events": agent.get("events_out", 0),
                "rate": history[-1][1] if history else 0.0,
                "buffered": agent.get("buffered", 0),
                "mean_seconds": agent.get("mean_seconds"),
                "history": history,
            }
        )
    return rows


def _tables(app: App, snapshot: Mapping[str, Any]) -> list[dict[str, Any]]:
    stats = snapshot.get("tables", {})
    rows = []
    for table in app.tables:
        table_stats = stats.get(table.name, {})
        partitions = table_stats.get("recovery", [])
        restoring = [p for p in partitions if p["state"] == "recovering"]
        rows.append(
            {
                "name": table.name,
                "size": table_stats.get("size", 0),
                "partitions": sum(p["state"] != "standby" for p in partitions),
                "standby": sum(p["state"] == "standby" for p in partitions),
                "global": bool(table.is_global),
                "state": "recovering" if restoring else "recovered",
                # Changelog records read of those to read, over the partitions restoring.
                "recovery": {
                    "partitions": [p["partition"] for p in restoring],
                    "read": sum(p["read"] for p in restoring),
                    "total": sum(p["total"] for p in restoring),
                },
            }
        )
    return rows


def _errors(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    counts = dict(snapshot.get("errors", {}))
    return {
        "counts": counts,
        "total": sum(counts.get(kind, 0) for kind in ("decode", "agent", "send")),
        "dead_lettered": counts.get("dead_lettered", 0),
        "recent": list(snapshot.get("recent_errors", ())),
    }
