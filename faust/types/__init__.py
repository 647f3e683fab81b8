"""The typing names typed Faust code imports: ``from faust.types import StreamT``.

Faust states its contracts as abstract ``...T`` classes. Here each name is the class
that implements it (``StreamT`` is :class:`faust.Stream`), so an annotation written
for Faust type-checks against this library and ``isinstance`` answers as expected.

>>> import faust
>>> from faust.types import AppT, StreamT, TopicT
>>> app = faust.App('types-doc')
>>> isinstance(app, AppT), isinstance(app.topic('t'), TopicT)
(True, True)
>>> StreamT[int]
faust.streams.Stream[int]
"""

from __future__ import annotations

from typing import TypeVar

from ..agents import Agent
from ..app import App
from ..channels import Channel, Headers
from ..events import Event
from ..models import ModelOptions, Record
from ..models.fields import FieldDescriptor
from ..schemas import Schema
from ..sensors import Sensor
from ..serializers import Codec, CodecArg, CodecRegistry
from ..services import Service
from ..stores.base import Store
from ..streams import Processor, Stream
from ..tables import Table
from ..tables.base import Collection
from ..tables.windows import Window, WindowRange
from ..topics import Topic
from ..transport.base import TP, Message, RecordMetadata, Transport
from ..transport.consumer import Consumer
from ..transport.producer import Producer

__all__ = [
    "AgentT",
    "AppT",
    "ChannelT",
    "CodecArg",
    "CodecT",
    "CollectionT",
    "ConsumerT",
    "EventT",
    "FieldDescriptorT",
    "HeadersArg",
    "K",
    "Message",
    "ModelArg",
    "ModelOptions",
    "ModelT",
    "Processor",
    "ProducerT",
    "RecordMetadata",
    "RecordT",
    "RegistryT",
    "SchemaT",
    "SensorT",
    "ServiceT",
    "StoreT",
    "StreamT",
    "TP",
    "TableT",
    "TopicT",
    "TransportT",
    "V",
    "WindowRange",
    "WindowT",
]

#: A key type and a value type, as in ``Table[K, V]``.
K = TypeVar("K")
V = TypeVar("V")

AgentT = Agent
AppT = App
ChannelT = Channel
CodecT = Codec
CollectionT = Collection
ConsumerT = Consumer
EventT = Event
FieldDescriptorT = FieldDescriptor
#: Headers as ``send`` takes them: a mapping or a list of ``(name, value)`` pairs.
HeadersArg = Headers
#: ``key_type``/``value_type``: a Record class, ``str``, ``bytes``, ... or a codec name.
ModelArg = type | str | Codec
#: The base of every model (``faust.Record`` is the kind of model Faust programs use).
ModelT = Record
RecordT = Record
ProducerT = Producer
RegistryT = CodecRegistry
SchemaT = Schema
SensorT = Sensor
ServiceT = Service
StoreT = Store
StreamT = Stream
TableT = Table
TopicT = Topic
TransportT = Transport
WindowT = Window
