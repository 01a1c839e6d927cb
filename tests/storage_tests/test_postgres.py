"""What only the PostgreSQL backend does: versioned migrations, and the experiment lock
shared by every replica (here, several storage instances on one database)."""

from __future__ import annotations

import subprocess
import sys
import threading

import psycopg
import pytest

from optserve.domain.errors import Unavailable
from optserve.domain.model import (
    Experiment,
    Metric,
    MetricValue,
    Objective,
    Observation,
    Strategy,
    SuggestionState,
)
from optserve.storage.migrations.postgres import SCHEMA_VERSION
from optserve.storage.postgres import PostgresStorage, SchemaOutdated, redact
from optserve.storage.sqlite import SchemaTooNew

from .test_contract import LEASE, _experiment

_fresh = iter(range(1, 1_000_000))


@pytest.fixture
def empty_url(postgres) -> str:
    """A database without optserve's schema."""
    return postgres.create_database(f"empty_{next(_fresh)}")


@pytest.fixture
def replicas(postgres_url):
    """Two storages on one database, as two replicas would have."""
    made = [PostgresStorage(postgres_url, pool_size=8) for _ in range(2)]
    yield made
    for s in made:
        s.close()


def _versions(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]


def test_an_unmigrated_database_is_refused_until_migrated(empty_url):
    with pytest.raises(SchemaOutdated, match="optserve migrate"):
        PostgresStorage(empty_url)
    storage = PostgresStorage(empty_url, migrate=True)
    assert storage.schema_version() == SCHEMA_VERSION
    assert storage.migrate() == []  # nothing left to apply
    storage.close()
    assert _versions(empty_url) == list(range(1, SCHEMA_VERSION + 1))
    PostgresStorage(empty_url).close()


def test_replicas_migrating_at_once_apply_each_migration_once(empty_url):
    applied: list[list[int]] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            storage = PostgresStorage(empty_url, migrate=True, pool_size=1)
            applied.append(storage.migrate())
            storage.close()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and applied == [[]] * 4
    assert _versions(empty_url) == list(range(1, SCHEMA_VERSION + 1))


def test_a_newer_schema_is_refused(postgres_url):
    with psycopg.connect(postgres_url) as conn:
        conn.execute("INSERT INTO schema_migrations (version, description) VALUES (999, 'x')")
    for migrate in (False, True):
        with pytest.raises(SchemaTooNew, match="999"):
            PostgresStorage(postgres_url, migrate=migrate)


def test_data_survives_reopening(postgres_url):
    first = PostgresStorage(postgres_url)
    exp = first.create_experiment(_experiment())
    (s,) = first.create_suggestions(exp.id, [{"x": 0.4}], {}, LEASE)
    first.create_observation(Observation("", exp.id, s.id, {}, [MetricValue("v", 2.0, None)]))
    first.close()
    second = PostgresStorage(postgres_url)
    observations, pending = second.load_history(exp.id)
    assert not pending and [o.suggestion_id for o in observations] == [s.id]
    assert second.get_experiment(exp.id).progress.best_observation == observations[0]
    second.close()


def test_the_lock_serializes_replicas(replicas):
    """Threads spread over two replicas: each reads under the lock the sequence its
    write gets, and no two holders overlap."""
    exp = replicas[0].create_experiment(_experiment())
    seen: list[tuple[int, int]] = []
    inside: list[int] = []
    overlaps: list[int] = []

    def make(k: int) -> None:
        storage = replicas[k % 2]
        with storage.experiment_lock(exp.id):
            inside.append(k)
            if len(inside) > 1:
                overlaps.append(k)
            before = storage.count_suggestions(exp.id)
            storage.load_history(exp.id)
            (s,) = storage.create_suggestions(exp.id, [{"x": k / 100}], {}, LEASE)
            seen.append((before, s.sequence))
            inside.remove(k)

    threads = [threading.Thread(target=make, args=(k,)) for k in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not overlaps
    assert all(before == sequence for before, sequence in seen)
    assert sorted(s for _, s in seen) == list(range(30))


def _lock_holder(postgres_url: str, key: int) -> int | None:
    with psycopg.connect(postgres_url) as conn:
        row = conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = %s",
            (key,),
        ).fetchone()
    return None if row is None else int(row[0])


def test_the_lock_holds_no_transaction_and_blocks_no_observation(replicas, postgres_url):
    a, b = replicas
    exp = a.create_experiment(_experiment())
    (s,) = a.create_suggestions(exp.id, [{"x": 0.3}], {}, LEASE)
    with a.experiment_lock(exp.id):
        pid = _lock_holder(postgres_url, int(exp.id))
        assert pid is not None
        with psycopg.connect(postgres_url) as conn:
            row = conn.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", (pid,))
            assert row.fetchone() == ("idle",)  # not "idle in transaction"
        # the other replica writes observations and reads meanwhile
        b.create_observation(Observation("", exp.id, s.id, {}, [MetricValue("v", 1.0, None)]))
        assert b.get_experiment(exp.id).progress.observation_count == 1
    assert _lock_holder(postgres_url, int(exp.id)) is None


def test_a_lock_whose_session_ended_is_free_and_its_holder_writes_nothing(replicas, postgres_url):
    """A replica killed while it holds the lock: its session ends, which frees the lock
    for the others; were the replica still running, its write would fail."""
    a, b = replicas
    exp = a.create_experiment(_experiment())
    holding, terminated = threading.Event(), threading.Event()
    outcome: list[BaseException] = []

    def hold() -> None:
        try:
            with a.experiment_lock(exp.id):
                holding.set()
                terminated.wait()
                a.create_suggestions(exp.id, [{"x": 0.1}], {}, LEASE)
        except BaseException as error:
            outcome.append(error)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait()
    pid = _lock_holder(postgres_url, int(exp.id))
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with b.experiment_lock(exp.id):
        (s,) = b.create_suggestions(exp.id, [{"x": 0.2}], {}, LEASE)
    terminated.set()
    holder.join()
    assert len(outcome) == 1 and isinstance(outcome[0], Unavailable)
    assert s.sequence == 0 and a.count_suggestions(exp.id) == 1
    assert [x.state for x in a.load_history(exp.id)[1]] == [SuggestionState.OPEN]
    # the broken connection went back to the pool closed; the storage still works
    with a.experiment_lock(exp.id):
        assert a.create_suggestions(exp.id, [{"x": 0.3}], {}, LEASE)[0].sequence == 1
    assert _lock_holder(postgres_url, int(exp.id)) is None


def test_urls_are_redacted():
    assert redact("postgresql://u:secret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact("postgresql://u@h/db") == "postgresql://u@h/db"
    assert redact("postgresql://h/db?password=s&sslmode=require") == (
        "postgresql://h/db?password=***&sslmode=require"
    )


def _optserve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "optserve", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_command_line_migrates_and_refuses_what_it_cannot_serve(empty_url, postgres):
    refused = _optserve("serve", "--port", "0", "--db", empty_url)
    assert refused.returncode == 2
    assert "optserve migrate" in refused.stderr and len(refused.stderr.splitlines()) == 1
    migrated = _optserve("migrate", "--db", empty_url)
    assert migrated.returncode == 0, migrated.stderr
    assert f"schema at version {SCHEMA_VERSION}" in migrated.stdout
    assert _versions(empty_url) == list(range(1, SCHEMA_VERSION + 1))
    gone = postgres.url("no_such_database")
    unreachable = _optserve("serve", "--port", "0", "--db", gone)
    assert unreachable.returncode == 2 and "no_such_database" in unreachable.stderr
    assert len(unreachable.stderr.splitlines()) == 1


def test_connections_closed_by_the_server_are_replaced(postgres_url):
    """After the database drops every connection (a restart, a failover), reads and
    writes go on: a transaction that failed before COMMIT runs again on a new one."""
    storage = PostgresStorage(postgres_url, pool_size=4)
    exp = storage.create_experiment(_experiment())
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    assert storage.get_experiment(exp.id).id == exp.id
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    obs = storage.create_observation(
        Observation("", exp.id, None, {"x": 0.5}, [MetricValue("v", 1.0, None)])
    )
    assert storage.get_experiment(exp.id).progress.best_observation == obs
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    with storage.experiment_lock(exp.id):
        assert storage.create_suggestions(exp.id, [{"x": 0.1}], {}, LEASE)[0].sequence == 0
    storage.close()


def test_a_database_of_version_1_is_migrated_with_its_projects(empty_url):
    """Migration 2 adds projects, runs and queues, registering the projects that
    experiments already name."""
    from optserve.storage import codec
    from optserve.storage.migrations.postgres import MIGRATIONS

    with psycopg.connect(empty_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY,"
            " description TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        conn.execute(MIGRATIONS[0].sql)
        conn.execute("INSERT INTO schema_migrations (version, description) VALUES (1, 'v1')")
        for project in ("vision", "vision", ""):
            conn.execute(
                "INSERT INTO experiments (name, project, state, definition, create_time,"
                " update_time) VALUES ('old', %s, 'active', %s, now(), now())",
                (project, codec.definition_to_json(_experiment())),
            )
    with pytest.raises(SchemaOutdated, match="version 1"):
        PostgresStorage(empty_url)
    storage = PostgresStorage(empty_url, migrate=True)
    assert [p.id for p in storage.list_projects()] == ["vision"]
    assert storage.get_experiment("1").progress.total_run_count == 0
    storage.close()
    assert _versions(empty_url) == list(range(1, SCHEMA_VERSION + 1))


def _constrained() -> Experiment:
    exp = _experiment()
    exp.metrics = [Metric("v", Objective.MINIMIZE), Metric("c", strategy=Strategy.CONSTRAINT)]
    exp.metrics[1].threshold = 0.5
    return exp


def _measure(storage, exp_id: str, v: float, c: float = 1.0) -> Observation:
    values = [MetricValue("v", v, None), MetricValue("c", c, None)]
    return storage.create_observation(Observation("", exp_id, None, {"x": 0.5}, values))


def test_an_observation_is_judged_by_the_metrics_another_replica_just_changed(replicas):
    """A replica's own copy of a definition only saves work: a write made with an old
    copy is judged by the definition the database holds."""
    a, b = replicas
    exp = a.create_experiment(_constrained())
    first = _measure(a, exp.id, 1.0, c=0.6)
    assert a.get_experiment(exp.id).progress.best_observation == first
    changed = b.get_experiment(exp.id)
    changed.metrics[1].threshold = 0.7  # c = 0.6 and 0.65 no longer satisfy it
    assert b.update_experiment(changed).progress.best_observation is None
    _measure(a, exp.id, 0.5, c=0.65)  # better on v: it would be the best under 0.5
    assert a.get_experiment(exp.id).progress.best_observation is None
    better = _measure(a, exp.id, 2.0, c=0.9)
    assert b.get_experiment(exp.id).progress.best_observation == better


def test_a_best_observation_without_its_score_gets_one_with_the_next_write(replicas, postgres_url):
    """Rows written before migration 3 have a best observation but no best_score."""
    a, _ = replicas
    exp = a.create_experiment(_constrained())
    first = _measure(a, exp.id, 1.0)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE experiments SET best_score = NULL, best_score_of = NULL WHERE id = %s",
            (int(exp.id),),
        )
    _measure(a, exp.id, 3.0)  # worse (v is minimized)
    assert a.get_experiment(exp.id).progress.best_observation == first
    with psycopg.connect(postgres_url) as conn:
        row = conn.execute(
            "SELECT best_score, best_score_of FROM experiments WHERE id = %s", (int(exp.id),)
        )
        assert row.fetchone() == (-1.0, int(first.id))
    better = _measure(a, exp.id, 0.5)
    assert a.get_experiment(exp.id).progress.best_observation == better


def test_a_best_observation_crowned_by_a_replica_of_before_is_not_overlooked(
    replicas, postgres_url
):
    """During an upgrade, a replica of before migration 3 crowns an observation without
    keeping its score: the next write of this version judges against that one."""
    a, _ = replicas
    exp = a.create_experiment(_constrained())
    _measure(a, exp.id, 1.0)
    with psycopg.connect(postgres_url, autocommit=True) as conn:  # as the old code writes
        row = conn.execute(
            "INSERT INTO observations (experiment_id, suggestion_id, assignments,"
            " metric_values, failed, metadata, create_time) VALUES (%s, NULL, '{\"x\":0.5}',"
            " '[[\"v\",0.2,null],[\"c\",1.0,null]]', false, '{}', now()) RETURNING id",
            (int(exp.id),),
        ).fetchone()
        assert row is not None
        conn.execute(
            "UPDATE experiments SET best_observation_id = %s,"
            " observation_count = observation_count + 1 WHERE id = %s",
            (row[0], int(exp.id)),
        )
    _measure(a, exp.id, 0.5)  # better than the score kept (1.0), worse than 0.2
    best_one = a.get_experiment(exp.id).progress.best_observation
    assert best_one is not None and best_one.id == str(row[0])
    better = _measure(a, exp.id, 0.1)
    assert a.get_experiment(exp.id).progress.best_observation == better


def test_concurrent_observations_on_two_replicas_crown_the_best(replicas):
    """Each write compares its value with the best one under the experiment's row lock:
    whatever the interleaving, the best is the first of the lowest values."""
    exp = replicas[0].create_experiment(_constrained())
    for storage in replicas:
        storage.get_experiment(exp.id)  # both hold the definition
    values = [((i * 37) % 23) / 4 for i in range(96)]  # repeats: ties go to the earliest
    errors: list[BaseException] = []

    def write(k: int) -> None:
        try:
            for v in values[k::8]:
                _measure(replicas[k % 2], exp.id, v, c=0.4 if v < 0.3 else 1.0)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    stored = replicas[1].list_observations(exp.id, 1000, "").items
    assert len(stored) == len(values)
    feasible = [o for o in stored if o.value_of("c") >= 0.5]
    expected = min(feasible, key=lambda o: (o.value_of("v"), int(o.id)))
    progress = replicas[0].get_experiment(exp.id).progress
    assert progress.best_observation == expected
    assert progress.observation_count == len(values)


def test_the_lock_holder_counts_and_queues_from_one_read_until_it_writes(replicas):
    """Under the lock, the experiment's read also answers count_suggestions and
    list_queued_suggestions (only lock holders change them), until the holder writes."""
    a, b = replicas
    exp = a.create_experiment(_experiment())
    b.create_queued_suggestion(exp.id, {"x": 0.7})  # made before the lock: seen
    with a.experiment_lock(exp.id):
        a.get_experiment(exp.id)
        assert a.count_suggestions(exp.id) == 0
        (queued,) = a.list_queued_suggestions(exp.id)
        a.create_suggestions(exp.id, [queued.assignments], {}, LEASE, queued=[queued.id])
        assert a.count_suggestions(exp.id) == 1 and a.list_queued_suggestions(exp.id) == []
        a.get_experiment(exp.id)
        a.create_suggestions(exp.id, [{"x": 0.1}], {}, LEASE)
        assert a.count_suggestions(exp.id) == 2
        a.get_experiment(exp.id)
        a.create_queued_suggestion(exp.id, {"x": 0.3})
        assert [q.assignments for q in a.list_queued_suggestions(exp.id)] == [{"x": 0.3}]
    with b.experiment_lock(exp.id):
        b.get_experiment(exp.id)
        assert b.count_suggestions(exp.id) == 2 and len(b.list_queued_suggestions(exp.id)) == 1


def test_a_database_of_version_3_gives_run_observations_their_suggestions_assignments(
    empty_url,
):
    """Migration 4: observations of ended runs, stored with empty assignments, take
    their suggestion's (failed ones included); no other observation changes, and
    `optserve migrate` reports the new version."""
    from optserve.storage import codec
    from optserve.storage.migrations.postgres import MIGRATIONS

    with psycopg.connect(empty_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY,"
            " description TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        for migration in MIGRATIONS[:3]:
            conn.execute(migration.sql)
            conn.execute(
                "INSERT INTO schema_migrations (version, description) VALUES (%s, 'old')",
                (migration.version,),
            )
        conn.execute(
            "INSERT INTO experiments (name, project, state, definition, create_time,"
            " update_time, observation_count, failed_count, best_observation_id, best_score,"
            " best_score_of) VALUES ('old', '', 'active', %s, now(), now(), 4, 1, 1, 1.0, 1)",
            (codec.definition_to_json(_experiment()),),
        )
        for k, x in enumerate((0.25, 0.5, 0.75)):
            conn.execute(
                "INSERT INTO suggestions (experiment_id, sequence, assignments, state,"
                " metadata, create_time, lease_seconds, expire_time)"
                " VALUES (1, %s, %s, 'closed', '{}', now(), 60, now())",
                (k, codec.dumps({"x": x})),
            )
        rows = [  # (suggestion_id, assignments, failed)
            (1, "{}", False),  # a completed run's
            (2, "{}", True),  # a failed run's
            (None, "{}", False),  # no suggestion: nothing to take
            (3, '{"x":0.125}', False),  # assignments of its own: kept
        ]
        for suggestion_id, assignments, failed in rows:
            conn.execute(
                "INSERT INTO observations (experiment_id, suggestion_id, assignments,"
                " metric_values, failed, metadata, create_time)"
                " VALUES (1, %s, %s, %s, %s, '{}', now())",
                (suggestion_id, assignments, "[]" if failed else '[["v",1.0,null]]', failed),
            )
    with pytest.raises(SchemaOutdated, match="version 3"):
        PostgresStorage(empty_url)
    migrated = _optserve("migrate", "--db", empty_url)
    assert migrated.returncode == 0, migrated.stderr
    assert f"schema at version {SCHEMA_VERSION}" in migrated.stdout
    assert _versions(empty_url) == list(range(1, SCHEMA_VERSION + 1))
    storage = PostgresStorage(empty_url)
    observations = storage.load_history("1")[0]
    assert [o.assignments for o in observations] == [{"x": 0.25}, {"x": 0.5}, {}, {"x": 0.125}]
    assert [o.suggestion_id for o in observations] == ["1", "2", None, "3"]
    progress = storage.get_experiment("1").progress
    assert (progress.observation_count, progress.failed_observation_count) == (4, 1)
    assert progress.best_observation is not None and progress.best_observation.id == "1"
    storage.close()
    with psycopg.connect(empty_url, autocommit=True) as conn:  # run again: nothing to do
        assert conn.execute(MIGRATIONS[3].sql).rowcount == 0
