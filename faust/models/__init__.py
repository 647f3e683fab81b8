"""Models: typed messages (:class:`Record`) and their field descriptors.

>>> from faust.models import Record
>>> class Point(Record):
...     x: int
...     y: int = 0
>>> Point.from_data({'x': 1})
Point(x=1, y=0)
"""

from faust.models.fields import (
    BooleanField,
    BytesField,
    DatetimeField,
    DecimalField,
    FieldDescriptor,
    FloatField,
    IntegerField,
    StringField,
)
from faust.models.record import ModelOptions, Record, describe_fields, describe_model, registry

__all__ = [
    "Record",
    "ModelOptions",
    "registry",
    "describe_fields",
    "describe_model",
    "FieldDescriptor",
    "StringField",
    "IntegerField",
    "FloatField",
    "DecimalField",
    "BooleanField",
    "DatetimeField",
    "BytesField",
]
