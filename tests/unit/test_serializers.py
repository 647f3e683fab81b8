"""Codecs: built-ins, chains, the registry and errors (faust/serializers.py)."""

from __future__ import annotations

import base64
import codecs as text_codecs
import math
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import faust
from faust import serializers
from faust.exceptions import DecodeError, EncodeError, ImproperlyConfigured
from faust.models import Record
from faust.serializers import (
    ChainedCodec,
    Codec,
    binary,
    dumps,
    get_codec,
    json,
    loads,
    pickle,
    raw,
    register,
)


class Point(Record, namespace="tests.serializers.Point"):
    x: int
    y: int = 0


class Color(Enum):
    RED = "red"


@pytest.fixture
def registry_snapshot() -> Iterator[None]:
    """Undo codecs registered by a test."""
    saved = dict(serializers.codecs)
    yield
    serializers.codecs.clear()
    serializers.codecs.update(saved)


class rot13(Codec):  # noqa: N801 -- codec names are lower-case, like the built-ins
    name = "rot13"

    def _dumps(self, obj: Any) -> bytes:
        return text_codecs.encode(obj.decode(), "rot13").encode()

    def _loads(self, data: bytes) -> Any:
        return text_codecs.encode(data.decode(), "rot13").encode()


# -- raw ---------------------------------------------------------------------------------


def test_raw_passes_bytes_through_and_encodes_text() -> None:
    codec = raw()
    assert codec.dumps(b"\x00\xff") == b"\x00\xff"
    assert codec.dumps("héllo") == "héllo".encode()
    assert codec.dumps(bytearray(b"ab")) == b"ab"
    assert codec.loads(b"\x00\xff") == b"\x00\xff"


def test_raw_writes_numbers_as_digits() -> None:
    assert raw().dumps(42) == b"42"
    assert raw().dumps(1.5) == b"1.5"


def test_raw_refuses_structured_values_with_advice() -> None:
    with pytest.raises(EncodeError, match="raw codec takes bytes.*serializer='json'"):
        raw().dumps({"a": 1})


# -- json --------------------------------------------------------------------------------


def test_json_round_trip() -> None:
    value = {"a": [1, 2.5, None, True], "b": {"c": "d"}}
    assert json().dumps(value) == b'{"a":[1,2.5,null,true],"b":{"c":"d"}}'
    assert json().loads(json().dumps(value)) == value


def _same(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(_JSON_VALUES)
def test_json_round_trips_every_value_including_nan_and_infinities(value: Any) -> None:
    """orjson alone writes NaN and infinities as null: the value would come back changed."""
    codec = json()
    assert _same(codec.loads(codec.dumps(value)), value)


def test_json_writes_nan_and_infinities_as_faust_does_and_reads_them() -> None:
    data = json().dumps({"a": float("nan"), "b": [float("inf"), -float("inf"), None]})
    assert data == b'{"a":NaN,"b":[Infinity,-Infinity,null]}'
    # As the standard library (and so Faust) writes them.
    assert json().loads(b'{"price": NaN, "max": Infinity}')["max"] == float("inf")


def test_a_record_with_a_nan_field_round_trips_through_its_schema() -> None:
    class Reading(Record, serializer="json"):
        sensor: str
        value: float

    schema = faust.Schema(value_type=Reading)
    dump = schema.value_dumper()
    data = dump(Reading(sensor="t1", value=float("nan")))
    back = schema.value_loader()(data)
    assert back.sensor == "t1" and math.isnan(back.value)
    assert schema.value_loader()(dump(Reading(sensor="t2", value=float("-inf")))).value == float(
        "-inf"
    )


def test_json_writes_datetime_as_iso8601() -> None:
    when = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    assert json().dumps({"at": when}) == b'{"at":"2024-05-01T12:30:00+00:00"}'
    assert json().dumps([date(2024, 5, 1)]) == b'["2024-05-01"]'


def test_json_writes_decimal_as_string_keeping_every_digit() -> None:
    assert json().dumps({"amount": Decimal("0.10000000000000000001")}) == (
        b'{"amount":"0.10000000000000000001"}'
    )


def test_json_writes_uuid_sets_tuples_bytes_and_enums() -> None:
    uid = UUID("12345678-1234-5678-1234-567812345678")
    assert json().dumps(uid) == b'"12345678-1234-5678-1234-567812345678"'
    assert sorted(orjson.loads(json().dumps({1, 2, 3}))) == [1, 2, 3]
    assert json().dumps(frozenset({"a"})) == b'["a"]'
    assert json().dumps((1, 2)) == b"[1,2]"
    assert json().dumps(b"text") == b'"text"'
    assert json().dumps(Color.RED) == b'"red"'


def test_json_writes_records_as_their_representation() -> None:
    encoded = json().dumps({"points": [Point(1, 2)]})
    assert orjson.loads(encoded) == {
        "points": [{"x": 1, "y": 2, "__faust": {"ns": "tests.serializers.Point"}}]
    }


def test_json_writes_non_string_dict_keys() -> None:
    assert json().dumps({1: "a", 2: "b"}) == b'{"1":"a","2":"b"}'


def test_json_uses_dunder_json_of_other_objects() -> None:
    class Money:
        def __json__(self) -> str:
            return "1 EUR"

    assert json().dumps({"price": Money()}) == b'{"price":"1 EUR"}'


def test_json_refuses_unknown_objects() -> None:
    with pytest.raises(EncodeError, match="json codec cannot encode dict: .*object"):
        json().dumps({"x": object()})


def test_json_decode_error_names_codec_and_data() -> None:
    with pytest.raises(
        DecodeError, match=r"json codec cannot decode 9 bytes b'\{not json'"
    ) as info:
        json().loads(b"{not json")
    assert isinstance(info.value.__cause__, orjson.JSONDecodeError)


# -- pickle and binary -------------------------------------------------------------------


def test_pickle_round_trip() -> None:
    value = {"when": datetime(2024, 1, 1), "amount": Decimal("1.5"), "tags": {"a"}}
    assert pickle().loads(pickle().dumps(value)) == value


def test_pickle_decode_error() -> None:
    with pytest.raises(DecodeError, match="pickle codec cannot decode"):
        pickle().loads(b"not a pickle")


def test_binary_is_base64() -> None:
    assert binary().dumps(b"hello") == base64.b64encode(b"hello")
    assert binary().loads(b"aGVsbG8=") == b"hello"


def test_binary_rejects_invalid_base64() -> None:
    with pytest.raises(DecodeError, match="binary codec cannot decode"):
        binary().loads(b"not base64!")


# -- chains ------------------------------------------------------------------------------


def test_chain_dumps_left_to_right_and_loads_in_reverse() -> None:
    codec = json() | binary()
    encoded = codec.dumps({"a": 1})
    assert encoded == base64.b64encode(b'{"a":1}')
    assert codec.loads(encoded) == {"a": 1}


def test_chain_by_name_equals_chain_by_operator() -> None:
    assert get_codec("json|binary") == json() | binary()
    assert get_codec(" json | binary ") == json() | binary()
    assert get_codec("json|binary").name == "json|binary"


def test_chains_flatten() -> None:
    codec = (json() | binary()) | binary()
    assert isinstance(codec, ChainedCodec)
    assert codec.codecs == (json(), binary(), binary())
    assert codec.loads(codec.dumps([1])) == [1]
    assert get_codec("json|binary|binary") == codec


def test_chain_decode_error_comes_from_the_failing_step() -> None:
    with pytest.raises(DecodeError, match="binary codec"):
        get_codec("json|binary").loads(b"***")


# -- registry ----------------------------------------------------------------------------


def test_get_codec_returns_a_codec_given_as_is() -> None:
    codec = json()
    assert get_codec(codec) is codec


def test_unknown_codec_names_the_known_ones() -> None:
    with pytest.raises(ImproperlyConfigured) as info:
        get_codec("jsn")
    message = str(info.value)
    assert "unknown serializer 'jsn'" in message
    assert "binary, json, pickle, raw" in message


def test_unknown_codec_inside_a_chain() -> None:
    with pytest.raises(
        ImproperlyConfigured, match="unknown serializer 'nope' \\(in 'json\\|nope'\\)"
    ):
        get_codec("json|nope")


def test_get_codec_rejects_non_names() -> None:
    with pytest.raises(ImproperlyConfigured, match="not int"):
        get_codec(3)  # type: ignore[arg-type]


@pytest.mark.usefixtures("registry_snapshot")
def test_register_custom_codec_class() -> None:
    register("rot13", rot13)
    assert get_codec("rot13").dumps(b"hello") == b"uryyb"
    chained = get_codec("raw|rot13")
    assert chained.dumps("hello") == b"uryyb"
    assert chained.loads(b"uryyb") == b"hello"


@pytest.mark.usefixtures("registry_snapshot")
def test_register_custom_codec_instance_in_chain_with_json() -> None:
    register("r13", rot13())
    codec = get_codec("json|r13")
    assert codec.dumps({"a": "b"}) == b'{"n":"o"}'
    assert codec.loads(b'{"n":"o"}') == {"a": "b"}


@pytest.mark.usefixtures("registry_snapshot")
def test_register_codec_overriding_dumps_and_loads() -> None:
    class upper(Codec):  # noqa: N801
        name = "upper"

        def dumps(self, obj: Any) -> bytes:
            return bytes(obj).upper()

        def loads(self, data: bytes) -> Any:
            return data.lower()

    register("upper", upper)
    codec = get_codec("raw|upper")
    assert codec.dumps("abc") == b"ABC"
    assert codec.loads(b"ABC") == b"abc"


@pytest.mark.usefixtures("registry_snapshot")
def test_registering_replaces_an_earlier_resolution() -> None:
    assert isinstance(get_codec("json"), json)
    register("json", rot13)
    assert isinstance(get_codec("json"), rot13)


@pytest.mark.usefixtures("registry_snapshot")
def test_faust_1_codecs_module_spelling() -> None:
    from faust.serializers import codecs

    class shout(codecs.Codec):  # noqa: N801
        name = "shout"

        def _dumps(self, obj: Any) -> bytes:
            return bytes(obj).upper()

        def _loads(self, data: bytes) -> Any:
            return data.lower()

    codecs.register("shout", shout())
    assert codecs.get_codec("raw|shout").dumps("hi") == b"HI"
    assert codecs.dumps("shout", b"a") == b"A"
    assert codecs.loads("shout", b"A") == b"a"
    assert isinstance(codecs["shout"], shout)
    assert (codecs.json() | codecs.binary()).loads(b"WzFd") == [1]
    del codecs["shout"]
    with pytest.raises(ImproperlyConfigured):
        get_codec("shout")


def test_register_rejects_names_with_a_pipe() -> None:
    with pytest.raises(ValueError, match="without '\\|'"):
        register("a|b", json)


def test_codec_errors_are_wrapped_unless_already_decode_errors() -> None:
    class broken(Codec):  # noqa: N801
        name = "broken"

        def _dumps(self, obj: Any) -> bytes:
            raise ValueError("boom")

        def _loads(self, data: bytes) -> Any:
            raise DecodeError("already explained")

    with pytest.raises(EncodeError, match="broken codec cannot encode int: boom"):
        broken().dumps(1)
    with pytest.raises(DecodeError, match="^already explained$"):
        broken().loads(b"x")


def test_codec_without_implementation_says_what_to_override() -> None:
    with pytest.raises(EncodeError, match="must implement _dumps"):
        Codec().dumps(1)


# -- module-level helpers ----------------------------------------------------------------


def test_module_dumps_and_loads() -> None:
    assert dumps("json", {"a": 1}) == b'{"a":1}'
    assert loads("json|binary", dumps("json|binary", [1, 2])) == [1, 2]
    assert dumps(json(), 1) == b"1"


def test_module_helpers_without_codec_pass_through() -> None:
    assert dumps(None, {"a": 1}) == {"a": 1}
    assert loads(None, b"x") == b"x"
