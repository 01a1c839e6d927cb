"""Persistence behind one interface (``Storage``): SQLite, the embedded default, and
PostgreSQL, shared by several replicas (``storage.postgres``, imported on demand so that
SQLite needs no PostgreSQL driver)."""

from __future__ import annotations

from pathlib import Path

from .base import Page, Storage
from .sqlite import SqliteStorage

__all__ = ["Page", "SqliteStorage", "Storage", "is_postgres_url"]


def is_postgres_url(db: str | Path) -> bool:
    """Whether ``--db`` names a PostgreSQL database rather than an SQLite file."""
    return isinstance(db, str) and db.startswith(("postgresql://", "postgres://"))
