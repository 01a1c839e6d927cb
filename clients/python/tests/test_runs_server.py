"""Projects, training runs, runs-only experiments, priors, queued and manual
suggestions, batches and soft delete against the real server (see conftest.py)."""

from __future__ import annotations

import uuid

import grpc
import pytest

import optserve_client as sigopt
from optserve_client import ApiError, Connection, RunValue, TrainingRun

X = dict(name="x", type="double", bounds=dict(min=0, max=1))
Y = dict(name="y", type="double", bounds=dict(min=0, max=1))


def _project_id() -> str:
    return f"p-{uuid.uuid4().hex[:10]}"


def _violations(info: pytest.ExceptionInfo[ApiError]) -> list[str]:
    assert info.value.code is grpc.StatusCode.INVALID_ARGUMENT, info.value
    return [v.field for v in info.value.field_violations]


def test_projects(conn: Connection) -> None:
    pid = _project_id()
    made = conn.create_project(pid, name="Vision", metadata={"team": "cv"})
    assert (made.id, made.name, made.metadata) == (pid, "Vision", {"team": "cv"})
    assert made.create_time is not None
    with pytest.raises(ApiError) as info:
        conn.create_project(pid)
    assert info.value.code is grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(ApiError) as bad:
        conn.create_project("Not Valid")
    assert _violations(bad) == ["id"]
    assert conn.get_project(pid) == made
    assert pid in {p.id for p in conn.list_projects()}
    renamed = conn.update_project(pid, name="Vision 2")
    assert renamed.name == "Vision 2" and renamed.metadata == {"team": "cv"}
    assert conn.update_project(pid, metadata={"team": "ml"}).metadata == {"team": "ml"}
    with pytest.raises(ValueError, match="cannot update id"):
        conn.update_project(pid, id="other")
    with pytest.raises(ApiError) as missing:
        conn.get_project(_project_id())
    assert missing.value.code is grpc.StatusCode.NOT_FOUND


def test_priors_and_default_values(conn: Connection) -> None:
    experiment = sigopt.create_experiment(
        name="priors",
        parameters=[
            {**X, "prior": dict(name="normal", mean=0.3, scale=0.1), "default_value": 0.25},
            {**Y, "prior": dict(name="beta", shape_a=2, shape_b=5)},
            dict(name="k", type="int", bounds=dict(min=1, max=9), default_value=4),
            dict(name="c", type="categorical", categorical_values=["u", "v"], default_value="v"),
        ],
        metrics=[dict(name="m")],
    )
    x, y, k, c = experiment.parameters
    assert x.prior == dict(name="normal", mean=0.3, scale=0.1) and x.default_value == 0.25
    assert y.prior == dict(name="beta", shape_a=2, shape_b=5) and y.default_value is None
    assert (k.prior, k.default_value, c.default_value) == (None, 4, "v")
    assert sigopt.get_experiment(experiment.id).data == experiment.data

    with pytest.raises(ApiError) as info:
        conn.create_experiment(
            name="bad prior",
            parameters=[{**X, "prior": dict(name="normal", mean=5, scale=0.1)}],
            metrics=[dict(name="m")],
        )
    assert _violations(info) == ["experiment.parameters[0].prior.mean"]
    with pytest.raises(ValueError, match=r"prior\.name"):
        conn.create_experiment(
            name="x", parameters=[{**X, "prior": dict(name="cauchy")}], metrics=[dict(name="m")]
        )


def test_runs_only_experiment_loop(conn: Connection) -> None:
    pid = _project_id()
    experiment = sigopt.create_experiment(
        name="ai",
        project=pid,
        parameters=[X, Y],
        metrics=[dict(name="score"), dict(name="seconds", strategy="store")],
        budget=4,
        runs_only=True,
    )
    assert experiment.runs_only
    with pytest.raises(ApiError) as refused:
        conn.create_suggestion(experiment.id)
    assert refused.value.code is grpc.StatusCode.PERMISSION_DENIED
    ran = []
    for run in experiment.loop():
        with run:
            assert isinstance(run, sigopt.TrainingRunContext)
            run.log_parameter("batch_size", 32)
            run.log_metric("score", run.params.x + run.params.y, stddev=0.1)
            run.log_metric("seconds", 3)
            run.log_metadata("host", "a")
            ran.append(run)
    assert experiment.is_finished()
    progress = experiment.progress
    assert (progress.observation_count, progress.total_run_count) == (4, 4)
    assert (progress.finished_run_count, progress.active_run_count) == (4, 0)
    assert progress.observation_budget_consumed == 4
    assert progress.first_observation is not None and progress.last_observation is not None

    runs = list(experiment.get_runs())
    assert [r.id for r in runs] == [r.id for r in ran]
    first = runs[0]
    assert isinstance(first, TrainingRun) and first.state == "completed"
    assert first.project == pid and first.experiment_id == experiment.id
    assert first.suggestion_id and first.observation_id and first.complete_time is not None
    assert first.values["score"] == RunValue(first.params.x + first.params.y, 0.1)
    assert first.assignments["batch_size"] == 32 and first.metadata == {"host": "a"}
    observation = ran[0].observation
    assert observation is not None and observation.id == first.observation_id
    assert observation.suggestion_id == first.suggestion_id
    assert observation.metric("score") == first.metric("score") and not observation.failed

    best = experiment.get_best_runs()
    assert len(best) == 1 and best.explanation == ""
    assert best[0].value is None  # two metrics logged
    assert best[0].metric("score") == max(r.metric("score") or 0 for r in runs)
    assert experiment.get_best_assignments() == [best[0].assignments]
    assert set(best[0].assignments) == {"batch_size", "x", "y"}
    assert sigopt.get_run(best[0].id).data == best[0]


def test_runs_only_failures_and_fixed_parameters(conn: Connection) -> None:
    experiment = sigopt.create_experiment(
        name="ai failures", parameters=[X], metrics=[dict(name="m")], budget=10, runs_only=True
    )
    assert experiment.get_best_runs().explanation  # nothing yet
    run = experiment.create_run(name="raises")
    with pytest.raises(ZeroDivisionError), run:
        run.log_metric("m", 1.0)
        _ = 1 / 0
    assert run.data.state == "failed" and run.observation is not None and run.observation.failed

    with experiment.create_run() as run:
        with pytest.raises(ApiError) as info:
            run.log_parameter("x", 2.0)
        assert _violations(info) == ['assignments["x"]']
        run.log_failure()
    assert run.data.failed and run.observation is not None and run.observation.failed

    with experiment.create_run() as run:  # nothing logged: failed
        pass
    assert run.data.state == "failed"

    with experiment.create_run() as run:
        run.log_metric("m", 0.5)
        checkpoint = run.log_checkpoint({"m": 0.1}, metadata={"epoch": 1})
        assert checkpoint.id == "1" and checkpoint.values["m"].value == 0.1
        run.log_dataset("mnist")
        run.log_model("cnn")
    assert run.data.state == "completed" and len(run.data.checkpoints) == 1
    assert run.data.extras == {"datasets": {"mnist": {}}, "model": {"type": "cnn"}}
    with pytest.raises(RuntimeError, match="already ended"):
        run.log_metric("m", 1.0)
    assert run.end() == run.data  # idempotent
    assert [r.state for r in experiment.get_runs()] == ["failed"] * 3 + ["completed"]
    assert [r.id for r in experiment.get_best_runs()] == [run.id]
    experiment.refresh()
    assert experiment.progress.failed_observation_count == 3


def test_project_runs(conn: Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    pid = _project_id()
    monkeypatch.setenv(sigopt.ai.PROJECT_ENV, pid)
    with sigopt.create_run(name="baseline", metadata={"v": 1}) as run:  # makes the project
        run.log_parameter("lr", 0.01)
        run.log_parameters({"layers": 3, "act": "relu"})
        run.log_metrics({"acc": 0.9, "loss": 0.2})
        assert run.heartbeat_interval is None  # no suggestion to renew
    assert conn.get_project(pid).id == pid
    fetched = sigopt.get_run(run.id)
    assert fetched.experiment is None and fetched.data.state == "completed"
    assert fetched.params == {"act": "relu", "layers": 3, "lr": 0.01}
    assert fetched.data.values == {"acc": RunValue(0.9), "loss": RunValue(0.2)}
    assert fetched.data.metadata == {"v": 1} and fetched.data.observation_id is None

    other = sigopt.create_run(project=pid)
    assert other.data.state == "active" and other.data.name == ""
    other.log_failure()
    assert other.end().state == "failed"
    assert [r.id for r in sigopt.get_runs()] == [run.id, other.id]
    other.archive()
    assert [r.id for r in sigopt.get_runs()] == [run.id]
    assert [r.id for r in sigopt.get_runs(pid, deleted=True)] == [other.id]
    assert conn.get_training_run(other.id).deleted
    restored = conn.update_training_run(other.id, deleted=False)
    assert not restored.deleted
    assert len(conn.list_training_runs(project=pid, page_size=1)) == 1
    assert len(list(conn.iter_training_runs(project=pid, page_size=1))) == 2

    monkeypatch.delenv(sigopt.ai.PROJECT_ENV)
    with pytest.raises(ValueError, match="name a project"):
        sigopt.create_run()


def test_training_run_calls(conn: Connection) -> None:
    pid = _project_id()
    conn.create_project(pid)
    run = conn.create_training_run(project=pid, name="r")
    merged = conn.update_training_run(
        run.id,
        merge=True,
        values={"a": 1, "b": dict(value=2, value_stddev=0.5)},
        metadata={"k": "x"},
        extras={"logs": {"out": {"content": "a"}}},
    )
    assert merged.values == {"a": RunValue(1.0), "b": RunValue(2.0, 0.5)}
    merged = conn.update_training_run(
        run.id, merge=True, metadata={"j": 1}, extras={"logs": {"err": {"content": "b"}}}
    )
    assert merged.metadata == {"k": "x", "j": 1}
    assert merged.extras == {"logs": {"out": {"content": "a"}, "err": {"content": "b"}}}
    replaced = conn.update_training_run(run.id, values={"c": 3}, name="renamed")
    assert replaced.values == {"c": RunValue(3.0)} and replaced.name == "renamed"
    done = conn.update_training_run(run.id, state="completed")
    assert done.state == "completed" and done.complete_time is not None
    with pytest.raises(ApiError) as info:
        conn.update_training_run(run.id, state="active")
    assert _violations(info) == ["state"]
    with pytest.raises(ValueError, match="cannot update project"):
        conn.update_training_run(run.id, project="x")
    conn.delete_training_run(run.id)
    assert conn.get_training_run(run.id).deleted
    with pytest.raises(ApiError) as missing:
        conn.get_training_run("99999999")
    assert missing.value.code is grpc.StatusCode.NOT_FOUND


def test_queued_and_manual_suggestions(conn: Connection) -> None:
    eid = conn.create_experiment(name="queue", parameters=[X, Y], metrics=[dict(name="m")]).id
    queued = conn.create_queued_suggestion(eid, {"x": 0.1, "y": 0.2})
    dropped = conn.create_queued_suggestion(eid, {"x": 0.3, "y": 0.4})
    assert queued.assignments == {"x": 0.1, "y": 0.2} and queued.experiment_id == eid
    assert [q.id for q in conn.list_queued_suggestions(eid)] == [queued.id, dropped.id]
    conn.delete_queued_suggestion(eid, dropped.id)
    assert [q.id for q in conn.list_queued_suggestions(eid)] == [queued.id]
    served = conn.create_suggestion(eid)
    assert served.assignments == {"x": 0.1, "y": 0.2}
    assert conn.list_queued_suggestions(eid) == []
    with pytest.raises(ApiError) as info:
        conn.create_queued_suggestion(eid, {"x": 5.0, "y": 0.2})
    assert _violations(info) == ['assignments["x"]']

    manual = conn.create_suggestion(eid, assignments={"x": 0.7, "y": 0.8})
    assert manual.assignments == {"x": 0.7, "y": 0.8}
    tagged = conn.update_suggestion(eid, manual.id, metadata={"source": "hand"})
    assert tagged.metadata == {"source": "hand"}
    assert conn.get_suggestion(eid, manual.id).metadata == {"source": "hand"}

    made = conn.create_observations(
        eid,
        [
            dict(suggestion=served.id, values={"m": 1.0}),
            dict(suggestion=manual, values=[dict(name="m", value=2.0, value_stddev=0.1)]),
            dict(assignments={"x": 0.5, "y": 0.5}, failed=True),
        ],
    )
    assert [o.metric("m") for o in made] == [1.0, 2.0, None] and made[2].failed
    progress = conn.get_experiment(eid).progress
    assert progress.observation_count == 3 and progress.observation_budget_consumed == 3
    assert progress.first_observation is not None and progress.first_observation.id == made[0].id
    assert progress.last_observation is not None and progress.last_observation.id == made[2].id

    # A queued point is also what the next run of a runs-only experiment gets.
    ai = sigopt.create_experiment(
        name="q", parameters=[X], metrics=[dict(name="m")], runs_only=True
    )
    conn.create_queued_suggestion(ai.id, {"x": 0.42})
    with ai.create_run() as run:
        assert run.params == {"x": 0.42}
        run.log_metric("m", 1)


def test_soft_delete_archive_and_unarchive(conn: Connection) -> None:
    experiment = sigopt.create_experiment(
        name="soft", parameters=[X], metrics=[dict(name="m")], runs_only=True, budget=3
    )
    assert experiment.delete().state == "deleted" and experiment.is_finished()
    assert sigopt.get_experiment(experiment.id).state == "deleted"  # still readable
    assert experiment.id in {e.id for e in conn.iter_experiments(state="deleted")}
    with pytest.raises(ApiError) as info:
        experiment.create_run()
    assert info.value.code is grpc.StatusCode.FAILED_PRECONDITION
    assert experiment.unarchive().state == "active"
    with experiment.create_run() as run:
        run.log_metric("m", 1)
    assert experiment.archive().state == "archived"
    assert experiment.unarchive().state == "active"
    assert conn.update_experiment(experiment.id, state="deleted").state == "deleted"


def test_a_chosen_request_id_replays_creates_of_projects_runs_and_checkpoints(
    conn: Connection,
) -> None:
    pid = _project_id()
    made = conn.create_project(pid, name="Once", request_id=f"{pid}-create")
    # the same call again (a retry after all attempts failed) gets the project
    assert conn.create_project(pid, name="Once", request_id=f"{pid}-create") == made
    run = conn.create_training_run(project=pid, name="r", request_id=f"{pid}-run")
    assert conn.create_training_run(project=pid, name="r", request_id=f"{pid}-run") == run
    assert [r.id for r in conn.iter_training_runs(project=pid)] == [run.id]
    first = conn.create_checkpoint(run.id, {"m": 1.0}, request_id=f"{pid}-ckpt")
    assert conn.create_checkpoint(run.id, {"m": 1.0}, request_id=f"{pid}-ckpt") == first
    assert len(conn.get_training_run(run.id).checkpoints) == 1
    with pytest.raises(ApiError) as info:
        conn.create_checkpoint(run.id, {"m": 2.0}, request_id=f"{pid}-ckpt")
    assert info.value.code is grpc.StatusCode.FAILED_PRECONDITION


def test_stopping_criteria_and_parameter_importances(conn: Connection) -> None:
    exp = conn.create_experiment(
        name="analysis", parameters=[X, Y], metrics=[dict(name="f")], budget=6
    )
    assert conn.get_stopping_criteria(exp.id) == sigopt.StoppingCriteria(False, [])
    assert conn.get_parameter_importances(exp.id) == {"f": {}}
    points = [(0.1, 0.9), (0.3, 0.2), (0.5, 0.6), (0.7, 0.1), (0.9, 0.4), (0.2, 0.5)]
    conn.create_observations(
        exp.id, [dict(assignments=dict(x=x, y=y), values={"f": 5 * x}) for x, y in points]
    )
    criteria = conn.get_stopping_criteria(exp.id)
    assert criteria.should_stop and criteria.reasons == ["observation_budget_reached"]
    f = conn.get_parameter_importances(exp.id)["f"]
    assert f["x"] > f["y"] and sum(f.values()) == pytest.approx(1)
