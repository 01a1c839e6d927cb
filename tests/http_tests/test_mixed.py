"""One experiment driven by gRPC and HTTP clients at once; the HTTP server lives and
stops with the gRPC one."""

from __future__ import annotations

import json
import signal
import socket

import grpc
import pytest
from google.protobuf import field_mask_pb2
from sigopt import Connection

from optserve.v1 import experiment_pb2 as ex
from optserve.v1 import observation_pb2 as ob
from optserve.v1 import run_pb2 as rn
from optserve.v1 import service_pb2 as pb
from optserve.v1 import suggestion_pb2 as su

from .conftest import Api, HttpServer, double, simple_experiment, start


@pytest.mark.filterwarnings("ignore:The .data field only contains")
def test_grpc_and_http_clients_share_one_experiment(http_server: HttpServer) -> None:
    stub = http_server.stub()
    conn = Connection(client_token="t", api_url=http_server.url)
    exp = conn.experiments().create(**simple_experiment(observation_budget=12))
    for i in range(6):
        if i % 2:
            (s,) = stub.CreateSuggestions(
                pb.CreateSuggestionsRequest(experiment_id=exp.id)
            ).suggestions
            sid, x = s.id, s.assignments["x"].double_value
        else:
            s = conn.experiments(exp.id).suggestions().create()
            sid, x = s.id, s.assignments["x"]
        value = 1 - (x - 0.3) ** 2
        if i % 3 == 0:
            stub.CreateObservation(
                pb.CreateObservationRequest(
                    experiment_id=exp.id,
                    observation=ob.Observation(
                        suggestion_id=sid, values=[ob.MetricValue(name="f", value=value)]
                    ),
                )
            )
        else:
            conn.experiments(exp.id).observations().create(suggestion=sid, value=value)
    over_grpc = stub.GetExperiment(pb.GetExperimentRequest(id=exp.id)).experiment
    over_http = conn.experiments(exp.id).fetch()
    assert over_grpc.progress.observation_count == over_http.progress.observation_count == 6
    assert over_grpc.progress.observation_budget_consumed == 6
    assert over_grpc.progress.last_observation.id == over_http.progress.last_observation.id
    best_grpc = stub.GetBestAssignments(pb.GetBestAssignmentsRequest(experiment_id=exp.id))
    best_http = conn.experiments(exp.id).best_assignments().fetch().data
    assert [o.id for o in best_grpc.observations] == [b.id for b in best_http]
    # a batch over gRPC, listed over HTTP
    stub.BatchCreateObservations(
        pb.BatchCreateObservationsRequest(
            experiment_id=exp.id,
            observations=[
                ob.Observation(
                    assignments={"x": ex_value(0.1), "y": ex_value(0.2)},
                    values=[ob.MetricValue(name="f", value=0.5)],
                )
            ],
        )
    )
    assert len(list(conn.experiments(exp.id).observations().fetch().iterate_pages())) == 7
    # soft delete over HTTP reads as DELETED over gRPC, and refuses writes on both
    conn.experiments(exp.id).delete()
    state = stub.GetExperiment(pb.GetExperimentRequest(id=exp.id)).experiment.state
    assert state == ex.EXPERIMENT_STATE_DELETED
    with pytest.raises(grpc.RpcError) as caught:
        stub.CreateSuggestions(pb.CreateSuggestionsRequest(experiment_id=exp.id))
    assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION


def ex_value(v: float) -> su.AssignmentValue:
    return su.AssignmentValue(double_value=v)


def test_runs_and_projects_over_both(http_server: HttpServer) -> None:
    stub = http_server.stub()
    api = Api(http_server.url)
    project = stub.CreateProject(
        pb.CreateProjectRequest(project={"id": "mixed-project", "name": "Mixed"})
    ).project
    assert api.ok("GET", "clients/1/projects/mixed-project")["name"] == "Mixed"
    with pytest.raises(grpc.RpcError) as caught:
        stub.CreateProject(pb.CreateProjectRequest(project={"id": "mixed-project"}))
    assert caught.value.code() is grpc.StatusCode.ALREADY_EXISTS
    exp = api.ok(
        "POST",
        f"clients/1/projects/{project.id}/aiexperiments",
        {
            "name": "both",
            "parameters": [{**double("x"), "prior": {"name": "beta", "shape_a": 2, "shape_b": 5}}],
            "metrics": ["acc"],
            "budget": 3,
        },
    )
    got = stub.GetExperiment(pb.GetExperimentRequest(id=exp["id"])).experiment
    assert got.runs_only and got.parameters[0].prior.beta.shape_b == 5
    run = stub.CreateTrainingRun(pb.CreateTrainingRunRequest(experiment_id=exp["id"])).training_run
    assert run.suggestion_id and "x" in run.assignments
    api.ok("MERGE", f"training_runs/{run.id}", {"values": {"acc": {"value": 0.7}}})
    updated = stub.UpdateTrainingRun(
        pb.UpdateTrainingRunRequest(
            training_run=rn.TrainingRun(id=run.id, state=rn.RUN_STATE_COMPLETED),
            update_mask=field_mask_pb2.FieldMask(paths=["state"]),
            merge=True,
        )
    ).training_run
    assert updated.observation_id and updated.values["acc"].value == 0.7
    best = stub.GetBestTrainingRuns(pb.GetBestTrainingRunsRequest(experiment_id=exp["id"]))
    assert [r.id for r in best.training_runs] == [run.id]
    assert api.ok("GET", f"aiexperiments/{exp['id']}/best_training_runs")["data"][0]["id"] == run.id
    listed = stub.ListTrainingRuns(pb.ListTrainingRunsRequest(project=project.id))
    assert [r.id for r in listed.training_runs] == [run.id]


def test_http_stops_with_grpc_on_sigterm(tmp_path) -> None:
    server = start(tmp_path / "drain.db")
    api = Api(server.url)
    assert api.ok("GET", "tokens/self")["object"] == "token"
    host, port = server.url.removeprefix("http://").split(":")
    assert server.stop(signal.SIGTERM) == 0
    with pytest.raises(OSError), socket.create_connection((host, int(port)), timeout=5):
        pass


def test_numbers_and_nesting_http_cannot_hand_back_to_grpc_are_refused(
    http_server: HttpServer,
) -> None:
    """What an HTTP write stores must read back over gRPC: a JSON integer beyond
    the largest double, 1e400 (infinity to a JSON parser) in metadata or a run's
    documents, and nesting protobuf cannot decode are 400s, and nothing is stored."""
    stub = http_server.stub()
    api = Api(http_server.url)
    big = "1" + "0" * 400

    def raw(method: str, path: str, text: str) -> tuple[int, str]:
        response = api.session.request(
            method, f"{api.url}/v1/{path}", data=text, headers=api.headers, timeout=60
        )
        return response.status_code, response.json()["message"]

    exp = api.ok("POST", "experiments", simple_experiment(name="numbers"))
    observations = f"experiments/{exp['id']}/observations"
    point = '"assignments": {"x": 0.5, "y": 0.5}'
    for body in (
        f'{{{point}, "value": 1, "metadata": {{"n": {big}}}}}',
        f'{{{point}, "value": {big}}}',
        f'{{"assignments": {{"x": {big}, "y": 0.5}}, "value": 1}}',
    ):
        status, message = raw("POST", observations, body)
        assert status == 400 and "exceeds the largest double" in message
    status, message = raw(
        "POST", observations, f'{{{point}, "value": 1, "metadata": {{"n": 1e400}}}}'
    )
    assert status == 400 and 'observation.metadata["n"]' in message and "finite" in message
    kept = api.ok("POST", observations, {"assignments": {"x": 0.5, "y": 0.5}, "value": 1})
    status, message = raw("PUT", f"{observations}/{kept['id']}", '{"metadata": {"n": -1e400}}')
    assert status == 400 and "finite" in message
    deep = "[" * 40 + "]" * 40
    status, message = raw("POST", "experiments", f'{{"name": "deep", "metadata": {{"n": {deep}}}}}')
    assert status == 400 and "levels deep" in message
    status, message = raw("POST", "experiments", '{"m": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert status == 400 and "levels deep" in message

    project = api.ok("POST", "clients/1/projects", {"id": "numbers", "name": "numbers"})
    run = api.ok("POST", f"clients/1/projects/{project['id']}/training_runs", {"name": "r"})
    for body in ('{"logs": {"x": 1e400}}', '{"tags": [1e400]}', f'{{"logs": {{"x": {big}}}}}'):
        status, message = raw("MERGE", f"training_runs/{run['id']}", body)
        assert status == 400, message
    nested = "[" * 29 + "1" + "]" * 29  # as deep as a body may go
    api.ok("MERGE", f"training_runs/{run['id']}", {"logs": {"x": json.loads(nested)}})

    # every read of what was stored works over gRPC
    got = stub.GetExperiment(pb.GetExperimentRequest(id=exp["id"])).experiment
    assert got.progress.observation_count == 1
    assert (
        len(stub.ListObservations(pb.ListObservationsRequest(experiment_id=exp["id"])).observations)
        == 1
    )
    stub.ListExperiments(pb.ListExperimentsRequest())
    stub.GetTrainingRun(pb.GetTrainingRunRequest(id=run["id"]))
    stub.ListTrainingRuns(pb.ListTrainingRunsRequest(project=project["id"]))
