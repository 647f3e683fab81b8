"""Faust's ``faust.types.serializers``: the names typed Faust code imports from it."""

from . import RegistryT, SchemaT

__all__ = ["RegistryT", "SchemaT"]
