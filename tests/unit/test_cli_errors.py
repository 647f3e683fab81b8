"""Mistakes on the command line fail at once, with one line naming the fix.

Each test runs the ``faust`` command (or ``python app.py``) as a user would, and checks
the exit status, the one error line and that no traceback was printed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from .test_cli import HELLO, _env

# A value of hello-topic (value_type=Greeting) that fits.
GREETING = '{"from_name": "Ada", "to_name": "you"}'

COUNTER = """
import faust

app = faust.App("counter", store="rocksdb://", datadir="counter-data")
clicks = app.topic("clicks", key_type=str, value_type=int, partitions=2)
counts = app.Table("counts", default=int, partitions=2)

@app.agent(clicks)
async def count(stream):
    async for page, n in stream.items():
        counts[page] += n

if __name__ == "__main__":
    app.main()
"""


def _run(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env={**_env(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _faust(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return _run("-m", "faust", *args, cwd=cwd, env=env, timeout=timeout)


def _error_line(result: subprocess.CompletedProcess[str], *needles: str, status: int = 1) -> str:
    """The one line the command ended with; checks the exit status and the needles."""
    output = result.stdout + result.stderr
    assert result.returncode == status, output
    assert "Traceback" not in output, output
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("faust: error: "), output
    for needle in needles:
        assert needle in line, line
    return line


def _only_line(result: subprocess.CompletedProcess[str], *needles: str, status: int = 1) -> str:
    """As _error_line, and nothing else was printed."""
    line = _error_line(result, *needles, status=status)
    assert result.stderr.strip() == line and not result.stdout.strip(), result.stderr
    return line


def _closed_port() -> int:
    """A local port nothing listens on (connections to it are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "hello.py").write_text(HELLO.read_text())
    (tmp_path / "counter.py").write_text(COUNTER)
    return tmp_path


# -- faust send


def test_send_refuses_the_embedded_broker(project: Path) -> None:
    # The record would go to an embedded broker that ends with this command: a worker
    # in another process never sees it.
    result = _faust("-A", "hello", "send", "hello-topic", GREETING, cwd=project)
    _only_line(result, "memory://", "broker='kafka://", "FAUST_BROKER=kafka://")
    result = _run("hello.py", "send", "@hello", GREETING, cwd=project)
    _only_line(result, "memory://", "FAUST_BROKER=")


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["-r", "0", "hello-topic", GREETING], ["--repeat 0", "1 or more"]),
        (["-p", "-1", "hello-topic", GREETING], ["--partition -1", "from 0"]),
        (["hello-topic"], ["give a VALUE, a --key, or both"]),
        (["hello-topic", "not json"], ["'not json'", "'hello-topic'", "Greeting", "JSON"]),
        (["hello-topic", '{"from": "Ada"}'], ["'hello-topic'", "missing required field"]),
        (["@hello", '{"to_name": "you"}'], ["'hello-topic'", "'from_name'"]),
        (["@nobody", GREETING], ["No agent named 'nobody'", "@hello"]),
        (["bad topic/name!", GREETING], ["'bad topic/name!'", "Kafka rejects"]),
    ],
)
def test_send_checks_its_arguments_before_sending(
    project: Path, args: list[str], needles: list[str]
) -> None:
    # A broker nobody answers on: the checks come first, so each fails at once.
    env = {"FAUST_BROKER": f"kafka://127.0.0.1:{_closed_port()}"}
    started = time.monotonic()
    result = _faust("-A", "hello", "send", *args, cwd=project, env=env)
    _only_line(result, *needles, status=2)
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["-V", "Nope", "hello-topic", GREETING], ["--value-type Nope", "faust models"]),
        (["-K", "Nope", "-k", "{}", "hello-topic", GREETING], ["--key-type Nope"]),
        (["--value-serializer", "nosuch", "hello-topic", GREETING], ["--value-serializer"]),
        (["--key-serializer", "nosuch", "-k", "a", "hello-topic"], ["--key-serializer"]),
        (
            ["-r", "2", "--min-latency", "2", "--max-latency", "1", "hello-topic", GREETING],
            ["--min-latency 2.0 --max-latency 1.0", "not above the maximum"],
        ),
        (["--min-latency", "-1", "hello-topic", GREETING], [">= 0"]),
    ],
)
def test_send_checks_types_serializers_and_latency(
    project: Path, args: list[str], needles: list[str]
) -> None:
    env = {"FAUST_BROKER": f"kafka://127.0.0.1:{_closed_port()}"}
    result = _faust("-A", "hello", "send", *args, cwd=project, env=env)
    _only_line(result, *needles, status=2)


# -- global options


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["-L", "eventlet"], ["--loop eventlet", "asyncio only", "-L asyncio"]),
        (["--loop", "gevent"], ["--loop gevent", "-L uvloop"]),
        (["-l", "loud"], ["--loglevel loud", "debug, info, warning"]),
        (["-W", "no-such-dir"], ["--workdir no-such-dir", "existing directory"]),
    ],
)
def test_bad_global_options_fail_in_one_line(
    project: Path, args: list[str], needles: list[str]
) -> None:
    result = _faust(*args, "-A", "hello", "agents", cwd=project)
    _only_line(result, *needles, status=2)


def test_loop_uvloop_needs_uvloop(project: Path) -> None:
    result = _faust("-L", "uvloop", "-A", "hello", "agents", cwd=project)
    try:
        import uvloop  # noqa: F401
    except ImportError:
        _only_line(result, "--loop uvloop", "pip install uvloop", status=2)
    else:
        assert result.returncode == 0, result.stderr


def test_clean_versions_refuses_a_directory_a_worker_uses(project: Path) -> None:
    from faust.stores.datadir import DataDirLock

    (project / "versioned.py").write_text('import faust\napp = faust.App("versioned", version=2)\n')
    (project / "versioned-data").mkdir()
    lock = DataDirLock(project / "versioned-data")
    lock.acquire()
    try:
        result = _faust("-A", "versioned", "clean-versions", cwd=project)
    finally:
        lock.release()
    line = _error_line(result, "clean-versions", "is running on", "stop it")
    assert f"(pid {os.getpid()})" in line
    assert (project / "versioned-data").is_dir()


def test_send_to_an_unreachable_broker_fails_in_bounded_time(project: Path) -> None:
    url = f"kafka://127.0.0.1:{_closed_port()}"
    env = {"FAUST_BROKER": url, "FAUST_BROKER_CONNECT_TIMEOUT": "2"}
    started = time.monotonic()
    result = _faust("-A", "hello", "send", "hello-topic", GREETING, cwd=project, env=env)
    _error_line(result, url, "broker_connect_timeout")
    assert time.monotonic() - started < 15
    # Before it, the wait is announced once; aiokafka's retries are not repeated.
    assert len(result.stderr.strip().splitlines()) <= 3, result.stderr


def test_send_finds_autodiscovered_agents_and_the_configured_broker(project: Path) -> None:
    # As Faust's Django example: the agent lives in an autodiscover package, and the
    # broker is set by an on_configured receiver.
    url = f"kafka://127.0.0.1:{_closed_port()}"
    (project / "found").mkdir()
    (project / "found" / "__init__.py").write_text("")
    (project / "found" / "agents.py").write_text(
        "from configured import app\n\n\n@app.agent()\nasync def greet(stream):\n"
        "    async for _ in stream:\n        pass\n"
    )
    (project / "configured.py").write_text(
        "import faust\n\napp = faust.App('configured', autodiscover=True, origin='found')\n\n\n"
        "@app.on_configured.connect\ndef configure(app, conf, **kwargs):\n"
        f"    conf.broker = {url!r}\n"
    )
    env = {"FAUST_BROKER_CONNECT_TIMEOUT": "2"}
    result = _faust("-A", "configured", "send", "@greet", '"hi"', cwd=project, env=env)
    _error_line(result, url, "broker_connect_timeout")


# -- faust status


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_status_refuses_the_embedded_broker(project: Path, json_flag: list[str]) -> None:
    # The embedded broker, with its consumer group, lives inside the worker's process.
    result = _faust("-A", "hello", "status", *json_flag, cwd=project)
    _only_line(result, "status needs a Kafka broker", "memory://", "FAUST_BROKER=kafka://")


def test_status_of_an_unreachable_broker_fails_in_bounded_time(project: Path) -> None:
    url = f"kafka://127.0.0.1:{_closed_port()}"
    env = {"FAUST_BROKER": url, "FAUST_BROKER_CONNECT_TIMEOUT": "2"}
    started = time.monotonic()
    result = _faust("-A", "hello", "status", cwd=project, env=env)
    _only_line(result, url, "broker_connect_timeout")
    assert time.monotonic() - started < 15


def test_status_of_a_port_that_is_not_kafka(project: Path) -> None:
    # Something listens, accepts the connection and never answers (a wrong port).
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        url = f"kafka://127.0.0.1:{server.getsockname()[1]}"
        env = {"FAUST_BROKER": url, "FAUST_BROKER_CONNECT_TIMEOUT": "2"}
        started = time.monotonic()
        result = _faust("-A", "hello", "status", "--json", cwd=project, env=env)
    _only_line(result, url, "broker setting")
    assert time.monotonic() - started < 15


# -- finding the app, declarations, worker options


def test_app_given_as_a_file_path(project: Path) -> None:
    result = _faust("-A", "hello.py", "agents", cwd=project)
    _only_line(result, "not a file path", "-A hello", status=2)
    result = _faust("-A", "examples/hello.py", "agents", cwd=project)
    _only_line(result, "-A hello from the directory 'examples'", "-A examples.hello", status=2)


def test_app_attribute_that_does_not_exist(project: Path) -> None:
    result = _faust("-A", "hello:missing", "agents", cwd=project)
    _only_line(result, "module 'hello' has no attribute 'missing'", "-A hello:app", status=2)


def test_misspelt_crontab_timezone_fails_at_declaration(project: Path) -> None:
    (project / "tz.py").write_text(
        "import faust\napp = faust.App('tz')\n"
        "@app.crontab('0 * * * *', timezone='Europe/Amsterdm')\nasync def job():\n    pass\n"
    )
    started = time.monotonic()
    result = _faust("-A", "tz", "worker", cwd=project)
    _only_line(result, "@app.crontab for tz.job", "'Europe/Amsterdm'", "'Europe/Amsterdam'")
    assert time.monotonic() - started < 10


def test_logfile_in_a_missing_directory(project: Path) -> None:
    logfile = project / "no-such-dir" / "worker.log"
    result = _faust("-A", "hello", "worker", "--logfile", str(logfile), cwd=project, timeout=20)
    _only_line(result, f"--logfile {logfile}", "does not exist", status=2)


@pytest.mark.parametrize("script", ["hello.py", "counter.py"])
def test_python_app_py_reads_the_command_line(project: Path, script: str) -> None:
    # hello.py ends with app.start_worker(), counter.py with app.main().
    result = _run(script, "--help", cwd=project, timeout=20)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Usage: {script} [OPTIONS] COMMAND")
    assert "worker" in result.stdout and "send" in result.stdout
    assert "Worker ready" not in result.stderr
    result = _run(script, "--json", "agents", cwd=project, timeout=20)
    assert result.returncode == 0, result.stderr
    assert '"name": "@' in result.stdout


# -- stores that cannot open, and the data directory


class Worker:
    """A worker process whose output is collected as it runs."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=cwd,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        self.lines: list[str] = []
        stdout = self.proc.stdout
        self._reader = threading.Thread(target=lambda: self.lines.extend(iter(stdout.readline, "")))
        self._reader.start()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, needle: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.output:
            assert self.proc.poll() is None, self.output
            assert time.monotonic() < deadline, self.output
            time.sleep(0.05)

    def stop(self, signum: int = signal.SIGINT) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        try:
            return self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self._reader.join(timeout=10)


def test_store_without_rocksdict_stops_the_start(project: Path) -> None:
    # As if rocksdict were not installed: importing it fails.
    (project / "norocks.py").write_text("import sys\nsys.modules['rocksdict'] = None\n" + COUNTER)
    result = _faust("-A", "norocks", "worker", cwd=project, timeout=30)
    _error_line(result, "Table 'counts'", "pip install rocksdict", "faust[rocksdb]")
    assert "Worker ready" not in result.stderr


def test_second_worker_on_the_same_data_directory_and_reset_while_running(
    project: Path,
) -> None:
    first = Worker(["-m", "faust", "-A", "counter", "worker"], project)
    try:
        first.wait_for("Worker ready")
        pid = first.proc.pid
        started = time.monotonic()
        second = _faust("-A", "counter", "worker", cwd=project, timeout=30)
        line = _error_line(second, "'counter-data'", f"pid {pid}", "--datadir")
        assert "Worker ready" not in second.stderr, line
        assert time.monotonic() - started < 15
        reset = _faust("-A", "counter", "reset", "--yes", cwd=project)
        _only_line(reset, f"pid {pid}", "'counter-data'", "Stop the worker first")
        # With a data directory of its own, a second worker starts.
        own = ["-m", "faust", "--datadir", "other-data", "-A", "counter", "worker"]
        other = Worker(own, project)
        try:
            other.wait_for("Worker ready")
        finally:
            assert other.stop() == 0, other.output
        # A killed worker leaves its lock file behind; the lock itself dies with it.
        first.stop(signal.SIGKILL)
        assert (project / "counter-data" / "worker.lock").exists()
        reset = _faust("-A", "counter", "reset", "--yes", cwd=project)
        assert reset.returncode == 0, reset.stderr
        assert "Deleted local state of 1 table(s)" in reset.stdout
    finally:
        first.stop(signal.SIGKILL)


def test_data_directory_that_cannot_be_created(project: Path) -> None:
    (project / "blocker").write_text("a file where the data directory should go")
    env = {"FAUST_DATADIR": "blocker/data"}
    (project / "plain.py").write_text(COUNTER.replace(', datadir="counter-data"', ""))
    result = _faust("-A", "plain", "worker", cwd=project, env=env, timeout=30)
    _error_line(result, "Setting datadir", "'blocker/data'", "--datadir")
    result = _faust("--datadir", "blocker/x", "-A", "counter", "worker", cwd=project, timeout=30)
    _error_line(result, "Setting datadir", "'blocker/x'")
