"""Dead letters and error counts through the public API on the embedded broker."""

from __future__ import annotations

import logging

import pytest

import faust
from faust.exceptions import ImproperlyConfigured
from faust.transport.base import TP
from tests.conftest import eventually


class Withdrawal(faust.Record):
    account: str
    amount: int


def _dead_letters(app: faust.App, topic: str) -> list[tuple]:
    logs = app.transport.broker.logs.get(topic)
    return [entry for partition in logs or () for entry in partition]


async def _orders_app(app: faust.App, **topic_options) -> tuple[faust.Topic, list]:  # type: ignore[no-untyped-def]
    topic = app.topic("orders", value_type=Withdrawal, partitions=2, **topic_options)
    seen: list[Withdrawal] = []

    @app.agent(topic)
    async def orders(stream):
        async for order in stream:
            seen.append(order)

    await app.start()
    raw = app.topic("orders", value_serializer="raw")
    await topic.send(value=Withdrawal(account="a", amount=1), partition=1)
    await raw.send(key=b"k", value=b"{not json", partition=1, headers={"origin": b"legacy"})
    await topic.send(value=Withdrawal(account="b", amount=2), partition=1)
    await eventually(lambda: len(seen) == 2)
    return topic, seen


async def test_a_record_that_cannot_be_decoded_goes_to_the_dead_letter_topic(
    app: faust.App, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        _, seen = await _orders_app(app)
        await eventually(lambda: app.error_counts.dead_lettered == 1)
    assert [w.account for w in seen] == ["a", "b"]
    dlq = f"{app.conf.id}-orders-dlq"
    logs = app.transport.broker.logs[dlq]
    assert len(logs) == 2 and logs[0] == []  # the source's partition count and partition
    [(_, key, value, headers)] = logs[1]
    assert (key, value) == (b"k", b"{not json")
    headers = dict(headers)
    assert headers["origin"] == b"legacy"
    assert headers["faust.error.type"] == b"faust.exceptions.ValueDecodeError"
    assert headers["faust.error.message"]
    assert (
        headers["faust.source.topic"],
        headers["faust.source.partition"],
        headers["faust.source.offset"],
    ) == (b"orders", b"1", b"1")
    assert "faust.agent" not in headers
    assert app.error_counts.decode_errors == app.conductor.decode_errors == 1
    [line] = [r.getMessage() for r in caplog.records if "cannot be decoded" in r.getMessage()]
    assert "topic=orders partition=1 offset=1" in line and repr(dlq) in line
    # Committed past it once its dead letter is written.
    await eventually(lambda: app.consumer.trackers[TP("orders", 1)].committable() == 3)


async def test_dead_letter_topic_per_topic_and_skip(app: faust.App) -> None:
    await _orders_app(app, dead_letter_topic="bad-orders")
    await eventually(lambda: len(_dead_letters(app, "bad-orders")) == 1)
    assert f"{app.conf.id}-orders-dlq" not in app.transport.broker.logs

    skipping = faust.App(f"{app.conf.id}-skip", on_error="skip")
    try:
        await _orders_app(skipping)
        assert skipping.error_counts.skipped == 1
        assert skipping.error_counts.dead_lettered == 0
        assert not any(name.endswith("-dlq") for name in skipping.transport.broker.logs)
        tracker = skipping.consumer.trackers[TP("orders", 1)]
        await eventually(lambda: tracker.committable() == 3)
    finally:
        await skipping.stop()


async def test_on_error_stop_for_undecodable_records_stops_the_worker(app: faust.App) -> None:
    crashed: list[str] = []
    app.on_crash = crashed.append
    await _orders_app(app, on_error="stop")
    assert len(crashed) == 1
    assert "topic=orders partition=1 offset=1 cannot be decoded" in crashed[0]
    assert "on_error='stop'" in crashed[0]
    # Never committed past: the record is read again after the restart.
    assert app.consumer.trackers[TP("orders", 1)].committable() == 1


async def test_app_wide_dead_letter_topic_template(app: faust.App) -> None:
    shared = faust.App(f"{app.conf.id}-shared", dead_letter_topic="{app_id}-errors")
    try:
        await _orders_app(shared)
        await eventually(lambda: len(_dead_letters(shared, f"{shared.conf.id}-errors")) == 1)
    finally:
        await shared.stop()


async def test_an_in_process_channel_event_is_dead_lettered_encoded(app: faust.App) -> None:
    channel = app.channel(value_type=int)

    @app.agent(channel, retries=0, dead_letter_topic="channel-errors")
    async def reader(stream):
        async for value in stream:
            raise ValueError(f"no {value}")

    await app.start()
    await channel.send(value=42)
    await eventually(lambda: len(_dead_letters(app, "channel-errors")) == 1)
    [(_, _, value, headers)] = _dead_letters(app, "channel-errors")
    assert value == b"42"
    assert dict(headers)["faust.error.message"] == b"no 42"


def test_error_counts_are_a_small_typed_record(app: faust.App) -> None:
    assert app.error_counts.as_dict() == {
        "decode_errors": 0,
        "agent_errors": 0,
        "retried": 0,
        "dead_lettered": 0,
        "dead_letter_failures": 0,
        "skipped": 0,
    }


def test_error_settings_from_arguments_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    app = faust.App("errors", agent_retries=5, on_error="stop")
    assert (app.conf.agent_retries, app.conf.on_error) == (5, "stop")
    assert app.conf.dead_letter_topic == "{app_id}-{name}-dlq"
    monkeypatch.setenv("FAUST_AGENT_RETRIES", "0")
    monkeypatch.setenv("FAUST_ON_ERROR", "skip")
    from_env = faust.App("errors-env")
    assert (from_env.conf.agent_retries, from_env.conf.on_error) == (0, "skip")

    @from_env.agent()
    async def uses_defaults(stream):
        async for _ in stream:
            pass

    assert (uses_defaults.retries, uses_defaults.on_error) == (0, "skip")


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"agent_retries": -1}, "Setting agent_retries: expected an int >= 0, got -1"),
        ({"on_error": "ignore"}, "Setting on_error: expected one of dead_letter, stop, skip"),
        ({"dead_letter_topic": " "}, "Setting dead_letter_topic: expected a topic name"),
    ],
)
def test_wrong_error_settings_fail_with_one_line(options: dict, expected: str) -> None:
    with pytest.raises(ImproperlyConfigured) as info:
        faust.App("bad", **options)
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_wrong_on_error_of_a_topic(app: faust.App) -> None:
    with pytest.raises(ValueError, match="Topic 'orders': on_error must be one of"):
        app.topic("orders", on_error="explode")
