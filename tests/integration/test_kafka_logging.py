"""What a worker and the CLI log on Kafka: a normal start, a first send to a topic that
does not exist yet and a clean stop log no ERROR, leave no client unclosed, and keep
aiokafka's INFO lines out of the worker's INFO log."""

from __future__ import annotations

import gc
import os
import re
import subprocess
import sys
import textwrap
import uuid
import warnings
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

import faust
from tests.unit.test_cli import _run_until

REPO = Path(__file__).resolve().parents[2]

APP = """
import os
import faust

app = faust.App(os.environ["LOG_APP_ID"], broker=os.environ["LOG_BROKER"])
out = app.topic(os.environ["LOG_OUT"], value_type=int, partitions=3)
sent = 0


@app.timer(0.1)
async def tick():
    # Right after start, to a topic nobody has created yet.
    global sent
    await out.send(value=sent)
    sent += 1
    if sent == 3:
        print("SENT 3", flush=True)


@app.command()
async def produce():
    await out.send(value=-1)
    print("produced", flush=True)


if __name__ == "__main__":
    app.main()
"""


def _project(tmp_path: Path, bootstrap: str) -> tuple[Path, dict[str, str], str]:
    (tmp_path / "logapp.py").write_text(textwrap.dedent(APP))
    topic = f"log-out-{uuid.uuid4().hex[:8]}"
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
        PYTHONUNBUFFERED="1",
        LOG_APP_ID=f"log-app-{uuid.uuid4().hex[:8]}",
        LOG_BROKER=f"kafka://{bootstrap}",
        LOG_OUT=topic,
    )
    return tmp_path, env, topic


# ResourceWarnings are shown (they are off by default): aiokafka reports a client that
# was never closed with one ("Unclosed AIOKafkaProducer").
PYTHON = [sys.executable, "-W", "always::ResourceWarning"]


def _assert_clean(text: str) -> None:
    assert "[ERROR]" not in text, text
    assert "Traceback" not in text, text
    assert "Unclosed" not in text and "unclosed" not in text, text


async def _partitions(bootstrap: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (info,) = await admin.describe_topics([topic])
        return len(info["partitions"])
    finally:
        await admin.close()


async def test_worker_start_first_send_and_stop_are_quiet(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    cwd, env, topic = _project(tmp_path, kafka_bootstrap)
    text = _run_until([*PYTHON, "logapp.py", "worker", "-q"], cwd, "SENT 3", 1, 90, env)
    _assert_clean(text)
    assert "Worker stopped" in text, text
    # The first send created the topic as the app declares it, not as the broker would.
    assert f"Created topic '{topic}' with 3 partitions" in text, text
    assert await _partitions(kafka_bootstrap, topic) == 3
    # aiokafka's own INFO lines (connections, coordinators, joins) are not the worker's.
    aiokafka_info = re.findall(r"\[INFO\] aiokafka", text)
    assert len(aiokafka_info) <= 2, text


async def test_clients_are_closed_when_a_step_of_the_stop_fails(kafka_bootstrap: str) -> None:
    app = faust.App(
        f"log-app-{uuid.uuid4().hex[:8]}", broker=f"kafka://{kafka_bootstrap}", producer_only=True
    )

    @app.service
    class BreaksOnStop(faust.Service):
        async def on_stop(self) -> None:
            raise RuntimeError("this service fails to stop")

    await app.start()
    await app.topic(f"log-out-{uuid.uuid4().hex[:8]}", partitions=1).send(value=1)
    with pytest.raises(RuntimeError, match="fails to stop"):
        await app.stop()
    # aiokafka warns about a client that is collected without having been closed.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del app, BreaksOnStop
        gc.collect()
    unclosed = [str(w.message) for w in caught if "nclosed" in str(w.message)]
    assert not unclosed


def test_cli_send_and_app_command_close_their_clients(kafka_bootstrap: str, tmp_path: Path) -> None:
    cwd, env, topic = _project(tmp_path, kafka_bootstrap)
    for args, expected in (
        (["send", topic, "7"], "sent to"),
        (["produce"], "produced"),
    ):
        done = subprocess.run(
            [*PYTHON, "logapp.py", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert expected in done.stdout, done.stdout + done.stderr
        _assert_clean(done.stdout + done.stderr)
