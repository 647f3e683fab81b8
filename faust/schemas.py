"""Schema: how the keys and values of a topic turn into Python objects and back.

>>> from faust import Record
>>> class Point(Record, namespace='example.Point'):
...     x: int
...     y: int = 0
>>> from faust import Schema
>>> schema = Schema(key_type=str, value_type=Point)
>>> schema.dumps_value(Point(1, 2))
b'{"x":1,"y":2,"__faust":{"ns":"example.Point"}}'
>>> schema.loads_value(b'{"x":1,"y":2}')
Point(x=1, y=2)
>>> schema.loads_key(b'p-1')
'p-1'

The codec of each side is the serializer given to the Schema, else the ``serializer``
option of the Record type, else the default (the app's ``key_serializer`` and
``value_serializer`` settings: ``'raw'`` and ``'json'``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from decimal import Decimal
from typing import Any, get_args, get_origin

import orjson

from faust.exceptions import DecodeError, EncodeError, KeyDecodeError, ValueDecodeError
from faust.models.fields import show
from faust.models.record import Record, maybe_model
from faust.serializers import Codec, CodecArg, get_codec, json, json_default, raw, want_bytes

__all__ = ["Schema"]

Loader = Callable[[bytes | None], Any]
#: Decodes one side of a whole message (a Faust-style ``loads_key``/``loads_value``).
MessageLoader = Callable[[Any], Any]
#: An argument not given (None is a key or value like any other).
_ABSENT: Any = object()


class Schema:
    """Key and value types and serializers of a topic or channel.

    ``key_type``/``value_type`` may be a Record class, ``str``, ``bytes``, ``int``,
    ``float``, a list or set of one of those (``list[str]``, ``set[int]``), or None (the
    codec's output is used as is). ``allow_empty=True`` makes
    a missing or empty value (a tombstone) decode as None instead of failing.

    >>> Schema(value_type=int, value_serializer='raw').loads_value(b'42')
    42
    """

    def __init__(
        self,
        key_type: Any = None,
        value_type: Any = None,
        key_serializer: CodecArg | None = None,
        value_serializer: CodecArg | None = None,
        allow_empty: bool = False,
        *,
        default_key_serializer: CodecArg | None = "raw",
        default_value_serializer: CodecArg | None = "json",
    ) -> None:
        self.key_type = key_type
        self.value_type = value_type
        self.key_serializer = key_serializer
        self.value_serializer = value_serializer
        self.allow_empty = allow_empty
        self.default_key_serializer = default_key_serializer or "raw"
        self.default_value_serializer = default_value_serializer or "json"
        self.key_codec = _resolve_codec(key_serializer, key_type, self.default_key_serializer)
        self.value_codec = _resolve_codec(
            value_serializer, value_type, self.default_value_serializer
        )
        # Codec per Record class sent without a Schema serializer (see _encode).
        self._record_codecs: dict[type, Codec] = {}

    def derive(self, **changes: Any) -> Schema:
        """A copy with some arguments changed: ``schema.derive(value_serializer='raw')``."""
        kwargs = {
            "key_type": self.key_type,
            "value_type": self.value_type,
            "key_serializer": self.key_serializer,
            "value_serializer": self.value_serializer,
            "allow_empty": self.allow_empty,
            "default_key_serializer": self.default_key_serializer,
            "default_value_serializer": self.default_value_serializer,
        }
        kwargs.update(changes)
        return Schema(**kwargs)

    # -- decoding ----------------------------------------------------------------------

    def key_loader(self) -> Loader:
        """One callable ``bytes | None -> key`` for a loop over many messages.

        None stays None; failures raise :class:`~faust.exceptions.KeyDecodeError`.
        Get a fresh loader per batch: it binds the model's current ``from_data``.
        """
        return _make_loader(self.key_type, self.key_codec, KeyDecodeError, "key", None)

    def value_loader(self) -> Loader:
        """One callable ``bytes | None -> value`` for a loop over many messages.

        >>> from faust import Schema
        >>> load = Schema(value_type=int, value_serializer='raw').value_loader()
        >>> [load(data) for data in (b'1', b'2')]
        [1, 2]

        Failures raise :class:`~faust.exceptions.ValueDecodeError` (the caller adds
        the topic, partition and offset). For a Record with the json codec this is
        ``Model.from_data(orjson.loads(data))`` and nothing else.
        """
        return _make_loader(
            self.value_type, self.value_codec, ValueDecodeError, "value", self.allow_empty
        )

    def loads_key(
        self,
        data: Any,
        message: Any = None,
        *,
        loads: Callable[..., Any] | None = None,
        serializer: CodecArg | None = None,
    ) -> Any:
        """Decode a message key (None stays None).

        Called as ``loads_key(data)`` with the key's bytes, or as Faust calls it,
        ``loads_key(app, message, loads=None, serializer=None)``.
        """
        if message is None:
            return self.key_loader()(data)
        if loads is not None:
            return loads(self.key_type, message.key, serializer=serializer or self.key_serializer)
        schema = self.derive(key_serializer=serializer) if serializer else self
        return schema.key_loader()(message.key)

    def loads_value(
        self,
        data: Any,
        message: Any = None,
        *,
        loads: Callable[..., Any] | None = None,
        serializer: CodecArg | None = None,
    ) -> Any:
        """Decode a message value; None or empty only with ``allow_empty=True``.

        Called as ``loads_value(data)`` with the value's bytes, or as Faust calls it,
        ``loads_value(app, message, loads=None, serializer=None)``. A subclass may
        override either form; a topic calls the override for every message::

            class Upper(faust.Schema):
                def loads_value(self, app, message, *, loads=None, serializer=None):
                    return message.value.decode().upper()

            topic = app.topic('words', schema=Upper())
        """
        if message is None:
            return self.value_loader()(data)
        if loads is not None:
            return loads(
                self.value_type, message.value, serializer=serializer or self.value_serializer
            )
        schema = self.derive(value_serializer=serializer) if serializer else self
        return schema.value_loader()(message.value)

    def message_loaders(self, app: Any) -> tuple[MessageLoader, MessageLoader] | None:
        """``(key_of, value_of)`` taking a whole message, when a subclass overrides
        ``loads_key`` or ``loads_value``; None for the default decoding (batch loaders).

        Topics ask once, when they are created, so the default path pays nothing.
        """
        cls = type(self)
        if cls.loads_key is Schema.loads_key and cls.loads_value is Schema.loads_value:
            return None
        return (
            self._message_loader(app, "key", cls.loads_key is Schema.loads_key),
            self._message_loader(app, "value", cls.loads_value is Schema.loads_value),
        )

    def _message_loader(self, app: Any, side: str, default: bool) -> MessageLoader:
        error: type[DecodeError]
        if side == "key":
            method, error, attr = self.loads_key, KeyDecodeError, "key"
            bytes_loader = self.key_loader
        else:
            method, error, attr = self.loads_value, ValueDecodeError, "value"
            bytes_loader = self.value_loader
        if default:
            load = bytes_loader()
            return lambda message: load(getattr(message, attr))
        if not _takes_message(method):
            # An override of the bytes form: loads_value(self, data).
            return lambda message: method(getattr(message, attr))
        loads = _typed_loads(self, side)
        allow_empty = self.allow_empty and side == "value"

        def load_message(message: Any) -> Any:
            if allow_empty and message.value is None:
                return None
            try:
                return method(app, message, loads=loads)
            except DecodeError:
                raise
            except Exception as exc:
                data = show(getattr(message, attr))
                raise error(
                    f"{type(self).__name__}.loads_{side} failed for {data}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc

        return load_message

    # -- encoding ----------------------------------------------------------------------

    def dumps_key(
        self,
        app: Any = _ABSENT,
        key: Any = _ABSENT,
        *,
        serializer: CodecArg | None = None,
        headers: Any = None,
    ) -> Any:
        """Encode a key; None stays None and bytes are taken as already encoded.

        Called as ``dumps_key(key)`` it returns the bytes; called as Faust calls it,
        ``dumps_key(app, key, serializer=None, headers=None)``, it returns
        ``(bytes, headers)`` (the headers from :meth:`on_dumps_key_prepare_headers`). A
        subclass may override the Faust form; topics then call it for every record.

        >>> Schema(key_type=str).dumps_key('k')
        b'k'
        >>> Schema(key_type=str).dumps_key(None, 'k', serializer='json')
        (b'"k"', None)
        """
        return self._dumps("key", app, key, serializer, headers)

    def dumps_value(
        self,
        app: Any = _ABSENT,
        value: Any = _ABSENT,
        *,
        serializer: CodecArg | None = None,
        headers: Any = None,
    ) -> Any:
        """Encode a value; None stays None and bytes are taken as already encoded.

        Called as ``dumps_value(value)`` it returns the bytes; called as Faust calls it,
        ``dumps_value(app, value, serializer=None, headers=None)``, it returns
        ``(bytes, headers)`` (see :meth:`on_dumps_value_prepare_headers`). A subclass may
        override the Faust form; topics then call it for every record::

            class Signed(faust.Schema):
                def dumps_value(self, app, value, *, serializer=None, headers=None):
                    data, headers = super().dumps_value(app, value, headers=headers)
                    return data, {**(headers or {}), 'signature': sign(data)}

        >>> Schema(value_type=int).dumps_value(None, 7)
        (b'7', None)
        """
        return self._dumps("value", app, value, serializer, headers)

    def _dumps(
        self, side: str, app: Any, obj: Any, serializer: CodecArg | None, headers: Any
    ) -> Any:
        """``dumps_key``/``dumps_value``: ``(obj)`` gives the bytes, Faust's ``(app, obj)``
        gives ``(bytes, headers)`` from the side's ``on_dumps_*_prepare_headers``."""
        if obj is _ABSENT:
            if app is _ABSENT:
                raise TypeError(
                    f"dumps_{side}() needs the {side}: dumps_{side}({side}), or (app, {side})"
                )
            return self._encode_side(app, serializer, side)
        data = self._encode_side(obj, serializer, side)
        if app is _ABSENT:
            return data
        prepare = getattr(self, f"on_dumps_{side}_prepare_headers")
        return data, prepare(obj, headers)

    def on_dumps_key_prepare_headers(self, key: Any, headers: Any) -> Any:
        """The headers to send with ``key`` (Faust's hook; default: ``headers``)."""
        return headers

    def on_dumps_value_prepare_headers(self, value: Any, headers: Any) -> Any:
        """The headers to send with ``value`` (Faust's hook; default: ``headers``)."""
        return headers

    def _encode_side(self, obj: Any, serializer: CodecArg | None, side: str) -> Any:
        if serializer is not None:
            return self._encode(obj, serializer, get_codec(serializer), side)
        if side == "key":
            return self._encode(obj, self.key_serializer, self.key_codec, side)
        return self._encode(obj, self.value_serializer, self.value_codec, side)

    def custom_dumps(self) -> bool:
        """True when a subclass overrides ``dumps_key``/``dumps_value`` or their
        header hooks: topics then encode every record through :meth:`encode`."""
        cls = type(self)
        return any(
            getattr(cls, name) is not getattr(Schema, name)
            for name in (
                "dumps_key",
                "dumps_value",
                "on_dumps_key_prepare_headers",
                "on_dumps_value_prepare_headers",
            )
        )

    def encode(
        self,
        app: Any,
        key: Any,
        value: Any,
        headers: Any = None,
        *,
        key_serializer: CodecArg | None = None,
        value_serializer: CodecArg | None = None,
    ) -> tuple[bytes | None, bytes | None, Any]:
        """``(key bytes, value bytes, headers)`` of a record, through this schema's
        ``dumps_key``/``dumps_value`` in whichever form a subclass overrides them.

        >>> Schema(key_type=str, value_type=int).encode(None, 'k', 1)
        (b'k', b'1', None)
        """
        # Key first, then value, each given the headers the other left (as Faust does).
        key_data, headers = self._encode_with("key", app, key, key_serializer, headers)
        value_data, headers = self._encode_with("value", app, value, value_serializer, headers)
        return key_data, value_data, headers

    def encode_key(self, app: Any, key: Any) -> bytes | None:
        """The bytes of ``key`` as this schema (or a subclass's override) encodes it.

        >>> Schema(key_type=str).encode_key(None, 'k')
        b'k'
        """
        return self._encode_with("key", app, key, None, None)[0]

    def encode_value(self, app: Any, value: Any) -> bytes | None:
        """The bytes of ``value`` as this schema (or a subclass's override) encodes it.

        >>> Schema(value_type=int).encode_value(None, 3)
        b'3'
        """
        return self._encode_with("value", app, value, None, None)[0]

    def _encode_with(
        self, side: str, app: Any, obj: Any, serializer: CodecArg | None, headers: Any
    ) -> tuple[Any, Any]:
        method = self.dumps_key if side == "key" else self.dumps_value
        base = Schema.dumps_key if side == "key" else Schema.dumps_value
        if getattr(type(self), f"dumps_{side}") is base or _takes_message(method):
            data, headers = method(app, obj, serializer=serializer, headers=headers)
        else:  # an override of the one-argument form: dumps_value(self, value)
            data = method(obj)
        return want_bytes(data) if data is not None else None, headers

    def key_dumper(self) -> Callable[[Any], bytes | None]:
        """``dumps_key`` for the common cases without its checks (what topics call)."""
        return self._make_dumper(
            self.key_serializer,
            self.key_codec,
            lambda key: self._encode(key, self.key_serializer, self.key_codec, "key"),
        )

    def value_dumper(self) -> Callable[[Any], bytes | None]:
        """``dumps_value`` for the common cases without its checks (what topics call)."""
        return self._make_dumper(
            self.value_serializer,
            self.value_codec,
            lambda value: self._encode(value, self.value_serializer, self.value_codec, "value"),
        )

    def _make_dumper(
        self, explicit: CodecArg | None, codec: Codec, slow: Callable[[Any], bytes | None]
    ) -> Callable[[Any], bytes | None]:
        # Fast paths give exactly what the slow path gives, else defer to it (which also
        # raises the proper errors): a str with the raw or json codec, a Record whose
        # codec is plain json.
        record_codec = self._codec_for_record
        orjson_dumps = orjson.dumps
        plain_json: dict[type, bool] = {}

        def is_plain_json(model: type) -> bool:
            if not issubclass(model, Record):
                return False
            chosen = codec if explicit is not None else record_codec(model, codec)
            return type(chosen) is json

        def dump(obj: Any) -> bytes | None:
            kind = type(obj)
            if kind is str:
                try:
                    if raw_codec:
                        return obj.encode()
                    if json_codec:
                        return memoryview(orjson_dumps(obj)).tobytes()
                except (UnicodeEncodeError, orjson.JSONEncodeError):
                    pass
                return slow(obj)
            plain = plain_json.get(kind)
            if plain is None:
                plain = plain_json[kind] = is_plain_json(kind)
            if plain:
                try:
                    data = orjson_dumps(obj.to_representation(), default=json_default)
                except Exception:
                    return slow(obj)
                if b"null" in data:
                    return slow(obj)  # which keeps a NaN or infinity orjson made null
                # Exact size: see the json codec.
                return memoryview(data).tobytes()
            return slow(obj)

        raw_codec = type(codec) is raw
        json_codec = type(codec) is json
        return dump

    def _encode(self, obj: Any, explicit: CodecArg | None, codec: Codec, side: str) -> Any:
        if obj is None or isinstance(obj, bytes):
            return obj
        if isinstance(obj, Record):
            if explicit is None:
                codec = self._codec_for_record(type(obj), codec)
            obj = obj.to_representation()
        try:
            return codec.dumps(obj)
        except EncodeError as exc:
            raise EncodeError(f"cannot encode {side} {show(obj)}: {exc}") from exc

    def _codec_for_record(self, model: type[Record], default: Codec) -> Codec:
        # A Record sent without a Schema serializer uses its class's own serializer.
        try:
            return self._record_codecs[model]
        except KeyError:
            codec = _resolve_codec(None, model, default)
            self._record_codecs[model] = codec
            return codec

    def __repr__(self) -> str:
        return (
            f"<Schema: key_type={_type_name(self.key_type)} key_serializer={self.key_codec.name} "
            f"value_type={_type_name(self.value_type)} "
            f"value_serializer={self.value_codec.name}>"
        )


def _takes_message(method: Any) -> bool:
    """True for Faust's form ``loads_value(app, message, ...)`` (two positional args)."""
    try:
        params = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in params)


def _typed_loads(schema: Schema, side: str) -> Callable[..., Any]:
    """Faust's ``app.serializers.loads_value(typ, data, serializer=...)`` for a schema."""
    loaders: dict[tuple[Any, Any], Loader] = {}

    def loads(typ: Any, data: bytes | None, *, serializer: CodecArg | None = None) -> Any:
        try:
            load = loaders[(typ, serializer)]
        except (KeyError, TypeError):
            if side == "key":
                derived = schema.derive(key_type=typ, key_serializer=serializer)
                load = derived.key_loader()
            else:
                derived = schema.derive(value_type=typ, value_serializer=serializer)
                load = derived.value_loader()
            try:
                loaders[(typ, serializer)] = load
            except TypeError:
                pass  # an unhashable serializer object: not cached
        return load(data)

    return loads


def _type_name(tp: Any) -> str:
    if get_origin(tp) is not None:
        return repr(tp)  # list[str], not the origin's bare name
    return getattr(tp, "__qualname__", None) or repr(tp)


def _is_record(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, Record)


def _resolve_codec(explicit: CodecArg | None, tp: Any, default: CodecArg) -> Codec:
    if explicit:
        return get_codec(explicit)
    if tp is bytes:
        return get_codec("raw")  # bytes means the payload as it is, never decoded
    if _is_record(tp):
        if tp._options.serializer:
            return get_codec(tp._options.serializer)
        codec = get_codec(default)
        # raw cannot carry a Record (the default for keys): use json instead.
        return get_codec("json") if isinstance(codec, raw) else codec
    return get_codec(default)


def _make_loader(
    tp: Any, codec: Codec, error: type[DecodeError], side: str, allow_empty: bool | None
) -> Loader:
    """The decode function for one side; ``allow_empty`` None means "this is a key"."""
    is_key = allow_empty is None
    target = f"{_type_name(tp) if tp is not None else 'untyped data'} ({codec.name} codec)"

    def fail(data: bytes | None, exc: BaseException | None) -> Any:
        if data is None:
            if is_key or allow_empty:
                return None
            raise error(
                f"the message has no {side} (a tombstone?) but {target} needs one; "
                f"use allow_empty=True to receive None"
            ) from exc
        if allow_empty and not data:
            return None
        reason = f"{type(exc).__name__}: {exc}" if exc is not None else "empty"
        raise error(f"cannot decode {side} {show(data)} as {target}: {reason}") from exc

    if _is_record(tp) and type(codec) is json:
        # The hot path: no codec object, no type checks, one try block (free when
        # nothing raises). None and b'' fail in orjson and are sorted out in fail().
        from_data = tp.from_data
        orjson_loads = orjson.loads

        def load_record_json(data: bytes | None) -> Any:
            try:
                return from_data(orjson_loads(data))  # type: ignore[arg-type]
            except Exception as exc:
                try:
                    # NaN or Infinity in the JSON: the codec reads those (the slow way).
                    return from_data(codec.loads(data))  # type: ignore[arg-type]
                except Exception:
                    return fail(data, exc)

        return load_record_json

    codec_loads = codec.loads
    convert = None if tp is bytes and type(codec) is raw else _converter(tp)
    if tp is None and type(codec) is not raw:
        # Untyped: a Record still comes back as one (its JSON names its class), as it
        # went out, so a table reads the same before and after a restore.
        convert = maybe_model
    if type(codec) is raw:
        # raw decoding is the identity: skip the codec (str keys are the common case).
        if convert is None:

            def load_raw(data: bytes | None) -> Any:
                if data is None or (allow_empty and not data):
                    return fail(data, None)
                return data

            return load_raw
        if tp is str:
            # The commonest key of all: utf-8 text. bytes.decode is the whole job.
            decode = bytes.decode

            def load_raw_str(data: bytes | None) -> Any:
                try:
                    return decode(data)  # type: ignore[arg-type]
                except Exception as exc:
                    return fail(data, exc)

            return load_raw_str
        raw_convert = convert

        def load_raw_typed(data: bytes | None) -> Any:
            if data is None or (allow_empty and not data):
                return fail(data, None)
            try:
                return raw_convert(data)
            except Exception as exc:
                return fail(data, exc)

        return load_raw_typed

    def load(data: bytes | None) -> Any:
        if data is None or (not data and allow_empty):
            return fail(data, None)
        try:
            obj = codec_loads(data)
            return obj if convert is None else convert(obj)
        except Exception as exc:
            return fail(data, exc)

    return load


def _converter(tp: Any) -> Callable[[Any], Any] | None:
    """Brings a codec's output to ``tp`` (raw gives bytes where ``int`` is wanted)."""
    if tp is None:
        return None
    if _is_record(tp):
        model: type[Record] = tp

        def to_record(obj: Any) -> Any:
            return obj if isinstance(obj, model) else model.from_data(obj)

        return to_record
    origin = get_origin(tp)
    if origin in _COLLECTIONS:
        return _collection_converter(tp, origin)
    return _SCALARS.get(tp)


#: Collection types a schema converts member by member (``list[str]``, ``set[int]``).
_COLLECTIONS = (list, set, frozenset)


def _collection_converter(tp: Any, origin: type) -> Callable[[Any], Any]:
    # The codec gives a list (JSON has no sets): build ``origin`` from it, each member
    # converted to the member type, so a list never reaches a str converter whole.
    (member_type,) = get_args(tp) or (None,)
    convert_member = _converter(member_type)

    def to_collection(obj: Any) -> Any:
        if not isinstance(obj, list | tuple | set | frozenset):
            raise TypeError(f"expected a list, got {type(obj).__name__}")
        if convert_member is None:
            return origin(obj)
        return origin(map(convert_member, obj))

    return to_collection


def _to_str(obj: Any) -> str:
    if type(obj) is bytes:  # raw keys: checked first, this runs once per message
        return obj.decode()
    if isinstance(obj, str):
        return obj
    if isinstance(obj, bytes | bytearray | memoryview):
        return bytes(obj).decode()
    if isinstance(obj, int | float) and not isinstance(obj, bool):
        return str(obj)  # a JSON number where text is wanted: its digits
    # Never str() of a list or dict: its repr would pass for the text that was sent.
    raise TypeError(f"expected a str, got {type(obj).__name__}")


def _to_int(obj: Any) -> int:
    if type(obj) is int:
        return obj
    if isinstance(obj, bool) or not isinstance(obj, int | str | bytes | float | Decimal):
        raise TypeError(f"expected an int, got {type(obj).__name__}")
    if isinstance(obj, float | Decimal) and obj != int(obj):
        raise ValueError(f"{obj} is not a whole number")
    return int(obj)


def _to_float(obj: Any) -> float:
    if type(obj) is float:
        return obj
    if isinstance(obj, bool) or not isinstance(obj, int | str | bytes | Decimal):
        raise TypeError(f"expected a float, got {type(obj).__name__}")
    return float(obj)


_SCALARS: dict[Any, Callable[[Any], Any]] = {
    str: _to_str,
    bytes: want_bytes,
    int: _to_int,
    float: _to_float,
}
