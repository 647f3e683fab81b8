"""The ``faust`` command and ``python app.py``, run as a user would run them."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HELLO = REPO / "examples" / "hello.py"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _faust(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "faust", *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _run_until(
    cmd: list[str],
    cwd: Path,
    needle: str,
    count: int,
    timeout: float = 20.0,
    env: dict[str, str] | None = None,
) -> str:
    """Start a worker, wait until ``needle`` was printed ``count`` times, Ctrl-C it
    (it must then exit 0); all it printed. ``env``: the process's (default: ours with
    the repository importable)."""
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=_env() if env is None else env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")))
    reader.start()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if "".join(lines).count(needle) >= count:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.join(timeout=10)
    text = "".join(lines)
    assert text.count(needle) >= count, text
    assert proc.returncode == 0, text
    return text


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "hello.py").write_text(HELLO.read_text())
    (tmp_path / "shop.py").write_text(
        textwrap.dedent(
            '''
            import faust
            from faust.cli import option

            class Order(faust.Record, namespace="shop.Order"):
                """An order placed in the shop."""
                item: str
                quantity: int = 1

            app = faust.App("shop")
            orders = app.topic("orders", value_type=Order)

            @app.agent(orders)
            async def process(stream):
                """Print each order."""
                async for order in stream:
                    print(f"ORDER {order.item} x{order.quantity}", flush=True)

            @app.command(option("--count", type=int, default=2, help="How many."))
            async def produce(self, count):
                """Send some orders."""
                for i in range(count):
                    await orders.send(value=Order(item=f"item-{i}"))
                self.say(f"sent {count}")

            if __name__ == "__main__":
                app.main()
            '''
        )
    )
    return tmp_path


def test_hello_app_runs_with_python(project: Path) -> None:
    out = _run_until([sys.executable, "hello.py"], project, "Hello from Faust to you", 2)
    assert out.count("Hello from Faust to you") >= 2


def test_hello_app_runs_with_faust_worker(project: Path) -> None:
    out = _run_until(
        [sys.executable, "-m", "faust", "-A", "hello", "worker", "-l", "info"],
        project,
        "Hello from Faust to you",
        2,
    )
    assert "Worker ready" in out and "Worker stopped" in out


def test_python_app_py_worker(project: Path) -> None:
    out = _run_until([sys.executable, "shop.py", "worker"], project, "Worker ready", 1)
    assert "shop" in out


def test_agents_command_text_and_json(project: Path) -> None:
    text = _faust("-A", "shop", "agents", cwd=project)
    assert text.returncode == 0, text.stderr
    assert (
        "@process" in text.stdout and "orders" in text.stdout and "Print each order." in text.stdout
    )
    as_json = _faust("-A", "shop", "--json", "agents", cwd=project)
    assert json.loads(as_json.stdout) == [
        {"name": "@process", "topic": "orders", "help": "Print each order."}
    ]


def test_models_and_model_commands(project: Path) -> None:
    listing = _faust("-A", "shop", "--json", "models", cwd=project)
    assert {"name": "shop.Order", "help": "An order placed in the shop."} in json.loads(
        listing.stdout
    )
    fields = _faust("-A", "shop", "--json", "model", "Order", cwd=project)
    rows = json.loads(fields.stdout)
    assert [r["field"] for r in rows] == ["item", "quantity"]
    assert rows[1]["default"] == "1"
    missing = _faust("-A", "shop", "model", "Nope", cwd=project)
    assert missing.returncode != 0 and "No model named 'Nope'" in missing.stderr


def test_custom_command(project: Path) -> None:
    result = _faust("-A", "shop", "produce", "--count", "3", cwd=project)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "sent 3"
    listed = _faust("-A", "shop", "--help", cwd=project)
    assert "produce" in listed.stdout and "worker" in listed.stdout


def test_missing_app_is_a_usage_error(project: Path) -> None:
    result = _faust("agents", cwd=project)
    assert result.returncode == 2 and "-A module" in result.stderr
    result = _faust("-A", "no_such_module", "agents", cwd=project)
    assert result.returncode == 2 and "cannot import 'no_such_module'" in result.stderr


def test_bad_setting_fails_at_startup_with_one_line(project: Path) -> None:
    (project / "badcron.py").write_text(
        "import faust\napp = faust.App('bad')\n"
        "@app.crontab('not a cron')\nasync def job():\n    pass\n"
    )
    result = _faust("-A", "badcron", "worker", cwd=project)
    assert result.returncode != 0
    assert "'not a cron' is not a valid cron expression" in result.stderr
    assert "Traceback" not in result.stderr


def test_ctrl_c_finishes_the_event_in_hand(project: Path) -> None:
    (project / "slow.py").write_text(
        textwrap.dedent(
            """
            import asyncio
            import faust

            app = faust.App("slow")
            topic = app.topic("work", value_type=int)

            @app.agent(topic)
            async def work(stream):
                async for value in stream:
                    print(f"START {value}", flush=True)
                    await asyncio.sleep(0.5)
                    print(f"DONE {value}", flush=True)

            @app.task
            async def feed():
                for i in range(100):
                    await topic.send(value=i)
            """
        )
    )
    out = _run_until([sys.executable, "-m", "faust", "-A", "slow", "worker"], project, "START", 1)
    started = [line for line in out.splitlines() if line.startswith("START")]
    done = [line for line in out.splitlines() if line.startswith("DONE")]
    # Every event that was started was finished before the worker exited.
    assert len(started) == len(done) >= 1
    assert "Worker stopped" in out


def test_unknown_broker_scheme_fails_at_startup_with_one_line(project: Path) -> None:
    (project / "badbroker.py").write_text(
        "import faust\napp = faust.App('bad', broker='rabbit://localhost')\n"
    )
    result = _faust("-A", "badbroker", "worker", cwd=project)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("faust: error: Setting broker: unknown scheme 'rabbit://'")
    assert "Traceback" not in result.stderr


def test_tables_and_reset_commands(project: Path) -> None:
    (project / "counter.py").write_text(
        textwrap.dedent(
            """
            import faust

            app = faust.App("counter", store="rocksdb://", datadir="counter-data")
            clicks = app.topic("clicks", key_type=str, value_type=int, partitions=2)
            counts = app.Table("counts", default=int, partitions=2, help="Clicks per page.")

            @app.agent(clicks)
            async def count(stream):
                async for page, n in stream.items():
                    counts[page] += n
                    print(f"COUNT {page} {counts[page]}", flush=True)

            @app.task
            async def feed():
                for page in ("a", "b", "c"):
                    await clicks.send(key=page, value=1)
            """
        )
    )
    _run_until([sys.executable, "-m", "faust", "-A", "counter", "worker"], project, "COUNT", 3)
    listed = _faust("-A", "counter", "--json", "tables", cwd=project)
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert row["name"] == "counts" and row["kind"] == "Table" and row["partitions"] == 2
    assert row["changelog"] == "counter-counts-changelog" and row["local_keys"] == 3
    reset = _faust("-A", "counter", "reset", "--yes", cwd=project)
    assert reset.returncode == 0 and "Deleted local state of 1 table(s)" in reset.stdout
    after = json.loads(_faust("-A", "counter", "--json", "tables", cwd=project).stdout)
    assert after[0]["local_keys"] == 0


def test_command_arguments_and_options_apply_in_declared_order(project: Path) -> None:
    (project / "greet.py").write_text(
        textwrap.dedent(
            """
            import faust
            from faust.cli import argument, option

            app = faust.App("greet")

            @app.command(
                argument("first"),
                argument("second"),
                option("--sep", default="-"),
                option("--loud", is_flag=True),
            )
            async def pair(self, first, second, sep, loud):
                self.say(f"first={first} second={second} sep={sep} loud={loud}")

            @app.command(argument("name"))
            async def hello(name):
                print(f"hello {name}")

            @app.command()
            def plain():
                print("plain")
            """
        )
    )
    result = _faust("-A", "greet", "pair", "A", "B", "--sep", "+", cwd=project)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "first=A second=B sep=+ loud=False"
    usage = _faust("-A", "greet", "pair", "--help", cwd=project).stdout
    assert "pair [OPTIONS] FIRST SECOND" in usage
    assert usage.index("--sep") < usage.index("--loud")
    # Without a ``self``: the command gets only its own arguments.
    result = _faust("-A", "greet", "hello", "Ada", cwd=project)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "hello Ada"
    result = _faust("-A", "greet", "plain", cwd=project)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "plain"


def test_json_before_or_after_the_command(project: Path) -> None:
    before = _faust("-A", "shop", "--json", "agents", cwd=project)
    after = _faust("-A", "shop", "agents", "--json", cwd=project)
    assert before.returncode == after.returncode == 0, after.stderr
    assert json.loads(after.stdout) == json.loads(before.stdout)
    fields = _faust("-A", "shop", "model", "Order", "--json", cwd=project)
    assert json.loads(fields.stdout)[0]["field"] == "item"
    # -W: the app is imported from that directory.
    elsewhere = _faust("-W", project.name, "-A", "shop", "agents", "--json", cwd=project.parent)
    assert json.loads(elsewhere.stdout) == json.loads(before.stdout), elsewhere.stderr


def test_global_worker_options_before_the_command(project: Path) -> None:
    # Faust's placement: -L, -l and -D before the command name; --debug on either side.
    out = _run_until(
        [
            sys.executable, "-m", "faust", "-A", "hello", "-L", "aio", "-l", "debug",
            "-D", "data-{appid}", "worker", "--debug",
        ],
        project,
        "Hello from Faust to you",
        1,
    )  # fmt: skip
    assert "Worker ready" in out
    assert re.search(r"loop\s+asyncio", out), out  # not uvloop, even where installed
    assert "[DEBUG]" in out  # -l debug reached the worker's logging
    assert "debug=True" in out  # --debug: the loop ran in asyncio debug mode


def test_completion_prints_a_script_that_completes(project: Path) -> None:
    script = _faust("completion", "--shell", "bash", cwd=project)
    assert script.returncode == 0, script.stderr
    assert "_FAUST_COMPLETE=bash_complete" in script.stdout
    assert "complete -o" in script.stdout
    # What the script asks the command when the user presses Tab after "faust cle".
    env = {
        **_env(),
        "_FAUST_COMPLETE": "bash_complete",
        "COMP_WORDS": "faust cle",
        "COMP_CWORD": "1",
    }
    answer = subprocess.run(
        [sys.executable, "-m", "faust"], cwd=project, env=env, capture_output=True, text=True
    )
    assert answer.stdout.split() == ["plain,clean-versions"]
    zsh = _faust("completion", "--shell", "zsh", cwd=project)
    assert "#compdef faust" in zsh.stdout


def test_clean_versions_deletes_other_versions_data(project: Path) -> None:
    (project / "versioned.py").write_text('import faust\napp = faust.App("versioned", version=3)\n')
    for name in ("versioned-data", "versioned-v2-data", "versioned-v3-data", "other-data"):
        (project / name).mkdir()
        (project / name / "table.sst").write_text("x")
    result = _faust("-A", "versioned", "clean-versions", cwd=project)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Removing old version directory") == 2
    assert sorted(p.name for p in project.iterdir() if p.name.endswith("-data")) == [
        "other-data",
        "versioned-v3-data",
    ]
    again = _faust("-A", "versioned", "clean-versions", cwd=project)
    assert "No data directories of other versions" in again.stdout
