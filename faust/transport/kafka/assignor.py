"""Faust's partition assignor in aiokafka's consumer group protocol.

Each consumer has its own assignor: it carries that worker's URL and remembers what the
worker was given, which is what makes the next assignment sticky. Pass the instance to
aiokafka as the assignment strategy; after a rebalance it says which partitions this
worker keeps as standbys and which worker reads each partition::

    assignor = PartitionAssignor(url=app.conf.canonical_url, standby_replicas=1)
    consumer = AIOKafkaConsumer(..., partition_assignment_strategy=(assignor,))
    ...
    assignor.standbys                  # frozenset of TPs this worker keeps warm
    assignor.routing                   # {url: frozenset of TPs that worker reads}
    assignor.url_for(TP('orders', 3))  # 'http://w2:6066'

In a rebalance every member sends :meth:`~PartitionAssignor.metadata` (its topics, and
as user data its URL, host, what it had before, its changelog topics and standby count);
the group's leader runs :meth:`~PartitionAssignor.assign` over all of them, which calls
:func:`faust.transport.assignment.assign`; each member gets its partitions plus, as user
data, its standbys and the routing map, and keeps them in
:meth:`~PartitionAssignor.on_assignment`. aiokafka calls ``on_assignment`` before the
rebalance listener's ``on_partitions_assigned``, so the listener sees the new values.

User data is zlib-compressed JSON (the routing map is in every member's assignment).
Data that does not decode (another client, a future format) counts as a member with no
URL and no previous partitions. Fields are only ever added; a change that old members
would misread needs a new assignor ``name``, which Kafka then negotiates.
"""

from __future__ import annotations

import logging
import socket
import zlib
from collections.abc import Collection, Iterable, Mapping
from typing import Any

import orjson
from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.protocol import (
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)

from ..assignment import MemberInfo, TopicPartitions, assign
from ..base import TP

__all__ = ["PartitionAssignor", "decode_user_data"]

logger = logging.getLogger(__name__)

#: Written into every user data; readers rely on field names, not on this number.
USER_DATA_VERSION = 1

# The consumer protocol's own version field. 0 is what the Java client's range and
# round-robin assignors send and what every broker and tool parses.
_PROTOCOL_VERSION = 0


class PartitionAssignor(AbstractPartitionAssignor):
    """Co-partitioned, sticky assignment with standbys and each worker's URL.

    ``url`` is where other workers reach this one (``canonical_url``);
    ``standby_replicas`` how many other workers keep a copy of each changelog partition;
    ``changelog_topics`` the topics that get standbys (tables add theirs before the
    consumer joins; they must also be subscribed). ``host`` defaults to this machine's
    name: standbys go to another host when one is available.
    """

    name = "faust"
    version = _PROTOCOL_VERSION

    def __init__(
        self,
        url: str = "",
        *,
        standby_replicas: int = 0,
        changelog_topics: Iterable[str] = (),
        host: str | None = None,
    ) -> None:
        self.url = url
        self.standby_replicas = standby_replicas
        self.changelog_topics: set[str] = set(changelog_topics)
        self.host = socket.gethostname() if host is None else host
        #: This worker's standby partitions as of the last rebalance.
        self.standbys: frozenset[TP] = frozenset()
        #: Every worker's URL and the partitions it reads, as of the last rebalance.
        self.routing: dict[str, frozenset[TP]] = {}
        self._url_of: dict[TP, str] = {}
        self._active: TopicPartitions = {}
        self._standby: TopicPartitions = {}
        self._generation = -1
        #: The app's sensors (``app.sensors``), told when this worker, as the group's
        #: leader, assigns partitions; None: nobody is told.
        self.sensors: Any = None

    def url_for(self, tp: TP) -> str | None:
        """The URL of the worker reading ``tp``, or None if unknown (or it has none)."""
        return self._url_of.get(tp)

    # -- aiokafka's interface (instance methods: aiokafka only looks them up by name)
    def metadata(self, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
        user_data = {
            "version": USER_DATA_VERSION,
            "url": self.url,
            "host": self.host,
            "active": self._active,
            "standby": self._standby,
            "generation": self._generation,
            "standby_replicas": self.standby_replicas,
            "changelog_topics": sorted(self.changelog_topics),
        }
        return ConsumerProtocolMemberMetadata(self.version, sorted(topics), _encode(user_data))

    def assign(
        self,
        cluster: ClusterMetadata,
        members: Mapping[str, ConsumerProtocolMemberMetadata],
    ) -> dict[str, ConsumerProtocolMemberAssignment]:
        sensors = self.sensors
        if sensors is None:
            return self._assign(cluster, members)
        state = sensors.on_assignment_start(self)
        try:
            assignments = self._assign(cluster, members)
        except Exception as exc:
            sensors.on_assignment_error(self, state, exc)
            raise
        sensors.on_assignment_completed(self, state)
        return assignments

    def _assign(
        self,
        cluster: ClusterMetadata,
        members: Mapping[str, ConsumerProtocolMemberMetadata],
    ) -> dict[str, ConsumerProtocolMemberAssignment]:
        infos: dict[str, MemberInfo] = {}
        replicas = 0
        changelogs: set[str] = set()
        generation = -1
        for member_id, metadata in members.items():
            data = decode_user_data(metadata.user_data)
            info = _member_info(metadata.subscription, data)
            infos[member_id] = info
            generation = max(generation, info.generation)
            replicas = max(replicas, _int(data.get("standby_replicas"), 0))
            changelogs.update(_strings(data.get("changelog_topics")))
        _warn_shared_urls(infos)
        partitions = _partition_counts(cluster, infos.values())
        result = assign(infos, partitions, standby_replicas=replicas, standby_topics=changelogs)
        generation += 1
        logger.debug(
            "Assigned %d topics to %d members (generation %d)",
            len(partitions),
            len(infos),
            generation,
        )
        assignments: dict[str, ConsumerProtocolMemberAssignment] = {}
        for member_id, share in result.items():
            user_data = {
                "version": USER_DATA_VERSION,
                "generation": generation,
                "standby": share.standby,
                "routing": share.routing,
            }
            assignments[member_id] = ConsumerProtocolMemberAssignment(
                self.version, sorted(share.active.items()), _encode(user_data)
            )
        return assignments

    def on_assignment(self, assignment: ConsumerProtocolMemberAssignment) -> None:
        data = decode_user_data(assignment.user_data)
        self._active = {topic: sorted(parts) for topic, parts in assignment.assignment}
        self._standby = _topic_partitions(data.get("standby"))
        self._generation = _int(data.get("generation"), -1)
        self.standbys = frozenset(
            TP(topic, p) for topic, parts in self._standby.items() for p in parts
        )
        routing: dict[str, frozenset[TP]] = {}
        url_of: dict[TP, str] = {}
        raw = data.get("routing")
        if isinstance(raw, dict):
            for url, served in raw.items():
                if isinstance(url, str) and url:
                    tps = frozenset(
                        TP(topic, p)
                        for topic, parts in _topic_partitions(served).items()
                        for p in parts
                    )
                    routing[url] = tps
                    url_of.update(dict.fromkeys(tps, url))
        self.routing = routing
        self._url_of = url_of


def _member_info(subscription: Collection[str], data: Mapping[str, Any]) -> MemberInfo:
    url = data.get("url")
    host = data.get("host")
    return MemberInfo(
        frozenset(subscription),
        url=url if isinstance(url, str) else "",
        active=_topic_partitions(data.get("active")),
        standby=_topic_partitions(data.get("standby")),
        host=host if isinstance(host, str) else "",
        generation=_int(data.get("generation"), -1),
    )


def _warn_shared_urls(infos: Mapping[str, MemberInfo]) -> None:
    by_url: dict[str, list[str]] = {}
    for member_id, info in sorted(infos.items()):
        if info.url:
            by_url.setdefault(info.url, []).append(member_id)
    for url, member_ids in by_url.items():
        if len(member_ids) > 1:
            # Requests for a key would reach whichever of them answers at that URL.
            logger.warning(
                "%d workers of the group give the URL %r (%s): set canonical_url (or "
                "web_host/web_port) to an address each worker alone answers at",
                len(member_ids),
                url,
                ", ".join(member_ids),
            )


def _partition_counts(cluster: ClusterMetadata, infos: Iterable[MemberInfo]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for topic in sorted({topic for info in infos for topic in info.topics}):
        partitions = cluster.partitions_for_topic(topic)
        if partitions is None:
            # Not created yet (or not in the metadata yet): the next rebalance, which
            # aiokafka starts when the topic appears, assigns it.
            logger.warning("No partition metadata for topic %r; not assigning it", topic)
            continue
        counts[topic] = len(partitions)
    return counts


def _encode(data: Mapping[str, Any]) -> bytes:
    return zlib.compress(orjson.dumps(data, option=orjson.OPT_SORT_KEYS))


def decode_user_data(raw: bytes | None) -> dict[str, Any]:
    """A member's user data (of its metadata or its assignment) as a dict; empty when it
    is missing or in a format not ours (``faust status`` reads it from outside the group).

    Example::

        >>> decode_user_data(_encode({"version": 1, "url": "http://w1:6066"}))["url"]
        'http://w1:6066'
        >>> decode_user_data(b"not ours")
        {}
    """
    if not raw:
        return {}
    try:
        data = orjson.loads(zlib.decompress(raw))
    except (zlib.error, orjson.JSONDecodeError):
        logger.debug("Ignoring partition assignor user data not in Faust's format")
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("version"), int):
        return {}
    return data


def _topic_partitions(raw: Any) -> TopicPartitions:
    """``{topic: [partition, ...]}`` from decoded JSON, dropping anything malformed."""
    if not isinstance(raw, dict):
        return {}
    result: TopicPartitions = {}
    for topic, parts in raw.items():
        if isinstance(topic, str) and isinstance(parts, list):
            valid = [p for p in parts if type(p) is int and p >= 0]
            if valid:
                result[topic] = valid
    return result


def _strings(raw: Any) -> list[str]:
    return [s for s in raw if isinstance(s, str)] if isinstance(raw, list) else []


def _int(raw: Any, default: int) -> int:
    return raw if type(raw) is int else default
