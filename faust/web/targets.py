"""What a route routes by: a table's or a topic's key, found in the request.

A :class:`Target` turns a key into the partition that holds it, exactly as the table or
topic partitions its keys (the key serialized with its key serializer, then Kafka's
murmur2 partitioner). :class:`KeyLocation` finds the key in a request: in the path
(``match_info``), the query string (``query_param``), or fixed (``exact_key``). Keys
from a path or query are text, converted to the target's ``key_type``: ``str`` (or
none), ``int``, ``float`` and ``bytes`` directly, other types decoded from the text as
the target's key serializer would decode them (JSON for a record key).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from ..exceptions import DecodeError
from ..tables.base import Collection
from ..topics import Topic
from ..transport.base import TP
from ..transport.partitioner import partition_for_key
from .views import HTTPError

if TYPE_CHECKING:
    from ..app import App

__all__ = ["KeyLocation", "Target", "TableTarget", "TopicTarget"]

# Key types a path or query string converts to directly.
_FROM_TEXT: dict[Any, Any] = {str: str, int: int, float: float, bytes: str.encode}


class Target(Protocol):
    #: For messages: "table 'counts'".
    what: str
    #: For JSON errors: {"table": "counts"}.
    fields: dict[str, Any]
    #: Held by every worker (a global table): always served locally.
    everywhere: bool
    #: A table: not served while its partitions are being recovered.
    is_table: bool

    def partition_of(self, key: Any) -> TP: ...

    def key_from_text(self, text: str) -> Any: ...


class _Keyed:
    """Key conversion shared by tables and topics."""

    what = ""
    fields: dict[str, Any] = {}
    key_type: Any = None
    schema: Any = None

    def key_from_text(self, text: str) -> Any:
        key_type = self.key_type
        if key_type is None:
            return text
        convert = _FROM_TEXT.get(key_type)
        try:
            return convert(text) if convert is not None else self.schema.loads_key(text.encode())
        except (ValueError, TypeError, DecodeError) as exc:
            name = getattr(key_type, "__name__", repr(key_type))
            raise HTTPError(
                400,
                f"Key {text!r} does not decode as {name}, the key type of {self.what}: {exc}",
                key=text,
                **self.fields,
            ) from None

    def _unencodable(self, key: Any, exc: Exception) -> HTTPError:
        return HTTPError(
            400, f"Key {key!r} cannot be encoded for {self.what}: {exc}", **self.fields
        )


class TableTarget(_Keyed):
    """Routes by a key of ``table``: the changelog partition that holds it."""

    is_table = True

    def __init__(self, table: Collection) -> None:
        self.table = table
        self.what = f"table {table.name!r}"
        self.fields = {"table": table.name}
        self.everywhere = table.is_global
        self.key_type = table.key_type
        self.schema = table.changelog_topic.schema
        # A table written from a stream holds a key in the partition of the event that
        # wrote it: where the key hashes as the stream's topic encodes keys, which is
        # the app's key serializer (raw by default: text as UTF-8) for a group_by and
        # for most sources. A table with use_partitioner places keys itself.
        self._placement = (
            None
            if table.use_partitioner or table.is_global
            else table.app.schema(key_type=table.key_type)
        )

    def partition_of(self, key: Any) -> TP:
        table = self.table
        try:
            if self._placement is None:
                partition = table._partition_of_key(key)
            else:
                data = self._placement.dumps_key(key)
                partition = 0 if data is None else partition_for_key(data, table.partitions)
        except Exception as exc:  # the codec's own error: the key is the client's
            raise self._unencodable(key, exc) from None
        return TP(table.changelog_topic.name, partition)


class TopicTarget(_Keyed):
    """Routes by a key of ``topic``: the partition a record with the key goes to."""

    is_table = False
    everywhere = False

    def __init__(self, app: App, topic: Topic) -> None:
        if len(topic.topics) > 1:
            raise ValueError(
                f"topic_route(topic=...) needs one topic, not several: {topic.topics!r}"
            )
        self.app = app
        self.topic = topic
        self.what = f"topic {topic.name!r}"
        self.fields = {"topic": topic.name}
        self.key_type = topic.schema.key_type
        self.schema = topic.schema

    def partition_of(self, key: Any) -> TP:
        name = self.topic.name
        partitions = self.app.partition_count_of(name) or self.topic.specs()[0].partitions
        try:
            data = self.schema.encode_key(self.app, key)
        except Exception as exc:  # the codec's own error: the key is the client's
            raise self._unencodable(key, exc) from None
        return TP(name, 0 if data is None else partition_for_key(data, partitions))


class KeyLocation:
    """Where a route finds its key; exactly one of the three is given."""

    def __init__(self, query_param: str | None, match_info: str | None, exact_key: Any) -> None:
        self.query_param = query_param
        self.match_info = match_info
        self.exact_key = exact_key

    @classmethod
    def of(
        cls, decorator: str, query_param: str | None, match_info: str | None, exact_key: Any
    ) -> KeyLocation:
        given = [p for p in (query_param, match_info, exact_key) if p is not None]
        if len(given) != 1:
            raise TypeError(
                f"{decorator}() needs exactly one of match_info='name' (a path parameter), "
                f"query_param='name' (shard_param) or exact_key=..., got {len(given)}"
            )
        return cls(query_param, match_info, exact_key)

    def key(self, request: web.Request, target: Target) -> Any:
        """The key of ``request``, converted to ``target``'s key type."""
        if self.exact_key is not None:
            return self.exact_key
        if self.match_info is not None:
            text = request.match_info.get(self.match_info)
            if text is None:
                raise HTTPError(
                    500,
                    f"The route of {target.what} takes its key from path parameter "
                    f"{self.match_info!r}, which the page's path does not have.",
                    **target.fields,
                )
        else:
            assert self.query_param is not None
            text = request.query.get(self.query_param)
            if text is None:
                raise HTTPError(
                    400,
                    f"Query parameter {self.query_param!r} is required: it is the key of "
                    f"{target.what}.",
                    **target.fields,
                )
        return target.key_from_text(text)
