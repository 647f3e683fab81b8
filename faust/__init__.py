"""Faust: stream processing for Python.

A stream is an async iterator, an agent is an ``async def`` over a stream, and a table
is a dict that survives crashes::

    import faust

    app = faust.App('hello-app')
    greetings = app.topic('greetings', value_type=str)

    @app.agent(greetings)
    async def greet(stream):
        async for name in stream:
            print(f'Hello {name}')
"""

from typing import TYPE_CHECKING

# ``faust.cli.option`` / ``faust.cli.argument`` declare @app.command options: the
# subpackage is part of the public API, so ``import faust`` must be enough to use it.
from . import cli
from .agents import Agent
from .app import App
from .auth import SASLCredentials, SSLCredentials
from .channels import Channel
from .events import Event, current_event
from .exceptions import (
    DecodeError,
    FaustError,
    ImproperlyConfigured,
    KeyDecodeError,
    ValidationError,
    ValueDecodeError,
)
from .models import Record
from .models.fields import (
    BooleanField,
    DatetimeField,
    DecimalField,
    FieldDescriptor,
    FloatField,
    IntegerField,
    StringField,
)
from .schemas import Schema
from .sensors import Monitor, Sensor
from .services import Service
from .streams import Stream
from .tables import GlobalTable, SetGlobalTable, SetTable, Table
from .tables.windows import HoppingWindow, SlidingWindow, TumblingWindow, Window
from .topics import Topic
from .types import ChannelT, EventT, ModelOptions, ServiceT, StreamT, TopicT
from .utils import uuid
from .worker import Worker

__version__ = "0.1.0"

if TYPE_CHECKING:
    from . import web
    from .web.blueprints import Blueprint
    from .web.views import View

# The web layer (aiohttp) is imported on first use: a program that only sends or runs
# agents does not pay for it at ``import faust``.
_WEB_NAMES = {"View": "faust.web.views", "Blueprint": "faust.web.blueprints"}


def __getattr__(name: str) -> object:
    import importlib

    if name == "web":
        return importlib.import_module("faust.web")
    if name in _WEB_NAMES:
        return getattr(importlib.import_module(_WEB_NAMES[name]), name)
    raise AttributeError(f"module 'faust' has no attribute {name!r}")


__all__ = [
    "Agent",
    "App",
    "Blueprint",
    "BooleanField",
    "Channel",
    "ChannelT",
    "DatetimeField",
    "DecimalField",
    "DecodeError",
    "Event",
    "EventT",
    "FaustError",
    "FieldDescriptor",
    "FloatField",
    "ImproperlyConfigured",
    "IntegerField",
    "KeyDecodeError",
    "ModelOptions",
    "Record",
    "SASLCredentials",
    "SSLCredentials",
    "Schema",
    "Monitor",
    "Sensor",
    "Service",
    "ServiceT",
    "GlobalTable",
    "HoppingWindow",
    "SetGlobalTable",
    "SetTable",
    "SlidingWindow",
    "Stream",
    "StreamT",
    "Table",
    "TumblingWindow",
    "Window",
    "StringField",
    "Topic",
    "TopicT",
    "ValidationError",
    "ValueDecodeError",
    "View",
    "Worker",
    "cli",
    "current_event",
    "uuid",
    "web",
]
