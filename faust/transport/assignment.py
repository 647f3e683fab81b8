"""Which worker reads which partitions: co-partitioned, balanced, sticky, with standbys.

A pure function of what the group's members told each other (their subscriptions, web
URLs and previous assignments) and the topics' partition counts. It knows nothing of
Kafka; ``faust.transport.kafka.assignor`` feeds it from aiokafka's group protocol.

Example::

    >>> from faust.transport.assignment import MemberInfo, assign
    >>> topics = {'orders', 'orders-changelog'}
    >>> result = assign(
    ...     {
    ...         'a': MemberInfo(topics, url='http://a:6066'),
    ...         'b': MemberInfo(topics, url='http://b:6066'),
    ...     },
    ...     {'orders': 4, 'orders-changelog': 4},
    ...     standby_replicas=1,
    ...     standby_topics={'orders-changelog'},
    ... )
    >>> result['a'].active
    {'orders': [0, 1], 'orders-changelog': [0, 1]}
    >>> result['a'].standby
    {'orders-changelog': [2, 3]}
    >>> result['a'].routing['http://b:6066']
    {'orders': [2, 3], 'orders-changelog': [2, 3]}

The rules, in the order they win:

1. Co-partitioning. Topics with the same partition count and the same subscribers form
   a group, and partition ``p`` of every topic in a group goes to one member. A table's
   changelog partition ``p`` so lands beside partition ``p`` of the stream updating it.
2. Balance. Within a group each member gets ``n // k`` or ``n // k + 1`` of the ``n``
   partitions, and members with the same subscriptions end up within one group's width
   (its number of topics) of each other in total.
3. Stickiness. Within those bounds a member keeps the partitions it had (the ``+ 1``
   shares go to members that had more before), and a partition that must move goes
   first to a member holding it as a standby (its copy of the table is warm). When a
   member joins or leaves, about the minimum moves: the newcomer's share, or the
   leaver's partitions, sometimes one or two more that balance requires.
4. Standbys. Each partition of a standby topic (a table's changelog) gets up to
   ``standby_replicas`` other subscribers, never its active owner; previous holders
   first, then the members holding the fewest, preferring another host.

The result depends only on the inputs' contents, never on dict or set ordering: every
member computes the same routing map from the same assignment.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from .base import TP

__all__ = ["MemberInfo", "Assignment", "TopicPartitions", "assign"]

#: ``{topic: [partition, ...]}``, the shape of every assignment here.
TopicPartitions = dict[str, list[int]]


@dataclass(frozen=True)
class MemberInfo:
    """What one group member says about itself when the group rebalances.

    ``active`` and ``standby`` are what it was given last time (empty for a new member);
    ``generation`` tells which of two members claiming a partition has the newer claim
    (a member that lost contact with the group still remembers its old partitions).
    ``host`` names the machine, so that a standby lands on another one when possible.
    """

    topics: Collection[str]
    url: str = ""
    active: Mapping[str, Sequence[int]] = field(default_factory=dict)
    standby: Mapping[str, Sequence[int]] = field(default_factory=dict)
    host: str = ""
    generation: int = -1


@dataclass(frozen=True)
class Assignment:
    """One member's share, and where every active partition of the group is read.

    ``routing`` maps each member's URL to the partitions it reads, for every member with
    a URL (the same map in every member's assignment): the way to the worker that owns a
    table key.
    """

    active: TopicPartitions
    standby: TopicPartitions
    routing: dict[str, TopicPartitions]

    def active_tps(self) -> set[TP]:
        return _tps(self.active)

    def standby_tps(self) -> set[TP]:
        return _tps(self.standby)


class _Member(NamedTuple):
    """A :class:`MemberInfo` with its previous assignment as sets, for fast lookups."""

    info: MemberInfo
    topics: frozenset[str]
    active: dict[str, frozenset[int]]
    standby: dict[str, frozenset[int]]


class _Group(NamedTuple):
    """Co-partitioned topics: partition ``p`` of each goes to the same member."""

    topics: tuple[str, ...]
    partitions: int
    members: tuple[str, ...]


def assign(
    members: Mapping[str, MemberInfo],
    partitions: Mapping[str, int],
    *,
    standby_replicas: int = 0,
    standby_topics: Collection[str] = (),
) -> dict[str, Assignment]:
    """Assign the ``partitions`` (``{topic: count}``) of subscribed topics to ``members``.

    Topics nobody subscribes to, and topics missing from ``partitions``, are left out.
    Every member gets an :class:`Assignment`, possibly empty.
    """
    member_ids = sorted(members)
    known = {
        m: _Member(info, frozenset(info.topics), _as_sets(info.active), _as_sets(info.standby))
        for m, info in members.items()
    }
    subscribers: dict[str, tuple[str, ...]] = {}
    for topic in sorted(partitions):
        if partitions[topic] <= 0:
            continue
        subs = tuple(m for m in member_ids if topic in known[m].topics)
        if subs:
            subscribers[topic] = subs

    groups = _copartitioned(subscribers, partitions)
    previous = [_previous_owners(group, known) for group in groups]
    quotas = _quotas(groups, previous, member_ids)
    owners: dict[str, list[str]] = {}
    for group, prev, quota in zip(groups, previous, quotas, strict=True):
        owner_of = _fill(group, prev, quota, known)
        for topic in group.topics:
            owners[topic] = owner_of

    standby = _assign_standbys(owners, subscribers, known, standby_replicas, standby_topics)

    active: dict[str, TopicPartitions] = {m: {} for m in member_ids}
    for topic in sorted(owners):
        for partition, owner in enumerate(owners[topic]):
            active[owner].setdefault(topic, []).append(partition)
    routing: dict[str, TopicPartitions] = {}
    for m in member_ids:
        url = members[m].url
        if url:
            served = routing.setdefault(url, {})
            for topic, parts in active[m].items():
                served.setdefault(topic, []).extend(parts)
    for served in routing.values():
        for parts in served.values():
            # Two members claiming one URL (a misconfigured canonical_url) share it.
            parts.sort()
    return {m: Assignment(active[m], standby[m], routing) for m in member_ids}


def _copartitioned(
    subscribers: Mapping[str, tuple[str, ...]], partitions: Mapping[str, int]
) -> list[_Group]:
    by_key: dict[tuple[int, tuple[str, ...]], list[str]] = {}
    for topic, subs in subscribers.items():
        by_key.setdefault((partitions[topic], subs), []).append(topic)
    groups = [_Group(tuple(sorted(ts)), n, subs) for (n, subs), ts in by_key.items()]
    # Widest groups first: their partitions weigh most, and spreading the heavy ones
    # before the light ones keeps the members' totals close (as in LPT scheduling).
    groups.sort(key=lambda g: (-len(g.topics), -g.partitions, g.topics))
    return groups


def _quotas(
    groups: Sequence[_Group], previous: Sequence[list[str | None]], member_ids: Sequence[str]
) -> list[dict[str, int]]:
    """How many partitions of each group each member gets: ``n // k`` or one more.

    The partitions that do not divide evenly go first to members that had more than
    ``n // k`` before (they keep them, nothing moves), then to the least loaded. Then,
    while a member with one more of a group has more than that group's weight over one
    without, the extra moves over (those a member did not need first): members that
    subscribe alike end up within one group's weight of each other.
    """
    load = dict.fromkeys(member_ids, 0)
    extras: list[set[str]] = []
    needs: list[set[str]] = []
    for group, prev in zip(groups, previous, strict=True):
        base, extra = divmod(group.partitions, len(group.members))
        held = Counter(owner for owner in prev if owner is not None)
        needy = {m for m in group.members if held[m] > base}
        ranked = sorted(group.members, key=lambda m: (m not in needy, load[m], m))
        weight = len(group.topics)
        for m in group.members:
            load[m] += base * weight
        for m in ranked[:extra]:
            load[m] += weight
        extras.append(set(ranked[:extra]))
        needs.append(needy)

    # Each move lowers the sum of squared loads, so this ends; in practice after a
    # few moves, when members joined or left.
    while True:
        best: tuple[int, int, int, str, str] | None = None
        for i, group in enumerate(groups):
            weight = len(group.topics)
            for a in extras[i]:
                for b in group.members:
                    gap = load[a] - load[b]
                    if gap > weight and b not in extras[i]:
                        cost = (a in needs[i]) - (b in needs[i])
                        move = (cost, -gap, i, a, b)
                        if best is None or move < best:
                            best = move
        if best is None:
            break
        _, _, i, a, b = best
        weight = len(groups[i].topics)
        extras[i].remove(a)
        extras[i].add(b)
        load[a] -= weight
        load[b] += weight

    quotas: list[dict[str, int]] = []
    for group, extra_members in zip(groups, extras, strict=True):
        base = group.partitions // len(group.members)
        quotas.append({m: base + (m in extra_members) for m in group.members})
    return quotas


def _fill(
    group: _Group,
    previous: Sequence[str | None],
    quota: Mapping[str, int],
    members: Mapping[str, _Member],
) -> list[str]:
    """The owner of each partition of ``group``, each member taking its ``quota``."""
    owner: list[str | None] = [None] * group.partitions
    taken: Counter[str] = Counter()
    # Previous owners keep what their quota allows, lowest partitions first.
    for p, prev in enumerate(previous):
        if prev is not None and taken[prev] < quota[prev]:
            owner[p] = prev
            taken[prev] += 1
    warm = _standby_partitions(group, members)
    for p in range(group.partitions):
        if owner[p] is None:
            room = [m for m in group.members if taken[m] < quota[m]]
            # A standby holder first: it has the table's state and resumes fastest.
            # Otherwise members in order, so a fresh group is laid out in ranges.
            chosen = min(room, key=lambda m: (p not in warm[m], m))
            owner[p] = chosen
            taken[chosen] += 1
    return [m for m in owner if m is not None]


def _previous_owners(group: _Group, members: Mapping[str, _Member]) -> list[str | None]:
    """Who had each partition of ``group`` before; the newest, fullest claim wins.

    A member may have had only some of the group's topics at ``p`` (the group changed)
    or two members may both claim ``p`` (one fell out of the group and rejoined): the
    claim from the latest generation wins, then the one covering the most topics.
    """
    n = group.partitions
    best: list[tuple[int, int] | None] = [None] * n
    owner: list[str | None] = [None] * n
    for m in group.members:
        member = members[m]
        claims: Counter[int] = Counter()
        for topic in group.topics:
            claims.update(p for p in member.active.get(topic, ()) if 0 <= p < n)
        for p, count in claims.items():
            score = (member.info.generation, count)
            # Members come in sorted order: on a tie the first keeps it.
            current = best[p]
            if current is None or score > current:
                best[p] = score
                owner[p] = m
    return owner


def _standby_partitions(group: _Group, members: Mapping[str, _Member]) -> dict[str, set[int]]:
    warm: dict[str, set[int]] = {}
    for m in group.members:
        standby = members[m].standby
        warm[m] = {p for topic in group.topics for p in standby.get(topic, ())}
    return warm


def _assign_standbys(
    owners: Mapping[str, list[str]],
    subscribers: Mapping[str, tuple[str, ...]],
    members: Mapping[str, _Member],
    replicas: int,
    standby_topics: Collection[str],
) -> dict[str, TopicPartitions]:
    result: dict[str, TopicPartitions] = {m: {} for m in members}
    if replicas <= 0:
        return result
    total: Counter[str] = Counter()
    for topic in sorted(set(standby_topics) & owners.keys()):
        placement = _Standbys(topic, subscribers[topic], owners[topic], members, total)
        holders = placement.place(min(replicas, len(subscribers[topic]) - 1))
        for p, held_by in enumerate(holders):
            for m in held_by:
                result[m].setdefault(topic, []).append(p)
        total.update(placement.count)
    return result


class _Standbys:
    """Places the standbys of one topic's partitions (see :func:`assign`, rule 4)."""

    def __init__(
        self,
        topic: str,
        subs: tuple[str, ...],
        owner_of: list[str],
        members: Mapping[str, _Member],
        total: Mapping[str, int],
    ) -> None:
        self.topic = topic
        self.subs = subs
        self.owner_of = owner_of
        self.members = members
        self.total = total
        self.host = {m: members[m].info.host for m in subs}
        # Who had a copy of each partition before (as standby or as its owner).
        self.had: list[set[str]] = [set() for _ in owner_of]
        for m in subs:
            member = members[m]
            for p in member.standby.get(topic, frozenset()) | member.active.get(topic, frozenset()):
                if 0 <= p < len(owner_of):
                    self.had[p].add(m)
        self.count: Counter[str] = Counter()
        self.holders: list[list[str]] = [[] for _ in owner_of]

    def place(self, replicas: int) -> list[list[str]]:
        if replicas <= 0:
            return self.holders
        n = len(self.owner_of)
        # Nobody takes more than its share while others have less: keeps previous
        # holders from keeping them all, and host spreading from piling them up.
        fair = -(-n * replicas // len(self.subs))
        count, holders = self.count, self.holders
        for p in range(n):
            warm = [m for m in self.had[p] if m != self.owner_of[p] and count[m] < fair]
            for m in sorted(warm, key=lambda m: (count[m], m))[:replicas]:
                holders[p].append(m)
                count[m] += 1
        host = self.host
        for p in range(n):
            while len(holders[p]) < replicas:
                taken = self._hosts(p)
                chosen = min(
                    self._eligible(p),
                    key=lambda m: (count[m] >= fair, host[m] in taken, count[m], self.total[m], m),
                )
                holders[p].append(chosen)
                count[chosen] += 1
        self._even_out()
        return holders

    def _even_out(self) -> None:
        # Filling partition by partition can leave the last ones only members that
        # already have plenty; hand standbys from the fullest to the emptiest.
        count, holders = self.count, self.holders
        host = self.host
        while True:
            move = None
            ascending = sorted(self.subs, key=lambda m: (count[m], m))
            for high in sorted(self.subs, key=lambda m: (-count[m], m)):
                for low in ascending:
                    if count[high] - count[low] <= 1:
                        break
                    options = [p for p, held in enumerate(holders) if high in held]
                    options = [p for p in options if low in self._eligible(p)]
                    if options:
                        # Keep the copies that were there before and the spread over
                        # hosts, where there is a choice.
                        p = min(
                            options,
                            key=lambda p: (high in self.had[p], host[low] in self._hosts(p), p),
                        )
                        move = (p, high, low)
                        break
                if move:
                    break
            if move is None:
                return
            p, high, low = move
            holders[p][holders[p].index(high)] = low
            count[high] -= 1
            count[low] += 1

    def _eligible(self, p: int) -> list[str]:
        return [m for m in self.subs if m != self.owner_of[p] and m not in self.holders[p]]

    def _hosts(self, p: int) -> set[str]:
        """The known hosts of ``p``'s owner and standbys so far (spread over others)."""
        host = self.host
        # "" (host unknown) is never in it, so members without a host match nobody.
        return {host[self.owner_of[p]], *(host[h] for h in self.holders[p])} - {""}


def _as_sets(assignment: Mapping[str, Sequence[int]]) -> dict[str, frozenset[int]]:
    return {topic: frozenset(parts) for topic, parts in assignment.items()}


def _tps(assignment: Mapping[str, Sequence[int]]) -> set[TP]:
    return {TP(topic, p) for topic, parts in assignment.items() for p in parts}
