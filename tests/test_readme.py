"""README.md runs as written, and so does every docstring example (``>>>``) in faust/.

Every code block of the README carries a marker on the line before it,
``<!-- readme-test: ID -->``:

- a file name (``tour.py``): the block is that file of a project directory that holds
  every such file; a Python file is then imported (``test_tour.py`` is run by pytest),
  ``pyproject.toml`` is read;
- the ID of a runner in ``RUNNERS`` (a shell command, run in a subprocess), or in
  ``KAFKA_BLOCKS`` (run against real Kafka by tests/integration/test_readme_kafka.py);
- ``fragment (why)``: deliberately not run, saying why.

A block without a marker, or with an ID nothing runs, fails
``test_every_block_is_run_or_marked_as_a_fragment``.
"""

from __future__ import annotations

import doctest
import importlib
import json
import os
import pkgutil
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

import faust
from faust.settings import Settings

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"

_MARKER = re.compile(r"^\s*<!--\s*readme-test:\s*(.+?)\s*-->\s*$")
_FENCE = re.compile(r"^(\s*)```(\w*)\s*$")

#: Blocks that need Kafka: tests/integration/test_readme_kafka.py runs them.
KAFKA_BLOCKS = ("command-line", "kafka-one-node", "kafka-three-nodes", "status")


@dataclass(frozen=True)
class Block:
    marker: str | None  # the ID of its <!-- readme-test: ID --> marker
    lang: str
    code: str
    line: int  # where it starts in README.md (1-based)

    @property
    def is_file(self) -> bool:
        return self.marker is not None and self.marker.endswith((".py", ".toml"))

    @property
    def is_fragment(self) -> bool:
        return self.marker is not None and self.marker.startswith("fragment")

    def commands(self) -> list[str]:
        """The shell commands of the block, one a line, without their comments."""
        lines = (line.split("  #")[0].strip() for line in self.code.splitlines())
        return [line for line in lines if line and not line.startswith("#")]


def readme_blocks(text: str | None = None) -> list[Block]:
    """The fenced code blocks of the README, and any indented (4-space) code block
    (as ``lang='indented'``, which can carry no marker: write it fenced)."""
    lines = (README.read_text() if text is None else text).splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if fence is None:
            previous = lines[i - 1] if i else ""
            if lines[i].startswith("    ") and not previous.strip() and lines[i].strip():
                blocks.append(Block(None, "indented", lines[i].strip(), i + 1))
            i += 1
            continue
        indent, lang = fence.group(1), fence.group(2)
        end = i + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        code = "\n".join(line[len(indent) :] for line in lines[i + 1 : end]) + "\n"
        before = [line for line in lines[:i] if line.strip()]
        marker = _MARKER.match(before[-1]) if before else None
        blocks.append(Block(marker.group(1) if marker else None, lang, code, i + 1))
        i = end + 1
    return blocks


def block(marker: str) -> Block:
    [found] = [b for b in readme_blocks() if b.marker == marker]
    return found


# -- running things as a user would ----------------------------------------------------------


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    # The `faust` command of the interpreter running the tests comes first on PATH.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("FAUST_BROKER", None)
    env.update(extra)
    return env


def run(command: str, cwd: Path, timeout: float = 60, **env: str) -> str:
    """Run a shell command to its end; fail with its output unless it exits 0."""
    proc = subprocess.Popen(
        ["bash", "-c", command],
        cwd=cwd,
        env=_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # so a command that hangs goes with all its processes
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"`{command}` did not finish within {timeout} s:\n{stdout}{stderr}")
    assert proc.returncode == 0, f"`{command}` exited {proc.returncode}:\n{stdout}{stderr}"
    return stdout


@dataclass
class Finished:
    output: str
    returncode: int | None


@contextmanager
def running(
    command: str, cwd: Path, needle: str, count: int = 1, timeout: float = 60, **env: str
) -> Iterator[Finished]:
    """Start a long-running shell command (a worker) and wait until it printed ``needle``
    ``count`` times; on leaving, press Ctrl-C (SIGINT to its process group) and wait for
    it. The result has its whole output and exit status once the block is left."""
    proc = subprocess.Popen(
        ["bash", "-c", command],
        cwd=cwd,
        env=_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")))
    reader.start()
    finished = Finished("", None)
    try:
        deadline = time.monotonic() + timeout
        while "".join(lines).count(needle) < count:
            if time.monotonic() > deadline or proc.poll() is not None:
                time.sleep(0.2)  # the last lines
                pytest.fail(f"`{command}` never printed {needle!r}:\n{''.join(lines)}")
            time.sleep(0.05)
        yield finished
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        reader.join(timeout=10)
        finished.output, finished.returncode = "".join(lines), proc.returncode


def run_until(
    command: str, cwd: Path, needle: str, count: int = 1, timeout: float = 60, **env: str
) -> Finished:
    """Run a long-running shell command until it printed ``needle`` ``count`` times,
    then stop it with Ctrl-C."""
    with running(command, cwd, needle, count, timeout, **env) as finished:
        pass
    return finished


# -- the project the README's files make -----------------------------------------------------


def write_readme_files(directory: Path) -> Path:
    """Write every file the README shows (tour.py, myapp.py, ...) into ``directory``."""
    for b in readme_blocks():
        if b.is_file:
            assert b.marker is not None
            (directory / b.marker).write_text(b.code)
    return directory


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_readme_files(tmp_path)


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Finished]]:
    """A copy of the repository in which the quickstart command was run (it installs
    the package into a new .venv, then runs examples/hello.py until Ctrl-C)."""
    root = tmp_path_factory.mktemp("clone")
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", ".venv*", ".kafka")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, root / name)
    for name in ("faust", "examples"):
        shutil.copytree(REPO / name, root / name, ignore=ignore)
    [command] = block("quickstart").commands()
    yield root, run_until(command, root, "Hello from Faust to you", count=2, timeout=300)


def _quickstart(request: pytest.FixtureRequest, b: Block) -> None:
    _, finished = request.getfixturevalue("clone")
    # Ctrl-C stops it cleanly.
    assert finished.returncode == 0, finished.output
    assert "Worker stopped" in finished.output and "Traceback" not in finished.output


def _hello_worker(request: pytest.FixtureRequest, b: Block) -> None:
    root, _ = request.getfixturevalue("clone")
    [command] = b.commands()
    finished = run_until(command, root, "Hello from Faust to you", count=2)
    assert finished.returncode == 0, finished.output
    assert "Worker ready" in finished.output and "Worker stopped" in finished.output
    assert "Traceback" not in finished.output


# -- the web server's blocks: one worker of examples/word_count.py answers them all


@dataclass
class WebWorker:
    port: int
    #: The port the README's blocks give, replaced by ``port`` (a free one) when run.
    written: str

    def url(self, path: str) -> str:
        return f"http://localhost:{self.port}{path}"


def free_port() -> int:
    """A local port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def web_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebWorker]:
    """The web-server block's worker, on the embedded broker, on a free port."""
    root = tmp_path_factory.mktemp("web")
    shutil.copy(REPO / "examples" / "word_count.py", root)
    command = block("web-server").commands()[0]
    [written] = re.findall(r"--web-port (\d+)", command)
    worker = WebWorker(free_port(), written)
    with running(command.replace(written, str(worker.port)), root, "Worker ready") as finished:
        yield worker
    assert finished.returncode == 0, finished.output
    assert "Traceback" not in finished.output


def _get(url: str) -> tuple[int, str, str]:
    """Status, content type and body of a GET (an error status is an answer too)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def _web_server(request: pytest.FixtureRequest, b: Block) -> None:
    worker: WebWorker = request.getfixturevalue("web_worker")
    ready, count, metrics = (
        run(command.replace(worker.written, str(worker.port)), REPO) for command in b.commands()[1:]
    )
    assert json.loads(ready) == {"status": "ready"}
    assert json.loads(count)["word"] == "faust"
    # Prometheus' text format, with the counts the README names.
    families = {family.name for family in text_string_to_metric_families(metrics)}
    assert {"faust_agent_events_in", "faust_consumer_lag", "faust_commits"} <= families
    status, content_type, page = _get(worker.url("/dashboard"))
    assert status == 200 and content_type.startswith("text/html"), content_type


def _kubernetes_probes(request: pytest.FixtureRequest, b: Block) -> None:
    container = yaml.safe_load(b.code)
    [port] = container["ports"]
    # The worker's default port, by the name the probes use.
    assert port["containerPort"] == Settings.web_port
    worker: WebWorker = request.getfixturevalue("web_worker")
    for probe in ("livenessProbe", "readinessProbe"):
        get = container[probe]["httpGet"]
        assert get["port"] == port["name"]
        status, content_type, _ = _get(worker.url(get["path"]))
        assert status == 200 and content_type.startswith("application/json"), probe


def _prometheus_scrape(request: pytest.FixtureRequest, b: Block) -> None:
    [job] = yaml.safe_load(b.code)["scrape_configs"]
    [targets] = job["static_configs"]
    default = Settings.web_port
    assert all(target.endswith(f":{default}") for target in targets["targets"])
    worker: WebWorker = request.getfixturevalue("web_worker")
    status, content_type, body = _get(worker.url(job["metrics_path"]))
    assert status == 200 and content_type.startswith("text/plain"), content_type
    list(text_string_to_metric_families(body))


#: Runners of the blocks that are not files, by marker.
RUNNERS: dict[str, Callable[[pytest.FixtureRequest, Block], None]] = {
    "quickstart": _quickstart,
    "hello-worker": _hello_worker,
    "web-server": _web_server,
    "kubernetes-probes": _kubernetes_probes,
    "prometheus-scrape": _prometheus_scrape,
}


def _run_file(request: pytest.FixtureRequest, b: Block) -> None:
    project = request.getfixturevalue("project")
    assert b.marker is not None
    name = b.marker
    if name.startswith("test_"):
        out = run(f"{sys.executable} -m pytest -q -p no:cacheprovider {name}", project)
        assert "1 passed" in out, out
    elif name.endswith(".py"):
        run(f"{sys.executable} -c 'import {name[:-3]}'", project)
    else:
        config = tomllib.loads(b.code)
        assert config["tool"]["pytest"]["ini_options"]["asyncio_mode"] == "auto"


def _runnable() -> list[Block]:
    return [
        b for b in readme_blocks() if b.marker is not None and (b.is_file or b.marker in RUNNERS)
    ]


def test_every_block_is_run_or_marked_as_a_fragment() -> None:
    blocks = readme_blocks()
    assert len(blocks) > 10
    unmarked = [f"line {b.line}: {b.code.splitlines()[0]}" for b in blocks if b.marker is None]
    assert not unmarked, (
        "README blocks without a <!-- readme-test: ID --> marker on the line before "
        f"(write indented blocks fenced): {unmarked}"
    )
    markers = [b.marker for b in blocks if not b.is_fragment]
    twice = sorted({m for m in markers if markers.count(m) > 1 and m is not None})
    assert not twice, f"README markers used for two blocks: {twice}"
    known = set(RUNNERS) | set(KAFKA_BLOCKS)
    unknown = [b.marker for b in blocks if not (b.is_file or b.is_fragment or b.marker in known)]
    assert not unknown, f"README markers that no test runs: {unknown}"
    assert known <= set(markers), f"runners without a README block: {known - set(markers)}"
    for b in blocks:
        if b.is_fragment:
            assert re.fullmatch(r"fragment \(.+\)", b.marker or ""), f"say why: {b.marker}"


@pytest.mark.parametrize("b", _runnable(), ids=lambda b: b.marker)
def test_readme_block_runs(request: pytest.FixtureRequest, b: Block) -> None:
    assert b.marker is not None
    if b.is_file:
        _run_file(request, b)
    else:
        RUNNERS[b.marker](request, b)


def test_the_quickstart_app_is_examples_hello() -> None:
    example = (REPO / "examples" / "hello.py").read_text()
    normalized = re.sub(r"\n{3,}", "\n\n", example)
    assert block("hello.py").code in normalized


def test_faust_cli_is_there_after_import_faust() -> None:
    # A new interpreter: in this one another test may have imported faust.cli already.
    command = "import faust; print(faust.cli.option, faust.cli.argument)"
    done = subprocess.run([sys.executable, "-c", command], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# -- docstring examples ----------------------------------------------------------------------


def _modules_with_examples() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(faust.__path__, "faust."):
        spec = importlib.util.find_spec(info.name)
        if spec is not None and spec.origin and ">>>" in Path(spec.origin).read_text():
            names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", _modules_with_examples())
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    source = Path(module.__file__ or "").read_text()
    tests = doctest.DocTestFinder().find(module)
    # Every '>>>' line of the module is an example doctest finds (none hides in a
    # comment, a nested function or an unreachable docstring) and runs.
    # (An object reachable under two names, like a codec instance, is found twice.)
    found = {(t.lineno or 0) + e.lineno for t in tests for e in t.examples}
    written = {i for i, line in enumerate(source.splitlines()) if line.lstrip(" #")[:4] == ">>> "}
    assert written <= found, f"{name}: doctest does not run the '>>>' on lines " + ", ".join(
        str(i + 1) for i in sorted(written - found)
    )
    assert "doctest: +SKIP" not in source
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in tests:
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)
