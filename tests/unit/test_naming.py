"""An agent's name and topic do not depend on how the app was started."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.unit.test_cli import _env

APP = textwrap.dedent(
    """
    import faust

    app = faust.App("naming-app")

    @app.agent()
    async def collector(stream):
        async for value in stream:
            print(value)

    if __name__ == "__main__":
        app.main()
    """
)


def _agents(cmd: list[str], cwd: Path) -> list[dict[str, str]]:
    proc = subprocess.run(
        [sys.executable, *cmd, "--json", "agents"],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "__init__.py").write_text("")
    (tmp_path / "shop" / "app.py").write_text(APP)
    return tmp_path


@pytest.mark.parametrize(
    "as_script, as_module, as_import",
    [
        (["app.py"], ["-m", "app"], ["-m", "faust", "-A", "app"]),
        (["shop/app.py"], ["-m", "shop.app"], ["-m", "faust", "-A", "shop.app"]),
    ],
)
def test_agent_topic_is_the_same_whatever_the_start(
    project: Path, as_script: list[str], as_module: list[str], as_import: list[str]
) -> None:
    module = as_import[-1]
    expected = [{"name": "@collector", "topic": f"naming-app-{module}.collector", "help": ""}]
    assert _agents(as_import, project) == expected
    assert _agents(as_script, project) == expected
    assert _agents(as_module, project) == expected
