"""A running faust-streaming app switched to this Faust keeps its state.

The same program runs first under faust-streaming (from PyPI, in a virtualenv this test
creates and keeps under ``.pytest_cache``), then, stopped with SIGTERM, under this Faust
on the same app id and topics: the program file is the same, only the ``faust`` it
imports differs. The word counts (through ``group_by`` into a table) go on from where
faust-streaming left them, the plain agent reads on from the committed offsets, and no
new repartition topic appears. Switched back, faust-streaming goes on likewise.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import TopicPartition

from .table_workers import read_topic, wait_until

pytestmark = pytest.mark.timeout(600)

REPO_ROOT = Path(__file__).resolve().parents[2]
#: The faust-streaming release the test runs (0.15.3 installs with aiokafka 0.14 on 3.11+).
FAUST_STREAMING = "faust-streaming==0.15.3"
VENV = REPO_ROOT / ".pytest_cache" / "faust-streaming-venv"
PARTITIONS = 4
# Joining the group, declaring topics and recovering a table take seconds on a busy box.
WAIT = 120.0

#: The program, as a faust-streaming user writes it. Run by both interpreters unchanged.
PROGRAM = textwrap.dedent(
    """
    import json
    import os

    import faust


    class Word(faust.Record, serializer="json"):
        word: str


    app = faust.App(
        os.environ["APP_ID"],
        broker="kafka://" + os.environ["BOOTSTRAP"],
        topic_partitions=4,
        store="memory://",
        **json.loads(os.environ.get("APP_EXTRA", "{}")),
    )
    words = app.topic(os.environ["WORDS"], value_type=Word)
    events = app.topic(os.environ["EVENTS"], value_type=str)
    out = app.topic(os.environ["OUT"], value_type=str)
    counts = app.Table("counts", default=int, partitions=4)


    @app.agent(words)
    async def count(stream):
        async for word in stream.group_by(Word.word):
            counts[word.word] += 1
            await out.send(value=f"{word.word}={counts[word.word]}")


    @app.agent(events)
    async def echo(stream):
        async for event in stream:
            await out.send(value=f"event:{event}")


    if __name__ == "__main__":
        app.main()
    """
)


def faust_streaming_python() -> Path:
    """The interpreter of a virtualenv with faust-streaming, made once and then reused."""
    python = VENV / "bin" / "python"
    marker = VENV / "installed.txt"
    if marker.exists() and marker.read_text() == FAUST_STREAMING and python.exists():
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", FAUST_STREAMING],
        check=True,
        timeout=600,
    )
    marker.write_text(FAUST_STREAMING)
    return python


class Program:
    """The program file and the worker processes that run it, one at a time."""

    def __init__(self, folder: Path, bootstrap: str) -> None:
        self.folder = folder
        self.bootstrap = bootstrap
        tag = uuid.uuid4().hex[:8]
        self.app_id = f"migrate-{tag}"
        self.words = f"migrate-words-{tag}"
        self.events = f"migrate-events-{tag}"
        self.out = f"migrate-out-{tag}"
        (folder / "wordcount.py").write_text(PROGRAM)
        self.logs: list[Path] = []

    def start(self, python: Path, extra: dict[str, object]) -> subprocess.Popen[bytes]:
        log = self.folder / f"worker-{len(self.logs)}.log"
        self.logs.append(log)
        env = {
            **os.environ,
            "APP_ID": self.app_id,
            "BOOTSTRAP": self.bootstrap,
            "WORDS": self.words,
            "EVENTS": self.events,
            "OUT": self.out,
            "APP_EXTRA": orjson.dumps(extra).decode(),
            "PYTHONUNBUFFERED": "1",
        }
        if python != Path(sys.executable):
            env.pop("PYTHONPATH", None)  # faust-streaming's faust, not this one
        with log.open("wb") as output:
            return subprocess.Popen(
                [str(python), "wordcount.py", "worker", "-l", "info"],
                cwd=self.folder,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise AssertionError(f"the worker did not stop on SIGTERM:\n{self.tail()}") from None

    def tail(self) -> str:
        return self.logs[-1].read_text(errors="replace")[-6000:] if self.logs else ""

    async def output(self) -> list[str]:
        return [orjson.loads(v) for _, _, _, v in await read_topic(self.bootstrap, self.out) if v]

    async def ready(self, process: subprocess.Popen[bytes]) -> None:
        """Wait until the worker has its partitions and tables (faust-streaming reads a
        record fetched before it seeks to the committed offsets twice: at least once)."""

        async def logged() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"the worker exited ({process.returncode}):\n{self.tail()}")
            log = self.logs[-1].read_text(errors="replace")
            return "Worker ready" in log or "[^Worker]: Ready" in log

        await wait_until(logged, WAIT, "the worker to be ready", interval=0.5)

    async def wait_for(
        self, expected: set[str], count: int, process: subprocess.Popen[bytes]
    ) -> list[str]:
        """The output once it holds ``expected`` and at least ``count`` records."""

        async def done() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"the worker exited ({process.returncode}):\n{self.tail()}")
            output = await self.output()
            return expected <= set(output) and len(output) >= count

        try:
            await wait_until(done, WAIT, f"outputs {sorted(expected)}", interval=1.0)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.tail()}") from None
        return await self.output()


async def create_topics(bootstrap: str, topics: dict[str, int]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, partitions, 1) for n, partitions in topics.items()])
    finally:
        await admin.close()


async def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()


async def committed(bootstrap: str, group: str, topic: str) -> dict[int, int | None]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        return {p: await consumer.committed(TopicPartition(topic, p)) for p in range(PARTITIONS)}
    finally:
        await consumer.stop()


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(PARTITIONS)])
    finally:
        await consumer.stop()
    return {tp.partition: offset for tp, offset in ends.items()}


async def repartition_topics(bootstrap: str) -> set[str]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        return {t for t in await consumer.topics() if t.endswith("-repartition")}
    finally:
        await consumer.stop()


def words(*names: str) -> list[bytes]:
    return [orjson.dumps({"word": name}) for name in names]


def counted(output: list[str], word: str) -> list[int]:
    return [int(o.partition("=")[2]) for o in output if o.startswith(f"{word}=")]


async def test_a_faust_streaming_app_switched_to_this_faust_keeps_its_state(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    python = faust_streaming_python()
    program = Program(tmp_path, kafka_bootstrap)
    before = await repartition_topics(kafka_bootstrap)
    # One partition for the output: its order is the order of processing.
    await create_topics(
        kafka_bootstrap, {program.words: PARTITIONS, program.events: PARTITIONS, program.out: 1}
    )

    # faust-streaming counts foo 3 times and bar once, and echoes 5 events.
    # Its web server is not needed (and would take a fixed port).
    old = program.start(python, {"web_enabled": False})
    try:
        await program.ready(old)
        await produce(kafka_bootstrap, program.words, words("foo", "bar", "foo", "foo"))
        await produce(kafka_bootstrap, program.events, [b'"e1"', b'"e2"', b'"e3"'])
        first = await program.wait_for(
            {"foo=3", "bar=1", "event:e1", "event:e2", "event:e3"}, 7, old
        )
    finally:
        program.stop(old)
    assert counted(first, "foo") == [1, 2, 3]
    # Its offsets are committed: the input is read up to its end.
    for topic in (program.words, program.events):
        ends = await end_offsets(kafka_bootstrap, topic)
        assert await committed(kafka_bootstrap, program.app_id, topic) == {
            p: end or None for p, end in ends.items()
        }, program.tail()
    faust_topics = await repartition_topics(kafka_bootstrap) - before
    assert len(faust_topics) == 1, faust_topics
    seen = len(await program.output())

    # The same program under this Faust: the same group, table and repartition topic.
    ours = program.start(Path(sys.executable), {})
    try:
        await program.ready(ours)
        await produce(kafka_bootstrap, program.words, words("foo", "baz", "foo"))
        await produce(kafka_bootstrap, program.events, [b'"e4"', b'"e5"'])
        # Three counts and two events (a count from 1 again fails below, not by timeout).
        second = await program.wait_for({"baz=1", "event:e4", "event:e5"}, seen + 5, ours)
    finally:
        program.stop(ours)
    after = second[seen:]
    # Counting goes on: foo from 3 (never from 1 again), each word in one place.
    assert counted(after, "foo") == [4, 5], after
    assert counted(after, "baz") == [1], after
    assert counted(after, "bar") == [], after
    # The plain agent reads on from faust-streaming's committed offsets.
    assert sorted(o for o in after if o.startswith("event:")) == ["event:e4", "event:e5"]
    for topic in (program.words, program.events):
        ends = await end_offsets(kafka_bootstrap, topic)
        assert await committed(kafka_bootstrap, program.app_id, topic) == {
            p: end or None for p, end in ends.items()
        }, program.tail()
    # The events went through faust-streaming's repartition topic: no new one.
    assert await repartition_topics(kafka_bootstrap) - before == faust_topics
    seen = len(second)

    # And back: faust-streaming reads what this Faust wrote (changelog, offsets).
    old = program.start(python, {"web_enabled": False})
    try:
        await program.ready(old)
        await produce(kafka_bootstrap, program.words, words("foo", "bar"))
        await produce(kafka_bootstrap, program.events, [b'"e6"'])
        third = await program.wait_for({"bar=2", "event:e6"}, seen + 3, old)
    finally:
        program.stop(old)
    assert counted(third[seen:], "foo") == [6], third[seen:]
    assert counted(third[seen:], "bar") == [2], third[seen:]
    assert [o for o in third[seen:] if o.startswith("event:")] == ["event:e6"]
    assert await repartition_topics(kafka_bootstrap) - before == faust_topics
    print(f"migration test took {time.monotonic() - started:.1f} s")
