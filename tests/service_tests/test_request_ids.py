"""Safe retries: a request_id makes every mutating call idempotent."""

from __future__ import annotations

import threading
import uuid

import grpc
import pytest
from google.protobuf import field_mask_pb2, struct_pb2

from optserve.v1 import observation_pb2
from optserve.v1 import project_pb2 as pj
from optserve.v1 import run_pb2 as rn
from optserve.v1 import service_pb2 as pb
from optserve.v1 import suggestion_pb2 as su

from .helpers import create, double, experiment, suggest, violations


def _values(v: float) -> list[observation_pb2.MetricValue]:
    return [observation_pb2.MetricValue(name="value", value=v)]


def test_retried_create_suggestions_returns_the_same_suggestions(stub):
    exp = create(stub, parameters=[double("x")])
    req = pb.CreateSuggestionsRequest(experiment_id=exp.id, count=3, request_id="sugg-1")
    first = stub.CreateSuggestions(req).suggestions
    again = stub.CreateSuggestions(req).suggestions
    assert list(again) == list(first)
    listed = stub.ListSuggestions(pb.ListSuggestionsRequest(experiment_id=exp.id)).suggestions
    assert len(listed) == 3


def test_retried_create_experiment_creates_one(stub):
    req = pb.CreateExperimentRequest(
        experiment=experiment(name="once", project="idem"), request_id="exp-1"
    )
    first = stub.CreateExperiment(req).experiment
    again = stub.CreateExperiment(req).experiment
    assert again.id == first.id and again.seed == first.seed
    listed = stub.ListExperiments(pb.ListExperimentsRequest(project="idem")).experiments
    assert [e.id for e in listed] == [first.id]


def test_retried_observation_is_stored_once_even_after_its_suggestion_closed(stub):
    exp = create(stub, parameters=[double("x")])
    (s,) = stub.CreateSuggestions(pb.CreateSuggestionsRequest(experiment_id=exp.id)).suggestions
    req = pb.CreateObservationRequest(
        experiment_id=exp.id,
        observation=observation_pb2.Observation(suggestion_id=s.id, values=_values(1.5)),
        request_id="obs-1",
    )
    first = stub.CreateObservation(req).observation
    # without the id, the retry would be refused: the suggestion is closed
    again = stub.CreateObservation(req).observation
    assert again == first
    stored = stub.ListObservations(pb.ListObservationsRequest(experiment_id=exp.id))
    assert len(stored.observations) == 1


def test_retried_updates_and_deletes_succeed_once(stub):
    exp = create(stub, parameters=[double("x")])
    obs = stub.CreateObservation(
        pb.CreateObservationRequest(
            experiment_id=exp.id,
            observation=observation_pb2.Observation(
                assignments={"x": {"double_value": 0.5}}, values=_values(1.0)
            ),
        )
    ).observation
    update = pb.UpdateObservationRequest(
        experiment_id=exp.id,
        observation=observation_pb2.Observation(id=obs.id, values=_values(2.0)),
        update_mask=field_mask_pb2.FieldMask(paths=["values"]),
        request_id="upd-1",
    )
    assert stub.UpdateObservation(update).observation.values[0].value == 2.0
    assert stub.UpdateObservation(update).observation.values[0].value == 2.0
    delete = pb.DeleteObservationRequest(experiment_id=exp.id, id=obs.id, request_id="del-1")
    stub.DeleteObservation(delete)
    stub.DeleteObservation(delete)  # the retry of a delete that happened is not NOT_FOUND
    with pytest.raises(grpc.RpcError) as caught:
        stub.DeleteObservation(pb.DeleteObservationRequest(experiment_id=exp.id, id=obs.id))
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    delete = pb.DeleteExperimentRequest(id=exp.id, request_id="del-exp-1")
    stub.DeleteExperiment(delete)
    stub.DeleteExperiment(delete)


def test_a_reused_id_with_another_request_is_refused(stub):
    exp = create(stub, parameters=[double("x")])
    stub.CreateSuggestions(pb.CreateSuggestionsRequest(experiment_id=exp.id, request_id="r-2"))
    for other in (
        pb.CreateSuggestionsRequest(experiment_id=exp.id, count=2, request_id="r-2"),
        pb.CreateSuggestionsRequest(experiment_id=exp.id, lease_seconds=5, request_id="r-2"),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            stub.CreateSuggestions(other)
        assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert "r-2" in caught.value.details()
    with pytest.raises(grpc.RpcError) as caught:
        stub.DeleteExperiment(pb.DeleteExperimentRequest(id=exp.id, request_id="r-2"))
    assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION


@pytest.mark.parametrize("bad", ["x" * 65, "has space", "ünï", "a/b"])
def test_request_ids_are_checked(stub, bad):
    exp = create(stub, parameters=[double("x")])
    with pytest.raises(grpc.RpcError) as caught:
        stub.CreateSuggestions(pb.CreateSuggestionsRequest(experiment_id=exp.id, request_id=bad))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert violations(caught.value)[0][0] == "request_id"


def test_concurrent_retries_of_one_request_create_it_once(stub):
    exp = create(stub, parameters=[double("x")], type="EXPERIMENT_TYPE_RANDOM")
    req = pb.CreateSuggestionsRequest(experiment_id=exp.id, count=2, request_id="race-1")
    replies: list = []
    lock = threading.Lock()

    def call() -> None:
        got = list(stub.CreateSuggestions(req).suggestions)
        with lock:
            replies.append(got)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(replies) == 8 and all(r == replies[0] for r in replies)
    listed = stub.ListSuggestions(pb.ListSuggestionsRequest(experiment_id=exp.id)).suggestions
    assert sorted(s.id for s in listed) == sorted(s.id for s in replies[0])


def _mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))


def _runs_only(stub, project: str) -> str:
    return create(stub, project=project, runsOnly=True, parameters=[double("x")]).id


def test_retried_project_writes_return_their_first_result(stub):
    pid = f"idem-{uuid.uuid4().hex[:8]}"
    req = pb.CreateProjectRequest(project=pj.Project(id=pid, name="A"), request_id="proj-1")
    first = stub.CreateProject(req).project
    # without the id, the retry would be ALREADY_EXISTS
    assert stub.CreateProject(req).project == first
    rename = pb.UpdateProjectRequest(
        project=pj.Project(id=pid, name="B"), update_mask=_mask("name"), request_id="proj-2"
    )
    renamed = stub.UpdateProject(rename).project
    stub.UpdateProject(
        pb.UpdateProjectRequest(project=pj.Project(id=pid, name="C"), update_mask=_mask("name"))
    )
    # the retry returns what the first attempt did, and does not apply it again
    assert stub.UpdateProject(rename).project == renamed and renamed.name == "B"
    assert stub.GetProject(pb.GetProjectRequest(id=pid)).project.name == "C"


def test_retried_run_writes_apply_once(stub):
    pid = f"idem-{uuid.uuid4().hex[:8]}"
    exp_id = _runs_only(stub, pid)
    create_run = pb.CreateTrainingRunRequest(experiment_id=exp_id, name="r", request_id="run-1")
    run = stub.CreateTrainingRun(create_run).training_run
    assert stub.CreateTrainingRun(create_run).training_run == run
    listed = stub.ListTrainingRuns(pb.ListTrainingRunsRequest(experiment_id=exp_id))
    assert [r.id for r in listed.training_runs] == [run.id]
    suggestions = stub.ListSuggestions(pb.ListSuggestionsRequest(experiment_id=exp_id))
    assert len(suggestions.suggestions) == 1

    checkpoint = pb.CreateCheckpointRequest(
        training_run_id=run.id,
        checkpoint=rn.Checkpoint(values={"value": rn.RunValue(value=0.1)}),
        request_id="ckpt-1",
    )
    made = stub.CreateCheckpoint(checkpoint).checkpoint
    assert stub.CreateCheckpoint(checkpoint).checkpoint == made

    finish = pb.UpdateTrainingRunRequest(
        training_run=rn.TrainingRun(
            id=run.id, state=rn.RUN_STATE_COMPLETED, values={"value": rn.RunValue(value=2.0)}
        ),
        update_mask=_mask("state", "values"),
        merge=True,
        request_id="run-done-1",
    )
    done = stub.UpdateTrainingRun(finish).training_run
    assert stub.UpdateTrainingRun(finish).training_run == done
    fetched = stub.GetTrainingRun(pb.GetTrainingRunRequest(id=run.id)).training_run
    assert len(fetched.checkpoints) == 1 and fetched.observation_id == done.observation_id
    progress = stub.GetExperiment(pb.GetExperimentRequest(id=exp_id)).experiment.progress
    assert progress.observation_count == 1

    project_run = stub.CreateTrainingRun(
        pb.CreateTrainingRunRequest(project=pid, name="p", request_id="run-2")
    ).training_run
    delete = pb.DeleteTrainingRunRequest(id=project_run.id, request_id="run-del-1")
    stub.DeleteTrainingRun(delete)
    stub.UpdateTrainingRun(
        pb.UpdateTrainingRunRequest(
            training_run=rn.TrainingRun(id=project_run.id), update_mask=_mask("deleted")
        )
    )  # restored
    stub.DeleteTrainingRun(delete)  # the retry does not delete it again
    restored = stub.GetTrainingRun(pb.GetTrainingRunRequest(id=project_run.id)).training_run
    assert not restored.deleted


def test_retried_suggestion_writes_apply_once(stub):
    exp = create(stub, parameters=[double("x")])
    manual = pb.CreateSuggestionsRequest(
        experiment_id=exp.id,
        assignments={"x": su.AssignmentValue(double_value=0.25)},
        request_id="manual-1",
    )
    (s,) = stub.CreateSuggestions(manual).suggestions
    assert list(stub.CreateSuggestions(manual).suggestions) == [s]
    listed = stub.ListSuggestions(pb.ListSuggestionsRequest(experiment_id=exp.id))
    assert [x.id for x in listed.suggestions] == [s.id]

    tag = pb.UpdateSuggestionRequest(
        experiment_id=exp.id,
        suggestion=su.Suggestion(id=s.id, metadata=struct_pb2.Struct(fields={})),
        request_id="tag-1",
    )
    tag.suggestion.metadata.update({"worker": "a"})
    tagged = stub.UpdateSuggestion(tag).suggestion
    assert stub.UpdateSuggestion(tag).suggestion == tagged

    renew = pb.RenewSuggestionLeaseRequest(
        experiment_id=exp.id, id=s.id, lease_seconds=600, request_id="renew-1"
    )
    renewed = stub.RenewSuggestionLease(renew).suggestion
    stub.CreateObservation(
        pb.CreateObservationRequest(
            experiment_id=exp.id,
            observation=observation_pb2.Observation(suggestion_id=s.id, values=_values(1.0)),
        )
    )
    # without the id, renewing a closed suggestion is FAILED_PRECONDITION
    assert stub.RenewSuggestionLease(renew).suggestion == renewed

    queue = pb.CreateQueuedSuggestionRequest(
        experiment_id=exp.id,
        assignments={"x": su.AssignmentValue(double_value=0.75)},
        request_id="queue-1",
    )
    queued = stub.CreateQueuedSuggestion(queue).queued_suggestion
    assert stub.CreateQueuedSuggestion(queue).queued_suggestion == queued
    waiting = stub.ListQueuedSuggestions(pb.ListQueuedSuggestionsRequest(experiment_id=exp.id))
    assert [q.id for q in waiting.queued_suggestions] == [queued.id]
    unqueue = pb.DeleteQueuedSuggestionRequest(
        experiment_id=exp.id, id=queued.id, request_id="unqueue-1"
    )
    stub.DeleteQueuedSuggestion(unqueue)
    stub.DeleteQueuedSuggestion(unqueue)  # not NOT_FOUND


def _reuse_cases(stub) -> list[tuple[str, object, object]]:
    """(rpc, first request, the same id with other content) for every write above."""
    pid = f"idem-{uuid.uuid4().hex[:8]}"
    stub.CreateProject(pb.CreateProjectRequest(project=pj.Project(id=pid)))
    exp = create(stub, parameters=[double("x")])
    (s,) = suggest(stub, exp.id)
    q = stub.CreateQueuedSuggestion(
        pb.CreateQueuedSuggestionRequest(
            experiment_id=exp.id, assignments={"x": su.AssignmentValue(double_value=0.5)}
        )
    ).queued_suggestion
    run = stub.CreateTrainingRun(pb.CreateTrainingRunRequest(project=pid)).training_run
    x = lambda v: {"x": su.AssignmentValue(double_value=v)}  # noqa: E731
    return [
        (
            "CreateProject",
            pb.CreateProjectRequest(project=pj.Project(id=pid + "-a")),
            pb.CreateProjectRequest(project=pj.Project(id=pid + "-b")),
        ),
        (
            "UpdateProject",
            pb.UpdateProjectRequest(
                project=pj.Project(id=pid, name="A"), update_mask=_mask("name")
            ),
            pb.UpdateProjectRequest(
                project=pj.Project(id=pid, name="B"), update_mask=_mask("name")
            ),
        ),
        (
            "CreateTrainingRun",
            pb.CreateTrainingRunRequest(project=pid, name="a"),
            pb.CreateTrainingRunRequest(project=pid, name="b"),
        ),
        (
            "UpdateTrainingRun",
            pb.UpdateTrainingRunRequest(
                training_run=rn.TrainingRun(id=run.id, name="a"), update_mask=_mask("name")
            ),
            pb.UpdateTrainingRunRequest(
                training_run=rn.TrainingRun(id=run.id, name="a"),
                update_mask=_mask("name"),
                merge=True,
            ),
        ),
        (
            "CreateCheckpoint",
            pb.CreateCheckpointRequest(
                training_run_id=run.id,
                checkpoint=rn.Checkpoint(values={"v": rn.RunValue(value=1.0)}),
            ),
            pb.CreateCheckpointRequest(
                training_run_id=run.id,
                checkpoint=rn.Checkpoint(values={"v": rn.RunValue(value=2.0)}),
            ),
        ),
        (
            "DeleteTrainingRun",
            pb.DeleteTrainingRunRequest(id=run.id),
            pb.UpdateTrainingRunRequest(
                training_run=rn.TrainingRun(id=run.id, deleted=True),
                update_mask=_mask("deleted"),
                merge=True,
            ),
        ),
        (
            "CreateSuggestions",
            pb.CreateSuggestionsRequest(experiment_id=exp.id, assignments=x(0.1)),
            pb.CreateSuggestionsRequest(experiment_id=exp.id, assignments=x(0.2)),
        ),
        (
            "UpdateSuggestion",
            pb.UpdateSuggestionRequest(experiment_id=exp.id, suggestion=su.Suggestion(id=s.id)),
            pb.RenewSuggestionLeaseRequest(experiment_id=exp.id, id=s.id),
        ),
        (
            "RenewSuggestionLease",
            pb.RenewSuggestionLeaseRequest(experiment_id=exp.id, id=s.id, lease_seconds=60),
            pb.RenewSuggestionLeaseRequest(experiment_id=exp.id, id=s.id, lease_seconds=61),
        ),
        (
            "CreateQueuedSuggestion",
            pb.CreateQueuedSuggestionRequest(experiment_id=exp.id, assignments=x(0.3)),
            pb.CreateQueuedSuggestionRequest(experiment_id=exp.id, assignments=x(0.4)),
        ),
        (
            "DeleteQueuedSuggestion",
            pb.DeleteQueuedSuggestionRequest(experiment_id=exp.id, id=q.id),
            pb.DeleteQueuedSuggestionRequest(experiment_id=exp.id, id=q.id + "0"),
        ),
    ]


def test_an_id_reused_for_another_write_is_refused_for_every_write(stub):
    for i, (rpc, first, other) in enumerate(_reuse_cases(stub)):
        first.request_id = other.request_id = f"reuse-{i}"
        getattr(stub, rpc)(first)
        with pytest.raises(grpc.RpcError) as caught:
            getattr(stub, type(other).__name__.removesuffix("Request"))(other)
        assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION, rpc
        assert f"reuse-{i}" in caught.value.details()
