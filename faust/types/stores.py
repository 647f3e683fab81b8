"""Faust's ``faust.types.stores``: the names typed Faust code imports from it."""

from . import StoreT

__all__ = ["StoreT"]
