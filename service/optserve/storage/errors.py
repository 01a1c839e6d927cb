"""Which errors of a database driver mean "the database cannot serve now, retry" rather
than a bug: the API layer answers those with UNAVAILABLE (HTTP 503), not INTERNAL."""

from __future__ import annotations

import sqlite3
import sys

from ..domain.errors import Unavailable

# SQLite errors that a later attempt may not meet: another process holds the file's
# lock past the busy timeout, or the disk or the file system failed.
_SQLITE_TRANSIENT = (
    "database is locked",
    "database table is locked",
    "disk i/o error",
    "unable to open database file",
)


def unavailable(error: BaseException) -> Unavailable | None:
    """The ``Unavailable`` an unexpected storage error stands for, None when it is a bug."""
    if isinstance(error, Unavailable):
        return error
    if isinstance(error, sqlite3.OperationalError):
        if str(error).lower().startswith(_SQLITE_TRANSIENT):
            return Unavailable("the database is busy or failing; retry later")
        return None
    # PostgreSQL's driver is loaded only by PostgreSQL storage.
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None and isinstance(error, psycopg.OperationalError):
        # a lost connection, a shutdown, a pool with no connection free, a deadlock:
        # not an error in the request
        return Unavailable("the database is unavailable; retry later")
    return None
