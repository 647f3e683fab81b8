"""Schema: decoding and encoding keys and values of a topic (faust/schemas.py)."""

from __future__ import annotations

import base64

import pytest

from faust.exceptions import (
    DecodeError,
    EncodeError,
    ImproperlyConfigured,
    KeyDecodeError,
    ValidationError,
    ValueDecodeError,
)
from faust.models import IntegerField, Record
from faust.schemas import Schema
from faust.serializers import binary, json, pickle, raw


class Reading(Record, namespace="tests.schemas.Reading"):
    sensor: str
    value: float = 0.0


class PreciseReading(Reading, namespace="tests.schemas.PreciseReading"):
    error: float = 0.0


class Packed(Record, serializer="json|binary", namespace="tests.schemas.Packed"):
    n: int


class Bounded(Record, validation=True, namespace="tests.schemas.Bounded"):
    n: int = IntegerField(max_value=10)


# -- values ------------------------------------------------------------------------------


def test_record_value_round_trip_with_json() -> None:
    schema = Schema(value_type=Reading)
    data = schema.dumps_value(Reading("s1", 1.5))
    assert data == b'{"sensor":"s1","value":1.5,"__faust":{"ns":"tests.schemas.Reading"}}'
    assert schema.loads_value(data) == Reading("s1", 1.5)


def test_value_loader_is_one_callable_for_many_messages() -> None:
    load = Schema(value_type=Reading).value_loader()
    payloads = [Reading(f"s{i}", i).dumps() for i in range(3)]
    assert [load(p) for p in payloads] == [Reading(f"s{i}", i) for i in range(3)]


def test_value_loader_decodes_subclasses_by_namespace() -> None:
    load = Schema(value_type=Reading).value_loader()
    decoded = load(PreciseReading("s", 1.0, 0.1).dumps())
    assert type(decoded) is PreciseReading


def test_value_without_type_is_the_codec_output() -> None:
    schema = Schema()
    assert schema.loads_value(b'{"a":[1,2]}') == {"a": [1, 2]}
    assert schema.dumps_value({"a": [1, 2]}) == b'{"a":[1,2]}'


def test_scalar_value_types() -> None:
    assert Schema(value_type=int).loads_value(b"42") == 42
    assert Schema(value_type=int, value_serializer="raw").loads_value(b"42") == 42
    assert Schema(value_type=float, value_serializer="raw").loads_value(b"2.5") == 2.5
    assert Schema(value_type=str, value_serializer="raw").loads_value("hé".encode()) == "hé"
    assert Schema(value_type=str).loads_value(b'"text"') == "text"
    assert Schema(value_type=bytes, value_serializer="raw").loads_value(b"\x00") == b"\x00"
    assert Schema(value_type=int).dumps_value(42) == b"42"
    assert Schema(value_type=str).dumps_value("text") == b'"text"'


def test_collection_value_types_convert_each_member() -> None:
    assert Schema(value_type=list[str]).loads_value(b'["ann","bob"]') == ["ann", "bob"]
    assert Schema(value_type=set[int]).loads_value(b"[1,2,2]") == {1, 2}
    readings = Schema(value_type=list[Reading]).loads_value(b'[{"sensor":"a"}]')
    assert readings == [Reading(sensor="a")]
    assert repr(Schema(value_type=list[str])).startswith("<Schema: key_type=None")
    assert "value_type=list[str]" in repr(Schema(value_type=list[str]))
    with pytest.raises(ValueDecodeError, match=r"list\[str\].*expected a list, got str"):
        Schema(value_type=list[str]).loads_value(b'"ann"')


def test_a_list_is_not_text() -> None:
    """str() of a decoded list or dict would pass its repr off as the text sent."""
    with pytest.raises(ValueDecodeError, match="expected a str, got list"):
        Schema(value_type=str).loads_value(b'["ann","bob"]')
    with pytest.raises(ValueDecodeError, match="expected a str, got dict"):
        Schema(value_type=str).loads_value(b'{"a":1}')
    assert Schema(value_type=str).loads_value(b"12") == "12"  # a number's digits


def test_bytes_are_sent_as_already_encoded() -> None:
    assert Schema(value_type=Reading).dumps_value(b"raw bytes") == b"raw bytes"


def test_none_value_is_a_tombstone() -> None:
    schema = Schema(value_type=Reading)
    assert schema.dumps_value(None) is None
    with pytest.raises(
        ValueDecodeError,
        match="has no value \\(a tombstone\\?\\) but Reading \\(json codec\\) needs one",
    ):
        schema.loads_value(None)


def test_allow_empty_decodes_missing_and_empty_values_as_none() -> None:
    for value_type in (Reading, None, int):
        schema = Schema(value_type=value_type, allow_empty=True)
        assert schema.loads_value(None) is None
        assert schema.loads_value(b"") is None
        assert schema.value_loader()(None) is None
    raw_schema = Schema(value_serializer="raw", allow_empty=True)
    assert raw_schema.loads_value(b"") is None
    assert raw_schema.loads_value(b"x") == b"x"


# -- keys --------------------------------------------------------------------------------


def test_untyped_keys_are_raw_by_default() -> None:
    schema = Schema()
    assert schema.key_codec == raw()
    assert schema.dumps_key("user-1") == b"user-1"
    assert schema.loads_key(b"user-1") == b"user-1"


def test_none_key_stays_none() -> None:
    schema = Schema(key_type=str)
    assert schema.loads_key(None) is None
    assert schema.dumps_key(None) is None
    assert schema.key_loader()(None) is None


def test_typed_keys() -> None:
    assert Schema(key_type=str).loads_key(b"abc") == "abc"
    assert Schema(key_type=int).loads_key(b"7") == 7
    assert Schema(key_type=int).dumps_key(7) == b"7"
    assert Schema(key_type=bytes).loads_key(b"\xff") == b"\xff"


def test_record_key_uses_json_although_keys_default_to_raw() -> None:
    schema = Schema(key_type=Reading)
    assert schema.key_codec == json()
    key = Reading("k")
    assert schema.loads_key(schema.dumps_key(key)) == key


# -- serializer resolution ---------------------------------------------------------------


def test_explicit_serializer_beats_record_option() -> None:
    schema = Schema(value_type=Packed, value_serializer="pickle")
    assert schema.value_codec == pickle()
    assert schema.loads_value(schema.dumps_value(Packed(1))) == Packed(1)


def test_record_option_beats_default() -> None:
    schema = Schema(value_type=Packed, default_value_serializer="pickle")
    assert schema.value_codec == json() | binary()
    encoded = schema.dumps_value(Packed(3))
    assert base64.b64decode(encoded).startswith(b'{"n":3')
    assert schema.loads_value(encoded) == Packed(3)


def test_defaults_come_from_the_app_settings() -> None:
    schema = Schema(default_key_serializer="json", default_value_serializer="pickle")
    assert schema.key_codec == json()
    assert schema.value_codec == pickle()
    assert schema.loads_value(schema.dumps_value({1, 2})) == {1, 2}


def test_record_sent_on_an_untyped_schema_uses_its_own_serializer() -> None:
    schema = Schema()
    assert schema.dumps_value(Packed(1)) == Packed(1).dumps()


def test_unknown_serializer_fails_when_the_schema_is_made() -> None:
    with pytest.raises(ImproperlyConfigured, match="unknown serializer 'yaml'"):
        Schema(value_serializer="yaml")


def test_derive_changes_one_argument() -> None:
    schema = Schema(key_type=str, value_type=Reading, allow_empty=True)
    derived = schema.derive(value_serializer="pickle")
    assert derived.value_codec == pickle()
    assert derived.key_type is str
    assert derived.value_type is Reading
    assert derived.allow_empty
    assert schema.value_codec == json()


# -- errors ------------------------------------------------------------------------------


def test_invalid_json_value_raises_value_decode_error_with_reason() -> None:
    load = Schema(value_type=Reading).value_loader()
    with pytest.raises(ValueDecodeError) as info:
        load(b"{broken")
    message = str(info.value)
    assert message.startswith("cannot decode value b'{broken' as Reading (json codec): ")
    assert "JSONDecodeError" in message
    assert info.value.__cause__ is not None


def test_missing_field_raises_value_decode_error_naming_it() -> None:
    with pytest.raises(ValueDecodeError, match="missing required field\\(s\\) 'sensor'") as info:
        Schema(value_type=Reading).loads_value(b'{"value": 1}')
    assert isinstance(info.value.__cause__, TypeError)


def test_validation_failure_is_a_value_decode_error() -> None:
    with pytest.raises(
        ValueDecodeError, match="Bounded.n: 11 is greater than max_value 10"
    ) as info:
        Schema(value_type=Bounded).loads_value(b'{"n": 11}')
    assert isinstance(info.value.__cause__, ValidationError)


def test_key_decode_error() -> None:
    with pytest.raises(
        KeyDecodeError, match="cannot decode key b'abc' as int \\(raw codec\\): ValueError"
    ):
        Schema(key_type=int).loads_key(b"abc")
    with pytest.raises(KeyDecodeError):
        Schema(key_type=Reading).key_loader()(b"[1]")


def test_decode_errors_are_decode_errors() -> None:
    with pytest.raises(DecodeError):
        Schema(value_serializer="binary").loads_value(b"***")


def test_encode_error_names_the_side() -> None:
    with pytest.raises(EncodeError, match="cannot encode key \\{'a': 1\\}: raw codec takes"):
        Schema().dumps_key({"a": 1})


def test_repr_shows_types_and_codecs() -> None:
    assert repr(Schema(key_type=str, value_type=Reading)) == (
        "<Schema: key_type=str key_serializer=raw value_type=Reading value_serializer=json>"
    )


# -- Faust compatibility: custom Schema subclasses, value_type=bytes -------------------


def test_value_type_bytes_gives_the_payload_undecoded() -> None:
    schema = Schema(value_type=bytes)  # the default value serializer is json
    assert schema.loads_value(b"\x00not json\xff") == b"\x00not json\xff"
    assert schema.dumps_value(b"\x01\x02") == b"\x01\x02"
    assert Schema(key_type=bytes).loads_key(b"k\xff") == b"k\xff"


async def test_topic_with_value_type_bytes_delivers_raw_bytes(app) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import eventually

    topic = app.topic("blobs", value_type=bytes, partitions=1)
    seen: list[bytes] = []

    @app.agent(topic)
    async def blobs(stream):  # type: ignore[no-untyped-def]
        async for blob in stream:
            seen.append(blob)

    await app.start()
    await topic.send(value=b'{"a": 1}')
    await topic.send(value=b"\xff\x00")
    await eventually(lambda: len(seen) == 2)
    assert seen == [b'{"a": 1}', b"\xff\x00"]


def test_faust_call_form_of_loads_key_and_loads_value() -> None:
    from faust.transport.base import Message

    message = Message("t", 0, 0, 0.0, b"k", b'{"sensor":"s","value":2.0}', [])
    schema = Schema(key_type=str, value_type=Reading)
    assert schema.loads_key(None, message) == "k"
    assert schema.loads_value(None, message) == Reading("s", 2.0)
    assert (
        Schema(value_type=str).loads_value(None, message, serializer="raw")
        == message.value.decode()
    )


async def test_custom_schema_loads_value_is_called_as_faust_calls_it(app) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import eventually

    calls: list[tuple[object, bytes]] = []

    class Envelope(Schema):
        """Values arrive as 'VERSION:json'; the version is in the payload, not a header."""

        def loads_value(self, app, message, *, loads=None, serializer=None):  # type: ignore[no-untyped-def,override]
            calls.append((app, message.value))
            _, _, body = message.value.partition(b":")
            return loads(self.value_type, body, serializer=serializer or "json")

        def loads_key(self, app, message, *, loads=None, serializer=None):  # type: ignore[no-untyped-def,override]
            return super().loads_key(app, message, loads=loads, serializer=serializer)

    schema = Envelope(key_type=str, value_type=Reading)
    topic = app.topic("enveloped", schema=schema, partitions=1)
    assert topic.message_loaders is not None
    assert app.topic("plain", value_type=Reading).message_loaders is None  # default path
    seen: list[tuple[str, Reading]] = []

    @app.agent(topic)
    async def readings(stream):  # type: ignore[no-untyped-def]
        async for key, reading in stream.items():
            seen.append((key, reading))

    await app.start()
    raw_topic = app.topic("enveloped", value_serializer="raw", partitions=1)
    await raw_topic.send(key="s1", value=b'v2:{"sensor":"s1","value":1.5}')
    await raw_topic.send(key="s2", value=b"v2:{broken")  # reported like any undecodable value
    await raw_topic.send(key="s3", value=b'v2:{"sensor":"s3"}')
    await eventually(lambda: len(seen) == 2)
    assert seen == [("s1", Reading("s1", 1.5)), ("s3", Reading("s3", 0.0))]
    assert calls[0] == (app, b'v2:{"sensor":"s1","value":1.5}')
    await eventually(lambda: app.conductor.decode_errors == 1)


# -- Faust's dumps_key / dumps_value(app, obj, serializer=, headers=)


def test_dumps_in_fausts_form_returns_bytes_and_headers() -> None:
    schema = Schema(key_type=str, value_type=Reading)
    assert schema.dumps_key("k") == b"k"  # the one-argument form
    assert schema.dumps_key(None, "k", serializer="json", headers={"h": b"1"}) == (
        b'"k"',
        {"h": b"1"},
    )
    data, headers = schema.dumps_value(None, Reading("s", 2.0), serializer="json")
    assert Reading.loads(data) == Reading("s", 2.0) and headers is None
    with pytest.raises(TypeError, match=r"dumps_value\(\) needs the value"):
        schema.dumps_value()


async def test_a_faust_dumps_override_encodes_every_record_a_topic_sends(app) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import eventually

    class Signed(Schema):
        """Values go out upper-cased, with a header naming their length."""

        def dumps_value(self, app, value, *, serializer=None, headers=None):  # type: ignore[no-untyped-def,override]
            data, headers = super().dumps_value(
                app, value.upper(), serializer=serializer, headers=headers
            )
            return data, {**(headers or {}), "length": str(len(data)).encode()}

        def on_dumps_key_prepare_headers(self, key, headers):  # type: ignore[no-untyped-def]
            return {**(headers or {}), "key-seen": b"1"}

    topic = app.topic("signed", schema=Signed(value_type=str, value_serializer="raw"))
    seen: list[tuple[str, dict[str, bytes]]] = []

    @app.agent(app.topic("signed", value_type=str, value_serializer="raw", partitions=1))
    async def read(stream):  # type: ignore[no-untyped-def]
        async for event in stream.events():
            seen.append((event.value, dict(event.headers)))

    await app.start()
    await topic.send(key="k", value="hello", headers={"h": b"v"})
    topic.send_soon(key="k", value="again")
    await eventually(lambda: len(seen) == 2)
    assert seen == [
        ("HELLO", {"h": b"v", "key-seen": b"1", "length": b"5"}),
        ("AGAIN", {"key-seen": b"1", "length": b"5"}),
    ]
