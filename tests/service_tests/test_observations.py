"""Observation rules, suggestion states, update rules and status codes."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import field_mask_pb2, json_format

from optserve.v1 import experiment_pb2, observation_pb2
from optserve.v1 import service_pb2 as pb
from optserve.v1 import suggestion_pb2 as su

from .helpers import categorical, create, double, integer, observe, suggest, violations
from .test_experiment_validation import constraint, lc, opt, store


def _error(fn, *args, **kwargs) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        fn(*args, **kwargs)
    return info.value


def _invalid(error: grpc.RpcError, field: str, words: str) -> None:
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, error
    found = violations(error)
    assert any(f.endswith(field) and words in d for f, d in found), found


@pytest.fixture
def exp(stub):
    return create(
        stub,
        parameters=[double("x"), double("y"), integer("i"), categorical("c", ["a", "b"])],
        linearConstraints=[lc("LESS_THAN", 1, ("x", 1), ("y", 1))],
        metrics=[opt("m"), constraint("k", threshold=0), store("s")],
        observationBudget=20,
        type="EXPERIMENT_TYPE_RANDOM",
    )


@pytest.fixture
def plain_exp(stub):
    return create(stub, parameters=[double("x"), integer("i")], metrics=[opt("m")])


def _count(stub, experiment_id: str) -> int:
    req = pb.GetExperimentRequest(id=experiment_id)
    return stub.GetExperiment(req).experiment.progress.observation_count


MANUAL = {
    "x": {"doubleValue": 0.2},
    "y": {"doubleValue": 0.3},
    "i": {"intValue": 3},
    "c": {"stringValue": "a"},
}
GOOD = [{"name": "m", "value": 1.0}, {"name": "k", "value": 0.5}]


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        (
            {"assignments": MANUAL, "values": [{"name": "q", "value": 1}, *GOOD]},
            "observation.values[0].name",
            "not a metric",
        ),
        (
            {"assignments": MANUAL, "values": [{"name": "k", "value": 1}]},
            "observation.values",
            "metric 'm'",
        ),
        (
            {"assignments": MANUAL, "values": [{"name": "m", "value": 1}]},
            "observation.values",
            "metric 'k'",
        ),
        (
            {"assignments": MANUAL, "failed": True, "values": GOOD},
            "observation.values",
            "no values",
        ),
        (
            {
                "assignments": MANUAL,
                "values": [{"name": "m", "value": 1, "valueStddev": -1}, GOOD[1]],
            },
            "observation.values[0].value_stddev",
            ">= 0",
        ),
        (
            {"assignments": MANUAL, "values": [{"name": "m", "value": "NaN"}, GOOD[1]]},
            "observation.values[0].value",
            "finite",
        ),
        (
            {"assignments": MANUAL, "values": [*GOOD, {"name": "m", "value": 2}]},
            "observation.values[2].name",
            "twice",
        ),
        ({"values": GOOD}, "observation.suggestion_id", "required"),
        (
            {"assignments": {**MANUAL, "x": {"doubleValue": 1.5}}, "values": GOOD},
            'observation.assignments["x"]',
            "within",
        ),
        (
            {"assignments": {k: v for k, v in MANUAL.items() if k != "i"}, "values": GOOD},
            'observation.assignments["i"]',
            "required",
        ),
        (
            {"assignments": {**MANUAL, "x": {"stringValue": "a"}}, "values": GOOD},
            'observation.assignments["x"]',
            "number",
        ),
        (
            {"assignments": {**MANUAL, "i": {"doubleValue": 2.5}}, "values": GOOD},
            'observation.assignments["i"]',
            "integer",
        ),
        (
            {"assignments": {**MANUAL, "c": {"stringValue": "z"}}, "values": GOOD},
            'observation.assignments["c"]',
            "one of",
        ),
        (
            {"assignments": {**MANUAL, "w": {"doubleValue": 1}}, "values": GOOD},
            'observation.assignments["w"]',
            "not a parameter",
        ),
        (
            {"assignments": {**MANUAL, "x": {"doubleValue": 0.8}}, "values": GOOD},
            "observation.assignments",
            "linear_constraints[0]",
        ),
    ],
    ids=[
        "unknown-metric",
        "optimized-metric-required",
        "constraint-metric-required",
        "failed-has-no-values",
        "stddev-non-negative",
        "value-finite",
        "metric-once",
        "suggestion-or-assignments",
        "assignment-bounds",
        "assignment-complete",
        "assignment-type",
        "assignment-integral",
        "assignment-category",
        "assignment-known",
        "assignment-constraints",
    ],
)
def test_observation_rule(stub, exp, fields, field, words):
    error = _error(observe, stub, exp.id, **fields)
    _invalid(error, field, words)
    assert _count(stub, exp.id) == 0, "a refused observation must not be stored"


def test_valid_manual_observation_and_failure(stub, exp):
    o = observe(stub, exp.id, assignments=MANUAL, values=[*GOOD, {"name": "s", "value": 7}])
    assert o.id and not o.suggestion_id and o.assignments["i"].int_value == 3
    f = observe(stub, exp.id, assignments=MANUAL, failed=True)
    assert f.failed and not f.values
    progress = stub.GetExperiment(pb.GetExperimentRequest(id=exp.id)).experiment.progress
    assert (progress.observation_count, progress.failed_observation_count) == (2, 1)


def test_suggestion_and_assignments_are_exclusive(stub, plain_exp):
    (s,) = suggest(stub, plain_exp.id)
    error = _error(
        observe,
        stub,
        plain_exp.id,
        suggestionId=s.id,
        assignments={"x": {"doubleValue": 0.1}, "i": {"intValue": 1}},
        values=[{"name": "m", "value": 1}],
    )
    _invalid(error, "observation.assignments", "not both")


def test_second_observation_on_a_suggestion_is_refused(stub, plain_exp):
    (s,) = suggest(stub, plain_exp.id)
    observe(stub, plain_exp.id, suggestionId=s.id, values=[{"name": "m", "value": 1}])
    error = _error(
        observe, stub, plain_exp.id, suggestionId=s.id, values=[{"name": "m", "value": 2}]
    )
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "closed" in error.details()
    assert _count(stub, plain_exp.id) == 1


def test_unknown_and_foreign_suggestions_are_not_found(stub, plain_exp):
    other = create(stub, parameters=[double("x"), integer("i")])
    (s,) = suggest(stub, other.id)
    for sid in ("999999", s.id):
        error = _error(
            observe, stub, plain_exp.id, suggestionId=sid, values=[{"name": "m", "value": 1}]
        )
        assert error.code() is grpc.StatusCode.NOT_FOUND, sid
    for sid in ("not-an-id", "\uff11", "9" * 20):
        error = _error(
            observe, stub, plain_exp.id, suggestionId=sid, values=[{"name": "m", "value": 1}]
        )
        _invalid(error, "observation.suggestion_id", "not an id")


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.GetExperiment(pb.GetExperimentRequest(id="424242")),
        lambda s: s.DeleteExperiment(pb.DeleteExperimentRequest(id="424242")),
        lambda s: s.CreateSuggestions(pb.CreateSuggestionsRequest(experiment_id="424242")),
        lambda s: s.ListSuggestions(pb.ListSuggestionsRequest(experiment_id="424242")),
        lambda s: s.GetSuggestion(pb.GetSuggestionRequest(experiment_id="1", id="424242")),
        lambda s: s.ListObservations(pb.ListObservationsRequest(experiment_id="424242")),
        lambda s: s.GetObservation(pb.GetObservationRequest(experiment_id="1", id="424242")),
        lambda s: s.DeleteObservation(pb.DeleteObservationRequest(experiment_id="1", id="424242")),
        lambda s: s.GetBestAssignments(pb.GetBestAssignmentsRequest(experiment_id="424242")),
    ],
    ids=[
        "get-experiment",
        "delete-experiment",
        "create-suggestions",
        "list-suggestions",
        "get-suggestion",
        "list-observations",
        "get-observation",
        "delete-observation",
        "best-assignments",
    ],
)
def test_unknown_ids_are_not_found(stub, plain_exp, call):
    assert _error(call, stub).code() is grpc.StatusCode.NOT_FOUND


def test_missing_ids_are_invalid(stub):
    error = _error(stub.GetExperiment, pb.GetExperimentRequest(id=""))
    _invalid(error, "id", "required")


def test_archived_experiment_refuses_new_data(stub, plain_exp):
    (s,) = suggest(stub, plain_exp.id)
    patch = experiment_pb2.Experiment(
        id=plain_exp.id, state=experiment_pb2.EXPERIMENT_STATE_ARCHIVED
    )
    mask = field_mask_pb2.FieldMask(paths=["state"])
    archived = stub.UpdateExperiment(
        pb.UpdateExperimentRequest(experiment=patch, update_mask=mask)
    ).experiment
    assert archived.state == experiment_pb2.EXPERIMENT_STATE_ARCHIVED
    assert _error(suggest, stub, plain_exp.id).code() is grpc.StatusCode.FAILED_PRECONDITION
    error = _error(
        observe, stub, plain_exp.id, suggestionId=s.id, values=[{"name": "m", "value": 1}]
    )
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
    patch.state = experiment_pb2.EXPERIMENT_STATE_ACTIVE
    stub.UpdateExperiment(pb.UpdateExperimentRequest(experiment=patch, update_mask=mask))
    observe(stub, plain_exp.id, suggestionId=s.id, values=[{"name": "m", "value": 1}])


def test_only_open_suggestions_can_be_deleted(stub, plain_exp):
    a, b = suggest(stub, plain_exp.id, count=2)
    stub.DeleteSuggestion(pb.DeleteSuggestionRequest(experiment_id=plain_exp.id, id=a.id))
    assert (
        _error(
            stub.GetSuggestion, pb.GetSuggestionRequest(experiment_id=plain_exp.id, id=a.id)
        ).code()
        is grpc.StatusCode.NOT_FOUND
    )
    observe(stub, plain_exp.id, suggestionId=b.id, values=[{"name": "m", "value": 1}])
    error = _error(
        stub.DeleteSuggestion, pb.DeleteSuggestionRequest(experiment_id=plain_exp.id, id=b.id)
    )
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION


def test_suggestion_count_is_bounded(stub, plain_exp):
    _invalid(_error(suggest, stub, plain_exp.id, count=101), "count", "between 1 and 100")


@pytest.mark.parametrize(
    ("paths", "patch", "field", "words"),
    [
        (
            ["parameters"],
            {"parameters": [double("x", 0, 2)]},
            "experiment.parameters",
            "cannot change",
        ),
        (["linear_constraints"], {}, "experiment.linear_constraints", "cannot change"),
        (["conditionals"], {}, "experiment.conditionals", "cannot change"),
        (["type"], {}, "experiment.type", "cannot change"),
        ([], {"name": "n"}, "update_mask", "required"),
        (["bogus"], {}, "update_mask.paths[0]", "not a field of Experiment"),
        (["id"], {}, "update_mask", "not an updatable field"),
        (["metrics"], {"metrics": [opt("renamed")]}, "experiment.metrics", "only thresholds"),
        (
            ["observation_budget"],
            {"observation_budget": 0},
            "experiment.observation_budget",
            "at least 1",
        ),
    ],
    ids=[
        "parameters",
        "constraints",
        "conditionals",
        "type",
        "mask-required",
        "mask-known",
        "mask-updatable",
        "metric-shape",
        "revalidated",
    ],
)
def test_update_rules(stub, plain_exp, paths, patch, field, words):
    from google.protobuf import json_format

    proto = json_format.ParseDict({"id": plain_exp.id, **patch}, experiment_pb2.Experiment())
    request = pb.UpdateExperimentRequest(
        experiment=proto, update_mask=field_mask_pb2.FieldMask(paths=paths)
    )
    _invalid(_error(stub.UpdateExperiment, request), field, words)
    again = stub.GetExperiment(pb.GetExperimentRequest(id=plain_exp.id)).experiment
    assert again.name == plain_exp.name and again.parameters == plain_exp.parameters


def test_update_changes_only_masked_fields(stub, plain_exp):
    proto = experiment_pb2.Experiment(
        id=plain_exp.id, name="renamed", project="p", observation_budget=7
    )
    mask = field_mask_pb2.FieldMask(paths=["name", "observation_budget"])
    updated = stub.UpdateExperiment(
        pb.UpdateExperimentRequest(experiment=proto, update_mask=mask)
    ).experiment
    assert (updated.name, updated.project, updated.observation_budget) == ("renamed", "", 7)


def test_update_observation(stub, plain_exp):
    (s,) = suggest(stub, plain_exp.id)
    o = observe(stub, plain_exp.id, suggestionId=s.id, values=[{"name": "m", "value": 1}])
    patch = observation_pb2.Observation(id=o.id, failed=True)
    req = pb.UpdateObservationRequest(
        experiment_id=plain_exp.id,
        observation=patch,
        update_mask=field_mask_pb2.FieldMask(paths=["failed"]),
    )
    _invalid(_error(stub.UpdateObservation, req), "observation.values", "no values")
    req.update_mask.paths.append("values")
    updated = stub.UpdateObservation(req).observation
    assert updated.failed and not updated.values and updated.suggestion_id == s.id
    req.update_mask.paths[:] = ["assignments"]
    _invalid(_error(stub.UpdateObservation, req), "update_mask", "not updatable")
    stub.DeleteObservation(pb.DeleteObservationRequest(experiment_id=plain_exp.id, id=o.id))
    assert _count(stub, plain_exp.id) == 0
    again = stub.GetSuggestion(
        pb.GetSuggestionRequest(experiment_id=plain_exp.id, id=s.id)
    ).suggestion
    assert again.state == 2  # stays closed


def test_bad_page_token(stub):
    _invalid(
        _error(stub.ListExperiments, pb.ListExperimentsRequest(page_token="garbage")),
        "page_token",
        "token",
    )


@pytest.mark.parametrize(
    ("metrics", "extra"),
    [
        ([opt("m")], {}),
        ([opt("m"), opt("n", objective="METRIC_OBJECTIVE_MINIMIZE")], {"observationBudget": 30}),
        ([opt("m")], {"numSolutions": 3, "observationBudget": 30}),
        ([opt("m"), constraint("k", threshold=0.5)], {"observationBudget": 30}),
    ],
    ids=["one-metric", "two-metrics", "three-solutions", "constraint-metric"],
)
def test_the_largest_finite_values_keep_the_model_suggesting(stub, metrics, extra):
    """Values near the largest double are accepted and must not break the model:
    its sums, squares and predictions in those units would overflow."""
    exp = create(stub, parameters=[double("x"), double("y")], metrics=metrics, **extra)
    names = [m["name"] for m in metrics]
    extremes = [1.7e308, -1.7e308, 1e308, 5e307]
    for i in range(16):
        (s,) = suggest(stub, exp.id)
        value = extremes[i % 4] if i >= 10 else float(i)
        observe(
            stub, exp.id, suggestionId=s.id, values=[{"name": n, "value": value} for n in names]
        )
    for _ in range(3):
        (s,) = suggest(stub, exp.id)
        a = {k: v.double_value for k, v in s.assignments.items()}
        assert 0.0 <= a["x"] <= 1.0 and 0.0 <= a["y"] <= 1.0
        observe(stub, exp.id, suggestionId=s.id, values=[{"name": n, "value": 1.0} for n in names])


def test_an_int_given_as_an_integral_double_is_stored_as_an_int(stub, plain_exp):
    for make in (
        lambda a: observe(stub, plain_exp.id, assignments=a, values=[{"name": "m", "value": 1}]),
        lambda a: stub.CreateSuggestions(
            pb.CreateSuggestionsRequest(
                experiment_id=plain_exp.id,
                assignments=json_format.ParseDict({"assignments": a}, su.Suggestion()).assignments,
            )
        ).suggestions[0],
    ):
        made = make({"x": {"doubleValue": 0.5}, "i": {"doubleValue": 3.0}})
        assert made.assignments["i"].WhichOneof("kind") == "int_value"
        assert made.assignments["i"].int_value == 3
    error = _error(
        observe,
        stub,
        plain_exp.id,
        assignments={"x": {"doubleValue": 0.5}, "i": {"doubleValue": 3.5}},
        values=[{"name": "m", "value": 1}],
    )
    _invalid(error, 'assignments["i"]', "integer")
