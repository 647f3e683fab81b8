"""Faust's ``faust.types.tables``: the names typed Faust code imports from it."""

from . import CollectionT, TableT

__all__ = ["CollectionT", "TableT"]
