"""Suggestions: round trips, conditionals, grids, reproducibility, best assignments."""

from __future__ import annotations

import itertools
import threading

import grpc
import pytest
from google.protobuf import json_format

from optserve.v1 import experiment_pb2
from optserve.v1 import service_pb2 as pb
from optserve.v1 import suggestion_pb2 as su

from .helpers import categorical, create, double, integer, observe, plain, suggest, violations
from .test_experiment_validation import opt, store

CNN = {
    "name": "Deep Learning with Conditionals",
    "project": "sigopt-examples",
    "conditionals": [{"name": "num_conv_layers", "values": ["1", "2", "3"]}],
    "parameters": [
        integer(
            "layer_1_num_filters",
            100,
            300,
            conditions={"num_conv_layers": {"values": ["1", "2", "3"]}},
        ),
        integer(
            "layer_1_filter_size",
            2,
            10,
            conditions={"num_conv_layers": {"values": ["1", "2", "3"]}},
        ),
        integer(
            "layer_2_num_filters", 100, 300, conditions={"num_conv_layers": {"values": ["2", "3"]}}
        ),
        integer(
            "layer_2_filter_size", 4, 8, conditions={"num_conv_layers": {"values": ["2", "3"]}}
        ),
        integer("layer_3_num_filters", 100, 300, conditions={"num_conv_layers": {"values": ["3"]}}),
        integer("layer_3_filter_size", 3, 5, conditions={"num_conv_layers": {"values": ["3"]}}),
    ],
    "metrics": [{"name": "Accuracy", "objective": "METRIC_OBJECTIVE_MAXIMIZE"}],
    "parallelBandwidth": 1,
    "observationBudget": 200,
}


def test_experiment_round_trip(stub):
    fields = {
        "name": "round trip",
        "project": "proj",
        "type": "EXPERIMENT_TYPE_RANDOM",
        "parameters": [
            double("lr", 1e-5, 1e-1, transformation="TRANSFORMATION_LOG"),
            integer("units", 8, 512),
            categorical("act", ["relu", "tanh"]),
            double("momentum", grid=[0.5, 0.9, 0.99]),
        ],
        "metrics": [
            opt("acc"),
            opt("latency", objective="METRIC_OBJECTIVE_MINIMIZE", threshold=3.0),
            store("size"),
        ],
        "observationBudget": 30,
        "parallelBandwidth": 3,
        "metadata": {"owner": "team-a", "version": 2},
        "seed": "42",
    }
    created = create(stub, **fields)
    fetched = stub.GetExperiment(pb.GetExperimentRequest(id=created.id)).experiment
    assert fetched == created
    sent = json_format.ParseDict(fields, experiment_pb2.Experiment())
    for name in (
        "name",
        "project",
        "type",
        "observation_budget",
        "parallel_bandwidth",
        "metadata",
        "seed",
    ):
        assert getattr(fetched, name) == getattr(sent, name), name
    assert [p.name for p in fetched.parameters] == [p.name for p in sent.parameters]
    assert fetched.parameters[0].transformation == experiment_pb2.TRANSFORMATION_LOG
    assert list(fetched.parameters[3].grid) == [0.5, 0.9, 0.99]
    assert fetched.metrics[1].threshold == 3.0 and not fetched.metrics[0].HasField("threshold")
    assert fetched.metrics[2].strategy == experiment_pb2.METRIC_STRATEGY_STORE
    assert fetched.state == experiment_pb2.EXPERIMENT_STATE_ACTIVE
    assert fetched.create_time.seconds > 0 and fetched.num_solutions == 1

    (s,) = suggest(stub, created.id)
    a = plain(s.assignments)
    assert 1e-5 <= a["lr"] <= 1e-1 and isinstance(a["units"], int) and a["act"] in ("relu", "tanh")
    assert a["momentum"] in (0.5, 0.9, 0.99)
    assert (
        stub.GetSuggestion(pb.GetSuggestionRequest(experiment_id=created.id, id=s.id)).suggestion
        == s
    )
    o = observe(
        stub,
        created.id,
        suggestionId=s.id,
        values=[
            {"name": "acc", "value": 0.9, "valueStddev": 0.01},
            {"name": "latency", "value": 2.0},
            {"name": "size", "value": 5},
        ],
        metadata={"host": "a"},
    )
    got = stub.GetObservation(
        pb.GetObservationRequest(experiment_id=created.id, id=o.id)
    ).observation
    assert got == o and got.assignments == s.assignments and got.values[0].value_stddev == 0.01
    assert json_format.MessageToDict(got.metadata) == {"host": "a"}


def test_conditional_suggestions_carry_exactly_the_active_parameters(stub):
    exp = create(stub, **CNN)
    seen = set()
    for s in suggest(stub, exp.id, count=60):
        a = plain(s.assignments)
        layers = int(a["num_conv_layers"])
        seen.add(layers)
        expected = {"num_conv_layers"} | {
            f"layer_{k}_{w}" for k in range(1, layers + 1) for w in ("num_filters", "filter_size")
        }
        assert set(a) == expected
        for p in CNN["parameters"]:
            if p["name"] in a:
                assert p["bounds"]["min"] <= a[p["name"]] <= p["bounds"]["max"]
                assert isinstance(a[p["name"]], int)
    assert seen == {1, 2, 3}


def test_conditional_experiments_refuse_manual_assignments(stub):
    exp = create(stub, **CNN)
    with pytest.raises(grpc.RpcError) as info:
        observe(
            stub,
            exp.id,
            assignments={"num_conv_layers": {"stringValue": "1"}},
            values=[{"name": "Accuracy", "value": 1}],
        )
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert any(f == "observation.assignments" for f, _ in violations(info.value))


def test_grid_enumerates_each_point_once(stub):
    exp = create(
        stub,
        type="EXPERIMENT_TYPE_GRID",
        parameters=[
            double("x", grid=[0.1, 0.2, 0.3]),
            integer("n", 1, 2),
            categorical("c", ["a", "b"]),
        ],
    )
    assert exp.observation_budget == 12
    points = []
    for _ in range(4):
        batch = suggest(stub, exp.id, count=2)
        for s in batch[:1]:  # one observed, one left open: both count as taken
            observe(stub, exp.id, suggestionId=s.id, values=[{"name": "value", "value": 1}])
        points += [tuple(sorted(plain(s.assignments).items())) for s in batch]
    points += [tuple(sorted(plain(s.assignments).items())) for s in suggest(stub, exp.id, count=4)]
    expected = {
        tuple(sorted({"x": x, "n": n, "c": c}.items()))
        for x, n, c in itertools.product([0.1, 0.2, 0.3], [1, 2], ["a", "b"])
    }
    assert len(points) == 12 and set(points) == expected
    with pytest.raises(grpc.RpcError) as info:
        suggest(stub, exp.id)
    assert info.value.code() is grpc.StatusCode.FAILED_PRECONDITION


def test_grid_offers_again_a_point_whose_suggestion_was_deleted(stub):
    exp = create(
        stub,
        type="EXPERIMENT_TYPE_GRID",
        parameters=[integer("n", 1, 3), categorical("c", ["a", "b"])],
    )
    first = suggest(stub, exp.id, count=3)
    # the product's order: the last parameter varies fastest
    assert [plain(s.assignments) for s in first] == [
        {"n": 1, "c": "a"},
        {"n": 1, "c": "b"},
        {"n": 2, "c": "a"},
    ]
    # an observation with explicit assignments takes its point too
    observe(
        stub,
        exp.id,
        assignments={"n": {"intValue": "2"}, "c": {"stringValue": "b"}},
        values=[{"name": "value", "value": 1}],
    )
    stub.DeleteSuggestion(pb.DeleteSuggestionRequest(experiment_id=exp.id, id=first[1].id))
    again = suggest(stub, exp.id, count=2)
    assert [plain(s.assignments) for s in again] == [{"n": 1, "c": "b"}, {"n": 3, "c": "a"}]


def test_the_first_suggestion_is_the_centre_of_the_space(stub):
    exp = create(
        stub,
        parameters=[
            double("x", -10, 30),
            double("lr", 1e-4, 1e-2, transformation="TRANSFORMATION_LOG"),
            integer("n", 1, 9),
        ],
    )
    first, second = (plain(s.assignments) for s in suggest(stub, exp.id, count=2))
    assert first == {"x": 10.0, "lr": pytest.approx(1e-3, rel=1e-12), "n": 5}
    assert second["x"] != 10.0  # the rest of the design is drawn
    (third,) = suggest(stub, exp.id)
    assert plain(third.assignments)["x"] != 10.0  # once per experiment


def test_same_seed_same_suggestions(stub):
    a = create(
        stub, parameters=[double("x"), integer("i"), categorical("c", ["a", "b", "c"])], seed="7"
    )
    b = create(
        stub, parameters=[double("x"), integer("i"), categorical("c", ["a", "b", "c"])], seed="7"
    )
    sa = [plain(s.assignments) for s in suggest(stub, a.id, count=5)]
    sb = [plain(s.assignments) for s in suggest(stub, b.id, count=5)]
    assert sa == sb and len({str(s) for s in sa}) == 5


def test_random_suggestions_of_concurrent_clients_are_those_of_one_client(stub):
    # Random points are drawn inside the write at the numbers it assigns, without the
    # experiment's lock: clients at once get the points one client would, each once.
    fields = {"type": "EXPERIMENT_TYPE_RANDOM", "parameters": [double("x"), double("y")]}
    shared, alone = create(stub, seed="5", **fields), create(stub, seed="5", **fields)
    got: list[list] = []
    errors: list[BaseException] = []

    def client() -> None:
        try:
            for _ in range(3):
                got.append(suggest(stub, shared.id, count=2))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    key = lambda s: (s.assignments["x"].double_value, s.assignments["y"].double_value)  # noqa: E731
    concurrent = sorted(key(s) for batch in got for s in batch)
    one = sorted(key(s) for _ in range(48) for s in suggest(stub, alone.id))
    assert len(set(concurrent)) == 48 and concurrent == sorted(one)
    # a queued suggestion comes first (number 48); the random point after it is number 49
    value = lambda v: su.AssignmentValue(double_value=v)  # noqa: E731
    stub.CreateQueuedSuggestion(
        pb.CreateQueuedSuggestionRequest(
            experiment_id=shared.id, assignments={"x": value(0.25), "y": value(0.75)}
        )
    )
    queued, drawn = suggest(stub, shared.id, count=2)
    assert key(queued) == (0.25, 0.75)
    _, number_49 = suggest(stub, alone.id, count=2)
    assert key(drawn) == key(number_49)


def test_best_assignments_maximize_minimize_and_failures(stub):
    for objective, best in (("METRIC_OBJECTIVE_MAXIMIZE", 3.0), ("METRIC_OBJECTIVE_MINIMIZE", 1.0)):
        exp = create(stub, metrics=[{"name": "value", "objective": objective}])
        empty = stub.GetBestAssignments(pb.GetBestAssignmentsRequest(experiment_id=exp.id))
        assert not empty.observations and empty.explanation
        for value in (2.0, 3.0, 1.0):
            (s,) = suggest(stub, exp.id)
            observe(stub, exp.id, suggestionId=s.id, values=[{"name": "value", "value": value}])
        (s,) = suggest(stub, exp.id)
        observe(stub, exp.id, suggestionId=s.id, failed=True)
        got = stub.GetBestAssignments(pb.GetBestAssignmentsRequest(experiment_id=exp.id))
        assert [o.values[0].value for o in got.observations] == [best]
        progress = stub.GetExperiment(pb.GetExperimentRequest(id=exp.id)).experiment.progress
        assert progress.best_observation.values[0].value == best
        assert (progress.observation_count, progress.failed_observation_count) == (4, 1)


def test_list_pagination(stub):
    exp = create(stub)
    ids = [s.id for s in suggest(stub, exp.id, count=7)]
    seen, token = [], ""
    while True:
        page = stub.ListSuggestions(
            pb.ListSuggestionsRequest(experiment_id=exp.id, page_size=3, page_token=token)
        )
        seen += [s.id for s in page.suggestions]
        token = page.next_page_token
        if not token:
            break
    assert seen == ids
    observe(stub, exp.id, suggestionId=ids[0], values=[{"name": "value", "value": 1}])
    open_ = stub.ListSuggestions(
        pb.ListSuggestionsRequest(experiment_id=exp.id, state=1)
    ).suggestions
    assert [s.id for s in open_] == ids[1:]
    project = f"pagination-{exp.id}"
    made = [create(stub, project=project).id for _ in range(5)]
    listed, token = [], ""
    while True:
        page = stub.ListExperiments(
            pb.ListExperimentsRequest(project=project, page_size=2, page_token=token)
        )
        listed += [e.id for e in page.experiments]
        token = page.next_page_token
        if not token:
            break
    assert listed == made[::-1]


@pytest.mark.parametrize("weight", [1e-300, 5e-324])
@pytest.mark.parametrize("kind", ["double", "int"])
@pytest.mark.parametrize("strategy", ["EXPERIMENT_TYPE_RANDOM", "EXPERIMENT_TYPE_OFFLINE"])
def test_constraints_with_tiny_weights_are_kept(stub, weight, kind, strategy):
    """w a + w b <= w with w = 1e-300 is a + b <= 1: its terms are far below the
    feasibility rule's tolerance, and their squares underflow; it must be enforced
    all the same, and a vacuous or an empty one told apart."""
    params = [double("a"), double("b")] if kind == "double" else [integer("a"), integer("b")]
    terms = [{"name": "a", "weight": weight}, {"name": "b", "weight": weight}]

    def make(kind_of: str, threshold: float):
        return create(
            stub,
            parameters=params,
            linearConstraints=[
                {
                    "type": f"LINEAR_CONSTRAINT_TYPE_{kind_of}",
                    "threshold": threshold,
                    "terms": terms,
                }
            ],
            type=strategy,
            observationBudget=30,
        )

    exp = make("LESS_THAN", weight)
    for i in range(14):
        (s,) = suggest(stub, exp.id)
        a = plain(s.assignments)
        assert a["a"] + a["b"] <= 1.0 + 1e-12, (i, a)
        assert weight * a["a"] + weight * a["b"] <= weight
        observe(stub, exp.id, suggestionId=s.id, values=[{"name": "value", "value": a["a"]}])
    vacuous = make("LESS_THAN", 1e10)  # w (a + b) never reaches 1e10
    assert len(suggest(stub, vacuous.id, 3)) == 3
    with pytest.raises(grpc.RpcError) as info:
        make("GREATER_THAN", 1e10)  # nor can it exceed it
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert any(f.endswith("linear_constraints") for f, _ in violations(info.value))


def test_update_suggestion_changes_metadata_only(stub):
    exp = create(stub)
    (s,) = suggest(stub, exp.id)
    moved = su.Suggestion(id=s.id)
    moved.assignments["x"].double_value = 0.25
    moved.metadata.update({"worker": "a"})
    with pytest.raises(grpc.RpcError) as caught:
        stub.UpdateSuggestion(pb.UpdateSuggestionRequest(experiment_id=exp.id, suggestion=moved))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert ("suggestion.assignments", "only metadata can change (as over HTTP)") in violations(
        caught.value
    )
    tagged = su.Suggestion(id=s.id)
    tagged.metadata.update({"worker": "a"})
    done = stub.UpdateSuggestion(
        pb.UpdateSuggestionRequest(experiment_id=exp.id, suggestion=tagged)
    )
    assert done.suggestion.assignments == s.assignments
    assert done.suggestion.metadata["worker"] == "a"


@pytest.mark.parametrize("strategy", ["EXPERIMENT_TYPE_RANDOM", "EXPERIMENT_TYPE_OFFLINE"])
def test_int_points_hold_in_a_clients_floating_point_sum(stub, strategy):
    """0.1 a + 0.2 b <= 0.3 admits (1, 1) and (3, 0) within the tolerance, but a
    client summing 0.1 + 0.2 gets 0.30000000000000004: they are not suggested."""
    exp = create(
        stub,
        parameters=[integer("a"), integer("b")],
        linearConstraints=[
            {
                "type": "LINEAR_CONSTRAINT_TYPE_LESS_THAN",
                "threshold": 0.3,
                "terms": [{"name": "a", "weight": 0.1}, {"name": "b", "weight": 0.2}],
            }
        ],
        type=strategy,
        observationBudget=30,
    )
    seen = set()
    for _ in range(24):
        (s,) = suggest(stub, exp.id)
        a = plain(s.assignments)
        assert 0.1 * a["a"] + 0.2 * a["b"] <= 0.3, a
        seen.add((a["a"], a["b"]))
        observe(stub, exp.id, suggestionId=s.id, values=[{"name": "value", "value": a["a"]}])
    assert seen <= {(0, 0), (1, 0), (2, 0), (0, 1)} and len(seen) >= 3
