"""Fixtures for tests against a real Kafka broker.

``kafka_bootstrap`` gives the bootstrap servers string. When ``KAFKA_BOOTSTRAP_SERVERS`` is
set, that cluster is used as it is. Otherwise the session starts a local Kafka with
``scripts/kafka up`` (Apache Kafka in KRaft mode from Maven Central jars) and stops it at
the end, unless it was already running before the session, in which case it is left up.

``kafka_sasl_bootstrap`` does the same for a second, separate cluster whose client listener
requires SASL (``scripts/kafka up --sasl``: SASL_PLAINTEXT on port 9192 with PLAIN and
SCRAM-SHA-256/512, client user ``faust`` / ``faust-secret``), or for the cluster named by
``KAFKA_SASL_BOOTSTRAP_SERVERS``, which must accept that user with SASL/PLAIN.

A broker that cannot be reached or started fails the tests that need it: integration
tests are never skipped for want of Kafka.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
KAFKA_SCRIPT = REPO_ROOT / "scripts" / "kafka"
INTEGRATION_DIR = Path(__file__).resolve().parent

# Generous: a cold cache downloads the jars with Maven first; the script has its own
# (shorter) timeout for the brokers, FAUST_KAFKA_TIMEOUT, and reports which log to read.
UP_TIMEOUT = 900
DOWN_TIMEOUT = 120


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "kafka: needs a real Kafka broker (scripts/kafka up, or KAFKA_BOOTSTRAP_SERVERS)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_DIR in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.kafka)


def run_kafka_script(
    *args: str, timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run scripts/kafka with this interpreter (it needs only the standard library);
    ``env`` is added to this process's environment (e.g. another FAUST_KAFKA_HOME)."""
    return subprocess.run(
        [sys.executable, str(KAFKA_SCRIPT), *args],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env} if env else None,
    )


def external_bootstrap() -> str | None:
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip() or None


#: The client user of ``scripts/kafka up --sasl`` (and of KAFKA_SASL_BOOTSTRAP_SERVERS).
SASL_USER = "faust"
SASL_PASSWORD = "faust-secret"


def running_cluster(env_var: str, *options: str) -> Iterator[str]:
    """Yield the bootstrap servers of the cluster in env_var, or of `scripts/kafka up`.

    options select the cluster (``--sasl``) for up/status/down, and ``check`` of an
    external cluster logs in with them when they include ``--sasl``.
    """
    command = shlex.join(["scripts/kafka", "up", *options])
    external = os.environ.get(env_var, "").strip()
    if external:
        login = ["--sasl-plain", f"{SASL_USER}:{SASL_PASSWORD}"] if "--sasl" in options else []
        check = run_kafka_script("check", external, "--timeout", "30", *login, timeout=90)
        if check.returncode != 0:
            pytest.fail(
                f"{env_var}={external} does not answer the Kafka protocol:\n{check.stderr.strip()}",
                pytrace=False,
            )
        yield external
        return

    status = run_kafka_script("status", *options, timeout=60)
    already_up = status.returncode == 0
    try:
        up = run_kafka_script("up", *options, timeout=UP_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        if not already_up:
            run_kafka_script("down", *options, timeout=DOWN_TIMEOUT)
        pytest.fail(f"`{command}` did not finish within {exc.timeout}s", pytrace=False)
    if up.returncode != 0:
        pytest.fail(
            f"could not bring up Kafka with `{command}` "
            f"(exit {up.returncode}):\n{up.stderr.strip()}\n{up.stdout.strip()}",
            pytrace=False,
        )
    lines = up.stdout.strip().splitlines()
    if not lines:
        pytest.fail(f"`{command}` printed no bootstrap servers:\n{up.stderr}", pytrace=False)
    bootstrap = lines[-1].strip()
    try:
        yield bootstrap
    finally:
        if not already_up:
            down = run_kafka_script("down", *options, timeout=DOWN_TIMEOUT)
            if down.returncode != 0:
                sys.stderr.write(
                    f"`scripts/kafka down {' '.join(options)}` failed:\n{down.stderr}\n"
                )


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a Kafka cluster for this test session."""
    yield from running_cluster("KAFKA_BOOTSTRAP_SERVERS")


@pytest.fixture(scope="session")
def kafka_sasl_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a Kafka cluster whose clients must log in with SASL.

    ``scripts/kafka up --sasl`` (a separate cluster from ``kafka_bootstrap``'s, on port
    9192), or ``KAFKA_SASL_BOOTSTRAP_SERVERS``. Clients use SASL_PLAINTEXT as
    ``SASL_USER`` / ``SASL_PASSWORD`` (faust / faust-secret) with PLAIN, or with
    SCRAM-SHA-256/512 on the cluster the script starts.
    """
    yield from running_cluster("KAFKA_SASL_BOOTSTRAP_SERVERS", "--sasl")


@pytest.fixture(scope="session")
def kafka_script() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``scripts/kafka ARGS...`` (keyword ``timeout`` in seconds, default 120)."""

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return run_kafka_script(*args, timeout=timeout)

    return run


@pytest.fixture(scope="session")
def kafka_is_external() -> bool:
    """True when KAFKA_BOOTSTRAP_SERVERS points at a cluster the script did not start."""
    return external_bootstrap() is not None


class OwnKafka:
    """A Kafka cluster of one test's own, next to the session's: its home under the
    test's tmp_path, its client ports from FAUST_KAFKA_OWN_PORT (default: the session
    cluster's FAUST_KAFKA_PORT + 10, so 9102 next to the default 9092)."""

    def __init__(self, home: Path) -> None:
        own = os.environ.get("FAUST_KAFKA_OWN_PORT", "").strip()
        port = int(own) if own else int(os.environ.get("FAUST_KAFKA_PORT") or 9092) + 10
        self.env = {
            "FAUST_KAFKA_HOME": str(home),
            "FAUST_KAFKA_PORT": str(port),
            "FAUST_KAFKA_CONTROLLER_PORT": str(port + 1000),
        }
        self.started = False

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run ``scripts/kafka ARGS...`` on this cluster; fail the test if it fails."""
        command = shlex.join(["scripts/kafka", *args])
        try:
            done = run_kafka_script(*args, timeout=timeout, env=self.env)
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"`{command}` did not finish within {exc.timeout}s", pytrace=False)
        if done.returncode != 0:
            pytest.fail(
                f"`{command}` (with {self.env}) failed (exit {done.returncode}):\n"
                f"{done.stderr.strip()}",
                pytrace=False,
            )
        return done

    def up(self, *options: str) -> str:
        """``scripts/kafka up OPTIONS...``; returns the bootstrap servers."""
        self.started = True
        return self.run("up", *options, timeout=UP_TIMEOUT).stdout.strip().splitlines()[-1]

    def down(self) -> None:
        if self.started:
            down = run_kafka_script("down", timeout=DOWN_TIMEOUT, env=self.env)
            if down.returncode != 0:
                sys.stderr.write(f"`scripts/kafka down` ({self.env}) failed:\n{down.stderr}\n")


@pytest.fixture
def own_kafka(tmp_path: Path) -> Iterator[OwnKafka]:
    """A separate cluster the test brings up itself (``own_kafka.up("--brokers", "3")``)
    and may break (``own_kafka.run("stop-broker", "2", "--kill")``); always stopped, and
    its data deleted, after the test."""
    cluster = OwnKafka(tmp_path / "kafka")
    try:
        yield cluster
    finally:
        cluster.down()
