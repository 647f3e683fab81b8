"""Worker logging: the user's handlers kept, ``logging_config``, JSON lines, logger names,
aiokafka's INFO lines demoted."""

from __future__ import annotations

import io
import json
import logging
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from faust.exceptions import ImproperlyConfigured
from faust.logs import JSONFormatter, setup_logging
from tests.unit.test_cli import _run_until


@pytest.fixture
def clean_logging() -> Iterator[logging.Logger]:
    """The root logger; everything that setup_logging changes is put back afterwards.

    pytest adds its capturing handlers to the root logger when the test body starts:
    a test that needs the root logger without handlers (a fresh process) clears them.
    """
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    names = ("aiokafka", "myapp", "faust.worker")
    saved = {name: logging.getLogger(name).level for name in names}
    try:
        yield root
    finally:
        for handler in root.handlers:
            if handler not in saved_handlers:
                handler.close()
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def test_a_handler_the_user_installed_is_kept(clean_logging: logging.Logger) -> None:
    clean_logging.handlers.clear()
    stream = io.StringIO()
    mine = logging.StreamHandler(stream)
    clean_logging.addHandler(mine)
    setup_logging("info")
    assert clean_logging.handlers == [mine]
    logging.getLogger("faust.worker").info("Worker ready")
    assert "Worker ready" in stream.getvalue()


def test_without_handlers_the_worker_adds_one_and_does_not_stack_them(
    clean_logging: logging.Logger,
) -> None:
    clean_logging.handlers.clear()
    setup_logging("info")
    setup_logging("debug")
    assert len(clean_logging.handlers) == 1
    assert clean_logging.level == logging.DEBUG


def test_logging_config_is_applied_without_silencing_existing_loggers(
    clean_logging: logging.Logger,
) -> None:
    existing = logging.getLogger("faust.worker")
    setup_logging(
        "info", logging_config={"loggers": {"myapp": {"level": "DEBUG"}}, "root": {"level": "WARN"}}
    )
    assert logging.getLogger("myapp").level == logging.DEBUG
    assert clean_logging.level == logging.WARNING  # the config's root level wins
    assert not existing.disabled


def test_a_logging_config_dictconfig_rejects_names_the_setting(
    clean_logging: logging.Logger,
) -> None:
    with pytest.raises(ImproperlyConfigured, match="Setting logging_config: .*nosuch"):
        setup_logging("info", logging_config={"handlers": {"h": {"class": "nosuch.Handler"}}})


def test_json_formatter_writes_one_object_with_the_exception() -> None:
    try:
        raise KeyError("boom")
    except KeyError:
        record = logging.getLogger("faust.agents").makeRecord(
            "faust.agents", logging.ERROR, __file__, 1, "Agent %s crashed", ("x",), sys.exc_info()
        )
    line = JSONFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "ERROR"
    assert entry["logger"] == "faust.agents"
    assert entry["message"] == "Agent x crashed"
    assert "KeyError: 'boom'" in entry["exc_info"]
    assert entry["time"].endswith("+00:00")


def test_aiokafka_info_is_demoted_unless_debug(clean_logging: logging.Logger) -> None:
    aiokafka = logging.getLogger("aiokafka")
    aiokafka.setLevel(logging.NOTSET)
    setup_logging("info")
    assert not aiokafka.isEnabledFor(logging.INFO)
    assert aiokafka.isEnabledFor(logging.WARNING)
    setup_logging("debug")
    assert aiokafka.isEnabledFor(logging.DEBUG)
    # A level the user chose for it is theirs.
    aiokafka.setLevel(logging.INFO)
    setup_logging("warning")
    assert aiokafka.level == logging.INFO


APP = """
import logging, os, sys
import faust

if os.environ.get("USER_HANDLER"):
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("USER %(name)s | %(message)s"))
    logging.getLogger().addHandler(handler)

app = faust.App("logs-app", logging_config={config})

if __name__ == "__main__":
    app.main()
"""


def _project(tmp_path: Path, config: object = None) -> Path:
    (tmp_path / "logsapp.py").write_text(textwrap.dedent(APP.replace("{config}", repr(config))))
    return tmp_path


def test_worker_keeps_the_users_handler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER_HANDLER", "1")
    out = _run_until(
        [sys.executable, "logsapp.py", "worker", "-q"], _project(tmp_path), "Worker ready", 1
    )
    assert "USER faust.worker | Worker ready" in out
    # Not also written by a handler of the worker's own.
    assert out.count("Worker ready") == 1, out


def test_text_lines_name_their_logger(tmp_path: Path) -> None:
    out = _run_until(
        [sys.executable, "logsapp.py", "worker", "-q"], _project(tmp_path), "Worker ready", 1
    )
    assert "[INFO] faust.worker: Worker ready" in out


def test_json_logs_are_one_object_per_line(tmp_path: Path) -> None:
    out = _run_until(
        [sys.executable, "logsapp.py", "worker", "--json-logs"],
        _project(tmp_path),
        "Worker ready",
        1,
    )
    entries = [json.loads(line) for line in out.splitlines()]
    ready = [e for e in entries if e["message"] == "Worker ready"]
    assert ready and ready[0]["logger"] == "faust.worker" and ready[0]["level"] == "INFO"
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in entries)


def test_logging_config_setting_configures_the_worker(tmp_path: Path) -> None:
    config = {
        "formatters": {"short": {"format": "CFG %(levelname)s %(name)s | %(message)s"}},
        "handlers": {
            "out": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": "short",
            }
        },
        "root": {"handlers": ["out"], "level": "INFO"},
    }
    out = _run_until(
        [sys.executable, "logsapp.py", "worker", "-q"],
        _project(tmp_path, config),
        "Worker ready",
        1,
    )
    assert "CFG INFO faust.worker | Worker ready" in out
    assert out.count("Worker ready") == 1, out
