"""The App: settings, declarations, lifecycle and signals."""

from __future__ import annotations

import asyncio
import datetime
import logging
import socket
import sys
import zoneinfo

import pytest

import faust
from faust.exceptions import ImproperlyConfigured
from faust.transport.partitioner import partition_for_key
from tests.conftest import eventually


def test_defaults_run_on_the_embedded_broker() -> None:
    app = faust.App("defaults")
    assert app.conf.broker == ["memory://"]
    assert app.conf.store == "memory://"
    assert app.conf.id == app.conf.group_id == "defaults"
    assert app.transport.scheme == "memory"


def test_url_is_an_alias_of_broker() -> None:
    app = faust.App("old-style", url="kafka://localhost")
    assert app.conf.broker == ["kafka://localhost"]


def test_several_brokers_separated_by_semicolons() -> None:
    app = faust.App("multi", broker="kafka://h1:9092;kafka://h2:9092")
    assert app.conf.broker == ["kafka://h1:9092", "kafka://h2:9092"]


def test_version_changes_the_id() -> None:
    assert faust.App("versioned", version=3).conf.id == "versioned-v3"
    assert faust.App("versioned", version=1).conf.id == "versioned"


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAUST_TOPIC_PARTITIONS", "12")
    monkeypatch.setenv("FAUST_BROKER", "kafka://env-host:9092")
    app = faust.App("from-env")
    assert app.conf.topic_partitions == 12
    assert app.conf.broker == ["kafka://env-host:9092"]
    # An explicit argument wins over the environment.
    assert faust.App("explicit", topic_partitions=3).conf.topic_partitions == 3


def test_bad_setting_from_environment_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAUST_TOPIC_PARTITIONS", "lots")
    with pytest.raises(ImproperlyConfigured) as info:
        faust.App("bad-env")
    message = str(info.value)
    assert "topic_partitions" in message and "FAUST_TOPIC_PARTITIONS" in message
    assert "'lots'" in message and "\n" not in message


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"topic_partitions": 0}, "Setting topic_partitions: expected an int >= 1, got 0"),
        ({"topic_partitions": "x"}, "Setting topic_partitions: expected an int >= 1, got 'x'"),
        ({"broker_commit_interval": -1}, "Setting broker_commit_interval: expected a number"),
        ({"store": "redis://"}, "unknown store 'redis://': use 'memory://' or 'rocksdb://'"),
        ({"broker": "localhost:9092"}, "has no scheme: use 'memory://' or 'kafka://"),
        ({"consumer_auto_offset_reset": "middle"}, "expected one of earliest, latest"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        (
            {"topic_partition": 3},
            "Unknown setting 'topic_partition'. Did you mean 'topic_partitions'?",
        ),
    ],
)
def test_wrong_settings_fail_with_one_line(options: dict, expected: str) -> None:
    with pytest.raises(ImproperlyConfigured) as info:
        faust.App("bad", **options)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_broker_scheme_fails_when_the_transport_is_made() -> None:
    app = faust.App("bad-scheme", broker="rabbit://localhost")
    with pytest.raises(ImproperlyConfigured, match="unknown scheme 'rabbit://'.*'memory://'"):
        _ = app.transport


def test_empty_id_is_rejected() -> None:
    with pytest.raises(ImproperlyConfigured, match="App id"):
        faust.App("")


@pytest.mark.parametrize("app_id", ["orders app", "orders/v2", "zählung"])
def test_an_id_kafka_cannot_name_topics_after_is_rejected_naming_the_id(app_id: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=r"App id .* has characters Kafka rejects"):
        faust.App(app_id)


async def test_send_with_key_partition_timestamp_and_headers(app: faust.App) -> None:
    topic = app.topic("events", key_type=str, value_type=str, partitions=6)
    got: list[faust.Event] = []

    @app.agent(topic)
    async def reader(stream):
        async for event in stream.events():
            got.append(event)

    await app.start()
    meta = await topic.send(key="user-7", value="hello", headers={"trace": b"abc"}, timestamp=1e9)
    assert meta.partition == partition_for_key(b"user-7", 6)
    explicit = await topic.send(key="user-7", value="there", partition=5)
    assert explicit.partition == 5
    await eventually(lambda: len(got) == 2)
    first = next(e for e in got if e.value == "hello")
    assert first.key == "user-7"
    assert first.headers == {"trace": b"abc"}
    assert first.message.timestamp == 1e9


async def test_send_soon_buffers_and_resolves(app: faust.App) -> None:
    topic = app.topic("soon", value_type=int, partitions=1)
    seen: list[int] = []

    @app.agent(topic)
    async def reader(stream):
        async for value in stream:
            seen.append(value)

    await app.start()
    futures = [topic.send_soon(value=i) for i in range(3)]
    metas = await asyncio.gather(*futures)
    assert [m.offset for m in metas] == [0, 1, 2]
    await eventually(lambda: seen == [0, 1, 2])


async def test_producer_only_app_sends_without_starting() -> None:
    app = faust.App("web-process", broker="memory://shared-producer-test", producer_only=True)
    worker_app = faust.App("web-process", broker="memory://shared-producer-test")
    topic = app.topic("clicks", value_type=str)
    seen: list[str] = []

    @worker_app.agent(worker_app.topic("clicks", value_type=str))
    async def clicks(stream):
        async for value in stream:
            seen.append(value)

    await topic.send(value="from the web")  # producer starts on first use
    assert app.producer_only and app.consumer is None
    await worker_app.start()
    try:
        await eventually(lambda: seen == ["from the web"])
    finally:
        await worker_app.stop()


async def test_signals_fire_for_start_assignment_and_shutdown(app: faust.App) -> None:
    fired: list[str] = []
    assigned: set = set()

    @app.on_startup_finished.connect
    async def started(sender, **kwargs):
        assert sender is app
        fired.append("started")

    @app.on_partitions_assigned.connect
    def on_assigned(sender, tps, **kwargs):
        assigned.update(tps)
        fired.append("assigned")

    @app.on_before_shutdown.connect
    def before(sender, **kwargs):
        fired.append("before_shutdown")

    @app.on_shutdown.connect
    def after(sender, **kwargs):
        fired.append("shutdown")

    @app.agent(app.topic("sig", partitions=2))
    async def reader(stream):
        async for _ in stream:
            pass

    await app.start()
    await eventually(lambda: "assigned" in fired)
    assert ("sig", 0) in assigned and ("sig", 1) in assigned
    await app.stop()
    assert fired[0] in ("started", "assigned")
    assert fired[-2:] == ["before_shutdown", "shutdown"]


async def test_revoke_signal_on_stop(app: faust.App) -> None:
    revoked: set = set()
    app.on_partitions_revoked.connect(lambda sender, tps: revoked.update(tps))

    @app.agent(app.topic("rev", partitions=1))
    async def reader(stream):
        async for _ in stream:
            pass

    await app.start()
    await eventually(lambda: app.consumer is not None and bool(app.consumer.driver.assignment()))
    await app.stop()
    assert ("rev", 0) in revoked


async def test_timer_task_and_service(app: faust.App) -> None:
    ticks: list[object] = []
    started: list[str] = []

    @app.timer(interval=0.02)
    async def with_app(app_arg):
        ticks.append(app_arg)

    @app.timer(0.02)
    def without_args():
        ticks.append("plain")

    @app.task
    async def on_start(app_arg):
        started.append(app_arg.conf.id)

    @app.service
    class Pinger(faust.Service):
        async def on_start(self) -> None:
            started.append("service")

    await app.start()
    await eventually(lambda: ticks.count(app) >= 2 and ticks.count("plain") >= 2)
    assert (
        started == ["service", app.conf.id]
        or started == [app.conf.id, "service"]
        or (sorted(map(str, started)) == sorted(["service", app.conf.id]))
    )


async def test_timer_that_raises_keeps_running(app: faust.App) -> None:
    runs = 0

    @app.timer(0.01)
    async def flaky():
        nonlocal runs
        runs += 1
        raise RuntimeError("boom")

    await app.start()
    await eventually(lambda: runs >= 3)


def test_timer_interval_must_be_positive(app: faust.App) -> None:
    with pytest.raises(ImproperlyConfigured, match="interval must be a number of seconds > 0"):
        app.timer(interval=0)(lambda: None)


def test_invalid_crontab_fails_at_declaration(app: faust.App) -> None:
    with pytest.raises(ImproperlyConfigured, match="'61 \\* \\* \\* \\*' is not a valid cron"):
        app.crontab("61 * * * *")(lambda: None)


def test_misspelt_crontab_timezone_fails_at_declaration(app: faust.App) -> None:
    with pytest.raises(
        ImproperlyConfigured, match="'Europe/Amsterdm': did you mean 'Europe/Amsterdam'"
    ):
        app.crontab("0 * * * *", timezone="Europe/Amsterdm")(lambda: None)


def test_crontab_next_run_respects_the_timezone(app: faust.App) -> None:
    from faust.timers import Crontab

    fun = lambda: None  # noqa: E731
    cron = Crontab(
        app, fun, "0 12 * * *", "noon", False, datetime.timezone(datetime.timedelta(hours=5))
    )
    delay = cron.next_delay()
    now = datetime.datetime.now(datetime.timezone(datetime.timedelta(hours=5)))
    expected = (now.replace(hour=12, minute=0, second=0, microsecond=0) - now).total_seconds()
    if expected <= 0:
        expected += 86400
    assert abs(delay - expected) < 2


def test_crontab_takes_tz_as_faust_examples_write_it(
    app: faust.App, caplog: pytest.LogCaptureFixture
) -> None:
    # Faust's crontab example: @app.crontab('16 20 * * *', tz=pytz.timezone(...)).
    pacific = zoneinfo.ZoneInfo("US/Pacific")
    app.crontab("16 20 * * *", tz=pacific, on_leader=True)(lambda: None)
    cron = app.timers[-1]
    with caplog.at_level(logging.INFO, logger="faust.timers"):
        delay = cron.next_delay()
    now = datetime.datetime.now(pacific)
    expected = now.replace(hour=20, minute=16, second=0, microsecond=0)
    if expected <= now:
        expected += datetime.timedelta(days=1)
    assert abs(delay - (expected - now).total_seconds()) < 2
    # The next run is said at start: a daily job is otherwise silent for a day.
    assert f"('16 20 * * *'): next run at {expected.isoformat()}" in caplog.text
    with pytest.raises(TypeError, match="timezone= or tz=, not both"):
        app.crontab("* * * * *", tz=pacific, timezone=pacific)


async def test_crontab_runs(app: faust.App, monkeypatch: pytest.MonkeyPatch) -> None:
    from faust.timers import Crontab

    monkeypatch.setattr(Crontab, "next_delay", lambda self: 0.01)
    runs: list[int] = []
    app.crontab("*/5 * * * *", timezone="Europe/Oslo")(lambda: runs.append(1))
    await app.start()
    await eventually(lambda: len(runs) >= 2)


async def test_stop_commits_processed_offsets(app: faust.App) -> None:
    topic = app.topic("commits", value_type=int, partitions=1)
    seen: list[int] = []

    @app.agent(topic)
    async def reader(stream):
        async for value in stream:
            seen.append(value)

    await app.start()
    for i in range(5):
        await topic.send(value=i)
    await eventually(lambda: len(seen) == 5)
    broker = app.transport.broker
    await app.stop()
    assert broker.groups[app.conf.group_id].committed[("commits", 0)] == 5


async def test_autodiscover_imports_modules(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "discoverme"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "agents.py").write_text(
        "from discoverme_app import app\n"
        "@app.agent()\n"
        "async def found(stream):\n"
        "    async for _ in stream:\n"
        "        pass\n"
    )
    (tmp_path / "discoverme_app.py").write_text(
        "import faust\napp = faust.App('disc', autodiscover=True, origin='discoverme')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import discoverme_app

    discoverme_app.app.discover()
    assert any(name.endswith(".found") for name in discoverme_app.app.agents)


def test_kafka_client_settings() -> None:
    app = faust.App(
        "kafka-settings",
        producer_acks="all",
        producer_compression_type="zstd",
        producer_linger=0.01,
        consumer_group_instance_id="worker-1",
        broker_credentials=faust.SASLCredentials(username="u", password="p"),
        web_port=6067,
    )
    conf = app.conf
    assert conf.producer_acks == -1
    assert conf.producer_compression_type == "zstd"
    assert conf.consumer_group_instance_id == "worker-1"
    assert conf.broker_credentials.client_options()["security_protocol"] == "SASL_PLAINTEXT"
    assert conf.canonical_url == f"http://{socket.gethostname()}:6067"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"producer_acks": 2}, "Setting producer_acks: expected -1 (or 'all'), 0 or 1, got 2"),
        ({"producer_compression_type": "rar"}, "expected one of gzip, snappy, lz4, zstd"),
        ({"broker_credentials": ("u", "p")}, "expected faust.SASLCredentials(...)"),
        ({"web_port": 70000}, "expected a TCP port (1-65535, or 0 for any free one), got 70000"),
    ],
)
def test_wrong_kafka_settings(options: dict, expected: str) -> None:
    with pytest.raises(ImproperlyConfigured) as info:
        faust.App("bad", **options)
    assert expected in str(info.value)


def test_sasl_mechanism_is_checked() -> None:
    with pytest.raises(ValueError, match="SASL mechanism 'MD5' is not supported"):
        faust.SASLCredentials(username="u", password="p", mechanism="MD5")
    creds = faust.SASLCredentials(username="u", password="secret", mechanism="scram-sha-256")
    assert creds.mechanism == "SCRAM-SHA-256" and "secret" not in repr(creds)


def test_two_agents_with_one_name_fail_at_declaration(app: faust.App) -> None:
    @app.agent(name="worker-a")
    async def first(stream):
        async for _ in stream:
            pass

    with pytest.raises(ValueError, match=r"Two agents are named 'worker-a'.*name='...'"):

        @app.agent(name="worker-a")
        async def second(stream):
            async for _ in stream:
                pass

    assert app.agents["worker-a"] is first


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("bad topic/name!", r"'bad topic/name!' has characters Kafka rejects \(' !/'\)"),
        ("x" * 250, "is 250 characters long: Kafka allows at most 249"),
        ("..", "'..' is reserved by Kafka"),
        ("", "non-empty strings"),
    ],
)
def test_topic_name_kafka_would_reject_fails_at_declaration(
    app: faust.App, name: str, expected: str
) -> None:
    with pytest.raises(ValueError, match=expected):
        app.topic(name)
    if name:  # an agent given a topic name checks it the same way

        async def agent(stream):
            async for _ in stream:
                pass

        with pytest.raises(ValueError, match=expected):
            app.agent(name)(agent)


def test_legal_topic_names_are_accepted(app: faust.App) -> None:
    for name in ("orders", "Orders.v2_x-1", "x" * 249, "..."):
        assert app.topic(name).name == name


def test_config_from_object_takes_faust_s_silent_and_force() -> None:
    app = faust.App("cfg-silent")
    app.config_from_object("no_such_settings_module", silent=True)  # ignored
    with pytest.raises(ImportError):
        app.config_from_object("no_such_settings_module")
    app.config_from_object({"topic_partitions": 3}, force=True)
    assert app.conf.topic_partitions == 3


def test_autodiscover_looks_in_django_apps_only_when_django_is_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from faust.contrib.django import installed_apps

    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    assert installed_apps() == []
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "proj.settings")
    monkeypatch.setitem(sys.modules, "django", None)  # not installed
    with pytest.warns(UserWarning, match="DJANGO_SETTINGS_MODULE is set but Django is not"):
        assert installed_apps() == []


async def test_dump_tasks_shows_where_each_task_waits(capsys: pytest.CaptureFixture[str]) -> None:
    """SIGUSR1's dump follows each task's awaits to the innermost one: the line a stuck
    task waits on, not only the coroutine it started with."""
    from faust.worker import dump_tasks

    gate = asyncio.Event()

    async def inner() -> None:
        await gate.wait()

    async def outer() -> None:
        await inner()

    task = asyncio.ensure_future(outer())
    task.set_name("stuck-here")
    await asyncio.sleep(0)
    dump_tasks()
    gate.set()
    await task
    err = capsys.readouterr().err
    chunk = err.split("--- stuck-here\n", 1)[1].split("---", 1)[0]
    assert " in outer" in chunk and " in inner" in chunk and " in wait" in chunk, chunk
