"""Models: typed messages (:class:`Record`) and their field descriptors.

>>> from faust.models import Record
>>> class Point(Record):
...     x: int
...     y: int = 0
>>> Point.from_data({'x': 1})
Point(x=1, y=0)

``Model`` is Faust's name for the base class of all models; here every model is a
:class:`Record`, so ``faust.models.Model`` is ``Record``:

>>> from faust.models import Model
>>> isinstance(Point(1), Model)
True
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
from faust.models.record import (
    ModelOptions,
    Record,
    describe_fields,
    describe_model,
    maybe_model,
    registry,
)

#: Faust's name for the base class of models (``isinstance(x, Model)``, annotations).
Model = Record

__all__ = [
    "Model",
    "Record",
    "ModelOptions",
    "registry",
    "describe_fields",
    "describe_model",
    "maybe_model",
    "FieldDescriptor",
    "StringField",
    "IntegerField",
    "FloatField",
    "DecimalField",
    "BooleanField",
    "DatetimeField",
    "BytesField",
]
