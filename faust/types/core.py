"""Faust's ``faust.types.core``: the names typed Faust code imports from it."""

from . import HeadersArg, K, V

__all__ = ["HeadersArg", "K", "V"]
