"""Prometheus metrics for ``/metrics``.

Placeholder: the contract is :func:`render_metrics`.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


def render_metrics(app: Any) -> tuple[bytes, str]:
    """The body and content type of ``/metrics`` for ``app``."""
    return generate_latest(CollectorRegistry()), CONTENT_TYPE_LATEST
