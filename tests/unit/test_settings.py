"""Settings: one declaration each, Faust's names and environment names, config objects,
freezing while the app runs, and the generated reference."""

from __future__ import annotations

import asyncio
import datetime
import logging
import socket
import ssl
import sys
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import faust
from faust.exceptions import ImproperlyConfigured
from faust.settings import Settings, declarations, settings_reference
from faust.settings_validation import boolean, non_negative_float, positive_float, positive_int

# Every setting faust-streaming documents (faust/types/settings/settings.py), with its
# class-valued ones.
FAUST_SETTINGS = """
autodiscover datadir tabledir debug env_prefix id_format origin timezone version
agent_supervisor blocking_timeout broker broker_consumer broker_producer broker_api_version
broker_check_crcs broker_client_id broker_commit_every broker_commit_interval
broker_commit_livelock_soft_timeout broker_credentials broker_heartbeat_interval
broker_max_poll_interval broker_max_poll_records broker_rebalance_timeout
broker_request_timeout broker_session_timeout broker_metadata_max_age
broker_connections_max_idle ssl_context consumer_api_version consumer_max_fetch_size
consumer_auto_offset_reset consumer_group_instance_id key_serializer value_serializer
logging_config loghandlers producer_acks producer_api_version producer_compression_type
producer_linger producer_linger_ms producer_max_batch_size producer_max_request_size
producer_partitioner producer_request_timeout producer_threaded recovery_consistency_check
store_check_exists crash_app_on_aerospike_exception aerospike_retries_on_exception
aerospike_sleep_seconds_between_retries_on_exception reply_create_topic reply_expires
reply_to reply_to_prefix processing_guarantee stream_buffer_maxsize
stream_processing_timeout stream_publish_on_commit stream_recovery_delay stream_wait_empty
store table_cleanup_interval table_key_index_size table_standby_replicas
topic_allow_declare topic_disable_leader topic_partitions topic_replication_factor cache
canonical_url web web_bind web_cors_options web_enabled web_host web_in_thread web_port
web_ssl_context web_transport worker_redirect_stdouts worker_redirect_stdouts_level
Agent ConsumerScheduler Event Schema Stream Table SetTable GlobalTable SetGlobalTable
TableManager Serializers Worker PartitionAssignor LeaderAssignor Router Topic HttpClient
Monitor stream_ack_cancelled_tasks stream_ack_exceptions url
""".split()

# Faust's own values for the settings whose default here is None (not given).
FAUST_VALUES: dict[str, Any] = {
    "autodiscover": False,
    "origin": "myproj.app",
    "blocking_timeout": 10.0,
    "broker_consumer": "memory://",
    "broker_producer": "memory://",
    "agent_supervisor": "mode.OneForOneSupervisor",
    "broker_credentials": None,
    "ssl_context": ssl.create_default_context(),
    "consumer_group_instance_id": "worker-1",
    "logging_config": {"version": 1},
    "loghandlers": [logging.NullHandler()],
    "producer_compression_type": "gzip",
    "producer_linger_ms": 5,
    "producer_request_timeout": 1200.0,
    "web_cors_options": {"*": {"allow_methods": "*"}},
    "Agent": "faust:Agent",
    "Stream": faust.Stream,
    "Table": "faust:Table",
    "Monitor": "faust.sensors:Monitor",
    "Serializers": "faust.serializers:Registry",
    "url": "memory://",
}


def make(**options: Any) -> Settings:
    return Settings.from_sources("settings-test", options, environ={})


@pytest.mark.parametrize("name", FAUST_SETTINGS)
def test_every_faust_setting_is_accepted(name: str) -> None:
    default = {d.name: d.default for d in declarations()}.get(name)
    value = FAUST_VALUES.get(name, default)
    app = faust.App("faust-names", **{name: value})
    assert app.conf is not None


def test_every_faust_setting_is_declared_and_in_the_reference() -> None:
    names = {d.name for d in declarations()}
    assert set(FAUST_SETTINGS) - {"url"} <= names
    reference = settings_reference()
    for name in names:
        assert f"| `{name}` |" in reference
    rows = [line for line in reference.splitlines() if line.startswith("| `")]
    assert len(rows) == len(names)


def test_reference_rows_have_five_cells_even_with_pipes_in_docs() -> None:
    for line in settings_reference().splitlines():
        assert line.replace("\\|", "").count("|") == 6, line


async def test_no_effect_settings_warn_once_at_start(caplog: pytest.LogCaptureFixture) -> None:
    app = faust.App("no-effect", debug=True, web_in_thread=True, stream_recovery_delay=3)
    caplog.set_level(logging.WARNING, logger="faust.settings")
    await app.start()
    await app.stop()
    await app.start()
    await app.stop()
    lines = [r.getMessage() for r in caplog.records if r.name == "faust.settings"]
    assert sorted(lines) == [
        "Setting debug has no effect here: there is no debug mode; /metrics and the "
        "dashboard are always on.",
        "Setting stream_recovery_delay has no effect here: recovery starts at once.",
        "Setting web_in_thread has no effect here: the web server runs on the event loop.",
    ]


async def test_settings_left_at_default_do_not_warn(caplog: pytest.LogCaptureFixture) -> None:
    app = faust.App("no-warnings", debug=False, broker_api_version="auto", cache="memory://")
    caplog.set_level(logging.WARNING, logger="faust.settings")
    await app.start()
    await app.stop()
    assert not [r for r in caplog.records if r.name == "faust.settings"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"stream_publish_on_commit": True}, "stream_publish_on_commit: True.*not held back"),
        ({"topic_allow_declare": False}, "topic_allow_declare: False.*internal topics"),
        ({"agent_supervisor": "mode.OneForAllSupervisor"}, "agent_supervisor.*one-for-one"),
        ({"producer_partitioner": lambda *a: 0}, "producer_partitioner.*partition per send"),
        ({"web_transport": "unix:///tmp/s.sock"}, "web_transport.*TCP only"),
        ({"web_ssl_context": ssl.create_default_context()}, "web_ssl_context.*proxy"),
        ({"web": "uvicorn://"}, "web: 'uvicorn://'.*aiohttp"),
        ({"broker_consumer": "kafka://other:9092"}, "broker_consumer.*separate cluster"),
        ({"Stream": type("MyStream", (faust.Stream,), {})}, "Stream.*'MyStream'.*faust.Stream"),
        ({"Table": "myproj.tables:Table"}, "Table.*'myproj.tables:Table'.*remove the setting"),
        (
            {
                "ssl_context": ssl.create_default_context(),
                "broker_credentials": faust.SASLCredentials(username="u", password="p"),
            },
            "ssl_context and broker_credentials are both given",
        ),
    ],
)
def test_settings_that_would_change_semantics_are_refused(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ImproperlyConfigured, match=message):
        faust.App("refused", **options)


def test_processing_guarantee_is_read_from_the_environment_and_checked() -> None:
    s = Settings.from_sources("x", {}, environ={"PROCESSING_GUARANTEE": "exactly_once"})
    assert s.processing_guarantee == "exactly_once"
    with pytest.raises(
        ImproperlyConfigured,
        match=r"processing_guarantee \(from environment variable PROCESSING_GUARANTEE\): "
        r"expected one of at_least_once, exactly_once, got 'exactly-once'",
    ):
        Settings.from_sources("x", {}, environ={"PROCESSING_GUARANTEE": "exactly-once"})


def test_faust_environment_names_are_read_and_faust_prefixed_ones_win() -> None:
    s = Settings.from_sources(
        "env", {}, environ={"BROKER_URL": "kafka://a:9092", "WEB_PORT": "7000", "APP_VERSION": "3"}
    )
    assert (s.broker, s.web_port, s.id) == (["kafka://a:9092"], 7000, "env-v3")
    s = Settings.from_sources(
        "env", {}, environ={"BROKER_URL": "kafka://a:9092", "FAUST_BROKER": "kafka://b:9092"}
    )
    assert s.broker == ["kafka://b:9092"]
    s = Settings.from_sources("env", {"broker": "kafka://c:9092"}, environ={"BROKER_URL": "x"})
    assert s.broker == ["kafka://c:9092"]
    with pytest.raises(
        ImproperlyConfigured, match=r"web_port \(from environment variable WEB_PORT\)"
    ):
        Settings.from_sources("env", {}, environ={"WEB_PORT": "http"})


def test_faust_forms_of_values() -> None:
    s = make(
        producer_linger_ms=250,
        reply_expires=datetime.timedelta(minutes=2),
        reply_to_prefix="f-reply-",
        version=2,
        id_format="{id}-version{self.version}",
        producer_acks="all",
    )
    assert s.producer_linger == 0.25
    assert s.reply_expires == 120.0
    assert s.reply_to.startswith("f-reply-")
    assert s.id == "settings-test-version2"
    assert s.producer_acks == -1
    context = ssl.create_default_context()
    assert make(ssl_context=context).broker_credentials == faust.SSLCredentials(context)
    assert make(producer_linger=0.5, producer_linger_ms=1).producer_linger == 0.5


def test_config_from_object_class_mapping_and_module(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Config:
        topic_partitions = 3
        web_port = 7001
        helper = "not a setting"

    app = faust.App("cfg", web_port=7002)
    app.config_from_object(Config)
    assert app.conf.topic_partitions == 3
    assert app.conf.web_port == 7002  # the App(...) argument wins

    app.config_from_object({"topic_replication_factor": 2})
    assert app.conf.topic_replication_factor == 2
    with pytest.raises(ImproperlyConfigured, match="Unknown setting 'topic_partition'"):
        app.config_from_object({"topic_partition": 2})

    (tmp_path / "cfg_settings_mod.py").write_text(
        "import os\nbroker = 'kafka://k1:9092'\nstore = 'rocksdb://'\n"
        "class Prod:\n    table_standby_replicas = 2\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    app.config_from_object("cfg_settings_mod")
    assert (app.conf.broker, app.conf.store) == (["kafka://k1:9092"], "rocksdb://")
    app.config_from_object("cfg_settings_mod:Prod")
    assert app.conf.table_standby_replicas == 2


def test_config_from_object_refuses_a_near_miss() -> None:
    class Config:
        brokr = "kafka://k1:9092"

    with pytest.raises(
        ImproperlyConfigured, match="Unknown setting 'brokr'.*Did you mean 'broker'"
    ):
        faust.App("cfg-typo").config_from_object(Config)


async def test_callable_autodiscover(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "callable_disc"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "agents.py").write_text("FOUND = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    app = faust.App("disc-callable", autodiscover=lambda: ["callable_disc"])
    app.discover()
    assert sys.modules["callable_disc.agents"].FOUND


async def test_settings_are_frozen_while_the_app_runs(app: faust.App) -> None:
    app.conf.topic_partitions = 2  # before start: allowed
    await app.start()
    with pytest.raises(
        ImproperlyConfigured, match="Setting broker_commit_every cannot change while"
    ):
        app.conf.broker_commit_every = 5
    with pytest.raises(ImproperlyConfigured, match="Setting producer_only cannot change"):
        app.producer_only = True
    with pytest.raises(ImproperlyConfigured, match="config_from_object.*after the app started"):
        app.config_from_object({"topic_partitions": 3})
    # The app's own adjustment at start (a web_port=0 server's real port) still works.
    app.conf.set_web_address(port=41001)
    assert app.conf.canonical_url == f"http://{socket.gethostname()}:41001"
    await app.stop()
    app.conf.broker_commit_every = 5
    assert app.conf.broker_commit_every == 5


async def test_reply_create_topic_starts_replies_at_start() -> None:
    app = faust.App("reply-create", reply_create_topic=True)
    await app.start()
    try:
        assert app.replies is not None
    finally:
        await app.stop()


async def test_stream_wait_empty_false_cancels_the_event_in_hand() -> None:
    app = faust.App("wait-empty", stream_wait_empty=False, worker_shutdown_timeout=20)
    topic = app.topic("wait-empty-in", value_type=str)
    began = asyncio.Event()

    @app.agent(topic)
    async def slow(stream: Any) -> None:
        async for _ in stream:
            began.set()
            await asyncio.sleep(60)

    await app.start()
    await topic.send(value="x")
    await asyncio.wait_for(began.wait(), 10)
    started = time.monotonic()
    await app.stop()
    assert time.monotonic() - started < 10


def test_kafka_client_options_are_passed_through() -> None:
    app = faust.App(
        "kafka-options",
        broker="kafka://localhost:1",
        broker_metadata_max_age=12,
        broker_connections_max_idle=30,
    )
    options = app.transport.client_options()  # type: ignore[attr-defined]
    assert options["metadata_max_age_ms"] == 12_000
    assert options["connections_max_idle_ms"] == 30_000


# -- valid values round-trip through the environment-string form

ROUND_TRIPS = {
    positive_int: st.integers(min_value=1, max_value=10**12),
    positive_float: st.floats(min_value=1e-6, max_value=1e9, allow_nan=False),
    non_negative_float: st.floats(min_value=0, max_value=1e9, allow_nan=False),
    boolean: st.booleans(),
}
ROUND_TRIP_SETTINGS = [d for d in declarations() if d.validate in ROUND_TRIPS]


def test_round_trip_covers_many_settings() -> None:
    assert len(ROUND_TRIP_SETTINGS) > 30


@given(st.data())
def test_valid_values_round_trip_through_the_environment(data: st.DataObject) -> None:
    decl = data.draw(st.sampled_from(ROUND_TRIP_SETTINGS))
    value = data.draw(ROUND_TRIPS[decl.validate])
    from_arg = Settings.from_sources("rt", {decl.name: value}, environ={})
    from_env = Settings.from_sources("rt", {}, environ={decl.env_names[-1]: str(value)})
    assert getattr(from_env, decl.name) == getattr(from_arg, decl.name) == value


def test_env_prefix_applies_to_faust_names() -> None:
    environ = {"MYAPP_BROKER_URL": "kafka://p:9092", "BROKER_URL": "kafka://q:9092"}
    s = Settings.from_sources("prefixed", {"env_prefix": "MYAPP_"}, environ=environ)
    assert s.broker == ["kafka://p:9092"]
    environ = {"APP_ENV_PREFIX": "OTHER", "OTHER_WEB_PORT": "7003", "FAUST_WEB_HOST": "h"}
    s = Settings.from_sources("prefixed", {}, environ=environ)
    assert (s.web_port, s.web_host) == (7003, "h")


def test_refused_booleans_from_the_environment_are_read_as_booleans() -> None:
    s = Settings.from_sources("bools", {}, environ={"TOPIC_ALLOW_DECLARE": "true"})
    assert s.topic_allow_declare is True
    with pytest.raises(ImproperlyConfigured, match="topic_allow_declare.*False is not supported"):
        Settings.from_sources("bools", {}, environ={"TOPIC_ALLOW_DECLARE": "no"})


LOGHANDLERS_APP = """
import logging, sys
import faust

handler = logging.StreamHandler(sys.stdout)
handler.setFormatter(logging.Formatter("HANDLER %(name)s | %(message)s"))
app = faust.App("loghandlers-app", loghandlers=[handler])

if __name__ == "__main__":
    app.main()
"""


def test_loghandlers_get_the_workers_log_lines(tmp_path: Any) -> None:
    from tests.unit.test_cli import _run_until

    (tmp_path / "handlersapp.py").write_text(LOGHANDLERS_APP)
    out = _run_until(
        [sys.executable, "handlersapp.py", "worker", "-q"], tmp_path, "Worker ready", 1
    )
    assert "HANDLER faust.worker | Worker ready" in out


def test_a_setting_assigned_before_the_start_is_validated_as_given() -> None:
    # As Faust's Django example configures the app from Django's settings.
    app = faust.App("assigned-settings")

    @app.on_configured.connect
    def configure(app: faust.App, conf: Any, **kwargs: Any) -> None:
        conf.broker = "kafka://localhost:9092"

    app.finalize()
    assert app.conf.broker == ["kafka://localhost:9092"]
    with pytest.raises(ImproperlyConfigured, match="^Setting web_port: "):
        app.conf.web_port = "not a port"
