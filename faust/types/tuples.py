"""Faust's ``faust.types.tuples``: the names typed Faust code imports from it."""

from . import TP, Message, RecordMetadata

__all__ = ["TP", "Message", "RecordMetadata"]
