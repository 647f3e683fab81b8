"""Mistakes on the command line fail at once, with one line naming the fix.

Each test runs the ``faust`` command (or ``python app.py``) as a user would, and checks
the exit status, the one error line and that no traceback was printed.
"""

from __future__ import annotations

import socket
import subprocess
import sys
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


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["-r", "0", "hello-topic", GREETING], ["--repeat 0", "1 or more"]),
        (["-p", "-1", "hello-topic", GREETING], ["--partition -1", "from 0"]),
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


def test_send_to_an_unreachable_broker_fails_in_bounded_time(project: Path) -> None:
    url = f"kafka://127.0.0.1:{_closed_port()}"
    env = {"FAUST_BROKER": url, "FAUST_BROKER_CONNECT_TIMEOUT": "2"}
    started = time.monotonic()
    result = _faust("-A", "hello", "send", "hello-topic", GREETING, cwd=project, env=env)
    _error_line(result, url, "broker_connect_timeout")
    assert time.monotonic() - started < 15


# -- finding the app, declarations, worker options


def test_app_given_as_a_file_path(project: Path) -> None:
    result = _faust("-A", "hello.py", "agents", cwd=project)
    _only_line(result, "not a file path", "-A hello", status=2)
    result = _faust("-A", "examples/hello.py", "agents", cwd=project.parent)
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
