"""Tables: dicts backed by changelog topics, restored on any worker that takes over."""

from .base import Collection
from .manager import TableManager
from .sets import SetGlobalTable, SetTable
from .table import GlobalTable, Table

__all__ = ["Collection", "Table", "GlobalTable", "SetTable", "SetGlobalTable", "TableManager"]
