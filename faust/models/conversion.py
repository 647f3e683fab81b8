"""Converters built once per field from its type annotation.

A Record turns each annotation into at most two small functions when the class is
defined: one that brings a decoded value to the annotated type (``List[Point]``:
dicts to Points, ``Decimal``: str to Decimal) and one that brings a value to its
JSON-ready representation. A field that needs neither gets ``None`` and costs
nothing per message, which is what keeps flat records fast.
"""

from __future__ import annotations

import collections.abc as cabc
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, Union, get_args, get_origin
from uuid import UUID

__all__ = [
    "Converter",
    "Conversion",
    "unwrap_optional",
    "converter",
    "representer",
    "represent_any",
    "type_repr",
    "is_record_type",
]

Converter = Callable[[Any], Any]
NoneType = type(None)

_LIST_ORIGINS = {list, cabc.Sequence, cabc.MutableSequence, cabc.Iterable, cabc.Collection}
_SET_ORIGINS = {set, cabc.Set, cabc.MutableSet}
_DICT_ORIGINS = {dict, cabc.Mapping, cabc.MutableMapping}
_CONTAINERS = _LIST_ORIGINS | _SET_ORIGINS | _DICT_ORIGINS | {tuple, frozenset}


@dataclass(frozen=True)
class Conversion:
    """How far a converter goes.

    ``coerce``: convert scalars to the annotated type (``'3'`` -> 3).
    ``parse_dates``: parse ISO strings into ``datetime``/``date``.
    ``polymorphic``: turn dicts carrying ``__faust`` metadata in ``Any`` fields into Records.
    """

    coerce: bool = False
    parse_dates: bool = False
    date_parser: Callable[[str], Any] = datetime.fromisoformat
    polymorphic: bool = False


def is_record_type(tp: Any) -> bool:
    from faust.models.record import Record

    return isinstance(tp, type) and issubclass(tp, Record)


def unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """``Optional[X]`` -> ``(X, True)``; ``X`` -> ``(X, False)``.

    ``Any``, ``object`` and ``None`` admit None, so they count as optional.
    """
    if get_origin(tp) in (Union, types.UnionType):
        args = get_args(tp)
        rest = tuple(a for a in args if a is not NoneType)
        if len(rest) == len(args):
            return tp, False
        if len(rest) == 1:
            return rest[0], True
        return Union[rest], True  # noqa: UP007 -- built from a runtime tuple
    return tp, tp in (Any, object, NoneType, None)


def converter(tp: Any, how: Conversion) -> Converter | None:
    """A function bringing a decoded value to type ``tp``, or None if none is needed.

    Every converter passes None through: whether None is allowed is validation's call.
    """
    tp = unwrap_optional(tp)[0]
    if isinstance(tp, typing.TypeVar) or tp is Any or tp is object:
        return _from_blessed if how.polymorphic else None
    if is_record_type(tp):
        return _record_converter(tp)
    origin = get_origin(tp)
    if origin is not None:
        return _generic_converter(tp, origin, how)
    if isinstance(tp, type):
        if tp in _ALWAYS:
            return _ALWAYS[tp]
        if issubclass(tp, Enum):
            return _enum_converter(tp)
        if tp in (datetime, date):
            if how.parse_dates or how.coerce:
                return _date_converter(tp, how.date_parser)
            return None
        if tp in _CONTAINERS:  # bare ``list``, ``dict``...: as with Any items
            return _generic_converter(tp, tp, how)
        if how.coerce:
            return _COERCE.get(tp)
    supertype = getattr(tp, "__supertype__", None)  # typing.NewType
    if supertype is not None:
        return converter(supertype, how)
    return None


def _generic_converter(tp: Any, origin: Any, how: Conversion) -> Converter | None:
    args = get_args(tp)
    if origin in (Union, types.UnionType):
        # Which member a plain dict is meant to be cannot be known; the metadata says.
        if how.polymorphic or any(is_record_type(a) for a in args):
            return _from_blessed
        return None
    if origin is typing.Literal:
        return None
    if origin in _DICT_ORIGINS:
        # JSON object keys are always text, so numeric keys are converted back even
        # without coerce (as Decimal values are).
        key_how = replace(how, coerce=True) if args and args[0] in (int, float) else how
        key = converter(args[0], key_how) if args else None
        value = converter(args[1], how) if len(args) > 1 else None
        return _dict_converter(key, value)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis or not args:
            return _sequence_converter(tuple, converter(args[0], how) if args else None)
        if args == ((),):  # Tuple[()]
            return _sequence_converter(tuple, None)
        return _fixed_tuple_converter(tuple(converter(a, how) for a in args))
    item = converter(args[0], how) if args else None
    if origin in _LIST_ORIGINS:
        return _sequence_converter(list, item, keep_same=not how.coerce)
    if origin in _SET_ORIGINS:
        return _sequence_converter(set, item)
    if origin is frozenset:
        return _sequence_converter(frozenset, item)
    return None


def _sequence_converter(
    kind: type, item: Converter | None, keep_same: bool = False
) -> Converter | None:
    if item is None:
        if keep_same:
            return None  # a JSON list already is a list

        def convert(value: Any) -> Any:
            if value is None or type(value) is kind:
                return value
            return kind(value)

        return convert

    def convert_items(value: Any) -> Any:
        if value is None:
            return None
        return kind(item(v) for v in value) if kind is not list else [item(v) for v in value]

    return convert_items


def _fixed_tuple_converter(items: tuple[Converter | None, ...]) -> Converter:
    convs = tuple(c or _identity for c in items)

    def convert(value: Any) -> Any:
        if value is None:
            return None
        if len(value) != len(convs):
            raise ValueError(f"expected {len(convs)} items, got {len(value)}")
        return tuple(c(v) for c, v in zip(convs, value, strict=True))

    return convert


def _dict_converter(key: Converter | None, value: Converter | None) -> Converter | None:
    if key is None and value is None:
        return None
    k = key or _identity
    v = value or _identity

    def convert(mapping: Any) -> Any:
        if mapping is None:
            return None
        return {k(a): v(b) for a, b in mapping.items()}

    return convert


def _identity(value: Any) -> Any:
    return value


def _record_converter(model: Any) -> Converter:
    def convert(value: Any) -> Any:
        if value is None or isinstance(value, model):
            return value
        # Looked up per call: the model may regenerate from_data (a subclass appeared).
        return model.from_data(value)

    return convert


def _from_blessed(value: Any) -> Any:
    """A dict whose ``__faust`` metadata names a known model becomes that model."""
    if isinstance(value, dict):
        meta = value.get("__faust")
        if meta is not None:
            from faust.models.record import registry

            ns = meta.get("ns") if isinstance(meta, dict) else None
            model = registry.get(ns) if isinstance(ns, str) else None
            if model is not None:
                return model.from_data(value)
    return value


def _enum_converter(enum: type[Enum]) -> Converter:
    def convert(value: Any) -> Any:
        if value is None or isinstance(value, enum):
            return value
        return enum(value)

    return convert


def _date_converter(kind: type, parse: Callable[[str], Any]) -> Converter:
    if kind is date:
        parse = date.fromisoformat

    def convert(value: Any) -> Any:
        if isinstance(value, str):
            return parse(value)
        return value

    return convert


def _to_decimal(value: Any) -> Any:
    if value is None or isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        # Decimal(0.1) keeps the float's binary error; the shortest repr does not.
        return Decimal(repr(value))
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"cannot convert {type(value).__name__} to Decimal")
    try:
        return Decimal(value)
    except InvalidOperation:
        raise ValueError("not a decimal number") from None


def _to_bytes(value: Any) -> Any:
    # JSON has no bytes: the json codec writes them as UTF-8 text.
    return value.encode() if isinstance(value, str) else value


def _to_uuid(value: Any) -> Any:
    return UUID(value) if isinstance(value, str) else value


# Conversions done on every decode: the codec turned these types into text.
_ALWAYS: dict[type, Converter] = {Decimal: _to_decimal, bytes: _to_bytes, UUID: _to_uuid}


def _coerce_int(value: Any) -> Any:
    if type(value) is int or value is None:
        return value
    if isinstance(value, float | Decimal):
        if value != int(value):
            raise ValueError("has a fractional part")
        return int(value)
    if isinstance(value, str | bytes):
        return int(value)
    raise TypeError(f"cannot convert {type(value).__name__} to int")


def _coerce_float(value: Any) -> Any:
    if type(value) is float or value is None:
        return value
    if isinstance(value, int | Decimal | str | bytes):
        return float(value)
    raise TypeError(f"cannot convert {type(value).__name__} to float")


def _coerce_str(value: Any) -> Any:
    if type(value) is str or value is None:
        return value
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


_TRUE = frozenset({"true", "1", "yes", "on", "t", "y"})
_FALSE = frozenset({"false", "0", "no", "off", "f", "n", ""})


def _coerce_bool(value: Any) -> Any:
    if value is None or value is True or value is False:
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValueError("is not a boolean (true/false, yes/no, 1/0)")


_COERCE: dict[type, Converter] = {
    int: _coerce_int,
    float: _coerce_float,
    str: _coerce_str,
    bool: _coerce_bool,
}


# -- representation ------------------------------------------------------------------


def representer(tp: Any) -> Converter | None:
    """A function making a value of type ``tp`` JSON-ready (Records to dicts), or None."""
    tp = unwrap_optional(tp)[0]
    if is_record_type(tp):
        return _represent_record
    origin = get_origin(tp)
    if origin is None:
        if isinstance(tp, type) and not issubclass(tp, list | dict | set | frozenset | tuple):
            # Plain scalar or class: the codec handles it (a Record subclass instance in
            # an ``int`` field is a bug validation reports, not something to paper over).
            return None
        return represent_any
    args = get_args(tp)
    if origin in _DICT_ORIGINS:
        value = representer(args[1]) if len(args) > 1 else represent_any
        if value is None:
            return None
        return lambda m: None if m is None else {k: value(v) for k, v in m.items()}
    if origin in (Union, types.UnionType):
        if all(representer(a) is None for a in args):
            return None
        return represent_any
    if origin is typing.Literal:
        return None
    if origin is tuple and len(args) > 1 and args[1] is not Ellipsis:
        return represent_any if any(representer(a) for a in args) else None
    item = representer(args[0]) if args else represent_any
    if item is None:
        return None
    return lambda s: None if s is None else [item(v) for v in s]


def _represent_record(value: Any) -> Any:
    to_representation = getattr(value, "to_representation", None)
    if to_representation is None:  # None, or a dict put in the field by hand
        return represent_any(value)
    return to_representation()


def represent_any(value: Any) -> Any:
    """Representation of a value of unknown type: Records anywhere inside become dicts."""
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, dict):
        return {k: represent_any(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [represent_any(v) for v in value]
    if not isinstance(value, type):
        to_representation = getattr(value, "to_representation", None)
        if to_representation is not None:
            return to_representation()
    return value


def type_repr(tp: Any) -> str:
    """A short readable name for an annotation: ``List[Point]``, ``int``, ``Optional[str]``."""
    if tp is None or tp is NoneType:
        return "None"
    if isinstance(tp, str):
        return tp
    inner, optional = unwrap_optional(tp)
    if optional and inner is not tp and tp not in (Any, object):
        return f"Optional[{type_repr(inner)}]"
    origin, args = get_origin(tp), get_args(tp)
    if origin is not None and args:
        if origin in (Union, types.UnionType):
            return " | ".join(type_repr(a) for a in args)
        name = getattr(tp, "_name", None) or getattr(origin, "__name__", repr(origin))
        shown = ", ".join("..." if a is Ellipsis else type_repr(a) for a in args)
        return f"{name}[{shown}]"
    if isinstance(tp, type):
        return tp.__name__
    return repr(tp).replace("typing.", "")
