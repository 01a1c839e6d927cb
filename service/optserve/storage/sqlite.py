"""Embedded storage on one SQLite file (WAL, every write committed before it returns)."""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..domain.errors import FailedPrecondition, InvalidArgument, NotFound
from ..domain.model import (
    Assignments,
    Experiment,
    ExperimentState,
    Observation,
    Progress,
    Suggestion,
    SuggestionState,
)
from . import codec
from .base import Page, Storage

SCHEMA = """
CREATE TABLE IF NOT EXISTS experiments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    project TEXT NOT NULL,
    state TEXT NOT NULL,
    definition TEXT NOT NULL,
    suggestion_count INTEGER NOT NULL DEFAULT 0,
    create_time REAL NOT NULL,
    update_time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS experiments_by_project ON experiments (project, id);
CREATE TABLE IF NOT EXISTS suggestions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    experiment_id INTEGER NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    sequence INTEGER NOT NULL,
    assignments TEXT NOT NULL,
    state TEXT NOT NULL,
    metadata TEXT NOT NULL,
    create_time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS suggestions_by_experiment ON suggestions (experiment_id, state, id);
CREATE TABLE IF NOT EXISTS observations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    experiment_id INTEGER NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    -- at most one observation per suggestion, enforced by the database itself
    suggestion_id INTEGER UNIQUE REFERENCES suggestions (id) ON DELETE SET NULL,
    assignments TEXT NOT NULL,
    metric_values TEXT NOT NULL,
    failed INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    create_time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS observations_by_experiment ON observations (experiment_id, id);
"""


def _now() -> float:
    return datetime.now(UTC).timestamp()


def _time(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _int_id(value: str, what: str) -> int:
    """Ids are decimal integers; anything else names nothing."""
    if not value.isdigit():
        raise NotFound(f"{what} {value!r} not found")
    return int(value)


def _encode_token(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"after:{last_id}".encode()).decode()


def _decode_token(token: str) -> int | None:
    if not token:
        return None
    try:
        kind, _, value = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if kind == "after":
            return int(value)
    except (ValueError, UnicodeDecodeError):
        pass
    raise InvalidArgument.single("page_token", "not a token returned by a previous list call")


class SqliteStorage(Storage):
    """One connection per thread on a WAL database; writes use BEGIN IMMEDIATE."""

    def __init__(self, path: str | Path) -> None:
        self._path = str(path)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._experiment_locks: dict[str, threading.Lock] = {}
        # executescript manages its own transaction
        self._db().executescript(SCHEMA)

    # -------------------------------------------------------------- plumbing

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            # Each connection is used by its own thread; close() may run on another.
            db = sqlite3.connect(
                self._path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit is on disk before the reply, even across power loss.
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            self._local.db = db
            with self._connections_lock:
                self._connections.append(db)
        return db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        db = self._db()
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("COMMIT")

    def close(self) -> None:
        with self._connections_lock:
            for db in self._connections:
                db.close()
            self._connections.clear()
        self._local = threading.local()

    # -------------------------------------------------------------- experiments

    def _experiment_row(self, db: sqlite3.Connection, experiment_id: str) -> sqlite3.Row:
        row = db.execute(
            "SELECT * FROM experiments WHERE id = ?", (_int_id(experiment_id, "experiment"),)
        ).fetchone()
        if row is None:
            raise NotFound(f"experiment {experiment_id!r} not found")
        return row

    def _experiment(self, db: sqlite3.Connection, row: sqlite3.Row) -> Experiment:
        counts = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(failed), 0) FROM observations WHERE experiment_id = ?",
            (row["id"],),
        ).fetchone()
        open_count = db.execute(
            "SELECT COUNT(*) FROM suggestions WHERE experiment_id = ? AND state = 'open'",
            (row["id"],),
        ).fetchone()[0]
        return codec.definition_from_json(
            row["definition"],
            id=str(row["id"]),
            name=row["name"],
            project=row["project"],
            state=ExperimentState(row["state"]),
            create_time=_time(row["create_time"]),
            update_time=_time(row["update_time"]),
            progress=Progress(
                observation_count=counts[0],
                failed_observation_count=counts[1],
                open_suggestion_count=open_count,
            ),
        )

    def create_experiment(self, experiment: Experiment) -> Experiment:
        now = _now()
        with self._write() as db:
            cur = db.execute(
                "INSERT INTO experiments (name, project, state, definition, create_time,"
                " update_time) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    experiment.name,
                    experiment.project,
                    experiment.state.value,
                    codec.definition_to_json(experiment),
                    now,
                    now,
                ),
            )
            row = self._experiment_row(db, str(cur.lastrowid))
            return self._experiment(db, row)

    def get_experiment(self, experiment_id: str) -> Experiment:
        with self._read() as db:
            return self._experiment(db, self._experiment_row(db, experiment_id))

    def list_experiments(
        self, project: str, state: ExperimentState | None, page_size: int, page_token: str
    ) -> Page[Experiment]:
        before = _decode_token(page_token)
        sql, args = "SELECT * FROM experiments WHERE 1 = 1", list[object]()
        if project:
            sql, args = sql + " AND project = ?", [*args, project]
        if state is not None:
            sql, args = sql + " AND state = ?", [*args, state.value]
        if before is not None:
            sql, args = sql + " AND id < ?", [*args, before]
        sql += " ORDER BY id DESC LIMIT ?"
        with self._read() as db:
            rows = db.execute(sql, (*args, page_size + 1)).fetchall()
            items = [self._experiment(db, r) for r in rows[:page_size]]
        token = _encode_token(int(items[-1].id)) if len(rows) > page_size else ""
        return Page(items, token)

    def update_experiment(self, experiment: Experiment) -> Experiment:
        with self._write() as db:
            self._experiment_row(db, experiment.id)
            db.execute(
                "UPDATE experiments SET name = ?, project = ?, state = ?, definition = ?,"
                " update_time = ? WHERE id = ?",
                (
                    experiment.name,
                    experiment.project,
                    experiment.state.value,
                    codec.definition_to_json(experiment),
                    _now(),
                    int(experiment.id),
                ),
            )
            return self._experiment(db, self._experiment_row(db, experiment.id))

    def delete_experiment(self, experiment_id: str) -> None:
        with self._write() as db:
            row = self._experiment_row(db, experiment_id)
            db.execute("DELETE FROM experiments WHERE id = ?", (row["id"],))

    @contextmanager
    def experiment_lock(self, experiment_id: str) -> Iterator[None]:
        with self._connections_lock:
            lock = self._experiment_locks.setdefault(experiment_id, threading.Lock())
        with lock:
            yield

    def load_history(self, experiment_id: str) -> tuple[list[Observation], list[Suggestion]]:
        with self._read() as db:
            row = self._experiment_row(db, experiment_id)
            observations = [
                self._observation(r)
                for r in db.execute(
                    "SELECT * FROM observations WHERE experiment_id = ? ORDER BY id", (row["id"],)
                )
            ]
            pending = [
                self._suggestion(r)
                for r in db.execute(
                    "SELECT * FROM suggestions WHERE experiment_id = ? AND state = 'open'"
                    " ORDER BY id",
                    (row["id"],),
                )
            ]
        return observations, pending

    def count_suggestions(self, experiment_id: str) -> int:
        with self._read() as db:
            return int(self._experiment_row(db, experiment_id)["suggestion_count"])

    # -------------------------------------------------------------- suggestions

    @staticmethod
    def _suggestion(row: sqlite3.Row) -> Suggestion:
        return Suggestion(
            id=str(row["id"]),
            experiment_id=str(row["experiment_id"]),
            assignments=json.loads(row["assignments"]),
            state=SuggestionState(row["state"]),
            metadata=json.loads(row["metadata"]),
            create_time=_time(row["create_time"]),
            sequence=row["sequence"],
        )

    def create_suggestions(
        self, experiment_id: str, assignments: list[Assignments], metadata: dict[str, Any]
    ) -> list[Suggestion]:
        now = _now()
        with self._write() as db:
            row = self._experiment_row(db, experiment_id)
            first = row["suggestion_count"]
            ids = []
            for k, a in enumerate(assignments):
                cur = db.execute(
                    "INSERT INTO suggestions (experiment_id, sequence, assignments, state,"
                    " metadata, create_time) VALUES (?, ?, ?, 'open', ?, ?)",
                    (row["id"], first + k, codec.dumps(a), codec.dumps(metadata), now),
                )
                ids.append(cur.lastrowid)
            db.execute(
                "UPDATE experiments SET suggestion_count = ? WHERE id = ?",
                (first + len(assignments), row["id"]),
            )
            rows = [
                db.execute("SELECT * FROM suggestions WHERE id = ?", (i,)).fetchone() for i in ids
            ]
        return [self._suggestion(r) for r in rows]

    def _suggestion_row(
        self, db: sqlite3.Connection, experiment_id: str, suggestion_id: str
    ) -> sqlite3.Row:
        exp = self._experiment_row(db, experiment_id)
        row = db.execute(
            "SELECT * FROM suggestions WHERE id = ? AND experiment_id = ?",
            (_int_id(suggestion_id, "suggestion"), exp["id"]),
        ).fetchone()
        if row is None:
            raise NotFound(
                f"suggestion {suggestion_id!r} not found in experiment {experiment_id!r}"
            )
        return row

    def get_suggestion(self, experiment_id: str, suggestion_id: str) -> Suggestion:
        with self._read() as db:
            return self._suggestion(self._suggestion_row(db, experiment_id, suggestion_id))

    def list_suggestions(
        self,
        experiment_id: str,
        state: SuggestionState | None,
        page_size: int,
        page_token: str,
    ) -> Page[Suggestion]:
        after = _decode_token(page_token) or 0
        with self._read() as db:
            exp = self._experiment_row(db, experiment_id)
            sql, args = (
                "SELECT * FROM suggestions WHERE experiment_id = ? AND id > ?",
                [
                    exp["id"],
                    after,
                ],
            )
            if state is not None:
                sql, args = sql + " AND state = ?", [*args, state.value]
            rows = db.execute(sql + " ORDER BY id LIMIT ?", (*args, page_size + 1)).fetchall()
        items = [self._suggestion(r) for r in rows[:page_size]]
        token = _encode_token(int(items[-1].id)) if len(rows) > page_size else ""
        return Page(items, token)

    def delete_suggestion(self, experiment_id: str, suggestion_id: str) -> None:
        with self._write() as db:
            row = self._suggestion_row(db, experiment_id, suggestion_id)
            if row["state"] != SuggestionState.OPEN.value:
                raise FailedPrecondition(
                    f"suggestion {suggestion_id!r} is closed: only open suggestions can be deleted"
                )
            db.execute("DELETE FROM suggestions WHERE id = ?", (row["id"],))

    # -------------------------------------------------------------- observations

    @staticmethod
    def _observation(row: sqlite3.Row) -> Observation:
        sid = row["suggestion_id"]
        return Observation(
            id=str(row["id"]),
            experiment_id=str(row["experiment_id"]),
            suggestion_id=None if sid is None else str(sid),
            assignments=json.loads(row["assignments"]),
            values=codec.values_from_json(row["metric_values"]),
            failed=bool(row["failed"]),
            metadata=json.loads(row["metadata"]),
            create_time=_time(row["create_time"]),
        )

    def create_observation(self, observation: Observation) -> Observation:
        with self._write() as db:
            exp = self._experiment_row(db, observation.experiment_id)
            suggestion_id = None
            if observation.suggestion_id is not None:
                s = self._suggestion_row(db, observation.experiment_id, observation.suggestion_id)
                if s["state"] != SuggestionState.OPEN.value:
                    raise FailedPrecondition(
                        f"suggestion {observation.suggestion_id!r} is closed: it already has"
                        " an observation"
                    )
                suggestion_id = s["id"]
                db.execute("UPDATE suggestions SET state = 'closed' WHERE id = ?", (suggestion_id,))
            cur = db.execute(
                "INSERT INTO observations (experiment_id, suggestion_id, assignments,"
                " metric_values, failed, metadata, create_time) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    exp["id"],
                    suggestion_id,
                    codec.dumps(observation.assignments),
                    codec.values_to_json(observation.values),
                    int(observation.failed),
                    codec.dumps(observation.metadata),
                    _now(),
                ),
            )
            row = db.execute("SELECT * FROM observations WHERE id = ?", (cur.lastrowid,)).fetchone()
        return self._observation(row)

    def _observation_row(
        self, db: sqlite3.Connection, experiment_id: str, observation_id: str
    ) -> sqlite3.Row:
        exp = self._experiment_row(db, experiment_id)
        row = db.execute(
            "SELECT * FROM observations WHERE id = ? AND experiment_id = ?",
            (_int_id(observation_id, "observation"), exp["id"]),
        ).fetchone()
        if row is None:
            raise NotFound(
                f"observation {observation_id!r} not found in experiment {experiment_id!r}"
            )
        return row

    def get_observation(self, experiment_id: str, observation_id: str) -> Observation:
        with self._read() as db:
            return self._observation(self._observation_row(db, experiment_id, observation_id))

    def list_observations(
        self, experiment_id: str, page_size: int, page_token: str
    ) -> Page[Observation]:
        after = _decode_token(page_token) or 0
        with self._read() as db:
            exp = self._experiment_row(db, experiment_id)
            rows = db.execute(
                "SELECT * FROM observations WHERE experiment_id = ? AND id > ? ORDER BY id LIMIT ?",
                (exp["id"], after, page_size + 1),
            ).fetchall()
        items = [self._observation(r) for r in rows[:page_size]]
        token = _encode_token(int(items[-1].id)) if len(rows) > page_size else ""
        return Page(items, token)

    def update_observation(self, observation: Observation) -> Observation:
        with self._write() as db:
            row = self._observation_row(db, observation.experiment_id, observation.id)
            db.execute(
                "UPDATE observations SET metric_values = ?, failed = ?, metadata = ? WHERE id = ?",
                (
                    codec.values_to_json(observation.values),
                    int(observation.failed),
                    codec.dumps(observation.metadata),
                    row["id"],
                ),
            )
            row = db.execute("SELECT * FROM observations WHERE id = ?", (row["id"],)).fetchone()
        return self._observation(row)

    def delete_observation(self, experiment_id: str, observation_id: str) -> None:
        with self._write() as db:
            row = self._observation_row(db, experiment_id, observation_id)
            db.execute("DELETE FROM observations WHERE id = ?", (row["id"],))
