"""Fixtures for tests against a real Kafka broker.

``kafka_bootstrap`` gives the bootstrap servers string. When ``KAFKA_BOOTSTRAP_SERVERS`` is
set, that cluster is used as it is. Otherwise the session starts a local Kafka with
``scripts/kafka up`` (Apache Kafka in KRaft mode from Maven Central jars) and stops it at
the end, unless it was already running before the session, in which case it is left up.

A broker that cannot be reached or started fails the tests that need it: integration
tests are never skipped for want of Kafka.
"""

from __future__ import annotations

import os
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


def run_kafka_script(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run scripts/kafka with this interpreter (it needs only the standard library)."""
    return subprocess.run(
        [sys.executable, str(KAFKA_SCRIPT), *args],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def external_bootstrap() -> str | None:
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip() or None


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a Kafka cluster for this test session."""
    external = external_bootstrap()
    if external:
        check = run_kafka_script("check", external, "--timeout", "30", timeout=90)
        if check.returncode != 0:
            pytest.fail(
                f"KAFKA_BOOTSTRAP_SERVERS={external} does not answer the Kafka protocol:\n"
                f"{check.stderr.strip()}",
                pytrace=False,
            )
        yield external
        return

    status = run_kafka_script("status", timeout=60)
    already_up = status.returncode == 0
    try:
        up = run_kafka_script("up", timeout=UP_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        if not already_up:
            run_kafka_script("down", timeout=DOWN_TIMEOUT)
        pytest.fail(f"`scripts/kafka up` did not finish within {exc.timeout}s", pytrace=False)
    if up.returncode != 0:
        pytest.fail(
            "could not bring up Kafka with `scripts/kafka up` "
            f"(exit {up.returncode}):\n{up.stderr.strip()}\n{up.stdout.strip()}",
            pytrace=False,
        )
    lines = up.stdout.strip().splitlines()
    if not lines:
        pytest.fail(f"`scripts/kafka up` printed no bootstrap servers:\n{up.stderr}")
    bootstrap = lines[-1].strip()
    try:
        yield bootstrap
    finally:
        if not already_up:
            down = run_kafka_script("down", timeout=DOWN_TIMEOUT)
            if down.returncode != 0:
                sys.stderr.write(f"`scripts/kafka down` failed:\n{down.stderr}\n")


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
