"""The settings faust-streaming has that this library does not implement as such.

:class:`faust.settings.Settings` inherits these fields, so every Faust program's
settings are accepted: the ones whose other values would change semantics we lack
are refused unless left at their default (naming why), the class-valued ones accept
Faust's default or our own class, and the rest are accepted without effect, with one
warning at start naming why (:meth:`Settings.warn_no_effect`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import settings_validation as check
from .settings_validation import setting

# aiokafka (since 0.13) ignores its api_version option: the version is negotiated.
_NEGOTIATED = "the clients negotiate the protocol version with the brokers"


@dataclass(kw_only=True)
class FaustSettings:
    """Faust's settings without an equivalent here (see the module docstring)."""

    # -- Faust settings refused unless default: other values change semantics we lack.
    stream_publish_on_commit: bool = setting(
        False,
        check.only(
            (False,),
            "sends are not held back until the commit here; remove the setting",
            convert=check.boolean,
        ),
        "Only False: sends are not held back until the source offset is committed.",
    )
    topic_allow_declare: bool = setting(
        True,
        check.only(
            (True,),
            "the app creates its internal topics (changelogs, repartitions, replies) "
            "itself; remove the setting",
            convert=check.boolean,
        ),
        "Only True: the app creates its internal topics.",
        env="TOPIC_ALLOW_DECLARE",
    )
    broker_consumer: Any = setting(
        None,
        check.optional(check.urls),
        "Faust's separate consumer brokers: only the same as `broker` is supported.",
        env="BROKER_CONSUMER_URL",
    )
    broker_producer: Any = setting(
        None,
        check.optional(check.urls),
        "Faust's separate producer brokers: only the same as `broker` is supported.",
        env="BROKER_PRODUCER_URL",
    )
    agent_supervisor: Any = setting(
        None,
        check.only(
            (None, "mode.OneForOneSupervisor", "mode:OneForOneSupervisor"),
            "a crashed agent is restarted on its own (one-for-one), with "
            "agent_restart_backoff and agent_retries; remove the setting",
        ),
        "Only one-for-one: each crashed agent restarts on its own.",
        env="AGENT_SUPERVISOR",
    )
    producer_partitioner: Any = setting(
        None,
        check.only(
            (None,),
            "a custom partitioner would send keys to other partitions than "
            "the tables reading them expect; give the partition per send instead",
        ),
        "Only None (Kafka's murmur2 of the key).",
    )
    web: str = setting(
        "aiohttp://",
        check.only(("aiohttp://",), "the web server is aiohttp; remove the setting"),
        "Only `aiohttp://`.",
    )
    web_transport: str = setting(
        "tcp://",
        check.only(
            ("tcp://", "tcp:"),
            "the web server listens on TCP only (web_bind, web_port); remove the setting",
        ),
        "Only `tcp://`.",
    )
    web_ssl_context: Any = setting(
        None,
        check.only((None,), "the web server speaks plain HTTP; put TLS in a proxy in front"),
        "Only None: plain HTTP.",
    )

    # -- Faust's class-valued settings: accepted with their default (or our class).
    Agent: Any = setting(None, check.extension("faust:Agent", "faust:Agent"), "Only the default.")
    ConsumerScheduler: Any = setting(
        None,
        check.extension(
            "faust.transport.utils:DefaultSchedulingStrategy",
            "faust.transport.utils:DefaultSchedulingStrategy",
        ),
        "Only the default (round-robin over topics, then partitions).",
    )
    Event: Any = setting(None, check.extension("faust:Event", "faust:Event"), "Only the default.")
    Schema: Any = setting(
        None, check.extension("faust:Schema", "faust:Schema"), "Only the default."
    )
    Stream: Any = setting(
        None, check.extension("faust:Stream", "faust:Stream"), "Only the default."
    )
    Table: Any = setting(None, check.extension("faust:Table", "faust:Table"), "Only the default.")
    SetTable: Any = setting(
        None, check.extension("faust:SetTable", "faust:SetTable"), "Only the default."
    )
    GlobalTable: Any = setting(
        None, check.extension("faust:GlobalTable", "faust:GlobalTable"), "Only the default."
    )
    SetGlobalTable: Any = setting(
        None, check.extension("faust:SetGlobalTable", "faust:SetGlobalTable"), "Only the default."
    )
    TableManager: Any = setting(
        None,
        check.extension("faust.tables:TableManager", "faust.tables:TableManager"),
        "Only the default.",
    )
    Serializers: Any = setting(
        None,
        check.extension("faust.serializers:Registry", "faust.serializers:Registry"),
        "Only the default.",
    )
    Worker: Any = setting(
        None, check.extension("faust.worker:Worker", "faust.worker:Worker"), "Only the default."
    )
    PartitionAssignor: Any = setting(
        None,
        check.extension(
            "faust.assignor:PartitionAssignor", "faust.transport.kafka.assignor:PartitionAssignor"
        ),
        "Only the default.",
    )
    LeaderAssignor: Any = setting(
        None,
        check.extension("faust.assignor:LeaderAssignor", "faust.assignor:LeaderAssignor"),
        "Only the default.",
    )
    Router: Any = setting(
        None,
        check.extension("faust.app.router:Router", "faust.app.router:Router"),
        "Only the default.",
    )
    Topic: Any = setting(None, check.extension("faust:Topic", "faust:Topic"), "Only the default.")
    HttpClient: Any = setting(
        None,
        check.extension("aiohttp.client:ClientSession", "aiohttp.client:ClientSession"),
        "Only the default.",
    )
    Monitor: Any = setting(
        None, check.extension("faust.sensors:Monitor", "faust:Monitor"), "Only the default."
    )

    # -- Faust settings accepted without effect here (a warning at start names each).
    tabledir: str = setting(
        "tables",
        check.string,
        "Faust's table directory under `datadir`.",
        env="APP_TABLEDIR",
        no_effect="table stores live under datadir",
    )
    debug: bool = setting(
        False,
        check.boolean,
        "Faust's debug mode.",
        env="APP_DEBUG",
        no_effect="there is no debug mode; /metrics and the dashboard are always on",
    )
    env_prefix: str = setting(
        "",
        check.string,
        "Prefix of the environment names Faust reads (`MYAPP`: `MYAPP_BROKER_URL`); "
        "`FAUST_<NAME>` is read as it is.",
        env="APP_ENV_PREFIX",
    )
    broker_commit_livelock_soft_timeout: float = setting(
        300.0,
        check.any_value,
        "Faust's warning when commits stall.",
        env="BROKER_COMMIT_LIVELOCK_SOFT_TIMEOUT",
        no_effect="there is no livelock warning",
    )
    producer_threaded: bool = setting(
        False,
        check.boolean,
        "Faust's producer thread.",
        env="PRODUCER_THREADED",
        no_effect="the producer runs on the event loop",
    )
    recovery_consistency_check: bool = setting(
        True,
        check.boolean,
        "Faust's offset check on recovery.",
        env="RECOVERY_CONSISTENCY_CHECK",
        no_effect="recovery always replays from the changelog",
    )
    store_check_exists: bool = setting(
        True,
        check.boolean,
        "Faust's exists-check in stores.",
        env="STORE_CHECK_EXISTS",
        no_effect="stores answer `in` themselves",
    )
    crash_app_on_aerospike_exception: bool = setting(
        True,
        check.boolean,
        "Faust's aerospike store option.",
        env="CRASH_APP_ON_AEROSPIKE_EXCEPTION",
        no_effect="there is no aerospike store",
    )
    aerospike_retries_on_exception: int = setting(
        60,
        check.any_value,
        "Faust's aerospike store option.",
        env="AEROSPIKE_RETRIES_ON_EXCEPTION",
        no_effect="there is no aerospike store",
    )
    aerospike_sleep_seconds_between_retries_on_exception: int = setting(
        1,
        check.any_value,
        "Faust's aerospike store option.",
        env="AEROSPIKE_SLEEP_SECONDS_BETWEEN_RETRIES_ON_EXCEPTION",
        no_effect="there is no aerospike store",
    )
    stream_processing_timeout: float = setting(
        300.0,
        check.any_value,
        "Faust's slow-event warning.",
        env="STREAM_PROCESSING_TIMEOUT",
        no_effect="slow events are not timed",
    )
    stream_recovery_delay: float = setting(
        0.0,
        check.any_value,
        "Faust's pause after a rebalance.",
        env="STREAM_RECOVERY_DELAY",
        no_effect="recovery starts at once",
    )
    stream_ack_cancelled_tasks: bool = setting(
        True, check.any_value, "Deprecated in Faust.", no_effect="deprecated in Faust itself"
    )
    stream_ack_exceptions: bool = setting(
        True, check.any_value, "Deprecated in Faust.", no_effect="deprecated in Faust itself"
    )
    table_key_index_size: int = setting(
        1000,
        check.any_value,
        "Faust's key-to-partition cache size.",
        env="TABLE_KEY_INDEX_SIZE",
        no_effect="tables keep no key index",
    )
    topic_disable_leader: bool = setting(
        False,
        check.boolean,
        "Faust's switch for the leader topic.",
        env="TOPIC_DISABLE_LEADER",
        no_effect="the leader topic is only created when a leader-only timer or task needs it",
    )
    cache: str = setting(
        "memory://",
        check.any_value,
        "Faust's cache backend.",
        env="CACHE_URL",
        no_effect="there is no view cache",
    )
    web_in_thread: bool = setting(
        False,
        check.boolean,
        "Faust's web server thread.",
        no_effect="the web server runs on the event loop",
    )
    worker_redirect_stdouts: bool = setting(
        True,
        check.boolean,
        "Faust's stdout redirection.",
        env="WORKER_REDIRECT_STDOUTS",
        no_effect="stdout and stderr are left alone",
    )
    worker_redirect_stdouts_level: str = setting(
        "WARN",
        check.any_value,
        "Faust's stdout redirection level.",
        env="WORKER_REDIRECT_STDOUTS_LEVEL",
        no_effect="stdout and stderr are left alone",
    )
    broker_api_version: str = setting(
        "auto",
        check.string,
        "Faust's Kafka protocol version of the clients.",
        env="BROKER_API_VERSION",
        no_effect=_NEGOTIATED,
    )
    consumer_api_version: str = setting(
        "auto",
        check.string,
        "Faust's `broker_api_version` for the consumer.",
        env="CONSUMER_API_VERSION",
        no_effect=_NEGOTIATED,
    )
    producer_api_version: str = setting(
        "auto",
        check.string,
        "Faust's `broker_api_version` for the producer.",
        env="PRODUCER_API_VERSION",
        no_effect=_NEGOTIATED,
    )
