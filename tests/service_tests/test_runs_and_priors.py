"""Over gRPC: parameter priors and default values, runs-only experiments, projects,
training runs, queued and manual suggestions, batch observations, soft delete."""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.protobuf import field_mask_pb2, json_format

from optserve.v1 import experiment_pb2 as ex
from optserve.v1 import observation_pb2 as ob
from optserve.v1 import project_pb2 as pj
from optserve.v1 import run_pb2 as rn
from optserve.v1 import service_pb2 as pb
from optserve.v1 import suggestion_pb2 as su

from .helpers import categorical, create, double, experiment, integer, suggest, violations


def _refused(call, request) -> list[tuple[str, str]]:
    with pytest.raises(grpc.RpcError) as caught:
        call(request)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    return violations(caught.value)


def test_priors_and_default_values_round_trip(stub):
    exp = create(
        stub,
        parameters=[
            double(
                "a",
                prior={"normal": {"mean": 0.5, "scale": 0.1}},
                defaultValue={"doubleValue": 0.2},
            ),
            double("b", prior={"beta": {"shapeA": 2, "shapeB": 3}}),
            integer("k", defaultValue={"intValue": 3}),
            categorical("c", ["u", "v"], defaultValue={"stringValue": "v"}),
        ],
    )
    by_name = {p.name: p for p in exp.parameters}
    assert by_name["a"].prior.normal.scale == 0.1 and by_name["a"].default_value.double_value == 0.2
    assert by_name["b"].prior.beta.shape_b == 3
    assert (
        by_name["k"].default_value.int_value == 3 and by_name["c"].default_value.string_value == "v"
    )
    fetched = stub.GetExperiment(pb.GetExperimentRequest(id=exp.id)).experiment
    assert fetched.parameters == exp.parameters


@pytest.mark.parametrize(
    ("parameter", "field", "rule"),
    [
        (integer("k", prior={"normal": {"mean": 1, "scale": 1}}), "prior", "only double"),
        (double("x", prior={"normal": {"mean": 2, "scale": 1}}), "prior.mean", "bounds"),
        (double("x", prior={"normal": {"mean": 0.5, "scale": 0}}), "prior.scale", "> 0"),
        (double("x", prior={"beta": {"shapeA": -1, "shapeB": 1}}), "prior.shape_a", "> 0"),
        (
            double(
                "x",
                0.1,
                1,
                prior={"beta": {"shapeA": 1, "shapeB": 1}},
                transformation="TRANSFORMATION_LOG",
            ),
            "prior",
            "log",
        ),
        (double("x", prior={}), "prior", "normal or beta"),
        (double("x", defaultValue={"doubleValue": 3}), "default_value", "bounds"),
        (integer("k", defaultValue={"doubleValue": 1.5}), "default_value", "integer"),
        (
            categorical("c", ["u", "v"], defaultValue={"stringValue": "w"}),
            "default_value",
            "categorical_values",
        ),
    ],
)
def test_prior_and_default_value_rules(stub, parameter, field, rule):
    request = pb.CreateExperimentRequest(experiment=experiment(parameters=[parameter]))
    ((path, description),) = _refused(stub.CreateExperiment, request)
    assert path == f"experiment.parameters[0].{field}" and rule in description


def test_soft_delete_through_update(stub):
    exp = create(stub)
    request = pb.UpdateExperimentRequest(
        experiment=ex.Experiment(id=exp.id, state=ex.EXPERIMENT_STATE_DELETED),
        update_mask=field_mask_pb2.FieldMask(paths=["state"]),
    )
    assert stub.UpdateExperiment(request).experiment.state == ex.EXPERIMENT_STATE_DELETED
    listed = stub.ListExperiments(
        pb.ListExperimentsRequest(state=ex.EXPERIMENT_STATE_DELETED, page_size=1000)
    )
    assert exp.id in {e.id for e in listed.experiments}
    with pytest.raises(grpc.RpcError) as caught:
        suggest(stub, exp.id)
    assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION


def test_manual_queued_suggestions_and_batches(stub):
    exp = create(stub, parameters=[double("x"), double("y")])
    value = lambda v: su.AssignmentValue(double_value=v)  # noqa: E731
    queued = stub.CreateQueuedSuggestion(
        pb.CreateQueuedSuggestionRequest(
            experiment_id=exp.id, assignments={"x": value(0.1), "y": value(0.2)}
        )
    ).queued_suggestion
    listed = stub.ListQueuedSuggestions(pb.ListQueuedSuggestionsRequest(experiment_id=exp.id))
    assert [q.id for q in listed.queued_suggestions] == [queued.id]
    (first,) = suggest(stub, exp.id)
    assert first.assignments["x"].double_value == 0.1
    assert not stub.ListQueuedSuggestions(
        pb.ListQueuedSuggestionsRequest(experiment_id=exp.id)
    ).queued_suggestions
    manual = stub.CreateSuggestions(
        pb.CreateSuggestionsRequest(
            experiment_id=exp.id, assignments={"x": value(0.7), "y": value(0.8)}
        )
    ).suggestions
    assert [s.assignments["y"].double_value for s in manual] == [0.8]
    bad = pb.CreateSuggestionsRequest(
        experiment_id=exp.id, assignments={"x": value(7), "y": value(0.8)}
    )
    assert _refused(stub.CreateSuggestions, bad)[0][0] == 'assignments["x"]'
    batch = pb.BatchCreateObservationsRequest(
        experiment_id=exp.id,
        observations=[
            ob.Observation(suggestion_id=first.id, values=[ob.MetricValue(name="value", value=1)]),
            ob.Observation(
                suggestion_id=manual[0].id, values=[ob.MetricValue(name="value", value=2)]
            ),
        ],
    )
    made = stub.BatchCreateObservations(batch).observations
    assert [o.values[0].value for o in made] == [1, 2]
    again = pb.BatchCreateObservationsRequest(
        experiment_id=exp.id, observations=[batch.observations[0]]
    )
    with pytest.raises(grpc.RpcError) as caught:
        stub.BatchCreateObservations(again)
    assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    progress = stub.GetExperiment(pb.GetExperimentRequest(id=exp.id)).experiment.progress
    assert progress.observation_budget_consumed == 2
    assert (progress.first_observation.id, progress.last_observation.id) == (made[0].id, made[1].id)


def test_projects_and_runs(stub):
    pid = f"grpc-{uuid.uuid4().hex[:8]}"
    stub.CreateProject(pb.CreateProjectRequest(project=pj.Project(id=pid, name="G")))
    with pytest.raises(grpc.RpcError) as caught:
        stub.CreateProject(pb.CreateProjectRequest(project=pj.Project(id=pid)))
    assert caught.value.code() is grpc.StatusCode.ALREADY_EXISTS
    bad = pb.CreateProjectRequest(project=pj.Project(id="Not Valid"))
    assert _refused(stub.CreateProject, bad)[0][0] == "id"
    updated = stub.UpdateProject(
        pb.UpdateProjectRequest(
            project=pj.Project(id=pid, name="H"),
            update_mask=field_mask_pb2.FieldMask(paths=["name"]),
        )
    ).project
    assert updated.name == "H"
    exp = create(stub, project=pid, runsOnly=True, observationBudget=2)
    assert exp.runs_only
    with pytest.raises(grpc.RpcError) as caught:
        suggest(stub, exp.id)
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
    run = stub.CreateTrainingRun(
        pb.CreateTrainingRunRequest(experiment_id=exp.id, name="r")
    ).training_run
    assert run.project == pid and run.suggestion_id and "x" in run.assignments
    mask = lambda *p: field_mask_pb2.FieldMask(paths=list(p))  # noqa: E731
    merged = stub.UpdateTrainingRun(
        pb.UpdateTrainingRunRequest(
            training_run=json_format.ParseDict(
                {
                    "id": run.id,
                    "values": {"value": {"value": 0.5}},
                    "extras": {"logs": {"out": {"content": "x"}}},
                },
                rn.TrainingRun(),
            ),
            update_mask=mask("values", "extras"),
            merge=True,
        )
    ).training_run
    assert merged.values["value"].value == 0.5 and merged.extras["logs"]["out"]["content"] == "x"
    fixed = pb.UpdateTrainingRunRequest(
        training_run=rn.TrainingRun(
            id=run.id, assignments={"x": su.AssignmentValue(double_value=0.999)}
        ),
        update_mask=mask("assignments"),
        merge=True,
    )
    assert _refused(stub.UpdateTrainingRun, fixed)[0][0] == 'assignments["x"]'
    checkpoint = stub.CreateCheckpoint(
        pb.CreateCheckpointRequest(
            training_run_id=run.id,
            checkpoint=rn.Checkpoint(values={"value": rn.RunValue(value=0.1)}),
        )
    ).checkpoint
    assert checkpoint.id == "1"
    done = stub.UpdateTrainingRun(
        pb.UpdateTrainingRunRequest(
            training_run=rn.TrainingRun(id=run.id, state=rn.RUN_STATE_COMPLETED),
            update_mask=mask("state"),
        )
    ).training_run
    assert done.observation_id and len(done.checkpoints) == 1
    progress = stub.GetExperiment(pb.GetExperimentRequest(id=exp.id)).experiment.progress
    assert (progress.total_run_count, progress.finished_run_count, progress.observation_count) == (
        1,
        1,
        1,
    )
    stub.DeleteTrainingRun(pb.DeleteTrainingRunRequest(id=run.id))
    assert stub.GetTrainingRun(pb.GetTrainingRunRequest(id=run.id)).training_run.deleted
    listed = stub.ListTrainingRuns(pb.ListTrainingRunsRequest(project=pid, deleted=True))
    assert [r.id for r in listed.training_runs] == [run.id]
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetTrainingRun(pb.GetTrainingRunRequest(id="99999999"))
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND


def test_stopping_criteria_and_importances(stub):
    exp = create(
        stub,
        parameters=[double("x"), double("y")],
        metrics=[{"name": "f"}, {"name": "g", "strategy": "METRIC_STRATEGY_STORE"}],
        observationBudget=6,
    )
    reply = stub.GetStoppingCriteria(pb.GetStoppingCriteriaRequest(experiment_id=exp.id))
    assert (reply.should_stop, list(reply.reasons)) == (False, [])
    importances = stub.GetParameterImportances(
        pb.GetParameterImportancesRequest(experiment_id=exp.id)
    ).metrics
    # by metric name, empty until a metric has three successful values
    assert [(m.metric, dict(m.importances)) for m in importances] == [("f", {}), ("g", {})]
    points = [(0.1, 0.9), (0.3, 0.2), (0.5, 0.6), (0.7, 0.1), (0.9, 0.4), (0.2, 0.5)]
    stub.BatchCreateObservations(
        pb.BatchCreateObservationsRequest(
            experiment_id=exp.id,
            observations=[
                ob.Observation(
                    assignments={
                        "x": su.AssignmentValue(double_value=x),
                        "y": su.AssignmentValue(double_value=y),
                    },
                    values=[
                        ob.MetricValue(name="f", value=5 * x),
                        ob.MetricValue(name="g", value=y),
                    ],
                )
                for x, y in points
            ],
        )
    )
    reply = stub.GetStoppingCriteria(pb.GetStoppingCriteriaRequest(experiment_id=exp.id))
    assert (reply.should_stop, list(reply.reasons)) == (True, ["observation_budget_reached"])
    f, g = stub.GetParameterImportances(
        pb.GetParameterImportancesRequest(experiment_id=exp.id)
    ).metrics
    assert sum(f.importances.values()) == pytest.approx(1)
    assert f.importances["x"] > f.importances["y"] and g.importances["y"] > g.importances["x"]
