"""SASL: clients log in to a broker that requires it (``scripts/kafka up --sasl``).

The broker's client listener is SASL_PLAINTEXT with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512;
its client user is faust / faust-secret. First aiokafka on its own (what the broker
accepts and how a refused login looks), then Faust apps with ``broker_credentials``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from subprocess import CompletedProcess
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed

import faust
from faust.exceptions import ImproperlyConfigured, SecurityError
from tests.conftest import eventually

Runner = Callable[..., CompletedProcess[str]]

# The client user of `scripts/kafka up --sasl` (KAFKA_SASL_BOOTSTRAP_SERVERS must have it).
USER = "faust"
PASSWORD = "faust-secret"
WRONG_PASSWORD = "not-faust-secret"
MECHANISMS = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
MESSAGES = 10
# A refused login is answered at once; allow for a busy 2-core machine.
REFUSED_WITHIN = 10.0
# Joining a consumer group takes a few seconds on a busy 2-core machine.
WAIT = 60.0
# The Faust apps' broker_connect_timeout: a wrong password must fail well before it.
CONNECT_TIMEOUT = 20.0


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def sasl_options(mechanism: str = "PLAIN", password: str = PASSWORD) -> dict[str, Any]:
    return {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": USER,
        "sasl_plain_password": password,
    }


def test_script_probe_logs_in_and_tells_a_wrong_password(
    kafka_sasl_bootstrap: str, kafka_script: Runner
) -> None:
    ok = kafka_script("check", kafka_sasl_bootstrap, "--sasl-plain", f"{USER}:{PASSWORD}")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "ok, cluster" in ok.stdout

    refused = kafka_script(
        "check", kafka_sasl_bootstrap, "--sasl-plain", f"{USER}:{WRONG_PASSWORD}", "--timeout", "30"
    )
    assert refused.returncode == 1
    assert f"login as '{USER}' refused" in refused.stderr
    assert "Invalid username or password" in refused.stderr

    anonymous = kafka_script("check", kafka_sasl_bootstrap)
    assert anonymous.returncode == 1
    assert "require SASL?" in anonymous.stderr


@pytest.mark.parametrize("mechanism", MECHANISMS)
async def test_aiokafka_round_trip_with_sasl(kafka_sasl_bootstrap: str, mechanism: str) -> None:
    topic = unique("sasl-it")
    options = sasl_options(mechanism)
    async with asyncio.timeout(WAIT):
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_sasl_bootstrap, **options)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, 1, 1)])
        finally:
            await admin.close()

        producer = AIOKafkaProducer(bootstrap_servers=kafka_sasl_bootstrap, acks="all", **options)
        await producer.start()
        try:
            for i in range(MESSAGES):
                await producer.send_and_wait(topic, key=b"k", value=f"value-{i}".encode())
        finally:
            await producer.stop()

        # A consumer group: its coordinator and offset commits go over SASL as well.
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_sasl_bootstrap,
            group_id=unique("sasl-it-group"),
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            **options,
        )
        await consumer.start()
        try:
            values: list[bytes] = []
            while len(values) < MESSAGES:
                batches = await consumer.getmany(timeout_ms=1000)
                values.extend(r.value for records in batches.values() for r in records)
            await consumer.commit()
        finally:
            await consumer.stop()
    assert values == [f"value-{i}".encode() for i in range(MESSAGES)]


@pytest.mark.parametrize("mechanism", MECHANISMS)
async def test_aiokafka_connection_with_a_wrong_password_is_refused(
    kafka_sasl_bootstrap: str, mechanism: str
) -> None:
    host, _, port = kafka_sasl_bootstrap.split(",")[0].rpartition(":")
    started = time.monotonic()
    with pytest.raises(SaslAuthenticationFailed) as info:
        async with asyncio.timeout(REFUSED_WITHIN):
            await create_conn(host, int(port), **sasl_options(mechanism, WRONG_PASSWORD))
    assert time.monotonic() - started < REFUSED_WITHIN
    assert "Authentication failed" in str(info.value)
    assert WRONG_PASSWORD not in str(info.value)


@pytest.mark.parametrize("client", ["producer", "consumer", "admin"])
async def test_aiokafka_client_with_a_wrong_password_fails_to_start(
    kafka_sasl_bootstrap: str, client: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="aiokafka")
    options: dict[str, Any] = {
        "bootstrap_servers": kafka_sasl_bootstrap,
        **sasl_options(password=WRONG_PASSWORD),
    }
    kafka_client: Any
    if client == "producer":
        kafka_client = AIOKafkaProducer(**options)
    elif client == "consumer":
        kafka_client = AIOKafkaConsumer(unique("sasl-it"), **options)
    else:
        kafka_client = AIOKafkaAdminClient(**options)
    started = time.monotonic()
    try:
        # aiokafka reports a failed bootstrap as a connection error and logs the cause.
        with pytest.raises(KafkaConnectionError, match="Unable to bootstrap"):
            async with asyncio.timeout(REFUSED_WITHIN):
                await kafka_client.start()
    finally:
        await (kafka_client.close() if client == "admin" else kafka_client.stop())
    assert time.monotonic() - started < REFUSED_WITHIN
    causes = [
        r.getMessage() for r in caplog.records if "SaslAuthenticationFailed" in r.getMessage()
    ]
    assert causes, [r.getMessage() for r in caplog.records]
    assert "Invalid username or password" in causes[0]


async def test_faust_app_with_sasl_credentials_runs_an_agent(kafka_sasl_bootstrap: str) -> None:
    app = faust.App(
        f"sasl-test-{uuid.uuid4()}",
        broker=f"kafka://{kafka_sasl_bootstrap}",
        broker_credentials=faust.SASLCredentials(username=USER, password=PASSWORD),
        broker_connect_timeout=CONNECT_TIMEOUT,
        topic_partitions=1,
    )
    topic = app.topic(unique("sasl-values"), value_type=int)
    received: list[int] = []

    @app.agent(topic)
    async def collect(stream: Any) -> None:
        async for value in stream:
            received.append(value)

    try:
        async with asyncio.timeout(WAIT):
            await app.start()
        for i in range(MESSAGES):
            await topic.send(value=i)
        await eventually(lambda: len(received) >= MESSAGES, timeout=WAIT)
    finally:
        await app.stop()
    assert received == list(range(MESSAGES))


async def test_faust_app_with_a_wrong_password_fails_at_start(kafka_sasl_bootstrap: str) -> None:
    app = faust.App(
        unique("sasl-test-refused"),
        broker=f"kafka://{kafka_sasl_bootstrap}",
        broker_credentials=faust.SASLCredentials(username=USER, password=WRONG_PASSWORD),
        broker_connect_timeout=CONNECT_TIMEOUT,
    )
    topic = app.topic(unique("sasl-nowhere"))

    @app.agent(topic)
    async def idle(stream: Any) -> None:
        async for _ in stream:
            pass

    started = time.monotonic()
    try:
        with pytest.raises((ImproperlyConfigured, SecurityError)) as info:
            async with asyncio.timeout(CONNECT_TIMEOUT + 15):
                await app.start()
    finally:
        await app.stop()  # nothing started, nothing hangs
    elapsed = time.monotonic() - started
    message = str(info.value)
    assert "\n" not in message, message
    assert WRONG_PASSWORD not in message, message
    # Says what is wrong: the login, not an unreachable broker.
    assert "authenticat" in message.lower() or "sasl" in message.lower(), message
    assert USER in message, message
    # A refused login is final: it is reported at once, not after retrying until the
    # connect timeout.
    assert elapsed < REFUSED_WITHIN < CONNECT_TIMEOUT, (elapsed, message)
