"""Which worker owns a key, and forwarding a request to it (table and topic routes).

Every partition of a table or topic is read by one worker of the consumer group, and the
group's assignment carries each worker's URL (its ``canonical_url``). A table route
serves a request on the worker that owns the key's partition, so any worker answers for
any key::

    counts = app.Table('counts', default=int)

    @app.page('/count/{word}/')
    @app.table_route(table=counts, match_info='word')
    async def get_count(web, request, word):
        return web.json({word: counts[word]})

The key's partition is where the stream that writes the table puts it: the key encoded
with the app's ``key_serializer`` (raw by default: text as its UTF-8 bytes, as
``group_by`` repartitions and as most sources are keyed), hashed like Kafka's producer;
a table with ``use_partitioner=True`` places keys by its own key serializer. A stream
that writes the table keyed otherwise puts keys elsewhere: repartition it with
``group_by``.

The route runs the view where the key's partition is read, forwards the request to the
worker that reads it otherwise, and answers 503 (JSON, at once) while nobody does: before
the first assignment and during a rebalance. A forwarded request is never forwarded again.
Responses carry :data:`~faust.web.forwarding.SERVED_BY`, the URL of the worker that
served them. ``app.router`` answers who owns what; :func:`add_routes` adds ``/router/``
and ``/table/{name}/{key}/`` to a worker's web server.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web

from ..tables.base import Collection
from ..topics import Topic
from ..transport.base import TP
from .forwarding import FORWARDED_BY, SERVED_BY, Forwarder, error_response
from .targets import KeyLocation, TableTarget, Target, TopicTarget
from .views import HTTPError, json_response

if TYPE_CHECKING:
    from ..app import App

__all__ = ["KeyLocation", "Router", "add_routes", "router_info", "table_route", "topic_route"]

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
#: ``{worker URL: {topic: [partitions]}}``: Faust's host-to-partition map.
PartitionMap = dict[str, dict[str, list[int]]]


class Router:
    """Who owns each partition of the app's tables and topics (``app.router``).

    Example::

        app.router.key_store('counts', 'apple')      # 'http://w2:6066' (None: nobody now)
        app.router.routing()                         # {url: {topic: [partitions]}}
    """

    def __init__(self, app: App) -> None:
        self.app = app
        self.forwarder = Forwarder()

    @property
    def url(self) -> str:
        """This worker's URL (``canonical_url``)."""
        return str(self.app.conf.canonical_url)

    # -- who owns what
    def _members(self) -> Mapping[str, frozenset[TP]]:
        consumer = self.app.consumer
        return {} if consumer is None else consumer.driver.routing()

    def routing(self) -> PartitionMap:
        """Each worker's partitions of every table and topic the group reads."""
        result: PartitionMap = {}
        for url, tps in sorted(self._members().items()):
            topics: dict[str, list[int]] = {}
            for tp in sorted(tps):
                topics.setdefault(tp.topic, []).append(tp.partition)
            result[url] = topics
        return result

    def owner_of(self, tp: TP) -> str | None:
        """The URL of the worker reading ``tp`` now; None while nobody does."""
        for url, tps in self._members().items():
            if tp in tps:
                return url
        return None

    def is_local(self, tp: TP) -> bool:
        """True if this worker reads ``tp`` (and the group is not rebalancing)."""
        consumer = self.app.consumer
        if consumer is None:
            return False
        driver = consumer.driver
        return bool(driver.routing()) and tp in driver.assignment()

    def table_partition(self, table: Collection, key: Any) -> TP:
        """The changelog partition that holds ``key`` of ``table``."""
        return TableTarget(table).partition_of(key)

    def topic_partition(self, topic: Topic, key: Any) -> TP:
        """The partition of ``topic`` a record with ``key`` goes to."""
        return TopicTarget(self.app, topic).partition_of(key)

    def key_store(self, table_name: str, key: Any) -> str | None:
        """The URL of the worker that holds ``key`` of table ``table_name`` (this one
        for a global table); None while nobody does."""
        table = self.app.tables[table_name]
        if table.is_global:
            return self.url
        return self.owner_of(self.table_partition(table, key))

    def topic_key_store(self, topic: Topic, key: Any) -> str | None:
        """The URL of the worker that reads ``key``'s partition of ``topic``."""
        return self.owner_of(self.topic_partition(topic, key))

    #: Faust's name of :meth:`topic_key_store`.
    external_topic_key_store = topic_key_store

    def table_metadata(self, table_name: str) -> PartitionMap:
        """Each worker's partitions of table ``table_name`` (its changelog topic)."""
        changelog = self.app.tables[table_name].changelog_topic.name
        return _only(self.routing(), {changelog})

    def tables_metadata(self) -> PartitionMap:
        """Each worker's partitions of every table."""
        changelogs = {table.changelog_topic.name for table in self.app.tables}
        return _only(self.routing(), changelogs)

    # -- serving
    async def serve(
        self,
        request: web.Request,
        target: Target,
        key: Any,
        handler: Callable[[], Awaitable[Any]],
    ) -> Any:
        """Run ``handler`` if this worker owns ``key`` of ``target``, else forward
        ``request`` to the worker that does, else answer 503."""
        try:
            tp = target.partition_of(key)
        except HTTPError as exc:
            return exc.response()
        fields = {**target.fields, "partition": tp.partition}
        where = f"{target.what} partition {tp.partition}"
        if target.everywhere or self.is_local(tp):
            if target.is_table and self._recovering(target, tp):
                return error_response(
                    503, f"{where} is being recovered on this worker; try again shortly.", **fields
                )
            response = await handler()
            if not isinstance(response, web.StreamResponse):
                response = json_response(response)  # as a view's value is answered
            if not response.prepared:
                response.headers[SERVED_BY] = self.url
            return response
        members = self._members()
        owner = next((url for url, tps in members.items() if tp in tps), None)
        if owner is None:
            why = (
                "the group has no assignment yet or is rebalancing"
                if not members
                else "the worker reading it runs no web server (web_enabled=False), or "
                "this app's group does not read it"
            )
            return error_response(
                503, f"No worker answers for {where} right now ({why}).", **fields
            )
        forwarded_by = request.headers.get(FORWARDED_BY)
        if forwarded_by is not None or owner == self.url:
            # Moving between workers: this one's view of the group is behind or ahead.
            return error_response(
                503,
                f"{where} is moving between workers (a rebalance); try again shortly.",
                forwarded_by=forwarded_by,
                **fields,
            )
        return await self.forwarder.forward(request, owner, self.url, **fields)

    def _recovering(self, target: Target, tp: TP) -> bool:
        pending = self.app.tables.partitions_to_recover()
        return tp.partition in pending.get(target.fields["table"], ())

    async def close(self) -> None:
        """Close the connections to other workers (the app does this when it stops)."""
        await self.forwarder.close()


def _only(routing: PartitionMap, topics: set[str]) -> PartitionMap:
    result: PartitionMap = {}
    for url, parts in routing.items():
        kept = {topic: ps for topic, ps in parts.items() if topic in topics}
        if kept:
            result[url] = kept
    return result


# -- the decorators (``app.table_route`` and ``app.topic_route``, which find ``where``)
def table_route(app: App, table: Any, where: KeyLocation) -> Callable[[F], F]:
    """Serve the decorated view on the worker that owns the key's table partition."""
    return _route(app, TableTarget(_table(app, table)), where)


def topic_route(app: App, topic: Any, where: KeyLocation) -> Callable[[F], F]:
    """Serve the decorated view on the worker that reads the key's topic partition."""
    if not isinstance(topic, Topic):
        raise TypeError(f"topic_route(topic=...) takes a topic (app.topic(...)), not {topic!r}")
    return _route(app, TopicTarget(app, topic), where)


def _route(app: App, target: Target, where: KeyLocation) -> Callable[[F], F]:
    def decorate(fun: F) -> F:
        @functools.wraps(fun)
        async def routed(view: Any, request: web.Request, *args: Any, **kwargs: Any) -> Any:
            try:
                key = where.key(request, target)
            except HTTPError as exc:
                return exc.response()
            return await app.router.serve(
                request, target, key, lambda: fun(view, request, *args, **kwargs)
            )

        return routed  # type: ignore[return-value]

    return decorate


def _table(app: App, table: Any) -> Collection:
    if isinstance(table, str):
        if table not in app.tables:
            raise KeyError(
                f"table_route(table={table!r}): no such table; the app has "
                f"{sorted(t.name for t in app.tables)}"
            )
        return app.tables[table]
    table = getattr(table, "table", table)  # a windowed view routes like its table
    if not isinstance(table, Collection):
        raise TypeError(
            f"table_route(table=...) takes a table (app.Table(...)) or its name, not {table!r}"
        )
    return table


# -- the built-in pages
def add_routes(web_app: web.Application, app: App) -> None:
    """Add ``/router/`` and ``/table/{name}/{key}/`` to ``web_app``; close the
    connections to other workers when it shuts down."""

    async def router_page(request: web.Request) -> web.Response:
        return web.json_response(router_info(app))

    async def table_page(request: web.Request) -> Any:
        name = request.match_info["name"]
        if name not in app.tables:
            names = sorted(t.name for t in app.tables)
            return error_response(
                404, f"No table named {name!r}; this app's tables: {names}.", tables=names
            )
        table = app.tables[name]
        if table.windowing is not None:
            return error_response(
                400,
                f"Table {name!r} is windowed: its values are per window; serve them "
                "with a view and @app.table_route.",
                table=name,
            )
        target = TableTarget(table)
        text = request.match_info["key"]
        try:
            key = target.key_from_text(text)
        except HTTPError as exc:
            return exc.response()
        return await app.router.serve(request, target, key, lambda: _table_value(table, key))

    async def close_router(_: web.Application) -> None:
        await app.router.close()

    web_app.router.add_get("/router/", router_page)
    web_app.router.add_get("/table/{name}/{key}/", table_page)
    web_app.on_cleanup.append(close_router)


def router_info(app: App) -> dict[str, Any]:
    """The body of ``/router/``: this worker, each worker's partitions, and the worker
    of each partition of every table and topic (None while nobody reads it)."""
    router = app.router
    routing = router.routing()
    owners = {
        (topic, p): url for url, parts in routing.items() for topic, ps in parts.items() for p in ps
    }
    topics: dict[str, dict[str, str | None]] = {}
    for topic, p in sorted(owners):
        topics.setdefault(topic, {})[str(p)] = owners[topic, p]
    tables = {
        table.name: {
            "topic": table.changelog_topic.name,
            "global": table.is_global,
            "partitions": {
                str(p): owners.get((table.changelog_topic.name, p)) for p in range(table.partitions)
            },
        }
        for table in app.tables
    }
    return {
        "worker": router.url,
        "assigned": bool(routing),
        "workers": routing,
        "topics": topics,
        "tables": tables,
    }


_ABSENT = object()


async def _table_value(table: Any, key: Any) -> web.Response:
    value = table.get(key, _ABSENT)
    if value is _ABSENT:
        return error_response(
            404, f"Key {key!r} is not in table {table.name!r}.", table=table.name, key=key
        )
    return json_response({"table": table.name, "key": key, "value": value})
