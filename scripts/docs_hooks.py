"""mkdocs hooks: pages generated from the code, so they cannot drift from it.

``<!-- settings-reference -->`` in a page becomes the table of every setting, made from
the settings' declarations in faust/settings.py.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from typing import Any

MARKER = "<!-- settings-reference -->"


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, settings_reference())


def settings_reference() -> str:
    """A Markdown table of the settings: name, default, environment variable, meaning
    (the ``#:`` comments above each field of ``faust.settings.Settings``)."""
    from faust.settings import ENV_PREFIX, Settings

    docs: dict[str, str] = {}
    comment: list[str] = []
    for line in inspect.getsource(Settings).splitlines():
        stripped = line.strip()
        if stripped.startswith("#:"):
            comment.append(stripped[2:].strip())
            continue
        field = re.match(r"(\w+): ", stripped)
        if field and comment:
            docs[field.group(1)] = " ".join(comment)
        comment = []
    rows = ["| Setting | Default | Environment | Meaning |", "|---|---|---|---|"]
    for f in dataclasses.fields(Settings):
        if f.name == "id":
            continue
        if f.default is not dataclasses.MISSING:
            default = repr(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            default = repr(f.default_factory())
        else:
            default = ""
        meaning = docs.get(f.name, "").replace("|", "\\|")
        rows.append(f"| `{f.name}` | `{default}` | `{ENV_PREFIX}{f.name.upper()}` | {meaning} |")
    return "\n".join(rows)
