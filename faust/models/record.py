"""faust.Record: a typed message, declared with annotations like a dataclass.

>>> from faust import Record
>>> class Point(Record, serializer='json', namespace='example.Point'):
...     x: int
...     y: int = 0
>>> p = Point(1, y=2)
>>> p.dumps()
b'{"x":1,"y":2,"__faust":{"ns":"example.Point"}}'
>>> Point.loads(p.dumps()) == p
True

Each Record class is prepared once, when it is defined: annotations are resolved,
every field gets a :class:`~faust.models.fields.FieldDescriptor`, and ``__init__``,
``from_data``, ``to_representation``, ``asdict`` and ``__eq__`` are generated for
exactly its fields (see :mod:`faust.models.codegen`). When an annotation names a
class that does not exist yet, this waits until the class is first used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar, TypeVar

from faust import serializers
from faust.exceptions import ValidationError
from faust.models.codegen import ClassPlan
from faust.models.conversion import type_repr
from faust.models.fields import MISSING, FieldDescriptor
from faust.models.preparation import (
    Declared,
    caller_locals,
    declare_fields,
    finalize_class,
    register,
    registry,
    resolve_model,
)

__all__ = [
    "Record",
    "RecordType",
    "ModelOptions",
    "registry",
    "describe_fields",
    "describe_model",
    "maybe_model",
]

R = TypeVar("R", bound="Record")

_METADATA_KEY = "__faust"


@dataclass
class ModelOptions:
    """A Record class's options (class keyword arguments) and, once resolved, fields.

    >>> from faust import Record
    >>> class Point(Record, namespace='example.Point'):
    ...     x: int
    ...     y: int = 0
    >>> Point._options.namespace, Point._options.fieldnames
    ('example.Point', ('x', 'y'))
    """

    #: Name in the registry and in ``'__faust': {'ns': ...}``; ``module.QualName``.
    namespace: str = ""
    #: Codec for ``dumps``/``loads`` and topics of this type; None: the app's default.
    serializer: serializers.CodecArg | None = None
    #: Add ``'__faust': {'ns': namespace}`` to the representation (polymorphic loads).
    include_metadata: bool = True
    #: Parse ISO 8601 strings in ``datetime``/``date`` fields when decoding.
    isodates: bool = False
    #: Check every field's rules on construction and decode; raise the first error.
    validation: bool = False
    #: Convert values to the annotated type (``'3'`` -> 3) on construction and decode.
    coerce: bool = False
    #: Payloads naming this model decode as it even where another type is expected.
    allow_blessed_key: bool = False
    #: ``Any``/``object`` fields turn dicts carrying ``__faust`` metadata into Records.
    polymorphic_fields: bool = False
    #: Accepted for Faust 1.x compatibility: Decimal fields are always decoded.
    decimals: bool = True
    #: Parses date strings instead of ``datetime.fromisoformat``.
    date_parser: Callable[[str], Any] | None = None
    #: A base class: not in the registry; decoding it dispatches on the namespace.
    abstract: bool = False
    #: ``{type: callable}``: a field of that type (or a tuple of types) is converted
    #: by the callable on construction and decode, members of ``list[T]`` and
    #: ``dict[K, T]`` too. Subclasses add to their base's mapping.
    coercions: dict[Any, Callable[[Any], Any]] = field(default_factory=dict)
    #: Resolve the fields on first use (or ``make_final()``) instead of at definition.
    lazy_creation: bool = False

    # Filled in when the annotations are resolved.
    fields: dict[str, Any] = field(default_factory=dict)  # name -> type
    descriptors: dict[str, FieldDescriptor[Any]] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)  # only fields with a default
    optionalset: frozenset[str] = frozenset()

    @property
    def fieldnames(self) -> tuple[str, ...]:
        return tuple(self.fields)


_OPTION_NAMES = frozenset(
    f.name
    for f in fields(ModelOptions)
    if f.name not in {"fields", "descriptors", "defaults", "optionalset"}
)


class RecordType(type):
    """Metaclass of Record: reading a field on the class gives its FieldDescriptor.

    The descriptors are deliberately not class attributes. An attribute of the same
    name on the class, even a non-data descriptor, stops CPython from specializing
    ``record.x`` and ``record.x = ...`` on instances, making every field read about
    four times slower; ``__getattr__`` here only runs when normal lookup fails.
    """

    def __getattr__(cls, name: str) -> Any:
        if not name.startswith("__"):
            declared = cls._faust_declared.get(name)
            if declared is not None:
                cls._finalize()  # so that .type is known
                return declared.descriptor
        raise AttributeError(f"type object {cls.__qualname__!r} has no attribute {name!r}")

    def __dir__(cls) -> list[str]:
        return sorted({*super().__dir__(), *cls._faust_declared})

    # Declared for type checkers: these are set on every Record class.
    _faust_declared: dict[str, Declared]

    def _finalize(cls) -> None: ...


class Record(metaclass=RecordType):
    """Base class of typed messages: declare the fields with annotations.

    >>> from faust import Record
    >>> class Point(Record, serializer='json'):
    ...     x: int
    ...     y: int = 0
    >>> Point.loads(Point(1, y=2).dumps())
    Point(x=1, y=2)
    >>> Point.x.field       # on the class, a field is its FieldDescriptor
    'x'

    Class options (keyword arguments of the class statement) are described in
    :class:`ModelOptions`: ``serializer``, ``namespace``, ``include_metadata``,
    ``isodates``, ``validation``, ``coerce``, ``allow_blessed_key``,
    ``polymorphic_fields``, ``decimals``, ``date_parser``, ``abstract``, ``coercions``,
    ``lazy_creation``.
    """

    _options: ClassVar[ModelOptions] = ModelOptions(namespace="faust.Record", abstract=True)
    _faust_declared: ClassVar[dict[str, Declared]] = {}
    _faust_ready: ClassVar[bool] = True
    _faust_plan: ClassVar[ClassPlan | None] = None
    _faust_localns: ClassVar[dict[str, Any] | None] = None
    _faust_finalizing: ClassVar[bool] = False
    _faust_dispatch: ClassVar[bool] = False

    def __init_subclass__(cls, **options: Any) -> None:
        super().__init_subclass__()
        unknown = set(options) - _OPTION_NAMES
        if unknown:
            raise TypeError(
                f"{cls.__qualname__}: unknown Record option(s) {', '.join(sorted(unknown))}; "
                f"known options: {', '.join(sorted(_OPTION_NAMES))}"
            )
        if "__init__" in cls.__dict__:
            raise TypeError(
                f"{cls.__qualname__} defines __init__, but Records generate their own; "
                f"define __post_init__(self) for extra set-up instead"
            )
        base = next(b for b in cls.__mro__[1:] if issubclass(b, Record))
        if "coercions" in options:
            options["coercions"] = _merge_coercions(cls, base._options.coercions, options)
        lazy = options.pop("lazy_creation", False)
        cls._options = replace(
            base._options,
            namespace=options.pop("namespace", None) or f"{cls.__module__}.{cls.__qualname__}",
            abstract=options.pop("abstract", False),
            fields={},
            descriptors={},
            defaults={},
            optionalset=frozenset(),
            lazy_creation=lazy,
            **options,
        )
        cls._faust_declared = declare_fields(cls)
        for name in cls._faust_declared:
            if name in cls.__dict__:  # the default, now kept by the descriptor
                delattr(cls, name)
        cls._faust_ready = False
        cls._faust_localns = caller_locals(cls)
        # The base's methods double as "generate, then call" stubs; a subclass must not
        # inherit its parent's generated ones, which know only the parent's fields.
        for name in ("__init__", "from_data", "to_representation", "asdict", "__eq__"):
            setattr(cls, name, Record.__dict__[name])
        if not cls._options.abstract:
            register(cls)
        if lazy:
            return  # resolved by make_final() or on first use
        try:
            cls._finalize()
        except NameError:
            pass  # an annotation names a class defined later: retried on first use

    @classmethod
    def _finalize(cls) -> None:
        """Resolve annotations and generate the methods (once; cheap afterwards)."""
        if cls.__dict__.get("_faust_ready", False):
            return
        if cls.__dict__.get("_faust_finalizing"):
            return  # re-entered while resolving (a descriptor read on the class)
        cls._faust_finalizing = True
        try:
            finalize_class(cls)
        finally:
            cls._faust_finalizing = False

    @classmethod
    def make_final(cls) -> None:
        """Resolve the fields now (for ``lazy_creation=True`` classes; else a no-op).

        >>> from faust import Record
        >>> class Later(Record, lazy_creation=True):
        ...     x: int
        >>> Later.make_final()
        >>> Later(1)
        Later(x=1)
        """
        cls._finalize()

    # -- construction --------------------------------------------------------------------

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Replaced in every subclass by a generated __init__ taking its fields.
        cls = type(self)
        if cls is Record:
            raise TypeError("faust.Record is a base class: subclass it and declare fields")
        cls._finalize()
        cls.__init__(self, *args, **kwargs)

    def __post_init__(self) -> None:
        """Hook run after construction and after ``from_data``; override as needed."""

    # Lets generated code skip the call when no class overrides the hook.
    __post_init__.faust_noop = True  # type: ignore[attr-defined]

    @classmethod
    def from_data(cls: type[R], data: Mapping[str, Any]) -> R:
        """Build a record from a mapping, e.g. decoded JSON (the reverse of to_representation).

        Nested records, datetimes (with ``isodates``) and Decimals are converted. When
        ``data['__faust']['ns']`` names a subclass, the subclass is built::

            >>> from faust import Record
            >>> class Point(Record, namespace='example.Point'):
            ...     x: int
            ...     y: int = 0
            >>> Point.from_data({'x': 1, 'y': 2})
            Point(x=1, y=2)
        """
        # Replaced in every subclass by a generated from_data; here for faust.Record.
        if cls is Record:
            meta = data.get(_METADATA_KEY) if isinstance(data, Mapping) else None
            if meta is None:
                raise TypeError(
                    "faust.Record.from_data() needs data with '__faust': {'ns': ...} naming "
                    "the model; call from_data on the model class instead"
                )
            target = resolve_model(cls, meta)
            return target.from_data(data)  # type: ignore[return-value]
        cls._finalize()
        return cls.from_data(data)

    @classmethod
    def loads(
        cls: type[R],
        data: bytes,
        *,
        default_serializer: serializers.CodecArg | None = None,
        serializer: serializers.CodecArg | None = None,
    ) -> R:
        """Decode bytes into a record.

        The codec is ``serializer``, else the class's ``serializer`` option, else
        ``default_serializer``, else json::

            >>> from faust import Record
            >>> class Point(Record, namespace='example.Point'):
            ...     x: int
            ...     y: int = 0
            >>> Point.loads(b'{"x": 1, "y": 2}')
            Point(x=1, y=2)
        """
        codec = serializer or cls._options.serializer or default_serializer or "json"
        payload = serializers.get_codec(codec).loads(data)
        if isinstance(payload, cls):
            return payload
        return cls.from_data(payload)

    # -- output --------------------------------------------------------------------------

    def dumps(self, *, serializer: serializers.CodecArg | None = None) -> bytes:
        """Encode with ``serializer``, else the class's serializer option, else json.

        >>> from faust import Record
        >>> class Point(Record, namespace='example.Point'):
        ...     x: int
        ...     y: int = 0
        >>> Point(1, 2).dumps(serializer='json')
        b'{"x":1,"y":2,"__faust":{"ns":"example.Point"}}'
        """
        codec = serializer or self._options.serializer or "json"
        return serializers.get_codec(codec).dumps(self.to_representation())

    def to_representation(self) -> dict[str, Any]:
        """A JSON-ready dict: fields (nested records as dicts) plus ``'__faust'`` metadata.

        >>> from faust import Record
        >>> class Point(Record, namespace='example.Point'):
        ...     x: int
        ...     y: int = 0
        >>> Point(1, 2).to_representation()
        {'x': 1, 'y': 2, '__faust': {'ns': 'example.Point'}}
        """
        type(self)._finalize()
        return self.to_representation()

    def asdict(self) -> dict[str, Any]:
        """The fields as a dict (values as they are: nested records stay records).

        >>> from faust import Record
        >>> class Point(Record, namespace='example.Point'):
        ...     x: int
        ...     y: int = 0
        >>> Point(1, 2).asdict()
        {'x': 1, 'y': 2}
        """
        type(self)._finalize()
        return self.asdict()

    def derive(self: R, *records: Record, **fields: Any) -> R:
        """A copy with fields replaced by other records' fields and keyword arguments.

        >>> from faust import Record
        >>> class Point(Record, namespace='example.Point'):
        ...     x: int
        ...     y: int = 0
        >>> Point(1, 2).derive(y=5)
        Point(x=1, y=5)
        """
        data = self.asdict()
        for other in records:
            data.update((k, v) for k, v in other.asdict().items() if k in self._options.descriptors)
        data.update(fields)
        return type(self)(**data)

    # -- validation ----------------------------------------------------------------------

    def validate(self) -> list[ValidationError]:
        """Every rule the current field values break (an empty list when valid).

        >>> from faust import IntegerField, Record
        >>> class Person(Record):   # validation=False: nothing is checked on creation
        ...     age: int = IntegerField(min_value=0, max_value=150)
        >>> Person(age=200).validate()
        [ValidationError('Person.age: 200 is greater than max_value 150')]
        """
        values = self.__dict__
        errors: list[ValidationError] = []
        for name, descriptor in self._options.descriptors.items():
            errors.extend(descriptor.validate(values.get(name)))
        return errors

    def validate_or_raise(self) -> None:
        """Raise the first :class:`~faust.exceptions.ValidationError`, if any.

        >>> from faust import IntegerField, Record
        >>> class Person(Record):
        ...     age: int = IntegerField(min_value=0)
        >>> Person(age=-1).validate_or_raise()
        Traceback (most recent call last):
        ...
        faust.exceptions.ValidationError: Person.age: -1 is less than min_value 0
        """
        errors = self.validate()
        if errors:
            raise errors[0]

    def is_valid(self) -> bool:
        """True when :meth:`validate` finds nothing."""
        return not self.validate()

    @property
    def validation_errors(self) -> list[ValidationError]:
        """Same as :meth:`validate`."""
        return self.validate()

    # -- comparison and display ----------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        # Replaced in every subclass by a generated field-by-field comparison.
        type(self)._finalize()
        return self.__eq__(other)

    __hash__ = None  # type: ignore[assignment]  # mutable: equal records may change

    def __repr__(self) -> str:
        values = self.__dict__
        shown = ", ".join(f"{n}={values.get(n, MISSING)!r}" for n in self._options.fields)
        return f"{type(self).__name__}({shown})"


def _merge_coercions(
    cls: type, inherited: Mapping[Any, Any], options: dict[str, Any]
) -> dict[Any, Callable[[Any], Any]]:
    given = options["coercions"]
    if not isinstance(given, Mapping):
        raise TypeError(
            f"{cls.__qualname__}: coercions must be a mapping {{type: callable}}, "
            f"not {type(given).__name__}"
        )
    merged = dict(inherited)
    for types, fn in given.items():
        for tp in types if isinstance(types, tuple) else (types,):
            if not isinstance(tp, type) or not callable(fn):
                raise TypeError(
                    f"{cls.__qualname__}: coercions maps types to callables, e.g. "
                    f"{{Decimal: Decimal}}; got {tp!r}: {fn!r}"
                )
            merged[tp] = fn
    return merged


# -- introspection (faust models / faust model NAME) ------------------------------------


def maybe_model(arg: Any) -> Any:
    """``arg`` as the Record its ``__faust`` namespace names, if it is a dict naming a
    Record this process knows; else ``arg`` unchanged (what untyped values decode to).

    >>> class Pair(Record, namespace='doc.Pair'):
    ...     a: int
    >>> maybe_model({'a': 1, '__faust': {'ns': 'doc.Pair'}})
    Pair(a=1)
    >>> maybe_model({'a': 1})
    {'a': 1}
    """
    if type(arg) is dict:
        meta = arg.get(_METADATA_KEY)
        if type(meta) is dict:
            model = registry.get(meta.get("ns", ""))
            if model is not None:
                return model.from_data(arg)
    return arg


def describe_model(model: type[Record]) -> str:
    """The first line of the model's docstring ('' if it has none)."""
    doc = model.__doc__ or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def describe_fields(model: type[Record]) -> list[tuple[str, str, str]]:
    """``[(field, type, default)]`` for display; the default of a required field is ``*``.

    >>> from faust import Record
    >>> class Point(Record, namespace='example.Point'):
    ...     x: int
    ...     y: int = 0
    >>> from faust.models import describe_fields
    >>> describe_fields(Point)
    [('x', 'int', '*'), ('y', 'int', '0')]
    """
    model._finalize()
    return [
        (name, type_repr(d.type), "*" if d.default is MISSING else repr(d.default))
        for name, d in model._options.descriptors.items()
    ]
