"""The partition assignor: co-partitioned, balanced, sticky, with standbys and routing.

The first part drives the pure algorithm (faust.transport.assignment); the last part the
aiokafka glue (faust.transport.kafka.assignor) through the protocol's own encoding, with
the group's members simulated in-process (no broker).
"""

from __future__ import annotations

import random
import zlib
from collections import Counter
from collections.abc import Mapping

import pytest
from aiokafka.coordinator.protocol import (
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)

from faust.transport.assignment import Assignment, MemberInfo, assign
from faust.transport.base import TP
from faust.transport.kafka.assignor import PartitionAssignor

Owners = dict[TP, str]


def owners(result: Mapping[str, Assignment]) -> Owners:
    """Who reads each partition; fails if one is assigned twice."""
    found: Owners = {}
    for member, share in result.items():
        for tp in share.active_tps():
            assert tp not in found, f"{tp} assigned to {found[tp]} and {member}"
            found[tp] = member
    return found


def rebalance(
    topics_of: Mapping[str, set[str]],
    partitions: Mapping[str, int],
    previous: Mapping[str, Assignment] | None = None,
    **kwargs: object,
) -> dict[str, Assignment]:
    """One rebalance of ``topics_of``'s members, each bringing what it had in ``previous``."""
    previous = previous or {}
    members = {}
    for member, topics in topics_of.items():
        before = previous.get(member)
        members[member] = MemberInfo(
            topics,
            url=f"http://{member}:6066",
            active=before.active if before else {},
            standby=before.standby if before else {},
        )
    return assign(members, partitions, **kwargs)  # type: ignore[arg-type]


def moved(before: Owners, after: Owners) -> int:
    return sum(1 for tp, member in before.items() if tp in after and after[tp] != member)


# -- co-partitioning and balance


def test_copartitioned_topics_go_together() -> None:
    topics = {"orders", "orders-changelog"}
    result = rebalance({m: topics for m in ("a", "b", "c")}, {"orders": 4, "orders-changelog": 4})
    who = owners(result)
    assert len(who) == 8
    for p in range(4):
        assert who[TP("orders", p)] == who[TP("orders-changelog", p)]
    counts = sorted(len(share.active["orders"]) for share in result.values())
    assert counts == [1, 1, 2]
    # Laid out in ranges when nothing was assigned before.
    assert result["a"].active == {"orders": [0, 1], "orders-changelog": [0, 1]}


def test_topics_differing_in_partitions_or_subscribers_are_separate_groups() -> None:
    result = rebalance(
        {"a": {"x", "y", "z"}, "b": {"x", "y", "z"}, "c": {"x", "y"}},
        {"x": 6, "y": 6, "z": 6},
    )
    who = owners(result)
    for p in range(6):
        assert who[TP("x", p)] == who[TP("y", p)]
        assert who[TP("z", p)] in {"a", "b"}
    assert Counter(who[TP("x", p)] for p in range(6)) == {"a": 2, "b": 2, "c": 2}
    assert Counter(who[TP("z", p)] for p in range(6)) == {"a": 3, "b": 3}


def test_only_subscribed_known_topics_are_assigned() -> None:
    result = rebalance({"a": {"x", "missing"}, "b": {"x"}}, {"x": 2, "unread": 3, "empty": 0})
    assert owners(result).keys() == {TP("x", 0), TP("x", 1)}
    assert rebalance({"a": set()}, {"x": 2}) == {"a": Assignment({}, {}, {"http://a:6066": {}})}


def random_group(rng: random.Random) -> tuple[dict[str, set[str]], dict[str, int]]:
    partitions = {f"t{i}": rng.choice([1, 2, 3, 4, 6, 8, 12, 30]) for i in range(rng.randint(1, 7))}
    names = sorted(partitions)
    # A few subscription profiles shared by several members, as workers of one or two
    # apps in the same group would have.
    profiles = [set(rng.sample(names, rng.randint(1, len(names)))) for _ in range(3)]
    members = {f"m{i:02}": rng.choice(profiles) for i in range(rng.randint(1, 9))}
    return members, partitions


def check_balanced(
    topics_of: Mapping[str, set[str]], partitions: Mapping[str, int], result: dict[str, Assignment]
) -> None:
    who = owners(result)
    groups: dict[tuple[int, frozenset[str]], list[str]] = {}
    for topic, n in partitions.items():
        subs = frozenset(m for m, topics in topics_of.items() if topic in topics)
        if subs:
            groups.setdefault((n, subs), []).append(topic)
    expected = {TP(t, p) for (n, _), ts in groups.items() for t in ts for p in range(n)}
    assert who.keys() == expected
    for (n, subs), topics in groups.items():
        for p in range(n):
            assert {who[TP(t, p)] for t in topics} <= subs
            assert len({who[TP(t, p)] for t in topics}) == 1, "co-partitioned topics split"
        per_member = Counter(who[TP(topics[0], p)] for p in range(n))
        low, high = divmod(n, len(subs))
        assert all(low <= per_member[m] <= low + (high > 0) for m in subs), (n, per_member)
    # Members that subscribe alike differ by at most one group's width in total.
    load = Counter(who.values())
    widest = max((len(ts) for ts in groups.values()), default=0)
    by_profile: dict[frozenset[str], list[str]] = {}
    for member, topics in topics_of.items():
        by_profile.setdefault(frozenset(topics), []).append(member)
    for alike in by_profile.values():
        totals = [load[m] for m in alike]
        assert max(totals) - min(totals) <= widest, (alike, totals)


def test_balanced_for_random_groups() -> None:
    rng = random.Random(20240601)
    for _ in range(500):
        topics_of, partitions = random_group(rng)
        check_balanced(topics_of, partitions, rebalance(topics_of, partitions))


def test_deterministic_whatever_the_input_order() -> None:
    rng = random.Random(7)
    for _ in range(100):
        topics_of, partitions = random_group(rng)
        first = rebalance(topics_of, partitions, standby_replicas=1, standby_topics={"t0"})
        shuffled_members = list(topics_of.items())
        rng.shuffle(shuffled_members)
        shuffled_topics = list(partitions.items())
        rng.shuffle(shuffled_topics)
        fresh = rebalance(
            dict(shuffled_members),
            dict(shuffled_topics),
            standby_replicas=1,
            standby_topics=["t0"],
        )
        assert fresh == first
        again = rebalance(
            {m: set(sorted(ts, reverse=True)) for m, ts in shuffled_members},
            dict(shuffled_topics),
            first,
            standby_replicas=1,
            standby_topics=["t0"],
        )
        second = rebalance(
            dict(reversed(shuffled_members)),
            dict(reversed(shuffled_topics)),
            first,
            standby_replicas=1,
            standby_topics=("t0",),
        )
        assert again == second


# -- stickiness

TWO_TOPICS = {"orders": 12, "orders-changelog": 12}


def test_same_members_keep_everything() -> None:
    rng = random.Random(3)
    for _ in range(200):
        topics_of, partitions = random_group(rng)
        first = rebalance(topics_of, partitions, standby_replicas=1, standby_topics={"t0"})
        again = rebalance(topics_of, partitions, first, standby_replicas=1, standby_topics={"t0"})
        assert again == first


def test_a_member_joining_takes_only_its_share() -> None:
    subs = set(TWO_TOPICS)
    before = rebalance({m: subs for m in "abc"}, TWO_TOPICS)
    after = rebalance({m: subs for m in "abcd"}, TWO_TOPICS, before)
    check_balanced({m: subs for m in "abcd"}, TWO_TOPICS, after)
    # 24 partitions over 4 members: the newcomer gets 6, and only those move.
    assert len(after["d"].active_tps()) == 6
    assert moved(owners(before), owners(after)) == 6


def test_a_member_leaving_moves_only_its_partitions() -> None:
    subs = set(TWO_TOPICS)
    before = rebalance({m: subs for m in "abcd"}, TWO_TOPICS)
    after = rebalance({m: subs for m in "abd"}, TWO_TOPICS, before)
    check_balanced({m: subs for m in "abd"}, TWO_TOPICS, after)
    leavers = before["c"].active_tps()
    was, now = owners(before), owners(after)
    assert {tp for tp in was if was[tp] != now[tp]} == leavers
    for member in "abd":
        assert before[member].active_tps() <= after[member].active_tps()


def test_join_and_leave_move_little_for_random_groups() -> None:
    # Balance comes first, so a join or leave can force a move or two beyond the
    # minimum (the joiner's share, or the leaver's partitions); never more here.
    rng = random.Random(11)
    extra_moves = []
    for _ in range(300):
        partitions = {f"t{i}": rng.choice([1, 2, 4, 5, 8, 12, 16]) for i in range(4)}
        subs = set(partitions)
        k = rng.randint(2, 8)
        everyone = {f"m{i}": subs for i in range(k)}
        before = rebalance(everyone, partitions)
        was = owners(before)

        leaver = rng.choice(sorted(everyone))
        remaining = {m: s for m, s in everyone.items() if m != leaver}
        after = rebalance(remaining, partitions, before)
        check_balanced(remaining, partitions, after)
        extra_moves.append(moved(was, owners(after)) - len(before[leaver].active_tps()))

        joined = {**everyone, "new": subs}
        after = rebalance(joined, partitions, before)
        check_balanced(joined, partitions, after)
        extra_moves.append(moved(was, owners(after)) - len(after["new"].active_tps()))
    assert min(extra_moves) == 0
    assert max(extra_moves) <= 2
    assert sum(extra_moves) <= len(extra_moves) // 10


def test_newest_claim_wins_when_two_members_claim_a_partition() -> None:
    # "a" fell out of the group (generation 3) and still remembers partition 0, which
    # "b" got in generation 4.
    members = {
        "a": MemberInfo({"x"}, active={"x": [0, 1]}, generation=3),
        "b": MemberInfo({"x"}, active={"x": [0, 2]}, generation=4),
        "c": MemberInfo({"x"}, active={}, generation=-1),
    }
    result = assign(members, {"x": 3})
    assert result["b"].active == {"x": [0]}
    assert result["a"].active == {"x": [1]}
    assert result["c"].active == {"x": [2]}


def test_stale_previous_partitions_are_ignored() -> None:
    members = {
        "a": MemberInfo({"x"}, active={"x": [0, 7, -1], "gone": [0]}),
        "b": MemberInfo({"x"}),
    }
    result = assign(members, {"x": 2})
    assert result["a"].active == {"x": [0]}
    assert result["b"].active == {"x": [1]}


# -- standbys


def standby_holders(result: Mapping[str, Assignment]) -> dict[TP, list[str]]:
    holders: dict[TP, list[str]] = {}
    for member, share in sorted(result.items()):
        for tp in share.standby_tps():
            holders.setdefault(tp, []).append(member)
    return holders


@pytest.mark.parametrize(("members", "replicas"), [(3, 1), (4, 2), (5, 1), (2, 3), (6, 3)])
def test_standbys_are_never_on_the_owner_and_spread(members: int, replicas: int) -> None:
    subs = {"clicks", "clicks-changelog"}
    partitions = {"clicks": 8, "clicks-changelog": 8}
    result = rebalance(
        {f"m{i}": subs for i in range(members)},
        partitions,
        standby_replicas=replicas,
        standby_topics={"clicks-changelog"},
    )
    who = owners(result)
    holders = standby_holders(result)
    expected = min(replicas, members - 1)
    assert holders.keys() == {TP("clicks-changelog", p) for p in range(8)}
    for tp, held_by in holders.items():
        assert len(held_by) == len(set(held_by)) == expected
        assert who[tp] not in held_by
    counts = [len(share.standby_tps()) for share in result.values()]
    assert max(counts) - min(counts) <= 1
    assert sum(counts) == 8 * expected


def test_standbys_for_random_groups() -> None:
    rng = random.Random(99)
    for _ in range(300):
        topics_of, partitions = random_group(rng)
        standby_topics = set(rng.sample(sorted(partitions), rng.randint(1, len(partitions))))
        replicas = rng.randint(1, 3)
        members = {m: MemberInfo(topics, host=rng.choice("xyz")) for m, topics in topics_of.items()}
        result = assign(
            members, partitions, standby_replicas=replicas, standby_topics=standby_topics
        )
        who = owners(result)
        holders = standby_holders(result)
        for topic in standby_topics:
            subs = [m for m, topics in topics_of.items() if topic in topics]
            expected = min(replicas, len(subs) - 1) if subs else 0
            per_member = Counter(dict.fromkeys(subs, 0))
            for p in range(partitions[topic]):
                held_by = holders.get(TP(topic, p), [])
                assert len(set(held_by)) == len(held_by) == expected
                assert set(held_by) <= set(subs) - {who.get(TP(topic, p))}
                per_member.update(held_by)
            if subs:
                assert max(per_member.values()) - min(per_member.values()) <= 1
        assert {tp.topic for tp in holders} <= standby_topics


def test_no_standbys_unless_asked_or_for_other_topics() -> None:
    subs = {"clicks", "clicks-changelog"}
    partitions = {"clicks": 4, "clicks-changelog": 4}
    topics_of = {m: subs for m in "ab"}
    assert not standby_holders(rebalance(topics_of, partitions))
    assert not standby_holders(
        rebalance(topics_of, partitions, standby_replicas=1, standby_topics={"other"})
    )
    # A single member has nobody to keep a copy.
    assert not standby_holders(
        rebalance({"a": subs}, partitions, standby_replicas=2, standby_topics={"clicks"})
    )


def test_standbys_are_sticky_and_a_moving_partition_goes_to_its_standby() -> None:
    subs = {"clicks", "clicks-changelog"}
    partitions = {"clicks": 9, "clicks-changelog": 9}
    kwargs: dict[str, object] = {
        "standby_replicas": 1,
        "standby_topics": {"clicks-changelog"},
    }
    before = rebalance({m: subs for m in "abc"}, partitions, **kwargs)
    assert rebalance({m: subs for m in "abc"}, partitions, before, **kwargs) == before

    after = rebalance({m: subs for m in "ab"}, partitions, before, **kwargs)
    holders = standby_holders(before)
    leavers = {tp for tp in before["c"].active_tps() if tp.topic == "clicks-changelog"}
    new_owner = owners(after)
    # The quota lets each survivor take what it holds a copy of: the copies take over.
    assert all(new_owner[tp] in holders[tp] for tp in leavers)


def test_standbys_prefer_another_host() -> None:
    hosts = {"a1": "x", "a2": "x", "b1": "y", "b2": "y"}
    members = {m: MemberInfo({"t"}, host=h) for m, h in hosts.items()}
    result = assign(members, {"t": 8}, standby_replicas=1, standby_topics={"t"})
    who = owners(result)
    for tp, held_by in standby_holders(result).items():
        assert [hosts[m] for m in held_by] != [hosts[who[tp]]], tp


# -- routing


def test_routing_covers_every_active_partition_once() -> None:
    rng = random.Random(5)
    for _ in range(100):
        topics_of, partitions = random_group(rng)
        result = rebalance(topics_of, partitions)
        routing = next(iter(result.values())).routing
        assert all(share.routing == routing for share in result.values())
        routed = Counter(
            TP(topic, p)
            for served in routing.values()
            for topic, parts in served.items()
            for p in parts
        )
        assert set(routed.values()) <= {1}
        assert routed.keys() == owners(result).keys()
        for member, share in result.items():
            assert routing[f"http://{member}:6066"] == share.active


def test_members_without_url_are_not_routed() -> None:
    members = {"a": MemberInfo({"x"}, url="http://a:6066"), "b": MemberInfo({"x"})}
    result = assign(members, {"x": 2})
    assert result["b"].routing == {"http://a:6066": {"x": [0]}}


# -- the aiokafka glue


class FakeCluster:
    """The one thing an assignor asks of aiokafka's ClusterMetadata."""

    def __init__(self, partitions: Mapping[str, int]) -> None:
        self.partitions = partitions

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        n = self.partitions.get(topic)
        return None if n is None else set(range(n))


Assignors = dict[str, PartitionAssignor]


def join_group(
    assignors: Assignors,
    topics: Mapping[str, list[str]],
    cluster: FakeCluster,
    raw_metadata: Mapping[str, bytes] | None = None,
) -> dict[str, ConsumerProtocolMemberAssignment]:
    """A rebalance as aiokafka runs it, through the protocol's encoding."""
    sent = {m: assignor.metadata(topics[m]).encode() for m, assignor in assignors.items()}
    sent.update(raw_metadata or {})
    received = {m: ConsumerProtocolMemberMetadata.decode(data) for m, data in sent.items()}
    leader = assignors[min(assignors)]
    assignments = leader.assign(cluster, received)  # type: ignore[arg-type]
    assert assignments.keys() == received.keys()
    for member, assignor in assignors.items():
        data = assignments[member].encode()
        assignor.on_assignment(ConsumerProtocolMemberAssignment.decode(data))
    return assignments


def active_of(assignment: ConsumerProtocolMemberAssignment) -> set[TP]:
    return {TP(tp.topic, tp.partition) for tp in assignment.partitions()}


def test_metadata_is_the_subscription_plus_user_data() -> None:
    assignor = PartitionAssignor("http://w1:6066", standby_replicas=2, changelog_topics={"c"})
    assert assignor.name == "faust"
    metadata = ConsumerProtocolMemberMetadata.decode(assignor.metadata({"b", "a"}).encode())
    assert metadata.version == 0
    assert metadata.subscription == ["a", "b"]
    assert metadata.user_data


def test_glue_round_trip_assigns_standbys_and_routing() -> None:
    topics = ["orders", "orders-changelog"]
    cluster = FakeCluster({"orders": 6, "orders-changelog": 6})
    assignors = {
        m: PartitionAssignor(
            f"http://{m}:6066", standby_replicas=1, changelog_topics={"orders-changelog"}
        )
        for m in ("w1", "w2", "w3")
    }
    subscriptions = {m: topics for m in assignors}
    first = join_group(assignors, subscriptions, cluster)

    all_tps = {TP(t, p) for t in topics for p in range(6)}
    assert set().union(*(active_of(a) for a in first.values())) == all_tps
    for member, assignor in assignors.items():
        mine = active_of(first[member])
        assert assignor.routing[f"http://{member}:6066"] == mine
        assert assignor.standbys
        assert not assignor.standbys & mine
        assert {tp.topic for tp in assignor.standbys} == {"orders-changelog"}
        for tp in all_tps:
            owner = next(m for m, a in first.items() if tp in active_of(a))
            assert assignor.url_for(tp) == f"http://{owner}:6066"
    assert assignors["w1"].routing == assignors["w3"].routing

    # The next rebalance sees what each had: nothing moves.
    standbys = {m: a.standbys for m, a in assignors.items()}
    second = join_group(assignors, subscriptions, cluster)
    assert {m: active_of(a) for m, a in second.items()} == {
        m: active_of(a) for m, a in first.items()
    }
    assert {m: a.standbys for m, a in assignors.items()} == standbys

    # w3 leaves: only its partitions move, to the survivors holding their standbys.
    holders = {tp: m for m, s in standbys.items() for tp in s}
    del assignors["w3"]
    third = join_group(assignors, subscriptions, cluster)
    for member in assignors:
        assert active_of(first[member]) <= active_of(third[member])
    for tp in active_of(first["w3"]):
        if tp.topic == "orders-changelog":
            assert tp in active_of(third[holders[tp]])
    assert "http://w3:6066" not in assignors["w1"].routing


@pytest.mark.parametrize(
    "user_data",
    [
        b"",
        b"not zlib",
        zlib.compress(b"not json"),
        zlib.compress(b"[1, 2]"),
        zlib.compress(b'{"url": "http://c:6066", "active": {"t": [0, 1, 2, 3]}}'),
        zlib.compress(b'{"version": 1, "url": 7, "active": {"t": "all"}, "generation": "x"}'),
    ],
)
def test_member_with_unknown_user_data_counts_as_new(user_data: bytes) -> None:
    cluster = FakeCluster({"t": 4})
    assignors = {m: PartitionAssignor(f"http://{m}:6066", host=m) for m in ("a", "b")}
    stranger = ConsumerProtocolMemberMetadata(0, ["t"], user_data).encode()
    result = join_group(assignors, {m: ["t"] for m in assignors}, cluster, {"c": stranger})
    assert sorted(len(active_of(a)) for a in result.values()) == [1, 1, 2]
    routed = set().union(*assignors["a"].routing.values())
    assert routed == active_of(result["a"]) | active_of(result["b"])
    assert set(assignors["a"].routing) == {"http://a:6066", "http://b:6066"}


def test_assignment_from_a_leader_without_user_data_clears_state() -> None:
    assignor = PartitionAssignor("http://a:6066")
    assignor.on_assignment(ConsumerProtocolMemberAssignment(0, [("t", [0])], b'{"version": 1}'))
    assert assignor.standbys == frozenset()
    assert assignor.routing == {}
    assert assignor.url_for(TP("t", 0)) is None
    # Its own partitions still count as previous ones in the next metadata.
    join = ConsumerProtocolMemberMetadata.decode(assignor.metadata(["t"]).encode())
    result = PartitionAssignor().assign(
        FakeCluster({"t": 2}),  # type: ignore[arg-type]
        {
            "z": join,
            "b": ConsumerProtocolMemberMetadata(0, ["t"], b""),
        },
    )
    assert active_of(result["z"]) == {TP("t", 0)}


def test_topics_missing_from_the_cluster_metadata_wait_for_the_next_rebalance() -> None:
    assignors = {"a": PartitionAssignor("http://a:6066")}
    result = join_group(assignors, {"a": ["t", "not-yet"]}, FakeCluster({"t": 2}))
    assert active_of(result["a"]) == {TP("t", 0), TP("t", 1)}


def test_workers_sharing_a_url_are_reported(caplog: pytest.LogCaptureFixture) -> None:
    # Every worker left at the default canonical_url gives http://localhost:6066.
    assignors = {m: PartitionAssignor("http://localhost:6066") for m in ("a", "b")}
    with caplog.at_level("WARNING", logger="faust.transport.kafka.assignor"):
        join_group(assignors, {m: ["t"] for m in assignors}, FakeCluster({"t": 2}))
    assert "2 workers of the group give the URL 'http://localhost:6066' (a, b)" in caplog.text
    assert assignors["a"].routing == {"http://localhost:6066": {TP("t", 0), TP("t", 1)}}


def test_the_leaders_sensors_hear_of_the_assignment_and_its_failure() -> None:
    import faust

    class Assignments(faust.Sensor):
        def __init__(self) -> None:
            self.calls: list[tuple[str, object]] = []

        def on_assignment_start(self, assignor):  # type: ignore[no-untyped-def]
            self.calls.append(("start", assignor))
            return "state"

        def on_assignment_completed(self, assignor, state):  # type: ignore[no-untyped-def]
            self.calls.append(("completed", state))

        def on_assignment_error(self, assignor, state, exc):  # type: ignore[no-untyped-def]
            self.calls.append(("error", (state, type(exc).__name__)))

    sensor = Assignments()
    app = faust.App("assignor-sensors")
    app.sensors.add(sensor)
    assignors = {m: PartitionAssignor(f"http://{m}:6066") for m in ("w1", "w2")}
    assignors["w1"].sensors = app.sensors
    join_group(assignors, {m: ["t"] for m in assignors}, FakeCluster({"t": 2}))
    assert sensor.calls == [("start", assignors["w1"]), ("completed", "state")]

    sensor.calls.clear()
    with pytest.raises(AttributeError):
        assignors["w1"].assign(None, {"w1": None})  # type: ignore[arg-type, dict-item]
    assert sensor.calls == [("start", assignors["w1"]), ("error", ("state", "AttributeError"))]
