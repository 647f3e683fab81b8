"""Tables on the embedded broker: the dict API, the changelog, recovery."""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path

import pytest

import faust
from faust.exceptions import ImproperlyConfigured, PartitionCountMismatch
from tests.conftest import eventually

_ids = itertools.count()


class Word(faust.Record):
    text: str


def _shared_app(broker: str, app_id: str, **options) -> faust.App:  # type: ignore[no-untyped-def]
    return faust.App(
        app_id, broker=broker, topic_partitions=4, broker_commit_interval=0.05, **options
    )


async def test_word_count_through_group_by(app: faust.App) -> None:
    words = app.topic("words", value_type=Word, partitions=4)
    counts = app.Table("word-counts", default=int, partitions=4)

    @app.agent(words)
    async def count(stream):
        async for word in stream.group_by(Word.text):
            counts[word.text] += 1

    await app.start()
    text = "the quick fox and the lazy dog and the end".split()
    for i, w in enumerate(text):
        await words.send(value=Word(text=w), partition=i % 4)
    await eventually(lambda: sum(counts.values()) == len(text))
    assert counts["the"] == 3 and counts["and"] == 2 and counts["fox"] == 1
    assert counts["absent"] == 0 and "absent" not in counts
    assert dict(counts.items()) == {w: text.count(w) for w in set(text)}


async def test_dict_api(app: faust.App) -> None:
    topic = app.topic("ops", key_type=str, value_type=str, partitions=1)
    table = app.Table("kv", partitions=1)
    done: list[str] = []

    @app.agent(topic)
    async def ops(stream):
        async for key, op in stream.items():
            if op == "set":
                table[key] = key.upper()
            elif op == "del":
                del table[key]
            elif op == "pop":
                table.pop(key)
            done.append(op)

    await app.start()
    for key, op in [("a", "set"), ("b", "set"), ("c", "set"), ("b", "del"), ("c", "pop")]:
        await topic.send(key=key, value=op)
    await eventually(lambda: len(done) == 5)
    assert table["a"] == "A" and table.get("b") is None and table.get("b", 1) == 1
    assert list(table.keys()) == ["a"] and list(table.values()) == ["A"] and len(table) == 1
    with pytest.raises(KeyError):
        table["missing"]
    assert "kv" in app.tables and app.tables["kv"] is table
    assert "'a'" in table.as_ansitable() and "'A'" in table.as_ansitable()


async def test_writing_outside_a_stream_is_a_clear_error(app: faust.App) -> None:
    table = app.Table("outside")
    with pytest.raises(ImproperlyConfigured, match="outside of a stream.*use_partitioner=True"):
        table["k"] = 1


async def test_use_partitioner_writes_outside_a_stream(app: faust.App) -> None:
    table = app.Table("by-key", use_partitioner=True, partitions=4)
    await app.start()
    table["k"] = 1
    assert table["k"] == 1
    await table.flush()
    log = app.transport.broker.logs[f"{app.conf.id}-by-key-changelog"]
    assert sum(len(p) for p in log) == 1


async def test_source_with_other_partition_count_names_both_counts(app: faust.App) -> None:
    topic = app.topic("src", value_type=int, partitions=2)
    table = app.Table("mismatch", default=int, partitions=4)
    crashed: list[str] = []
    app.on_crash = crashed.append

    @app.agent(topic)
    async def write(stream):
        async for value in stream:
            table[value] += 1

    await app.start()
    await topic.send(value=1)
    await eventually(lambda: bool(crashed))
    assert "Table 'mismatch' has 4 partitions" in crashed[0] and "with 2" in crashed[0]
    assert isinstance(PartitionCountMismatch("x"), ImproperlyConfigured)


async def test_a_global_table_takes_writes_from_a_topic_of_any_partition_count(
    app: faust.App,
) -> None:
    # As Faust's fastapi_project example does: GlobalTable(partitions=1) written from a
    # topic of 8 partitions. Every worker reads every partition of a global table, so
    # each key goes to its own partition.
    topic = app.topic("greetings", value_type=str, partitions=8)
    table = app.GlobalTable("greeted", default=dict, partitions=1)
    seen: list[str] = []

    @app.agent(topic)
    async def greet(stream):
        async for greeting in stream:
            table[greeting] = {"hello world"}
            seen.append(greeting)

    await app.start()
    for i in range(8):
        await topic.send(key=str(i), value=f"g{i}")
    await eventually(lambda: len(seen) == 8)
    assert dict(table.items()) == {f"g{i}": {"hello world"} for i in range(8)}
    await table.flush()
    (log,) = app.transport.broker.logs[f"{app.conf.id}-greeted-changelog"]
    assert sorted(r[1] for r in log) == sorted(f'"g{i}"'.encode() for i in range(8))


async def test_changes_to_a_hot_key_coalesce_into_one_changelog_record(app: faust.App) -> None:
    topic = app.topic("hits", value_type=str, partitions=1)
    table = app.Table("hits", default=int, partitions=1)
    seen = 0

    @app.agent(topic)
    async def hits(stream):
        nonlocal seen
        async for page in stream:
            table[page] += 1
            seen += 1

    await app.start()
    for _ in range(500):
        await topic.send(value="home")
    await eventually(lambda: seen == 500)
    await app.consumer.commit()
    changelog = app.transport.broker.logs[f"{app.conf.id}-hits-changelog"][0]
    assert len(changelog) < 10  # 500 changes, a handful of commits
    assert changelog[-1][2] == b"500"
    committed = app.transport.broker.groups[app.conf.group_id].committed
    assert committed[("hits", 0)] == 500


async def test_restart_recovers_the_table_from_its_changelog() -> None:
    broker = f"memory://tables-{uuid.uuid4().hex}"
    app_id = f"recovering-{next(_ids)}"

    def build() -> tuple[faust.App, faust.Topic, faust.Table, list[int]]:
        app = _shared_app(broker, app_id)
        topic = app.topic("amounts", key_type=str, value_type=int, partitions=4)
        totals = app.Table("totals", default=int, partitions=4)
        seen: list[int] = []

        @app.agent(topic)
        async def add(stream):
            async for key, amount in stream.items():
                totals[key] += amount
                seen.append(amount)

        return app, topic, totals, seen

    first, topic, totals, seen = build()
    await first.start()
    for i in range(100):
        await topic.send(key=f"acct-{i % 5}", value=i)
    await eventually(lambda: len(seen) == 100)
    expected = {f"acct-{k}": sum(range(k, 100, 5)) for k in range(5)}
    assert totals.as_dict() == expected
    await first.stop()

    second, topic, totals, seen = build()
    recovered: list[bool] = []
    totals.on_recover(lambda: recovered.append(True))
    await second.start()
    await eventually(lambda: totals.as_dict() == expected)
    assert recovered
    assert second.tables.records_restored >= 5
    await topic.send(key="acct-0", value=1000)
    await eventually(lambda: totals["acct-0"] == expected["acct-0"] + 1000 if seen else False)
    assert seen == [1000]  # the first 100 were committed: not processed again
    await second.stop()


async def test_partitions_move_between_two_workers_with_their_state() -> None:
    broker = f"memory://tables-{uuid.uuid4().hex}"
    app_id = f"moving-{next(_ids)}"

    def build() -> tuple[faust.App, faust.Topic, faust.Table]:
        app = _shared_app(broker, app_id)
        topic = app.topic("events", key_type=str, value_type=int, partitions=4)
        counts = app.Table("counts", default=int, partitions=4)

        @app.agent(topic)
        async def count(stream):
            async for key, _ in stream.items():
                counts[key] += 1

        return app, topic, counts

    one, topic, counts_one = build()
    await one.start()
    for i in range(40):
        await topic.send(key=f"k{i % 8}", value=i)
    await eventually(lambda: sum(counts_one.values()) == 40)
    two, _, counts_two = build()
    await two.start()  # takes half of the partitions, restoring their state
    await eventually(lambda: bool(counts_two.active_partitions))
    assert counts_one.active_partitions.isdisjoint(counts_two.active_partitions)
    for i in range(40):
        await topic.send(key=f"k{i % 8}", value=i)

    def merged() -> dict[str, int]:
        result = {}
        for table in (counts_one, counts_two):
            for p in table.active_partitions:
                result.update(dict(table.store.items(p)))
        return result

    await eventually(lambda: merged() == {f"k{i}": 10 for i in range(8)})
    await two.stop()
    await one.stop()


async def test_global_table_holds_every_partition() -> None:
    broker = f"memory://tables-{uuid.uuid4().hex}"
    app_id = f"global-{next(_ids)}"

    def build() -> tuple[faust.App, faust.Topic, faust.Table]:
        app = _shared_app(broker, app_id)
        topic = app.topic("settings", key_type=str, value_type=str, partitions=4)
        table = app.GlobalTable("settings", partitions=4)

        @app.agent(topic)
        async def store(stream):
            async for key, value in stream.items():
                table[key] = value

        return app, topic, table

    writer, topic, table = build()
    await writer.start()
    for i in range(8):
        await topic.send(key=f"s{i}", value=f"v{i}")
    await eventually(lambda: len(table) == 8)
    await writer.consumer.commit()
    # A second worker of the app sees every key, whichever partitions it owns.
    reader, _, mirror = build()
    await reader.start()
    await eventually(lambda: len(mirror) == 8)
    assert mirror["s3"] == "v3"
    await topic.send(key="s9", value="v9")
    await eventually(lambda: len(table) == 9)
    await writer.consumer.commit()
    await reader.consumer.commit()
    await eventually(lambda: mirror.get("s9") == "v9")
    await reader.stop()
    await writer.stop()


async def test_set_table(app: faust.App) -> None:
    visits = app.topic("visits", key_type=str, value_type=str, partitions=1)
    visitors = app.SetTable("visitors", partitions=1)
    done = 0

    @app.agent(visits)
    async def track(stream):
        nonlocal done
        async for page, user in stream.items():
            if user.startswith("-"):
                visitors[page].discard(user[1:])
            else:
                visitors[page].add(user)
            done += 1

    await app.start()
    for page, user in [
        ("home", "ann"),
        ("home", "bob"),
        ("home", "ann"),
        ("about", "cy"),
        ("home", "-bob"),
    ]:
        await visits.send(key=page, value=user)
    await eventually(lambda: done == 5)
    assert visitors["home"] == {"ann"}
    assert "cy" in visitors["about"] and len(visitors["about"]) == 1
    assert dict(visitors.items()) == {"home": {"ann"}, "about": {"cy"}}


async def test_a_change_made_after_the_revoke_flush_does_not_survive(app: faust.App) -> None:
    from faust.stores import MISSING
    from faust.transport.base import TP

    table = app.Table("late-change", default=int, partitions=1)
    await app.start()
    await eventually(lambda: 0 in table.active_partitions)
    store = table.store
    store.set(0, "k", 1)
    table._mark_dirty(0, "k")  # as an agent would, after the revoke's flush
    app.tables.on_partitions_revoked({TP(table.changelog_topic.name, 0)})
    assert store.get(0, "k") is MISSING
    assert 0 not in store.partitions()


async def test_many_changed_keys_hold_back_fetching_until_flushed(
    app: faust.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Changed keys in memory stay near MAX_DIRTY_KEYS whatever the commit interval."""
    monkeypatch.setattr(faust.tables.base, "MAX_DIRTY_KEYS", 200)
    app.conf.broker_commit_interval = 3600.0
    app.conf.broker_commit_every = 1_000_000
    app.conf.broker_max_poll_records = 50
    app.conf.stream_buffer_maxsize = 100
    topic = app.topic("readings", key_type=str, value_type=int, partitions=2)
    table = app.Table("latest", partitions=2)
    changed_at_most = 0

    @app.agent(topic)
    async def keep(stream):
        nonlocal changed_at_most
        async for key, value in stream.items():
            table[key] = value
            changed_at_most = max(changed_at_most, sum(map(len, table._dirty.values())))

    await topic.declare()
    for i in range(3000):
        await topic.send(key=f"k{i}", value=i, partition=i % 2)
    await app.start()
    await eventually(lambda: table.changelog_records_sent == 3000, timeout=30)
    assert dict(table.items()) == {f"k{i}": i for i in range(3000)}
    # The agent may finish what was already buffered: a stream's queue and a fetch.
    assert 200 <= changed_at_most <= 200 + 100 + 50


async def test_changes_and_offsets_go_out_when_the_input_goes_quiet(app: faust.App) -> None:
    """The last events before a pause are committed (and their table changes flushed) once
    a fetch finds nothing new, not a whole broker_commit_interval later."""
    app.conf.broker_commit_interval = 3600.0
    topic = app.topic("quiet", key_type=str, value_type=int, partitions=2)
    table = app.Table("quiet-latest", partitions=2)

    @app.agent(topic)
    async def keep(stream):
        async for key, value in stream.items():
            table[key] = value

    await app.start()
    for i in range(30):
        await topic.send(key=f"k{i}", value=i, partition=i % 2)
    await eventually(lambda: table.changelog_records_sent == 30, timeout=5)
    assert app.consumer is not None
    await eventually(
        lambda: (
            {
                tp.partition: offset
                for tp, offset in app.consumer.committed.items()
                if tp.topic == topic.name
            }
            == {0: 15, 1: 15}
        ),
        timeout=5,
    )


async def test_set_table_of_str_restores_its_sets_from_the_changelog() -> None:
    """The changelog value of a SetTable is the list of its members, decoded member by
    member as value_type (str here), not as one str."""
    broker = f"memory://sets-{uuid.uuid4().hex}"
    app_id = f"sets-{next(_ids)}"
    writer = _shared_app(broker, app_id)
    people = writer.SetTable("people", value_type=str, partitions=1, use_partitioner=True)
    await writer.start()
    people["r1"].update(["ann", "bob"])
    await people.flush()
    await writer.stop()

    reader = _shared_app(broker, app_id)
    restored = reader.SetTable("people", value_type=str, partitions=1, use_partitioner=True)
    await reader.start()
    await eventually(lambda: reader.tables.records_restored == 1)
    assert restored.as_dict() == {"r1": {"ann", "bob"}}
    await reader.stop()


async def test_a_typed_table_refuses_none(app: faust.App) -> None:
    """A value_type cannot decode None back from the changelog: refused when written."""
    table = app.Table("typed", value_type=int, partitions=1, use_partitioner=True)
    with pytest.raises(TypeError, match="'typed' has value_type=<class 'int'>.*del table"):
        table["k"] = None
    assert "k" not in table


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
async def test_tuple_keys_are_tuples_again_after_a_restore(store: str, tmp_path: Path) -> None:
    """JSON gives a tuple key back as a list: unhashable, and not the key written."""
    broker = f"memory://tuples-{uuid.uuid4().hex}"
    app_id = f"tuples-{next(_ids)}"
    writer = _shared_app(broker, app_id, store=store, datadir=str(tmp_path / "a"))
    table = writer.Table("pairs", partitions=1, use_partitioner=True)
    await writer.start()
    table[("a", 1)] = "one"
    table[("b", (2, "c"))] = "two"
    await table.flush()
    await writer.stop()

    reader = _shared_app(broker, app_id, store=store, datadir=str(tmp_path / "b"))
    restored = reader.Table("pairs", partitions=1, use_partitioner=True)
    await reader.start()
    try:  # a failed recovery would leave the reader running: always stop it
        await eventually(lambda: reader.tables.records_restored == 2)
        assert restored.as_dict() == {("a", 1): "one", ("b", (2, "c")): "two"}
        assert restored[("a", 1)] == "one"
    finally:
        await reader.stop()


async def test_set_table_tuple_members_survive_a_restore() -> None:
    """JSON gives tuple members back as lists: they are tuples again in the set."""
    broker = f"memory://sets-{uuid.uuid4().hex}"
    app_id = f"sets-{next(_ids)}"
    writer = _shared_app(broker, app_id)
    edges = writer.SetTable("edges", partitions=1, use_partitioner=True)
    await writer.start()
    edges["a"].update([("b", 1), ("c", 2)])
    await edges.flush()
    await writer.stop()

    reader = _shared_app(broker, app_id)
    restored = reader.SetTable("edges", partitions=1, use_partitioner=True)
    await reader.start()
    try:
        await eventually(lambda: reader.tables.records_restored == 1)
        assert restored.as_dict() == {"a": {("b", 1), ("c", 2)}}
        restored["a"].discard(("b", 1))
        assert restored["a"] == {("c", 2)}
    finally:
        await reader.stop()


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
async def test_an_untyped_table_gives_records_back_as_records(store: str, tmp_path: Path) -> None:
    """A table without value_type holding Records: the same Records after a restore (and
    from RocksDB, which decodes on every read), not the dicts their JSON holds."""
    broker = f"memory://untyped-{uuid.uuid4().hex}"
    app_id = f"untyped-{next(_ids)}"
    writer = _shared_app(broker, app_id, store=store, datadir=str(tmp_path / "a"))
    table = writer.Table("words", partitions=1, use_partitioner=True)
    await writer.start()
    table["a"] = Word(text="alpha")
    table["b"] = {"text": "a plain dict"}
    await table.flush()
    assert table["a"] == Word(text="alpha")
    await writer.stop()

    reader = _shared_app(broker, app_id, store=store, datadir=str(tmp_path / "b"))
    restored = reader.Table("words", partitions=1, use_partitioner=True)
    await reader.start()
    try:
        await eventually(lambda: reader.tables.records_restored == 2)
        assert restored["a"] == Word(text="alpha")
        assert isinstance(restored["a"], Word)
        assert restored["b"] == {"text": "a plain dict"}
    finally:
        await reader.stop()


async def test_clear_writes_tombstones_so_the_restored_table_is_empty_too() -> None:
    broker = f"memory://clear-{uuid.uuid4().hex}"
    app_id = f"clear-{next(_ids)}"
    writer = _shared_app(broker, app_id)
    table = writer.Table("counts", partitions=2, use_partitioner=True)
    kept = writer.Table("kept", partitions=1, use_partitioner=True)
    await writer.start()
    for i in range(10):
        table[f"k{i}"] = i
    kept["x"] = 1
    await table.flush()
    table.clear()
    assert len(table) == 0 and table.as_dict() == {}
    table["after"] = 1  # a write after clear() survives it
    await table.flush()
    await kept.flush()
    await writer.stop()

    reader = _shared_app(broker, app_id)
    restored = reader.Table("counts", partitions=2, use_partitioner=True)
    restored_kept = reader.Table("kept", partitions=1, use_partitioner=True, recovery_buffer_size=1)
    await reader.start()
    try:
        await eventually(lambda: reader.tables.records_restored == 22)
        assert restored.as_dict() == {"after": 1}
        assert restored_kept.as_dict() == {"x": 1}
    finally:
        await reader.stop()


def test_recovery_buffer_size_is_checked(app: faust.App) -> None:
    with pytest.raises(ValueError, match="recovery_buffer_size must be an int >= 1"):
        app.Table("bad", recovery_buffer_size=0)


async def test_as_ansitable_sorted_with_a_title(app: faust.App) -> None:
    table = app.Table("scores", partitions=1, use_partitioner=True)
    table["b"] = 2
    table["a"] = 1
    text = table.as_ansitable(sort=True, key="Name", value="Score")
    lines = text.splitlines()
    assert lines[0].strip() == "scores"  # the default title is the table's name
    assert "Name" in text and "Score" in text
    assert text.index("'a'") < text.index("'b'")
    assert "│" in text or "|" in text
    by_value = table.as_ansitable(title="By {table.name}", sort=True, sortkey=lambda kv: -kv[1])
    assert by_value.splitlines()[0].strip() == "By scores"
    assert by_value.index("'b'") < by_value.index("'a'")
    assert table.as_ansitable(title=None).lstrip().startswith(("┏", "+", "┌"))


def test_using_window_windows_the_table(app: faust.App) -> None:
    views = app.Table("views", default=int).using_window(faust.TumblingWindow(60, expires=120))
    assert isinstance(views.window, faust.TumblingWindow)
    assert views.window.expires == 120
    with pytest.raises(TypeError, match="using_window"):
        app.Table("other").using_window(60)  # type: ignore[arg-type]


# -- Faust's per-key hooks


class AuditedTable(faust.Table):
    """Records each hook call, as a Faust user's subclass does."""

    def __init__(self, *args, **kwargs) -> None:
        self.calls: list[tuple] = []
        super().__init__(*args, **kwargs)

    def on_key_get(self, key):
        self.calls.append(("get", key))

    def on_key_set(self, key, value):
        super().on_key_set(key, value)
        self.calls.append(("set", key, value))

    def on_key_del(self, key):
        self.calls.append(("del", key))


async def test_overridden_key_hooks_are_called_on_access(app: faust.App) -> None:
    table = app.tables.add(AuditedTable(app, "audited", default=int, partitions=1))
    topic = app.topic("audited-in", value_type=str, partitions=1)

    @app.agent(topic)
    async def count(stream):
        async for word in stream:
            table[word] += 1
            if word == "drop":
                del table[word]

    await app.start()
    await topic.send(value="a")
    await topic.send(value="drop")
    await eventually(lambda: ("del", "drop") in table.calls)
    assert table.calls == [
        ("get", "a"),
        ("set", "a", 1),
        ("get", "drop"),
        ("set", "drop", 1),
        ("get", "drop"),  # del checks the key is there
        ("del", "drop"),
    ]
    await app.stop()
    assert table["a"] == 1  # the changelog and store work as without hooks


async def test_key_hooks_see_windowed_keys(app: faust.App) -> None:
    table = app.tables.add(AuditedTable(app, "audited-w", default=int, partitions=1))
    windowed = table.tumbling(60, expires=3600)
    topic = app.topic("audited-w-in", value_type=str, partitions=1)

    @app.agent(topic)
    async def count(stream):
        async for word in stream:
            windowed[word] += 1

    await app.start()
    await topic.send(value="w")
    await eventually(lambda: any(call[0] == "set" for call in table.calls))
    kind, (key, (start, end)), value = table.calls[-1]
    assert (kind, key, value, end - start) == ("set", "w", 1, pytest.approx(60, abs=0.01))


def test_key_hooks_cost_nothing_unless_overridden(app: faust.App) -> None:
    plain = app.Table("plain", default=int)
    assert plain._key_hooks == frozenset() and "_get" not in vars(plain)
    audited = AuditedTable(app, "audited-cost", default=int)
    assert audited._key_hooks == {"on_key_get", "on_key_set", "on_key_del"}
