"""The embedded broker behaves like Kafka as far as an app can see."""

import pytest

import faust
from faust.exceptions import PartitionCountMismatch
from faust.transport.base import TP, RebalanceListener, TopicSpec
from faust.transport.memory import MemoryBroker, MemoryConsumer, MemoryProducer
from faust.transport.partitioner import partition_for_key
from faust.transport.producer import Producer


class Recorder(RebalanceListener):
    def __init__(self) -> None:
        self.assigned: set[TP] = set()
        self.revoked: set[TP] = set()

    async def on_partitions_assigned(self, assigned: set[TP]) -> None:
        self.assigned |= assigned

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        self.revoked |= revoked
        self.assigned -= revoked


async def test_keyed_records_use_the_java_partitioner_and_get_offsets() -> None:
    broker = MemoryBroker(default_partitions=4)
    producer = Producer(MemoryProducer(broker))
    first = await (await producer.send("t", b"user-1", b"a"))
    second = await (await producer.send("t", b"user-1", b"b"))
    assert first.partition == second.partition == partition_for_key(b"user-1", 4)
    assert (first.offset, second.offset) == (0, 1)


async def test_declare_with_other_partition_count_names_both_counts() -> None:
    broker = MemoryBroker()
    broker.declare(TopicSpec("orders", partitions=4))
    with pytest.raises(PartitionCountMismatch, match="orders.*4 partitions.*declares 8"):
        broker.declare(TopicSpec("orders", partitions=8))


async def test_send_to_missing_partition_is_an_error() -> None:
    broker = MemoryBroker(default_partitions=2)
    with pytest.raises(ValueError, match="partition 5 does not exist"):
        broker.append("t", None, b"x", 5, None, None)


async def test_group_members_share_partitions_and_resume_from_commits() -> None:
    broker = MemoryBroker(default_partitions=4)
    for i in range(8):
        broker.append("t", None, str(i).encode(), i % 4, None, None)
    one, two = Recorder(), Recorder()
    c1 = MemoryConsumer(broker, "g", one)
    c2 = MemoryConsumer(broker, "g", two)
    c1.subscribe(["t"])
    c2.subscribe(["t"])
    await c1.start()
    await c2.start()
    got1 = await c1.getmany(0.1, 100)
    got2 = await c2.getmany(0.1, 100)
    assert one.assigned.isdisjoint(two.assigned)
    assert len(one.assigned | two.assigned) == 4
    assert sum(len(v) for v in got1.values()) + sum(len(v) for v in got2.values()) == 8

    # c2 commits its partitions and leaves; c1 takes them over from the committed offsets.
    await c2.commit({tp: 2 for tp in two.assigned})
    await c2.stop()
    got = await c1.getmany(0.1, 100)
    assert one.assigned == {TP("t", p) for p in range(4)}
    assert got == {}  # committed past every record of c2's old partitions


async def test_uncommitted_records_are_read_again_by_the_next_member() -> None:
    broker = MemoryBroker(default_partitions=1)
    broker.append("t", None, b"x", None, None, None)
    c1 = MemoryConsumer(broker, "g", Recorder())
    c1.subscribe(["t"])
    await c1.start()
    assert len((await c1.getmany(0.1, 10))[TP("t", 0)]) == 1
    await c1.stop()  # never committed
    c2 = MemoryConsumer(broker, "g", Recorder())
    c2.subscribe(["t"])
    await c2.start()
    assert [m.value for m in (await c2.getmany(0.1, 10))[TP("t", 0)]] == [b"x"]


async def test_getmany_waits_for_new_records() -> None:
    import asyncio

    broker = MemoryBroker(default_partitions=1)
    consumer = MemoryConsumer(broker, "g", Recorder())
    consumer.subscribe(["t"])
    await consumer.start()
    assert await consumer.getmany(0.01, 10) == {}
    asyncio.get_running_loop().call_later(0.05, broker.append, "t", None, b"late", 0, None, None)
    got = await consumer.getmany(2.0, 10)
    assert [m.value for m in got[TP("t", 0)]] == [b"late"]


async def test_latest_offset_reset_skips_existing_records() -> None:
    broker = MemoryBroker(default_partitions=1)
    broker.append("t", None, b"old", None, None, None)
    consumer = MemoryConsumer(broker, "g", Recorder(), auto_offset_reset="latest")
    consumer.subscribe(["t"])
    await consumer.start()
    assert await consumer.getmany(0.01, 10) == {}
    broker.append("t", None, b"new", None, None, None)
    assert [m.value for m in (await consumer.getmany(0.5, 10))[TP("t", 0)]] == [b"new"]


def test_named_brokers_are_shared_and_plain_memory_is_private() -> None:
    from faust.transport.memory import MemoryTransport

    class FakeApp:
        class conf:
            topic_partitions = 1
            consumer_auto_offset_reset = "earliest"

    a = MemoryTransport(["memory://shared-test"], FakeApp())
    b = MemoryTransport(["memory://shared-test"], FakeApp())
    c = MemoryTransport(["memory://"], FakeApp())
    d = MemoryTransport(["memory://"], FakeApp())
    assert a.broker is b.broker
    assert c.broker is not d.broker


async def test_deleted_topic_is_gone_with_its_records_offsets_and_assignment() -> None:
    broker = MemoryBroker(default_partitions=2)
    broker.declare(TopicSpec("doomed", partitions=2))
    broker.append("doomed", None, b"x", 0, None, None)
    broker.declare(TopicSpec("kept", partitions=1))
    listener = Recorder()
    consumer = MemoryConsumer(broker, "g", listener)
    consumer.subscribe(["doomed", "kept"])
    await consumer.start()
    await consumer.getmany(0.1, 10)
    await consumer.commit({TP("doomed", 0): 1})
    assert listener.assigned == {TP("doomed", 0), TP("doomed", 1), TP("kept", 0)}

    broker.delete("doomed")
    broker.delete("doomed")  # deleting what does not exist is no error
    assert "doomed" not in broker.logs and "doomed" not in broker.specs
    assert await consumer.committed(TP("doomed", 0)) is None
    await consumer.getmany(0.1, 10)
    assert listener.assigned == {TP("kept", 0)}  # still subscribed, nothing to read
    assert consumer.assignment() == {TP("kept", 0)}
    await consumer.stop()


async def _backlogged(partitions: int, backlog: dict[int, int]) -> MemoryConsumer:
    broker = MemoryBroker(default_partitions=partitions)
    for partition, count in backlog.items():
        for i in range(count):
            broker.append("t", None, b"%d" % i, partition, None, None)
    consumer = MemoryConsumer(broker, "g", Recorder())
    consumer.subscribe(["t"])
    await consumer.start()
    return consumer


async def test_partitions_with_a_backlog_take_turns() -> None:
    consumer = await _backlogged(3, {0: 3000, 1: 3000, 2: 3000})
    batches = []
    while batch := await consumer.getmany(0.0, 2000):
        batches.append({tp.partition: [m.offset for m in ms] for tp, ms in batch.items()})
    # Each busy partition is served within the first three batches: none waits for
    # another's whole backlog (a fixed order would serve the last one at batch 3 or 4).
    first_batch = {p: min(i for i, b in enumerate(batches) if p in b) for p in range(3)}
    assert max(first_batch.values()) < 3, batches
    offsets: dict[int, list[int]] = {0: [], 1: [], 2: []}
    for batch in batches:
        assert sum(map(len, batch.values())) <= 2000
        for partition, got in batch.items():
            offsets[partition].extend(got)
    assert offsets == {p: list(range(3000)) for p in range(3)}


async def test_partitions_left_out_of_a_full_batch_come_first_next_time() -> None:
    consumer = await _backlogged(10, {p: 1000 for p in range(10)})
    served: list[set[int]] = []
    for _ in range(10):
        batch = await consumer.getmany(0.0, 600)
        assert sum(len(ms) for ms in batch.values()) == 600
        served.append({tp.partition for tp in batch})
    # One partition a batch, in rotation: each of the ten within ten batches.
    assert all(len(partitions) == 1 for partitions in served)
    assert set().union(*served) == set(range(10))


async def test_a_lone_backlog_fills_the_whole_batch() -> None:
    consumer = await _backlogged(2, {0: 3000})
    batch = await consumer.getmany(0.0, 2000)
    assert [len(ms) for ms in batch.values()] == [2000]


async def test_routing_names_each_members_url_and_is_empty_while_rebalancing() -> None:
    broker = MemoryBroker(default_partitions=4)
    c1 = MemoryConsumer(broker, "g", Recorder(), url="http://w1:6066")
    c2 = MemoryConsumer(broker, "g", Recorder(), url="http://w2:6066")
    other = MemoryConsumer(broker, "other-group", Recorder(), url="http://w3:6066")
    for consumer in (c1, c2, other):
        consumer.subscribe(["t"])
        await consumer.start()
    assert c1.routing() == {}  # neither has taken its assignment yet
    for consumer in (c1, c2, other):
        await consumer.getmany(0, 10)
    routing = c1.routing()
    assert routing == c2.routing()
    assert routing == {
        "http://w1:6066": frozenset(c1.assignment()),
        "http://w2:6066": frozenset(c2.assignment()),
    }
    assert routing["http://w1:6066"] | routing["http://w2:6066"] == {TP("t", p) for p in range(4)}
    await c2.stop()  # c1's new assignment is pending until its next fetch
    assert c1.routing() == {}
    await c1.getmany(0, 10)
    assert c1.routing() == {"http://w1:6066": frozenset(TP("t", p) for p in range(4))}


async def test_a_topic_sent_to_before_its_declaration_gets_the_declared_partitions() -> None:
    """As on Kafka: the app's declaration, not the default partition count."""
    app = faust.App(f"early-send-{id(object())}", topic_partitions=4)
    topic = app.topic("declared-later", value_type=int, partitions=1)
    await topic.send(value=1)
    assert len(app.transport.broker.logs["declared-later"]) == 1
    await topic.declare()  # no mismatch
    await app.topic("undeclared").send(value=b"x")
    assert len(app.transport.broker.logs["undeclared"]) == 4
    await app.release_clients()
