"""faust.Record and its field descriptors (faust/models/)."""

from __future__ import annotations

import pickle
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, ClassVar, Dict, FrozenSet, List, Optional, Set, Tuple  # noqa: UP035
from uuid import UUID

import pytest

import faust
from faust.exceptions import DecodeError, ValidationError
from faust.models import (
    BooleanField,
    BytesField,
    DatetimeField,
    DecimalField,
    FieldDescriptor,
    FloatField,
    IntegerField,
    Record,
    StringField,
    describe_fields,
    describe_model,
    registry,
)

# Models used by several tests live at module level (pickle and forward references
# need importable classes). This module uses ``from __future__ import annotations``,
# so every annotation below is resolved from a string, as in most user code.


class Point(Record, serializer="json", namespace="tests.Point"):
    """A point in the plane."""

    x: int
    y: int = 0


class Point3D(Point, namespace="tests.Point3D"):
    z: int = 0


class Account(
    Record,
    namespace="acme.Account",
    include_metadata=True,
    isodates=True,
    validation=True,
    coerce=True,
):
    id: str = StringField(min_length=1, max_length=10)
    balance: Decimal = DecimalField(max_digits=10, max_decimal_places=2)
    age: int = IntegerField(min_value=0, max_value=150, required=False, default=0)
    created: datetime
    tags: List[str] = []  # noqa: UP006 -- typing generics are part of the API
    points: List[Point]  # noqa: UP006
    by_name: Dict[str, Point]  # noqa: UP006
    maybe: Optional[Point] = None  # noqa: UP045 -- the typing spelling is supported too


def make_account(**changes: Any) -> Account:
    fields: dict[str, Any] = {
        "id": "acc-1",
        "balance": Decimal("10.50"),
        "created": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        "points": [Point(1, 2)],
        "by_name": {"home": Point(3, 4)},
    }
    fields.update(changes)
    return Account(**fields)


class Node(Record, namespace="tests.Node"):
    name: str
    children: List[Node] = []  # noqa: UP006


class Order(Record, namespace="tests.Order"):
    customer: Customer  # defined below: resolved when first used
    amount: float = 0.0


class Customer(Record, namespace="tests.Customer"):
    id: str
    name: str = ""


class Shape(Record, abstract=True, namespace="tests.Shape"):
    name: str = ""


class Circle(Shape, namespace="tests.Circle"):
    radius: float = 1.0


class Square(Shape, namespace="tests.Square"):
    side: float = 1.0


class Drawing(Record, namespace="tests.Drawing"):
    shapes: List[Shape]  # noqa: UP006
    main: Point | None = None


class Color(Enum):
    RED = "red"
    BLUE = "blue"


# -- construction ------------------------------------------------------------------------


def test_positional_and_keyword_construction() -> None:
    assert Point(1, 2).x == 1
    assert Point(1, 2).y == 2
    assert Point(x=1, y=2) == Point(1, 2)
    assert Point(1, y=2) == Point(1, 2)


def test_defaults() -> None:
    assert Point(1).y == 0
    assert make_account().age == 0
    assert make_account().maybe is None


def test_missing_required_field_names_field_and_class() -> None:
    with pytest.raises(TypeError, match=r"Point\(\) missing required field\(s\): 'x'"):
        Point()
    with pytest.raises(
        TypeError, match=r"Account\(\) missing required field\(s\): 'balance', 'created'"
    ):
        Account(id="a", points=[], by_name={})


def test_unknown_keyword_and_too_many_arguments() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'w'"):
        Point(1, w=2)
    with pytest.raises(TypeError):
        Point(1, 2, 3)


def test_required_field_may_follow_a_field_with_a_default() -> None:
    # Account.created follows Account.age, which has a default (dataclasses forbid this).
    account = make_account()
    assert list(Account._options.fields) == [
        "id",
        "balance",
        "age",
        "created",
        "tags",
        "points",
        "by_name",
        "maybe",
    ]
    assert account.created == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_mutable_defaults_are_copied_per_instance() -> None:
    first, second = make_account(), make_account()
    first.tags.append("vip")
    assert second.tags == []
    assert Account.tags.default == []


def test_non_empty_mutable_default_is_deep_copied() -> None:
    class Config(Record):
        servers: List[List[str]] = [["a"]]  # noqa: UP006

    one = Config()
    one.servers[0].append("b")
    assert Config().servers == [["a"]]


def test_inherited_fields_come_first_and_subclass_may_add_fields() -> None:
    assert Point3D._options.fieldnames == ("x", "y", "z")
    p = Point3D(1, 2, 3)
    assert (p.x, p.y, p.z) == (1, 2, 3)
    assert isinstance(p, Point)


def test_subclass_may_change_an_inherited_default() -> None:
    class Origin(Point):
        x = 0

    assert Origin() == Origin(0, 0)
    assert Origin._options.fieldnames == ("x", "y")


def test_class_vars_are_not_fields() -> None:
    class Counter(Record):
        kind: ClassVar[str] = "counter"
        value: int = 0

    assert Counter._options.fieldnames == ("value",)
    assert Counter.kind == "counter"


def test_post_init_runs_after_construction_and_from_data() -> None:
    class Temperature(Record):
        celsius: float
        fahrenheit: float = 0.0

        def __post_init__(self) -> None:
            self.fahrenheit = self.celsius * 9 / 5 + 32

    assert Temperature(100).fahrenheit == 212
    assert Temperature.from_data({"celsius": 0}).fahrenheit == 32


def test_defining_init_is_refused_with_advice() -> None:
    with pytest.raises(TypeError, match="define __post_init__"):

        class Bad(Record):
            x: int

            def __init__(self) -> None:
                pass


def test_unknown_class_option_is_refused() -> None:
    with pytest.raises(TypeError, match="unknown Record option\\(s\\) serialiser; known"):

        class Bad(Record, serialiser="json"):  # type: ignore[call-arg]
            x: int


def test_faust_record_itself_cannot_be_instantiated() -> None:
    with pytest.raises(TypeError, match="subclass it"):
        Record()


# -- representation and comparison -------------------------------------------------------


def test_repr() -> None:
    assert repr(Point(1, 2)) == "Point(x=1, y=2)"
    assert repr(Point3D(1, 2, 3)) == "Point3D(x=1, y=2, z=3)"


def test_equality_by_class_and_values() -> None:
    assert Point(1, 2) == Point(1, 2)
    assert Point(1, 2) != Point(2, 1)
    assert Point(1, 0) != Point3D(1, 0, 0)
    assert Point(1, 2) != (1, 2)


def test_records_are_mutable_and_unhashable() -> None:
    p = Point(1, 2)
    p.x = 5
    assert p == Point(5, 2)
    with pytest.raises(TypeError):
        hash(p)


def test_asdict_is_shallow_without_metadata() -> None:
    account = make_account()
    data = account.asdict()
    assert data["points"] == [Point(1, 2)]
    assert isinstance(data["points"][0], Point)
    assert "__faust" not in data
    assert list(data) == list(Account._options.fields)


def test_to_representation_is_json_ready_with_metadata() -> None:
    rep = make_account(maybe=Point3D(1, 1, 1)).to_representation()
    assert rep["__faust"] == {"ns": "acme.Account"}
    assert rep["points"] == [{"x": 1, "y": 2, "__faust": {"ns": "tests.Point"}}]
    assert rep["by_name"] == {"home": {"x": 3, "y": 4, "__faust": {"ns": "tests.Point"}}}
    assert rep["maybe"] == {"x": 1, "y": 1, "z": 1, "__faust": {"ns": "tests.Point3D"}}
    assert rep["balance"] == Decimal("10.50")  # the codec decides how to write it


def test_include_metadata_false() -> None:
    class Plain(Record, include_metadata=False):
        x: int

    assert Plain(1).to_representation() == {"x": 1}
    assert Plain(1).dumps() == b'{"x":1}'


def test_derive_replaces_fields() -> None:
    p = Point(1, 2)
    assert p.derive(y=5) == Point(1, 5)
    assert p == Point(1, 2)
    assert Point3D(1, 2, 3).derive(Point(7, 8)) == Point3D(7, 8, 3)
    assert Point3D(1, 2, 3).derive(Point(7, 8), z=9) == Point3D(7, 8, 9)


def test_pickle_round_trip() -> None:
    account = make_account()
    assert pickle.loads(pickle.dumps(account)) == account


# -- dumps / loads / from_data -----------------------------------------------------------


def test_dumps_and_loads_round_trip() -> None:
    data = Point(1, 2).dumps()
    assert data == b'{"x":1,"y":2,"__faust":{"ns":"tests.Point"}}'
    assert Point.loads(data) == Point(1, 2)


def test_full_round_trip_keeps_every_type() -> None:
    account = make_account(tags=["a"], maybe=Point(9))
    decoded = Account.loads(account.dumps())
    assert decoded == account
    assert isinstance(decoded.balance, Decimal)
    assert isinstance(decoded.created, datetime)
    assert isinstance(decoded.points[0], Point)
    assert isinstance(decoded.by_name["home"], Point)


def test_serializer_option_is_used_by_dumps_and_loads() -> None:
    class Secret(Record, serializer="json|binary"):
        value: str

    data = Secret("x").dumps()
    assert data.startswith(b"eyJ")  # base64 of '{"'
    assert Secret.loads(data) == Secret("x")


def test_dumps_and_loads_with_explicit_serializer() -> None:
    data = Point(1, 2).dumps(serializer="pickle")
    assert Point.loads(data, serializer="pickle") == Point(1, 2)


def test_loads_default_serializer_applies_only_without_class_option() -> None:
    class NoOption(Record):
        x: int

    data = NoOption(1).dumps(serializer="json|binary")
    assert NoOption.loads(data, default_serializer="json|binary") == NoOption(1)
    # Point's own serializer (json) wins over the default.
    assert Point.loads(b'{"x":1}', default_serializer="pickle") == Point(1)


def test_loads_invalid_data_raises_decode_error() -> None:
    with pytest.raises(DecodeError, match="json codec cannot decode"):
        Point.loads(b"{oops")


def test_from_data_ignores_unknown_keys() -> None:
    assert Point.from_data({"x": 1, "y": 2, "added_later": True}) == Point(1, 2)


def test_from_data_missing_field_names_field_and_keys() -> None:
    with pytest.raises(TypeError, match=r"Point.from_data\(\): missing required field\(s\) 'x'"):
        Point.from_data({"y": 2})


def test_from_data_needs_a_mapping() -> None:
    with pytest.raises(TypeError, match=r"Point.from_data\(\) needs a mapping.*got list"):
        Point.from_data([1, 2])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="needs a mapping"):
        Shape.from_data("text")  # type: ignore[arg-type]


def test_nested_decode_error_names_the_outer_field() -> None:
    with pytest.raises(
        ValidationError, match="Drawing.main: cannot convert 'nope' to Optional\\[Point\\]"
    ):
        Drawing.from_data({"shapes": [], "main": "nope"})


def test_input_and_output_names() -> None:
    class Result(Record, include_metadata=False):
        last_attempt: float = FloatField(input_name="lastAttempt", output_name="lastAttempt")

    result = Result.from_data({"lastAttempt": 1.5})
    assert result.last_attempt == 1.5
    assert result.to_representation() == {"lastAttempt": 1.5}


# -- nested and generic types ------------------------------------------------------------


def test_nested_records_decode_into_instances() -> None:
    account = Account.from_data(
        {
            "id": "a",
            "balance": "1.00",
            "created": "2024-01-01T00:00:00",
            "points": [{"x": 1}, {"x": 2, "y": 3}],
            "by_name": {"p": {"x": 5}},
            "maybe": {"x": 6},
        }
    )
    assert account.points == [Point(1), Point(2, 3)]
    assert account.by_name == {"p": Point(5)}
    assert account.maybe == Point(6)


def test_containers_of_records_and_scalars() -> None:
    class Bag(Record):
        as_set: Set[int]  # noqa: UP006
        frozen: FrozenSet[str]  # noqa: UP006
        pair: Tuple[int, Point]  # noqa: UP006
        many: Tuple[Point, ...]  # noqa: UP006
        builtin_list: list[Point]
        builtin_dict: dict[str, list[Point]]
        keyed: Dict[int, str]  # noqa: UP006

    bag = Bag(
        as_set={1, 2},
        frozen=frozenset({"a"}),
        pair=(1, Point(1)),
        many=(Point(2), Point(3)),
        builtin_list=[Point(4)],
        builtin_dict={"k": [Point(5)]},
        keyed={1: "one"},
    )
    decoded = Bag.loads(bag.dumps())
    assert decoded == bag
    assert isinstance(decoded.as_set, set)
    assert isinstance(decoded.frozen, frozenset)
    assert isinstance(decoded.pair, tuple)
    assert decoded.keyed == {1: "one"}  # JSON keys are text; numeric keys come back


def test_self_referencing_record() -> None:
    tree = Node("root", [Node("a"), Node("b", [Node("c")])])
    assert Node.loads(tree.dumps()) == tree
    assert Node.loads(tree.dumps()).children[1].children[0].name == "c"


def test_annotation_naming_a_class_defined_later() -> None:
    order = Order.from_data({"customer": {"id": "c1"}, "amount": 2.5})
    assert order.customer == Customer("c1")


def test_local_classes_with_string_annotations() -> None:
    class Inner(Record):
        v: int

    class Outer(Record):
        inner: Inner
        inners: List[Inner]  # noqa: UP006

    outer = Outer.from_data({"inner": {"v": 1}, "inners": [{"v": 2}]})
    assert outer.inner == Inner(1)
    assert outer.inners == [Inner(2)]


def test_enum_and_uuid_fields_round_trip() -> None:
    class Tagged(Record):
        color: Color
        uid: UUID

    value = Tagged(Color.BLUE, UUID("12345678-1234-5678-1234-567812345678"))
    assert Tagged.loads(value.dumps()) == value


def test_bytes_field_round_trips_through_json() -> None:
    class Blob(Record):
        data: bytes

    assert Blob.loads(Blob(b"abc").dumps()).data == b"abc"


# -- polymorphism ------------------------------------------------------------------------


def test_base_loads_subclass_named_in_metadata() -> None:
    decoded = Point.loads(Point3D(1, 2, 3).dumps())
    assert type(decoded) is Point3D
    assert decoded == Point3D(1, 2, 3)


def test_nested_field_declared_as_base_holds_subclasses() -> None:
    drawing = Drawing([Circle("c", 2.0), Square("s", 3.0)], main=Point3D(1, 1, 1))
    decoded = Drawing.loads(drawing.dumps())
    assert [type(s) for s in decoded.shapes] == [Circle, Square]
    assert type(decoded.main) is Point3D
    assert decoded == drawing


def test_abstract_base_is_not_registered_and_dispatches() -> None:
    assert "tests.Shape" not in registry
    assert Shape.from_data(Circle("c", 5.0).to_representation()) == Circle("c", 5.0)


def test_abstract_base_with_unknown_namespace() -> None:
    with pytest.raises(TypeError, match="Shape is abstract and no model is registered as 'x.Y'"):
        Shape.from_data({"__faust": {"ns": "x.Y"}})


def test_faust_record_from_data_uses_the_namespace() -> None:
    assert Record.from_data(Point(1, 2).to_representation()) == Point(1, 2)
    with pytest.raises(TypeError, match="needs data with '__faust'"):
        Record.from_data({"x": 1})


def test_concrete_class_ignores_unrelated_namespace() -> None:
    assert type(Point.from_data({"x": 1, "__faust": {"ns": "tests.Customer"}})) is Point


def test_subclass_defined_after_the_base_was_used() -> None:
    class Animal(Record, namespace="tests.Animal"):
        name: str

    assert Animal.from_data({"name": "a"}) == Animal("a")  # generated without dispatch

    class Dog(Animal, namespace="tests.Dog"):
        good: bool = True

    decoded = Animal.loads(Dog("rex").dumps())
    assert type(decoded) is Dog


def test_allow_blessed_key_decodes_as_the_named_model() -> None:
    class Anything(Record, namespace="tests.Anything"):
        value: Any = None

    class Blessed(Record, namespace="tests.Blessed", allow_blessed_key=True):
        value: int

    decoded = Anything.from_data({"value": 1, "__faust": {"ns": "tests.Blessed"}})
    assert type(decoded) is Blessed


def test_polymorphic_fields_decode_any_fields() -> None:
    class Envelope(Record, polymorphic_fields=True):
        payload: Any

    assert Envelope.from_data({"payload": Point(1).to_representation()}).payload == Point(1)
    assert Envelope.from_data({"payload": {"plain": 1}}).payload == {"plain": 1}


# -- dates and decimals ------------------------------------------------------------------


def test_isodates_parses_iso_strings() -> None:
    class Event(Record, isodates=True):
        at: datetime
        day: date | None = None

    event = Event.from_data({"at": "2024-05-01T12:00:00Z", "day": "2024-05-01"})
    assert event.at == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert event.day == date(2024, 5, 1)


def test_dates_stay_strings_without_isodates() -> None:
    class Event(Record):
        at: datetime

    assert Event.from_data({"at": "2024-05-01T12:00:00"}).at == "2024-05-01T12:00:00"


def test_datetime_field_parses_without_isodates() -> None:
    class Event(Record):
        at: datetime = DatetimeField()

    assert Event.from_data({"at": "2024-05-01T12:00:00"}).at == datetime(2024, 5, 1, 12)


def test_date_parser_option() -> None:
    def parse(text: str) -> datetime:
        return datetime.strptime(text, "%d/%m/%Y")

    class Event(Record, isodates=True, date_parser=parse):
        at: datetime

    class Other(Record):
        at: datetime = DatetimeField(date_parser=parse)

    assert Event.from_data({"at": "01/05/2024"}).at == datetime(2024, 5, 1)
    assert Other.from_data({"at": "01/05/2024"}).at == datetime(2024, 5, 1)


def test_decimal_from_str_float_and_int() -> None:
    class Price(Record):
        amount: Decimal

    assert Price.from_data({"amount": "10.25"}).amount == Decimal("10.25")
    assert Price.from_data({"amount": 0.1}).amount == Decimal("0.1")
    assert Price.from_data({"amount": 3}).amount == Decimal(3)
    assert Price.loads(Price(Decimal("1.10")).dumps()).amount.as_tuple().exponent == -2


def test_invalid_decimal_names_the_field() -> None:
    class Price(Record):
        amount: Decimal

    with pytest.raises(ValidationError, match="Price.amount: cannot convert 'ten' to Decimal"):
        Price.from_data({"amount": "ten"})


# -- coercion ----------------------------------------------------------------------------


class Coerced(Record, coerce=True):
    count: int = 0
    ratio: float = 0.0
    label: str = ""
    flag: bool = False
    when: datetime | None = None


def test_coerce_converts_scalars_in_constructor_and_from_data() -> None:
    built = Coerced(count="3", ratio="1.5", label=7, flag="yes", when="2024-01-01T00:00:00")
    assert built == Coerced(3, 1.5, "7", True, datetime(2024, 1, 1))
    assert Coerced.from_data({"count": "3", "flag": "false"}) == Coerced(3, flag=False)


def test_coerce_failure_is_a_validation_error_naming_the_field() -> None:
    with pytest.raises(ValidationError, match="Coerced.count: cannot convert 'abc' to int") as info:
        Coerced(count="abc")
    assert info.value.field == "count"
    assert info.value.value == "abc"
    with pytest.raises(ValidationError, match="Coerced.count: cannot convert 1.5 to int"):
        Coerced.from_data({"count": 1.5})
    with pytest.raises(ValidationError, match="Coerced.flag: cannot convert 'maybe' to bool"):
        Coerced(flag="maybe")


def test_coerce_turns_dicts_into_records_in_the_constructor() -> None:
    account = make_account(points=[{"x": 1}], by_name={})
    assert account.points == [Point(1)]


def test_no_coercion_by_default() -> None:
    assert Point("3").x == "3"


def test_field_level_coerce() -> None:
    class Mixed(Record):
        count: int = IntegerField(coerce=True)
        raw: int = 0

    assert Mixed("5", "6") == Mixed(5, "6")


# -- validation --------------------------------------------------------------------------


def test_validation_raises_first_error_with_field_value_and_limit() -> None:
    with pytest.raises(
        ValidationError, match=r"^Account.age: 200 is greater than max_value 150$"
    ) as info:
        make_account(age=200)
    assert info.value.field == "age"
    assert info.value.value == 200


def test_validation_applies_to_from_data() -> None:
    data = make_account().to_representation()
    data["id"] = ""
    with pytest.raises(ValidationError, match="Account.id: '' is shorter than min_length 1"):
        Account.from_data(data)


def test_without_validation_errors_are_reported_on_request() -> None:
    class Loose(Record):
        age: int = IntegerField(min_value=0)
        name: str = StringField(max_length=3)

    loose = Loose(-1, "toolong")
    assert not loose.is_valid()
    assert [str(e) for e in loose.validate()] == [
        "Loose.age: -1 is less than min_value 0",
        "Loose.name: 'toolong' is longer than max_length 3 (7 characters)",
    ]
    assert [e.field for e in loose.validation_errors] == ["age", "name"]
    assert Loose(1, "ok").is_valid()
    assert Loose(1, "ok").validate() == []


def _errors(model: type[Record], **fields: Any) -> list[str]:
    return [str(e) for e in model(**fields).validate()]


def test_string_field_rules() -> None:
    class S(Record):
        name: str = StringField(min_length=2, max_length=4)

    assert _errors(S, name="a") == ["S.name: 'a' is shorter than min_length 2 (1 characters)"]
    assert _errors(S, name="abcde") == [
        "S.name: 'abcde' is longer than max_length 4 (5 characters)"
    ]
    assert _errors(S, name=3) == ["S.name: 3 is not a str"]
    assert _errors(S, name="abc") == []


def test_string_field_trims_whitespace() -> None:
    class S(Record):
        name: str = StringField(trim_whitespace=True, max_length=3)

    assert S("  ab  ").name == "ab"
    assert S.from_data({"name": " ab "}).name == "ab"
    assert S(" ab ").is_valid()


def test_integer_field_rules() -> None:
    class I(Record):  # noqa: E742
        n: int = IntegerField(min_value=1, max_value=9)

    assert _errors(I, n=0) == ["I.n: 0 is less than min_value 1"]
    assert _errors(I, n=10) == ["I.n: 10 is greater than max_value 9"]
    assert _errors(I, n="5") == ["I.n: '5' is not an int"]
    assert _errors(I, n=True) == ["I.n: True is not an int"]
    assert _errors(I, n=5) == []


def test_float_field_rules() -> None:
    class F(Record):
        f: float = FloatField(min_value=0.5, max_value=1.5)

    assert _errors(F, f=0.25) == ["F.f: 0.25 is less than min_value 0.5"]
    assert _errors(F, f=2) == ["F.f: 2 is greater than max_value 1.5"]
    assert _errors(F, f="1") == ["F.f: '1' is not a float or an int"]
    assert _errors(F, f=1) == []


def test_decimal_field_rules() -> None:
    class D(Record):
        d: Decimal = DecimalField(max_digits=5, max_decimal_places=2, min_value=0)

    assert _errors(D, d=Decimal("1.005")) == [
        "D.d: 1.005 has 3 decimal places, more than max_decimal_places 2"
    ]
    assert _errors(D, d=Decimal("1234.5")) == []  # exactly max_digits
    assert _errors(D, d=Decimal("12345.6")) == ["D.d: 12345.6 has 6 digits, more than max_digits 5"]
    assert _errors(D, d=Decimal("1E+5")) == ["D.d: 1E+5 has 6 digits, more than max_digits 5"]
    assert _errors(D, d=Decimal("-1")) == ["D.d: -1 is less than min_value 0"]
    assert _errors(D, d=Decimal("NaN")) == ["D.d: NaN is not a finite number"]
    assert _errors(D, d=1.5) == ["D.d: 1.5 is not a Decimal or an int"]
    assert _errors(D, d=Decimal("123.45")) == []
    assert _errors(D, d=7) == []


def test_boolean_datetime_and_bytes_fields_check_types() -> None:
    class T(Record):
        flag: bool = BooleanField()
        at: datetime = DatetimeField()
        blob: bytes = BytesField()

    good = {"flag": True, "at": datetime(2024, 1, 1), "blob": b"x"}
    assert _errors(T, **good) == []
    assert _errors(T, **{**good, "flag": 1}) == ["T.flag: 1 is not a bool"]
    assert _errors(T, **{**good, "at": "2024"}) == ["T.at: '2024' is not a datetime"]
    assert _errors(T, **{**good, "blob": "x"}) == ["T.blob: 'x' is not a bytes"]


def test_plain_annotations_are_type_checked_when_validating() -> None:
    class Plain(Record, validation=True):
        n: int
        p: Point | None = None

    with pytest.raises(ValidationError, match="Plain.n: 'x' is not an int"):
        Plain("x")
    with pytest.raises(ValidationError, match="Plain.p: 3 is not a Point"):
        Plain(1, 3)
    assert Plain(1, Point3D(1)).is_valid()


def test_none_is_rejected_for_required_fields_unless_optional() -> None:
    class N(Record):
        required: int
        optional: Optional[int] = None  # noqa: UP045
        not_required: str = StringField(required=False)

    assert _errors(N, required=None) == [
        "N.required: None is not allowed: the field is not Optional"
    ]
    assert _errors(N, required=1) == []
    assert N(1).not_required is None


def test_required_field_cannot_have_default() -> None:
    with pytest.raises(TypeError, match="drop required=True"):
        IntegerField(required=True, default=0)


# -- descriptors and introspection -------------------------------------------------------


def test_class_attribute_is_the_field_descriptor() -> None:
    descriptor = Account.balance
    assert isinstance(descriptor, DecimalField)
    assert descriptor.field == "balance"
    assert descriptor.type is Decimal
    assert descriptor.model is Account
    assert descriptor.getattr(make_account()) == Decimal("10.50")


def test_plain_annotation_gets_a_generic_descriptor() -> None:
    assert type(Point.x) is FieldDescriptor
    assert Point.x.required
    assert Point.y.default == 0
    assert not Point.y.required
    assert Point.x.getattr(Point(4)) == 4


def test_descriptors_of_a_subclass_belong_to_it() -> None:
    assert Point3D.x.model is Point3D
    assert Point.x.model is Point


def test_nested_descriptor_path() -> None:
    descriptor = Order.customer.id
    assert descriptor.path == "customer.id"
    assert descriptor.getattr(Order(Customer("c9"))) == "c9"
    with pytest.raises(AttributeError, match="Customer has no field 'nope'"):
        _ = Order.customer.nope


def test_unknown_class_attribute() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        _ = Point.nope  # type: ignore[attr-defined]


def test_namespace_defaults_to_module_and_qualname() -> None:
    class Local(Record):
        x: int

    assert Local._options.namespace == f"{__name__}.{Local.__qualname__}"
    assert registry[Local._options.namespace] is Local


def test_registry_and_describe_helpers() -> None:
    assert registry["acme.Account"] is Account
    assert describe_model(Point) == "A point in the plane."
    assert describe_model(Account) == ""
    assert describe_fields(Account) == [
        ("id", "str", "*"),
        ("balance", "Decimal", "*"),
        ("age", "int", "0"),
        ("created", "datetime", "*"),
        ("tags", "List[str]", "[]"),
        ("points", "List[Point]", "*"),
        ("by_name", "Dict[str, Point]", "*"),
        ("maybe", "Optional[Point]", "None"),
    ]


def test_options_are_inherited_except_namespace_and_abstract() -> None:
    class Strict(Record, abstract=True, validation=True, serializer="pickle"):
        n: int = IntegerField(max_value=1)

    class Child(Strict):
        pass

    assert Child._options.validation
    assert Child._options.serializer == "pickle"
    assert not Child._options.abstract
    with pytest.raises(ValidationError):
        Child(5)


# -- Faust options: coercions, lazy_creation, validate_or_raise, Model ------------------


def test_coercions_convert_fields_of_a_type_on_construction_and_decode() -> None:
    from decimal import Decimal

    def cents(value: object) -> Decimal:
        return Decimal(str(value)).quantize(Decimal("0.01"))

    class Invoice(faust.Record, coercions={Decimal: cents}, namespace="tests.m.Invoice"):
        total: Decimal
        lines: list[Decimal] = []
        discount: Decimal | None = None

    invoice = Invoice(12.5, lines=["1.234", 3], discount=None)
    assert invoice.total == Decimal("12.50") and invoice.lines == [Decimal("1.23"), Decimal("3.00")]
    assert invoice.discount is None
    assert Invoice.loads(invoice.dumps()) == invoice
    assert Invoice.from_data({"total": "7.005"}).total == Decimal("7.00")

    class Labelled(Invoice, coercions={(str,): str.upper}, namespace="tests.m.Labelled"):
        label: str = "x"

    labelled = Labelled("1", label="due")
    assert (labelled.total, labelled.label) == (Decimal("1.00"), "DUE")  # inherited + own


def test_coercions_must_map_types_to_callables() -> None:
    with pytest.raises(TypeError, match="coercions maps types to callables"):

        class Bad(faust.Record, coercions={"int": int}):
            x: int

    with pytest.raises(TypeError, match="coercions must be a mapping"):

        class Worse(faust.Record, coercions=[int]):
            x: int


def test_lazy_creation_resolves_fields_on_first_use_or_make_final() -> None:
    class Shipment(faust.Record, lazy_creation=True, namespace="tests.m.Shipment"):
        parcel: Parcel  # defined below this test, resolved on first use

    Shipment.make_final()
    assert Shipment(Parcel(3)).parcel.weight == 3
    assert Shipment.from_data({"parcel": {"weight": 4}}) == Shipment(Parcel(4))

    class Broken(faust.Record, lazy_creation=True):
        thing: Missing  # noqa: F821 -- never defined

    with pytest.raises(NameError, match="Broken.thing"):
        Broken.make_final()


class Parcel(faust.Record, namespace="tests.m.Parcel"):
    weight: int


def test_validate_or_raise_raises_the_first_error() -> None:
    class Person(faust.Record):
        age: int = faust.IntegerField(min_value=0, max_value=150)

    Person(age=30).validate_or_raise()
    with pytest.raises(ValidationError, match="greater than max_value 150"):
        Person(age=200).validate_or_raise()


def test_model_is_the_base_class_of_records() -> None:
    from faust.models import Model

    class Point(faust.Record):
        x: int

    assert isinstance(Point(1), Model) and issubclass(Point, Model)
