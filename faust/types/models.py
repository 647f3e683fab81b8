"""Faust's ``faust.types.models``: the names typed Faust code imports from it."""

from . import FieldDescriptorT, ModelArg, ModelOptions, ModelT, RecordT

__all__ = ["FieldDescriptorT", "ModelArg", "ModelOptions", "ModelT", "RecordT"]
