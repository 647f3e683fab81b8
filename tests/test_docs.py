"""The documentation site builds without a warning, and its examples are valid Python."""

from __future__ import annotations

import ast
import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest

from faust.settings import Settings

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
_PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_the_site_builds_strictly_with_every_page(site: Path) -> None:
    pages = sorted(p.relative_to(DOCS) for p in DOCS.rglob("*.md"))
    for page in pages:
        built = site / page.with_suffix("") / "index.html"
        if page.name == "index.md":
            built = site / page.parent / "index.html"
        assert built.is_file(), page


def test_the_settings_reference_lists_every_setting(site: Path) -> None:
    html = (site / "guide" / "settings" / "index.html").read_text()
    for field in dataclasses.fields(Settings):
        if field.name != "id":
            assert f"<code>{field.name}</code>" in html, field.name


def test_the_api_reference_documents_the_app(site: Path) -> None:
    html = (site / "reference" / "index.html").read_text()
    for name in ("faust.App", "faust.Record", "faust.Topic", "faust.Agent", "faust.Sensor"):
        assert f'id="{name}"' in html, name


@pytest.mark.parametrize("page", sorted(DOCS.rglob("*.md")), ids=lambda p: p.name)
def test_python_examples_in_the_docs_are_valid_python(page: Path) -> None:
    for block in _PYTHON_BLOCK.findall(page.read_text()):
        ast.parse(block, filename=str(page))
