"""Table and topic routes, ``/router/`` and ``/table/{name}/{key}/``: two apps of one
consumer group on a shared embedded broker, each with its real web server (port 0)."""

from __future__ import annotations

import asyncio
import itertools
import random
import string
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from yarl import URL

import faust
from faust.transport.base import TP
from faust.transport.partitioner import partition_for_key
from faust.web.forwarding import FORWARDED_BY, SERVED_BY
from tests.conftest import eventually

_ids = itertools.count()
WORDS = [
    "apple",
    "banana",
    "cherry",
    "date",
    "elder",
    "fig",
    "grape",
    "kiwi",
    "crème brûlée",
    "50%/off",
]


class Worker:
    """One app of the group: a word-count table, an int-keyed table and routed views."""

    def __init__(self, app_id: str, **options: Any) -> None:
        self.app = app = faust.App(
            app_id,
            broker=f"memory://{app_id}",
            topic_partitions=4,
            web_bind="127.0.0.1",
            **options,
        )
        # Keyed as the app keys by default (raw text): where the table routes its keys.
        self.words = app.topic("words", key_type=str, value_type=int)
        self.counts = counts = app.Table("counts", default=int)
        self.ints = app.Table("ints", key_type=int, default=int)

        @app.agent(self.words)
        async def count(stream: Any) -> None:
            async for word, n in stream.items():
                counts[word] += n

        @app.page("/count/{word}/")
        @app.table_route(table=counts, match_info="word")
        async def get_count(self: Any, request: Any, word: str) -> Any:
            return self.json({"word": word, "count": counts[word], "pid": id(app)})

        @app.page("/count/")
        @app.table_route(table="counts", query_param="word")
        async def by_query(self: Any, request: Any) -> Any:
            word = request.query["word"]
            return self.json({"word": word, "count": counts[word]})

        @app.page("/echo/{word}/")
        class Echo(faust.View):
            @app.table_route(table=counts, match_info="word")
            async def post(self, request: Any, word: str) -> Any:
                body = await request.read()
                return self.json(
                    {"body": body.decode(errors="replace"), "query": dict(request.query)}
                )

        @app.page("/slow/{word}/")
        @app.table_route(table=counts, match_info="word")
        async def slow(self: Any, request: Any, word: str) -> Any:
            await asyncio.sleep(2.0)
            return {"word": word}

        @app.page("/int/{n}/")
        @app.table_route(table=self.ints, match_info="n")
        async def get_int(self: Any, request: Any, n: str) -> Any:
            return {"n": n}  # a value, not a response: answered as JSON

        @app.page("/topic/{word}/")
        @app.topic_route(topic=self.words, match_info="word")
        async def by_topic(self: Any, request: Any, word: str) -> Any:
            return self.json({"word": word})

    @property
    def url(self) -> str:
        return self.app.conf.canonical_url

    async def start(self) -> None:
        await self.app.web.start()
        await self.app.start()

    async def stop(self) -> None:
        if self.app.started:
            await self.app.stop()
        await self.app.web.stop()


@pytest.fixture
async def workers() -> AsyncIterator[list[Worker]]:
    app_id = f"routes-{next(_ids)}"
    pair = [Worker(app_id), Worker(app_id)]
    yield pair
    for worker in pair:
        await worker.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def get(http: aiohttp.ClientSession, url: str, **kwargs: Any) -> tuple[int, Any, Any]:
    async with http.get(url, **kwargs) as response:
        return response.status, await response.json(), response.headers


async def start_counted(workers: list[Worker]) -> dict[str, int]:
    """Start both, wait until each owns partitions, count the words; the expected counts."""
    for worker in workers:
        await worker.start()
    a, b = workers
    await eventually(lambda: len(a.app.router.routing()) == 2)
    expected = {word: i + 1 for i, word in enumerate(WORDS)}
    for word, n in expected.items():
        await a.words.send(key=word, value=n)
    await eventually(lambda: sum(sum(w.counts.values()) for w in workers) == sum(expected.values()))
    return expected


async def test_every_worker_answers_every_key_from_its_owner(
    workers: list[Worker], http: aiohttp.ClientSession
) -> None:
    expected = await start_counted(workers)
    forwarded = 0
    for word, count in expected.items():
        owner = workers[0].app.router.key_store("counts", word)
        assert owner == workers[1].app.router.key_store("counts", word)
        assert owner in {w.url for w in workers}
        for worker in workers:
            status, body, headers = await get(http, f"{worker.url}/count/{quote(word, safe='')}/")
            assert status == 200, body
            assert body["word"] == word and body["count"] == count
            assert headers[SERVED_BY] == owner
            forwarded += owner != worker.url
            status, body, headers = await get(
                http, f"{worker.url}/count/?word={quote(word, safe='')}"
            )
            assert (status, body["count"], headers[SERVED_BY]) == (200, count, owner)
            status, body, headers = await get(
                http, f"{worker.url}/table/counts/{quote(word, safe='')}/"
            )
            assert status == 200, body
            assert body == {"table": "counts", "key": word, "value": count}
            assert headers[SERVED_BY] == owner
    assert forwarded == len(expected)  # each key: one of the two workers forwarded


async def test_router_page_maps_every_partition_to_a_worker(
    workers: list[Worker], http: aiohttp.ClientSession
) -> None:
    await start_counted(workers)
    a, b = workers
    status, info, _ = await get(http, f"{a.url}/router/")
    assert status == 200
    assert info["worker"] == a.url and info["assigned"] is True
    assert set(info["workers"]) == {a.url, b.url}
    table = info["tables"]["counts"]
    assert table["topic"] == a.counts.changelog_topic.name and table["global"] is False
    assert set(table["partitions"]) == {"0", "1", "2", "3"}
    assert set(table["partitions"].values()) == {a.url, b.url}
    assert set(info["topics"]["words"].values()) == {a.url, b.url}
    # The same answer from the other worker (one group, one assignment).
    status, other, _ = await get(http, f"{b.url}/router/")
    assert other["tables"] == info["tables"] and other["workers"] == info["workers"]
    # The Faust names: per table, for all tables, per key.
    changelog = a.counts.changelog_topic.name
    metadata = a.app.router.table_metadata("counts")
    assert {url: parts[changelog] for url, parts in metadata.items()} == {
        url: [int(p) for p, owner in sorted(table["partitions"].items()) if owner == url]
        for url in (a.url, b.url)
    }
    assert set(a.app.router.tables_metadata()[a.url]) == {
        changelog,
        a.ints.changelog_topic.name,
    }
    p = partition_for_key(b"fig", 4)
    assert a.app.router.table_partition(a.counts, "fig") == TP(changelog, p)
    assert a.app.router.key_store("counts", "fig") == table["partitions"][str(p)]
    word_p = partition_for_key(b"fig", 4)
    assert a.app.router.topic_key_store(a.words, "fig") == info["topics"]["words"][str(word_p)]


async def test_a_partition_nobody_owns_answers_503_at_once(
    workers: list[Worker], http: aiohttp.ClientSession
) -> None:
    worker = workers[0]
    await worker.app.web.start()  # the app itself not started: no assignment
    status, body, headers = await get(http, f"{worker.url}/count/apple/")
    p = partition_for_key(b"apple", 4)
    assert status == 503
    assert body["table"] == "counts" and body["partition"] == p
    assert f"table 'counts' partition {p}" in body["error"]
    assert headers["Retry-After"] == "1"
    status, body, _ = await get(http, f"{worker.url}/table/counts/apple/")
    assert status == 503 and body["partition"] == p
    status, info, _ = await get(http, f"{worker.url}/router/")
    assert info["assigned"] is False and info["workers"] == {}
    assert info["tables"]["counts"]["partitions"] == dict.fromkeys("0123")
    assert worker.app.router.key_store("counts", "apple") is None


async def test_a_forwarded_request_is_never_forwarded_again(
    workers: list[Worker], http: aiohttp.ClientSession
) -> None:
    await start_counted(workers)
    a, b = workers
    word = next(w for w in WORDS if a.app.router.key_store("counts", w) == b.url)
    # As if b had forwarded it to a, believing a owns it (a rebalance in between).
    status, body, _ = await get(http, f"{a.url}/count/{word}/", headers={FORWARDED_BY: b.url})
    assert status == 503
    assert body["forwarded_by"] == b.url and "moving between workers" in body["error"]


async def test_a_worker_without_web_server_is_never_forwarded_to(
    http: aiohttp.ClientSession,
) -> None:
    app_id = f"routes-{next(_ids)}"
    a, b = Worker(app_id), Worker(app_id, web_enabled=False)
    try:
        await a.start()
        await b.app.start()  # in the group, with no web server and so no URL
        await eventually(lambda: len(b.app.consumer.driver.assignment()) > 0)  # type: ignore[union-attr]
        await eventually(lambda: list(a.app.router.routing()) == [a.url])
        word = next(w for w in WORDS if a.app.router.key_store("counts", w) is None)
        status, body, _ = await get(http, f"{a.url}/count/{quote(word, safe='')}/")
        assert status == 503 and "runs no web server (web_enabled=False)" in body["error"]
    finally:
        await a.stop()
        await b.stop()


async def test_an_unreachable_owner_answers_502_naming_it(
    workers: list[Worker], http: aiohttp.ClientSession
) -> None:
    await start_counted(workers)
    a, b = workers
    word = next(w for w in WORDS if a.app.router.key_store("counts", w) == b.url)
    await b.app.web.stop()  # still in the group, no longer answering
    status, body, _ = await get(http, f"{a.url}/count/{word}/")
    assert status == 502
    assert body["url"] == b.url and b.url in body["error"]
    assert body["table"] == "counts"


async def test_an_owner_that_answers_too_late_is_a_504_in_time(
    workers: list[Worker], http: aiohttp.ClientSession
) -> None:
    await start_counted(workers)
    a, b = workers
    word = next(w for w in WORDS if a.app.router.key_store("counts", w) == b.url)
    a.app.router.forwarder.timeout = 0.3
    began = time.monotonic()
    status, body, _ = await get(http, f"{a.url}/slow/{word}/")
    assert time.monotonic() - began < 1.5
    assert status == 504 and body["url"] == b.url and "0.3 s" in body["error"]


async def test_forwarding_keeps_method_body_and_query(
    workers: list[Worker], http: aiohttp.ClientSession
) -> None:
    await start_counted(workers)
    a, b = workers
    word = next(w for w in WORDS if a.app.router.key_store("counts", w) == b.url)
    async with http.post(f"{a.url}/echo/{word}/?x=1&y=%20z", data=b"hello") as response:
        assert response.status == 200
        assert response.headers[SERVED_BY] == b.url
        assert await response.json() == {"body": "hello", "query": {"x": "1", "y": " z"}}
    async with http.get(f"{a.url}/echo/{word}/") as response:
        assert response.status == 405  # the owner's answer, forwarded as it came
        assert response.headers["Allow"] == "POST"


async def test_bad_keys_and_unknown_tables_are_4xx(
    workers: list[Worker], http: aiohttp.ClientSession
) -> None:
    await start_counted(workers)
    a = workers[0]
    status, body, _ = await get(http, f"{a.url}/int/abc/")
    assert status == 400
    assert body["table"] == "ints" and "'abc'" in body["error"] and "int" in body["error"]
    status, body, _ = await get(http, f"{a.url}/table/ints/1.5/")
    assert status == 400 and body["key"] == "1.5"
    status, body, headers = await get(http, f"{a.url}/int/12/")
    assert (status, body) == (200, {"n": "12"})
    assert headers[SERVED_BY] == a.app.router.key_store("ints", 12)
    status, body, _ = await get(http, f"{a.url}/table/nope/x/")
    assert status == 404
    assert body["tables"] == ["counts", "ints"] and "'nope'" in body["error"]
    status, body, _ = await get(http, f"{a.url}/table/counts/absent/")
    assert status == 404
    assert body == {
        "error": "Key 'absent' is not in table 'counts'.",
        "table": "counts",
        "key": "absent",
    }
    status, body, _ = await get(http, f"{a.url}/count/")
    assert status == 400 and "'word' is required" in body["error"]


async def test_topic_route_serves_on_the_partitions_reader(
    workers: list[Worker], http: aiohttp.ClientSession
) -> None:
    await start_counted(workers)
    for word in WORDS:
        tp = workers[0].app.router.topic_partition(workers[0].words, word)
        owner = workers[0].app.router.owner_of(tp)
        for worker in workers:
            status, body, headers = await get(http, f"{worker.url}/topic/{quote(word, safe='')}/")
            assert (status, body, headers[SERVED_BY]) == (200, {"word": word}, owner)


def test_route_arguments_are_checked_when_declared() -> None:
    app = faust.App("route-args")
    table = app.Table("t")
    with pytest.raises(TypeError, match="exactly one of match_info"):
        app.table_route(table=table)
    with pytest.raises(TypeError, match="exactly one of match_info"):
        app.table_route(table=table, match_info="k", query_param="k")
    with pytest.raises(KeyError, match="no such table; the app has \\['t'\\]"):
        app.table_route(table="other", match_info="k")
    with pytest.raises(TypeError, match="takes a table"):
        app.table_route(table=object(), match_info="k")
    with pytest.raises(TypeError, match="takes a topic"):
        app.topic_route(topic=table, match_info="k")
    with pytest.raises(ValueError, match="needs one topic"):
        app.topic_route(topic=app.topic("a", "b"), match_info="k")
    # shard_param is the older name of query_param; a windowed view routes like its table.
    app.table_route(table, "k")
    app.table_route(table=app.Table("w", default=int).tumbling(60), exact_key="x")


async def test_exact_key_and_global_tables_serve_locally(http: aiohttp.ClientSession) -> None:
    app = faust.App(f"routes-{next(_ids)}", topic_partitions=4, web_bind="127.0.0.1")
    everywhere = app.GlobalTable("everywhere", default=int)

    @app.page("/global/")
    @app.table_route(table=everywhere, exact_key="k")
    async def read(self: Any, request: Any) -> Any:
        return self.json({"k": everywhere["k"]})

    await app.web.start()
    try:
        # Not started, no assignment: a global table is on every worker all the same.
        status, body, headers = await get(http, f"{app.conf.canonical_url}/global/")
        assert (status, body, headers[SERVED_BY]) == (200, {"k": 0}, app.conf.canonical_url)
        assert app.router.key_store("everywhere", "k") == app.conf.canonical_url
    finally:
        await app.web.stop()


async def test_a_table_partition_being_recovered_answers_503(http: aiohttp.ClientSession) -> None:
    app_id = f"routes-{next(_ids)}"
    first = Worker(app_id)
    await first.start()
    await first.words.send(key="apple", value=3)
    await eventually(lambda: first.counts["apple"] == 3)
    await first.stop()  # the count is in the changelog now

    second = Worker(app_id)
    release = asyncio.Event()
    read_partition = second.app.transport.read_partition

    async def slow_read_partition(tp: TP, start: int, end: int) -> AsyncIterator[Any]:
        await release.wait()  # a recovery that takes as long as the test wants
        async for batch in read_partition(tp, start, end):
            yield batch

    second.app.transport.read_partition = slow_read_partition  # type: ignore[method-assign]
    try:
        await second.start()
        url = f"{second.url}/count/apple/"
        await eventually(lambda: bool(second.app.tables.partitions_to_recover()))
        status, body, _ = await get(http, url)
        assert status == 503 and "being recovered" in body["error"]
        assert body["table"] == "counts"
        release.set()
        await second.app.wait_ready()
        status, body, _ = await get(http, url)
        assert (status, body["count"]) == (200, 3)
    finally:
        release.set()
        await second.stop()


async def test_random_requests_to_routes_get_no_5xx(
    workers: list[Worker], http: aiohttp.ClientSession
) -> None:
    """A few hundred random routed requests (paths, keys, methods, bodies, a forwarding
    header now and then) to either worker: never a 5xx but the 503 of a request that
    says it was forwarded already, every error JSON, and both still serve after."""
    await start_counted(workers)
    rng = random.Random(11)
    alphabet = "ab/%.? é\x00{}\"'\\-_" + string.digits

    def text() -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 10)))

    def path() -> str:
        key = quote(rng.choice([text(), rng.choice(WORDS), "9" * 4400, "nan", ""]), safe="")
        return rng.choice(
            [
                f"/table/{rng.choice(['counts', 'ints', 'nope', quote(text(), safe='')])}/{key}/",
                f"/count/{key}/",
                f"/count/?word={key}",
                f"/count/?other={key}",
                f"/int/{key}/",
                f"/echo/{key}/?{key[:20]}={key[:20]}",
                f"/topic/{key}/",
                "/router/",
            ]
        )

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "PROPFIND"]
    for _ in range(300):
        method = rng.choice(methods)
        headers = {FORWARDED_BY: quote(text())} if rng.random() < 0.2 else {}
        body = rng.randbytes(rng.randint(0, 200)) if rng.random() < 0.5 else None
        url = URL(rng.choice(workers).url + path(), encoded=True)
        async with http.request(method, url, data=body, headers=headers) as response:
            status, content = response.status, await response.read()
            assert status < 500 or (status == 503 and headers), (method, url, status, content)
            if status >= 400 and method != "HEAD":
                assert response.content_type == "application/json", (url, status, content)
    for worker in workers:
        status, body, _ = await get(http, f"{worker.url}/count/apple/")
        assert (status, body["count"]) == (200, 1)
