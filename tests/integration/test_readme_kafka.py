"""The README's blocks that need Kafka, run as written (see tests/test_readme.py)."""

from __future__ import annotations

import json
import shlex
import shutil
import socket
from pathlib import Path

import pytest

from faust.cli.status import NO_MEMBERS
from tests.integration.conftest import OwnKafka
from tests.test_readme import (
    KAFKA_BLOCKS,
    REPO,
    block,
    free_port,
    run,
    running,
    write_readme_files,
)


def test_command_line(kafka_bootstrap: str, tmp_path: Path) -> None:
    project = write_readme_files(tmp_path)
    worker, *commands = block("command-line").commands()
    # As the README says: name the broker first, so that the processes share events.
    broker = ";".join(f"kafka://{server}" for server in kafka_bootstrap.split(","))
    with running(worker, project, "Worker ready", timeout=120, FAUST_BROKER=broker) as done:
        outputs = [run(command, project, timeout=60, FAUST_BROKER=broker) for command in commands]
    assert done.returncode == 0, done.output
    send_topic, send_agent, buy, agents = outputs
    assert send_topic.startswith("sent to orders[") and send_agent.startswith("sent to orders[")
    assert buy.strip() == "500"  # the reply came back from the worker, through group_by
    assert "@large_orders" in agents and "orders" in agents


def test_status(kafka_bootstrap: str, tmp_path: Path) -> None:
    shutil.copy(REPO / "examples" / "word_count.py", tmp_path)
    broker = f"kafka://{kafka_bootstrap.split(',')[0]}"
    text, as_json = block("status").commands()
    port = free_port()
    worker = f"faust -A word_count worker --web-port {port}"
    with running(worker, tmp_path, "Worker ready", timeout=120, FAUST_BROKER=broker) as done:
        shown = run(text, tmp_path, FAUST_BROKER=broker)
        report = json.loads(run(as_json, tmp_path, FAUST_BROKER=broker))
    assert done.returncode == 0, done.output
    assert "Group 'word-count'" in shown and f"http://{socket.gethostname()}:{port}" in shown
    assert f"http://{socket.gethostname()}:{port}" in {m["url"] for m in report["members"]}
    assert {p["topic"] for p in report["partitions"]} >= {"sentences", "words"}
    # Once the worker stopped: no members, exit status 3, the offsets still shown.
    stopped = run(f"{as_json}; echo exit=$?", tmp_path, FAUST_BROKER=broker)
    assert stopped.rstrip().endswith(f"exit={NO_MEMBERS}"), stopped
    assert json.loads(stopped.rpartition("exit=")[0])["members"] == []


def _run_script_block(own_kafka: OwnKafka, marker: str) -> list[str]:
    outputs = []
    for command in block(marker).commands():
        program, *args = shlex.split(command)
        assert program == "scripts/kafka", command
        # On this test's own cluster (its own home and ports), not the session's.
        done = own_kafka.up(*args[1:]) if args[0] == "up" else own_kafka.run(*args).stdout
        outputs.append(done)
    return outputs


def test_kafka_script_one_node(own_kafka: OwnKafka) -> None:
    bootstrap, status, _ = _run_script_block(own_kafka, "kafka-one-node")
    assert bootstrap == f"127.0.0.1:{own_kafka.env['FAUST_KAFKA_PORT']}"
    assert bootstrap in status


@pytest.mark.timeout(600)
def test_kafka_script_three_nodes(own_kafka: OwnKafka) -> None:
    bootstrap, *_, status, _ = _run_script_block(own_kafka, "kafka-three-nodes")
    assert len(bootstrap.split(",")) == 3
    assert all(server in status for server in bootstrap.split(","))


def test_every_kafka_block_has_a_test() -> None:
    tests = {
        "command-line": test_command_line,
        "kafka-one-node": test_kafka_script_one_node,
        "kafka-three-nodes": test_kafka_script_three_nodes,
        "status": test_status,
    }
    assert set(tests) == set(KAFKA_BLOCKS)
