"""The hello app of the 1.0 pre-release text, unchanged, runs as a worker on Kafka."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# Verbatim from DEVELOPERS.md: url='kafka://localhost' means localhost:9092.
HELLO_APP = """\
import faust

class Greeting(faust.Record):
    from_name: str
    to_name: str

app = faust.App('hello-app', url='kafka://localhost')
topic = app.topic('hello-topic', value_type=Greeting)

@app.actor(topic)
async def hello(greetings):
    async for greeting in greetings:
        print(f'Hello from {greeting.from_name} to {greeting.to_name}')

@app.timer(interval=1.0)
async def example_sender(app):
    await hello.send(value=Greeting(from_name='Faust', to_name='you'))

if __name__ == '__main__':
    app.start_worker()
"""

GREETING = "Hello from Faust to you"
# The worker joins its consumer group and the timer fires every second: two greetings
# well within this, even on a busy machine.
GREETINGS_WITHIN = 30.0
STOP_WITHIN = 30.0


def _pump(stream: IO[str], lines: queue.Queue[str | None], log: list[str]) -> None:
    for line in stream:
        log.append(line)
        lines.put(line)
    lines.put(None)


def _needs_local_9092(bootstrap: str) -> None:
    servers = [s.strip() for s in bootstrap.split(",")]
    if not any(s in ("127.0.0.1:9092", "localhost:9092") for s in servers):
        pytest.fail(
            f"The hello app connects to kafka://localhost (port 9092), but the test Kafka "
            f"is at {bootstrap}: run it on 9092 (unset KAFKA_BOOTSTRAP_SERVERS).",
            pytrace=False,
        )


def test_hello_app_greets_on_kafka_and_stops_cleanly(kafka_bootstrap: str, tmp_path: Path) -> None:
    _needs_local_9092(kafka_bootstrap)
    (tmp_path / "hello.py").write_text(HELLO_APP)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("FAUST_BROKER", None)
    proc = subprocess.Popen(
        [sys.executable, "hello.py"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    stdout: queue.Queue[str | None] = queue.Queue()
    out_log: list[str] = []
    err_log: list[str] = []
    readers = [
        threading.Thread(target=_pump, args=(proc.stdout, stdout, out_log), daemon=True),
        threading.Thread(target=_pump, args=(proc.stderr, queue.Queue(), err_log), daemon=True),
    ]
    for reader in readers:
        reader.start()

    def output() -> str:
        return f"stdout:\n{''.join(out_log)}\nstderr (last 40 lines):\n{''.join(err_log[-40:])}"

    try:
        greetings = 0
        deadline = time.monotonic() + GREETINGS_WITHIN
        while greetings < 2:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"fewer than 2 greetings in {GREETINGS_WITHIN} s\n{output()}")
            try:
                line = stdout.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                pytest.fail(f"hello.py exited early with {proc.wait()}\n{output()}")
            if line.strip() == GREETING:
                greetings += 1

        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=STOP_WITHIN)
        except subprocess.TimeoutExpired:
            pytest.fail(f"hello.py did not stop within {STOP_WITHIN} s of SIGINT\n{output()}")
        for reader in readers:
            reader.join(timeout=5)
        assert code == 0, output()
        assert "Traceback" not in "".join(err_log), output()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
