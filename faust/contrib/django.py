"""Django projects: ``autodiscover=True`` also finds the agents of the installed apps.

When ``DJANGO_SETTINGS_MODULE`` is set and Django is installed, an app with
``autodiscover=True`` imports every module of each package in Django's
``INSTALLED_APPS`` (after ``django.setup()``), as Faust's Django integration does::

    # faustapp/app.py of a Django project
    os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'proj.settings')
    app = faust.App('django-proj', autodiscover=True, origin='faustapp')

    # accounts/agents.py: found because 'accounts' is an installed app
    @app.agent()
    async def add_account(accounts): ...

Django refuses its ORM's blocking calls on a running event loop (where agents run):
use ``asgiref.sync.sync_to_async``, or set ``DJANGO_ALLOW_ASYNC_UNSAFE=true``.
"""

from __future__ import annotations

import importlib
import os
import warnings

__all__ = ["installed_apps"]


def installed_apps() -> list[str]:
    """The packages of Django's installed apps, or none when Django is not configured
    (``DJANGO_SETTINGS_MODULE`` unset) or not installed (with a warning)."""
    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        return []
    try:
        django = importlib.import_module("django")
    except ImportError:
        warnings.warn(
            "DJANGO_SETTINGS_MODULE is set but Django is not installed: autodiscover=True "
            "does not look in the Django apps (pip install django, or unset it).",
            stacklevel=2,
        )
        return []
    django.setup()
    from django.apps import apps

    return [config.name for config in apps.get_app_configs()]
