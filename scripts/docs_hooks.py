"""mkdocs hooks: pages generated from the code, so they cannot drift from it.

``<!-- settings-reference -->`` in a page becomes the table of every setting, made from
the settings' declarations (:func:`faust.settings.settings_reference`).
"""

from __future__ import annotations

from typing import Any

MARKER = "<!-- settings-reference -->"


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    if MARKER not in markdown:
        return markdown
    from faust.settings import settings_reference

    return markdown.replace(MARKER, settings_reference())
