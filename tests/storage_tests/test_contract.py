"""The Storage contract, run against every backend: SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import random
import sqlite3
import threading
import time

import pytest

from optserve.domain.best import best_observations
from optserve.domain.errors import Cancelled, FailedPrecondition, InvalidArgument, NotFound
from optserve.domain.model import (
    Bounds,
    Experiment,
    ExperimentState,
    Metric,
    MetricValue,
    Objective,
    Observation,
    Parameter,
    ParameterType,
    Strategy,
    SuggestionState,
)
from optserve.domain.tenancy import Role, Token
from optserve.storage import SqliteStorage, Storage, codec
from optserve.storage.base import DuplicateRequest, RequestKey, Write
from optserve.storage.sqlite import MIGRATIONS, SCHEMA_V1, SchemaTooNew

LEASE = 3600


@pytest.fixture(params=["sqlite", "postgres"])
def storage(request, tmp_path) -> Storage:
    if request.param == "sqlite":
        backend: Storage = SqliteStorage(tmp_path / "contract.db")
    else:
        from optserve.storage.postgres import PostgresStorage

        backend = PostgresStorage(request.getfixturevalue("postgres_url"), pool_size=12)
    yield backend
    backend.close()


def _experiment(name: str = "e", project: str = "") -> Experiment:
    return Experiment(
        id="",
        name=name,
        project=project,
        parameters=[Parameter("x", ParameterType.DOUBLE, Bounds(0, 1))],
        metrics=[Metric("v")],
        seed=11,
        metadata={"k": [1, "two"]},
    )


def _observe(
    storage: Storage, exp_id: str, suggestion_id: str | None, value: float = 1.0
) -> Observation:
    return storage.create_observation(
        Observation("", exp_id, suggestion_id, {"x": 0.5}, [MetricValue("v", value, 0.1)])
    )


def test_experiment_round_trip_and_progress(storage):
    exp = storage.create_experiment(_experiment())
    again = storage.get_experiment(exp.id)
    assert again.name == "e" and again.seed == 11 and again.metadata == {"k": [1, "two"]}
    assert again.parameters == exp.parameters and again.metrics == exp.metrics
    s1, s2 = storage.create_suggestions(exp.id, [{"x": 0.1}, {"x": 0.2}], {"m": 1}, LEASE)
    assert (s1.sequence, s2.sequence) == (0, 1) and s1.metadata == {"m": 1}
    _observe(storage, exp.id, s1.id)
    storage.create_observation(Observation("", exp.id, None, {"x": 0.3}, [], failed=True))
    progress = storage.get_experiment(exp.id).progress
    assert (
        progress.observation_count,
        progress.failed_observation_count,
        progress.open_suggestion_count,
    ) == (2, 1, 1)


def test_unknown_ids_raise_not_found(storage):
    exp = storage.create_experiment(_experiment())
    with pytest.raises(NotFound):
        storage.get_experiment("999")
    with pytest.raises(NotFound):
        storage.get_experiment("abc")
    with pytest.raises(NotFound):
        storage.get_suggestion(exp.id, "5")
    with pytest.raises(NotFound):
        storage.get_observation(exp.id, "5")
    with pytest.raises(NotFound):
        storage.create_suggestions("999", [{"x": 0.1}], {}, LEASE)


def test_observation_closes_its_suggestion_once(storage):
    exp = storage.create_experiment(_experiment())
    (s,) = storage.create_suggestions(exp.id, [{"x": 0.1}], {}, LEASE)
    _observe(storage, exp.id, s.id)
    assert storage.get_suggestion(exp.id, s.id).state is SuggestionState.CLOSED
    with pytest.raises(FailedPrecondition):
        _observe(storage, exp.id, s.id)
    with pytest.raises(FailedPrecondition):
        storage.delete_suggestion(exp.id, s.id)
    assert storage.get_experiment(exp.id).progress.observation_count == 1


def test_racing_observations_close_a_suggestion_exactly_once(storage):
    exp = storage.create_experiment(_experiment())
    (s,) = storage.create_suggestions(exp.id, [{"x": 0.1}], {}, LEASE)
    wins, losses = [], []

    def race() -> None:
        try:
            wins.append(_observe(storage, exp.id, s.id))
        except FailedPrecondition:
            losses.append(1)

    threads = [threading.Thread(target=race) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(losses) == 7


def test_drawn_suggestions_take_the_sequence_numbers_of_their_write(storage):
    exp = storage.create_experiment(_experiment())
    storage.create_suggestions(exp.id, [{"x": 0.0}], {}, LEASE)
    seen: list[int] = []

    def draw(first: int) -> list[dict]:
        seen.append(first)
        return [{"x": first / 100}, {"x": (first + 1) / 100}]

    made = storage.create_suggestions(exp.id, draw, {}, LEASE)
    assert seen == [1]
    assert [(s.sequence, s.assignments) for s in made] == [(1, {"x": 0.01}), (2, {"x": 0.02})]

    def fails(first: int) -> list[dict]:
        raise Cancelled("gone")

    with pytest.raises(Cancelled):
        storage.create_suggestions(exp.id, fails, {}, LEASE)
    # nothing written: the next numbers are still free
    (after,) = storage.create_suggestions(exp.id, lambda first: [{"x": first / 100}], {}, LEASE)
    assert after.sequence == 3 and after.assignments == {"x": 0.03}
    assert storage.get_experiment(exp.id).progress.open_suggestion_count == 4


def test_concurrent_drawn_suggestions_never_share_a_number(storage):
    # without any experiment lock: each write draws at the numbers it assigns
    exp = storage.create_experiment(_experiment())
    made, errors = [], []

    def draw(first: int) -> list[dict]:
        time.sleep(0.001)  # a draw that takes time, so writers overlap
        return [{"x": first / 1000}, {"x": (first + 1) / 1000}]

    def client() -> None:
        try:
            for _ in range(5):
                made.extend(storage.create_suggestions(exp.id, draw, {}, LEASE))
        except Exception as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(s.sequence for s in made) == list(range(80))
    assert all(s.assignments == {"x": s.sequence / 1000} for s in made)


def test_definitions_read_after_a_change_are_the_changed_ones(storage):
    exp = storage.create_experiment(_experiment())
    first = storage.get_definition(exp.id)
    assert first.state is ExperimentState.ACTIVE and first.name == "e"
    first.name = "edited by the caller"  # the caller's copy, not the stored one
    assert storage.get_definition(exp.id).name == "e"
    changed = storage.get_experiment(exp.id)
    changed.state, changed.name = ExperimentState.ARCHIVED, "renamed"
    storage.update_experiment(changed)
    again = storage.get_definition(exp.id)
    assert (again.state, again.name) == (ExperimentState.ARCHIVED, "renamed")
    storage.delete_experiment(exp.id)
    with pytest.raises(NotFound):
        storage.get_definition(exp.id)


def test_paging_and_filters(storage):
    made = [
        storage.create_experiment(_experiment(f"e{i}", project="p" if i % 2 else "q")).id
        for i in range(7)
    ]
    seen, token = [], ""
    while True:
        page = storage.list_experiments("p", None, 2, token)
        seen += [e.id for e in page.items]
        token = page.next_token
        if not token:
            break
    assert seen == [i for k, i in enumerate(made) if k % 2][::-1]
    archived = storage.get_experiment(made[0])
    archived.state = ExperimentState.ARCHIVED
    storage.update_experiment(archived)
    assert [e.id for e in storage.list_experiments("", ExperimentState.ARCHIVED, 10, "").items] == [
        made[0]
    ]
    with pytest.raises(InvalidArgument):
        storage.list_experiments("", None, 2, "not-a-token")


def test_delete_cascades_and_sequence_survives_deleted_suggestions(storage):
    exp = storage.create_experiment(_experiment())
    a, b = storage.create_suggestions(exp.id, [{"x": 0.1}, {"x": 0.2}], {}, LEASE)
    storage.delete_suggestion(exp.id, a.id)
    assert storage.count_suggestions(exp.id) == 2
    (c,) = storage.create_suggestions(exp.id, [{"x": 0.3}], {}, LEASE)
    assert c.sequence == 2
    o = _observe(storage, exp.id, b.id)
    storage.delete_observation(exp.id, o.id)
    assert storage.get_suggestion(exp.id, b.id).state is SuggestionState.CLOSED
    storage.delete_experiment(exp.id)
    with pytest.raises(NotFound):
        storage.get_suggestion(exp.id, c.id)
    with pytest.raises(NotFound):
        storage.load_history(exp.id)


def test_history_is_ordered_and_complete(storage):
    exp = storage.create_experiment(_experiment())
    points = [{"x": i / 10} for i in range(5)]
    suggestions = storage.create_suggestions(exp.id, points, {}, LEASE)
    for k, s in enumerate(suggestions[:3]):
        _observe(storage, exp.id, s.id, value=float(k))
    observations, pending = storage.load_history(exp.id)
    assert [o.value_of("v") for o in observations] == [0.0, 1.0, 2.0]
    assert observations[0].values[0].stddev == 0.1
    assert [s.id for s in pending] == [s.id for s in suggestions[3:]]


def test_data_survives_reopening(tmp_path):
    path = tmp_path / "reopen.db"
    first = SqliteStorage(path)
    exp = first.create_experiment(_experiment())
    (s,) = first.create_suggestions(exp.id, [{"x": 0.4}], {}, LEASE)
    _observe(first, exp.id, s.id)
    first.close()
    second = SqliteStorage(path)
    observations, pending = second.load_history(exp.id)
    assert len(observations) == 1 and not pending and observations[0].assignments == {"x": 0.5}
    second.close()


def _expire(storage: Storage, exp_id: str, count: int = 1) -> list:
    """Suggestions with a one-second lease, returned once it has run out."""
    made = storage.create_suggestions(exp_id, [{"x": 0.1 * (k + 1)} for k in range(count)], {}, 1)
    time.sleep(1.05)
    return made


def test_leases_expire_without_writes(storage):
    exp = storage.create_experiment(_experiment())
    (kept,) = storage.create_suggestions(exp.id, [{"x": 0.9}], {}, LEASE)
    assert kept.state is SuggestionState.OPEN and kept.lease_seconds == LEASE
    assert kept.expire_time is not None and kept.create_time is not None
    assert (kept.expire_time - kept.create_time).total_seconds() == pytest.approx(LEASE)
    (gone,) = _expire(storage, exp.id)
    assert storage.get_suggestion(exp.id, gone.id).state is SuggestionState.EXPIRED
    _, pending = storage.load_history(exp.id)
    assert [s.id for s in pending] == [kept.id]
    assert storage.get_experiment(exp.id).progress.open_suggestion_count == 1
    listed = storage.list_suggestions(exp.id, SuggestionState.EXPIRED, 10, "").items
    assert [s.id for s in listed] == [gone.id]
    listed = storage.list_suggestions(exp.id, SuggestionState.OPEN, 10, "").items
    assert [s.id for s in listed] == [kept.id]


def test_a_read_experiment_follows_writes_and_lease_expiries(storage):
    """Reads between writes may come from a cache: a write, or a lease running
    out with no write at all, is seen by the next read."""
    exp = storage.create_experiment(_experiment())
    assert storage.get_experiment(exp.id).progress.open_suggestion_count == 0
    storage.create_suggestions(exp.id, [{"x": 0.9}], {}, LEASE)
    storage.create_suggestions(exp.id, [{"x": 0.1}], {}, 1)
    first = storage.get_experiment(exp.id)
    assert first.progress.open_suggestion_count == 2
    first.name = "changed by the caller"
    assert storage.get_experiment(exp.id).name == "e"
    time.sleep(1.05)
    assert storage.get_experiment(exp.id).progress.open_suggestion_count == 1
    storage.create_observation(Observation("", exp.id, None, {"x": 0.5}, [MetricValue("v", 1)]))
    after = storage.get_experiment(exp.id)
    assert after.progress.observation_count == 1
    assert after.progress.open_suggestion_count == 1
    (listed,) = storage.list_experiments("", None, 10, "").items
    assert listed.progress.observation_count == 1
    storage.create_observation(Observation("", exp.id, None, {"x": 0.6}, [MetricValue("v", 5)]))
    (listed,) = storage.list_experiments("", None, 10, "").items
    assert listed.progress.observation_count == 2
    assert listed.progress.best_observation is not None
    assert listed.progress.best_observation.assignments == {"x": 0.6}


def test_taken_grid_points_are_unindexed_outside_grid_experiments(storage):
    """Rows of other types keep no grid index: every observation and live suggestion
    is read back as assignments."""
    exp = storage.create_experiment(_experiment())
    (_gone,) = _expire(storage, exp.id)
    observed, deleted, _kept = storage.create_suggestions(
        exp.id, [{"x": 0.4}, {"x": 0.6}, {"x": 0.7}], {}, LEASE
    )
    storage.create_observation(
        Observation("", exp.id, observed.id, {"x": 0.4}, [MetricValue("v", 1)])
    )
    storage.create_observation(Observation("", exp.id, None, {"x": 0.8}, [], failed=True))
    storage.delete_suggestion(exp.id, deleted.id)
    taken = storage.taken_grid_points(exp.id)
    observations, pending = storage.load_history(exp.id)
    expected = [o.assignments for o in observations] + [s.assignments for s in pending]
    assert taken.indices == []
    assert sorted(t["x"] for t in taken.unindexed) == sorted(t["x"] for t in expected)
    assert sorted(t["x"] for t in expected) == [0.4, 0.7, 0.8]
    empty = storage.taken_grid_points(storage.create_experiment(_experiment()).id)
    assert (empty.indices, empty.unindexed) == ([], [])
    with pytest.raises(NotFound):
        storage.taken_grid_points("no-such-experiment")
    with pytest.raises(NotFound):
        storage.taken_grid_points("12345")


def test_expired_suggestion_still_takes_its_observation(storage):
    exp = storage.create_experiment(_experiment())
    (gone,) = _expire(storage, exp.id)
    obs = _observe(storage, exp.id, gone.id)
    assert obs.suggestion_id == gone.id
    assert storage.get_suggestion(exp.id, gone.id).state is SuggestionState.CLOSED
    with pytest.raises(FailedPrecondition):
        _observe(storage, exp.id, gone.id)


def test_renewing_moves_the_expiry_and_refuses_expired_or_closed(storage):
    exp = storage.create_experiment(_experiment())
    (s,) = storage.create_suggestions(exp.id, [{"x": 0.2}], {}, 60)
    renewed = storage.renew_suggestion(exp.id, s.id, 600)
    assert renewed.lease_seconds == 600 and renewed.expire_time > s.expire_time
    again = storage.renew_suggestion(exp.id, s.id, None)
    assert again.lease_seconds == 600 and again.expire_time >= renewed.expire_time
    (gone,) = _expire(storage, exp.id)
    with pytest.raises(FailedPrecondition, match="expired"):
        storage.renew_suggestion(exp.id, gone.id, None)
    _observe(storage, exp.id, s.id)
    with pytest.raises(FailedPrecondition, match="closed"):
        storage.renew_suggestion(exp.id, s.id, None)
    with pytest.raises(NotFound):
        storage.renew_suggestion(exp.id, "999", None)


def test_a_request_is_recorded_with_its_result_once(storage):
    exp = storage.create_experiment(_experiment())
    key = RequestKey("p", "r1", "CreateSuggestions", "f")
    made = storage.create_suggestions(exp.id, [{"x": 0.5}], {"m": "v"}, LEASE, Write(key))
    recorded = storage.find_request("p", "r1")
    assert recorded is not None and recorded.key == key
    assert recorded.result == made
    with pytest.raises(DuplicateRequest):
        storage.create_suggestions(exp.id, [{"x": 0.6}], {}, LEASE, Write(key))
    # the refused duplicate wrote nothing
    assert storage.count_suggestions(exp.id) == 1
    assert storage.find_request("other principal", "r1") is None


def test_recorded_results_round_trip_every_kind(storage):
    exp = storage.create_experiment(_experiment(), Write(RequestKey("p", "e", "m", "f")))
    recorded = storage.find_request("p", "e").result
    assert recorded.id == exp.id and recorded.parameters == exp.parameters
    assert recorded.create_time == exp.create_time and recorded.metadata == exp.metadata
    obs = storage.create_observation(
        Observation("", exp.id, None, {"x": 0.3}, [MetricValue("v", 2.0, None)], metadata={"a": 1}),
        Write(RequestKey("p", "o", "m", "f")),
    )
    assert storage.find_request("p", "o").result == obs
    storage.delete_observation(exp.id, obs.id, Write(RequestKey("p", "d", "m", "f")))
    recorded = storage.find_request("p", "d")
    assert recorded is not None and recorded.result is None


def test_a_write_whose_call_ended_rolls_back(storage):
    exp = storage.create_experiment(_experiment())
    with pytest.raises(Cancelled):
        storage.create_suggestions(exp.id, [{"x": 0.5}], {}, LEASE, Write(alive=lambda: False))
    key = RequestKey("p", "late", "CreateObservation", "f")
    with pytest.raises(Cancelled):
        storage.create_observation(
            Observation("", exp.id, None, {"x": 0.3}, [MetricValue("v", 1.0, None)]),
            Write(key, alive=lambda: False),
        )
    assert storage.count_suggestions(exp.id) == 0
    assert storage.load_history(exp.id) == ([], [])
    assert storage.find_request("p", "late") is None


def test_tokens_are_found_by_hash_until_revoked(storage):
    token = storage.create_token(Token("", "ci", Role.WRITE, ["a", "b"]), "hash-1")
    assert token.id and token.create_time is not None and token.revoke_time is None
    assert storage.token_by_hash("hash-1") == token
    assert storage.token_by_hash("hash-2") is None
    revoked = storage.revoke_token(token.id)
    assert revoked.revoke_time is not None
    assert storage.token_by_hash("hash-1") is None
    assert storage.revoke_token(token.id) == revoked  # idempotent
    assert [t.id for t in storage.list_tokens()] == [token.id]
    with pytest.raises(NotFound):
        storage.revoke_token("42")


def test_listing_can_be_limited_to_projects(storage):
    ids = {p: storage.create_experiment(_experiment(project=p)).id for p in ("a", "b", "c")}
    page = storage.list_experiments("", None, 10, "", frozenset({"a", "c"}))
    assert sorted(e.id for e in page.items) == sorted([ids["a"], ids["c"]])
    assert storage.list_experiments("b", None, 10, "", frozenset({"a"})).items == []
    assert storage.experiment_project(ids["b"]) == "b"
    with pytest.raises(NotFound):
        storage.experiment_project("999")


def test_a_database_of_the_first_schema_is_migrated(tmp_path):
    path = tmp_path / "v1.db"
    db = sqlite3.connect(path)
    db.executescript(SCHEMA_V1)
    db.execute(
        "INSERT INTO experiments (name, project, state, definition, create_time, update_time)"
        " VALUES ('old', '', 'active', ?, 0, 0)",
        (codec.definition_to_json(_experiment()),),
    )
    db.execute(
        "INSERT INTO suggestions (experiment_id, sequence, assignments, state, metadata,"
        " create_time) VALUES (1, 0, '{\"x\": 0.5}', 'open', '{}', 0)"
    )
    db.commit()
    db.close()
    storage = SqliteStorage(path)
    exp = storage.get_experiment("1")
    assert exp.name == "old" and exp.suggestion_lease_seconds is None
    # suggestions from before leases never expire
    (s,) = storage.load_history("1")[1]
    assert s.state is SuggestionState.OPEN and s.expire_time is None
    storage.close()


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "future.db"
    SqliteStorage(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 999")
    db.close()
    with pytest.raises(SchemaTooNew, match="999"):
        SqliteStorage(path)


def _brute_best(storage: Storage, exp_id: str) -> str | None:
    exp = storage.get_experiment(exp_id)
    exp.num_solutions = 1
    top, _ = best_observations(exp, storage.load_history(exp_id)[0])
    return top[0].id if top else None


def test_progress_and_best_are_kept_exactly_through_every_write(storage):
    """The materialized counters and incumbent equal a recomputation from the
    whole history after each of a random mix of creates, updates and deletes,
    ties and threshold changes included."""
    rng = random.Random(3)
    exp = _experiment()
    exp.metrics = [Metric("v", Objective.MINIMIZE), Metric("c", threshold=0.0)]
    exp.metrics[1].strategy = Strategy.CONSTRAINT
    exp = storage.create_experiment(exp)
    live: list[str] = []
    for step in range(120):
        action = rng.random()
        if action < 0.6 or not live:
            failed = rng.random() < 0.15
            values = (
                []
                if failed
                else [
                    MetricValue("v", float(rng.randint(0, 5)), None),
                    MetricValue("c", rng.uniform(-1, 1), None),
                ]
            )
            obs = storage.create_observation(
                Observation("", exp.id, None, {"x": rng.random()}, values, failed=failed)
            )
            live.append(obs.id)
        elif action < 0.75:
            target = storage.get_observation(exp.id, rng.choice(live))
            target.failed = not target.failed
            target.values = (
                []
                if target.failed
                else [
                    MetricValue("v", float(rng.randint(0, 5)), None),
                    MetricValue("c", rng.uniform(-1, 1), None),
                ]
            )
            storage.update_observation(target)
        elif action < 0.9:
            gone = live.pop(rng.randrange(len(live)))
            storage.delete_observation(exp.id, gone)
        else:
            current = storage.get_experiment(exp.id)
            moved = dataclasses.replace(current.metrics[1], threshold=rng.uniform(-0.5, 0.5))
            current.metrics = [current.metrics[0], moved]
            storage.update_experiment(current)
        got = storage.get_experiment(exp.id)
        history = storage.load_history(exp.id)[0]
        assert got.progress.observation_count == len(history), step
        assert got.progress.failed_observation_count == sum(o.failed for o in history), step
        best_obs = got.progress.best_observation
        assert (best_obs.id if best_obs else None) == _brute_best(storage, exp.id), step


def test_migration_fills_progress_and_best_of_existing_experiments(tmp_path):
    path = tmp_path / "v2.db"
    db = sqlite3.connect(path)
    for script in MIGRATIONS[:2]:
        db.executescript(script)
    db.execute("PRAGMA user_version = 2")
    db.execute(
        "INSERT INTO experiments (name, project, state, definition, create_time, update_time)"
        " VALUES ('old', '', 'active', ?, 0, 0)",
        (codec.definition_to_json(_experiment()),),
    )
    for k, v in enumerate((1.0, 3.0, 2.0)):
        db.execute(
            "INSERT INTO observations (experiment_id, assignments, metric_values, failed,"
            " metadata, create_time) VALUES (1, '{}', ?, 0, '{}', ?)",
            (codec.values_to_json([MetricValue("v", v, None)]), k),
        )
    db.execute(
        "INSERT INTO observations (experiment_id, assignments, metric_values, failed,"
        " metadata, create_time) VALUES (1, '{}', '[]', 1, '{}', 9)"
    )
    db.commit()
    db.close()
    storage = SqliteStorage(path)
    progress = storage.get_experiment("1").progress
    assert (progress.observation_count, progress.failed_observation_count) == (4, 1)
    assert progress.best_observation is not None
    assert progress.best_observation.value_of("v") == 3.0
    storage.close()


def test_experiment_lock_gives_each_holder_the_next_sequence(storage):
    """Under the lock, the count read before the write is the sequence the write gets:
    what makes a seeded suggestion unique. Other experiments are not held up."""
    exp = storage.create_experiment(_experiment())
    other = storage.create_experiment(_experiment())
    seen: list[tuple[int, int]] = []
    events: list[str] = []

    def make(k: int) -> None:
        with storage.experiment_lock(exp.id):
            events.append("enter")
            before = storage.count_suggestions(exp.id)
            storage.load_history(exp.id)
            time.sleep(0.002)  # room for another thread to get in, were the lock broken
            (s,) = storage.create_suggestions(exp.id, [{"x": k / 100}], {}, LEASE)
            seen.append((before, s.sequence))
            events.append("exit")

    threads = [threading.Thread(target=make, args=(k,)) for k in range(24)]
    for t in threads:
        t.start()
    with storage.experiment_lock(other.id):
        storage.create_suggestions(other.id, [{"x": 0.5}], {}, LEASE)
    for t in threads:
        t.join()
    assert all(before == sequence for before, sequence in seen)
    assert sorted(s for _, s in seen) == list(range(24))
    assert events == ["enter", "exit"] * 24
    assert storage.count_suggestions(other.id) == 1


def test_concurrent_writes_with_one_request_id_apply_once(storage):
    exp = storage.create_experiment(_experiment())
    key = RequestKey("p", "same", "CreateObservation", "f")
    wins: list[Observation] = []
    duplicates: list[DuplicateRequest] = []

    def write() -> None:
        try:
            wins.append(
                storage.create_observation(
                    Observation("", exp.id, None, {"x": 0.5}, [MetricValue("v", 1.0, None)]),
                    Write(key),
                )
            )
        except DuplicateRequest as error:
            duplicates.append(error)

    threads = [threading.Thread(target=write) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(duplicates) == 5
    assert [o.id for o in storage.load_history(exp.id)[0]] == [wins[0].id]
    assert storage.find_request("p", "same").result == wins[0]
