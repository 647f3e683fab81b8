"""Agents: stream processors with supervisors, sinks and request/reply."""

from .agent import Agent
from .replies import ReplyPromise
from .supervisors import CrashingSupervisor, OneForAllSupervisor, OneForOneSupervisor
from .testing import AgentTestWrapper

__all__ = [
    "Agent",
    "AgentTestWrapper",
    "CrashingSupervisor",
    "OneForAllSupervisor",
    "OneForOneSupervisor",
    "ReplyPromise",
]
