"""Faust's ``faust.types.agents``: the names typed Faust code imports from it."""

from . import AgentT

__all__ = ["AgentT"]
