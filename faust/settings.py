"""App settings: typed, with defaults, overridable from the environment, validated.

Every setting can be given to ``faust.App(...)`` as a keyword argument or set in the
environment as ``FAUST_<NAME>`` (``FAUST_BROKER=kafka://k1:9092``); an explicit argument
wins over the environment. A wrong value fails at start-up with one line naming the
setting and what to do.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import json
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from .exceptions import ImproperlyConfigured

__all__ = ["Settings", "ENV_PREFIX"]

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

# Settings accepted under an earlier name (the 1.0 pre-release API).
ALIASES = {"url": "broker"}


@dataclass
class Settings:
    """Everything an app can be configured with; see each field's comment."""

    id: str
    #: Broker URLs: ``memory://`` (embedded, the default) or ``kafka://host:port``;
    #: several as a list or separated by ``;``.
    broker: list[str] = field(default_factory=lambda: ["memory://"])
    #: Default table store: ``memory://`` or ``rocksdb://``.
    store: str = "memory://"
    #: Bumping the version gives the app new internal topics and a new consumer group.
    version: int = 1
    #: Partitions of topics the app creates when not given per topic.
    topic_partitions: int = 8
    topic_replication_factor: int = 1
    #: Import these modules (or the app's package when True) to find agents and tables.
    autodiscover: bool | list[str] = False
    #: The app's package (for autodiscovery and the CLI).
    origin: str | None = None
    #: Local state (table stores) goes here; ``{appid}`` is replaced by the app id. A
    #: worker with tables on disk locks it while it runs: one worker per directory
    #: (``faust --datadir DIR -A app worker`` gives another worker its own).
    datadir: str = "{appid}-data"
    key_serializer: str = "raw"
    value_serializer: str = "json"
    #: Commit processed offsets at least this often (seconds)...
    broker_commit_interval: float = 2.8
    #: ...and after this many processed events.
    broker_commit_every: int = 10_000
    broker_client_id: str = "faust"
    #: Consumer group; defaults to the app id.
    group_id: str = ""
    #: Where a new consumer group starts: ``earliest`` or ``latest``.
    consumer_auto_offset_reset: str = "earliest"
    #: Events buffered per stream before the consumer stops fetching for it.
    stream_buffer_maxsize: int = 4096
    #: Time zone of crontab timers.
    timezone: datetime.tzinfo = datetime.UTC
    #: Topic this app's ``agent.ask()`` replies arrive on; one per app instance, created
    #: by the first ask() and deleted on a clean stop unless you set the name yourself.
    reply_to: str = ""
    #: Seconds the reply topic keeps a reply (Kafka retention): replies matter only
    #: while an ask() waits, and a killed worker's leftover topic should not hold data.
    reply_expires: float = 3600.0
    #: Only send (a web process): no consumer, no agents.
    producer_only: bool = False
    #: Send and receive replies, but run no agents.
    client_only: bool = False
    #: On shutdown, how long agents get to finish the event in hand.
    worker_shutdown_timeout: float = 10.0
    #: First wait after an agent crash before its restart; doubles up to 30 s.
    agent_restart_backoff: float = 0.5
    #: Times the event an agent raised on is handed again to the restarted agent (each
    #: after the restart back-off) before ``on_error`` applies; 0 turns retries off.
    agent_retries: int = 3
    #: What happens to an event whose agent still raises after its retries, and to a
    #: record that cannot be decoded: ``dead_letter`` (written to its dead-letter topic,
    #: then committed past), ``stop`` (the worker stops with exit code 1, the record is not
    #: committed) or ``skip`` (logged and counted, then committed past).
    on_error: str = "dead_letter"
    #: Name of the dead-letter topics: ``{app_id}`` and ``{name}`` (the agent's name, or
    #: the topic's for undecodable records) are replaced.
    dead_letter_topic: str = "{app_id}-{name}-dlq"

    # -- Kafka
    #: At start-up, give up reaching the brokers after this many seconds (one error line).
    broker_connect_timeout: float = 30.0
    #: A worker that sends no heartbeat for this long leaves the group (its partitions
    #: move); lower means faster failover, higher tolerates longer pauses.
    broker_session_timeout: float = 10.0
    broker_heartbeat_interval: float = 3.0
    broker_request_timeout: float = 40.0
    #: A worker that does not fetch for this long is considered stuck and leaves.
    broker_max_poll_interval: float = 300.0
    #: Records per fetch: large enough to amortise per-batch work.
    broker_max_poll_records: int = 2000
    #: SASL or SSL credentials: ``faust.SASLCredentials(...)``, ``faust.SSLCredentials(...)``.
    broker_credentials: Any = None
    #: Largest fetch per partition, in bytes.
    consumer_max_fetch_size: int = 1_048_576
    #: Static membership: a stable id per worker (e.g. the pod name) so a restart within
    #: the session timeout keeps its partitions without a rebalance.
    consumer_group_instance_id: str | None = None
    #: -1 (all in-sync replicas), 1 (the leader) or 0 (no ack: may lose records).
    producer_acks: int = -1
    #: None, 'gzip', 'snappy', 'lz4' or 'zstd'.
    producer_compression_type: str | None = None
    #: Seconds a batch may wait for more records before it is sent.
    producer_linger: float = 0.0
    #: Bytes per partition batch. Larger than Kafka's 16 KiB default: each batch and
    #: produce request costs Python work, and a send_soon burst (a changelog flush, a
    #: repartition) fills big batches at once (256 KiB measured ~20% faster in bench e).
    producer_max_batch_size: int = 262_144
    producer_max_request_size: int = 1_000_000

    # -- tables
    #: Other workers keeping a warm copy of each table partition (by following its
    #: changelog), ready to take over with only the tail to replay.
    table_standby_replicas: int = 1
    #: Seconds between expiry runs of windowed tables (closing old windows).
    table_cleanup_interval: float = 30.0

    # -- sensors
    #: Keep the in-memory ``app.monitor`` (counters behind ``/metrics`` and the
    #: dashboard). False leaves ``app.sensors`` empty and ``app.monitor`` None: hooks go
    #: nowhere (sensors added with ``app.sensors.add`` still get them).
    sensors_enabled: bool = True

    # -- web (the worker's HTTP server: views, table routes, health, metrics)
    #: Run the web server in the worker (``faust worker --without-web`` turns it off). A
    #: client (``client_only``, ``producer_only``) and ``app.start()`` never start it.
    web_enabled: bool = True
    #: The interface the server listens on (``127.0.0.1`` for this machine only).
    web_bind: str = "0.0.0.0"
    #: The port it listens on; 0 takes a free port when the server starts (tests, and
    #: several workers on one machine): ``canonical_url`` then has the real port.
    web_port: int = 6066
    #: The host name other workers and clients reach this one by.
    web_host: str = "localhost"
    #: The URL other workers use for this one (advertised in the consumer group's
    #: assignment); default ``http://{web_host}:{web_port}``.
    canonical_url: str = ""
    #: CORS for every view, e.g. ``{'*': {'allow_methods': '*', 'allow_headers': '*'}}``
    #: (origin -> options; see :mod:`faust.web.cors`); ``app.page(cors_options=...)``
    #: overrides it per view. None: no CORS headers. From the environment: JSON.
    web_cors_options: dict[str, Any] | None = None

    # -- logging (applied by the worker; see faust/logs.py)
    #: A :func:`logging.config.dictConfig` dict the worker applies at start, e.g.
    #: ``{'version': 1, 'loggers': {'myapp': {'level': 'DEBUG'}}}``. ``version`` defaults
    #: to 1 and ``disable_existing_loggers`` to False; handlers it gives the root logger
    #: replace the worker's own. From the environment: JSON.
    logging_config: dict[str, Any] | None = None
    #: The worker's own log lines: ``text`` or ``json`` (one object per line with time,
    #: level, logger, message); ``faust worker --json-logs`` is the same as ``json``.
    log_format: str = "text"

    @classmethod
    def from_sources(
        cls,
        id: str,
        options: Mapping[str, Any],
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        environ = os.environ if environ is None else environ
        names = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, value in options.items():
            name = ALIASES.get(key, key)
            if name not in names:
                hint = difflib.get_close_matches(name, sorted(names), n=1)
                suggestion = f" Did you mean {hint[0]!r}?" if hint else ""
                raise ImproperlyConfigured(f"Unknown setting {key!r}.{suggestion}")
            if value is not None:
                values[name] = value
        sources: dict[str, str] = {}
        for f in dataclasses.fields(cls):
            env_name = ENV_PREFIX + f.name.upper()
            if f.name not in values and f.name != "id" and env_name in environ:
                values[f.name] = environ[env_name]
                sources[f.name] = env_name
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
                setattr(settings, name, _coerce(name, value))
            except (TypeError, ValueError) as exc:
                raise ImproperlyConfigured(f"Setting {name}{source}: {exc}") from None
        settings._finish()
        return settings

    def _finish(self) -> None:
        if self.version > 1:
            self.id = f"{self.id}-v{self.version}"
        if not self.group_id:
            self.group_id = self.id
        if not self.reply_to:
            self.reply_to = f"{self.id}-reply-{uuid.uuid4().hex[:12]}"
        self.datadir = self.datadir.replace("{appid}", self.id)
        if not self.canonical_url:
            self.canonical_url = self._default_url()

    def _default_url(self) -> str:
        return f"http://{self.web_host}:{self.web_port}"

    def set_web_address(self, *, host: str | None = None, port: int | None = None) -> None:
        """Change ``web_host``/``web_port`` (the CLI's ``--web-host``/``--web-port``, or
        the port a ``web_port=0`` server got); ``canonical_url`` follows unless it was
        set to another address.

        >>> s = Settings.from_sources('demo', {}, environ={})
        >>> s.set_web_address(port=6067)
        >>> s.canonical_url
        'http://localhost:6067'
        """
        follows = self.canonical_url == self._default_url()
        if host is not None:
            self.web_host = _coerce("web_host", host)
        if port is not None:
            self.web_port = _coerce("web_port", port)
        if follows:
            self.canonical_url = self._default_url()


def _coerce(name: str, value: Any) -> Any:
    coerce = _COERCERS.get(name)
    return coerce(value) if coerce is not None else value


def _positive_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError(f"expected an int >= 1, got {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise TypeError(f"expected an int >= 1, got {value!r}") from None
    if number < 1 or (isinstance(value, float) and value != number):
        raise ValueError(f"expected an int >= 1, got {value!r}")
    return number


def _positive_float(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"expected a number of seconds > 0, got {value!r}") from None
    if number <= 0:
        raise ValueError(f"expected a number of seconds > 0, got {value!r}")
    return number


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.lower() in ("0", "false", "no", "off", ""):
        return False
    raise TypeError(f"expected true or false, got {value!r}")


def _urls(value: Any) -> list[str]:
    if isinstance(value, str):
        urls = [u.strip() for u in value.split(";") if u.strip()]
    elif isinstance(value, list | tuple):
        urls = [str(u).strip() for u in value]
    else:
        raise TypeError(f"expected a URL like 'kafka://localhost:9092', got {value!r}")
    if not urls:
        raise ValueError("expected at least one URL, like 'memory://' or 'kafka://localhost:9092'")
    for url in urls:
        if "://" not in url:
            raise ValueError(f"{url!r} has no scheme: use 'memory://' or 'kafka://{url}'")
    return urls


def _store(value: Any) -> str:
    url = str(value)
    scheme = url.partition("://")[0]
    if scheme not in ("memory", "rocksdb"):
        raise ValueError(f"unknown store {url!r}: use 'memory://' or 'rocksdb://'")
    return url


def _choice(*choices: str) -> Any:
    def coerce(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return str(value)

    return coerce


def _timezone(value: Any) -> datetime.tzinfo:
    if isinstance(value, datetime.tzinfo):
        return value
    try:
        return ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        hint = difflib.get_close_matches(str(value), sorted(available_timezones()), n=1)
        fix = f"did you mean {hint[0]!r}?" if hint else "use an IANA name like 'Europe/Oslo'"
        raise ValueError(f"unknown time zone {value!r}: {fix}") from None


def _non_negative_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError(f"expected an int >= 0, got {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise TypeError(f"expected an int >= 0, got {value!r}") from None
    if number < 0:
        raise ValueError(f"expected an int >= 0, got {value!r}")
    return number


def _non_negative_float(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"expected a number of seconds >= 0, got {value!r}") from None
    if number < 0:
        raise ValueError(f"expected a number of seconds >= 0, got {value!r}")
    return number


def _optional(coerce: Any) -> Any:
    def optional(value: Any) -> Any:
        return None if value in (None, "") else coerce(value)

    return optional


def _acks(value: Any) -> int:
    if value in ("all", "-1", -1):
        return -1
    if value in (0, 1, "0", "1"):
        return int(value)
    raise ValueError(f"expected -1 (or 'all'), 0 or 1, got {value!r}")


def _web_port(value: Any) -> int:
    port = _non_negative_int(value)
    if port > 65535:
        raise ValueError(f"expected a TCP port (1-65535, or 0 for any free one), got {value!r}")
    return port


def _url(value: Any) -> str:
    url = _string(value).strip().rstrip("/")
    if url and not url.startswith(("http://", "https://")):
        raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
    return url


def _cors_options(value: Any) -> dict[str, Any] | None:
    from .web.cors import check_cors_options

    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else None
        except ValueError as exc:
            raise ValueError(f"expected a JSON object of origin -> options: {exc}") from None
    return check_cors_options(value)


def _credentials(value: Any) -> Any:
    from .auth import Credentials

    if value is None or isinstance(value, Credentials):
        return value
    raise TypeError(
        f"expected faust.SASLCredentials(...) or faust.SSLCredentials(...), got {value!r}"
    )


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _topic_template(value: Any) -> str:
    name = _string(value).strip()
    if not name:
        raise ValueError("expected a topic name like '{app_id}-{name}-dlq', got ''")
    return name


def _logging_config(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ValueError(
                f"expected a JSON object for logging.config.dictConfig: {exc}"
            ) from None
    if not isinstance(value, Mapping):
        raise TypeError(
            "expected a logging.config.dictConfig dict like "
            f"{{'version': 1, 'loggers': {{'myapp': {{'level': 'DEBUG'}}}}}}, got {value!r}"
        )
    version = value.get("version", 1)
    if version != 1:
        raise ValueError(f"'version' must be 1 (the only dictConfig schema), got {version!r}")
    for key in ("formatters", "filters", "handlers", "loggers", "root"):
        if key in value and not isinstance(value[key], Mapping):
            raise TypeError(f"{key!r} must be a dict, got {value[key]!r}")
    return dict(value)


def _autodiscover(value: Any) -> bool | list[str]:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return (
            _bool(value)
            if value.lower() in ("0", "1", "true", "false", "yes", "no")
            else [m.strip() for m in value.split(",") if m.strip()]
        )
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    raise TypeError(f"expected True, False or a list of module names, got {value!r}")


_COERCERS: dict[str, Any] = {
    "broker": _urls,
    "store": _store,
    "version": _positive_int,
    "topic_partitions": _positive_int,
    "topic_replication_factor": _positive_int,
    "autodiscover": _autodiscover,
    "origin": _string,
    "datadir": _string,
    "key_serializer": _string,
    "value_serializer": _string,
    "broker_commit_interval": _positive_float,
    "broker_commit_every": _positive_int,
    "broker_client_id": _string,
    "group_id": _string,
    "consumer_auto_offset_reset": _choice("earliest", "latest"),
    "stream_buffer_maxsize": _positive_int,
    "timezone": _timezone,
    "reply_to": _string,
    "reply_expires": _positive_float,
    "producer_only": _bool,
    "client_only": _bool,
    "worker_shutdown_timeout": _positive_float,
    "agent_restart_backoff": _positive_float,
    "agent_retries": _non_negative_int,
    "on_error": _choice(*ON_ERROR_CHOICES),
    "dead_letter_topic": _topic_template,
    "broker_connect_timeout": _positive_float,
    "broker_session_timeout": _positive_float,
    "broker_heartbeat_interval": _positive_float,
    "broker_request_timeout": _positive_float,
    "broker_max_poll_interval": _positive_float,
    "broker_max_poll_records": _positive_int,
    "broker_credentials": _credentials,
    "consumer_max_fetch_size": _positive_int,
    "consumer_group_instance_id": _optional(_string),
    "producer_acks": _acks,
    "producer_compression_type": _optional(_choice("gzip", "snappy", "lz4", "zstd")),
    "producer_linger": _non_negative_float,
    "producer_max_batch_size": _positive_int,
    "producer_max_request_size": _positive_int,
    "table_standby_replicas": _non_negative_int,
    "table_cleanup_interval": _positive_float,
    "sensors_enabled": _bool,
    "web_enabled": _bool,
    "web_bind": _string,
    "web_port": _web_port,
    "web_host": _string,
    "canonical_url": _url,
    "web_cors_options": _cors_options,
    "logging_config": _logging_config,
    "log_format": _choice(*LOG_FORMATS),
}
