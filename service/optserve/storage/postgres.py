"""Shared storage on PostgreSQL, so that several identical replicas serve one set of
experiments (psycopg 3 and a connection pool).

Every write is one transaction committed before the method returns. Everything a replica
needs to answer a call is in the database: counters, sequence numbers and the incumbent
are columns kept in the transaction of each write, suggestion states are computed from
the database's clock at read time, and suggestion creation is serialized per experiment
by an advisory lock that every replica takes (see ``experiment_lock``).

Lock order, the same in every write, so that writes do not deadlock one another: the
request record, a training run's row, the experiment's row (``FOR NO KEY UPDATE``), then
its suggestions, observations and queue. A deadlock PostgreSQL detects all the same (an
experiment deleted while one of its runs ends) rolls one side back, which runs again.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import re
import select
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import dict_row, tuple_row
from psycopg_pool import ConnectionPool, PoolTimeout

from ..domain import best, ids
from ..domain.errors import AlreadyExists, Cancelled, FailedPrecondition, NotFound, Unavailable
from ..domain.grid import Grid, TakenPoints, grid_of, union
from ..domain.model import (
    Assignments,
    Experiment,
    ExperimentState,
    Objective,
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
from .migrations.postgres import MIGRATIONS, SCHEMA_VERSION
from .sqlite import SchemaTooNew, _decode_token, _encode_token, _int_id

log = logging.getLogger(__name__)
R = TypeVar("R")
Row = dict[str, Any]
Conn = psycopg.Connection[Row]

# Request records are kept this long: retries come within minutes, not weeks.
REQUEST_RETENTION_SECONDS = 7 * 24 * 3600
# The advisory lock key of migrations (two int4 keys: a space apart from the experiments').
MIGRATION_LOCK = (0x6F707473, 1)
# A replica that holds an experiment's lock but stops talking to the database (hung,
# partitioned) loses its session, and with it the lock, after this long.
LOCK_IDLE_TIMEOUT_MS = 10 * 60 * 1000
# While the database is unreachable a call waits this long for a connection, not the
# pool's whole timeout, before it answers UNAVAILABLE.
UNREACHABLE_WAIT_SECONDS = 1.0
# Parsed experiment definitions a replica keeps (see PostgresStorage._definition).
DEFINITION_CACHE_SIZE = 4096
# idle_session_timeout (see LOCK_IDLE_TIMEOUT_MS) came with PostgreSQL 14.
MIN_SERVER_VERSION = 140000
# Statements on the database's clock: every replica reads one time.
NOW = "statement_timestamp()"
_LIVE = f"state = 'open' AND expire_time > {NOW}"
_EXPIRED = f"state = 'open' AND expire_time <= {NOW}"
SUGGESTION_COLUMNS = (
    "id, experiment_id, sequence, assignments, metadata, create_time, lease_seconds,"
    f" expire_time, CASE WHEN {_EXPIRED} THEN 'expired' ELSE state END AS state"
)


OBSERVATION_FIELDS = (
    "id",
    "experiment_id",
    "suggestion_id",
    "assignments",
    "metric_values",
    "failed",
    "metadata",
    "create_time",
)


def _observation_columns(alias: str) -> str:
    """An observation's columns from table ``alias``, named ``<alias>_<column>``."""
    return ", ".join(f"{alias}.{c} AS {alias}_{c}" for c in OBSERVATION_FIELDS)


class SchemaOutdated(Exception):
    """The database lacks migrations this optserve needs; ``optserve migrate`` applies them."""


class DatabaseUnavailable(Exception):
    """The database cannot be reached or refused the connection."""


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    url = re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)
    return re.sub(r"(password=)[^&\s]*", r"\1***", url)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# admin_shutdown, crash_shutdown, cannot_connect_now: the server ended the session.
_SESSION_ENDED = ("57P01", "57P02", "57P03")


def _lost(error: psycopg.OperationalError) -> bool:
    """Whether the error says the connection or the server is gone (a broken socket, a
    shutdown, a refused connection), not a conflict between transactions (a deadlock)."""
    state = error.sqlstate
    return state is None or state.startswith("08") or state in _SESSION_ENDED


def _standing(definition: Experiment, observation: Observation) -> float | None:
    """The score by which ``observation`` may become the single best observation (its
    optimized metric's value, negated when minimized: larger is better), None when it
    cannot (several optimized metrics, a failure, a constraint unmet). Comparing
    scores makes the choice of ``best.improves``."""
    if len(definition.optimized_metrics) != 1 or not best.improves(definition, None, observation):
        return None
    metric = definition.optimized_metrics[0]
    sign = 1.0 if metric.objective is Objective.MAXIMIZE else -1.0
    return sign * float(observation.value_of(metric.name) or 0)


def _closed_by_server(conn: Conn) -> bool:
    """Whether an idle connection has something to read, which can only be the server's
    notice that it ended the session, or the end of the socket."""
    poll = select.poll()
    poll.register(conn.fileno(), select.POLLIN)
    return bool(poll.poll(0))


def _configure(conn: Conn) -> None:
    # times come back as UTC datetimes, as SQLite's do
    conn.execute("SET TIME ZONE 'UTC'")


class PostgresStorage(Storage):
    """A pool of autocommit connections; each method is one transaction (or one statement).

    Args:
        url: ``postgresql://user@host:port/dbname``; the password is best left to
            ``PGPASSWORD`` or ``~/.pgpass``, which libpq reads.
        migrate: apply pending migrations first; without it a database that lacks any
            raises SchemaOutdated.
        pool_size: most connections open at once (one per concurrent call, plus one
            per suggestion being made: see ``experiment_lock``).
    """

    def __init__(
        self,
        url: str,
        *,
        migrate: bool = False,
        pool_size: int = 20,
        connect_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self._name = redact(url)
        try:
            # One direct connection first: its error says why (the pool would only time out).
            with psycopg.connect(url, connect_timeout=max(1, int(connect_timeout))) as conn:
                version = conn.info.server_version
        except psycopg.Error as error:
            raise DatabaseUnavailable(f"{self._name}: {_first_line(error)}") from None
        if version < MIN_SERVER_VERSION:
            raise DatabaseUnavailable(
                f"{self._name}: PostgreSQL {version // 10000} is too old; optserve needs"
                f" {MIN_SERVER_VERSION // 10000} or newer (idle_session_timeout)"
            )
        self._pool: ConnectionPool[Conn] = ConnectionPool(
            url,
            min_size=min(4, pool_size),
            max_size=pool_size,
            kwargs={"autocommit": True, "row_factory": dict_row},
            configure=_configure,
            timeout=connect_timeout,
            name="optserve",
            open=False,
        )
        self._pool.open(wait=True, timeout=connect_timeout)
        self._local = threading.local()
        # Set while the database is unreachable (see _unreachable): calls then fail fast.
        self._down = False
        # Parsed definitions by experiment key, with the text they were parsed from: a
        # write sends that text along and the database checks it is still current.
        self._definitions: dict[int, tuple[str, Experiment]] = {}
        # Grids by experiment key (None: not a GRID experiment); type and parameters
        # never change, so an entry stays true whatever the definition's other fields.
        self._grids: dict[int, Grid | None] = {}
        self._process_locks = KeyedLocks()
        self._records = itertools.count(1)
        try:
            if migrate:
                self.migrate()
            else:
                self.check_schema()
        except BaseException:
            self._pool.close()
            raise

    # -------------------------------------------------------------- schema

    def schema_version(self) -> int:
        with self._conn() as conn:
            exists = conn.execute("SELECT to_regclass('schema_migrations') AS t").fetchone()
            if exists is None or exists["t"] is None:
                return 0
            row = conn.execute("SELECT max(version) AS v FROM schema_migrations").fetchone()
        return int(row["v"] or 0) if row else 0

    def check_schema(self) -> None:
        version = self.schema_version()
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"{self._name}: schema version {version} is newer than this optserve's"
                f" ({SCHEMA_VERSION}); upgrade optserve"
            )
        if version < SCHEMA_VERSION:
            raise SchemaOutdated(
                f"{self._name}: schema version {version}, this optserve needs"
                f" {SCHEMA_VERSION}; run `optserve migrate --db URL` (or serve with --migrate)"
            )

    def migrate(self) -> list[int]:
        """Applies pending migrations in one transaction; returns the versions applied.

        Replicas started together with ``--migrate`` take turns on an advisory lock:
        the first applies, the others find nothing left to do.
        """
        with self._conn() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", MIGRATION_LOCK)
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY, description TEXT NOT NULL,"
                " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            row = conn.execute("SELECT max(version) AS v FROM schema_migrations").fetchone()
            current = int(row["v"] or 0) if row else 0
            if current > SCHEMA_VERSION:
                raise SchemaTooNew(
                    f"{self._name}: schema version {current} is newer than this optserve's"
                    f" ({SCHEMA_VERSION}); upgrade optserve"
                )
            applied = []
            for migration in MIGRATIONS:
                if migration.version <= current:
                    continue
                conn.execute(migration.sql)
                conn.execute(
                    "INSERT INTO schema_migrations (version, description) VALUES (%s, %s)",
                    (migration.version, migration.description),
                )
                applied.append(migration.version)
        return applied

    # -------------------------------------------------------------- plumbing

    @contextmanager
    def _conn(self, wait: float | None = None) -> Iterator[Conn]:
        """The connection pinned to this thread by ``experiment_lock``, else a pooled one
        (waiting ``wait`` seconds at most, by default the pool's timeout)."""
        pinned: Conn | None = getattr(self._local, "pinned", None)
        if pinned is not None:
            yield pinned
            return
        with self._pool.connection(wait) as conn:
            yield conn

    def _wait(self) -> float | None:
        """How long to wait for a pooled connection: the pool's timeout, or less while
        the database is unreachable."""
        return UNREACHABLE_WAIT_SECONDS if self._down else None

    def _unreachable(self, error: psycopg.OperationalError, lost: bool = False) -> Unavailable:
        """The error that ends a call after ``error`` (``lost``: an earlier attempt lost
        its connection). An outage is logged once; until a call succeeds again, calls
        wait UNREACHABLE_WAIT_SECONDS for a connection, which the pool makes on its own
        once the database is back."""
        timeout = isinstance(error, PoolTimeout)
        if timeout and not (lost or self._down):
            return Unavailable("no database connection free in time; retry later")
        if timeout or lost or _lost(error):
            if not self._down:
                self._down = True
                log.warning("database %s unreachable: %s", self._name, _first_line(error))
            return Unavailable("the database is unavailable; retry later")
        # a conflict that persisted over the retries (a deadlock each time)
        return Unavailable(f"the database could not complete the call ({_first_line(error)})")

    def _reachable(self) -> None:
        if self._down:
            self._down = False
            log.warning("database %s reachable again", self._name)

    def _transact(
        self,
        body: Callable[[Conn], R],
        write: Write | None = None,
    ) -> R:
        """Runs ``body`` in one transaction; with ``write``, records its request first
        (a concurrent duplicate waits on the record's key, then raises DuplicateRequest)
        and checks ``alive()`` just before COMMIT.

        A transaction that fails with an operational error before its COMMIT was sent
        (a connection the server closed, a deadlock) rolled back, and is run again on
        another connection. (psycopg's pipeline mode would save the BEGIN round trip
        but costs more CPU than it saves on a loopback or LAN link, measured here.)
        """
        key = write.request if write is not None else None
        pinned = getattr(self._local, "pinned", None) is not None
        if pinned:
            self._local.held = None  # the write may change what was read under the lock
        wait, lost = self._wait(), False
        for attempt in itertools.count(1):
            committing = False
            try:
                with self._conn(wait) as conn, conn.transaction():
                    if key is not None:
                        self._claim(conn, key)
                    result = body(conn)
                    if key is not None:
                        conn.execute(
                            "UPDATE requests SET result = %s"
                            " WHERE principal = %s AND request_id = %s",
                            (codec.result_to_json(result), key.principal, key.request_id),
                        )
                    if write is not None and not write.alive():
                        raise Cancelled(
                            "the call ended before its write committed; nothing was written"
                        )
                    committing = True
                self._reachable()
                return result
            except pg_errors.UniqueViolation as error:
                # the record's key, inserted first: a concurrent call with the same id won
                if key is not None and error.diag.constraint_name == "requests_pkey":
                    raise DuplicateRequest(key.request_id) from error
                raise
            except psycopg.OperationalError as error:
                if committing:
                    self._unreachable(error, lost)
                    raise Unavailable(
                        "the database connection failed during COMMIT: the write may have"
                        " committed; retry with the same request_id"
                    ) from error
                if pinned or attempt >= 3 or isinstance(error, PoolTimeout) or self._down:
                    raise self._unreachable(error, lost) from error
                log.warning("a transaction failed before COMMIT; running it again: %s", error)
                wait, lost = self._after_failure(error, wait, lost)
        raise AssertionError("unreachable")

    def _after_failure(
        self, error: psycopg.OperationalError, wait: float | None, lost: bool
    ) -> tuple[float | None, bool]:
        """Before another attempt: drops the pool's broken connections; after a lost
        connection the others may be gone too (a restart, a failover), so the next
        attempt waits briefly for a new one."""
        self._pool.check()
        if _lost(error):
            return UNREACHABLE_WAIT_SECONDS, True
        return wait, lost

    def _write(self, write: Write, body: Callable[[Conn], R]) -> R:
        return self._transact(body, write)

    def _single(self, write: Write, body: Callable[[Conn], R]) -> R:
        """Runs a write that is one statement and records no request outside any
        transaction: the statement commits by itself, without a BEGIN and a COMMIT (two
        statements fewer). ``body`` may read after its statement, not write.

        A pooled connection the server has closed meanwhile (a restart, a failover) is
        seen before the statement is sent, and another one taken. A statement that
        failed on a conflict (a deadlock) wrote nothing and runs again; one whose
        connection broke while it ran may have committed, which the error says.
        """
        assert write.request is None
        if not write.alive():
            raise Cancelled("the call ended before its write committed; nothing was written")
        pinned = getattr(self._local, "pinned", None) is not None
        if pinned:
            self._local.held = None  # the write may change what was read under the lock
        wait, lost = self._wait(), False
        for attempt in itertools.count(1):
            try:
                with self._conn(wait) as conn:
                    closed = not pinned and _closed_by_server(conn)
                    if closed:
                        conn.close()  # the pool replaces it
                    else:
                        result = body(conn)
            except psycopg.OperationalError as error:
                # The server's answer that it ended the session (instead of the
                # statement's result) says that nothing was written; a connection that
                # broke without a word leaves it unknown.
                ended = error.sqlstate in _SESSION_ENDED
                if _lost(error) and not ended and not isinstance(error, PoolTimeout):
                    self._unreachable(error)
                    raise Unavailable(
                        "the database connection failed during a write: it may have"
                        " committed; retry with a request_id to know"
                    ) from error
                if pinned or attempt >= 3 or isinstance(error, PoolTimeout) or self._down:
                    raise self._unreachable(error, lost) from error
                log.warning("a write failed before it committed; running it again: %s", error)
                wait, lost = self._after_failure(error, wait, lost)
                continue
            if not closed:
                self._reachable()
                return result
            if attempt >= 3 or self._down:
                raise self._unreachable(
                    psycopg.OperationalError("the server closed the connection"), True
                )
            self._pool.check()  # the others may be gone too
            wait, lost = UNREACHABLE_WAIT_SECONDS, True
        raise AssertionError("unreachable")

    def _read(self, body: Callable[[Conn], R]) -> R:
        """Runs a read, each statement on its own (no BEGIN and COMMIT: two round trips
        fewer; a read that must be one snapshot is one statement). A read is retried on
        another connection when the server closed the one it had."""
        wait, lost = self._wait(), False
        for attempt in itertools.count(1):
            try:
                with self._conn(wait) as conn:
                    result = body(conn)
                self._reachable()
                return result
            except psycopg.OperationalError as error:
                pinned = getattr(self._local, "pinned", None) is not None
                if pinned or attempt >= 3 or isinstance(error, PoolTimeout) or self._down:
                    raise self._unreachable(error, lost) from error
                log.warning("a pooled connection failed, retrying on another: %s", error)
                wait, lost = self._after_failure(error, wait, lost)
        raise AssertionError("unreachable")

    def _claim(self, conn: Conn, key: RequestKey) -> None:
        """Inserts the request record (its result is filled in at the end); a duplicate
        raises UniqueViolation on requests_pkey, which ``_transact`` turns into
        DuplicateRequest."""
        conn.execute(
            "INSERT INTO requests (principal, request_id, method, fingerprint, result,"
            f" create_time) VALUES (%s, %s, %s, %s, '', {NOW})",
            (key.principal, key.request_id, key.method, key.fingerprint),
        )
        if next(self._records) % 1000 == 0:
            conn.execute(
                f"DELETE FROM requests WHERE create_time < {NOW} - make_interval(secs => %s)",
                (REQUEST_RETENTION_SECONDS,),
            )

    def find_request(self, principal: str, request_id: str) -> RecordedRequest | None:
        # A record being written has result '' and is not visible to others before COMMIT.
        row = self._read(
            lambda conn: conn.execute(
                "SELECT * FROM requests WHERE principal = %s AND request_id = %s",
                (principal, request_id),
            ).fetchone()
        )
        if row is None:
            return None
        key = RequestKey(principal, request_id, row["method"], row["fingerprint"])
        return RecordedRequest(key, codec.result_from_json(row["result"]))

    def close(self) -> None:
        self._pool.close()

    def probe(self) -> str | None:
        """None when the database answers and takes writes, else the cause (for health)."""
        try:
            with psycopg.connect(self.url, connect_timeout=5, autocommit=True) as conn:
                row = conn.execute(
                    "SELECT pg_is_in_recovery(), current_setting('transaction_read_only')"
                ).fetchone()
        except psycopg.Error as error:
            return f"database {self._name}: {_first_line(error)}"
        if row is None or row[0] or row[1] == "on":
            return f"database {self._name}: read-only (a standby, or transactions read-only)"
        return None

    # -------------------------------------------------------------- experiment lock

    @contextmanager
    def experiment_lock(self, experiment_id: str) -> Iterator[None]:
        """Serializes suggestion creation of one experiment across every replica.

        The lock is a session-level advisory lock (key: the experiment id) taken outside
        any transaction on a connection of the pool, which this thread then uses for all
        its storage calls until the lock is released: the reads, the optimizer's work and
        the final write see a stable sequence number and the other replicas' open
        suggestions, while no transaction stays open during the optimizer's work (which
        may take seconds) and no row lock blocks observation writes meanwhile.

        Why not a transaction-scoped lock: it would keep a transaction open for the whole
        model fit. Why not optimistic inserts with retries: under contention every loser
        would redo the fit. Why the write goes through the locking connection: if its
        session ends (the database restarted, the connection broke) the lock is gone,
        and then the write fails instead of committing unprotected.

        A replica killed while it holds the lock ends its session, which releases the
        lock; one that hangs loses it after LOCK_IDLE_TIMEOUT_MS of silence. Threads
        of one process queue on a process-local lock first, so that waiting costs no
        connection.

        The suggestion count and the queue of an experiment change only under its lock
        (every caller of create_suggestions, create_training_run and the queue's writes
        holds it; random suggestions without a queue take their numbers inside their
        write and need no lock: no caller reads the count of a random experiment under
        the lock), so the holder reads them once, with the experiment, and
        count_suggestions and list_queued_suggestions answer from that read until the
        holder writes (see ``_held``).
        """
        key = ids.parse_id(experiment_id)
        if key is None or getattr(self._local, "pinned", None) is not None:
            yield  # a malformed id names nothing: the reads under the lock raise NotFound
            return
        with self._process_locks.hold(experiment_id), self._locked(key) as conn:
            self._local.pinned = conn
            self._local.locked_key, self._local.held = key, None
            try:
                yield
            finally:
                self._local.pinned = self._local.held = None
                try:
                    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                        conn.rollback()
                    conn.execute(
                        "SELECT pg_advisory_unlock(%s), set_config('idle_session_timeout',"
                        " '0', false)",
                        (key,),
                    )
                except psycopg.Error:
                    # Never return a connection that may still hold the lock to the pool.
                    conn.close()

    @contextmanager
    def _locked(self, key: int) -> Iterator[Conn]:
        """A pooled connection whose session holds the advisory lock ``key``."""
        wait, lost = self._wait(), False
        for attempt in itertools.count(1):
            try:
                with self._pool.connection(wait) as conn:
                    try:
                        conn.execute(
                            "SELECT set_config('idle_session_timeout', %s, false),"
                            " pg_advisory_lock(%s)",
                            (str(LOCK_IDLE_TIMEOUT_MS), key),
                        )
                    except psycopg.OperationalError as error:
                        if attempt >= 3 or self._down:
                            raise self._unreachable(error, lost) from error
                        wait, lost = self._after_failure(error, wait, lost)
                        continue
                    self._reachable()
                    yield conn
                    return
            except PoolTimeout as error:
                raise self._unreachable(error, lost) from error

    # -------------------------------------------------------------- experiments

    @staticmethod
    def _experiment_key(experiment_id: str) -> int:
        return _int_id(experiment_id, "experiment")

    def _lock_experiment(self, conn: Conn, experiment_id: str) -> Row:
        """The experiment row, locked against other writers until COMMIT, with its best
        observation's columns (prefix ``b_``). Raises NotFound."""
        row = conn.execute(
            f"SELECT e.*, {_observation_columns('b')} FROM experiments e"
            " LEFT JOIN observations b ON b.id = e.best_observation_id"
            " WHERE e.id = %s FOR NO KEY UPDATE OF e",
            (self._experiment_key(experiment_id),),
        ).fetchone()
        if row is None:
            raise NotFound(f"experiment {experiment_id!r} not found")
        return row

    def _experiment_exists(self, conn: Conn, experiment_id: str) -> int:
        key = self._experiment_key(experiment_id)
        if conn.execute("SELECT 1 FROM experiments WHERE id = %s", (key,)).fetchone() is None:
            raise NotFound(f"experiment {experiment_id!r} not found")
        return key

    _EXPERIMENT_SELECT = f"""
        SELECT e.*,
            (SELECT count(*) FROM suggestions s WHERE s.experiment_id = e.id AND s.{_LIVE})
                AS open_count,
            {_observation_columns("b")}, {_observation_columns("f")}, {_observation_columns("l")},
            r.total_runs, r.finished_runs,
            EXISTS (SELECT 1 FROM queued_suggestions q WHERE q.experiment_id = e.id) AS has_queue
        FROM experiments e
        LEFT JOIN observations b ON b.id = e.best_observation_id
        LEFT JOIN LATERAL (SELECT * FROM observations o WHERE o.experiment_id = e.id
            ORDER BY o.id LIMIT 1) f ON true
        LEFT JOIN LATERAL (SELECT * FROM observations o WHERE o.experiment_id = e.id
            ORDER BY o.id DESC LIMIT 1) l ON true
        LEFT JOIN LATERAL (SELECT count(*) AS total_runs,
                count(*) FILTER (WHERE state <> 'active') AS finished_runs
            FROM training_runs t WHERE t.experiment_id = e.id AND NOT t.deleted) r ON true
    """

    def _experiment(self, row: Row) -> Experiment:
        def observation(prefix: str) -> Observation | None:
            return None if row[prefix + "id"] is None else self._observation(row, prefix)

        return codec.definition_from_json(
            row["definition"],
            id=str(row["id"]),
            name=row["name"],
            project=row["project"],
            state=ExperimentState(row["state"]),
            create_time=row["create_time"],
            update_time=row["update_time"],
            progress=Progress(
                observation_count=row["observation_count"],
                failed_observation_count=row["failed_count"],
                open_suggestion_count=row["open_count"],
                best_observation=observation("b_"),
                first_observation=observation("f_"),
                last_observation=observation("l_"),
                total_run_count=row["total_runs"],
                finished_run_count=row["finished_runs"],
            ),
        )

    def _load_experiment(self, conn: Conn, key: int, experiment_id: str) -> Experiment:
        row = conn.execute(self._EXPERIMENT_SELECT + " WHERE e.id = %s", (key,)).fetchone()
        if row is None:
            raise NotFound(f"experiment {experiment_id!r} not found")
        self._remember_held(conn, row)
        self._definition(row)  # the observation write that usually follows needs it
        return self._experiment(row)

    def _definition(self, row: Row) -> Experiment:
        """The definition of an experiment row (parsed once per text; never mutated)."""
        key, text = row["id"], row["definition"]
        cached = self._definitions.get(key)
        if cached is not None and cached[0] == text:
            return cached[1]
        definition = codec.definition_from_json(text, id=str(key), name="")
        if len(self._definitions) >= DEFINITION_CACHE_SIZE:
            self._definitions.clear()
        self._definitions[key] = (text, definition)
        return definition

    def _grid(self, key: int, definition: Experiment) -> Grid | None:
        """The grid of the experiment ``key`` whose definition is ``definition``."""
        try:
            return self._grids[key]
        except KeyError:
            pass
        if len(self._grids) >= DEFINITION_CACHE_SIZE:
            self._grids.clear()
        found = self._grids[key] = grid_of(definition)
        return found

    def _grid_of_key(self, conn: Conn, key: int) -> Grid | None:
        """The grid of the experiment ``key``, its definition read when this replica
        has none (None also when there is no such experiment)."""
        if key in self._grids:
            return self._grids[key]
        cached = self._definitions.get(key)
        if cached is not None:
            return self._grid(key, cached[1])
        row = conn.execute("SELECT id, definition FROM experiments WHERE id = %s", (key,))
        found = row.fetchone()
        return None if found is None else self._grid(key, self._definition(found))

    @staticmethod
    def _grid_indices(grid: Grid | None, encoded: list[str]) -> list[int | None]:
        """The grid index of each of the JSON assignments ``encoded``, as they read back."""
        if grid is None:
            return [None] * len(encoded)
        return [grid.index(json.loads(e)) for e in encoded]

    def _refresh_best(self, conn: Conn, exp_row: Row) -> None:
        """Recomputes the best observation from the whole history (after an update or
        delete that may dethrone it, or a change of metric thresholds)."""
        exp = dataclasses.replace(self._definition(exp_row), num_solutions=1)
        best_id = score = None
        if len(exp.optimized_metrics) == 1:
            observations = [
                self._observation(r)
                for r in conn.execute(
                    "SELECT * FROM observations WHERE experiment_id = %s ORDER BY id",
                    (exp_row["id"],),
                )
            ]
            top, _ = best.best_observations(exp, observations)
            if top:
                best_id, score = int(top[0].id), _standing(exp, top[0])
        conn.execute(
            "UPDATE experiments SET best_observation_id = %s, best_score = %s,"
            " best_score_of = %s WHERE id = %s",
            (best_id, score, best_id, exp_row["id"]),
        )

    def create_experiment(self, experiment: Experiment, write: Write = PLAIN) -> Experiment:
        def body(conn: Conn) -> Experiment:
            row = conn.execute(
                "INSERT INTO experiments (name, project, state, definition, create_time,"
                f" update_time) VALUES (%s, %s, %s, %s, {NOW}, {NOW}) RETURNING id",
                (
                    experiment.name,
                    experiment.project,
                    experiment.state.value,
                    codec.definition_to_json(experiment),
                ),
            ).fetchone()
            assert row is not None
            self._register_project(conn, experiment.project)
            return self._load_experiment(conn, row["id"], str(row["id"]))

        return self._write(write, body)

    def get_experiment(self, experiment_id: str) -> Experiment:
        key = self._experiment_key(experiment_id)
        return self._read(lambda conn: self._load_experiment(conn, key, experiment_id))

    def get_definition(self, experiment_id: str) -> Experiment:
        """The experiment without its progress: one row, none of the joins."""
        key = self._experiment_key(experiment_id)

        def read(conn: Conn) -> Row:
            row = conn.execute(
                "SELECT id, name, project, state, definition, create_time, update_time,"
                " suggestion_count, EXISTS (SELECT 1 FROM queued_suggestions q"
                " WHERE q.experiment_id = e.id) AS has_queue FROM experiments e WHERE id = %s",
                (key,),
            ).fetchone()
            if row is None:
                raise NotFound(f"experiment {experiment_id!r} not found")
            self._remember_held(conn, row)
            return row

        row = self._read(read)
        self._definition(row)  # the observation write that usually follows needs it
        return codec.definition_from_json(
            row["definition"],
            id=str(row["id"]),
            name=row["name"],
            project=row["project"],
            state=ExperimentState(row["state"]),
            create_time=row["create_time"],
            update_time=row["update_time"],
        )

    def list_experiments(
        self,
        project: str,
        state: ExperimentState | None,
        page_size: int,
        page_token: str,
        projects: frozenset[str] | None = None,
    ) -> Page[Experiment]:
        before = _decode_token(page_token)
        sql, args = self._EXPERIMENT_SELECT + " WHERE true", list[object]()
        if project:
            sql, args = sql + " AND e.project = %s", [*args, project]
        if projects is not None:
            sql, args = sql + " AND e.project = ANY(%s)", [*args, sorted(projects)]
        if state is not None:
            sql, args = sql + " AND e.state = %s", [*args, state.value]
        if before is not None:
            sql, args = sql + " AND e.id < %s", [*args, before]
        sql += " ORDER BY e.id DESC LIMIT %s"
        rows = self._read(lambda conn: conn.execute(sql, (*args, page_size + 1)).fetchall())
        items = [self._experiment(r) for r in rows[:page_size]]
        token = _encode_token(int(items[-1].id)) if len(rows) > page_size else ""
        return Page(items, token)

    def update_experiment(self, experiment: Experiment, write: Write = PLAIN) -> Experiment:
        def body(conn: Conn) -> Experiment:
            self._lock_experiment(conn, experiment.id)
            row = conn.execute(
                "UPDATE experiments SET name = %s, project = %s, state = %s, definition = %s,"
                f" update_time = {NOW} WHERE id = %s RETURNING *",
                (
                    experiment.name,
                    experiment.project,
                    experiment.state.value,
                    codec.definition_to_json(experiment),
                    int(experiment.id),
                ),
            ).fetchone()
            assert row is not None
            self._register_project(conn, experiment.project)
            # metric thresholds may have changed which observations qualify
            self._refresh_best(conn, row)
            return self._load_experiment(conn, row["id"], experiment.id)

        return self._write(write, body)

    def delete_experiment(self, experiment_id: str, write: Write = PLAIN) -> None:
        def body(conn: Conn) -> None:
            gone = conn.execute(
                "DELETE FROM experiments WHERE id = %s RETURNING id",
                (self._experiment_key(experiment_id),),
            ).fetchone()
            if gone is None:
                raise NotFound(f"experiment {experiment_id!r} not found")

        self._write(write, body)

    def experiment_project(self, experiment_id: str) -> str:
        key = self._experiment_key(experiment_id)
        row = self._read(
            lambda conn: conn.execute(
                "SELECT project FROM experiments WHERE id = %s", (key,)
            ).fetchone()
        )
        if row is None:
            raise NotFound(f"experiment {experiment_id!r} not found")
        return str(row["project"])

    def load_history(self, experiment_id: str) -> tuple[list[Observation], list[Suggestion]]:
        # One statement is one snapshot: the experiment (to tell "not found" from "empty"),
        # its observations and its open suggestions, as rows of one shape.
        rows = self._read(
            lambda conn: conn.execute(
                "SELECT 'e' AS kind, id, id AS experiment_id, NULL::bigint AS suggestion_id,"
                " NULL AS assignments, NULL AS metric_values, NULL::boolean AS failed,"
                " NULL AS metadata, NULL::timestamptz AS create_time, NULL::bigint AS sequence,"
                " NULL::integer AS lease_seconds, NULL::timestamptz AS expire_time,"
                " NULL AS state FROM experiments WHERE id = %s"
                " UNION ALL SELECT 'o', id, experiment_id, suggestion_id, assignments,"
                " metric_values, failed, metadata, create_time, NULL, NULL, NULL, NULL"
                " FROM observations WHERE experiment_id = %s"
                " UNION ALL SELECT 's', id, experiment_id, NULL, assignments, NULL, NULL,"
                " metadata, create_time, sequence, lease_seconds, expire_time, state"
                f" FROM suggestions WHERE experiment_id = %s AND {_LIVE}"
                " ORDER BY kind, id",
                (self._experiment_key(experiment_id),) * 3,
            ).fetchall()
        )
        if not rows or rows[0]["kind"] != "e":
            raise NotFound(f"experiment {experiment_id!r} not found")
        observations = [self._observation(r) for r in rows if r["kind"] == "o"]
        pending = [self._suggestion(r) for r in rows if r["kind"] == "s"]
        return observations, pending

    def taken_grid_points(self, experiment_id: str) -> TakenPoints:
        # One statement, one snapshot: the observations' distinct indices as one row
        # (their count, the largest, and the sorted array, made only when they are not
        # the product's first points), which exists only with the experiment; then the
        # live suggestions (few) and the observations without an index, whose
        # assignments are parsed.
        distinct = (
            "SELECT DISTINCT grid_index FROM observations"
            " WHERE experiment_id = %(e)s AND grid_index >= 0"
        )
        rows = self._read(
            lambda conn: (
                conn.cursor(row_factory=tuple_row)
                .execute(
                    "SELECT 0, o.c, o.m, CASE WHEN o.c = o.m + 1 THEN NULL ELSE"
                    f" (SELECT array_agg(grid_index ORDER BY grid_index) FROM ({distinct}) d) END,"
                    " NULL FROM experiments e, LATERAL (SELECT count(*) AS c, max(grid_index) AS m"
                    f" FROM ({distinct}) d) o WHERE e.id = %(e)s"
                    " UNION ALL SELECT 1, grid_index, NULL, NULL,"
                    " CASE WHEN grid_index IS NULL THEN assignments END FROM suggestions"
                    f" WHERE experiment_id = %(e)s AND {_LIVE}"
                    " UNION ALL SELECT 2, NULL, NULL, NULL, assignments FROM observations"
                    " WHERE experiment_id = %(e)s AND grid_index IS NULL",
                    {"e": self._experiment_key(experiment_id)},
                )
                .fetchall()
            )
        )
        if not any(r[0] == 0 for r in rows):
            raise NotFound(f"experiment {experiment_id!r} not found")
        indices: Sequence[int] = []
        more: list[int] = []
        unindexed = []
        for kind, index, largest, array, text in rows:
            if kind == 0:
                if index and index == largest + 1:  # distinct, within [0, largest]
                    indices = range(index)
                elif index:
                    indices = array
            elif index is not None:
                more.append(index)
            else:
                unindexed.append(json.loads(text))
        return TakenPoints(union(indices, more), unindexed)

    def _remember_held(self, conn: Conn, row: Row) -> None:
        """Under the experiment's lock, keeps its suggestion count and whether it has a
        queue, read with it (see ``experiment_lock``) by a read, not in a write that may
        yet roll back."""
        if (
            conn is getattr(self._local, "pinned", None)
            and self._local.locked_key == row["id"]
            and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        ):
            self._local.held = (row["id"], row["suggestion_count"], row["has_queue"])

    def _held(self, experiment_id: str) -> tuple[int, bool] | None:
        """(suggestion count, has a queue) read under the lock this thread holds on the
        experiment, None when there is no such read."""
        held = getattr(self._local, "held", None)
        if held is None or getattr(self._local, "pinned", None) is None:
            return None
        if held[0] != ids.parse_id(experiment_id):
            return None
        return held[1], held[2]

    def count_suggestions(self, experiment_id: str) -> int:
        held = self._held(experiment_id)
        if held is not None:
            return held[0]
        key = self._experiment_key(experiment_id)
        row = self._read(
            lambda conn: conn.execute(
                "SELECT suggestion_count FROM experiments WHERE id = %s", (key,)
            ).fetchone()
        )
        if row is None:
            raise NotFound(f"experiment {experiment_id!r} not found")
        return int(row["suggestion_count"])

    # -------------------------------------------------------------- suggestions

    @staticmethod
    def _suggestion(row: Row) -> Suggestion:
        return Suggestion(
            id=str(row["id"]),
            experiment_id=str(row["experiment_id"]),
            assignments=json.loads(row["assignments"]),
            state=SuggestionState(row["state"]),
            metadata=json.loads(row["metadata"]),
            create_time=row["create_time"],
            sequence=row["sequence"],
            expire_time=row["expire_time"],
            lease_seconds=row["lease_seconds"],
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
        def body(conn: Conn) -> list[Suggestion]:
            if callable(assignments):
                # the row lock holds the sequence numbers until COMMIT
                row = conn.execute(
                    "SELECT suggestion_count FROM experiments WHERE id = %s FOR NO KEY UPDATE",
                    (self._experiment_key(experiment_id),),
                ).fetchone()
                if row is None:
                    raise NotFound(f"experiment {experiment_id!r} not found")
                points = assignments(int(row["suggestion_count"]))
            else:
                points = assignments
            made = self._insert_suggestions(conn, experiment_id, points, metadata, lease_seconds)
            for queued_id in queued:
                self._delete_queued(conn, experiment_id, queued_id)
            return made

        if write.request is None and not queued and not callable(assignments):  # one statement
            return self._single(write, body)
        return self._write(write, body)

    def _insert_suggestions(
        self,
        conn: Conn,
        experiment_id: str,
        assignments: list[Assignments],
        metadata: dict[str, Any],
        lease_seconds: int,
    ) -> list[Suggestion]:
        key = self._experiment_key(experiment_id)
        encoded = [codec.dumps(a) for a in assignments]
        indices = self._grid_indices(self._grid_of_key(conn, key), encoded)
        # One statement: the row lock, the next sequence numbers and the inserts.
        rows = conn.execute(
            "WITH e AS (UPDATE experiments SET suggestion_count = suggestion_count + %s"
            " WHERE id = %s RETURNING id, suggestion_count - %s AS first)"
            " INSERT INTO suggestions (experiment_id, sequence, assignments, state, metadata,"
            " create_time, lease_seconds, expire_time, grid_index)"
            f" SELECT e.id, e.first + t.k - 1, t.a, 'open', %s, {NOW}, %s,"
            f" {NOW} + make_interval(secs => %s), t.g"
            " FROM e, unnest(%s::text[], %s::bigint[]) WITH ORDINALITY AS t (a, g, k)"
            f" RETURNING {SUGGESTION_COLUMNS}",
            (
                len(assignments),
                key,
                len(assignments),
                codec.dumps(metadata),
                lease_seconds,
                lease_seconds,
                encoded,
                indices,
            ),
        ).fetchall()
        if not rows:
            raise NotFound(f"experiment {experiment_id!r} not found")
        return sorted((self._suggestion(r) for r in rows), key=lambda s: s.sequence)

    def _suggestion_row(self, conn: Conn, experiment_id: str, suggestion_id: str) -> Row:
        key = self._experiment_key(experiment_id)
        row = conn.execute(
            f"SELECT {SUGGESTION_COLUMNS} FROM suggestions WHERE id = %s AND experiment_id = %s",
            (_int_id(suggestion_id, "suggestion"), key),
        ).fetchone()
        if row is None:
            self._experiment_exists(conn, experiment_id)  # which of the two is missing
            raise NotFound(
                f"suggestion {suggestion_id!r} not found in experiment {experiment_id!r}"
            )
        return row

    def get_suggestion(self, experiment_id: str, suggestion_id: str) -> Suggestion:
        row = self._read(lambda conn: self._suggestion_row(conn, experiment_id, suggestion_id))
        return self._suggestion(row)

    def list_suggestions(
        self,
        experiment_id: str,
        state: SuggestionState | None,
        page_size: int,
        page_token: str,
    ) -> Page[Suggestion]:
        after = _decode_token(page_token) or 0

        def body(conn: Conn) -> list[Row]:
            key = self._experiment_exists(conn, experiment_id)
            sql = (
                f"SELECT {SUGGESTION_COLUMNS} FROM suggestions WHERE experiment_id = %s AND id > %s"
            )
            args: list[object] = [key, after]
            if state is SuggestionState.OPEN:
                sql += f" AND {_LIVE}"
            elif state is SuggestionState.EXPIRED:
                sql += f" AND {_EXPIRED}"
            elif state is not None:
                sql, args = sql + " AND state = %s", [*args, state.value]
            return conn.execute(sql + " ORDER BY id LIMIT %s", (*args, page_size + 1)).fetchall()

        rows = self._read(body)
        items = [self._suggestion(r) for r in rows[:page_size]]
        token = _encode_token(int(items[-1].id)) if len(rows) > page_size else ""
        return Page(items, token)

    def update_suggestion_metadata(
        self,
        experiment_id: str,
        suggestion_id: str,
        metadata: dict[str, Any],
        write: Write = PLAIN,
    ) -> Suggestion:
        def body(conn: Conn) -> Suggestion:
            row = conn.execute(
                "UPDATE suggestions SET metadata = %s WHERE id = %s AND experiment_id = %s"
                f" RETURNING {SUGGESTION_COLUMNS}",
                (
                    codec.dumps(metadata),
                    _int_id(suggestion_id, "suggestion"),
                    self._experiment_key(experiment_id),
                ),
            ).fetchone()
            return self._suggestion(row or self._suggestion_row(conn, experiment_id, suggestion_id))

        return self._write(write, body)

    def delete_suggestion(
        self, experiment_id: str, suggestion_id: str, write: Write = PLAIN
    ) -> None:
        def body(conn: Conn) -> None:
            row = self._suggestion_row(conn, experiment_id, suggestion_id)
            gone = conn.execute(
                "DELETE FROM suggestions WHERE id = %s AND state = 'open' RETURNING id",
                (row["id"],),
            ).fetchone()
            if gone is None:  # closed, now or by an observation that committed first
                raise FailedPrecondition(
                    f"suggestion {suggestion_id!r} is closed: only open suggestions can be deleted"
                )

        self._write(write, body)

    def renew_suggestion(
        self,
        experiment_id: str,
        suggestion_id: str,
        lease_seconds: int | None,
        write: Write = PLAIN,
    ) -> Suggestion:
        def body(conn: Conn) -> Suggestion:
            row = self._suggestion_row(conn, experiment_id, suggestion_id)
            renewed = conn.execute(
                "UPDATE suggestions SET lease_seconds = COALESCE(%s, lease_seconds),"
                f" expire_time = {NOW} + make_interval(secs => COALESCE(%s, lease_seconds))"
                f" WHERE id = %s AND {_LIVE} RETURNING {SUGGESTION_COLUMNS}",
                (lease_seconds, lease_seconds, row["id"]),
            ).fetchone()
            if renewed is None:
                current = conn.execute(
                    f"SELECT {SUGGESTION_COLUMNS} FROM suggestions WHERE id = %s", (row["id"],)
                ).fetchone()
                state = "deleted" if current is None else current["state"]
                raise FailedPrecondition(
                    f"suggestion {suggestion_id!r} is {state}: only open suggestions"
                    " can be renewed (an observation for an expired one is still accepted)"
                )
            return self._suggestion(renewed)

        return self._write(write, body)

    # -------------------------------------------------------------- observations

    @staticmethod
    def _observation(row: Row, prefix: str = "") -> Observation:
        sid = row[prefix + "suggestion_id"]
        return Observation(
            id=str(row[prefix + "id"]),
            experiment_id=str(row[prefix + "experiment_id"]),
            suggestion_id=None if sid is None else str(sid),
            assignments=json.loads(row[prefix + "assignments"]),
            values=codec.values_from_json(row[prefix + "metric_values"]),
            failed=bool(row[prefix + "failed"]),
            metadata=json.loads(row[prefix + "metadata"]),
            create_time=row[prefix + "create_time"],
        )

    def create_observation(self, observation: Observation, write: Write = PLAIN) -> Observation:
        def locked(conn: Conn) -> Observation:
            exp = self._lock_experiment(conn, observation.experiment_id)
            return self._insert_observation(conn, exp, self._incumbent(exp), observation)

        key = self._experiment_key(observation.experiment_id)
        cached = self._definitions.get(key)
        if cached is None:  # a definition this replica has not read yet
            return self._write(write, locked)
        text, definition = cached

        grid = self._grid(key, definition)

        def one(conn: Conn) -> Observation | None:
            score = _standing(definition, observation)
            return self._observe(conn, key, text, score, grid, observation)

        if write.request is None:
            made = self._single(write, one)
            # None: the definition changed since it was read, and nothing was written
            return made if made is not None else self._write(write, locked)
        return self._write(write, lambda conn: one(conn) or locked(conn))

    def _observe(
        self,
        conn: Conn,
        key: int,
        definition: str,
        score: float | None,
        grid: Grid | None,
        observation: Observation,
    ) -> Observation | None:
        """Stores one observation in one statement, as ``_insert_observation`` does after
        ``_lock_experiment``: the statement takes the experiment's row lock first, closes
        the suggestion (if open), inserts, counts, and crowns the observation if its
        ``score`` (see ``_standing``) beats the best one's, read under that lock.

        ``score`` was computed from ``definition``, the text of the experiment's
        definition this replica read: when the row holds another text (metrics changed
        since), or a best observation without its score (written before migration 3, or
        by a replica of before during an upgrade), nothing is written and None
        returned, for the caller to take the locked path.
        """
        if observation.suggestion_id is None:
            closing, args = "SELECT NULL::bigint AS id FROM e WHERE e.fresh", {}
        else:
            closing = (
                "UPDATE suggestions s SET state = 'closed' FROM e WHERE e.fresh"
                " AND s.id = %(suggestion)s AND s.experiment_id = e.id AND s.state = 'open'"
                " RETURNING s.id"
            )
            args = {"suggestion": _int_id(observation.suggestion_id, "suggestion")}
        # crowned: it has a score, and there is no best observation or a worse one
        crowned = (
            "%(score)s::float8 IS NOT NULL AND (x.best_observation_id IS NULL"
            " OR %(score)s::float8 > x.best_score)"
        )
        assignments = codec.dumps(observation.assignments)
        row = conn.execute(
            "WITH e AS (SELECT id, definition = %(definition)s AND (best_observation_id IS NULL"
            " OR best_score_of = best_observation_id) AS fresh FROM experiments"
            " WHERE id = %(experiment)s FOR NO KEY UPDATE),"
            f" c AS ({closing}),"
            " o AS (INSERT INTO observations (experiment_id, suggestion_id, assignments,"
            " metric_values, failed, metadata, create_time, grid_index)"
            " SELECT %(experiment)s, c.id, %(assignments)s, %(values)s, %(failed)s,"
            f" %(metadata)s, {NOW}, %(grid)s::bigint FROM c RETURNING *),"
            " u AS (UPDATE experiments x SET observation_count = x.observation_count + 1,"
            " failed_count = x.failed_count + %(failures)s,"
            f" best_observation_id = CASE WHEN {crowned} THEN o.id"
            " ELSE x.best_observation_id END,"
            f" best_score = CASE WHEN {crowned} THEN %(score)s::float8 ELSE x.best_score END,"
            f" best_score_of = CASE WHEN {crowned} THEN o.id ELSE x.best_score_of END"
            " FROM o WHERE x.id = o.experiment_id)"
            " SELECT e.fresh, o.* FROM e LEFT JOIN o ON true",
            {
                **args,
                "definition": definition,
                "experiment": key,
                "assignments": assignments,
                "grid": self._grid_indices(grid, [assignments])[0],
                "values": codec.values_to_json(observation.values),
                "failed": observation.failed,
                "metadata": codec.dumps(observation.metadata),
                "failures": int(observation.failed),
                "score": score,
            },
        ).fetchone()
        if row is None:
            raise NotFound(f"experiment {observation.experiment_id!r} not found")
        if not row["fresh"]:
            return None
        if row["id"] is None:
            # the suggestion is closed (an observation that waited on the experiment's
            # row lock committed first), or not of this experiment
            assert observation.suggestion_id is not None
            self._suggestion_row(conn, observation.experiment_id, observation.suggestion_id)
            raise FailedPrecondition(
                f"suggestion {observation.suggestion_id!r} is closed: it already has an observation"
            )
        return self._observation(row)

    def create_observations(
        self, observations: list[Observation], write: Write = PLAIN
    ) -> list[Observation]:
        def body(conn: Conn) -> list[Observation]:
            results: list[Observation] = []
            locked: dict[str, tuple[Row, Observation | None]] = {}
            for observation in observations:
                if observation.experiment_id not in locked:
                    exp = self._lock_experiment(conn, observation.experiment_id)
                    locked[observation.experiment_id] = (exp, self._incumbent(exp))
                exp, incumbent = locked[observation.experiment_id]
                result = self._insert_observation(conn, exp, incumbent, observation)
                if self._improves(exp, incumbent, result):
                    locked[observation.experiment_id] = (exp, result)
                results.append(result)
            return results

        return self._write(write, body)

    def _incumbent(self, exp: Row) -> Observation | None:
        """The best observation read with the experiment row (``_lock_experiment``)."""
        return None if exp["b_id"] is None else self._observation(exp, "b_")

    def _improves(self, exp: Row, incumbent: Observation | None, candidate: Observation) -> bool:
        definition = self._definition(exp)
        return len(definition.optimized_metrics) == 1 and best.improves(
            definition, incumbent, candidate
        )

    def _insert_observation(
        self, conn: Conn, exp: Row, incumbent: Observation | None, observation: Observation
    ) -> Observation:
        """Stores one observation of the locked experiment ``exp`` whose best observation
        is ``incumbent``: closes its suggestion (if open), inserts it, counts it and
        crowns it if it improves, all in one statement.

        The experiment's row lock, taken first, gives observations of one experiment ids
        in commit order, and makes ``incumbent`` the one every other writer sees.
        """
        assignments = codec.dumps(observation.assignments)
        values = (
            assignments,
            codec.values_to_json(observation.values),
            observation.failed,
            codec.dumps(observation.metadata),
            self._grid_indices(self._grid(exp["id"], self._definition(exp)), [assignments])[0],
        )
        if observation.suggestion_id is None:
            closing, args = "SELECT NULL::bigint AS id", tuple[object, ...]()
        else:
            closing = (
                "UPDATE suggestions SET state = 'closed' WHERE id = %s AND experiment_id = %s"
                " AND state = 'open' RETURNING id"
            )
            args = (_int_id(observation.suggestion_id, "suggestion"), exp["id"])
        # the best observation's score, kept with it (and filled in for rows of before)
        improves = self._improves(exp, incumbent, observation)
        best_one = observation if improves else incumbent
        score = None if best_one is None else _standing(self._definition(exp), best_one)
        row = conn.execute(
            f"WITH c AS ({closing}),"
            " o AS (INSERT INTO observations (experiment_id, suggestion_id, assignments,"
            " metric_values, failed, metadata, create_time, grid_index)"
            f" SELECT %s, c.id, %s, %s, %s, %s, {NOW}, %s::bigint FROM c RETURNING *),"
            " u AS (UPDATE experiments SET observation_count = observation_count + 1,"
            " failed_count = failed_count + %s, best_observation_id = CASE WHEN %s"
            " THEN (SELECT id FROM o) ELSE best_observation_id END, best_score = %s,"
            " best_score_of = CASE WHEN %s THEN (SELECT id FROM o) ELSE best_observation_id END"
            " WHERE id = %s AND EXISTS (SELECT 1 FROM o))"
            " SELECT * FROM o",
            (
                *args,
                exp["id"],
                *values,
                int(observation.failed),
                improves,
                score,
                improves,
                exp["id"],
            ),
        ).fetchone()
        if row is None:
            # the suggestion is closed (an observation that waited on its row lock
            # committed first), or not of this experiment
            assert observation.suggestion_id is not None
            self._suggestion_row(conn, observation.experiment_id, observation.suggestion_id)
            raise FailedPrecondition(
                f"suggestion {observation.suggestion_id!r} is closed: it already has an observation"
            )
        return self._observation(row)

    def _observation_row(
        self, conn: Conn, experiment_id: str, observation_id: str, *, checked: bool = False
    ) -> Row:
        key = self._experiment_key(experiment_id)
        row = conn.execute(
            "SELECT * FROM observations WHERE id = %s AND experiment_id = %s",
            (_int_id(observation_id, "observation"), key),
        ).fetchone()
        if row is None:
            if not checked:
                self._experiment_exists(conn, experiment_id)
            raise NotFound(
                f"observation {observation_id!r} not found in experiment {experiment_id!r}"
            )
        return row

    def get_observation(self, experiment_id: str, observation_id: str) -> Observation:
        row = self._read(lambda conn: self._observation_row(conn, experiment_id, observation_id))
        return self._observation(row)

    def list_observations(
        self, experiment_id: str, page_size: int, page_token: str
    ) -> Page[Observation]:
        after = _decode_token(page_token) or 0

        def body(conn: Conn) -> list[Row]:
            key = self._experiment_exists(conn, experiment_id)
            return conn.execute(
                "SELECT * FROM observations WHERE experiment_id = %s AND id > %s"
                " ORDER BY id LIMIT %s",
                (key, after, page_size + 1),
            ).fetchall()

        rows = self._read(body)
        items = [self._observation(r) for r in rows[:page_size]]
        token = _encode_token(int(items[-1].id)) if len(rows) > page_size else ""
        return Page(items, token)

    def update_observation(self, observation: Observation, write: Write = PLAIN) -> Observation:
        def body(conn: Conn) -> Observation:
            exp = self._lock_experiment(conn, observation.experiment_id)
            old = self._observation_row(
                conn, observation.experiment_id, observation.id, checked=True
            )
            row = conn.execute(
                "UPDATE observations SET metric_values = %s, failed = %s, metadata = %s"
                " WHERE id = %s RETURNING *",
                (
                    codec.values_to_json(observation.values),
                    observation.failed,
                    codec.dumps(observation.metadata),
                    old["id"],
                ),
            ).fetchone()
            assert row is not None
            conn.execute(
                "UPDATE experiments SET failed_count = failed_count + %s WHERE id = %s",
                (int(observation.failed) - int(old["failed"]), exp["id"]),
            )
            self._refresh_best(conn, exp)
            return self._observation(row)

        return self._write(write, body)

    def delete_observation(
        self, experiment_id: str, observation_id: str, write: Write = PLAIN
    ) -> None:
        def body(conn: Conn) -> None:
            exp = self._lock_experiment(conn, experiment_id)
            row = self._observation_row(conn, experiment_id, observation_id, checked=True)
            conn.execute("DELETE FROM observations WHERE id = %s", (row["id"],))
            conn.execute(
                "UPDATE experiments SET observation_count = observation_count - 1,"
                " failed_count = failed_count - %s WHERE id = %s",
                (int(row["failed"]), exp["id"]),
            )
            if exp["best_observation_id"] == row["id"]:
                self._refresh_best(conn, exp)

        self._write(write, body)

    # -------------------------------------------------------------- queued suggestions

    @staticmethod
    def _queued(row: Row) -> QueuedSuggestion:
        return QueuedSuggestion(
            id=str(row["id"]),
            experiment_id=str(row["experiment_id"]),
            assignments=json.loads(row["assignments"]),
            create_time=row["create_time"],
        )

    def create_queued_suggestion(
        self, experiment_id: str, assignments: Assignments, write: Write = PLAIN
    ) -> QueuedSuggestion:
        def body(conn: Conn) -> QueuedSuggestion:
            row = conn.execute(
                "INSERT INTO queued_suggestions (experiment_id, assignments, create_time)"
                f" SELECT id, %s, {NOW} FROM experiments WHERE id = %s RETURNING *",
                (codec.dumps(assignments), self._experiment_key(experiment_id)),
            ).fetchone()
            if row is None:
                raise NotFound(f"experiment {experiment_id!r} not found")
            return self._queued(row)

        return self._write(write, body)

    def list_queued_suggestions(self, experiment_id: str) -> list[QueuedSuggestion]:
        held = self._held(experiment_id)
        if held is not None and not held[1]:
            return []
        rows = self._read(
            lambda conn: conn.execute(
                "SELECT q.*, e.id AS found FROM experiments e"
                " LEFT JOIN queued_suggestions q ON q.experiment_id = e.id"
                " WHERE e.id = %s ORDER BY q.id",
                (self._experiment_key(experiment_id),),
            ).fetchall()
        )
        if not rows:
            raise NotFound(f"experiment {experiment_id!r} not found")
        return [self._queued(r) for r in rows if r["id"] is not None]

    def _delete_queued(self, conn: Conn, experiment_id: str, queued_id: str) -> None:
        gone = conn.execute(
            "DELETE FROM queued_suggestions WHERE id = %s AND experiment_id = %s RETURNING id",
            (_int_id(queued_id, "queued suggestion"), self._experiment_key(experiment_id)),
        ).fetchone()
        if gone is None:
            self._experiment_exists(conn, experiment_id)
            raise NotFound(
                f"queued suggestion {queued_id!r} not found in experiment {experiment_id!r}"
            )

    def delete_queued_suggestion(
        self, experiment_id: str, queued_id: str, write: Write = PLAIN
    ) -> None:
        self._write(write, lambda conn: self._delete_queued(conn, experiment_id, queued_id))

    # -------------------------------------------------------------- projects

    @staticmethod
    def _project(row: Row) -> Project:
        return Project(
            id=row["id"],
            name=row["name"],
            metadata=json.loads(row["metadata"]),
            create_time=row["create_time"],
            update_time=row["update_time"],
        )

    @staticmethod
    def _register_project(conn: Conn, project: str) -> None:
        if project:
            conn.execute(
                "INSERT INTO projects (id, name, metadata, create_time, update_time)"
                f" VALUES (%s, %s, '{{}}', {NOW}, {NOW}) ON CONFLICT (id) DO NOTHING",
                (project, project),
            )

    def create_project(self, project: Project, write: Write = PLAIN) -> Project:
        def body(conn: Conn) -> Project:
            row = conn.execute(
                "INSERT INTO projects (id, name, metadata, create_time, update_time)"
                f" VALUES (%s, %s, %s, {NOW}, {NOW}) ON CONFLICT (id) DO NOTHING RETURNING *",
                (project.id, project.name, codec.dumps(project.metadata)),
            ).fetchone()
            if row is None:
                raise AlreadyExists(f"project {project.id!r} already exists")
            return self._project(row)

        return self._write(write, body)

    def get_project(self, project_id: str) -> Project:
        row = self._read(
            lambda conn: conn.execute(
                "SELECT * FROM projects WHERE id = %s", (project_id,)
            ).fetchone()
        )
        if row is None:
            raise NotFound(f"project {project_id[:100]!r} not found")
        return self._project(row)

    def list_projects(self, projects: frozenset[str] | None = None) -> list[Project]:
        sql, args = "SELECT * FROM projects ORDER BY id", tuple[object, ...]()
        if projects is not None:
            sql, args = "SELECT * FROM projects WHERE id = ANY(%s) ORDER BY id", (sorted(projects),)
        return [self._project(r) for r in self._read(lambda c: c.execute(sql, args).fetchall())]

    def update_project(self, project: Project, write: Write = PLAIN) -> Project:
        def body(conn: Conn) -> Project:
            row = conn.execute(
                f"UPDATE projects SET name = %s, metadata = %s, update_time = {NOW}"
                " WHERE id = %s RETURNING *",
                (project.name, codec.dumps(project.metadata), project.id),
            ).fetchone()
            if row is None:
                raise NotFound(f"project {project.id[:100]!r} not found")
            return self._project(row)

        return self._write(write, body)

    # -------------------------------------------------------------- training runs

    @staticmethod
    def _run(row: Row) -> TrainingRun:
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
        run.create_time = row["create_time"]
        run.update_time = row["update_time"]
        run.complete_time = row["complete_time"]
        return run

    def create_training_run(
        self,
        run: TrainingRun,
        suggestion: Assignments | None = None,
        lease_seconds: int = 0,
        write: Write = PLAIN,
        queued: Sequence[str] = (),
    ) -> TrainingRun:
        def body(conn: Conn) -> TrainingRun:
            experiment_key = suggestion_key = None
            if run.experiment_id is not None:
                experiment_key = self._experiment_exists(conn, run.experiment_id)
                if suggestion is not None:
                    (made,) = self._insert_suggestions(
                        conn, run.experiment_id, [suggestion], {}, lease_seconds
                    )
                    suggestion_key = int(made.id)
                for queued_id in queued:
                    self._delete_queued(conn, run.experiment_id, queued_id)
            self._register_project(conn, run.project)
            row = conn.execute(
                "INSERT INTO training_runs (project, experiment_id, suggestion_id, state,"
                " deleted, document, create_time, update_time)"
                f" VALUES (%s, %s, %s, %s, %s, %s, {NOW}, {NOW}) RETURNING *",
                (
                    run.project,
                    experiment_key,
                    suggestion_key,
                    run.state.value,
                    run.deleted,
                    codec.run_to_json(run),
                ),
            ).fetchone()
            assert row is not None
            return self._run(row)

        return self._write(write, body)

    def _run_row(self, conn: Conn, run_id: str, *, lock: bool = False) -> Row:
        row = conn.execute(
            "SELECT * FROM training_runs WHERE id = %s" + (" FOR UPDATE" if lock else ""),
            (_int_id(run_id, "training run"),),
        ).fetchone()
        if row is None:
            raise NotFound(f"training run {run_id!r} not found")
        return row

    def get_training_run(self, run_id: str) -> TrainingRun:
        return self._run(self._read(lambda conn: self._run_row(conn, run_id)))

    def list_training_runs(
        self,
        project: str | None,
        experiment_id: str | None,
        page_size: int,
        page_token: str,
        deleted: bool | None = False,
    ) -> Page[TrainingRun]:
        after = _decode_token(page_token) or 0
        sql, args = "SELECT * FROM training_runs WHERE id > %s", list[object]([after])
        if project is not None:
            sql, args = sql + " AND project = %s", [*args, project]
        if experiment_id is not None:
            sql, args = (
                sql + " AND experiment_id = %s",
                [*args, _int_id(experiment_id, "experiment")],
            )
        if deleted is not None:
            sql, args = sql + " AND deleted = %s", [*args, deleted]
        sql += " ORDER BY id LIMIT %s"
        rows = self._read(lambda conn: conn.execute(sql, (*args, page_size + 1)).fetchall())
        items = [self._run(r) for r in rows[:page_size]]
        token = _encode_token(int(items[-1].id)) if len(rows) > page_size else ""
        return Page(items, token)

    def update_training_run(
        self, run_id: str, change: Callable[[TrainingRun], RunChange], write: Write = PLAIN
    ) -> TrainingRun:
        def body(conn: Conn) -> TrainingRun:
            # The run's row lock: two replicas changing one run take turns.
            row = self._run_row(conn, run_id, lock=True)
            run, observation = change(self._run(row))
            observation_key = row["observation_id"]
            if observation is not None:
                exp = self._lock_experiment(conn, observation.experiment_id)
                made = self._insert_observation(conn, exp, self._incumbent(exp), observation)
                observation_key = int(made.id)
            updated = conn.execute(
                "UPDATE training_runs SET state = %s, deleted = %s, document = %s,"
                f" update_time = {NOW}, complete_time = CASE WHEN %s AND complete_time IS NULL"
                f" THEN {NOW} ELSE complete_time END, observation_id = %s"
                " WHERE id = %s RETURNING *",
                (
                    run.state.value,
                    run.deleted,
                    codec.run_to_json(run),
                    run.finished,
                    observation_key,
                    row["id"],
                ),
            ).fetchone()
            assert updated is not None
            return self._run(updated)

        return self._write(write, body)

    # -------------------------------------------------------------- tokens

    @staticmethod
    def _token(row: Row) -> Token:
        return Token(
            id=str(row["id"]),
            name=row["name"],
            role=Role(row["role"]),
            projects=json.loads(row["projects"]),
            create_time=row["create_time"],
            revoke_time=row["revoke_time"],
        )

    def create_token(self, token: Token, secret_hash: str) -> Token:
        def body(conn: Conn) -> Row:
            row = conn.execute(
                "INSERT INTO tokens (name, role, projects, secret_hash, create_time)"
                f" VALUES (%s, %s, %s, %s, {NOW}) RETURNING *",
                (token.name, token.role.value, codec.dumps(token.projects), secret_hash),
            ).fetchone()
            assert row is not None
            return row

        return self._token(self._write(PLAIN, body))

    def list_tokens(self) -> list[Token]:
        rows = self._read(lambda conn: conn.execute("SELECT * FROM tokens ORDER BY id").fetchall())
        return [self._token(r) for r in rows]

    def revoke_token(self, token_id: str) -> Token:
        key = _int_id(token_id, "token")

        def body(conn: Conn) -> Row | None:
            conn.execute(
                f"UPDATE tokens SET revoke_time = {NOW} WHERE id = %s AND revoke_time IS NULL",
                (key,),
            )
            return conn.execute("SELECT * FROM tokens WHERE id = %s", (key,)).fetchone()

        row = self._write(PLAIN, body)
        if row is None:
            raise NotFound(f"token {token_id!r} not found")
        return self._token(row)

    def token_by_hash(self, secret_hash: str) -> Token | None:
        row = self._read(
            lambda conn: conn.execute(
                "SELECT * FROM tokens WHERE secret_hash = %s AND revoke_time IS NULL",
                (secret_hash,),
            ).fetchone()
        )
        return None if row is None else self._token(row)


__all__ = [
    "DatabaseUnavailable",
    "PostgresStorage",
    "Result",
    "SchemaOutdated",
    "SchemaTooNew",
    "redact",
]
