"""Persistence behind one interface (``Storage``); SQLite is the embedded default."""

from .base import Page, Storage
from .sqlite import SqliteStorage

__all__ = ["Page", "SqliteStorage", "Storage"]
