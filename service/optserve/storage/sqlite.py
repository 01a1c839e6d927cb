"""Embedded storage on one SQLite file (WAL, every write committed before it returns)."""

from __future__ import annotations

import base64
import dataclasses
import itertools
import json
import math
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..domain import best, ids
from ..domain.errors import (
    AlreadyExists,
    Cancelled,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from ..domain.grid import Grid, TakenPoints, grid_of, union
from ..domain.model import (
    Assignments,
    Experiment,
    ExperimentState,
    Observation,
    Progress,
    QueuedSuggestion,
    Suggestion,
    SuggestionState,
)
from ..domain.runs import Project, RunChange, RunState, TrainingRun
from ..domain.tenancy import Role, Token
from . import codec
from .base import (
    PLAIN,
    Draw,
    DuplicateRequest,
    KeyedLocks,
    Page,
    RecordedRequest,
    RequestKey,
    Result,
    Storage,
    Write,
)

# Most writes committed together by one COMMIT (group commit).
MAX_BATCH = 64
# Experiment definitions kept parsed for ranking observations (see _metrics_of).
MAX_PARSED = 1024
# Request records are kept this long: retries come within minutes, not weeks.
REQUEST_RETENTION_SECONDS = 7 * 24 * 3600

# The schema as first released; migrations below take it to the current version.
SCHEMA_V1 = """
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

# Version n+1 is MIGRATIONS[n]; PRAGMA user_version holds the applied version.
MIGRATIONS = [
    SCHEMA_V1,
    """
    ALTER TABLE suggestions ADD COLUMN lease_seconds INTEGER;
    -- NULL: never expires (suggestions made before leases existed)
    ALTER TABLE suggestions ADD COLUMN expire_time REAL;
    CREATE TABLE requests (
        principal TEXT NOT NULL,
        request_id TEXT NOT NULL,
        method TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        result TEXT NOT NULL,
        create_time REAL NOT NULL,
        PRIMARY KEY (principal, request_id)
    ) WITHOUT ROWID;
    CREATE INDEX requests_by_time ON requests (create_time);
    CREATE TABLE tokens (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        projects TEXT NOT NULL,
        secret_hash TEXT NOT NULL UNIQUE,
        create_time REAL NOT NULL,
        revoke_time REAL
    );
    """,
    # Progress kept with every write, so that reads cost the same at any history size.
    """
    ALTER TABLE experiments ADD COLUMN observation_count INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE experiments ADD COLUMN failed_count INTEGER NOT NULL DEFAULT 0;
    -- the single best observation (see domain.best.improves), NULL when there is none
    ALTER TABLE experiments ADD COLUMN best_observation_id INTEGER;
    UPDATE experiments SET
        observation_count = (
            SELECT COUNT(*) FROM observations o WHERE o.experiment_id = experiments.id
        ),
        failed_count = (
            SELECT COALESCE(SUM(failed), 0) FROM observations o
            WHERE o.experiment_id = experiments.id
        );
    CREATE INDEX suggestions_by_expiry ON suggestions (experiment_id, state, expire_time);
    """,
    # Projects, training runs (with their checkpoints) and queued suggestions.
    """
    CREATE TABLE projects (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        metadata TEXT NOT NULL,
        create_time REAL NOT NULL,
        update_time REAL NOT NULL
    );
    INSERT OR IGNORE INTO projects (id, name, metadata, create_time, update_time)
        SELECT project, project, '{}', MIN(create_time), MIN(create_time)
        FROM experiments WHERE project != '' GROUP BY project;
    CREATE TABLE training_runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        project TEXT NOT NULL,
        -- runs outlive their experiment, suggestion and observation
        experiment_id INTEGER REFERENCES experiments (id) ON DELETE SET NULL,
        suggestion_id INTEGER REFERENCES suggestions (id) ON DELETE SET NULL,
        observation_id INTEGER REFERENCES observations (id) ON DELETE SET NULL,
        state TEXT NOT NULL,
        deleted INTEGER NOT NULL,
        -- name, assignments, values, metadata, extras and checkpoints
        document TEXT NOT NULL,
        create_time REAL NOT NULL,
        update_time REAL NOT NULL,
        complete_time REAL
    );
    CREATE INDEX training_runs_by_project ON training_runs (project, deleted, id);
    CREATE INDEX training_runs_by_experiment ON training_runs (experiment_id, deleted, state);
    CREATE TABLE queued_suggestions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        experiment_id INTEGER NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
        assignments TEXT NOT NULL,
        create_time REAL NOT NULL
    );
    CREATE INDEX queued_by_experiment ON queued_suggestions (experiment_id, id);
    """,
    # Observations of ended training runs were stored with empty assignments (before
    # "A run's observation carries the run's assignments"): they take their
    # suggestion's. Progress and the best observation depend on values only.
    """
    UPDATE observations SET assignments = (
        SELECT s.assignments FROM suggestions s WHERE s.id = observations.suggestion_id
    )
    WHERE assignments = '{}' AND EXISTS (
        SELECT 1 FROM suggestions s
        WHERE s.id = observations.suggestion_id AND s.assignments != '{}'
    );
    """,
    # A GRID experiment's rows keep their point's index in the grid (domain.grid),
    # -1 off the grid; NULL for other types and rows of before. The next grid points
    # are found from these integers. Suggestions need no index of their own: the
    # live ones are found by suggestions_by_expiry, which skips the closed bulk.
    """
    ALTER TABLE observations ADD COLUMN grid_index INTEGER;
    ALTER TABLE suggestions ADD COLUMN grid_index INTEGER;
    CREATE INDEX observations_by_grid_index ON observations (experiment_id, grid_index);
    """,
]
# Migrations whose materialized values need Python to compute, by version reached.
BACKFILLS = {3: "_backfill_best"}
SCHEMA_VERSION = len(MIGRATIONS)


class SchemaTooNew(Exception):
    """The database was written by a newer optserve; this one must not touch it."""


# An open suggestion counts as open (pending) until its lease runs out.
_LIVE = "state = 'open' AND (expire_time IS NULL OR expire_time > ?)"
# _LIVE with the time as the statement's second numbered parameter
_LIVE_AT_2 = "state = 'open' AND (expire_time IS NULL OR expire_time > ?2)"
_EXPIRED = "state = 'open' AND expire_time IS NOT NULL AND expire_time <= ?"


def _now() -> float:
    return datetime.now(UTC).timestamp()


def _time(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _int_id(value: str, what: str) -> int:
    """Ids are decimal integers within int64; anything else names nothing."""
    number = ids.parse_id(value)
    if number is None:
        raise NotFound(f"{what} {value[:40]!r} not found")
    return number


def _encode_token(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"after:{last_id}".encode()).decode()


def _decode_token(token: str) -> int | None:
    if not token:
        return None
    # Tokens written by _encode_token are short; the id in one must be a well-formed id.
    if len(token) <= 64 and token.isascii():
        try:
            kind, _, value = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            kind, value = "", ""
        number = ids.parse_id(value) if kind == "after" else None
        if number is not None:
            return number
    raise InvalidArgument.single("page_token", "not a token returned by a previous list call")


class SqliteStorage(Storage):
    """One connection per thread on a WAL database; writes use BEGIN IMMEDIATE."""

    def __init__(self, path: str | Path) -> None:
        self._path = str(path)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        # One process owns the file (see preflight.lock): a process-local lock suffices.
        self._experiment_locks = KeyedLocks()
        self._records = itertools.count()
        self._migrate()
        # Group commit (see _write): one writer connection, used under _writer_lock.
        self._writer: sqlite3.Connection | None = None
        self._writer_lock = threading.Lock()
        self._batch = threading.Condition()
        self._waiting = 0  # writers waiting for _writer_lock
        self._batch_open = False
        self._batch_jobs = 0
        self._batch_number = 0
        self._committed = 0  # number of the last batch whose COMMIT finished
        self._commit_errors: dict[int, BaseException] = {}
        self._parsed: dict[str, Experiment] = {}  # see _metrics_of
        self._grids: dict[str, Grid | None] = {}  # see _grid_of
        # get_definition's answers by experiment, valid while _epoch is unchanged:
        # this process owns the file, and every write that changes a definition
        # (update, delete) moves the epoch on once it has committed.
        self._definitions: dict[int, tuple[int, Experiment]] = {}
        self._epoch = 0
        # get_experiment's answers by experiment: (the write groups committed before
        # the read, the time its open-suggestion count stops being true, the answer).
        # Any commit makes them stale: a read-mostly experiment is read without SQL.
        self._views: dict[int, tuple[int, float, Experiment]] = {}

    def _migrate(self) -> None:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise SchemaTooNew(
                    f"{self._path}: schema version {version} is newer than this optserve's"
                    f" ({SCHEMA_VERSION}); upgrade optserve"
                )
            for reached, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(statement)
                if reached in BACKFILLS:
                    getattr(self, BACKFILLS[reached])(db)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # -------------------------------------------------------------- plumbing

    def _connect(self) -> sqlite3.Connection:
        # Used by one thread at a time; close() may run on another.
        db = sqlite3.connect(
            self._path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is on disk before the reply, even across power loss.
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        with self._connections_lock:
            self._connections.append(db)
        return db

    def _db(self) -> sqlite3.Connection:
        """This thread's connection, for reads."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self._connect()
        return db

    def _writer_db(self) -> sqlite3.Connection:
        if self._writer is None:
            self._writer = self._connect()
        return self._writer

    @contextmanager
    def _write(self, write: Write = PLAIN) -> Iterator[sqlite3.Connection]:
        """One write, committed before it returns, by group commit.

        Writers of this process take turns on one connection; each write runs in
        a SAVEPOINT of a shared transaction, and the last writer of a group (no
        one else waiting, or MAX_BATCH writes in) commits the group at once: one
        fsync for many writes, each still durable before its reply. A write
        that fails rolls back to its savepoint and leaves the others' intact.
        Taking turns on a lock also replaces SQLite's sleeping busy handler,
        which made contending threads wait milliseconds each.
        """
        with self._batch:
            self._waiting += 1
        self._writer_lock.acquire()
        with self._batch:
            self._waiting -= 1
        db = self._writer_db()
        failure: BaseException | None = None
        try:
            if not self._batch_open:
                db.execute("BEGIN IMMEDIATE")
                self._batch_open, self._batch_jobs = True, 0
                self._batch_number += 1
            batch = self._batch_number
            self._batch_jobs += 1
            db.execute("SAVEPOINT write")
            try:
                yield db
                if not write.alive():
                    raise Cancelled(
                        "the call ended before its write committed; nothing was written"
                    )
                db.execute("RELEASE write")
            except BaseException as error:
                db.execute("ROLLBACK TO write")
                db.execute("RELEASE write")
                failure = error
        finally:
            self._end_turn()
        # Wait for the group's COMMIT: a write is acknowledged only once durable.
        with self._batch:
            while self._committed < batch:
                self._batch.wait()
            commit_error = self._commit_errors.get(batch)
        if failure is not None:
            raise failure
        if commit_error is not None:
            raise commit_error

    def _end_turn(self) -> None:
        """Commits the open group when no other writer is waiting to join it
        (or it is full), then lets the next writer in."""
        with self._batch:
            join = self._waiting > 0 and self._batch_jobs < MAX_BATCH
        if self._batch_open and not join:
            batch = self._batch_number
            error: BaseException | None = None
            try:
                self._writer_db().execute("COMMIT")
            except BaseException as exc:
                error = exc
                with suppress(sqlite3.Error):
                    self._writer_db().execute("ROLLBACK")
            self._batch_open = False
            with self._batch:
                if error is not None:
                    self._commit_errors[batch] = error
                self._commit_errors.pop(batch - 100, None)
                self._committed = batch
                self._batch.notify_all()
        self._writer_lock.release()

    def _record(self, db: sqlite3.Connection, write: Write, result: Result) -> None:
        """Records the request with its result, inside the write's transaction."""
        key = write.request
        if key is None:
            return
        now = _now()
        try:
            db.execute(
                "INSERT INTO requests (principal, request_id, method, fingerprint, result,"
                " create_time) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    key.principal,
                    key.request_id,
                    key.method,
                    key.fingerprint,
                    codec.result_to_json(result),
                    now,
                ),
            )
        except sqlite3.IntegrityError as error:
            raise DuplicateRequest(key.request_id) from error
        if next(self._records) % 1000 == 0:
            db.execute(
                "DELETE FROM requests WHERE create_time < ?", (now - REQUEST_RETENTION_SECONDS,)
            )

    def find_request(self, principal: str, request_id: str) -> RecordedRequest | None:
        row = self._one(
            "SELECT * FROM requests WHERE principal = ? AND request_id = ?",
            (principal, request_id),
        )
        if row is None:
            return None
        key = RequestKey(principal, request_id, row["method"], row["fingerprint"])
        return RecordedRequest(key, codec.result_from_json(row["result"]))

    def _one(self, sql: str, args: Sequence[Any]) -> sqlite3.Row | None:
        """One row of one statement (a statement is its own transaction: no BEGIN/COMMIT)."""
        row: sqlite3.Row | None = self._db().execute(sql, args).fetchone()
        return row

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
        self._writer = None
        self._views.clear()

    # -------------------------------------------------------------- experiments

    def _experiment_row(self, db: sqlite3.Connection, experiment_id: str) -> sqlite3.Row:
        row = db.execute(
            "SELECT * FROM experiments WHERE id = ?", (_int_id(experiment_id, "experiment"),)
        ).fetchone()
        if row is None:
            raise NotFound(f"experiment {experiment_id!r} not found")
        return row

    def _experiment(self, db: sqlite3.Connection, row: sqlite3.Row) -> Experiment:
        return self._experiment_until(db, row)[0]

    def _experiment_until(
        self, db: sqlite3.Connection, row: sqlite3.Row
    ) -> tuple[Experiment, float]:
        """The experiment with its progress, read from the materialized columns: the
        counts and the ends of the history in one statement, the observations in one;
        and the time until which that stays true without a write (the next expiry of a
        lease, which changes the open-suggestion count)."""
        counts = db.execute(
            f"SELECT (SELECT COUNT(*) FROM suggestions WHERE experiment_id = ?1 AND {_LIVE_AT_2}),"
            " (SELECT MIN(id) FROM observations WHERE experiment_id = ?1),"
            " (SELECT MAX(id) FROM observations WHERE experiment_id = ?1),"
            " (SELECT COUNT(*) FROM training_runs WHERE experiment_id = ?1 AND deleted = 0),"
            " (SELECT COALESCE(SUM(state != 'active'), 0) FROM training_runs"
            "  WHERE experiment_id = ?1 AND deleted = 0),"
            " (SELECT MIN(expire_time) FROM suggestions"
            f"  WHERE experiment_id = ?1 AND {_LIVE_AT_2})",
            (row["id"], _now()),
        ).fetchone()
        open_count, first_id, last_id, total_runs, finished_runs, next_expiry = counts
        wanted = {i for i in (row["best_observation_id"], first_id, last_id) if i is not None}
        found: dict[int, Observation] = {}
        if wanted:
            marks = ",".join("?" * len(wanted))
            for r in db.execute(f"SELECT * FROM observations WHERE id IN ({marks})", list(wanted)):
                found[r["id"]] = self._observation(r)
        best_row = found.get(row["best_observation_id"])
        ends = [found.get(first_id), found.get(last_id)]
        return codec.definition_from_json(
            row["definition"],
            id=str(row["id"]),
            name=row["name"],
            project=row["project"],
            state=ExperimentState(row["state"]),
            create_time=_time(row["create_time"]),
            update_time=_time(row["update_time"]),
            progress=Progress(
                observation_count=row["observation_count"],
                failed_observation_count=row["failed_count"],
                open_suggestion_count=open_count,
                best_observation=best_row,
                first_observation=ends[0],
                last_observation=ends[1],
                total_run_count=total_runs,
                finished_run_count=finished_runs,
            ),
        ), math.inf if next_expiry is None else next_expiry

    # -------------------------------------------------------------- incumbents

    def _metrics_of(self, row: sqlite3.Row) -> Experiment:
        """The definition an observation is ranked by, parsed once per definition text:
        shared, read-only (update_experiment writes a new text)."""
        text = row["definition"]
        found = self._parsed.get(text)
        if found is None:
            if len(self._parsed) >= MAX_PARSED:
                self._parsed.clear()
            found = self._parsed[text] = codec.definition_from_json(text, id="", name="")
        return found

    def _grid_of(self, row: sqlite3.Row) -> Grid | None:
        """The grid of the experiment of ``row`` (None unless GRID), made once per
        definition text."""
        text = row["definition"]
        try:
            return self._grids[text]
        except KeyError:
            pass
        if len(self._grids) >= MAX_PARSED:
            self._grids.clear()
        found = self._grids[text] = grid_of(self._metrics_of(row))
        return found

    def _definition(self, row: sqlite3.Row) -> Experiment:
        return codec.definition_from_json(row["definition"], id=str(row["id"]), name="")

    def _refresh_best(self, db: sqlite3.Connection, experiment_key: int) -> None:
        """Recomputes the best observation from the whole history (after an update
        or delete that may dethrone it, or a change of metric thresholds)."""
        row = db.execute("SELECT * FROM experiments WHERE id = ?", (experiment_key,)).fetchone()
        exp = self._definition(row)
        best_id = None
        if len(exp.optimized_metrics) == 1:
            observations = [
                self._observation(r)
                for r in db.execute(
                    "SELECT * FROM observations WHERE experiment_id = ? ORDER BY id",
                    (experiment_key,),
                )
            ]
            exp.num_solutions = 1
            top, _ = best.best_observations(exp, observations)
            best_id = int(top[0].id) if top else None
        db.execute(
            "UPDATE experiments SET best_observation_id = ? WHERE id = ?", (best_id, experiment_key)
        )

    def _backfill_best(self, db: sqlite3.Connection) -> None:
        for (key,) in db.execute("SELECT id FROM experiments").fetchall():
            self._refresh_best(db, key)

    def create_experiment(self, experiment: Experiment, write: Write = PLAIN) -> Experiment:
        now = _now()
        with self._write(write) as db:
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
            self._register_project(db, experiment.project, now)
            row = self._experiment_row(db, str(cur.lastrowid))
            result = self._experiment(db, row)
            self._record(db, write, result)
        return result

    def get_experiment(self, experiment_id: str) -> Experiment:
        committed = self._committed  # before the read: a commit meanwhile moves it on
        cached = self._cached_view(_int_id(experiment_id, "experiment"), committed)
        if cached is not None:
            return cached
        with self._read() as db:
            return self._fresh_view(db, self._experiment_row(db, experiment_id), committed)

    def _cached_view(self, key: int, committed: int) -> Experiment | None:
        cached = self._views.get(key)
        if cached is not None and cached[0] == committed and _now() < cached[1]:
            return dataclasses.replace(cached[2])
        return None

    def _view(self, db: sqlite3.Connection, row: sqlite3.Row, committed: int) -> Experiment:
        """The experiment of ``row`` read in a transaction that began after ``committed``
        write groups had committed, from the cache when none has committed since."""
        cached = self._cached_view(row["id"], committed)
        return cached if cached is not None else self._fresh_view(db, row, committed)

    def _fresh_view(self, db: sqlite3.Connection, row: sqlite3.Row, committed: int) -> Experiment:
        exp, until = self._experiment_until(db, row)
        if len(self._views) >= MAX_PARSED:
            self._views.clear()
        self._views[row["id"]] = (committed, until, exp)
        return dataclasses.replace(exp)

    def get_definition(self, experiment_id: str) -> Experiment:
        key = _int_id(experiment_id, "experiment")
        epoch = self._epoch  # before the read: a change committed meanwhile moves it on
        cached = self._definitions.get(key)
        if cached is not None and cached[0] == epoch:
            return dataclasses.replace(cached[1])
        row = self._one("SELECT * FROM experiments WHERE id = ?", (key,))
        if row is None:
            raise NotFound(f"experiment {experiment_id!r} not found")
        definition = codec.definition_from_json(
            row["definition"],
            id=str(row["id"]),
            name=row["name"],
            project=row["project"],
            state=ExperimentState(row["state"]),
            create_time=_time(row["create_time"]),
            update_time=_time(row["update_time"]),
        )
        if len(self._definitions) >= MAX_PARSED:
            self._definitions.clear()
        self._definitions[key] = (epoch, definition)
        return dataclasses.replace(definition)

    def _definitions_changed(self) -> None:
        """After a write that changed or deleted a definition committed (or failed)."""
        with self._connections_lock:
            self._epoch += 1
            self._definitions.clear()

    def list_experiments(
        self,
        project: str,
        state: ExperimentState | None,
        page_size: int,
        page_token: str,
        projects: frozenset[str] | None = None,
    ) -> Page[Experiment]:
        before = _decode_token(page_token)
        sql, args = "SELECT * FROM experiments WHERE 1 = 1", list[object]()
        if project:
            sql, args = sql + " AND project = ?", [*args, project]
        if projects is not None:
            marks = ", ".join("?" * len(projects))
            sql, args = sql + f" AND project IN ({marks})", [*args, *sorted(projects)]
        if state is not None:
            sql, args = sql + " AND state = ?", [*args, state.value]
        if before is not None:
            sql, args = sql + " AND id < ?", [*args, before]
        sql += " ORDER BY id DESC LIMIT ?"
        committed = self._committed
        with self._read() as db:
            rows = db.execute(sql, (*args, page_size + 1)).fetchall()
            items = [self._view(db, r, committed) for r in rows[:page_size]]
        token = _encode_token(int(items[-1].id)) if len(rows) > page_size else ""
        return Page(items, token)

    def update_experiment(self, experiment: Experiment, write: Write = PLAIN) -> Experiment:
        try:
            return self._update_experiment(experiment, write)
        finally:
            self._definitions_changed()

    def _update_experiment(self, experiment: Experiment, write: Write) -> Experiment:
        with self._write(write) as db:
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
            self._register_project(db, experiment.project, _now())
            # metric thresholds may have changed which observations qualify
            self._refresh_best(db, int(experiment.id))
            result = self._experiment(db, self._experiment_row(db, experiment.id))
            self._record(db, write, result)
        return result

    def delete_experiment(self, experiment_id: str, write: Write = PLAIN) -> None:
        try:
            with self._write(write) as db:
                row = self._experiment_row(db, experiment_id)
                db.execute("DELETE FROM experiments WHERE id = ?", (row["id"],))
                self._record(db, write, None)
        finally:
            self._definitions_changed()

    def experiment_project(self, experiment_id: str) -> str:
        row = self._one(
            "SELECT project FROM experiments WHERE id = ?", (_int_id(experiment_id, "experiment"),)
        )
        if row is None:
            raise NotFound(f"experiment {experiment_id!r} not found")
        return str(row[0])

    def experiment_lock(self, experiment_id: str) -> AbstractContextManager[None]:
        return self._experiment_locks.hold(experiment_id)

    def load_history(self, experiment_id: str) -> tuple[list[Observation], list[Suggestion]]:
        with self._read() as db:
            row = self._experiment_row(db, experiment_id)
            observations = [
                self._observation(r)
                for r in db.execute(
                    "SELECT * FROM observations WHERE experiment_id = ? ORDER BY id", (row["id"],)
                )
            ]
            now = _now()
            pending = [
                self._suggestion(r, now)
                for r in db.execute(
                    f"SELECT * FROM suggestions WHERE experiment_id = ? AND {_LIVE} ORDER BY id",
                    (row["id"], now),
                )
            ]
        return observations, pending

    def taken_grid_points(self, experiment_id: str) -> TakenPoints:
        # One statement: the observations' distinct indices as one row (their count,
        # the largest, and the list as text, made only when they are not the product's
        # first points: no Python object per row), then the live suggestions (few) and
        # the observations without an index, whose assignments are parsed.
        with self._read() as db:
            key = self._experiment_row(db, experiment_id)["id"]
            cursor = db.cursor()
            cursor.row_factory = None
            distinct = (
                "SELECT grid_index AS g FROM observations"
                " WHERE experiment_id = ?1 AND grid_index >= 0 GROUP BY grid_index"
            )
            rows = cursor.execute(
                "SELECT 0, c, m, CASE WHEN c = m + 1 THEN NULL ELSE"
                f" (SELECT group_concat(g) FROM ({distinct})) END"
                f" FROM (SELECT count(*) AS c, max(g) AS m FROM ({distinct}))"
                " UNION ALL SELECT 1, grid_index, NULL,"
                " CASE WHEN grid_index IS NULL THEN assignments END FROM suggestions"
                f" WHERE experiment_id = ?1 AND {_LIVE_AT_2}"
                " UNION ALL SELECT 2, NULL, NULL, assignments FROM observations"
                " WHERE experiment_id = ?1 AND grid_index IS NULL",
                (key, _now()),
            ).fetchall()
        indices: Sequence[int] = []
        more: list[int] = []
        unindexed = []
        for kind, index, largest, text in rows:
            if kind == 0:
                if index and index == largest + 1:  # distinct, within [0, largest]
                    indices = range(index)
                elif index:
                    indices = sorted(map(int, text.split(",")))
            elif index is not None:
                more.append(index)
            else:
                unindexed.append(json.loads(text))
        return TakenPoints(union(indices, more), unindexed)

    def count_suggestions(self, experiment_id: str) -> int:
        row = self._one(
            "SELECT suggestion_count FROM experiments WHERE id = ?",
            (_int_id(experiment_id, "experiment"),),
        )
        if row is None:
            raise NotFound(f"experiment {experiment_id!r} not found")
        return int(row[0])

    # -------------------------------------------------------------- suggestions

    @staticmethod
    def _suggestion(row: sqlite3.Row, now: float) -> Suggestion:
        state = SuggestionState(row["state"])
        expire = row["expire_time"]
        if state is SuggestionState.OPEN and expire is not None and expire <= now:
            state = SuggestionState.EXPIRED
        return Suggestion(
            id=str(row["id"]),
            experiment_id=str(row["experiment_id"]),
            assignments=json.loads(row["assignments"]),
            state=state,
            metadata=json.loads(row["metadata"]),
            create_time=_time(row["create_time"]),
            sequence=row["sequence"],
            expire_time=None if expire is None else _time(expire),
            lease_seconds=row["lease_seconds"] or 0,
        )

    def create_suggestions(
        self,
        experiment_id: str,
        assignments: list[Assignments] | Draw,
        metadata: dict[str, Any],
        lease_seconds: int,
        write: Write = PLAIN,
        queued: Sequence[str] = (),
    ) -> list[Suggestion]:
        now = _now()
        with self._write(write) as db:
            row = self._experiment_row(db, experiment_id)
            for queued_id in queued:
                self._delete_queued(db, row["id"], experiment_id, queued_id)
            points = assignments(row["suggestion_count"]) if callable(assignments) else assignments
            result = self._insert_suggestions(db, row, points, metadata, lease_seconds, now)
            self._record(db, write, result)
        return result

    def _insert_suggestions(
        self,
        db: sqlite3.Connection,
        row: sqlite3.Row,
        assignments: list[Assignments],
        metadata: dict[str, Any],
        lease_seconds: int,
        now: float,
    ) -> list[Suggestion]:
        """Inserts open suggestions; returns them as a read would (no reads: ``row`` was
        read in this transaction)."""
        first = row["suggestion_count"]
        encoded_metadata = codec.dumps(metadata)
        grid = self._grid_of(row)
        made = []
        for k, a in enumerate(assignments):
            encoded = codec.dumps(a)
            decoded = json.loads(encoded)  # the point as it reads back
            cur = db.execute(
                "INSERT INTO suggestions (experiment_id, sequence, assignments, state,"
                " metadata, create_time, lease_seconds, expire_time, grid_index)"
                " VALUES (?, ?, ?, 'open', ?, ?, ?, ?, ?)",
                (
                    row["id"],
                    first + k,
                    encoded,
                    encoded_metadata,
                    now,
                    lease_seconds,
                    now + lease_seconds,
                    None if grid is None else grid.index(decoded),
                ),
            )
            assert cur.lastrowid is not None
            made.append(
                Suggestion(
                    id=str(cur.lastrowid),
                    experiment_id=str(row["id"]),
                    assignments=decoded,
                    state=SuggestionState.OPEN,
                    metadata=json.loads(encoded_metadata),
                    create_time=_time(now),
                    sequence=first + k,
                    expire_time=_time(now + lease_seconds),
                    lease_seconds=lease_seconds,
                )
            )
        db.execute(
            "UPDATE experiments SET suggestion_count = ? WHERE id = ?",
            (first + len(assignments), row["id"]),
        )
        return made

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
        experiment_key = _int_id(experiment_id, "experiment")  # checked first, as before
        row = self._one(
            "SELECT * FROM suggestions WHERE id = ? AND experiment_id = ?",
            (_int_id(suggestion_id, "suggestion"), experiment_key),
        )
        if row is None:  # which one is missing decides the message
            with self._read() as db:
                row = self._suggestion_row(db, experiment_id, suggestion_id)
        return self._suggestion(row, _now())

    def list_suggestions(
        self,
        experiment_id: str,
        state: SuggestionState | None,
        page_size: int,
        page_token: str,
    ) -> Page[Suggestion]:
        after = _decode_token(page_token) or 0
        now = _now()
        with self._read() as db:
            exp = self._experiment_row(db, experiment_id)
            sql, args = (
                "SELECT * FROM suggestions WHERE experiment_id = ? AND id > ?",
                [exp["id"], after],
            )
            if state is SuggestionState.OPEN:
                sql, args = sql + f" AND {_LIVE}", [*args, now]
            elif state is SuggestionState.EXPIRED:
                sql, args = sql + f" AND {_EXPIRED}", [*args, now]
            elif state is not None:
                sql, args = sql + " AND state = ?", [*args, state.value]
            rows = db.execute(sql + " ORDER BY id LIMIT ?", (*args, page_size + 1)).fetchall()
        items = [self._suggestion(r, now) for r in rows[:page_size]]
        token = _encode_token(int(items[-1].id)) if len(rows) > page_size else ""
        return Page(items, token)

    def update_suggestion_metadata(
        self,
        experiment_id: str,
        suggestion_id: str,
        metadata: dict[str, Any],
        write: Write = PLAIN,
    ) -> Suggestion:
        with self._write(write) as db:
            row = self._suggestion_row(db, experiment_id, suggestion_id)
            db.execute(
                "UPDATE suggestions SET metadata = ? WHERE id = ?",
                (codec.dumps(metadata), row["id"]),
            )
            row = db.execute("SELECT * FROM suggestions WHERE id = ?", (row["id"],)).fetchone()
            result = self._suggestion(row, _now())
            self._record(db, write, result)
        return result

    def delete_suggestion(
        self, experiment_id: str, suggestion_id: str, write: Write = PLAIN
    ) -> None:
        with self._write(write) as db:
            row = self._suggestion_row(db, experiment_id, suggestion_id)
            if row["state"] != SuggestionState.OPEN.value:
                raise FailedPrecondition(
                    f"suggestion {suggestion_id!r} is closed: only open suggestions can be deleted"
                )
            db.execute("DELETE FROM suggestions WHERE id = ?", (row["id"],))
            self._record(db, write, None)

    def renew_suggestion(
        self,
        experiment_id: str,
        suggestion_id: str,
        lease_seconds: int | None,
        write: Write = PLAIN,
    ) -> Suggestion:
        now = _now()
        with self._write(write) as db:
            row = self._suggestion_row(db, experiment_id, suggestion_id)
            current = self._suggestion(row, now)
            if current.state is not SuggestionState.OPEN:
                raise FailedPrecondition(
                    f"suggestion {suggestion_id!r} is {current.state.value}: only open suggestions"
                    " can be renewed (an observation for an expired one is still accepted)"
                )
            lease = lease_seconds if lease_seconds is not None else current.lease_seconds
            if lease:
                db.execute(
                    "UPDATE suggestions SET lease_seconds = ?, expire_time = ? WHERE id = ?",
                    (lease, now + lease, row["id"]),
                )
            row = db.execute("SELECT * FROM suggestions WHERE id = ?", (row["id"],)).fetchone()
            result = self._suggestion(row, now)
            self._record(db, write, result)
        return result

    # -------------------------------------------------------------- observations

    @staticmethod
    def _observation(row: sqlite3.Row, prefix: str = "") -> Observation:
        """The observation of ``row``'s columns, named ``prefix`` + the column's name."""
        sid = row[prefix + "suggestion_id"]
        return Observation(
            id=str(row[prefix + "id"]),
            experiment_id=str(row[prefix + "experiment_id"]),
            suggestion_id=None if sid is None else str(sid),
            assignments=json.loads(row[prefix + "assignments"]),
            values=codec.values_from_json(row[prefix + "metric_values"]),
            failed=bool(row[prefix + "failed"]),
            metadata=json.loads(row[prefix + "metadata"]),
            create_time=_time(row[prefix + "create_time"]),
        )

    def create_observation(self, observation: Observation, write: Write = PLAIN) -> Observation:
        with self._write(write) as db:
            exp = self._experiment_and_incumbent(db, observation.experiment_id)
            result = self._insert_observation(db, exp, observation)
            self._record(db, write, result)
        return result

    def create_observations(
        self, observations: list[Observation], write: Write = PLAIN
    ) -> list[Observation]:
        with self._write(write) as db:
            results = []
            for observation in observations:
                exp = self._experiment_and_incumbent(db, observation.experiment_id)
                results.append(self._insert_observation(db, exp, observation))
            self._record(db, write, results)
        return results

    def _experiment_and_incumbent(self, db: sqlite3.Connection, experiment_id: str) -> sqlite3.Row:
        """The experiment's row with its best observation's columns (``best_*``, NULL
        without one) in one statement: what every observation write ranks against."""
        row = db.execute(
            "SELECT e.*, o.id AS best_id, o.experiment_id AS best_experiment_id,"
            " o.suggestion_id AS best_suggestion_id, o.assignments AS best_assignments,"
            " o.metric_values AS best_metric_values, o.failed AS best_failed,"
            " o.metadata AS best_metadata, o.create_time AS best_create_time"
            " FROM experiments e LEFT JOIN observations o ON o.id = e.best_observation_id"
            " WHERE e.id = ?",
            (_int_id(experiment_id, "experiment"),),
        ).fetchone()
        if row is None:
            raise NotFound(f"experiment {experiment_id!r} not found")
        return row

    def _insert_observation(
        self, db: sqlite3.Connection, exp: sqlite3.Row, observation: Observation
    ) -> Observation:
        """Stores one observation, closes its suggestion, keeps the progress columns.
        ``exp`` is from ``_experiment_and_incumbent``, read in this write's savepoint:
        its incumbent is current."""
        suggestion_id = None
        if observation.suggestion_id is not None:
            key = _int_id(observation.suggestion_id, "suggestion")
            closed = db.execute(
                "UPDATE suggestions SET state = 'closed'"
                " WHERE id = ? AND experiment_id = ? AND state = ?",
                (key, exp["id"], SuggestionState.OPEN.value),
            )
            if closed.rowcount == 0:
                found = db.execute(
                    "SELECT 1 FROM suggestions WHERE id = ? AND experiment_id = ?",
                    (key, exp["id"]),
                ).fetchone()
                if found is None:
                    raise NotFound(
                        f"suggestion {observation.suggestion_id!r} not found in experiment"
                        f" {observation.experiment_id!r}"
                    )
                raise FailedPrecondition(
                    f"suggestion {observation.suggestion_id!r} is closed: it already has"
                    " an observation"
                )
            suggestion_id = key
        best_id = exp["best_observation_id"]
        incumbent = None if best_id is None else self._observation(exp, "best_")
        now = _now()
        assignments = codec.dumps(observation.assignments)
        decoded = json.loads(assignments)  # the point as it reads back
        values = codec.values_to_json(observation.values)
        metadata = codec.dumps(observation.metadata)
        grid = self._grid_of(exp)
        cur = db.execute(
            "INSERT INTO observations (experiment_id, suggestion_id, assignments,"
            " metric_values, failed, metadata, create_time, grid_index)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                exp["id"],
                suggestion_id,
                assignments,
                values,
                int(observation.failed),
                metadata,
                now,
                None if grid is None else grid.index(decoded),
            ),
        )
        assert cur.lastrowid is not None
        # as a read would return it, without reading it back
        result = Observation(
            id=str(cur.lastrowid),
            experiment_id=str(exp["id"]),
            suggestion_id=None if suggestion_id is None else str(suggestion_id),
            assignments=decoded,
            values=codec.values_from_json(values),
            failed=bool(observation.failed),
            metadata=json.loads(metadata),
            create_time=_time(now),
        )
        definition = self._metrics_of(exp)
        if len(definition.optimized_metrics) == 1 and best.improves(definition, incumbent, result):
            best_id = cur.lastrowid
        db.execute(
            "UPDATE experiments SET observation_count = observation_count + 1,"
            " failed_count = failed_count + ?, best_observation_id = ? WHERE id = ?",
            (int(observation.failed), best_id, exp["id"]),
        )
        return result

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

    def update_observation(self, observation: Observation, write: Write = PLAIN) -> Observation:
        with self._write(write) as db:
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
            db.execute(
                "UPDATE experiments SET failed_count = failed_count + ? WHERE id = ?",
                (int(observation.failed) - row["failed"], row["experiment_id"]),
            )
            self._refresh_best(db, row["experiment_id"])
            row = db.execute("SELECT * FROM observations WHERE id = ?", (row["id"],)).fetchone()
            result = self._observation(row)
            self._record(db, write, result)
        return result

    def delete_observation(
        self, experiment_id: str, observation_id: str, write: Write = PLAIN
    ) -> None:
        with self._write(write) as db:
            row = self._observation_row(db, experiment_id, observation_id)
            db.execute("DELETE FROM observations WHERE id = ?", (row["id"],))
            key = row["experiment_id"]
            db.execute(
                "UPDATE experiments SET observation_count = observation_count - 1,"
                " failed_count = failed_count - ? WHERE id = ?",
                (row["failed"], key),
            )
            best_id = db.execute(
                "SELECT best_observation_id FROM experiments WHERE id = ?", (key,)
            ).fetchone()[0]
            if best_id == row["id"]:
                self._refresh_best(db, key)
            self._record(db, write, None)

    # -------------------------------------------------------------- queued suggestions

    @staticmethod
    def _queued(row: sqlite3.Row) -> QueuedSuggestion:
        return QueuedSuggestion(
            id=str(row["id"]),
            experiment_id=str(row["experiment_id"]),
            assignments=json.loads(row["assignments"]),
            create_time=_time(row["create_time"]),
        )

    def create_queued_suggestion(
        self, experiment_id: str, assignments: Assignments, write: Write = PLAIN
    ) -> QueuedSuggestion:
        with self._write(write) as db:
            exp = self._experiment_row(db, experiment_id)
            cur = db.execute(
                "INSERT INTO queued_suggestions (experiment_id, assignments, create_time)"
                " VALUES (?, ?, ?)",
                (exp["id"], codec.dumps(assignments), _now()),
            )
            row = db.execute(
                "SELECT * FROM queued_suggestions WHERE id = ?", (cur.lastrowid,)
            ).fetchone()
            result = self._queued(row)
            self._record(db, write, result)
        return result

    def list_queued_suggestions(self, experiment_id: str) -> list[QueuedSuggestion]:
        key = _int_id(experiment_id, "experiment")
        rows = (
            self._db()
            .execute("SELECT * FROM queued_suggestions WHERE experiment_id = ? ORDER BY id", (key,))
            .fetchall()
        )
        if not rows:  # none, or no such experiment
            self.count_suggestions(experiment_id)
        return [self._queued(r) for r in rows]

    @staticmethod
    def _delete_queued(
        db: sqlite3.Connection, experiment_key: int, experiment_id: str, queued_id: str
    ) -> None:
        cur = db.execute(
            "DELETE FROM queued_suggestions WHERE id = ? AND experiment_id = ?",
            (_int_id(queued_id, "queued suggestion"), experiment_key),
        )
        if cur.rowcount == 0:
            raise NotFound(
                f"queued suggestion {queued_id!r} not found in experiment {experiment_id!r}"
            )

    def delete_queued_suggestion(
        self, experiment_id: str, queued_id: str, write: Write = PLAIN
    ) -> None:
        with self._write(write) as db:
            exp = self._experiment_row(db, experiment_id)
            self._delete_queued(db, exp["id"], experiment_id, queued_id)
            self._record(db, write, None)

    # -------------------------------------------------------------- projects

    @staticmethod
    def _project(row: sqlite3.Row) -> Project:
        return Project(
            id=row["id"],
            name=row["name"],
            metadata=json.loads(row["metadata"]),
            create_time=_time(row["create_time"]),
            update_time=_time(row["update_time"]),
        )

    @staticmethod
    def _register_project(db: sqlite3.Connection, project: str, now: float) -> None:
        if project:
            db.execute(
                "INSERT OR IGNORE INTO projects (id, name, metadata, create_time, update_time)"
                " VALUES (?, ?, '{}', ?, ?)",
                (project, project, now, now),
            )

    def create_project(self, project: Project, write: Write = PLAIN) -> Project:
        now = _now()
        with self._write(write) as db:
            try:
                db.execute(
                    "INSERT INTO projects (id, name, metadata, create_time, update_time)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (project.id, project.name, codec.dumps(project.metadata), now, now),
                )
            except sqlite3.IntegrityError:
                raise AlreadyExists(f"project {project.id!r} already exists") from None
            row = db.execute("SELECT * FROM projects WHERE id = ?", (project.id,)).fetchone()
            result = self._project(row)
            self._record(db, write, result)
        return result

    def get_project(self, project_id: str) -> Project:
        with self._read() as db:
            row = db.execute("SELECT * FROM projects WHERE id = ?", (project_id,)).fetchone()
        if row is None:
            raise NotFound(f"project {project_id[:100]!r} not found")
        return self._project(row)

    def list_projects(self, projects: frozenset[str] | None = None) -> list[Project]:
        with self._read() as db:
            rows = db.execute("SELECT * FROM projects ORDER BY id").fetchall()
        return [self._project(r) for r in rows if projects is None or r["id"] in projects]

    def update_project(self, project: Project, write: Write = PLAIN) -> Project:
        with self._write(write) as db:
            cur = db.execute(
                "UPDATE projects SET name = ?, metadata = ?, update_time = ? WHERE id = ?",
                (project.name, codec.dumps(project.metadata), _now(), project.id),
            )
            if cur.rowcount == 0:
                raise NotFound(f"project {project.id[:100]!r} not found")
            row = db.execute("SELECT * FROM projects WHERE id = ?", (project.id,)).fetchone()
            result = self._project(row)
            self._record(db, write, result)
        return result

    # -------------------------------------------------------------- training runs

    @staticmethod
    def _run(row: sqlite3.Row) -> TrainingRun:
        def ref(key: str) -> str | None:
            return None if row[key] is None else str(row[key])

        run = codec.run_from_json(row["document"])
        run.id = str(row["id"])
        run.project = row["project"]
        run.experiment_id = ref("experiment_id")
        run.suggestion_id = ref("suggestion_id")
        run.observation_id = ref("observation_id")
        run.state = RunState(row["state"])
        run.deleted = bool(row["deleted"])
        run.create_time = _time(row["create_time"])
        run.update_time = _time(row["update_time"])
        run.complete_time = None if row["complete_time"] is None else _time(row["complete_time"])
        return run

    def _run_row(self, db: sqlite3.Connection, run_id: str) -> sqlite3.Row:
        row = db.execute(
            "SELECT * FROM training_runs WHERE id = ?", (_int_id(run_id, "training run"),)
        ).fetchone()
        if row is None:
            raise NotFound(f"training run {run_id!r} not found")
        return row

    def create_training_run(
        self,
        run: TrainingRun,
        suggestion: Assignments | None = None,
        lease_seconds: int = 0,
        write: Write = PLAIN,
        queued: Sequence[str] = (),
    ) -> TrainingRun:
        now = _now()
        with self._write(write) as db:
            experiment_key = suggestion_key = None
            if run.experiment_id is not None:
                exp = self._experiment_row(db, run.experiment_id)
                experiment_key = exp["id"]
                if suggestion is not None:
                    (made,) = self._insert_suggestions(
                        db, exp, [suggestion], {}, lease_seconds, now
                    )
                    suggestion_key = int(made.id)
                for queued_id in queued:
                    self._delete_queued(db, exp["id"], run.experiment_id, queued_id)
            self._register_project(db, run.project, now)
            cur = db.execute(
                "INSERT INTO training_runs (project, experiment_id, suggestion_id, state,"
                " deleted, document, create_time, update_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run.project,
                    experiment_key,
                    suggestion_key,
                    run.state.value,
                    int(run.deleted),
                    codec.run_to_json(run),
                    now,
                    now,
                ),
            )
            row = db.execute(
                "SELECT * FROM training_runs WHERE id = ?", (cur.lastrowid,)
            ).fetchone()
            result = self._run(row)
            self._record(db, write, result)
        return result

    def get_training_run(self, run_id: str) -> TrainingRun:
        with self._read() as db:
            return self._run(self._run_row(db, run_id))

    def list_training_runs(
        self,
        project: str | None,
        experiment_id: str | None,
        page_size: int,
        page_token: str,
        deleted: bool | None = False,
    ) -> Page[TrainingRun]:
        after = _decode_token(page_token) or 0
        sql, args = "SELECT * FROM training_runs WHERE id > ?", list[object]([after])
        if project is not None:
            sql, args = sql + " AND project = ?", [*args, project]
        if experiment_id is not None:
            sql, args = (
                sql + " AND experiment_id = ?",
                [*args, _int_id(experiment_id, "experiment")],
            )
        if deleted is not None:
            sql, args = sql + " AND deleted = ?", [*args, int(deleted)]
        with self._read() as db:
            rows = db.execute(sql + " ORDER BY id LIMIT ?", (*args, page_size + 1)).fetchall()
        items = [self._run(r) for r in rows[:page_size]]
        token = _encode_token(int(items[-1].id)) if len(rows) > page_size else ""
        return Page(items, token)

    def update_training_run(
        self, run_id: str, change: Callable[[TrainingRun], RunChange], write: Write = PLAIN
    ) -> TrainingRun:
        now = _now()
        with self._write(write) as db:
            row = self._run_row(db, run_id)
            run, observation = change(self._run(row))
            observation_key = row["observation_id"]
            if observation is not None:
                exp = self._experiment_and_incumbent(db, observation.experiment_id)
                observation_key = int(self._insert_observation(db, exp, observation).id)
            complete = row["complete_time"]
            if run.finished and complete is None:
                complete = now
            db.execute(
                "UPDATE training_runs SET state = ?, deleted = ?, document = ?, update_time = ?,"
                " complete_time = ?, observation_id = ? WHERE id = ?",
                (
                    run.state.value,
                    int(run.deleted),
                    codec.run_to_json(run),
                    now,
                    complete,
                    observation_key,
                    row["id"],
                ),
            )
            row = db.execute("SELECT * FROM training_runs WHERE id = ?", (row["id"],)).fetchone()
            result = self._run(row)
            self._record(db, write, result)
        return result

    # -------------------------------------------------------------- tokens

    @staticmethod
    def _token(row: sqlite3.Row) -> Token:
        revoked = row["revoke_time"]
        return Token(
            id=str(row["id"]),
            name=row["name"],
            role=Role(row["role"]),
            projects=json.loads(row["projects"]),
            create_time=_time(row["create_time"]),
            revoke_time=None if revoked is None else _time(revoked),
        )

    def create_token(self, token: Token, secret_hash: str) -> Token:
        with self._write() as db:
            cur = db.execute(
                "INSERT INTO tokens (name, role, projects, secret_hash, create_time)"
                " VALUES (?, ?, ?, ?, ?)",
                (token.name, token.role.value, codec.dumps(token.projects), secret_hash, _now()),
            )
            row = db.execute("SELECT * FROM tokens WHERE id = ?", (cur.lastrowid,)).fetchone()
        return self._token(row)

    def list_tokens(self) -> list[Token]:
        with self._read() as db:
            return [self._token(r) for r in db.execute("SELECT * FROM tokens ORDER BY id")]

    def revoke_token(self, token_id: str) -> Token:
        with self._write() as db:
            key = _int_id(token_id, "token")
            db.execute(
                "UPDATE tokens SET revoke_time = ? WHERE id = ? AND revoke_time IS NULL",
                (_now(), key),
            )
            row = db.execute("SELECT * FROM tokens WHERE id = ?", (key,)).fetchone()
            if row is None:
                raise NotFound(f"token {token_id!r} not found")
        return self._token(row)

    def token_by_hash(self, secret_hash: str) -> Token | None:
        with self._read() as db:
            row = db.execute(
                "SELECT * FROM tokens WHERE secret_hash = ? AND revoke_time IS NULL",
                (secret_hash,),
            ).fetchone()
        return None if row is None else self._token(row)
