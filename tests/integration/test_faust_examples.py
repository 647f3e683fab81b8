"""Faust's own example programs run unchanged with this Faust against Kafka.

The programs are not in this repository: the test downloads faust-streaming's source
release (its sdist on PyPI, whose sha256 is pinned here and checked against the package
index), keeps it under ``.pytest_cache``, extracts its ``examples/`` folder and runs each
program as its docstring or its ``__main__`` says (``python examples/x.py worker -l info``,
``faust -A examples.leader worker``, ``python examples/x.py produce``...) with *this*
``faust``. Most hard-code ``kafka://localhost:9092``, so the session's Kafka must listen
there (the default of ``scripts/kafka up``). Those that name no broker get faust-streaming's
default, Kafka at localhost:9092, through ``BROKER_URL`` (this Faust defaults to the
embedded broker). Some programs import libraries of their own, installed (pinned, without
their dependencies) under ``.pytest_cache`` and put on ``PYTHONPATH``: pytz
(``crontab/tz_aware``), mode-streaming (``task_queue`` takes ``qualname`` from it) and
Django (``django/``).
The FastAPI programs run with uvicorn and this Faust's ``faust.contrib.asgi``.

Each program's topics are deleted before it runs when an earlier session left them. The
programs run in parallel where they share nothing; ``windowing/tumbling`` and
``windowing/hopping`` share an app id, ``windowed_aggregation`` and ``windowing/hopping_2``
a topic, so each pair runs one after the other.

What each test checks, from the program's printed output, its web pages and its topics:

- ``hello_world``: the timer's 100 greetings are sent and the agent prints each of them.
- ``fastapi_example``: ``uvicorn fastapi_example:api`` (on a free port) answers ``/`` and
  ``/items/5?q=x`` as FastAPI does, ``/produce`` sends 100 greetings that the agent,
  started by the lifespan on uvicorn's loop, prints (every one printed is in the
  topic), and the server shuts down with the app; ``faust -A fastapi_example worker``
  runs the same file as a worker, its timer's greetings printed by the agent.
- ``fastapi_project``: ``uvicorn main:api`` (in its folder, as its docstring says)
  answers ``/`` and ``/items/7``; a greeting sent by ``/produce`` is printed by the
  agent found by autodiscovery and listed by ``/table`` (the global table);
  ``faust -A worker_main worker`` serves the same API from the worker on port 8000
  once ready (``serve_asgi``), with the same answers; ``faust -A my_faust.app worker``
  prints its timer's greetings. These two programs and ``hello_world`` share the topic
  ``greetings`` (the first two an app id too), so the three run one after the other.
- ``leader``: the leader-only timer prints ``PUBLISHING ON LEADER!`` and the agent prints
  the raw bytes it sent, the ones found in the agent's topic.
- ``concurrency``: its ``__main__`` (run as ``python concurrency.py``) sends 10,000
  records; the topic holds exactly values 0..9999. (Its agent fetches google.com: the
  program never starts it.)
- ``crontab/tz_unaware``: the every-minute crontab runs on the leader and the agent prints
  the record it sent, the one in the topic.
- ``crontab/tz_aware``: the crontab is scheduled at the next 20:16 in US/Pacific (logged
  at start; a test cannot wait a day for it), and the agent prints a record sent to
  its topic.
- ``advanced/rpc``: ``join`` and ``map`` over ``ask`` print x**2 * 100 for each input,
  and the ``x100`` command prints ``5 * 100 = 500.0``.
- ``advanced/service``: the service logs STARTED and STOPPED, the timer's messages reach
  the agent.
- ``advanced/isolated_partitions_crashing``: after the ``produce`` command sends 100
  withdrawals, the progress task reports 100 events seen, the agent's assertion on its
  stream's ``active_partitions`` holds for every event, and the table's changelog counts
  each user's withdrawals.
- ``tableofset``: the ``joining`` / ``leaving`` commands change the set table as printed,
  and the timer's table dump shows the final set.
- ``windowing/tumbling``, ``windowing/hopping``: every event's ``current()``, ``value()``
  and ``delta(30)`` printed equal the count of its own partition's events in that window,
  computed from the topic; the worker says once that the key ``'counter'`` is written from
  partitions it does not belong to. A deliberate difference: this Faust keeps a table's
  values per partition in every store, so the example's un-keyed events count per
  partition (faust-streaming's memory store shares one dict across partitions; its
  rocksdb store counts per partition as here). See the migration guide.
- ``windowing/hopping_2``: the value printed per message counts up within each 3 s hop
  and starts again at 1 in the next (the window of the event's ``date`` field).
- ``windowed_aggregation``: each closed window printed (count, mean) is sent to the sink
  topic and matches the raw events of that window read from the source topic.
- ``word_count``: the rebalance tally is printed, the sender's 4 x 1000 words are counted,
  ``/count/<word>/`` answers 1000 and ``/last/<word>/`` the last counts, and the tally
  the program prints lists the four words.
- ``bound_agent``: every action that passes stage 1 passes stage 2 or reaches the
  dead-letter agent from stage 2 (``functools.partial`` agents over channels).
- ``tabletest``: after the ``produce`` command ran a while, ``/count/<partition>/`` gives
  the sum of the values sent to each partition, with no gap detected by the program.
- ``withdrawals``: after ``produce --max-messages 200``, the windowed table's changelog
  holds each user's total amount.
- ``task_queue``: each task's printed result is the sum of its printed arguments.
- ``django``: after ``manage.py migrate`` (SQLite, in the extracted folder),
  ``uvicorn proj.asgi:application`` serves Django's admin login page with the Faust app
  running in ``FaustLifespanMiddleware``; a Record sent to ``@add_account`` (with
  ``faust send``, as Faust encodes Records) is written to the database by the agent
  that autodiscovery found in the installed app ``accounts``, ``@disable_account``
  clears its ``active`` flag, and ``proj-faust worker`` (the console script
  ``faustapp.app:main``, called as its ``setup.py`` declares it) starts the worker.
  Two things the program needs from its environment: ``DJANGO_ALLOW_ASYNC_UNSAFE=true``
  (its agents call Django's blocking ORM on the event loop, which Django otherwise
  refuses, with faust-streaming too), and scores below 1 (its model's
  ``decimal_places=1000``).

FastAPI and uvicorn come from the test dependencies; Django (with asgiref and sqlparse)
is installed with the programs' libraries. Not run: ``kubernetes/`` (needs a
Kubernetes cluster and Docker's ``host.docker.internal``), ``livecheck.py`` (needs Redis
and faust's LiveCheck).
"""

from __future__ import annotations

import ast
import asyncio
import concurrent.futures
import datetime
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.request
import zoneinfo
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from .workers import read_topic

pytestmark = pytest.mark.timeout(400)

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE = REPO_ROOT / ".pytest_cache" / "faust-examples"
RELEASE = "faust_streaming-0.15.3"
SDIST = f"{RELEASE}.tar.gz"
#: The reviewed release: the package index must still list this hash for it.
SDIST_SHA256 = "51d6de8d7984c1e47ce961ba4c066e82a6b69d7b02d6bc27129677c4bfb1235f"
SIMPLE_INDEX = "https://pypi.org/simple/faust-streaming/"
#: Libraries the programs import themselves (not faust's): without their dependencies,
#: so that this Faust's own (croniter...) are the ones imported.
PROGRAM_LIBRARIES = (
    "pytz==2025.2",
    "mode-streaming==0.7.1",
    "django==5.2.19",
    "asgiref==3.13.0",
    "sqlparse==0.6.1",
)
BOOTSTRAP = "localhost:9092"
#: Programs run at once (each a Python process next to Kafka on 2 cores).
PARALLEL = 5
#: The longest a test waits for its program's result (from the start of all of them).
RESULT_TIMEOUT = 330.0


# -- the programs ---------------------------------------------------------------------------


def sdist_url_from_index() -> tuple[str, str]:
    """The sdist's URL and sha256 as the package index lists them."""
    with urllib.request.urlopen(SIMPLE_INDEX, timeout=60) as response:
        page = response.read().decode()
    match = re.search(rf'href="([^"#]*/{re.escape(SDIST)})#sha256=([0-9a-f]{{64}})"', page)
    if match is None:
        raise AssertionError(f"{SIMPLE_INDEX} lists no {SDIST}")
    return match.group(1), match.group(2)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def download_sdist() -> Path:
    """faust-streaming's sdist, downloaded once and kept in ``.pytest_cache``."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / SDIST
    if path.exists() and sha256_of(path) == SDIST_SHA256:
        return path
    try:
        url, listed = sdist_url_from_index()
        if listed != SDIST_SHA256:
            pytest.fail(
                f"{SIMPLE_INDEX} lists sha256 {listed} for {SDIST}, not the reviewed "
                f"{SDIST_SHA256}: check the new file before trusting it",
                pytrace=False,
            )
        partial = path.with_suffix(".part")
        with urllib.request.urlopen(url, timeout=120) as response, partial.open("wb") as out:
            shutil.copyfileobj(response, out)
    except (urllib.error.URLError, OSError, AssertionError) as exc:
        pytest.fail(
            f"could not download {SDIST} (faust-streaming's example programs) from "
            f"{SIMPLE_INDEX}: {exc}. This test needs PyPI once; the file is then kept in "
            f"{path}.",
            pytrace=False,
        )
    got = sha256_of(partial)
    if got != SDIST_SHA256:
        partial.unlink()
        pytest.fail(f"{SDIST} downloaded with sha256 {got}, not {SDIST_SHA256}", pytrace=False)
    partial.replace(path)
    return path


def program_libraries() -> Path:
    """A folder with the libraries the programs import, for their ``PYTHONPATH``."""
    target = CACHE / "site"
    marker = target / "installed.txt"
    wanted = "\n".join(PROGRAM_LIBRARIES)
    if marker.exists() and marker.read_text() == wanted:
        return target
    shutil.rmtree(target, ignore_errors=True)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "--no-deps", "--target", str(target), *PROGRAM_LIBRARIES],
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.fail(f"pip could not install {PROGRAM_LIBRARIES}:\n{done.stderr}", pytrace=False)
    marker.write_text(wanted)
    return target


def extract_examples(sdist: Path, into: Path) -> Path:
    """``examples/`` of the sdist, extracted under ``into`` (returned: its parent)."""
    prefix = f"{RELEASE}/examples/"
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
        tar.extractall(into, members=members, filter="data")
    return into / RELEASE


# -- running one ----------------------------------------------------------------------------


class Run:
    """One process of a program, its output (stdout and stderr) in a file."""

    def __init__(
        self,
        env: Env,
        args: list[str],
        log: Path,
        cwd: Path | None = None,
        environ: dict[str, str] | None = None,
    ) -> None:
        self.env = env
        self.log = log
        self.args = args
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                args,
                cwd=cwd or env.root,
                env={**env.environ, **(environ or {})},
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float, count: int = 1) -> list[re.Match[str]]:
        """The first ``count`` matches of ``pattern`` (multiline) in the output."""
        deadline = time.monotonic() + timeout
        while True:
            matches = list(re.finditer(pattern, self.output(), re.MULTILINE))
            if len(matches) >= count:
                return matches[:count]
            if self.process.poll() is not None:
                raise AssertionError(
                    f"{' '.join(self.args[1:])} exited ({self.process.returncode}) before "
                    f"printing {count} x {pattern!r}:\n{self.tail()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{' '.join(self.args[1:])} did not print {count} x {pattern!r} within "
                    f"{timeout} s:\n{self.tail()}"
                )
            time.sleep(0.2)

    def web_url(self) -> str:
        (match,) = self.wait_for(r"^\s+web\s+(http://\S+)$", 60)
        return match.group(1).rstrip("/")

    def stop(self) -> str:
        """SIGTERM, as a user's Ctrl-C would be; the output, after a graceful stop."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"did not stop on SIGTERM:\n{self.tail()}") from None
        return self.output()

    def finish(self, timeout: float) -> str:
        """Wait for a command to end by itself; its output (it must exit 0)."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"did not finish within {timeout} s:\n{self.tail()}") from None
        assert self.process.returncode == 0, f"exit {self.process.returncode}:\n{self.tail()}"
        return self.output()

    def tail(self) -> str:
        return self.output()[-5000:]


class Env:
    """Where the programs are, and the environment they run in."""

    def __init__(self, root: Path, libraries: Path, logs: Path) -> None:
        self.root = root
        self.logs = logs
        self.environ = {
            **os.environ,
            # faust-streaming's default broker, for the programs that name none.
            "BROKER_URL": f"kafka://{BOOTSTRAP}",
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(libraries), os.environ.get("PYTHONPATH")) if p
            ),
            "PYTHONUNBUFFERED": "1",
            "FAUST_WEB_PORT": "0",
        }
        faust_script = Path(sys.executable).with_name("faust")
        self.faust = (
            [str(faust_script)] if faust_script.exists() else [sys.executable, "-m", "faust"]
        )
        self._lock = threading.Lock()
        self._runs: list[Run] = []

    def python(self, program: str, *args: str) -> Run:
        return self._start([sys.executable, f"examples/{program}", *args], program)

    def faust_command(self, *args: str, cwd: str | None = None, **environ: str) -> Run:
        return self._start([*self.faust, *args], args[1], cwd, environ)

    def uvicorn(self, app: str, port: int, cwd: str, **environ: str) -> Run:
        """``uvicorn module:app`` run in ``examples/{cwd}``, on ``port``."""
        args = [sys.executable, "-m", "uvicorn", app, "--port", str(port)]
        return self._start(args, f"{cwd}-{app}", cwd, environ)

    def run_in(self, cwd: str, label: str, *args: str, **environ: str) -> Run:
        """``python ARGS`` run in ``examples/{cwd}``."""
        return self._start([sys.executable, *args], label, cwd, environ)

    def _start(
        self, args: list[str], label: str, cwd: str | None = None, environ: Any = None
    ) -> Run:
        with self._lock:
            name = f"{len(self._runs):02d}-{label.replace('/', '_')}.log"
            where = None if cwd is None else self.root / "examples" / cwd
            run = Run(self, args, self.logs / name, where, environ)
            self._runs.append(run)
        return run

    def stop_all(self) -> None:
        for run in self._runs:
            if run.process.poll() is None:
                run.process.kill()
                run.process.wait()


def kafka(coro_fun: Callable[..., Any], *args: Any) -> Any:
    """Run an aiokafka coroutine function from a scenario's thread."""
    return asyncio.run(coro_fun(*args))


async def _delete_topics(names: tuple[str, ...], prefixes: tuple[str, ...]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [t for t in existing if t in names or t.startswith(prefixes)]
        if not doomed:
            return
        await admin.delete_topics(doomed)
        deadline = time.monotonic() + 60
        while set(doomed) & set(await admin.list_topics()):
            if time.monotonic() > deadline:
                raise AssertionError(f"Kafka did not delete {doomed} within 60 s")
            await asyncio.sleep(0.3)
        await asyncio.sleep(1.0)  # the brokers forget them a moment after the controller
    finally:
        await admin.close()


def fresh(*names: str, apps: tuple[str, ...] = ()) -> None:
    """Delete the topics a program uses (its own and those named after its app ids), left
    by an earlier session on the same Kafka, so that it starts from nothing."""
    kafka(_delete_topics, names, tuple(f"{app}-" for app in apps))


async def _send(topic: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()


def records(topic: str) -> list[tuple[int, int, bytes | None, bytes | None]]:
    """(partition, offset, key, value) of every record in ``topic``."""
    return kafka(read_topic, BOOTSTRAP, topic)


async def _read_with_timestamps(topic: str) -> list[tuple[int, int, float]]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from .workers import partitions_of

    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, auto_offset_reset="earliest")
    await consumer.start()
    out: list[tuple[int, int, float]] = []
    try:
        tps = [TopicPartition(topic, p) for p in await partitions_of(consumer, topic)]
        consumer.assign(tps)
        end = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning()
        while [tp for tp in tps if await consumer.position(tp) < end[tp]]:
            for tp, messages in (await consumer.getmany(timeout_ms=500)).items():
                out.extend((tp.partition, m.offset, m.timestamp / 1000) for m in messages)
    finally:
        await consumer.stop()
    return out


def http_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def poll(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Call ``check`` until it returns something true; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
        except (OSError, AssertionError) as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")
        time.sleep(0.5)


def latest_values(topic: str) -> dict[Any, Any]:
    """A changelog's last value per key (keys and values JSON)."""
    table: dict[Any, Any] = {}
    for _, _, key, value in records(topic):
        table[_hashable(orjson.loads(key))] = None if value is None else orjson.loads(value)
    return table


def _hashable(obj: Any) -> Any:
    return tuple(_hashable(x) for x in obj) if isinstance(obj, list) else obj


READY = r"Worker ready"


# -- the scenarios --------------------------------------------------------------------------


def hello_world(env: Env) -> None:
    fresh("greetings", apps=("hello-world",))
    worker = env.python("hello_world.py", "worker", "-l", "info")
    worker.wait_for(r"^hello 99$", 60)
    worker.wait_for(r"^hello \d+$", 30, count=100)
    printed = re.findall(r"^hello (\d+)$", worker.stop(), re.MULTILINE)
    assert set(map(int, printed)) == set(range(100))
    sent = Counter(v for _, _, _, v in records("greetings"))
    # Every greeting sent is printed (the timer runs again every 5 s).
    assert set(sent) == {json.dumps(f"hello {i}").encode() for i in range(100)}


def leader(env: Env) -> None:
    fresh(apps=("leader-example",))
    worker = env.faust_command("-A", "examples.leader", "worker", "-l", "info")
    worker.wait_for(r"^PUBLISHING ON LEADER!$", 40, count=2)
    worker.wait_for(r"^b'0\.\d+'$", 20, count=2)
    output = worker.stop()
    printed = re.findall(r"^b'(0\.\d+)'$", output, re.MULTILINE)
    sent = [v.decode() for _, _, _, v in records("leader-example-examples.leader.say")]
    assert len(printed) >= 2 and set(printed) <= set(sent)


def concurrency(env: Env) -> None:
    fresh("concurrency", apps=("concurrency",))
    env.python("concurrency.py").finish(150)
    values = sorted(orjson.loads(v)["value"] for _, _, _, v in records("concurrency"))
    assert values == list(range(10_000))


def crontab_tz_unaware(env: Env) -> None:
    fresh("tz_unaware_topic", apps=("tz_unaware",))
    worker = env.python("crontab/tz_unaware.py", "worker", "-l", "info")
    (next_run,) = worker.wait_for(
        r"publish_every_minute \('\*/1 \* \* \* \*'\): next run at (\S+)$", 60
    )
    at = datetime.datetime.fromisoformat(next_run.group(1))
    assert at.second == 0 and at.microsecond == 0
    worker.wait_for(r"^-- We should send a message every minute --$", 100)
    (record,) = worker.wait_for(r"^record: Model\(random=([\d.]+)\)$", 30)
    worker.stop()
    sent = [orjson.loads(v)["random"] for _, _, _, v in records("tz_unaware_topic")]
    assert sent == [float(record.group(1))]


def crontab_tz_aware(env: Env) -> None:
    fresh("tz_aware_topic", apps=("tz_aware",))
    worker = env.python("crontab/tz_aware.py", "worker", "-l", "info")
    (next_run,) = worker.wait_for(
        r"publish_at_8_20_pm_pacific \('16 20 \* \* \*'\): next run at (\S+)$", 60
    )
    worker.wait_for(READY, 60)
    pacific = zoneinfo.ZoneInfo("America/Los_Angeles")
    now = datetime.datetime.now(pacific)
    expected = now.replace(hour=20, minute=16, second=0, microsecond=0)
    if expected <= now:
        expected += datetime.timedelta(days=1)
    assert datetime.datetime.fromisoformat(next_run.group(1)) == expected
    kafka(_send, "tz_aware_topic", b'{"random": 0.25}')
    worker.wait_for(r"^record: Model\(random=0\.25\)$", 30)
    worker.stop()


def rpc(env: Env) -> None:
    fresh("RPC__pow", "RPC__mul", apps=("RPC99",))
    worker = env.python("advanced/rpc.py", "worker", "-l", "info")
    inputs = [30.3, 40.4, 50.5, 60.6, 70.7, 80.8, 90.9]
    expected = [x**2 * 100.0 for x in inputs]
    (joined,) = worker.wait_for(r"^JOINED: (\[.*\])$", 60)
    assert ast.literal_eval(joined.group(1)) == expected
    replies = worker.wait_for(r"^RECEIVED REPLY: (\S+)$", 30, count=len(inputs))
    assert sorted(float(m.group(1)) for m in replies) == sorted(expected)
    command = env.python("advanced/rpc.py", "x100", "5").finish(90)
    assert "5 * 100 = 500.0" in command.splitlines()
    worker.stop()


def service(env: Env) -> None:
    fresh(apps=("service-example",))
    worker = env.python("advanced/service.py", "worker", "-l", "info")
    worker.wait_for(r"\bSTARTED$", 60)
    worker.wait_for(r"^Received: 'hello'$", 30, count=2)
    assert re.search(r"\bSTOPPED$", worker.stop(), re.MULTILINE)


def isolated_partitions_crashing(env: Env) -> None:
    fresh("withdrawals129", "withdrawalz129", apps=("faust-withdrawals29",))
    program = "advanced/isolated_partitions_crashing.py"
    worker = env.python(program)  # its __main__ adds `worker -l info`
    worker.wait_for(READY, 60)
    env.python(program, "produce", "--max-messages", "100", "--max-latency", "0").finish(90)
    worker.wait_for(r"^Progressing: was \d+ now 100$", 40)
    output = worker.stop()
    # The agent asserts each event's partition is in its stream's active_partitions.
    assert "Traceback" not in output, output[-5000:]
    sent = Counter(k.decode() for _, _, k, _ in records("withdrawals129"))
    counts = latest_values("faust-withdrawals29-withdrawal-counts-changelog")
    assert counts == dict(sent) and sum(sent.values()) == 100


def tableofset(env: Env) -> None:
    fresh("people_joining2", "people_leaving2", apps=("table-of-sets-windowed-v2",))
    worker = env.python("tableofset.py", "worker", "-l", "info")
    worker.wait_for(READY, 60)
    steps = [
        ("joining", "alice", "- Alice joined paris", {"alice"}),
        ("joining", "bob", "- Bob joined paris", {"alice", "bob"}),
        ("leaving", "alice", "- Alice left paris", {"bob"}),
    ]
    for step, (command, name, said, now) in enumerate(steps, 1):
        env.python("tableofset.py", command, "paris", name).finish(60)
        worker.wait_for(rf"^{re.escape(said)}$", 30)
        match = worker.wait_for(r"^TABLE CUR: (.*)$", 30, count=step)[-1]
        assert ast.literal_eval(match.group(1)) == now
    dumped = worker.wait_for(r"^│ 'paris' │ (\{.*?\}) +│$", 30)
    output = worker.stop()
    assert ast.literal_eval(dumped[0].group(1)) in ({"bob"}, {"alice", "bob"}, {"alice"})
    final = re.findall(r"^│ 'paris' │ (\{.*?\}) +│$", output, re.MULTILINE)
    assert "TABLE NOW:" in output and final


def _windowed_counts(
    env: Env, program: str, topic: str, window_start: Callable[[float], float], size: float
) -> None:
    """Run tumbling/hopping and check each printed count against the topic."""
    fresh(topic, apps=("windowing",))
    worker = env.python(program, "worker", "-l", "info")
    worker.wait_for(r"delta\(30\) should start .*: \d+$", 60, count=6)
    output = worker.stop()
    current = [int(v) for v in re.findall(r"^current\(\) should .*: (\d+)$", output, re.MULTILINE)]
    value = [int(v) for v in re.findall(r"^value\(\) should .*: (\d+)$", output, re.MULTILINE)]
    delta = [int(v) for v in re.findall(r"^delta\(30\) should .*: (\d+)$", output, re.MULTILINE)]
    # Events are 2 s apart: the worker processes them in the order they were sent.
    events = sorted(kafka(_read_with_timestamps, topic), key=lambda e: e[2])
    assert len(current) == len(value) == len(delta) and 6 <= len(current) <= len(events)

    def count(partition: int, offset: int, start: float) -> int:
        # Events of the partition up to this one, in the window that starts at `start`.
        return sum(
            1
            for p, o, ts in events
            if p == partition and o <= offset and start <= ts < start + size
        )

    expected_current = [count(p, o, window_start(ts)) for p, o, ts in events]
    expected_delta = [count(p, o, window_start(ts - 30)) for p, o, ts in events]
    n = len(current)
    assert current == expected_current[:n] and value == current
    assert delta == expected_delta[:n]
    table = program.split("/")[1].removesuffix(".py") + "_table"
    assert re.search(
        rf"Table '{table}': key 'counter' was written while processing topic '{topic}' "
        r"partition \d+, but the key belongs to partition \d+: the stream is not "
        r"partitioned by the table's key, so each partition keeps its own value for it\.",
        output,
    )


def windowing(env: Env) -> dict[str, Callable[[], None]]:
    """tumbling then hopping: one app id ('windowing'), so one after the other."""
    return {
        "windowing/tumbling": lambda: _windowed_counts(
            env, "windowing/tumbling.py", "tumbling_topic", lambda ts: ts // 10 * 10, 10
        ),
        "windowing/hopping": lambda: _windowed_counts(
            env, "windowing/hopping.py", "hopping_topic", lambda ts: ts // 5 * 5, 10
        ),
    }


def windowed_aggregation(env: Env) -> None:
    fresh("raw-event", "agg-event", apps=("windowed-agg",))
    worker = env.python("windowed_aggregation.py", "worker", "-l", "info")
    pattern = r"^processing window:(\d+) events,mean: ([\d.]+),timestamp ([\d.]+)$"
    worker.wait_for(pattern, 60, count=2)
    closed = [
        (int(n), float(mean), float(ts))
        for n, mean, ts in re.findall(pattern, worker.stop(), re.MULTILINE)
    ]
    raw = [orjson.loads(v) for _, _, _, v in records("raw-event")]
    sunk = [orjson.loads(v) for _, _, _, v in records("agg-event")]
    assert [(s["count"], s["date"]) for s in sunk] == [(n, ts) for n, _, ts in closed]
    for (n, mean, start), s in zip(closed, sunk, strict=True):
        values = [r["value"] for r in raw if start <= r["date"] < start + 10]
        assert len(values) == n
        assert abs(sum(values) / n - mean) <= 0.005 and abs(s["mean"] - sum(values) / n) < 1e-9


def hopping_2(env: Env) -> None:
    fresh("raw-event", apps=("windowed-hopping",))
    worker = env.python("windowing/hopping_2.py")  # its __main__ adds `worker -l info`
    pattern = r"^Receive message : RawModel\(date=(\d+), value=([\d.]+)\)$"
    worker.wait_for(pattern, 60, count=60)
    received = [(int(d), float(v)) for d, v in re.findall(pattern, worker.stop(), re.MULTILINE)]
    previous: tuple[int, float] | None = None
    for date, value in received:
        # The list of the hop the event's date falls in (hops of 3 s) grows by one.
        if previous is None or date // 3 != previous[0] // 3:
            assert value == 1, received
        else:
            assert value == previous[1] + 1, received
        previous = (date, value)
    assert len({d // 3 for d, _ in received}) >= 2


def windowed(env: Env) -> dict[str, Callable[[], None]]:
    """windowed_aggregation then hopping_2: both read and write topic 'raw-event'."""
    return {
        "windowed_aggregation": lambda: windowed_aggregation(env),
        "windowing/hopping_2": lambda: hopping_2(env),
    }


def word_count(env: Env) -> None:
    fresh("posts", apps=("word-counts",))
    worker = env.python("word_count.py", "worker", "-l", "info")
    web = worker.web_url()
    worker.wait_for(r"TALLY - after", 60)
    words = ["the", "quick", "brown", "fox"]
    for word in words:
        poll(lambda w=word: http_json(f"{web}/count/{w}/") == {w: 1000}, 60, f"{word} = 1000")
    assert http_json(f"{web}/last/fox/") == {"fox": {w: 1000 for w in words}}
    worker.wait_for(r"\$\$ TALLY \$\$", 30)
    output = worker.stop()
    tally = output[output.index("$$ TALLY $$") :]
    rows = dict(re.findall(r"^│ '(\w+)'\s+│ (\d+)\s+│$", tally, re.MULTILINE))
    assert sorted(rows) == sorted(words) and all(0 < int(n) <= 1000 for n in rows.values())


def bound_agent(env: Env) -> None:
    fresh(apps=("bound_agent",))
    worker = env.python("bound_agent.py", "worker", "-l", "info")
    worker.wait_for(READY, 60)
    worker.wait_for(r"\[(stage1\] action|dead letter\] arrived: DeadLetter\(stage='stage1')", 30)
    time.sleep(7)  # two more timer rounds (every 3 s)
    output = worker.stop()
    arrived = defaultdict(list)
    for stage, device in re.findall(
        r"\[(stage\d)\] action arrived: DeviceAction\(device_id=(\d+)\)", output
    ):
        arrived[stage].append(int(device))
    dead = defaultdict(list)
    dead_pattern = (
        r"\[dead letter\] arrived: "
        r"DeadLetter\(stage='(stage\d)', record=DeviceAction\(device_id=(\d+)\)\)"
    )
    for stage, device in re.findall(dead_pattern, output):
        dead[stage].append(int(device))
    # Each batch of the timer is device ids 0..n-1; stage 2 gets what stage 1 passed on.
    assert arrived["stage1"] or dead["stage1"]
    assert Counter(arrived["stage1"]) == Counter(arrived["stage2"]) + Counter(dead["stage2"])
    # Stage 1 takes each of the timer's batches (device ids 0..n-1) whole and in order.
    outcomes = re.findall(
        r"(?:\[stage1\] action arrived: |DeadLetter\(stage='stage1', record=)"
        r"DeviceAction\(device_id=(\d+)\)",
        output,
    )
    batch: list[int] = []
    for device in map(int, outcomes):
        if device == 0:
            batch = []
        assert device == len(batch), outcomes
        batch.append(device)
    assert outcomes and outcomes[0] == "0"


def tabletest(env: Env) -> None:
    fresh("countstopic", apps=("tabletest",))
    worker = env.python("tabletest.py")  # its __main__ adds `worker -l info`
    web = worker.web_url()
    worker.wait_for(READY, 60)
    producer = env.python("tabletest.py", "produce")
    producer.wait_for(r"^200$", 60)  # 201 values per partition sent, then it sleeps 2 s
    producer.stop()
    sums: dict[int, int] = defaultdict(int)
    values: dict[int, list[int]] = defaultdict(list)
    for partition, _, _, value in records("countstopic"):
        sums[partition] += orjson.loads(value)
        values[partition].append(orjson.loads(value))
    assert sorted(sums) == [0, 1, 2, 3]
    for sent in values.values():
        assert sent == list(range(len(sent)))
    for partition, total in sums.items():
        poll(
            lambda p=partition, t=total: http_json(f"{web}/count/{p}/") == {str(p): t},
            60,
            f"/count/{partition}/ = {total}",
        )
    output = worker.stop()
    assert "!!! PREV" not in output


def withdrawals(env: Env) -> None:
    fresh("withdrawals", apps=("faust-withdrawals-v5",))
    worker = env.python("withdrawals.py", "worker", "-l", "info")
    worker.wait_for(READY, 60)
    command = env.python("withdrawals.py", "produce", "--max-messages", "200", "--max-latency", "0")
    assert "+SEND 0" in command.finish(90)
    sent: dict[str, float] = defaultdict(float)
    for _, _, key, value in records("withdrawals"):
        sent[key.decode()] += orjson.loads(value)["amount"]
    assert len(records("withdrawals")) == 200

    def totals() -> dict[str, float]:
        per_user: dict[str, float] = defaultdict(float)
        changelog = latest_values("faust-withdrawals-v5-user_to_total-changelog")
        for (user, _window), amount in changelog.items():
            per_user[user] += amount or 0
        return per_user

    def complete() -> bool:
        got = totals()
        return set(got) == set(sent) and all(abs(got[u] - sent[u]) < 1e-6 for u in sent)

    poll(complete, 60, "the user_to_total changelog to hold every user's total")
    worker.stop()


def task_queue(env: Env) -> None:
    fresh("tasks", apps=("faust-celery",))
    worker = env.python("task_queue.py", "worker", "-l", "info")
    worker.wait_for(r"^Result of \S+ is: \d+$", 60, count=3)
    output = worker.stop()
    asked = {
        task_id: (int(a), int(b))
        for task_id, a, b in re.findall(
            r"^Processing task: Request\(id='(\S+)', name='__main__\.add', "
            r"arguments=\[(\d+), (\d+)\], keyword_arguments=\{\}\)$",
            output,
            re.MULTILINE,
        )
    }
    results = re.findall(r"^Result of (\S+) is: (\d+)$", output, re.MULTILINE)
    assert len(results) >= 3
    for task_id, result in results:
        assert sum(asked[task_id]) == int(result)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


UVICORN_READY = r"Uvicorn running on (http://\S+) \(Press CTRL\+C to quit\)$"


def fastapi_example(env: Env) -> None:
    fresh("greetings", apps=("hello-world-fastapi",))
    # uvicorn serves the FastAPI app; the Faust app runs in its lifespan.
    server = env.uvicorn("fastapi_example:api", free_port(), cwd=".")
    (ready,) = server.wait_for(UVICORN_READY, 60)
    web = ready.group(1)
    assert http_json(f"{web}/") == {"Hello": "World"}
    assert http_json(f"{web}/items/5?q=x") == {"item_id": 5, "q": "x"}
    assert http_json(f"{web}/produce") == {"success": True}
    # /produce's 100 greetings (and the 5 s timer's) reach the agent on the same loop.
    server.wait_for(r"^hello \d+$", 30, count=100)
    output = server.stop()
    assert "Application shutdown complete." in output and "Traceback" not in output, output
    printed = Counter(re.findall(r"^hello \d+$", output, re.MULTILINE))
    sent = Counter(json.loads(v) for _, _, _, v in records("greetings"))
    assert set(printed) == {f"hello {i}" for i in range(100)} and printed <= sent
    # The same file runs as a plain worker: `app` is the Faust app.
    worker = env.faust_command("-A", "fastapi_example", "worker", "-l", "info", cwd=".")
    worker.wait_for(READY, 60)
    worker.wait_for(r"^hello 99$", 30)  # the timer's round, 5 s after the start
    assert "Traceback" not in worker.stop()


def fastapi_project(env: Env) -> None:
    fresh("greetings", apps=("hello-world-fastapi",))
    server = env.uvicorn("main:api", free_port(), cwd="fastapi_project")
    (ready,) = server.wait_for(UVICORN_READY, 60)
    web = ready.group(1)
    assert http_json(f"{web}/") == {"Hello": "World"}
    assert http_json(f"{web}/items/7") == {"item_id": 7, "q": None}
    assert http_json(f"{web}/produce") == {"success": True}
    # The agent (found by autodiscovery) prints each greeting and puts it in the
    # global table, which /table reads.
    (first,) = server.wait_for(r"^greeting: ([0-9a-f]{32})$", 30)
    poll(
        lambda: {first.group(1): ["hello world"]} in http_json(f"{web}/table"),
        30,
        "/table to list the greeting",
    )
    output = server.stop()
    assert "Application shutdown complete." in output and "Traceback" not in output, output
    printed = re.findall(r"^greeting: ([0-9a-f]{32})$", output, re.MULTILINE)
    sent = [json.loads(v) for _, _, _, v in records("greetings")]
    assert printed and set(printed) <= set(sent)
    # worker_main.py: the worker serves the same API (serve_asgi, port 8000) once ready.
    worker = env.faust_command("-A", "worker_main", "worker", "-l", "info", cwd="fastapi_project")
    worker.wait_for(READY, 60)
    worker.wait_for(r"Uvicorn running on http://127\.0\.0\.1:8000 ", 30)
    web = "http://127.0.0.1:8000"
    assert http_json(f"{web}/") == {"Hello": "World"}
    assert http_json(f"{web}/produce") == {"success": True}
    (greeting,) = worker.wait_for(r"^greeting: ([0-9a-f]{32})$", 30)
    poll(
        lambda: {greeting.group(1): ["hello world"]} in http_json(f"{web}/table"),
        30,
        "/table of worker_main to list the greeting",
    )
    assert "Traceback" not in worker.stop()
    # my_faust/app.py: the plain worker; its timer's greetings reach the agent.
    worker = env.faust_command("-A", "my_faust.app", "worker", "-l", "info", cwd="fastapi_project")
    worker.wait_for(READY, 60)
    worker.wait_for(r"^greeting: [0-9a-f]{32}$", 30)
    assert "Traceback" not in worker.stop()


def django(env: Env) -> None:
    fresh(apps=("django-proj",))
    # Django refuses its ORM's blocking calls on an event loop, where the example's
    # agents make them, unless told to allow them.
    unsafe = {"DJANGO_ALLOW_ASYNC_UNSAFE": "true"}
    env.run_in("django", "django-migrate", "manage.py", "migrate").finish(120)
    database = env.root / "examples" / "django" / "db.sqlite3"

    def accounts() -> list[tuple[str, float, int]]:
        with sqlite3.connect(database) as db:
            rows = db.execute("SELECT name, score, active FROM accounts_account ORDER BY id")
            return [(n, float(s), a) for n, s, a in rows]

    # README: `uvicorn proj.asgi:application` (Django and Faust on one loop).
    server = env.uvicorn("proj.asgi:application", free_port(), cwd="django", **unsafe)
    (ready,) = server.wait_for(UVICORN_READY, 60)
    with urllib.request.urlopen(f"{ready.group(1)}/admin/login/", timeout=10) as response:
        assert response.status == 200 and b"Django" in response.read()
    # A Record as Faust sends it (with its namespace), to the agent found in the
    # installed app `accounts` by autodiscovery. The model's score (decimal_places=1000)
    # holds values below 1 only.
    record = {"name": "alice", "score": 0.5, "active": True}
    record["__faust"] = {"ns": "accounts.agents.AccountRecord"}
    send = ("-A", "faustapp.app", "send")
    env.faust_command(*send, "@add_account", json.dumps(record), cwd="django").finish(60)
    poll(lambda: accounts() == [("alice", 0.5, 1)], 30, "the account in the database")
    env.faust_command(*send, "@disable_account", "1", cwd="django").finish(60)
    poll(lambda: accounts() == [("alice", 0.5, 0)], 30, "the account disabled")
    output = server.stop()
    assert "Application shutdown complete." in output and "Traceback" not in output, output
    # README: `proj-faust worker -l info`, the console script faustapp.app:main.
    main = "import sys; from faustapp.app import main; sys.argv[0] = 'proj-faust'; main()"
    worker = env.run_in("django", "proj-faust", "-c", main, "worker", "-l", "info", **unsafe)
    worker.wait_for(READY, 60)
    assert "Traceback" not in worker.stop()


def hello(env: Env) -> dict[str, Callable[[], None]]:
    """hello_world, fastapi_example, fastapi_project: one topic ('greetings'), the last
    two one app id, so one after the other."""
    return {
        "hello_world": lambda: hello_world(env),
        "fastapi_example": lambda: fastapi_example(env),
        "fastapi_project": lambda: fastapi_project(env),
    }


#: Program -> its scenario; a scenario returning a dict runs several programs in order.
SCENARIOS: dict[str, Callable[[Env], Any]] = {
    "crontab/tz_unaware": crontab_tz_unaware,  # the longest (up to a minute): first
    "hello": hello,  # three programs one after the other
    "windowing": windowing,
    "windowed": windowed,
    "tabletest": tabletest,
    "word_count": word_count,
    "advanced/rpc": rpc,
    "withdrawals": withdrawals,
    "advanced/isolated_partitions_crashing": isolated_partitions_crashing,
    "tableofset": tableofset,
    "concurrency": concurrency,
    "leader": leader,
    "crontab/tz_aware": crontab_tz_aware,
    "advanced/service": service,
    "bound_agent": bound_agent,
    "task_queue": task_queue,
    "django": django,
}
GROUPS = {
    "hello": ["hello_world", "fastapi_example", "fastapi_project"],
    "windowing": ["windowing/tumbling", "windowing/hopping"],
    "windowed": ["windowed_aggregation", "windowing/hopping_2"],
}
PROGRAMS = [p for name in SCENARIOS for p in GROUPS.get(name, [name])]


@pytest.fixture(scope="module")
def example_results(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, concurrent.futures.Future[None]]]:
    """Every program's scenario, started at once (a few at a time) in threads."""
    host, _, port = kafka_bootstrap.split(",")[0].rpartition(":")
    if port != "9092" or host not in ("127.0.0.1", "localhost"):
        pytest.fail(
            f"Faust's example programs hard-code kafka://localhost:9092, but the session's "
            f"Kafka is {kafka_bootstrap}: run Kafka there (FAUST_KAFKA_PORT=9092, the "
            "default of scripts/kafka).",
            pytrace=False,
        )
    root = extract_examples(download_sdist(), tmp_path_factory.mktemp("faust-examples"))
    logs = tmp_path_factory.mktemp("faust-example-logs")
    env = Env(root, program_libraries(), logs)
    futures = {program: concurrent.futures.Future() for program in PROGRAMS}

    def run(name: str) -> None:
        scenario = SCENARIOS[name]
        steps = scenario(env) if name in GROUPS else {name: lambda: scenario(env)}
        for program, step in steps.items():
            future = futures[program]
            if not future.set_running_or_notify_cancel():
                continue
            try:
                step()
            except BaseException as exc:  # noqa: BLE001 - handed to the test
                future.set_exception(exc)
            else:
                future.set_result(None)

    pool = concurrent.futures.ThreadPoolExecutor(PARALLEL, thread_name_prefix="example")
    try:
        for name in SCENARIOS:
            pool.submit(run, name)
        yield futures
    finally:
        for future in futures.values():
            future.cancel()
        env.stop_all()
        pool.shutdown(wait=True, cancel_futures=True)
        env.stop_all()


@pytest.mark.parametrize("program", PROGRAMS)
def test_faust_example_runs_unchanged(
    program: str, example_results: dict[str, concurrent.futures.Future[None]]
) -> None:
    """The program of faust-streaming's examples/ runs as written (see the module doc)."""
    try:
        example_results[program].result(timeout=RESULT_TIMEOUT)
    except concurrent.futures.TimeoutError:
        pytest.fail(f"{program} gave no result within {RESULT_TIMEOUT} s", pytrace=False)
