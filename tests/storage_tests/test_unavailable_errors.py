"""Which driver errors mean "the database cannot serve now, retry" (UNAVAILABLE) and which
are bugs (INTERNAL): classified on errors the real drivers raise."""

from __future__ import annotations

import socket
import sqlite3

import psycopg
import pytest

from optserve.domain.errors import Unavailable
from optserve.storage.errors import unavailable


def sqlite_error(db, sql: str) -> sqlite3.Error:
    with pytest.raises(sqlite3.Error) as caught:
        db.execute(sql)
    return caught.value


def test_a_locked_sqlite_file_is_unavailable_a_bad_statement_is_not(tmp_path):
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    holder.execute("BEGIN EXCLUSIVE")  # another process's lock on the file
    waiter = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        locked = sqlite_error(waiter, "SELECT * FROM t")
        assert "locked" in str(locked)
        assert isinstance(unavailable(locked), Unavailable)
        holder.execute("ROLLBACK")
        assert unavailable(sqlite_error(waiter, "SELECT * FROM no_such_table")) is None
        waiter.execute("INSERT INTO t (id) VALUES (1)")
        assert unavailable(sqlite_error(waiter, "INSERT INTO t (id) VALUES (1)")) is None
    finally:
        waiter.close()
        holder.close()


def test_an_unreachable_postgresql_is_unavailable():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(psycopg.OperationalError) as caught:
        psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/x", connect_timeout=5)
    assert isinstance(unavailable(caught.value), Unavailable)


def test_other_errors_are_bugs():
    assert unavailable(ValueError("no")) is None
    assert unavailable(psycopg.errors.UniqueViolation("duplicate key")) is None
    assert unavailable(psycopg.ProgrammingError("syntax")) is None
    already = Unavailable("down")
    assert unavailable(already) is already
