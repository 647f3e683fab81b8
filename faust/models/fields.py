"""Field descriptors: what a Record knows about each of its fields.

Every annotated field of a Record gets a descriptor; give one explicitly to add
validation rules::

    class Account(faust.Record, validation=True):
        id: str = StringField(min_length=1, max_length=10)
        age: int = IntegerField(min_value=0, max_value=150, required=False, default=0)

Reading the field on the class returns its descriptor (``Account.id.field == 'id'``),
which streams use as a key: ``stream.group_by(Account.id)``. Reading it on an
instance returns the value itself, a plain instance attribute (the descriptors live
outside the class ``__dict__``; see :class:`~faust.models.record.RecordType`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from faust.exceptions import ValidationError
from faust.models.conversion import type_repr, unwrap_optional

if TYPE_CHECKING:
    from faust.models.record import Record

__all__ = [
    "MISSING",
    "FieldDescriptor",
    "StringField",
    "IntegerField",
    "FloatField",
    "DecimalField",
    "BooleanField",
    "DatetimeField",
    "BytesField",
]

T = TypeVar("T")


class _Missing:
    """Marks "no value given" where None is a legitimate value."""

    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def show(value: Any) -> str:
    """How a rejected value appears in an error: quoted if text, plain if a number."""
    if isinstance(value, str | bytes):
        text = repr(value)
    else:
        text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


class FieldDescriptor(Generic[T]):
    """A field of a Record: its name, type, default and validation rules.

    ``required=False`` without a ``default`` makes the default None. Subclasses add
    rules by overriding :meth:`check`, and input clean-up by overriding
    :meth:`make_preparer`.

    >>> from faust import FieldDescriptor, Record
    >>> class Point(Record):
    ...     x: int
    ...     y: int = FieldDescriptor(default=0)
    >>> Point.y.field, Point.y.type, Point.y.default
    ('y', <class 'int'>, 0)
    >>> Point.y.getattr(Point(1, 2))
    2
    """

    #: The Python type the descriptor itself implies (StringField: str), used when
    #: the annotation does not say (``Any``); None means "whatever is annotated".
    python_type: type | None = None

    field: str
    model: type[Record]

    def __init__(
        self,
        *,
        required: bool | None = None,
        default: Any = MISSING,
        coerce: bool | None = None,
        input_name: str | None = None,
        output_name: str | None = None,
        field: str | None = None,
        type: Any = None,
        model: type[Record] | None = None,
        parent: FieldDescriptor[Any] | None = None,
    ) -> None:
        if default is MISSING and required is False:
            default = None
        elif default is not MISSING and required:
            raise TypeError("a field with a default is not required: drop required=True")
        #: The constructor and from_data need a value: there is no default.
        self.required = default is MISSING
        self.default = default
        self.coerce = coerce
        self.input_name = input_name
        self.output_name = output_name
        self.parent = parent
        self.type = type
        self.optional = False  # may the value be None? (set when bound)
        if field is not None:
            self.field = field
        if model is not None:
            self.model = model
        self._expected: type | tuple[type, ...] | None = None
        self._reject_bool = False
        self._children: dict[str, FieldDescriptor[Any]] = {}

    # -- set up by the Record class ------------------------------------------------

    def clone(self, **changes: Any) -> FieldDescriptor[T]:
        """A copy with some attributes changed (a subclass gets its own descriptors)."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new._children = {}
        new.__dict__.update(changes)
        return new

    def bind(self, model: type[Record], field: str, type_: Any, optional: bool) -> None:
        """Attach to ``model.field`` once its annotation ``type_`` is resolved."""
        self.model = model
        self.field = field
        self.type = type_
        if self.input_name is None:
            self.input_name = field
        if self.output_name is None:
            self.output_name = field
        self.optional = optional or self.default is None
        self._expected = expected = _expected_type(self.python_type or type_)
        # bool is a subclass of int, but True is not a sensible age or price.
        self._reject_bool = expected is not None and bool not in _as_tuple(expected)

    @property
    def value_type(self) -> Any:
        """The annotated type without Optional (what a present value must be)."""
        return unwrap_optional(self.type)[0]

    def make_preparer(self) -> Callable[[Any], Any] | None:
        """A function cleaning every value put into the field, or None for none."""
        return None

    # -- access ------------------------------------------------------------------------

    def getattr(self, obj: Any) -> T:
        """The value of this field in ``obj`` (follows nested fields like ``A.b.c``).

        >>> from faust import Record
        >>> class Account(Record):
        ...     id: str
        >>> Account.id.getattr(Account(id='acc-1'))
        'acc-1'
        """
        if self.parent is not None:
            obj = self.parent.getattr(obj)
        return obj.__dict__[self.field]

    def __getattr__(self, name: str) -> FieldDescriptor[Any]:
        # ``Order.customer.id``: a descriptor of a nested Record field reached through
        # this one, so ``group_by(Order.customer.id)`` works.
        if name.startswith("_") or "type" not in self.__dict__:
            raise AttributeError(name)
        from faust.models.record import Record

        target = self.value_type
        if not (isinstance(target, type) and issubclass(target, Record)):
            raise AttributeError(f"{self!r} is not a Record field; it has no field {name!r}")
        try:
            return self._children[name]
        except KeyError:
            pass
        target._finalize()
        try:
            child = target._options.descriptors[name]
        except KeyError:
            raise AttributeError(f"{target.__name__} has no field {name!r}") from None
        self._children[name] = bound = child.clone(parent=self)
        return bound

    @property
    def path(self) -> str:
        """Dotted path from the outermost model, e.g. ``'customer.id'``."""
        return f"{self.parent.path}.{self.field}" if self.parent else self.field

    # -- validation --------------------------------------------------------------------

    def validate(self, value: Any) -> list[ValidationError]:
        """Every rule ``value`` breaks, as ValidationErrors (empty when valid)."""
        if value is None:
            if self.optional:
                return []
            return [self.error(value, "is not allowed: the field is not Optional")]
        expected = self._expected
        if expected is not None and (
            not isinstance(value, expected) or (self._reject_bool and isinstance(value, bool))
        ):
            return [self.error(value, f"is not {_type_name(expected)}")]
        return [self.error(value, message) for message in self.check(value)]

    def check(self, value: Any) -> list[str]:
        """Rules beyond the type: messages for each one ``value`` breaks."""
        return []

    def error(self, value: Any, message: str) -> ValidationError:
        """A ValidationError naming the model, the field and the value."""
        owner = self.model.__name__ if "model" in self.__dict__ else "?"
        return ValidationError(
            f"{owner}.{self.field}: {show(value)} {message}", field=self.field, value=value
        )

    def __repr__(self) -> str:
        root = self
        while root.parent is not None:
            root = root.parent
        owner = root.model.__name__ if "model" in root.__dict__ else "<unbound>"
        path = self.path if "field" in self.__dict__ else "?"
        return f"<{type(self).__name__}: {owner}.{path}: {type_repr(self.type)}>"


def _as_tuple(expected: type | tuple[type, ...]) -> tuple[type, ...]:
    return expected if isinstance(expected, tuple) else (expected,)


def _type_name(tp: Any) -> str:
    if isinstance(tp, tuple):
        return " or ".join(_type_name(t) for t in tp)
    if isinstance(tp, type):
        article = "an" if tp.__name__[:1].lower() in "aeiou" else "a"
        return f"{article} {tp.__name__}"
    return repr(tp).replace("typing.", "")


def _expected_type(tp: Any) -> type | tuple[type, ...] | None:
    """The isinstance() check implied by an annotation, or None when not checkable."""
    tp = unwrap_optional(tp)[0]
    if tp is float:
        return (float, int)  # an int is an acceptable float (JSON writes 1.0 as 1)
    if tp is Decimal:
        return (Decimal, int)
    if tp in (str, int, bool, bytes, datetime, date):
        return tp
    from faust.models.record import Record

    if isinstance(tp, type) and issubclass(tp, Record):
        return tp
    return None


class StringField(FieldDescriptor[str]):
    """A ``str`` field with optional length limits; ``trim_whitespace`` strips input.

    >>> from faust import Record, StringField
    >>> class User(Record, validation=True):
    ...     name: str = StringField(min_length=1, max_length=20, trim_whitespace=True)
    >>> User('  ann ').name
    'ann'
    """

    python_type = str

    def __init__(
        self,
        *,
        min_length: int | None = None,
        max_length: int | None = None,
        trim_whitespace: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.min_length = min_length
        self.max_length = max_length
        self.trim_whitespace = trim_whitespace

    def make_preparer(self) -> Callable[[Any], Any] | None:
        if self.trim_whitespace:
            return _strip
        return None

    def check(self, value: Any) -> list[str]:
        errors = []
        n = len(value)
        if self.min_length is not None and n < self.min_length:
            errors.append(f"is shorter than min_length {self.min_length} ({n} characters)")
        if self.max_length is not None and n > self.max_length:
            errors.append(f"is longer than max_length {self.max_length} ({n} characters)")
        return errors


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


class NumberField(FieldDescriptor[T]):
    """Base of numeric fields: ``min_value`` and ``max_value`` are inclusive limits."""

    def __init__(
        self,
        *,
        min_value: Any = None,
        max_value: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.min_value = min_value
        self.max_value = max_value

    def check(self, value: Any) -> list[str]:
        errors = []
        if self.min_value is not None and value < self.min_value:
            errors.append(f"is less than min_value {self.min_value}")
        if self.max_value is not None and value > self.max_value:
            errors.append(f"is greater than max_value {self.max_value}")
        return errors


class IntegerField(NumberField[int]):
    """An ``int`` field (bool is rejected) with optional inclusive limits.

    >>> from faust import IntegerField, Record
    >>> class Person(Record, validation=True):
    ...     age: int = IntegerField(min_value=0, max_value=150)
    >>> Person(200)
    Traceback (most recent call last):
    faust.exceptions.ValidationError: Person.age: 200 is greater than max_value 150
    """

    python_type = int


class FloatField(NumberField[float]):
    """A ``float`` field (ints accepted) with optional inclusive limits."""

    python_type = float


class DecimalField(NumberField[Decimal]):
    """A ``Decimal`` field: limits plus ``max_digits`` and ``max_decimal_places``.

    >>> from decimal import Decimal
    >>> from faust import DecimalField, Record
    >>> class Payment(Record, validation=True):
    ...     amount: Decimal = DecimalField(max_digits=10, max_decimal_places=2)
    >>> Payment(Decimal('1.005'))
    Traceback (most recent call last):
    faust.exceptions.ValidationError: Payment.amount: 1.005 has 3 decimal places, ...
    """

    python_type = Decimal

    def __init__(
        self,
        *,
        max_digits: int | None = None,
        max_decimal_places: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.max_digits = max_digits
        self.max_decimal_places = max_decimal_places

    def check(self, value: Any) -> list[str]:
        if isinstance(value, Decimal) and not value.is_finite():
            return ["is not a finite number"]
        errors = super().check(value)
        digits, places = _count_digits(Decimal(value))
        if self.max_digits is not None and digits > self.max_digits:
            errors.append(f"has {digits} digits, more than max_digits {self.max_digits}")
        if self.max_decimal_places is not None and places > self.max_decimal_places:
            errors.append(
                f"has {places} decimal places, "
                f"more than max_decimal_places {self.max_decimal_places}"
            )
        return errors


def _count_digits(value: Decimal) -> tuple[int, int]:
    """(significant digits, digits after the point) as written: 1.50 -> (3, 2)."""
    _, digit_tuple, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite, checked by the caller
    if exponent >= 0:
        # 12E+2 is 1200: four digits, none after the point.
        return (len(digit_tuple) + exponent if digit_tuple != (0,) else 1), 0
    places = -exponent
    return max(len(digit_tuple), places), places


class BooleanField(FieldDescriptor[bool]):
    """A ``bool`` field (ints such as 0 and 1 are rejected unless coerced)."""

    python_type = bool


class DatetimeField(FieldDescriptor[datetime]):
    """A ``datetime`` field, parsed from an ISO 8601 string when decoded.

    ``date_parser`` replaces the parser (``datetime.fromisoformat``) for this field.

    >>> from datetime import datetime
    >>> from faust import DatetimeField, Record
    >>> class Event(Record):
    ...     at: datetime = DatetimeField()
    >>> Event.from_data({'at': '2024-05-01T12:00:00Z'}).at
    datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.timezone.utc)
    """

    python_type = datetime

    def __init__(
        self, *, date_parser: Callable[[str], datetime] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.date_parser = date_parser


class BytesField(FieldDescriptor[bytes]):
    """A ``bytes`` field; text read from JSON is encoded back to bytes as UTF-8."""

    python_type = bytes
