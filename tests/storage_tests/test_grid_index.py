"""GRID experiments' points kept as their index in the grid, on SQLite and PostgreSQL:
the next points equal those of a rescan of the product against the whole history,
rows without an index (written before it existed) included, and a database of the
previous schema carries on without repeating a point."""

from __future__ import annotations

import contextlib
import dataclasses
import random
import sqlite3
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest

from optserve.application import Application
from optserve.domain.errors import FailedPrecondition
from optserve.domain.grid import OFF_GRID, Grid
from optserve.domain.model import (
    Bounds,
    Experiment,
    ExperimentType,
    Metric,
    MetricValue,
    Observation,
    Parameter,
    ParameterType,
    SuggestionState,
)
from optserve.domain.runs import RunState, RunValue, TrainingRun
from optserve.optimizers.grid import next_points
from optserve.storage import SqliteStorage, Storage, codec
from optserve.storage.sqlite import MIGRATIONS

from ..grid_reference import rescan

LEASE = 3600
# SQL that runs on the backend's own database, beside the storage
Sql = Callable[[str, tuple], None]


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, tmp_path) -> Iterator[tuple[Storage, Sql]]:
    if request.param == "sqlite":
        path = tmp_path / "grid.db"
        storage: Storage = SqliteStorage(path)

        def sql(statement: str, args: tuple = ()) -> None:
            with contextlib.closing(sqlite3.connect(path, timeout=30)) as db, db:
                db.execute(statement.replace("%s", "?").replace("%%", "%"), args)

    else:
        from optserve.storage.postgres import PostgresStorage

        url = request.getfixturevalue("postgres_url")
        storage = PostgresStorage(url, pool_size=8)

        def sql(statement: str, args: tuple = ()) -> None:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(statement, args)

    yield storage, sql
    storage.close()


def _grid_experiment(name: str = "grid") -> Experiment:
    return Experiment(
        id="",
        name=name,
        type=ExperimentType.GRID,
        metrics=[Metric("v")],
        parameters=[
            Parameter("x", ParameterType.DOUBLE, grid=[0.1, 0.2, 0.3]),
            Parameter("n", ParameterType.INT, bounds=Bounds(1, 4)),
            Parameter("c", ParameterType.CATEGORICAL, categorical_values=["a", "b"]),
        ],
    )


def _expected(storage: Storage, exp: Experiment, count: int) -> list[dict] | None:
    observations, pending = storage.load_history(exp.id)
    taken = [o.assignments for o in observations] + [s.assignments for s in pending]
    try:
        return rescan(exp, taken, count)
    except FailedPrecondition:
        return None


def _got(storage: Storage, exp: Experiment, count: int) -> list[dict] | None:
    try:
        return next_points(exp, storage.taken_grid_points(exp.id), count)
    except FailedPrecondition:
        return None


def _point(rng: random.Random, product: list[dict]) -> dict:
    """A point as a client may send it: on the grid (an int as a float at times) or off."""
    point = dict(rng.choice(product))
    roll = rng.random()
    if roll < 0.2:
        point["n"] = float(point["n"])
    elif roll < 0.3:
        point["x"] = 0.25  # between grid values
    elif roll < 0.35:
        del point["c"]
    return point


def _value(rng: random.Random) -> list[MetricValue]:
    return [MetricValue("v", rng.random())]


def test_next_points_equal_a_rescan_of_the_history(backend):
    """Random histories: observations on and off the grid (of suggestions, explicit,
    in batches), deleted observations, open, expired, deleted and closed suggestions,
    and rows whose index is NULL as a server of before writes them."""
    storage, sql = backend
    rng = random.Random(7)
    exp = storage.create_experiment(_grid_experiment())
    product = [Grid(exp).point(k) for k in range(Grid(exp).size)]
    # suggestions whose lease has run out
    short = storage.create_suggestions(exp.id, [_point(rng, product) for _ in range(4)], {}, 1)
    time.sleep(1.1)
    open_ids: list[str] = []
    observed: list[str] = []
    outcomes = set()
    for step in range(160):
        action = rng.random()
        if action < 0.3:
            count = rng.randint(1, 3)
            points = _expected(storage, exp, count) if rng.random() < 0.7 else None
            points = points or [_point(rng, product) for _ in range(count)]
            open_ids += [s.id for s in storage.create_suggestions(exp.id, points, {}, LEASE)]
        elif action < 0.5 and open_ids:
            sid = open_ids.pop(rng.randrange(len(open_ids)))
            s = storage.get_suggestion(exp.id, sid)
            made = storage.create_observation(
                Observation("", exp.id, sid, s.assignments, _value(rng))
            )
            observed.append(made.id)
        elif action < 0.6:
            made = storage.create_observation(
                Observation("", exp.id, None, _point(rng, product), _value(rng))
            )
            observed.append(made.id)
        elif action < 0.65:
            batch = [
                Observation("", exp.id, None, _point(rng, product), _value(rng))
                for _ in range(rng.randint(1, 3))
            ]
            observed += [o.id for o in storage.create_observations(batch)]
        elif action < 0.72 and observed:
            storage.delete_observation(exp.id, observed.pop(rng.randrange(len(observed))))
        elif action < 0.78 and open_ids:
            storage.delete_suggestion(exp.id, open_ids.pop(rng.randrange(len(open_ids))))
        elif action < 0.84:
            # as if written by a server of before (or a replica of before, mid-upgrade)
            table = rng.choice(["observations", "suggestions"])
            sql(
                f"UPDATE {table} SET grid_index = NULL WHERE experiment_id = %s AND id %% 3 = %s",
                (int(exp.id), rng.randrange(3)),
            )
        for count in (1, 2, 5):
            expected = _expected(storage, exp, count)
            assert _got(storage, exp, count) == expected, step
            outcomes.add(expected is None)
    assert all(storage.get_suggestion(exp.id, s.id).state is SuggestionState.EXPIRED for s in short)
    # both points found and a grid with too few left
    assert outcomes == {True, False}


def test_taken_indices_are_sorted_distinct_and_leave_other_experiments_out(backend):
    storage, _ = backend
    exp = storage.create_experiment(_grid_experiment())
    other = storage.create_experiment(_grid_experiment("other"))
    grid = Grid(exp)
    # the first eight points, each twice (by a suggestion and an explicit observation)
    points = [grid.point(k) for k in range(8)]
    made = storage.create_suggestions(exp.id, points, {}, LEASE)
    storage.create_observations(
        [Observation("", exp.id, None, p, [MetricValue("v", 1.0)]) for p in points]
    )
    storage.create_observation(Observation("", exp.id, made[0].id, points[0], []))
    storage.create_suggestions(other.id, [grid.point(20)], {}, LEASE)
    taken = storage.taken_grid_points(exp.id)
    assert list(taken.indices) == list(range(8)) and taken.unindexed == []
    # a hole, and points past it: the indices as a list
    storage.create_suggestions(exp.id, [grid.point(12), grid.point(10)], {}, LEASE)
    storage.create_observation(Observation("", exp.id, None, grid.point(15), []))
    storage.create_observation(Observation("", exp.id, None, {"x": 0.25, "n": 1, "c": "a"}, []))
    taken = storage.taken_grid_points(exp.id)
    assert list(taken.indices) == [*range(8), 10, 12, 15] and taken.unindexed == []
    assert next_points(exp, taken, 4) == [grid.point(k) for k in (8, 9, 11, 13)]
    assert list(storage.taken_grid_points(other.id).indices) == [20]


def test_runs_and_manual_points_are_indexed_as_they_are_stored(backend):
    """Every path that stores a GRID experiment's row keeps its index: a training run's
    suggestion and observation, a suggestion of explicit assignments (an int as a
    float), an observation off the grid."""
    storage, _ = backend
    exp = storage.create_experiment(dataclasses.replace(_grid_experiment(), project="p"))
    grid = Grid(exp)
    run = storage.create_training_run(
        TrainingRun("", "p", name="r", experiment_id=exp.id, assignments=grid.point(5)),
        suggestion=grid.point(5),
        lease_seconds=LEASE,
    )

    def complete(r: TrainingRun):
        done = dataclasses.replace(r, state=RunState.COMPLETED, values={"v": RunValue(2.0)})
        return done, Observation("", exp.id, r.suggestion_id, grid.point(5), [])

    storage.update_training_run(run.id, complete)
    storage.create_suggestions(exp.id, [{**grid.point(3), "n": float(grid.point(3)["n"])}], {}, 60)
    storage.create_observation(Observation("", exp.id, None, {"x": 0.1, "n": 9, "c": "a"}, []))
    taken = storage.taken_grid_points(exp.id)
    assert list(taken.indices) == [3, 5] and taken.unindexed == []


def test_rows_of_other_types_have_no_index(backend):
    storage, _ = backend
    exp = _grid_experiment()
    exp.type = ExperimentType.RANDOM
    exp = storage.create_experiment(exp)
    point = Grid(dataclasses.replace(exp, type=ExperimentType.GRID)).point(0)
    storage.create_suggestions(exp.id, [point], {}, LEASE)
    storage.create_observation(Observation("", exp.id, None, point, []))
    taken = storage.taken_grid_points(exp.id)
    assert list(taken.indices) == [] and taken.unindexed == [point, point]


# ---------------------------------------------------------------- migration


def _old_rows(exp: Experiment) -> tuple[list[dict], list[dict]]:
    """Observed points and open suggestions of a GRID experiment of before: points 0-5
    observed (2 twice, one more off the grid), 7 and 8 suggested and open."""
    grid = Grid(exp)
    observed = [grid.point(k) for k in (0, 1, 2, 2, 3, 4, 5)] + [{"x": 0.25, "n": 1, "c": "a"}]
    return observed, [grid.point(7), grid.point(8)]


def _carry_on(storage: Storage, exp_id: str, taken: int) -> None:
    """The experiment's remaining points are suggested once each, then none is left."""
    app = Application(storage)
    exp = storage.get_definition(exp_id)
    grid = Grid(exp)
    seen = [grid.index(s.assignments) for s in storage.load_history(exp_id)[1]]
    seen += [grid.index(o.assignments) for o in storage.load_history(exp_id)[0]]
    made = []
    for _ in range(grid.size - taken):
        (s,) = app.create_suggestions(exp_id, 1, {})
        made.append(grid.index(s.assignments))
        if len(made) % 2:
            obs = Observation("", exp_id, s.id, {}, [MetricValue("v", 1.0)])
            app.create_observation(exp_id, obs)
    assert made[0] == 6  # the first point the old rows leave free
    assert sorted(made + [i for i in set(seen) if i != OFF_GRID]) == list(range(grid.size))
    with pytest.raises(FailedPrecondition, match="0 unvisited"):
        app.create_suggestions(exp_id, 1, {})


def test_a_grid_experiment_of_the_previous_sqlite_schema_carries_on(tmp_path):
    path = tmp_path / "v5.db"
    db = sqlite3.connect(path)
    for script in MIGRATIONS[:5]:
        db.executescript(script)
    db.execute("PRAGMA user_version = 5")
    exp = _grid_experiment()
    db.execute(
        "INSERT INTO experiments (name, project, state, definition, create_time, update_time)"
        " VALUES ('old', '', 'active', ?, 0, 0)",
        (codec.definition_to_json(exp),),
    )
    observed, pending = _old_rows(exp)
    for k, point in enumerate(pending):
        db.execute(
            "INSERT INTO suggestions (experiment_id, sequence, assignments, state, metadata,"
            " create_time, lease_seconds, expire_time) VALUES (1, ?, ?, 'open', '{}', 0, ?, ?)",
            (k, codec.dumps(point), LEASE, time.time() + LEASE),
        )
    for point in observed:
        db.execute(
            "INSERT INTO observations (experiment_id, assignments, metric_values, failed,"
            " metadata, create_time) VALUES (1, ?, '[]', 1, '{}', 0)",
            (codec.dumps(point),),
        )
    db.execute("UPDATE experiments SET suggestion_count = 2, observation_count = 8")
    db.commit()
    db.close()
    storage = SqliteStorage(path)
    taken = storage.taken_grid_points("1")
    assert list(taken.indices) == [] and len(taken.unindexed) == 10
    _carry_on(storage, "1", taken=8)
    storage.close()


def test_a_grid_experiment_of_the_previous_postgres_schema_carries_on(postgres):
    from optserve.storage.migrations.postgres import MIGRATIONS as PG_MIGRATIONS
    from optserve.storage.postgres import PostgresStorage, SchemaOutdated

    url = postgres.create_database("grid_v4")
    exp = _grid_experiment()
    observed, pending = _old_rows(exp)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY,"
            " description TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        for migration in PG_MIGRATIONS[:4]:
            conn.execute(migration.sql)
            conn.execute(
                "INSERT INTO schema_migrations (version, description) VALUES (%s, 'old')",
                (migration.version,),
            )
        conn.execute(
            "INSERT INTO experiments (name, project, state, definition, create_time,"
            " update_time, suggestion_count, observation_count)"
            " VALUES ('old', '', 'active', %s, now(), now(), 2, 8)",
            (codec.definition_to_json(exp),),
        )
        for k, point in enumerate(pending):
            conn.execute(
                "INSERT INTO suggestions (experiment_id, sequence, assignments, state, metadata,"
                " create_time, lease_seconds, expire_time)"
                " VALUES (1, %s, %s, 'open', '{}', now(), %s, now() + interval '1 hour')",
                (k, codec.dumps(point), LEASE),
            )
        for point in observed:
            conn.execute(
                "INSERT INTO observations (experiment_id, assignments, metric_values, failed,"
                " metadata, create_time) VALUES (1, %s, '[]', true, '{}', now())",
                (codec.dumps(point),),
            )
    with pytest.raises(SchemaOutdated, match="version 4"):
        PostgresStorage(url)
    storage = PostgresStorage(url, migrate=True, pool_size=4)
    taken = storage.taken_grid_points("1")
    assert list(taken.indices) == [] and len(taken.unindexed) == 10
    _carry_on(storage, "1", taken=8)
    storage.close()
