"""Checks of the SQLite file before the server starts, and a cheap probe while it runs.

The server refuses to start (one line naming the path and the cause) rather than report
SERVING on storage it cannot use. ``lock`` keeps a second server off the same file: SQLite's
own locks last one transaction, while a server keeps state across transactions (per
experiment locks, suggestion sequences), so two servers on one file each act as if alone
and hand out duplicate suggestions. SQLite's exclusive locking mode would also shut out
read-only tools (backups, the sqlite3 shell) and would surface only at the first
write, after the busy timeout, as "database is locked".
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from pathlib import Path
from typing import IO

SQLITE_HEADER = b"SQLite format 3\x00"
# A running server needs room for the WAL; below this the probe reports the filesystem full.
MIN_FREE_BYTES = 1 << 20


class PreflightError(Exception):
    """The storage cannot be used; the message names the path and the cause."""


def _connect(path: Path, timeout: float) -> sqlite3.Connection:
    # mode=rw: open an existing file, never create one
    return sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=timeout, isolation_level=None)


def check_directory(path: Path) -> None:
    """The directory exists and takes new files (the lock, SQLite's -wal and -shm files)."""
    directory = path.parent
    if not directory.exists():
        raise PreflightError(f"database {path}: directory {directory} does not exist")
    if not directory.is_dir():
        raise PreflightError(f"database {path}: {directory} is not a directory")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise PreflightError(
            f"database {path}: directory {directory} is read-only for this user"
            " (SQLite creates its -wal and -shm files there)"
        )
    if path.exists() and not path.is_file():
        raise PreflightError(f"database {path}: not a regular file")


def lock(path: Path) -> IO[str]:
    """Holds an exclusive lock on ``<db>.lock`` until the returned file is closed.

    The kernel drops the lock when the process ends, however it ends (kill -9 too), so a
    stale lock file never blocks a restart.
    """
    lock_path = path.with_name(path.name + ".lock")
    try:
        handle = open(lock_path, "a+")  # noqa: SIM115  (held open for the server's lifetime)
    except OSError as error:
        raise PreflightError(
            f"database {path}: cannot open {lock_path}: {error.strerror}"
        ) from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise PreflightError(
            f"database {path}: in use by another optserve server ({lock_path} is locked)"
        ) from None
    handle.truncate(0)
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def check_database(path: Path, timeout: float = 5.0) -> None:
    """An existing file is an intact SQLite database that this process can write."""
    if not path.exists():
        return  # the storage creates it
    if not os.access(path, os.R_OK | os.W_OK):
        raise PreflightError(f"database {path}: read-only for this user")
    with open(path, "rb") as file:
        header = file.read(len(SQLITE_HEADER))
    if header and header != SQLITE_HEADER:  # an empty file is a new database to SQLite
        raise PreflightError(f"database {path}: not an SQLite database")
    try:
        db = _connect(path, timeout)
        try:
            rows = [row[0] for row in db.execute("PRAGMA quick_check(3)")]
            if rows != ["ok"]:
                problems = [
                    line for row in rows for line in row.splitlines() if not line.startswith("*")
                ]
                raise PreflightError(
                    f"database {path}: corrupted (quick_check: {'; '.join(problems)[:300]})"
                )
            # A real write, of what is already there: read-only files and WAL files that
            # cannot be created fail here rather than on the first client's write.
            db.execute("BEGIN IMMEDIATE")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            db.execute(f"PRAGMA user_version = {int(version)}")
            db.execute("COMMIT")
        finally:
            db.close()
    except sqlite3.DatabaseError as error:
        cause = str(error)
        if "malformed" in cause:
            cause = f"corrupted ({cause})"
        raise PreflightError(f"database {path}: {cause}") from None


def preflight(path: Path) -> IO[str]:
    """All start-up checks; returns the held lock (keep it open while the server runs)."""
    path = Path(os.path.abspath(path))
    check_directory(path)
    held = lock(path)
    try:
        check_database(path)
    except BaseException:
        held.close()
        raise
    return held


class StorageProbe:
    """A cheap check of a running server's database file, for health.

    It sees the file removed or replaced (the server would keep writing to a file that is
    gone), permissions lost, a full filesystem, and a file that no longer reads as a
    database; it does not re-run quick_check, which reads the whole file.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(os.path.abspath(path))
        stat = self.path.stat()
        self._identity = (stat.st_dev, stat.st_ino)

    def check(self) -> str | None:
        """None when the storage looks usable, else the cause."""
        path = self.path
        try:
            stat = path.stat()
        except FileNotFoundError:
            return f"database {path}: removed while the server runs"
        except OSError as error:
            return f"database {path}: {error.strerror}"
        if (stat.st_dev, stat.st_ino) != self._identity:
            return f"database {path}: replaced by another file while the server runs"
        if not os.access(path, os.R_OK | os.W_OK) or not os.access(path.parent, os.W_OK):
            return f"database {path}: no longer writable"
        fs = os.statvfs(path.parent)
        free = (fs.f_bfree if os.geteuid() == 0 else fs.f_bavail) * fs.f_frsize
        if free < MIN_FREE_BYTES:
            return f"database {path}: filesystem full ({free} bytes free)"
        try:
            db = _connect(path, timeout=5.0)
            try:
                db.execute("PRAGMA schema_version").fetchone()
            finally:
                db.close()
        except sqlite3.Error as error:
            return f"database {path}: {error}"
        return None
