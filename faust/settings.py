"""App settings: typed, with defaults, overridable from the environment, validated.

Every setting can be given to ``faust.App(...)`` as a keyword argument or set in the
environment as ``FAUST_<NAME>`` (``FAUST_BROKER=kafka://k1:9092``); the environment
names Faust reads (``BROKER_URL``...) work too, ``FAUST_`` ones win. An explicit
argument wins over the environment. A wrong value fails at start-up with one line naming
the setting and what to do. Settings are frozen while the app runs.

Each setting is declared once, below, as a field of :class:`Settings` made by
:func:`~faust.settings_validation.setting`: its type, default, environment names, doc
text and validator (Faust's settings without an equivalent here are declared the same
way in :mod:`faust.settings_faust`, which :class:`Settings` inherits).
:func:`declarations` lists them; :func:`settings_reference` renders them as Markdown.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import inspect
import logging
import os
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from . import settings_validation as check
from .exceptions import ImproperlyConfigured
from .settings_faust import FaustSettings
from .settings_validation import setting

__all__ = [
    "Settings",
    "ENV_PREFIX",
    "Declaration",
    "declarations",
    "settings_reference",
    "settings_from_object",
]

logger = logging.getLogger(__name__)

ENV_PREFIX = "FAUST_"

#: What happens to an event that cannot be processed (``on_error=``): written to its
#: dead-letter topic, the worker stopped, or only logged and counted.
ON_ERROR_CHOICES = ("dead_letter", "stop", "skip")


def check_on_error(value: str, owner: str) -> str:
    """``value`` if it is one of :data:`ON_ERROR_CHOICES`, else ``ValueError`` naming
    ``owner`` (``"Agent x"``, ``"Topic 'y'"``)."""
    if value not in ON_ERROR_CHOICES:
        raise ValueError(
            f"{owner}: on_error must be one of {', '.join(ON_ERROR_CHOICES)}, not {value!r}"
        )
    return value


#: How the worker writes its log lines (``log_format=``): plain text or one JSON object
#: per line.
LOG_FORMATS = ("text", "json")

# Settings accepted under an earlier name (the 1.0 pre-release API, and Faust's).
ALIASES = {"url": "broker"}


@dataclass(frozen=True)
class Declaration:
    """One setting: what :func:`setting` declared, plus its name, type and default."""

    name: str
    type: str
    default: Any
    env_names: tuple[str, ...]
    doc: str
    validate: Callable[[Any], Any]
    #: Accepted for Faust compatibility but without effect here: why (warned at start).
    no_effect: str = ""


@dataclass
class Settings(FaustSettings):
    """Everything an app can be configured with (see :func:`settings_reference`)."""

    id: str
    broker: list[str] = setting(
        ["memory://"],
        check.urls,
        "Broker URLs: `memory://` (embedded, the default) or `kafka://host:port`; several "
        "as a list or separated by `;`.",
        env="BROKER_URL",
    )
    store: str = setting(
        "memory://",
        check.store_url,
        "Default table store: `memory://` or `rocksdb://`.",
        env="APP_STORE",
    )
    version: int = setting(
        1,
        check.positive_int,
        "Bumping the version gives the app new internal topics and a new consumer group.",
        env="APP_VERSION",
    )
    id_format: str = setting(
        "{id}-v{self.version}",
        check.string,
        "How the id is made from the app name when `version` > 1 (`{id}`, `{self.version}`).",
        env="APP_ID_FORMAT",
    )
    topic_partitions: int = setting(
        8,
        check.positive_int,
        "Partitions of topics the app creates when not given per topic.",
        env="TOPIC_PARTITIONS",
    )
    topic_replication_factor: int = setting(
        1,
        check.positive_int,
        "Replication factor of topics the app creates.",
        env="TOPIC_REPLICATION_FACTOR",
    )
    autodiscover: Any = setting(
        False,
        check.autodiscover,
        "Import these modules (a list, a function returning one, or the app's `origin` "
        "package when True) to find agents and tables.",
    )
    origin: str | None = setting(
        None, check.optional(check.string), "The app's package (for autodiscovery and the CLI)."
    )
    datadir: str = setting(
        "{appid}-data",
        check.string,
        "Local state (table stores) goes here; `{appid}` is replaced by the app id. A worker "
        "with tables on disk locks it while it runs: one worker per directory "
        "(`faust --datadir DIR -A app worker` gives another worker its own).",
        env="APP_DATADIR",
    )
    key_serializer: str = setting(
        "raw", check.string, "Default key codec.", env="APP_KEY_SERIALIZER"
    )
    value_serializer: str = setting(
        "json", check.string, "Default value codec.", env="APP_VALUE_SERIALIZER"
    )
    broker_commit_interval: float = setting(
        2.8,
        check.positive_float,
        "Commit processed offsets at least this often (seconds).",
        env="BROKER_COMMIT_INTERVAL",
    )
    broker_commit_every: int = setting(
        10_000,
        check.positive_int,
        "Commit processed offsets after this many events.",
        env="BROKER_COMMIT_EVERY",
    )
    broker_client_id: str = setting(
        "faust",
        check.string,
        "Client id the Kafka clients give the brokers.",
        env="BROKER_CLIENT_ID",
    )
    group_id: str = setting("", check.string, "Consumer group; defaults to the app id.")
    consumer_auto_offset_reset: str = setting(
        "earliest",
        check.choice("earliest", "latest"),
        "Where a new consumer group starts: `earliest` or `latest`.",
        env="CONSUMER_AUTO_OFFSET_RESET",
    )
    stream_buffer_maxsize: int = setting(
        4096,
        check.positive_int,
        "Events buffered per stream before the consumer stops fetching for it.",
        env="STREAM_BUFFER_MAXSIZE",
    )
    timezone: datetime.tzinfo = setting(
        datetime.UTC, check.time_zone, "Time zone of crontab timers.", env="TIMEZONE"
    )
    reply_to: str = setting(
        "",
        check.string,
        "Topic this app's `agent.ask()` replies arrive on; one per app instance, created by "
        "the first ask() and deleted on a clean stop unless you set the name yourself.",
    )
    reply_to_prefix: str = setting(
        "",
        check.string,
        "Prefix of the generated reply topic name (a uuid follows); empty: `{id}-reply-`.",
        env="APP_REPLY_TO_PREFIX",
    )
    reply_create_topic: bool = setting(
        False,
        check.boolean,
        "Create the reply topic and start reading it at start, not at the first ask().",
        env="APP_REPLY_CREATE_TOPIC",
    )
    reply_expires: float = setting(
        3600.0,
        check.positive_float,
        "Seconds the reply topic keeps a reply (Kafka retention): replies matter only while "
        "an ask() waits, and a killed worker's leftover topic should not hold data.",
        env="APP_REPLY_EXPIRES",
    )
    producer_only: bool = setting(
        False, check.boolean, "Only send (a web process): no consumer, no agents."
    )
    client_only: bool = setting(
        False, check.boolean, "Send and receive replies, but run no agents."
    )
    worker_shutdown_timeout: float = setting(
        10.0, check.positive_float, "On shutdown, how long agents get to finish the event in hand."
    )
    stream_wait_empty: bool = setting(
        True,
        check.boolean,
        "On shutdown, let agents finish the event in hand (up to `worker_shutdown_timeout`); "
        "False cancels them at once (the event is processed again after the restart).",
        env="STREAM_WAIT_EMPTY",
    )
    agent_restart_backoff: float = setting(
        0.5,
        check.positive_float,
        "First wait after an agent crash before its restart; doubles up to 30 s.",
    )
    agent_retries: int = setting(
        3,
        check.non_negative_int,
        "Times the event an agent raised on is handed again to the restarted agent (each "
        "after the restart back-off) before `on_error` applies; 0 turns retries off.",
    )
    on_error: str = setting(
        "dead_letter",
        check.choice(*ON_ERROR_CHOICES),
        "What happens to an event whose agent still raises after its retries, and to a "
        "record that cannot be decoded: `dead_letter` (written to its dead-letter topic, "
        "then committed past), `stop` (the worker stops with exit code 1, the record is not "
        "committed) or `skip` (logged and counted, then committed past).",
    )
    dead_letter_topic: str = setting(
        "{app_id}-{name}-dlq",
        check.topic_template,
        "Name of the dead-letter topics: `{app_id}` and `{name}` (the agent's name, or the "
        "topic's for undecodable records) are replaced.",
    )

    # -- Kafka
    broker_connect_timeout: float = setting(
        30.0,
        check.positive_float,
        "At start-up, give up reaching the brokers after this many seconds (one error line).",
    )
    broker_session_timeout: float = setting(
        10.0,
        check.positive_float,
        "A worker that sends no heartbeat for this long leaves the group (its partitions "
        "move); lower means faster failover, higher tolerates longer pauses.",
        env="BROKER_SESSION_TIMEOUT",
    )
    broker_heartbeat_interval: float = setting(
        3.0,
        check.positive_float,
        "Seconds between heartbeats to the group coordinator.",
        env="BROKER_HEARTBEAT_INTERVAL",
    )
    broker_request_timeout: float = setting(
        40.0,
        check.positive_float,
        "Seconds a Kafka request may take.",
        env="BROKER_REQUEST_TIMEOUT",
    )
    broker_max_poll_interval: float = setting(
        300.0,
        check.positive_float,
        "A worker that does not fetch for this long is considered stuck and leaves.",
        env="BROKER_MAX_POLL_INTERVAL",
    )
    broker_max_poll_records: int = setting(
        2000,
        check.positive_int,
        "Records per fetch: large enough to amortise per-batch work.",
        env="BROKER_MAX_POLL_RECORDS",
    )
    broker_rebalance_timeout: float = setting(
        60.0,
        check.positive_float,
        "Seconds the group waits for members to rejoin during a rebalance.",
        env="BROKER_REBALANCE_TIMEOUT",
    )
    broker_metadata_max_age: float = setting(
        300.0,
        check.positive_float,
        "Refresh cluster metadata (new brokers, partitions) at least this often (seconds).",
        env="BROKER_METADATA_MAX_AGE",
    )
    broker_connections_max_idle: float = setting(
        540.0,
        check.positive_float,
        "Close broker connections idle this long (seconds).",
        env="BROKER_CONNECTIONS_MAX_IDLE",
    )
    broker_check_crcs: bool = setting(
        True, check.boolean, "Check the CRC32 of consumed records.", env="BROKER_CHECK_CRCS"
    )
    broker_credentials: Any = setting(
        None,
        check.credentials,
        "SASL or SSL credentials: `faust.SASLCredentials(...)`, `faust.SSLCredentials(...)`.",
    )
    ssl_context: Any = setting(
        None,
        check.ssl_context,
        "An `ssl.SSLContext` for the broker connections (Faust's form of "
        "`broker_credentials=faust.SSLCredentials(context)`).",
    )
    consumer_max_fetch_size: int = setting(
        1_048_576,
        check.positive_int,
        "Largest fetch per partition, in bytes.",
        env="CONSUMER_MAX_FETCH_SIZE",
    )
    consumer_group_instance_id: str | None = setting(
        None,
        check.optional(check.string),
        "Static membership: a stable id per worker (e.g. the pod name) so a restart within "
        "the session timeout keeps its partitions without a rebalance.",
        env="CONSUMER_GROUP_INSTANCE_ID",
    )
    processing_guarantee: str = setting(
        "at_least_once",
        check.choice("at_least_once", "exactly_once"),
        "`at_least_once` (the default): after a crash an event may be processed "
        "again, and what it sent appears twice. `exactly_once` (Kafka only): what a "
        "worker sends and changes in its tables while processing events commits in "
        "one Kafka transaction with the events' offsets, so each event's effects "
        "appear exactly once to consumers reading with `isolation_level="
        "'read_committed'`; it costs throughput (see the README).",
        env="PROCESSING_GUARANTEE",
    )
    producer_acks: int = setting(
        -1,
        check.acks,
        "-1 (all in-sync replicas), 1 (the leader) or 0 (no ack: may lose records).",
        env="PRODUCER_ACKS",
    )
    producer_compression_type: str | None = setting(
        None,
        check.optional(check.choice("gzip", "snappy", "lz4", "zstd")),
        "None, `gzip`, `snappy`, `lz4` or `zstd`.",
        env="PRODUCER_COMPRESSION_TYPE",
    )
    producer_linger: float = setting(
        0.0,
        check.non_negative_float,
        "Seconds a batch may wait for more records before it is sent.",
        env="PRODUCER_LINGER",
    )
    producer_linger_ms: int | None = setting(
        None,
        check.optional(check.non_negative_int),
        "Faust's older `producer_linger`, in milliseconds.",
        env="PRODUCER_LINGER_MS",
    )
    # Larger than Kafka's 16 KiB default: each batch and produce request costs Python
    # work, and a send_soon burst (a changelog flush, a repartition) fills big batches at
    # once (256 KiB measured ~20% faster in bench e).
    producer_max_batch_size: int = setting(
        262_144,
        check.positive_int,
        "Bytes per partition batch.",
        env="PRODUCER_MAX_BATCH_SIZE",
    )
    producer_max_request_size: int = setting(
        1_000_000,
        check.positive_int,
        "Largest produce request, in bytes.",
        env="PRODUCER_MAX_REQUEST_SIZE",
    )
    producer_request_timeout: float | None = setting(
        None,
        check.optional(check.positive_float),
        "Seconds a produce request may take; None: `broker_request_timeout`.",
        env="PRODUCER_REQUEST_TIMEOUT",
    )

    # -- tables
    table_standby_replicas: int = setting(
        1,
        check.non_negative_int,
        "Other workers keeping a warm copy of each table partition (by following its "
        "changelog), ready to take over with only the tail to replay.",
        env="TABLE_STANDBY_REPLICAS",
    )
    table_cleanup_interval: float = setting(
        30.0,
        check.positive_float,
        "Seconds between expiry runs of windowed tables (closing old windows).",
        env="TABLE_CLEANUP_INTERVAL",
    )

    # -- worker
    blocking_timeout: float | None = setting(
        None,
        check.optional(check.positive_float),
        "Warn, with the stack of the blocking call, when the event loop has not turned for "
        "this many seconds (a call that does not await stalls every agent, commit and web "
        "request). None: off.",
        env="BLOCKING_TIMEOUT",
    )

    # -- sensors
    sensors_enabled: bool = setting(
        True,
        check.boolean,
        "Keep the in-memory `app.monitor` (counters behind `/metrics` and the dashboard). "
        "False leaves `app.sensors` empty and `app.monitor` None: hooks go nowhere (sensors "
        "added with `app.sensors.add` still get them).",
    )

    # -- web (the worker's HTTP server: views, table routes, health, metrics)
    web_enabled: bool = setting(
        True,
        check.boolean,
        "Run the web server in the worker (`faust worker --without-web` turns it off). A "
        "client (`client_only`, `producer_only`) and `app.start()` never start it.",
        env="APP_WEB_ENABLED",
    )
    web_bind: str = setting(
        "0.0.0.0",
        check.string,
        "The interface the server listens on (`127.0.0.1` for this machine only).",
        env="WEB_BIND",
    )
    web_port: int = setting(
        6066,
        check.web_port,
        "The port it listens on; 0 takes a free port when the server starts (tests, and "
        "several workers on one machine): `canonical_url` then has the real port.",
        env="WEB_PORT",
    )
    web_host: str = setting(
        "",
        check.host_name,
        "The host name other workers and clients reach this one by; empty: this machine's "
        "host name (`socket.gethostname()`, as Faust).",
        env="WEB_HOST",
    )
    canonical_url: str = setting(
        "",
        check.http_url,
        "The URL other workers use for this one (advertised in the consumer group's "
        "assignment); default `http://{web_host}:{web_port}`.",
        env="NODE_CANONICAL_URL",
    )
    web_cors_options: dict[str, Any] | None = setting(
        None,
        check.cors_options,
        "CORS for every view, e.g. `{'*': {'allow_methods': '*', 'allow_headers': '*'}}` "
        "(origin -> options; see `faust.web.cors`); `app.page(cors_options=...)` overrides it "
        "per view. None: no CORS headers. From the environment: JSON.",
    )

    # -- logging (applied by the worker; see faust/logs.py)
    logging_config: dict[str, Any] | None = setting(
        None,
        check.logging_config,
        "A `logging.config.dictConfig` dict the worker applies at start, e.g. "
        "`{'version': 1, 'loggers': {'myapp': {'level': 'DEBUG'}}}`. `version` defaults to 1 "
        "and `disable_existing_loggers` to False; handlers it gives the root logger replace "
        "the worker's own. From the environment: JSON.",
    )
    loghandlers: list[logging.Handler] = setting(
        [], check.log_handlers, "Logging handlers the worker adds to the root logger."
    )
    log_format: str = setting(
        "text",
        check.choice(*LOG_FORMATS),
        "The worker's own log lines: `text` or `json` (one object per line with time, level, "
        "logger, message); `faust worker --json-logs` is the same as `json`.",
    )

    #: Set while the app runs: assigning a setting then raises.
    _frozen: ClassVar[bool] = False
    #: Faust settings given that have no effect here (name, why): warned about at start.
    no_effect_given: ClassVar[list[tuple[str, str]]] = []

    def __setattr__(self, name: str, value: Any) -> None:
        if self._frozen:
            raise ImproperlyConfigured(
                f"Setting {name} cannot change while the app runs (settings are frozen "
                f"once it starts): give it to faust.App(...) or set it before the app starts."
            )
        field = _FIELDS.get(name) if name in self.__dict__ else None
        if field is not None:
            # As given to faust.App(...): `conf.broker = 'kafka://...'` in an
            # on_configured receiver is a list of one URL, not a string of characters.
            try:
                value = field.metadata["validate"](value)
            except (TypeError, ValueError) as exc:
                raise ImproperlyConfigured(f"Setting {name}: {exc}") from None
        object.__setattr__(self, name, value)

    def freeze(self, frozen: bool = True) -> None:
        """Refuse (or allow again) assignments; the app freezes its settings at start.

        >>> s = Settings.from_sources('demo', {}, environ={})
        >>> s.freeze()
        >>> s.web_port = 6067
        Traceback (most recent call last):
        ...
        faust.exceptions.ImproperlyConfigured: Setting web_port cannot change while the app runs ...
        """
        object.__setattr__(self, "_frozen", frozen)

    @classmethod
    def from_sources(
        cls,
        id: str,
        options: Mapping[str, Any],
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        environ = os.environ if environ is None else environ
        known = {d.name: d for d in declarations()}
        values: dict[str, Any] = {}
        for key, value in options.items():
            name = ALIASES.get(key, key)
            if name not in known or name == "id":
                hint = difflib.get_close_matches(name, sorted(known), n=1)
                suggestion = f" Did you mean {hint[0]!r}?" if hint else ""
                raise ImproperlyConfigured(f"Unknown setting {key!r}.{suggestion}")
            if value is not None:
                values[name] = value
        sources: dict[str, str] = {}
        # Faust's env_prefix applies to its own names (MYAPP_BROKER_URL), as there.
        prefix = environ.get("FAUST_ENV_PREFIX") or environ.get("APP_ENV_PREFIX")
        prefix = (prefix or str(values.get("env_prefix", ""))).rstrip("_")
        for decl in known.values():
            if decl.name in values or decl.name == "id":
                continue
            # FAUST_<NAME> first, then the names Faust reads.
            faust_names = [f"{prefix}_{n}" if prefix else n for n in decl.env_names[1:]]
            for env_name in (decl.env_names[0], *faust_names):
                if env_name in environ:
                    values[decl.name] = environ[env_name]
                    sources[decl.name] = env_name
                    break
        if not isinstance(id, str) or not id.strip():
            raise ImproperlyConfigured(
                f"App id must be a non-empty string, not {id!r}: faust.App('my-app')."
            )
        bad = sorted(set(re.findall(r"[^a-zA-Z0-9._-]", id)))
        if bad:
            # The id names the app's topics (changelogs, repartitions) and its group.
            raise ImproperlyConfigured(
                f"App id {id!r} has characters Kafka rejects in the topic names made from "
                f"it ({''.join(bad)!r}): use only ASCII letters, digits, '.', '_' and '-', "
                f"e.g. faust.App({re.sub(r'[^a-zA-Z0-9._-]+', '-', id).strip('-') or 'my-app'!r})."
            )
        settings = cls(id=id)
        for name, value in values.items():
            source = f" (from environment variable {sources[name]})" if name in sources else ""
            try:
                object.__setattr__(settings, name, known[name].validate(value))
            except (TypeError, ValueError) as exc:
                raise ImproperlyConfigured(f"Setting {name}{source}: {exc}") from None
        settings._finish(given=set(values))
        return settings

    def _finish(self, given: set[str]) -> None:
        # Given with a value other than Faust's default: the user expects an effect.
        given_no_effect = [
            (d.name, d.no_effect)
            for d in declarations()
            if d.no_effect and d.name in given and getattr(self, d.name) != d.default
        ]
        object.__setattr__(self, "no_effect_given", given_no_effect)
        for name in ("broker_consumer", "broker_producer"):
            urls = getattr(self, name)
            if urls is not None and urls != self.broker:
                raise ImproperlyConfigured(
                    f"Setting {name}={urls!r}: a separate cluster for "
                    f"{name.removeprefix('broker_')}s is not supported here; remove it (or "
                    f"make it the same as broker={self.broker!r})."
                )
        if self.ssl_context is not None:
            from .auth import SSLCredentials

            if self.broker_credentials is not None:
                raise ImproperlyConfigured(
                    "Settings ssl_context and broker_credentials are both given: give one, "
                    "e.g. broker_credentials=faust.SSLCredentials(ssl_context)."
                )
            self.broker_credentials = SSLCredentials(self.ssl_context)
        if self.producer_linger_ms is not None and "producer_linger" not in given:
            self.producer_linger = self.producer_linger_ms / 1000.0
        if self.version > 1:
            try:
                self.id = self.id_format.format(id=self.id, self=self)
            except (KeyError, IndexError, AttributeError) as exc:
                raise ImproperlyConfigured(
                    f"Setting id_format={self.id_format!r}: {exc!r}; use '{{id}}' and "
                    f"'{{self.version}}', e.g. '{{id}}-v{{self.version}}'."
                ) from None
        if not self.group_id:
            self.group_id = self.id
        if not self.reply_to:
            prefix = self.reply_to_prefix or f"{self.id}-reply-"
            self.reply_to = f"{prefix}{uuid.uuid4().hex[:12]}"
        self.datadir = self.datadir.replace("{appid}", self.id)
        if not self.web_host:
            self.web_host = check.host_name(self.web_host)
        if not self.canonical_url:
            self.canonical_url = self._default_url()

    def warn_no_effect(self) -> None:
        """Log once, for each Faust setting given that has no effect here, why.

        >>> s = Settings.from_sources('demo', {'web_in_thread': True}, environ={})
        >>> s.no_effect_given
        [('web_in_thread', 'the web server runs on the event loop')]
        """
        for name, why in self.no_effect_given:
            logger.warning("Setting %s has no effect here: %s.", name, why)
        object.__setattr__(self, "no_effect_given", [])

    def _default_url(self) -> str:
        return f"http://{self.web_host}:{self.web_port}"

    def set_web_address(self, *, host: str | None = None, port: int | None = None) -> None:
        """Change ``web_host``/``web_port`` (the CLI's ``--web-host``/``--web-port``, or
        the port a ``web_port=0`` server got); ``canonical_url`` follows unless it was
        set to another address. Allowed while the app runs (the server binds then).

        >>> s = Settings.from_sources('demo', {'web_host': 'w1'}, environ={})
        >>> s.set_web_address(port=6067)
        >>> s.canonical_url
        'http://w1:6067'
        """
        follows = self.canonical_url == self._default_url()
        if host is not None:
            object.__setattr__(self, "web_host", check.host_name(host))
        if port is not None:
            object.__setattr__(self, "web_port", check.web_port(port))
        if follows:
            object.__setattr__(self, "canonical_url", self._default_url())


def declarations() -> Iterator[Declaration]:
    """Every setting, in declaration order (for documentation and tooling).

    >>> next(d for d in declarations() if d.name == 'web_port').env_names
    ('FAUST_WEB_PORT', 'WEB_PORT')
    """
    fields = dataclasses.fields(Settings)
    # Ours first, then Faust's (inherited, so first in dataclass order).
    faust_only = {f.name for f in dataclasses.fields(FaustSettings)}
    ordered = [f for f in fields if f.name not in faust_only]
    ordered += [f for f in fields if f.name in faust_only]
    for f in ordered:
        if f.name == "id":
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[operator]
        yield Declaration(
            name=f.name,
            type=str(f.type),
            default=default,
            env_names=(ENV_PREFIX + f.name.upper(), *f.metadata["env"]),
            doc=f.metadata["doc"],
            validate=f.metadata["validate"],
            no_effect=f.metadata["no_effect"],
        )


#: Each setting's dataclass field (its metadata holds the validator).
_FIELDS = {f.name: f for f in dataclasses.fields(Settings) if "validate" in f.metadata}


def settings_reference() -> str:
    """The settings reference as a Markdown table: name, type, default, environment
    names and meaning of every setting.

    >>> print(settings_reference().splitlines()[0])
    | Setting | Type | Default | Environment | Meaning |
    """
    rows = [
        "| Setting | Type | Default | Environment | Meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    for d in declarations():
        meaning = d.doc + (f" *No effect here: {d.no_effect}.*" if d.no_effect else "")
        cells = [
            f"`{d.name}`",
            f"`{d.type}`",
            f"`{d.default!r}`",
            ", ".join(f"`{e}`" for e in d.env_names),
            meaning,
        ]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows) + "\n"


def settings_from_object(obj: Any) -> dict[str, Any]:
    """The settings an object, module or mapping gives (``app.config_from_object``).

    A mapping's keys must all be settings. Of an object or module, the attributes named
    like a setting are taken and the rest (imports, helpers) left alone; a lower-case
    value attribute that is a near miss of a setting name is an error, not a silent loss.

    >>> class Config:
    ...     broker = 'kafka://k1:9092'
    ...     helper = 3
    >>> settings_from_object(Config)
    {'broker': 'kafka://k1:9092'}
    """
    known = {d.name for d in declarations()} | set(ALIASES)
    if isinstance(obj, Mapping):
        return dict(obj)
    found: dict[str, Any] = {}
    for key in dir(obj):
        if key.startswith("_"):
            continue
        value = getattr(obj, key)
        if key in known:
            found[key] = value
        elif key.islower() and not (callable(value) or inspect.ismodule(value)):
            hint = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.85)
            if hint:
                raise ImproperlyConfigured(
                    f"Unknown setting {key!r} in {getattr(obj, '__name__', obj)!r}. "
                    f"Did you mean {hint[0]!r}?"
                )
    return found
