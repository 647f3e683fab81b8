"""The Kafka transport: broker URLs, the first connect, topic declarations, the leader."""

from __future__ import annotations

import asyncio
import logging
import ssl
import weakref
from collections.abc import AsyncIterator, Collection, Sequence
from typing import Any
from urllib.parse import urlsplit

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.conn import create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    IllegalSaslStateError,
    InvalidReplicationFactorError,
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
    UnsupportedSaslMechanismError,
    for_code,
)

from ...exceptions import ImproperlyConfigured, PartitionCountMismatch, SecurityError
from ..base import TP, Message, RebalanceListener, TopicSpec, Transport
from .clients import close_quietly
from .connection_log import install as install_connection_log
from .consumer import KafkaConsumer
from .producer import KafkaProducer
from .reader import PartitionReader

__all__ = [
    "KafkaTransport",
    "BrokerUnreachable",
    "LoginRefused",
    "bootstrap_servers",
    "topic_config",
]

logger = logging.getLogger(__name__)

DEFAULT_PORT = 9092
DEFAULT_HOST = "localhost"
SCHEMES = ("kafka", "aiokafka")

# Between attempts to reach the cluster: start fast (a broker that is just coming up
# answers within a second), back off so a long wait does not flood the log.
_RETRY_FIRST = 0.2
_RETRY_MAX = 2.0

# How long declare_topic waits for a created topic to appear in the brokers' metadata
# (usually a few milliseconds).
_VISIBLE_WITHIN = 10.0
# Before a producer sends to, or a consumer subscribes to, a topic it has not seen, it
# waits this long for the topic to exist: aiokafka's metadata requests make a broker with
# auto.create.topics.enable create a missing topic with the broker's partition count,
# not the app's. A declaration in progress (a group_by's repartition topic, declared as
# its stream starts) lands well within it.
UNDECLARED_WAIT = 2.0
_TOPIC_POLL = 0.05

# Answers that waiting will not change: a wrong login, a listener that does not speak
# what the credentials ask for, TLS that fails.
_REFUSALS = (
    SaslAuthenticationFailed,
    AuthenticationFailedError,
    UnsupportedSaslMechanismError,
    IllegalSaslStateError,
    ssl.SSLError,
)


class BrokerUnreachable(ImproperlyConfigured):
    """No broker named in the ``broker`` setting answered within ``broker_connect_timeout``."""


class LoginRefused(SecurityError, ImproperlyConfigured):
    """The brokers refused ``broker_credentials`` (a final answer: it is not retried)."""


def bootstrap_servers(urls: Sequence[str]) -> list[str]:
    """``host:port`` for each broker named by ``kafka://`` URLs.

    Example::

        >>> bootstrap_servers(['kafka://k1', 'aiokafka://k2:9093,k3'])
        ['k1:9092', 'k2:9093', 'k3:9092']
    """
    servers: list[str] = []
    for url in urls:
        scheme, sep, rest = url.partition("://")
        if not sep or scheme not in SCHEMES:
            raise ImproperlyConfigured(
                f"Setting broker: {url!r} is not a Kafka URL; use 'kafka://host:9092'."
            )
        netloc = rest.split("/", 1)[0]
        for hostport in netloc.split(",") if netloc else [""]:
            try:
                parts = urlsplit(f"//{hostport.strip()}")
                port = parts.port or DEFAULT_PORT
            except ValueError:
                raise ImproperlyConfigured(
                    f"Setting broker: {url!r} has a bad host:port {hostport!r}; "
                    "use 'kafka://host:9092'."
                ) from None
            host = parts.hostname or DEFAULT_HOST
            server = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            if server not in servers:
                servers.append(server)
    return servers or [f"{DEFAULT_HOST}:{DEFAULT_PORT}"]


def topic_config(spec: TopicSpec) -> dict[str, str]:
    """Kafka topic configs for ``spec``; its own ``config`` entries win."""
    config: dict[str, str] = {}
    if spec.compacting:
        config["cleanup.policy"] = "compact,delete" if spec.deleting else "compact"
    if spec.retention is not None:
        config["retention.ms"] = str(int(spec.retention * 1000))
    config.update(spec.config)
    return config


class KafkaTransport(Transport):
    """Consumers, producers, readers and topic declarations on one Kafka cluster.

    Every client it makes gets the app's ``broker_client_id``, ``broker_request_timeout``
    and ``broker_credentials``; none starts before :meth:`connect` has reached the
    cluster.
    """

    scheme = "kafka"

    def __init__(self, urls: Sequence[str], app: Any) -> None:
        super().__init__(urls, app)
        install_connection_log()
        self.conf = app.conf
        self.servers = bootstrap_servers(self.urls or ["kafka://"])
        #: What aiokafka's ``bootstrap_servers`` gets: ``"h1:9092,h2:9092"``.
        self.bootstrap_servers = ",".join(self.servers)
        #: The topic whose partition 0 makes a worker the leader.
        self.leader_topic = f"{self.conf.id}-__leader"
        self._admin: AIOKafkaAdminClient | None = None
        self._admin_lock = asyncio.Lock()
        self._consumers: weakref.WeakSet[KafkaConsumer] = weakref.WeakSet()
        self._reader = PartitionReader(self)

    # -- clients
    def client_options(self) -> dict[str, Any]:
        """Keyword arguments every aiokafka client of this transport gets."""
        conf = self.conf
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "client_id": conf.broker_client_id,
            "request_timeout_ms": int(conf.broker_request_timeout * 1000),
            "metadata_max_age_ms": int(conf.broker_metadata_max_age * 1000),
            "connections_max_idle_ms": int(conf.broker_connections_max_idle * 1000),
        }
        if conf.broker_credentials is not None:
            options.update(conf.broker_credentials.client_options())
        return options

    def create_consumer(self, group_id: str, listener: RebalanceListener) -> KafkaConsumer:
        consumer = KafkaConsumer(self, group_id, listener)
        self._consumers.add(consumer)
        return consumer

    def create_producer(self) -> KafkaProducer:
        return KafkaProducer(self)

    async def connect(self) -> AIOKafkaAdminClient:
        """The transport's admin client, connected (waits ``broker_connect_timeout``).

        Every client calls this before starting, so an unreachable cluster or a refused
        login is reported once, the same way, whichever part of the app comes first.
        """
        if self._admin is not None:
            return self._admin
        async with self._admin_lock:
            if self._admin is None:
                admin = AIOKafkaAdminClient(**self.client_options())
                try:
                    await self._start_within_timeout(admin)
                except BaseException:
                    await close_quietly(admin.close())
                    raise
                self._admin = admin
        return self._admin

    async def _start_within_timeout(self, admin: AIOKafkaAdminClient) -> None:
        timeout = self.conf.broker_connect_timeout
        delay = _RETRY_FIRST
        connected = False
        try:
            async with asyncio.timeout(timeout):
                while True:
                    try:
                        await admin.start()
                        return
                    except (KafkaConnectionError, OSError) as exc:
                        # aiokafka only logs why each broker failed; a refused login
                        # will not change by waiting, so look for one and stop.
                        connected = await self._raise_if_refused()
                        if delay == _RETRY_FIRST:
                            logger.warning(
                                "Kafka at %s does not answer (%s); waiting up to %g s for it",
                                self.describe(),
                                exc,
                                timeout,
                            )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _RETRY_MAX)
        except TimeoutError:
            if connected:
                raise BrokerUnreachable(
                    f"Kafka at {self.describe()} accepts connections but did not answer "
                    f"as Kafka within {timeout:g} s: if it requires a login or TLS, set "
                    "broker_credentials; otherwise check the port in the broker setting."
                ) from None
            raise BrokerUnreachable(
                f"Cannot reach Kafka at {self.describe()} after {timeout:g} s: start it "
                "(scripts/kafka up in a clone of Faust) or fix the broker setting; "
                "broker_connect_timeout sets how long to wait."
            ) from None

    async def _raise_if_refused(self) -> bool:
        """Raise :class:`LoginRefused` if a broker refuses our login or TLS; else return
        whether any broker accepted a connection."""
        options = self.client_options()
        security = {
            key: options[key]
            for key in (
                "security_protocol",
                "ssl_context",
                "sasl_mechanism",
                "sasl_plain_username",
                "sasl_plain_password",
            )
            if key in options
        }
        connected = False
        for server in self.servers:
            host, _, port = server.rpartition(":")
            try:
                conn = await create_conn(
                    host.strip("[]"),
                    int(port),
                    client_id=options["client_id"],
                    request_timeout_ms=options["request_timeout_ms"],
                    **security,
                )
            except _REFUSALS as exc:
                raise LoginRefused(self._refusal(server, exc)) from None
            except (OSError, KafkaError, TimeoutError):
                continue
            conn.close()
            connected = True
        return connected

    def _refusal(self, server: str, exc: BaseException) -> str:
        credentials = self.conf.broker_credentials
        user = getattr(credentials, "username", None)
        mechanism = getattr(credentials, "mechanism", None)
        reason = exc.args[0] if exc.args and isinstance(exc.args[0], str) else type(exc).__name__
        where = f"kafka://{server}"
        if isinstance(exc, ssl.SSLError):
            return (
                f"TLS with Kafka at {where} failed ({exc}): check the SSL context in "
                "broker_credentials (CA file, client certificate) and that the port uses TLS."
            )
        if isinstance(exc, IllegalSaslStateError):
            return (
                f"Kafka at {where} does not expect a SASL login from {user!r} on this port: "
                "use the broker's SASL listener in the broker setting, or drop "
                "broker_credentials."
            )
        if isinstance(exc, UnsupportedSaslMechanismError):
            return (
                f"Kafka at {where} does not accept SASL mechanism {mechanism} for {user!r}: "
                "set mechanism= in broker_credentials to one the broker enables."
            )
        return (
            f"Kafka at {where} refused the SASL {mechanism} login of {user!r}: {reason}. "
            "Fix the username, password or mechanism in broker_credentials."
        )

    def describe(self) -> str:
        """The brokers as URLs, for messages: ``kafka://h1:9092, kafka://h2:9092``."""
        return ", ".join(f"kafka://{server}" for server in self.servers)

    async def close(self) -> None:
        await self._reader.close()
        admin, self._admin = self._admin, None
        if admin is not None:
            await admin.close()

    # -- topics
    async def declare_topic(self, spec: TopicSpec) -> None:
        admin = await self.connect()
        new_topic = NewTopic(
            spec.name,
            spec.partitions,
            spec.replication_factor,
            topic_configs=topic_config(spec),
        )
        response = await admin.create_topics([new_topic])
        for name, code, *details in response.topic_errors:
            if not code:
                logger.info("Created topic %r with %d partitions", name, spec.partitions)
                await self._wait_until_exist({name}, _VISIBLE_WITHIN)
                continue
            error = for_code(code)
            reason = details[0] if details and details[0] else error.description
            if error is TopicAlreadyExistsError:
                await self._check_partitions(spec)
            elif error is InvalidReplicationFactorError:
                raise ImproperlyConfigured(
                    f"Topic {name!r}: replication factor {spec.replication_factor} is more "
                    f"than the brokers at {self.describe()} can hold ({reason}). "
                    "Lower topic_replication_factor (or replicas= on the topic)."
                )
            else:
                raise ImproperlyConfigured(
                    f"Kafka at {self.describe()} refused to create topic {name!r} "
                    f"({error.message}: {reason})."
                )

    async def delete_topic(self, name: str) -> None:
        admin = await self.connect()
        response = await admin.delete_topics([name])
        for topic, code, *_ in response.topic_error_codes:
            if not code:
                logger.info("Deleted topic %r", topic)
                continue
            error = for_code(code)
            if error is UnknownTopicOrPartitionError:
                continue  # already gone
            raise ImproperlyConfigured(
                f"Kafka at {self.describe()} refused to delete topic {topic!r} "
                f"({error.message}: {error.description}); delete it with "
                f"kafka-topics.sh --delete --topic {topic}."
            )

    async def ensure_topic(self, name: str) -> None:
        """Make sure topic ``name`` exists before the first send to it.

        A topic the app knows (``app.topic(name, ...)``) is created as the app would
        declare it. Otherwise the producer's metadata request would have a broker with
        ``auto.create.topics.enable`` create it with the broker's partition count, and
        aiokafka log an ERROR while it does. A name the app does not know may be being
        declared elsewhere in the app: it gets ``UNDECLARED_WAIT`` s to appear, then
        is created with the ``topic_partitions`` and ``topic_replication_factor``
        settings.
        """
        if name in await self._existing_topics():
            return
        lookup = getattr(self.app, "topic_spec", None)
        spec: TopicSpec | None = lookup(name) if lookup is not None else None
        if spec is None:
            if not await self._wait_until_exist({name}, UNDECLARED_WAIT):
                return
            spec = TopicSpec(name, self.conf.topic_partitions, self.conf.topic_replication_factor)
        await self.declare_topic(spec)

    async def wait_for_topics(self, topics: Collection[str], use: str) -> None:
        """Wait up to ``UNDECLARED_WAIT`` s for ``topics`` to exist before ``use``
        (sending, subscribing); warn about those that still do not."""
        missing = await self._wait_until_exist(topics, UNDECLARED_WAIT)
        for topic in sorted(missing):
            logger.warning(
                "%s topic %r, which does not exist: Kafka creates it with the broker's "
                "default partition count (if auto.create.topics.enable is on). Declare "
                "it first: await app.topic(%r, partitions=N).declare()",
                use,
                topic,
                topic,
            )

    async def _wait_until_exist(self, topics: Collection[str], timeout: float) -> set[str]:
        # Also after a declare: the controller answers once the topic is created, but a
        # broker may not know it for a moment.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        missing = set(topics)
        while missing:
            missing -= await self._existing_topics()
            if not missing or loop.time() >= deadline:
                break
            await asyncio.sleep(_TOPIC_POLL)
        return missing

    async def _existing_topics(self) -> set[str]:
        """Topics that exist and can take records: every partition has a leader.

        Right after a create, a partition may have no leader yet for a moment; a record
        sent then fails with NOT_LEADER_OR_FOLLOWER and is retried, which the client logs
        as an error. A topic counts only once it is usable.
        """
        admin = await self.connect()
        # Metadata for all topics: asking for topics by name makes a broker with
        # auto.create.topics.enable create them, which a question must not do.
        return {
            info["topic"]
            for info in await admin.describe_topics()
            if not info["error_code"]
            and all(not p["error_code"] and p["leader"] >= 0 for p in info["partitions"])
        }

    async def _check_partitions(self, spec: TopicSpec) -> None:
        actual = await self.partition_count(spec.name)
        if actual is not None and actual != spec.partitions:
            raise PartitionCountMismatch(
                f"Topic {spec.name!r} exists with {actual} partitions, but the app declares "
                f"{spec.partitions}. Use partitions={actual} for this topic, or delete it."
            )

    async def list_topics(self) -> set[str]:
        return await self._existing_topics()

    async def partition_counts(self, topics: Collection[str]) -> dict[str, int]:
        """The partition counts of those of ``topics`` that exist (one metadata request)."""
        admin = await self.connect()
        wanted = set(topics)
        return {
            info["topic"]: len(info["partitions"])
            for info in await admin.describe_topics()
            if info["topic"] in wanted and not info["error_code"]
        }

    async def partition_count(self, topic: str) -> int | None:
        admin = await self.connect()
        # Metadata for all topics: asking for one topic by name makes a broker with
        # auto.create.topics.enable create it, which a question must not do.
        for info in await admin.describe_topics():
            if info["topic"] == topic and not info["error_code"]:
                return len(info["partitions"])
        return None

    # -- reading outside the group (table recovery, standbys, global tables)
    async def end_offset(self, tp: TP) -> int:
        return await self._reader.end_offset(tp)

    def read_partition(self, tp: TP, start: int, end: int) -> AsyncIterator[list[Message]]:
        return self._reader.read(tp, start, end)

    def follow_partition(self, tp: TP, start: int) -> AsyncIterator[list[Message]]:
        return self._reader.follow(tp, start)

    # -- leader election
    def is_leader(self) -> bool:
        """True on the one worker of the app's group assigned ``{app.id}-__leader``.

        Each worker's consumer subscribes to that one-partition topic, so Kafka's group
        protocol gives its partition 0 to one member. In a rebalance every member gives
        up its partitions before any gets new ones, so two leaders do not overlap; a
        worker whose session expired (its event loop blocked) leads until its next
        heartbeat tells it so.
        """
        leader = TP(self.leader_topic, 0)
        return any(leader in consumer.assigned for consumer in self._consumers)

    def elects_leader(self) -> bool:
        """Whether this process's consumer takes part in leader election.

        A client (``client_only``: a web process waiting for replies) runs no timers,
        so it must not win.
        """
        return not (self.conf.client_only or self.conf.producer_only)

    def leader_spec(self) -> TopicSpec:
        return TopicSpec(
            self.leader_topic, 1, replication_factor=self.conf.topic_replication_factor
        )
