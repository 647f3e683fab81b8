"""A consumer group seen from outside: its members, who owns each partition, lag.

``faust status`` asks Kafka, not a worker: it needs neither the web server nor a place
in the group (joining would start a rebalance). One admin client describes the group
and reads its committed offsets; one consumer without a group reads the partitions'
start and end offsets::

    status = await describe_group(app.transport, app.conf.group_id, topics={'orders'})
    status.state                       # 'Stable', 'Empty', 'Dead', ...
    [m.url for m in status.members]    # each worker's canonical_url
    sum(p.lag or 0 for p in status.partitions)

A member's URL and host come from the user data our assignor puts in its metadata, and
its standbys from its assignment's user data (see :mod:`.assignor`); a member that is not
a Faust worker shows none of them.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import (
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)
from aiokafka.errors import KafkaError, for_code
from aiokafka.structs import TopicPartition

from ..base import TP
from .assignor import _topic_partitions, decode_user_data
from .clients import close_quietly

if TYPE_CHECKING:
    from .transport import KafkaTransport

__all__ = ["GroupStatus", "MemberStatus", "PartitionStatus", "describe_group"]

# Kafka's answer for a group it does not know (DescribeGroups v6+; older versions say
# state "Dead" with no error).
_GROUP_ID_NOT_FOUND = 69
# Between attempts while the group's coordinator is not available yet.
_RETRY_DELAY = 0.2


@dataclasses.dataclass(frozen=True)
class MemberStatus:
    """One member of the group, as the coordinator describes it."""

    member_id: str
    client_id: str
    #: The address the coordinator sees the member connect from (``/127.0.0.1``).
    client_host: str
    #: The worker's host name and ``canonical_url`` (empty for a member not ours).
    host: str
    url: str
    #: What it reads now (the current assignment) and keeps warm as standby.
    partitions: tuple[TP, ...]
    standbys: tuple[TP, ...]
    #: The topics it subscribes to, and those of them that are table changelogs.
    subscription: tuple[str, ...]
    changelog_topics: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class PartitionStatus:
    """One partition: who reads it, how far the group has committed, what is left."""

    topic: str
    partition: int
    #: The member id of the member assigned it (None: nobody now).
    owner: str | None
    #: The group's committed offset (the next to read); None if never committed.
    committed: int | None
    #: The oldest offset the log still holds, and one past its newest.
    start: int
    end: int
    #: Events waiting: ``end - committed``, or ``end - start`` for a partition the group
    #: never committed when new groups start from the earliest offset (None for a
    #: changelog: the group assigns it, but tables read it outside the group).
    lag: int | None
    #: Whether the topic is a table's changelog.
    changelog: bool


@dataclasses.dataclass(frozen=True)
class GroupStatus:
    """A consumer group as Kafka describes it (see :func:`describe_group`)."""

    group_id: str
    #: Kafka's group state: Stable, PreparingRebalance, CompletingRebalance, Empty, Dead.
    state: str
    members: tuple[MemberStatus, ...]
    partitions: tuple[PartitionStatus, ...]
    #: Topics asked about that do not exist on the brokers.
    missing_topics: tuple[str, ...]


async def describe_group(
    transport: KafkaTransport,
    group_id: str,
    topics: Collection[str],
    *,
    changelog_topics: Collection[str] = (),
    from_earliest: bool = True,
) -> GroupStatus:
    """The status of consumer group ``group_id``.

    Partitions are those of ``topics``, of the topics the members subscribe to and of
    the topics the group has committed offsets for. Partitions of changelog topics (given
    here or named by a member: assigned through the group, but read outside it) get no
    lag.
    ``from_earliest``: where a group starts on a partition it never committed
    (``consumer_auto_offset_reset``), which decides the lag of such a partition.

    Example::

        status = await describe_group(app.transport, 'orders-app', {'orders'})
        owners = {(p.topic, p.partition): p.owner for p in status.partitions}
    """
    admin = await transport.connect()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + transport.conf.broker_connect_timeout
    while True:
        try:
            return await _describe(
                admin, transport, group_id, topics, changelog_topics, from_earliest
            )
        except KafkaError as exc:
            # A coordinator that is moving or still loading the group's offsets (a
            # fresh cluster creates __consumer_offsets on the first question) answers
            # shortly.
            if not exc.retriable or loop.time() > deadline:
                raise
        await asyncio.sleep(_RETRY_DELAY)


async def _describe(
    admin: AIOKafkaAdminClient,
    transport: KafkaTransport,
    group_id: str,
    topics: Collection[str],
    changelog_topics: Collection[str],
    from_earliest: bool,
) -> GroupStatus:
    [response] = await admin.describe_consumer_groups([group_id])
    error_code, _, state, _, _, raw_members, *_ = response.groups[0]
    if error_code == _GROUP_ID_NOT_FOUND:
        state, raw_members = "Dead", []
    elif error_code:
        error = for_code(error_code)
        raise error(f"Describing consumer group {group_id!r}: {error.description}")
    members = tuple(sorted((_member(*raw) for raw in raw_members), key=lambda m: m.member_id))
    committed = {
        TP(tp.topic, tp.partition): meta.offset
        for tp, meta in (await admin.list_consumer_group_offsets(group_id)).items()
        if meta.offset >= 0
    }
    wanted = set(topics) | {tp.topic for tp in committed}
    changelogs = set(changelog_topics)
    for member in members:
        wanted.update(member.subscription)
        changelogs.update(member.changelog_topics)
    counts = {
        info["topic"]: len(info["partitions"])
        for info in await admin.describe_topics()
        if not info["error_code"] and info["topic"] in wanted
    }
    tps = [TP(topic, p) for topic, count in sorted(counts.items()) for p in range(count)]
    starts, ends = await _offsets(transport, tps)
    owners = {tp: m.member_id for m in members for tp in m.partitions}
    partitions = []
    for tp in tps:
        offset = committed.get(tp)
        lag: int | None
        if tp.topic in changelogs:
            lag = None
        elif offset is not None:
            lag = max(ends[tp] - offset, 0)
        else:
            lag = ends[tp] - starts[tp] if from_earliest else 0
        partitions.append(
            PartitionStatus(
                topic=tp.topic,
                partition=tp.partition,
                owner=owners.get(tp),
                committed=offset,
                start=starts[tp],
                end=ends[tp],
                lag=lag,
                changelog=tp.topic in changelogs,
            )
        )
    return GroupStatus(
        group_id=group_id,
        state=state,
        members=members,
        partitions=tuple(partitions),
        missing_topics=tuple(sorted(wanted - set(counts))),
    )


def _member(
    member_id: str, client_id: str, client_host: str, metadata: bytes, assignment: bytes
) -> MemberStatus:
    subscription: tuple[str, ...] = ()
    info: dict = {}
    if metadata:
        try:
            decoded = ConsumerProtocolMemberMetadata.decode(metadata)
        except Exception:  # another kind of group member (not the consumer protocol)
            pass
        else:
            subscription = tuple(sorted(decoded.subscription))
            info = decode_user_data(decoded.user_data)
    active: tuple[TP, ...] = ()
    standbys: tuple[TP, ...] = ()
    if assignment:  # empty while the group rebalances
        try:
            given = ConsumerProtocolMemberAssignment.decode(assignment)
        except Exception:  # not the consumer protocol's: shown without partitions
            pass
        else:
            active = _tps((topic, parts) for topic, parts in given.assignment)
            standby = _topic_partitions(decode_user_data(given.user_data).get("standby"))
            standbys = _tps(standby.items())
    url, host = info.get("url"), info.get("host")
    changelogs = info.get("changelog_topics")
    return MemberStatus(
        member_id=member_id,
        client_id=client_id,
        client_host=client_host,
        host=host if isinstance(host, str) else "",
        url=url if isinstance(url, str) else "",
        partitions=active,
        standbys=standbys,
        subscription=subscription,
        changelog_topics=tuple(
            sorted(t for t in changelogs if isinstance(t, str))
            if isinstance(changelogs, list)
            else ()
        ),
    )


def _tps(pairs: Iterable[tuple[str, Iterable[int]]]) -> tuple[TP, ...]:
    return tuple(sorted(TP(topic, p) for topic, parts in pairs for p in parts))


async def _offsets(
    transport: KafkaTransport, tps: list[TP]
) -> tuple[Mapping[TP, int], Mapping[TP, int]]:
    """The first and one-past-last offsets of each partition (one request each way)."""
    if not tps:
        return {}, {}
    consumer = AIOKafkaConsumer(
        **transport.client_options(), group_id=None, enable_auto_commit=False
    )
    try:
        await consumer.start()
        partitions = [TopicPartition(tp.topic, tp.partition) for tp in tps]
        first = await consumer.beginning_offsets(partitions)
        last = await consumer.end_offsets(partitions)
    finally:
        await close_quietly(consumer.stop())
    return (
        {TP(tp.topic, tp.partition): int(o) for tp, o in first.items()},
        {TP(tp.topic, tp.partition): int(o) for tp, o in last.items()},
    )
