"""Apps on real Kafka: send, consume in order, ask, declare topics, commit, fail clearly."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

import faust
from faust.exceptions import ImproperlyConfigured, PartitionCountMismatch
from faust.transport.base import TP, TopicSpec
from faust.transport.kafka.consumer import PARTITION_SHARE
from faust.transport.partitioner import partition_for_key
from tests.conftest import eventually

PARTITIONS = 4
RECORDS = 1000
KEYS = 20
# Joining a consumer group and a rebalance take a few seconds on a busy 2-core machine.
WAIT = 60.0


class Item(faust.Record, serializer="json"):
    key: str
    seq: int


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


AppFactory = Callable[..., faust.App]


@pytest.fixture
async def kafka_app(kafka_bootstrap: str) -> AsyncIterator[AppFactory]:
    """Make apps on the test Kafka (4 partitions per topic); stops them after the test."""
    made: list[faust.App] = []

    def make(app_id: str | None = None, **options: Any) -> faust.App:
        options.setdefault("broker", f"kafka://{kafka_bootstrap}")
        options.setdefault("topic_partitions", PARTITIONS)
        app = faust.App(app_id or unique("it-app"), **options)
        made.append(app)
        return app

    yield make
    for app in made:
        if app.started:
            await app.stop()


async def test_agent_gets_keyed_records_in_partition_order(kafka_app: AppFactory) -> None:
    app = kafka_app()
    topic = app.topic(unique("it-orders"), key_type=str, value_type=Item)
    seen: dict[int, list[tuple[int, int, bytes | None, float]]] = defaultdict(list)

    @app.agent(topic)
    async def collect(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            seen[message.partition].append(
                (message.offset, event.value.seq, message.key, message.timestamp)
            )

    await app.start()
    sent_at = time.time()
    acks = []
    for seq in range(RECORDS):
        key = f"user-{seq % KEYS}"
        acks.append(await topic.send(key=key, value=Item(key=key, seq=seq)))

    # Acks say where each record went: the Java client's partition for its key.
    for seq, meta in enumerate(acks):
        assert meta.topic == topic.get_topic_name()
        assert meta.partition == partition_for_key(f"user-{seq % KEYS}".encode(), PARTITIONS)
        assert sent_at - 1 <= meta.timestamp <= time.time() + 1

    await eventually(lambda: sum(map(len, seen.values())) >= RECORDS, timeout=WAIT)
    assert sum(map(len, seen.values())) == RECORDS
    assert len(seen) > 1, "20 keys should use more than one of 4 partitions"
    expected = defaultdict(list)
    for seq, meta in enumerate(acks):
        expected[meta.partition].append((meta.offset, seq))
    for partition, events in seen.items():
        # Each partition arrives whole and in the order it was sent.
        assert [(offset, seq) for offset, seq, _, _ in events] == expected[partition]
        for _, _, key, timestamp in events:
            assert key is not None
            assert partition_for_key(key, PARTITIONS) == partition
            assert sent_at - 1 <= timestamp <= time.time() + 1
    # Each fetched timestamp is the one its send reported.
    for partition, events in seen.items():
        assert [ts for _, _, _, ts in events] == [acks[seq].timestamp for _, seq, _, _ in events], (
            partition
        )


async def test_send_soon_batches_keep_order_metadata_and_headers(kafka_app: AppFactory) -> None:
    """send_soon appends to per-partition batches: every ack says where its record is."""
    app = kafka_app(producer_max_batch_size=4096)  # several batches per partition
    topic = app.topic(unique("it-batched"), key_type=str, value_type=str)
    await topic.declare()
    await app.start()
    sent_at = time.time()
    futures = [
        topic.send_soon(
            key=f"k{i % 7}" if i % 5 else None,
            value=f"v{i}-" + "x" * 100,
            headers={"seq": str(i).encode()},
            timestamp=None if i % 3 else 1_700_000_000 + i,
        )
        for i in range(3000)
    ]
    acks = await asyncio.gather(*futures)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=app.transport.client_options()["bootstrap_servers"],
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic.get_topic_name(), p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        stored: dict[tuple[int, int], Any] = {}
        while len(stored) < len(acks):
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for r in records:
                    stored[r.partition, r.offset] = r
    finally:
        await consumer.stop()
    assert len(stored) == len(acks)
    by_partition: dict[int, list[int]] = defaultdict(list)
    for i, meta in enumerate(acks):
        record = stored[meta.partition, meta.offset]
        assert record.value == f'"v{i}-{"x" * 100}"'.encode()
        assert dict(record.headers) == {"seq": str(i).encode()}
        if i % 5:
            key = f"k{i % 7}".encode()
            assert record.key == key
            assert meta.partition == partition_for_key(key, PARTITIONS)
        else:
            assert record.key is None
        if i % 3:
            assert sent_at - 1 <= meta.timestamp <= time.time() + 1
        else:
            assert meta.timestamp == 1_700_000_000 + i
        assert record.timestamp == round(meta.timestamp * 1000)
        by_partition[meta.partition].append(meta.offset)
    # Records without a key are spread over the partitions; each partition keeps send order.
    assert len(by_partition) == PARTITIONS
    for offsets in by_partition.values():
        assert offsets == sorted(offsets)
    assert len(futures) == 3000


async def test_bad_sends_fail_clearly_and_spare_the_rest(kafka_app: AppFactory) -> None:
    app = kafka_app(producer_max_request_size=10_000)
    topic = app.topic(unique("it-bad-sends"), key_type=str, value_type=str)
    await topic.declare()
    await app.start()
    good = topic.send_soon(key="a", value="fine")
    wrong_partition = topic.send_soon(key="a", value="x", partition=PARTITIONS)
    too_large = topic.send_soon(key="a", value="x" * 20_000)
    also_good = topic.send_soon(key="b", value="fine too")
    with pytest.raises(ValueError, match=r"partition 4: the topic has 4 partition\(s\)"):
        await wrong_partition
    with pytest.raises(ValueError, match="producer_max_request_size"):
        await too_large
    assert (await good).offset >= 0
    assert (await also_good).offset >= 0
    with pytest.raises(ValueError, match="needs a key or a value"):
        producer = await app.maybe_start_producer()
        await await_ack(producer.send(topic.get_topic_name(), None, None))
    with pytest.raises(ValueError, match=f"topic {topic.get_topic_name()!r} partition 9"):
        await topic.send(key="a", value="x", partition=9)


async def test_send_callbacks_get_the_stored_offset_or_the_error(kafka_app: AppFactory) -> None:
    """Each callback is called once, with the offset Kafka stored its record at (read
    back with a consumer), or with the error; one that raises spares the other records."""
    app = kafka_app()
    topic = app.topic(unique("it-callbacks"), key_type=str, value_type=str)
    await topic.declare()
    await app.start()
    calls: dict[str, list[asyncio.Future[Any]]] = defaultdict(list)

    def on_sent(name: str) -> Callable[[asyncio.Future[Any]], None]:
        def callback(fut: asyncio.Future[Any]) -> None:
            calls[name].append(fut)
            if name == "raises":
                raise RuntimeError("a bug in the callback")

        return callback

    awaited = await topic.send(key="a", value="awaited", partition=1, callback=on_sent("awaited"))
    soon = [
        topic.send_soon(key="a", value=name, partition=1, callback=on_sent(name))
        for name in ("soon-1", "raises", "soon-2")
    ]
    missing = topic.send_soon(key="a", value="x", partition=PARTITIONS, callback=on_sent("bad"))
    metas = [awaited, *await asyncio.gather(*soon)]
    with pytest.raises(ValueError, match=f"partition {PARTITIONS}"):
        await missing
    assert {name: len(futs) for name, futs in calls.items()} == {
        "awaited": 1,
        "soon-1": 1,
        "raises": 1,
        "soon-2": 1,
        "bad": 1,
    }
    assert calls["bad"][0].exception() is missing.exception()
    called_back = [calls[name][0].result() for name in ("awaited", "soon-1", "raises", "soon-2")]
    assert called_back == metas
    consumer = AIOKafkaConsumer(
        bootstrap_servers=app.transport.client_options()["bootstrap_servers"],
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic.get_topic_name(), 1)])
        stored: dict[int, bytes] = {}
        while len(stored) < len(metas):
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                stored.update((r.offset, r.value) for r in records)
    finally:
        await consumer.stop()
    for meta, value in zip(metas, ["awaited", "soon-1", "raises", "soon-2"], strict=True):
        assert (meta.topic, meta.partition) == (topic.get_topic_name(), 1)
        assert stored[meta.offset] == f'"{value}"'.encode()


async def test_a_producer_backlog_holds_back_fetching(
    kafka_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An agent sending faster than Kafka acks: buffered records stay bounded, none lost."""
    monkeypatch.setattr(faust.transport.producer, "BUFFER_HIGH", 300)
    monkeypatch.setattr(faust.transport.producer, "DRAIN_CHUNK", 100)
    app = kafka_app(stream_buffer_maxsize=100, broker_max_poll_records=50)
    source = app.topic(unique("it-fanout-in"), key_type=str, value_type=int)
    sink = app.topic(unique("it-fanout-out"), key_type=str, value_type=int)
    await source.declare()
    await sink.declare()
    buffered_at_most = 0
    acked: list[Any] = []

    @app.agent(source)
    async def fan_out(stream: Any) -> None:
        nonlocal buffered_at_most
        producer = app.producer_for_send_soon()
        async for key, value in stream.items():
            for copy in range(10):
                acked.append(sink.send_soon(key=key, value=value * 10 + copy))
            buffered_at_most = max(buffered_at_most, producer.buffered)

    for i in range(2000):
        source.send_soon(key=f"k{i % 50}", value=i)
    await (await app.maybe_start_producer()).flush()
    await app.start()
    await eventually(lambda: len(acked) == 20_000, timeout=WAIT)
    metas = await asyncio.gather(*acked)
    assert len({(m.partition, m.offset) for m in metas}) == 20_000
    # The agent finishes what its queue holds (100 events, 10 records each) after a
    # fetch stopped: the buffer stays near BUFFER_HIGH instead of growing to 20,000.
    assert 300 <= buffered_at_most <= 300 + 100 * 10 + 50 * 10


@pytest.mark.parametrize("direct", [True, False], ids=["messages-in-fetcher", "copied"])
async def test_fetched_records_arrive_whole_either_way(
    kafka_app: AppFactory, monkeypatch: pytest.MonkeyPatch, direct: bool
) -> None:
    """Messages built inside aiokafka's fetcher, or copied from its ConsumerRecords."""
    import faust.transport.kafka.consumer as kafka_consumer

    if not direct:
        monkeypatch.setattr(kafka_consumer, "supports", lambda consumer: False)
    app = kafka_app()
    topic = app.topic(unique("it-fetched"), key_type=str, value_type=str)
    await topic.declare()
    seen: list[Any] = []

    @app.agent(topic)
    async def collect(stream: Any) -> None:
        async for event in stream.events():
            seen.append(event)

    acks = await asyncio.gather(
        *(
            topic.send_soon(
                key=f"k{i % 5}", value=f"v{i}", headers={"n": str(i)}, timestamp=1.7e9 + i
            )
            for i in range(500)
        )
    )
    await app.start()
    # With the aiokafka this is tested with, the fetcher is the one fetching.py expects.
    assert app.consumer is not None
    assert app.consumer.driver._direct is direct, "aiokafka's fetcher changed"
    await eventually(lambda: len(seen) >= 500, timeout=WAIT)
    where = {(m.partition, m.offset): i for i, m in enumerate(acks)}
    assert len(seen) == 500
    for event in seen:
        message = event.message
        assert type(message) is faust.transport.base.Message
        i = where[message.partition, message.offset]
        assert (event.key, event.value) == (f"k{i % 5}", f"v{i}")
        assert event.headers == {"n": str(i).encode()}
        assert message.timestamp == 1.7e9 + i
        assert message.topic == topic.get_topic_name()


def longest_run(partitions: list[int]) -> int:
    """The most events of one partition processed one after another."""
    longest = run = 0
    for i, partition in enumerate(partitions):
        run = run + 1 if i and partitions[i - 1] == partition else 1
        longest = max(longest, run)
    return longest


async def test_partitions_with_a_backlog_take_turns(kafka_app: AppFactory) -> None:
    """A worker behind on two partitions: neither waits for the other's whole backlog.

    One fetch of the default 1 MB holds each partition's 5,000 records; handed out a
    partition at a time, the second one's first event would wait 5,000 events (10 s at
    2 ms each).
    """
    backlog = 5000
    app = kafka_app(topic_partitions=2)
    topic = app.topic(unique("it-fair"), key_type=str, value_type=str)
    await topic.declare()
    order: list[int] = []
    wanted = 3000

    @app.agent(topic)
    async def slow(stream: Any) -> None:
        async for event in stream.events():
            if len(order) < wanted:
                order.append(event.message.partition)
                await asyncio.sleep(0.002)  # a worker that is behind

    await asyncio.gather(
        *(topic.send_soon(key=f"k{i}", value="x" * 60, partition=i % 2) for i in range(2 * backlog))
    )
    await app.start()
    await eventually(lambda: len(order) >= wanted, timeout=WAIT)
    first_of = {p: order.index(p) if p in order else None for p in (0, 1)}
    assert set(order[: 2 * PARTITION_SHARE]) == {0, 1}, f"first event of each: {first_of}"
    # Turns of one share each (PARTITION_SHARE); two allow for a partition's next fetch
    # still on its way while the other's records are at hand.
    assert longest_run(order) <= 2 * PARTITION_SHARE, longest_run(order)


async def await_ack(sending: Any) -> Any:
    """Await a producer send: queueing the record, then its ack."""
    return await (await sending)


async def _topics_now(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def test_ask_returns_the_agent_reply_on_a_topic_that_lives_until_stop(
    kafka_app: AppFactory, kafka_bootstrap: str
) -> None:
    app = kafka_app(reply_expires=120.0)
    topic = app.topic(unique("it-double"), value_type=Item)

    @app.agent(topic)
    async def double(stream: Any) -> AsyncIterator[int]:
        async for item in stream:
            yield item.seq * 2

    await app.start()
    await double.send(value=Item(key="a", seq=0))
    # A worker that has not asked has no reply topic...
    prefix = f"{app.conf.id}-reply-"
    assert [t for t in await _topics_now(kafka_bootstrap) if t.startswith(prefix)] == []

    assert await double.ask(Item(key="a", seq=21), timeout=WAIT) == 42
    replies = await asyncio.gather(
        *(double.ask(Item(key=f"k{i}", seq=i), timeout=WAIT) for i in range(10))
    )
    assert replies == [i * 2 for i in range(10)]

    # ...the first ask made it, with replies expiring, and segments that close in time
    # for the expiry to apply...
    reply_topic = app.conf.reply_to
    assert reply_topic in await _topics_now(kafka_bootstrap)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, reply_topic)]
        )
        ((code, _msg, _type, _name, entries),) = response.resources
        config = {entry[0]: entry[1] for entry in entries}
    finally:
        await admin.close()
    assert not code
    assert config["retention.ms"] == config["segment.ms"] == "120000"

    # ...and a clean stop deletes it.
    await app.stop()
    deadline = time.monotonic() + WAIT
    while reply_topic in await _topics_now(kafka_bootstrap):  # deletion is asynchronous
        assert time.monotonic() < deadline, f"{reply_topic} still exists after stop"
        await asyncio.sleep(0.2)


async def test_declare_creates_topics_and_rejects_another_partition_count(
    kafka_app: AppFactory,
) -> None:
    app = kafka_app()
    name = unique("it-declared")
    await app.topic(name, partitions=4).declare()
    assert await app.transport.partition_count(name) == 4
    await app.topic(name, partitions=4).declare()  # same count: nothing to do

    with pytest.raises(PartitionCountMismatch) as info:
        await app.topic(name, partitions=8).declare()
    message = str(info.value)
    assert name in message and "4 partitions" in message and "declares 8" in message
    assert "partitions=4" in message  # what to do
    assert "\n" not in message

    # Asking about a topic does not create it (the test broker auto-creates on metadata).
    missing = unique("it-missing")
    assert await app.transport.partition_count(missing) is None
    assert await app.transport.partition_count(missing) is None
    await app.stop()


async def test_declared_topic_gets_compaction_and_retention(
    kafka_app: AppFactory, kafka_bootstrap: str
) -> None:
    app = kafka_app()
    compacted, both = unique("it-compacted"), unique("it-compact-delete")
    await app.transport.declare_topic(TopicSpec(compacted, 2, compacting=True, deleting=False))
    await app.transport.declare_topic(
        TopicSpec(both, 1, compacting=True, deleting=True, retention=3600.0)
    )
    await app.stop()

    configs: dict[str, dict[str, str]] = {}
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        # A broker may answer UNKNOWN_TOPIC for a moment after the controller created it.
        deadline = time.monotonic() + WAIT
        while len(configs) < 2 and time.monotonic() < deadline:
            responses = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, name) for name in (compacted, both)]
            )
            for response in responses:
                for code, _msg, _type, name, entries in response.resources:
                    if not code:
                        configs[name] = {entry[0]: entry[1] for entry in entries}
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
    assert configs[compacted]["cleanup.policy"] == "compact"
    assert configs[both]["cleanup.policy"] == "compact,delete"
    assert configs[both]["retention.ms"] == "3600000"


async def test_processed_offsets_are_committed_for_the_group(
    kafka_app: AppFactory, kafka_bootstrap: str
) -> None:
    app_id = unique("it-commit")
    app = kafka_app(app_id)
    topic = app.topic(unique("it-events"), key_type=str, value_type=Item)
    processed: list[int] = []

    @app.agent(topic)
    async def work(stream: Any) -> None:
        async for item in stream:
            processed.append(item.seq)

    await app.start()
    per_partition: dict[int, int] = defaultdict(int)
    for seq in range(200):
        key = f"user-{seq % KEYS}"
        meta = await topic.send(key=key, value=Item(key=key, seq=seq))
        per_partition[meta.partition] += 1
    await eventually(lambda: len(processed) == 200, timeout=WAIT)
    await app.stop()  # commits what was processed and leaves the group

    # The group's committed offset of each partition is one past its last record.
    name = topic.get_topic_name()
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=app.conf.group_id)
    await consumer.start()
    try:
        for partition in range(PARTITIONS):
            committed = await consumer.committed(TopicPartition(name, partition))
            assert (committed or 0) == per_partition[partition], partition
    finally:
        await consumer.stop()

    # A new worker of the same app starts after the processed events.
    again = kafka_app(app_id)
    again_topic = again.topic(name, key_type=str, value_type=Item)
    later: list[int] = []

    @again.agent(again_topic)
    async def work_again(stream: Any) -> None:
        async for item in stream:
            later.append(item.seq)

    await again.start()
    for seq in range(200, 210):
        await again_topic.send(key="late", value=Item(key="late", seq=seq))
    await eventually(lambda: len(later) >= 10, timeout=WAIT)
    await asyncio.sleep(0.5)  # anything re-delivered would have arrived by now
    assert later == list(range(200, 210))


@pytest.mark.parametrize("how", ["send", "send_soon"])
async def test_an_event_whose_send_failed_is_never_committed(
    kafka_app: AppFactory, kafka_bootstrap: str, how: str
) -> None:
    """A failed send keeps its event unprocessed: the commit stops before it."""
    app = kafka_app(unique("it-failed-send"))
    topic = app.topic(unique("it-events"), key_type=str, value_type=Item, partitions=1)
    sink = app.topic(unique("it-sink"), key_type=str, value_type=int, partitions=1)
    await topic.declare()
    await sink.declare()
    processed: list[int] = []
    failures: list[BaseException] = []

    @app.agent(topic)
    async def forward(stream: Any) -> None:
        async for item in stream:
            # Event 5 sends to a partition the sink does not have.
            partition = 7 if item.seq == 5 else 0
            try:
                if how == "send":
                    await sink.send(key=item.key, value=item.seq, partition=partition)
                else:
                    await sink.send_soon(key=item.key, value=item.seq, partition=partition)
            except ValueError as exc:
                failures.append(exc)
            processed.append(item.seq)

    await app.start()
    for seq in range(10):
        await topic.send(key="k", value=Item(key="k", seq=seq))
    await eventually(lambda: len(processed) == 10, timeout=WAIT)
    assert len(failures) == 1 and "partition 7" in str(failures[0])
    await app.stop()  # commits what was processed

    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=app.conf.group_id)
    await consumer.start()
    try:
        committed = await consumer.committed(TopicPartition(topic.get_topic_name(), 0))
    finally:
        await consumer.stop()
    assert committed == 5  # events 0-4 done; 5 and after wait behind the failed one


async def test_one_worker_of_a_group_is_leader(kafka_app: AppFactory) -> None:
    app_id = unique("it-leader")
    first, second = kafka_app(app_id), kafka_app(app_id)
    await first.start()
    assert first.is_leader()
    await second.start()
    # The second member's join makes the first rejoin; then exactly one leads.
    await eventually(lambda: [first.is_leader(), second.is_leader()].count(True) == 1, WAIT)
    leader, follower = (first, second) if first.is_leader() else (second, first)
    await leader.stop()
    await eventually(follower.is_leader, timeout=WAIT)


async def test_unreachable_broker_fails_within_the_connect_timeout() -> None:
    app = faust.App(unique("it-nobroker"), broker="kafka://127.0.0.1:1", broker_connect_timeout=1.5)
    topic = app.topic("nowhere")

    @app.agent(topic)
    async def idle(stream: Any) -> None:
        async for _ in stream:
            pass

    started = time.monotonic()
    with pytest.raises(ImproperlyConfigured) as info:
        await app.start()
    elapsed = time.monotonic() - started
    message = str(info.value)
    assert "kafka://127.0.0.1:1" in message
    assert "after 1.5 s" in message
    assert "broker setting" in message
    assert "\n" not in message
    assert 1.5 <= elapsed < 10
    await app.stop()  # nothing started, nothing hangs


def test_broker_urls_become_bootstrap_servers() -> None:
    app = faust.App("it-urls", broker="kafka://k1:9092;kafka://k2;kafka://")
    assert app.transport.bootstrap_servers == "k1:9092,k2:9092,localhost:9092"
    app = faust.App("it-urls", broker="aiokafka://k3:9093")
    assert app.transport.bootstrap_servers == "k3:9093"
    app = faust.App("it-urls", url="kafka://localhost")
    assert app.transport.bootstrap_servers == "localhost:9092"


async def test_read_partition_outside_the_group(kafka_app: AppFactory) -> None:
    app = kafka_app()
    topic = app.topic(unique("it-changelog"), partitions=2, key_type=str, value_type=str)
    await topic.declare()
    for i in range(50):
        await topic.send(key="k", value=f"v{i}", partition=1)
    transport = app.transport
    tp = TP(topic.get_topic_name(), 1)
    assert await transport.end_offset(tp) == 50
    assert await transport.end_offset(TP(tp.topic, 0)) == 0

    async def read(start: int, end: int) -> list[tuple[int, bytes | None]]:
        got = []
        async for batch in transport.read_partition(tp, start, end):
            got.extend((m.offset, m.value) for m in batch)
        return got

    assert await read(10, 50) == [(i, f'"v{i}"'.encode()) for i in range(10, 50)]
    assert [offset for offset, _ in await read(0, 5)] == [0, 1, 2, 3, 4]  # reused reader
    assert await read(7, 7) == []
    # A reader left midway is dropped; the next read starts where it is told.
    async for batch in transport.read_partition(tp, 0, 50):
        assert batch[0].offset == 0
        break
    assert [offset for offset, _ in await read(45, 50)] == [45, 46, 47, 48, 49]
    await app.stop()


async def test_table_recovers_from_its_kafka_changelog(kafka_app: AppFactory) -> None:
    app_id = unique("it-totals")
    source = unique("it-amounts")

    def build() -> tuple[faust.App, Any, Any, list[int]]:
        app = kafka_app(app_id, broker_commit_interval=0.1)
        topic = app.topic(source, key_type=str, value_type=int)
        totals = app.Table("totals", default=int)
        seen: list[int] = []

        @app.agent(topic)
        async def add(stream: Any) -> None:
            async for key, amount in stream.items():
                totals[key] += amount
                seen.append(amount)

        return app, topic, totals, seen

    first, topic, totals, seen = build()
    await first.start()
    for i in range(100):
        await topic.send(key=f"acct-{i % 5}", value=i)
    await eventually(lambda: len(seen) == 100, timeout=WAIT)
    expected = {f"acct-{k}": sum(range(k, 100, 5)) for k in range(5)}
    assert totals.as_dict() == expected
    await first.stop()

    # A new worker reads the state back from the changelog topic on Kafka.
    second, topic, totals, seen = build()
    await second.start()
    await eventually(lambda: totals.as_dict() == expected, timeout=WAIT)
    assert second.tables.records_restored >= 5
    await topic.send(key="acct-0", value=1000)
    await eventually(lambda: totals["acct-0"] == expected["acct-0"] + 1000, timeout=WAIT)
    assert seen == [1000]  # the first 100 were committed: not processed again
