"""The built-in pages of every worker: ``/``, ``/health/live``, ``/health/ready``,
``/metrics``.

``/health/ready`` is for a readiness probe (Kubernetes' ``readinessProbe``, a load
balancer): 200 once the worker has its partitions and every assigned table partition
is recovered, else 503 with the reason (not started, waiting for partition assignment,
recovering tables, stopping)::

    $ curl -s localhost:6066/health/ready
    {"status": "not ready", "reason": "recovering tables: counts partitions [0, 3]"}

``/health/live`` answers 200 for as long as the process (its event loop) runs.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from ..app import App

from .server import Route
from .views import View

__all__ = ["ROUTES", "not_ready_reason"]


def not_ready_reason(app: App) -> str | None:
    """Why ``app`` is not ready to process (None when it is: ``app.ready``)."""
    if app.ready:
        return None
    if not app.started:
        return "not started"  # starting (broker, topics, global tables), or stopping
    consumer = app.consumer
    if consumer is not None and not consumer.assigned_once.is_set():
        return "waiting for partition assignment"
    pending = app.tables.partitions_to_recover()
    if pending:
        tables = "; ".join(f"{name} partitions {parts}" for name, parts in pending.items())
        return f"recovering tables: {tables}"
    return "recovering tables: running their on_recover callbacks"


def _assigned(app: App) -> dict[str, list[int]]:
    consumer = app.consumer
    if consumer is None:
        return {}
    assigned: dict[str, list[int]] = {}
    for tp in sorted(consumer.driver.assignment()):
        assigned.setdefault(tp.topic, []).append(tp.partition)
    return assigned


class Index(View):
    """This worker: its app, URL, version, pid and assigned partitions."""

    async def get(self, request: web.Request) -> web.Response:
        from .. import __version__

        app = self.app
        return self.json(
            {
                "app": app.conf.id,
                "worker": app.conf.canonical_url,
                "version": __version__,
                "pid": os.getpid(),
                "ready": app.ready,
                "assigned": _assigned(app),
            }
        )


class Live(View):
    async def get(self, request: web.Request) -> web.Response:
        return self.json({"status": "live"})


class Ready(View):
    async def get(self, request: web.Request) -> web.Response:
        reason = "stopping" if self.web.stopping else not_ready_reason(self.app)
        if reason is None:
            return self.json({"status": "ready"})
        return self.json({"status": "not ready", "reason": reason}, status=503)


class Metrics(View):
    """Prometheus' text format (see :mod:`faust.sensors.prometheus`)."""

    async def get(self, request: web.Request) -> web.Response:
        from ..sensors.prometheus import render_metrics

        body, content_type = render_metrics(self.app)
        # As given, parameters included (``version=0.0.4`` tells scrapers the format).
        return web.Response(body=body, headers={"Content-Type": content_type})


ROUTES = [
    Route("/", Index, "index"),
    Route("/health/live", Live, "live"),
    Route("/health/ready", Ready, "ready"),
    Route("/metrics", Metrics, "metrics"),
]
