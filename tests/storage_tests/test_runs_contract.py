"""The Storage contract of projects, training runs, queued suggestions, batch
observations and suggestion metadata, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import sqlite3

import pytest

from optserve.domain.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from optserve.domain.model import (
    Bounds,
    Experiment,
    ExperimentState,
    Metric,
    MetricValue,
    Observation,
    Parameter,
    ParameterType,
    Prior,
    PriorType,
    SuggestionState,
)
from optserve.domain.runs import Checkpoint, Project, RunState, RunValue, TrainingRun
from optserve.storage import SqliteStorage, Storage, codec
from optserve.storage.base import DuplicateRequest, RequestKey, Write
from optserve.storage.sqlite import MIGRATIONS

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


def _experiment(project: str = "", runs_only: bool = False) -> Experiment:
    return Experiment(
        id="",
        name="e",
        project=project,
        parameters=[
            Parameter(
                "x",
                ParameterType.DOUBLE,
                Bounds(0, 1),
                prior=Prior(PriorType.NORMAL, mean=0.5, scale=0.2),
                default_value=0.25,
            )
        ],
        metrics=[Metric("v")],
        runs_only=runs_only,
        observation_budget=5,
    )


def _obs(exp_id: str, suggestion: str | None, value: float) -> Observation:
    return Observation(
        "", exp_id, suggestion, {} if suggestion else {"x": 0.5}, [MetricValue("v", value)]
    )


def test_new_experiment_fields_round_trip(storage):
    exp = storage.create_experiment(_experiment("p", runs_only=True))
    again = storage.get_experiment(exp.id)
    assert again.runs_only and again.parameters[0].prior == Prior(PriorType.NORMAL, 0.5, 0.2)
    assert again.parameters[0].default_value == 0.25
    deleted = storage.update_experiment(dataclasses.replace(again, state=ExperimentState.DELETED))
    assert storage.get_experiment(exp.id).state is ExperimentState.DELETED == deleted.state


def test_projects(storage):
    made = storage.create_project(Project("alpha", "Alpha", {"k": 1}))
    assert (made.id, made.name, made.metadata) == ("alpha", "Alpha", {"k": 1}) and made.create_time
    with pytest.raises(AlreadyExists):
        storage.create_project(Project("alpha", "Again"))
    with pytest.raises(NotFound):
        storage.get_project("beta")
    with pytest.raises(NotFound):
        storage.update_project(Project("beta", "B"))
    # an experiment or run naming a project registers it, without changing an existing one
    storage.create_experiment(_experiment("beta"))
    storage.create_training_run(TrainingRun("", "gamma", name="r"))
    storage.create_experiment(_experiment("alpha"))
    assert [p.id for p in storage.list_projects()] == ["alpha", "beta", "gamma"]
    assert [p.id for p in storage.list_projects(frozenset({"gamma"}))] == ["gamma"]
    assert storage.get_project("alpha").name == "Alpha"
    assert storage.update_project(Project("alpha", "A2", {})).name == "A2"


def test_a_run_of_an_experiment_gets_a_suggestion_and_reports_once(storage):
    exp = storage.create_experiment(_experiment("p", runs_only=True))
    run = storage.create_training_run(
        TrainingRun("", "p", name="r", experiment_id=exp.id, assignments={"x": 0.3}),
        suggestion={"x": 0.3},
        lease_seconds=LEASE,
    )
    assert run.suggestion_id and run.state is RunState.ACTIVE
    s = storage.get_suggestion(exp.id, run.suggestion_id)
    assert s.assignments == {"x": 0.3} and s.state is SuggestionState.OPEN
    assert storage.count_suggestions(exp.id) == 1
    progress = storage.get_experiment(exp.id).progress
    assert (progress.total_run_count, progress.finished_run_count) == (1, 0)

    def complete(r: TrainingRun):
        done = dataclasses.replace(r, state=RunState.COMPLETED, values={"v": RunValue(2.0, 0.1)})
        return done, _obs(exp.id, r.suggestion_id, 2.0)

    done = storage.update_training_run(run.id, complete)
    assert done.state is RunState.COMPLETED and done.observation_id and done.complete_time
    assert storage.get_suggestion(exp.id, run.suggestion_id).state is SuggestionState.CLOSED
    assert storage.get_observation(exp.id, done.observation_id).values[0].value == 2.0
    progress = storage.get_experiment(exp.id).progress
    assert (progress.total_run_count, progress.finished_run_count, progress.observation_count) == (
        1,
        1,
        1,
    )
    # a change that raises writes nothing, the run nor an observation
    with pytest.raises(FailedPrecondition):
        storage.update_training_run(
            run.id, lambda r: (dataclasses.replace(r, name="z"), _obs(exp.id, r.suggestion_id, 3.0))
        )
    assert storage.get_training_run(run.id).name == "r"
    assert storage.get_experiment(exp.id).progress.observation_count == 1


def test_run_documents_checkpoints_listing_and_deleted(storage):
    runs = [storage.create_training_run(TrainingRun("", "p", name=f"r{i}")) for i in range(5)]
    with pytest.raises(NotFound):
        storage.get_training_run("999")
    with pytest.raises(NotFound):
        storage.update_training_run("999", lambda r: (r, None))

    def log(r: TrainingRun):
        return (
            dataclasses.replace(
                r,
                metadata={"a": 1},
                extras={"logs": {"stdout": {"content": "hi"}}},
                checkpoints=[Checkpoint("1", {"m": RunValue(0.5)}, {"epoch": 1})],
                deleted=True,
            ),
            None,
        )

    storage.update_training_run(runs[1].id, log)
    got = storage.get_training_run(runs[1].id)
    assert got.metadata == {"a": 1} and got.extras["logs"]["stdout"]["content"] == "hi"
    assert got.checkpoints[0].values["m"].value == 0.5 and got.deleted
    page = storage.list_training_runs("p", None, 2, "")
    assert [r.id for r in page.items] == [runs[0].id, runs[2].id] and page.next_token
    rest = storage.list_training_runs("p", None, 10, page.next_token)
    assert [r.id for r in rest.items] == [runs[3].id, runs[4].id] and not rest.next_token
    assert [r.id for r in storage.list_training_runs("p", None, 10, "", True).items] == [runs[1].id]
    assert len(storage.list_training_runs("p", None, 10, "", None).items) == 5
    with pytest.raises(InvalidArgument):
        storage.list_training_runs("p", None, 10, "garbage!")


def test_queued_suggestions_are_consumed_atomically(storage):
    exp = storage.create_experiment(_experiment())
    q1 = storage.create_queued_suggestion(exp.id, {"x": 0.1})
    q2 = storage.create_queued_suggestion(exp.id, {"x": 0.2})
    assert [q.id for q in storage.list_queued_suggestions(exp.id)] == [q1.id, q2.id]
    (s,) = storage.create_suggestions(exp.id, [{"x": 0.1}], {}, LEASE, queued=[q1.id])
    assert s.assignments == {"x": 0.1}
    assert [q.id for q in storage.list_queued_suggestions(exp.id)] == [q2.id]
    # a queued id already gone: nothing is written
    with pytest.raises(NotFound):
        storage.create_suggestions(exp.id, [{"x": 0.1}], {}, LEASE, queued=[q1.id])
    assert storage.count_suggestions(exp.id) == 1
    storage.delete_queued_suggestion(exp.id, q2.id)
    with pytest.raises(NotFound):
        storage.delete_queued_suggestion(exp.id, q2.id)
    other = storage.create_experiment(_experiment())
    q3 = storage.create_queued_suggestion(other.id, {"x": 0.3})
    with pytest.raises(NotFound):
        storage.delete_queued_suggestion(exp.id, q3.id)


def test_batch_observations_all_or_nothing(storage):
    exp = storage.create_experiment(_experiment())
    (s,) = storage.create_suggestions(exp.id, [{"x": 0.5}], {}, LEASE)
    made = storage.create_observations(
        [_obs(exp.id, None, 1.0), _obs(exp.id, s.id, 3.0), _obs(exp.id, None, 2.0)]
    )
    assert [o.values[0].value for o in made] == [1.0, 3.0, 2.0]
    progress = storage.get_experiment(exp.id).progress
    assert progress.observation_count == 3 and progress.best_observation.id == made[1].id
    assert (progress.first_observation.id, progress.last_observation.id) == (made[0].id, made[2].id)
    with pytest.raises(FailedPrecondition):
        storage.create_observations([_obs(exp.id, None, 9.0), _obs(exp.id, s.id, 9.0)])
    assert storage.get_experiment(exp.id).progress.observation_count == 3
    result = codec.result_from_json(codec.result_to_json(made))
    assert [o.id for o in result] == [o.id for o in made]


def test_suggestion_metadata_update(storage):
    exp = storage.create_experiment(_experiment())
    (s,) = storage.create_suggestions(exp.id, [{"x": 0.5}], {"a": 1}, LEASE)
    assert storage.update_suggestion_metadata(exp.id, s.id, {"b": "2"}).metadata == {"b": "2"}
    assert storage.get_suggestion(exp.id, s.id).metadata == {"b": "2"}
    with pytest.raises(NotFound):
        storage.update_suggestion_metadata(exp.id, "999", {})


def test_migration_to_v4_registers_existing_projects(tmp_path):
    path = tmp_path / "v3.db"
    db = sqlite3.connect(path)
    for script in MIGRATIONS[:3]:
        db.executescript(script)
    db.execute("PRAGMA user_version = 3")
    for project in ("old", "old", ""):
        db.execute(
            "INSERT INTO experiments (name, project, state, definition, create_time, update_time)"
            " VALUES ('e', ?, 'active', ?, 5, 5)",
            (project, codec.definition_to_json(_experiment(project))),
        )
    db.commit()
    db.close()
    storage = SqliteStorage(path)
    assert [p.id for p in storage.list_projects()] == ["old"]
    assert storage.get_experiment("1").runs_only is False
    storage.close()


def _key(request_id: str) -> Write:
    return Write(RequestKey("p", request_id, "M", "f"))


def test_every_write_of_this_module_records_its_result_once(storage):
    """Each write given a request records what it returned; a second write with the
    same id raises DuplicateRequest and changes nothing."""
    project = storage.create_project(Project("rec", "Rec", {"k": 1}), _key("project"))
    assert storage.find_request("p", "project").result == project
    renamed = storage.update_project(Project("rec", "Renamed", {}), _key("rename"))
    assert storage.find_request("p", "rename").result == renamed
    with pytest.raises(DuplicateRequest):
        storage.update_project(Project("rec", "Other", {}), _key("rename"))
    assert storage.get_project("rec").name == "Renamed"

    exp = storage.create_experiment(_experiment("rec", runs_only=True))
    queued = storage.create_queued_suggestion(exp.id, {"x": 0.1}, _key("queue"))
    assert storage.find_request("p", "queue").result == queued
    with pytest.raises(DuplicateRequest):
        storage.create_queued_suggestion(exp.id, {"x": 0.2}, _key("queue"))
    assert storage.list_queued_suggestions(exp.id) == [queued]

    run = storage.create_training_run(
        TrainingRun("", "rec", name="r", experiment_id=exp.id, assignments={"x": 0.1}),
        {"x": 0.1},
        LEASE,
        _key("run"),
        queued=[queued.id],
    )
    assert storage.find_request("p", "run").result == run
    assert storage.list_queued_suggestions(exp.id) == []  # consumed in the same transaction
    with pytest.raises(DuplicateRequest):
        storage.create_training_run(TrainingRun("", "rec", name="again"), write=_key("run"))
    assert len(storage.list_training_runs("rec", None, 10, "").items) == 1

    def checkpoint(r: TrainingRun):
        c = Checkpoint("1", {"v": RunValue(0.5, 0.1)}, {"epoch": 1})
        return dataclasses.replace(r, checkpoints=[c], metadata={"m": [1, 2]}), None

    updated = storage.update_training_run(run.id, checkpoint, _key("checkpoint"))
    recorded = storage.find_request("p", "checkpoint").result
    assert recorded == updated and recorded.checkpoints[0].create_time is None
    with pytest.raises(DuplicateRequest):
        storage.update_training_run(
            run.id, lambda r: (dataclasses.replace(r, name="z"), None), _key("checkpoint")
        )
    assert storage.get_training_run(run.id).name == "r"

    s = storage.get_suggestion(exp.id, run.suggestion_id)
    tagged = storage.update_suggestion_metadata(exp.id, s.id, {"t": 1}, _key("tag"))
    assert storage.find_request("p", "tag").result == tagged
    renewed = storage.renew_suggestion(exp.id, s.id, 60, _key("renew"))
    assert storage.find_request("p", "renew").result == renewed
    with pytest.raises(DuplicateRequest):
        storage.renew_suggestion(exp.id, s.id, 120, _key("renew"))
    assert storage.get_suggestion(exp.id, s.id).lease_seconds == 60

    q2 = storage.create_queued_suggestion(exp.id, {"x": 0.3})
    storage.delete_queued_suggestion(exp.id, q2.id, _key("unqueue"))
    recorded = storage.find_request("p", "unqueue")
    assert recorded is not None and recorded.result is None
    q3 = storage.create_queued_suggestion(exp.id, {"x": 0.4})
    with pytest.raises(DuplicateRequest):
        storage.delete_queued_suggestion(exp.id, q3.id, _key("unqueue"))
    assert storage.list_queued_suggestions(exp.id) == [q3]


def test_migration_to_v5_gives_run_observations_their_suggestions_assignments(tmp_path):
    """Observations of ended runs were stored with empty assignments; only those take
    their suggestion's, failed ones included, and progress stays as it was."""
    path = tmp_path / "v4.db"
    db = sqlite3.connect(path)
    for script in MIGRATIONS[:4]:
        db.executescript(script)
    db.execute("PRAGMA user_version = 4")
    db.execute(
        "INSERT INTO experiments (name, project, state, definition, create_time, update_time,"
        " observation_count, failed_count, best_observation_id)"
        " VALUES ('e', '', 'active', ?, 5, 5, 4, 1, 1)",
        (codec.definition_to_json(_experiment()),),
    )
    for k, x in enumerate((0.25, 0.5, 0.75)):
        db.execute(
            "INSERT INTO suggestions (experiment_id, sequence, assignments, state, metadata,"
            " create_time) VALUES (1, ?, ?, 'closed', '{}', 5)",
            (k, codec.dumps({"x": x})),
        )
    rows = [  # (suggestion_id, assignments, failed)
        (1, "{}", 0),  # a completed run's
        (2, "{}", 1),  # a failed run's
        (None, "{}", 0),  # no suggestion: nothing to take
        (3, '{"x":0.125}', 0),  # assignments of its own: kept
    ]
    for suggestion_id, assignments, failed in rows:
        db.execute(
            "INSERT INTO observations (experiment_id, suggestion_id, assignments,"
            " metric_values, failed, metadata, create_time) VALUES (1, ?, ?, ?, ?, '{}', 5)",
            (suggestion_id, assignments, "[]" if failed else '[["v",1.0,null]]', failed),
        )
    db.commit()
    db.close()
    storage = SqliteStorage(path)
    observations = storage.load_history("1")[0]
    assert [o.assignments for o in observations] == [{"x": 0.25}, {"x": 0.5}, {}, {"x": 0.125}]
    assert [o.suggestion_id for o in observations] == ["1", "2", None, "3"]
    progress = storage.get_experiment("1").progress
    assert (progress.observation_count, progress.failed_observation_count) == (4, 1)
    assert progress.best_observation is not None and progress.best_observation.id == "1"
    storage.close()
    db = sqlite3.connect(path)  # run again: nothing to do
    db.execute(MIGRATIONS[4])
    assert db.total_changes == 0
    db.close()
