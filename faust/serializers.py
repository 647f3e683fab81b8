"""Codecs: turn Python objects into bytes and back.

A codec has ``dumps(obj) -> bytes`` and ``loads(data) -> obj``. Codecs chain with
``|``: the left one dumps first and loads last::

    >>> from faust.serializers import binary, json, get_codec
    >>> codec = json() | binary()          # same as get_codec('json|binary')
    >>> codec.dumps({'a': 1})
    b'eyJhIjoxfQ=='
    >>> codec.loads(b'eyJhIjoxfQ==')
    {'a': 1}

Built-in codecs are registered by name: ``raw``, ``json``, ``pickle``, ``binary``.
A custom codec subclasses :class:`Codec`, overrides ``_dumps``/``_loads`` and is
registered with :func:`register`.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json as _stdlib_json
import math
import pickle as _pickle
from collections import UserDict
from collections.abc import Callable, Mapping
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

import orjson

from faust.exceptions import DecodeError, EncodeError, ImproperlyConfigured

__all__ = [
    "Codec",
    "ChainedCodec",
    "CodecArg",
    "CodecRegistry",
    "raw",
    "json",
    "pickle",
    "binary",
    "codecs",
    "register",
    "get_codec",
    "dumps",
    "loads",
    "json_default",
]


class Codec:
    """One step of turning objects into bytes (``dumps``) and back (``loads``).

    Subclass it and override ``_dumps``/``_loads``; errors raised there are wrapped in
    :class:`~faust.exceptions.EncodeError`/:class:`~faust.exceptions.DecodeError`::

        class rot13(Codec):
            name = 'rot13'

            def _dumps(self, obj):
                return codecs.encode(obj.decode(), 'rot13').encode()

            def _loads(self, data):
                return codecs.encode(data.decode(), 'rot13').encode()

        register('rot13', rot13)
        get_codec('json|rot13').dumps({'a': 1})
    """

    #: Name used in error messages and ``repr``; registry names may differ.
    name: str = "codec"

    def dumps(self, obj: Any) -> bytes:
        try:
            return self._dumps(obj)
        except EncodeError:
            raise
        except Exception as exc:
            raise EncodeError(
                f"{self.name} codec cannot encode {type(obj).__name__}: {exc}"
            ) from exc

    def loads(self, data: bytes) -> Any:
        try:
            return self._loads(data)
        except DecodeError:
            raise
        except Exception as exc:
            raise DecodeError(f"{self.name} codec cannot decode {_preview(data)}: {exc}") from exc

    def _dumps(self, obj: Any) -> bytes:
        raise NotImplementedError(f"{type(self).__name__} must implement _dumps()")

    def _loads(self, data: bytes) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement _loads()")

    def __or__(self, other: Codec) -> ChainedCodec:
        if not isinstance(other, Codec):
            return NotImplemented
        return ChainedCodec(*_parts(self), *_parts(other))

    def __eq__(self, other: object) -> bool:
        # Codecs are stateless: two instances of one class behave the same.
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ChainedCodec(Codec):
    """Several codecs applied in order on ``dumps`` and in reverse on ``loads``.

    Built with ``|`` or a ``'json|binary'`` string rather than directly.
    """

    def __init__(self, *codecs: Codec) -> None:
        self.codecs = codecs
        self.name = "|".join(c.name for c in codecs)
        self._reversed = tuple(reversed(codecs))

    def dumps(self, obj: Any) -> Any:
        for codec in self.codecs:
            obj = codec.dumps(obj)
        return obj

    def loads(self, data: bytes) -> Any:
        for codec in self._reversed:
            data = codec.loads(data)
        return data

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ChainedCodec) and other.codecs == self.codecs

    def __hash__(self) -> int:
        return hash(self.codecs)

    def __repr__(self) -> str:
        return " | ".join(repr(c) for c in self.codecs)


def _parts(codec: Codec) -> tuple[Codec, ...]:
    return codec.codecs if isinstance(codec, ChainedCodec) else (codec,)


def _preview(data: Any) -> str:
    if isinstance(data, bytes | bytearray | memoryview):
        shown = bytes(data[:40])
        more = "..." if len(data) > 40 else ""
        return f"{len(data)} bytes {shown!r}{more}"
    return f"a {type(data).__name__}"


def want_bytes(obj: Any) -> bytes:
    """``obj`` as bytes: bytes as they are, str as UTF-8, bytearray/memoryview copied."""
    if isinstance(obj, bytes):
        return obj
    if isinstance(obj, str):
        return obj.encode()
    if isinstance(obj, bytearray | memoryview):
        return bytes(obj)
    raise TypeError(f"expected bytes or str, got {type(obj).__name__}")


# Codec classes have lower-case names, the Faust 1.x spelling: ``json() | binary()``.
class raw(Codec):
    """Bytes pass through; ``str`` is encoded as UTF-8, ``int``/``float`` as their digits.

    >>> raw().dumps('hello')
    b'hello'
    """

    name = "raw"

    def _dumps(self, obj: Any) -> bytes:
        if isinstance(obj, int | float) and not isinstance(obj, bool):
            # Numeric keys are common (user ids); their digits are the natural raw form.
            return str(obj).encode()
        try:
            return want_bytes(obj)
        except TypeError:
            raise EncodeError(
                f"raw codec takes bytes, str, int or float, not {type(obj).__name__}; "
                f"use serializer='json' for structured values"
            ) from None

    def _loads(self, data: bytes) -> Any:
        return data


def json_default(obj: Any) -> Any:
    """Convert what orjson cannot serialize natively (used as orjson's ``default=``).

    Records become their ``to_representation()``, Decimal a string, sets a list and
    bytes their UTF-8 text. datetime, UUID, tuples and enums orjson handles itself.
    """
    to_representation = getattr(obj, "to_representation", None)
    if to_representation is not None and not isinstance(obj, type):
        return to_representation()
    if isinstance(obj, Decimal):
        # A string keeps every digit; a float would round.
        return str(obj)
    if isinstance(obj, set | frozenset):
        return list(obj)
    if isinstance(obj, bytes | bytearray | memoryview):
        return bytes(obj).decode()
    to_json = getattr(obj, "__json__", None)
    if to_json is not None:
        return to_json()
    if isinstance(obj, datetime | date | time):  # subclasses orjson refuses
        return obj.isoformat()
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


_orjson_dumps = orjson.dumps
_orjson_loads = orjson.loads
_NON_STR_KEYS = orjson.OPT_NON_STR_KEYS


def has_non_finite(obj: Any) -> bool:
    """Whether ``obj`` holds a NaN or an infinite float (which orjson writes as null).

    >>> has_non_finite({'order': {'prices': [1.5, float('inf')]}})
    True
    """
    return _non_finite_path(obj, "", 0) is not None


def _stdlib_default(obj: Any) -> Any:
    # What orjson converts by itself and the standard library's json does not.
    if isinstance(obj, datetime | date | time):
        return obj.isoformat()
    if isinstance(obj, UUID):
        return str(obj)
    if isinstance(obj, Enum):
        return obj.value
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    return json_default(obj)


def _non_finite_path(obj: Any, where: str, depth: int) -> tuple[str, float] | None:
    if isinstance(obj, float):
        return None if math.isfinite(obj) else (where, obj)
    if depth > 100:
        return None
    if isinstance(obj, dict):
        items: Any = obj.items()
    elif isinstance(obj, list | tuple | set | frozenset):
        items = ((f"[{i}]", v) for i, v in enumerate(obj))
    elif hasattr(obj, "to_representation"):
        return _non_finite_path(obj.to_representation(), where, depth + 1)
    else:
        return None
    for key, value in items:
        step = key if isinstance(key, str) and key.startswith("[") else str(key)
        inner = f"{where}{step}" if step.startswith("[") else f"{where}.{step}" if where else step
        found = _non_finite_path(value, inner, depth + 1)
        if found is not None:
            return found
    return None


class json(Codec):
    """JSON through orjson. Records, datetime, Decimal, UUID, sets and bytes included.

    >>> json().dumps({'when': datetime(2024, 1, 1)})
    b'{"when":"2024-01-01T00:00:00"}'
    """

    name = "json"

    def _dumps(self, obj: Any) -> bytes:
        try:
            data = _orjson_dumps(obj, default=json_default)
        except orjson.JSONEncodeError:
            # Non-string dict keys (e.g. Dict[int, X]) need an option that makes every
            # dump slower, so it is only used on the rare payload that needs it.
            data = _orjson_dumps(obj, default=json_default, option=_NON_STR_KEYS)
        if b"null" in data and has_non_finite(obj):
            # orjson writes NaN and infinities as null, which would change the value.
            # The standard library writes NaN, Infinity and -Infinity, as Faust does;
            # loads() reads them back. (Only a value with a null in it is looked at.)
            data = _stdlib_json.dumps(
                obj, default=_stdlib_default, separators=(",", ":"), allow_nan=True
            ).encode()
        # orjson's output keeps the memory of its whole working buffer (4 KiB for a
        # 100-byte value in orjson 3.13): an exact-size copy (~0.2 us) keeps records
        # waiting in the producer, tables and queues from costing 40x their size.
        return memoryview(data).tobytes()

    def _loads(self, data: bytes) -> Any:
        try:
            return _orjson_loads(data)
        except orjson.JSONDecodeError:
            if b"NaN" in data or b"Infinity" in data:
                # Written for a value with NaN or infinities (here or by Faust).
                return _stdlib_json.loads(data)
            raise


class pickle(Codec):
    """Python pickle. Only for data you trust: loading a pickle can run code."""

    name = "pickle"

    def _dumps(self, obj: Any) -> bytes:
        return _pickle.dumps(obj)

    def _loads(self, data: bytes) -> Any:
        return _pickle.loads(data)


class binary(Codec):
    """Base64, usually chained after a codec whose output must be text-safe.

    >>> (json() | binary()).dumps(1)
    b'MQ=='
    """

    name = "binary"

    def _dumps(self, obj: Any) -> bytes:
        return base64.b64encode(want_bytes(obj))

    def _loads(self, data: bytes) -> Any:
        try:
            return base64.b64decode(data, validate=True)
        except binascii.Error as exc:
            raise DecodeError(f"binary codec cannot decode {_preview(data)}: {exc}") from exc


#: What may be given where a codec is expected: a registered name, a chain
#: such as ``'json|binary'``, or a :class:`Codec`.
CodecArg = str | Codec

CodecFactory = Callable[[], Codec]


# The Codec class under a name the registry's class body does not shadow.
_Codec = Codec


class CodecRegistry(UserDict[str, "_Codec | CodecFactory"]):
    """Codecs by name: a Codec instance, or a class/factory returning one.

    The module-level :func:`register`, :func:`get_codec`, :func:`dumps` and
    :func:`loads` are this registry's methods. It is importable as Faust 1.x's
    ``codecs`` module too::

        from faust.serializers import codecs

        class avro(codecs.Codec):
            ...

        codecs.register('avro', avro())
    """

    # Faust 1.x spellings: ``codecs.Codec``, ``codecs.json()``... (inside this class
    # body ``Codec`` names the attribute, hence the ``_Codec`` alias in annotations).
    Codec = Codec
    raw = raw
    json = json
    pickle = pickle
    binary = binary

    def __init__(self, entries: Mapping[str, _Codec | CodecFactory]) -> None:
        # Resolved codecs by the exact string asked for; dropped on any change.
        self._resolved: dict[str, _Codec] = {}
        super().__init__(entries)

    def __setitem__(self, name: str, codec: _Codec | CodecFactory) -> None:
        self._resolved.clear()
        super().__setitem__(name, codec)

    def __delitem__(self, name: str) -> None:
        self._resolved.clear()
        super().__delitem__(name)

    def register(self, name: str, codec: _Codec | CodecFactory) -> None:
        """Make a codec available by name (a Codec instance, class or factory).

        >>> register('myjson', json)
        >>> get_codec('myjson|binary')
        json() | binary()
        >>> del codecs['myjson']  # (the registry is the process's: leave it as it was)
        """
        if not name or "|" in name:
            raise ValueError(f"codec name must be non-empty and without '|': {name!r}")
        self[name] = codec

    def get_codec(self, name_or_codec: CodecArg) -> _Codec:
        """Return the codec for a name, a ``'a|b'`` chain, or a Codec (returned as is).

        >>> get_codec('json')
        json()

        Raises :class:`~faust.exceptions.ImproperlyConfigured` for an unknown name.
        """
        if isinstance(name_or_codec, _Codec):
            return name_or_codec
        try:
            return self._resolved[name_or_codec]
        except (KeyError, TypeError):  # TypeError: unhashable, so not a name
            pass
        if not isinstance(name_or_codec, str):
            raise ImproperlyConfigured(
                f"serializer must be a codec name or a Codec, not {type(name_or_codec).__name__}"
            )
        parts = [self._lookup(part.strip(), name_or_codec) for part in name_or_codec.split("|")]
        codec = (
            parts[0] if len(parts) == 1 else ChainedCodec(*(p for c in parts for p in _parts(c)))
        )
        self._resolved[name_or_codec] = codec
        return codec

    def _lookup(self, name: str, asked: str) -> _Codec:
        try:
            entry = self.data[name]
        except KeyError:
            known = ", ".join(sorted(self.data))
            raise ImproperlyConfigured(
                f"unknown serializer {name!r} (in {asked!r}); known codecs: {known}. "
                f"Register a custom one with faust.serializers.register(name, codec)."
            ) from None
        return entry if isinstance(entry, _Codec) else entry()

    def dumps(self, codec: CodecArg | None, obj: Any) -> Any:
        """Encode ``obj`` with a codec; with ``codec=None`` the object is returned as is.

        >>> dumps('json', [1, 2])
        b'[1,2]'
        """
        if codec is None:
            return obj
        return self.get_codec(codec).dumps(obj)

    def loads(self, codec: CodecArg | None, data: bytes) -> Any:
        """Decode ``data`` with a codec; with ``codec=None`` the data is returned as is.

        >>> loads('json', b'[1,2]')
        [1, 2]
        """
        if codec is None:
            return data
        return self.get_codec(codec).loads(data)


#: The codecs known by name.
codecs = CodecRegistry({"raw": raw, "json": json, "pickle": pickle, "binary": binary})

register = codecs.register
get_codec = codecs.get_codec
dumps = codecs.dumps
loads = codecs.loads
