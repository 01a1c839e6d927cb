"""Every limit of domain/limits.py: accepted at the limit, refused past it with
the field and the limit named; and the largest responses the limits allow
arrive whole, below gRPC's 4 MiB, with the server under 1 GB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format, struct_pb2

from optserve.domain import limits
from optserve.v1 import experiment_pb2, observation_pb2
from optserve.v1 import service_pb2 as pb

from ..conftest import RunningServer, start_server
from ..reliability.test_fuzz import check_suggestion
from .helpers import categorical, double, experiment, integer, violations
from .test_experiment_validation import lc, opt, store

# A character of 4 bytes in UTF-8: the worst case of every length limit.
WIDE = "\U0001d4b3"
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server of this module's own, whose memory the last test reads."""
    running = start_server(Path(tmp_path_factory.mktemp("limits")) / "optserve.db")
    yield running
    assert running.stop() == 0


@pytest.fixture(scope="module")
def lstub(own_server):
    return own_server.stub()


def _create(stub, exp: experiment_pb2.Experiment) -> experiment_pb2.Experiment:
    return stub.CreateExperiment(pb.CreateExperimentRequest(experiment=exp)).experiment


def _refused(stub, exp: experiment_pb2.Experiment) -> list[tuple[str, str]]:
    with pytest.raises(grpc.RpcError) as info:
        _create(stub, exp)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT, info.value
    return violations(info.value)


def _categoricals(n: int, values: int, prefix: str = "c") -> list[dict]:
    return [categorical(f"{prefix}{i}", [f"v{j}" for j in range(values)]) for i in range(n)]


def _conditionals(n: int, values: int) -> list[dict]:
    return [{"name": f"k{i}", "values": [str(j) for j in range(values)]} for i in range(n)]


def _constraints(n: int) -> list[dict]:
    return [lc("LESS_THAN", 1 + k, ("x", 1), ("y", 1)) for k in range(n)]


def _grid(name: str, values: list[float]) -> dict:
    return {"name": name, "type": "PARAMETER_TYPE_DOUBLE", "grid": values}


def _metadata(keys: int, key_length: int = 1, value: object = "v") -> dict:
    return {f"{i:03d}".ljust(key_length, "k"): value for i in range(keys)}


# (limit, fields at the limit, fields past it, field named, words in the description)
CASES = [
    ("experiment-name", {"name": "n" * 100}, {"name": "n" * 101}, "experiment.name", "at most 100"),
    (
        "parameter-name",
        {"parameters": [double(WIDE * 100)]},
        {"parameters": [double(WIDE * 101)]},
        "experiment.parameters[0].name",
        "at most 100",
    ),
    (
        "metric-name",
        {"metrics": [{"name": "m" * 100}]},
        {"metrics": [{"name": "m" * 101}]},
        "experiment.metrics[0].name",
        "at most 100",
    ),
    (
        "conditional-name",
        {"conditionals": [{"name": "k" * 100, "values": ["a"]}]},
        {"conditionals": [{"name": "k" * 101, "values": ["a"]}]},
        "experiment.conditionals[0].name",
        "at most 100",
    ),
    (
        "project-length",
        {"project": "p" * 100},
        {"project": "p" * 101},
        "experiment.project",
        "at most 100",
    ),
    (
        "project-characters",
        {"project": "team-a_2.x"},
        {"project": "Team A"},
        "experiment.project",
        "a-z0-9._-",
    ),
    (
        "categorical-value-length",
        {"parameters": [categorical("c", ["a" * 50, "b"])]},
        {"parameters": [categorical("c", ["a" * 51, "b"])]},
        "experiment.parameters[0].categorical_values",
        "at most 50",
    ),
    (
        "categorical-values",
        {"parameters": _categoricals(1, 100)},
        {"parameters": _categoricals(1, 101)},
        "experiment.parameters[0].categorical_values",
        "at most 100",
    ),
    (
        "conditional-values",
        {"conditionals": _conditionals(1, 20)},
        {"conditionals": _conditionals(1, 21)},
        "experiment.conditionals[0].values",
        "at most 20",
    ),
    (
        "conditional-value-length",
        {"conditionals": [{"name": "k", "values": ["a" * 50]}]},
        {"conditionals": [{"name": "k", "values": ["a" * 51]}]},
        "experiment.conditionals[0].values",
        "at most 50",
    ),
    (
        "parameters",
        {"parameters": [double(f"x{i}") for i in range(100)]},
        {"parameters": [double(f"x{i}") for i in range(101)]},
        "experiment.parameters",
        "at most 100",
    ),
    (
        "dimensions",
        {"parameters": _categoricals(2, 100)},
        {"parameters": [*_categoricals(2, 100), double("x")]},
        "experiment.parameters",
        "at most 200 dimensions",
    ),
    (
        "conditionals",
        {"conditionals": _conditionals(10, 2)},
        {"conditionals": _conditionals(11, 2)},
        "experiment.conditionals",
        "at most 10",
    ),
    (
        "conditional-combinations",
        {"conditionals": _conditionals(4, 10)},
        {"conditionals": [*_conditionals(4, 10), {"name": "last", "values": ["a", "b"]}]},
        "experiment.conditionals",
        "at most 10000 combinations",
    ),
    (
        "linear-constraints",
        {"parameters": [double("x"), double("y")], "linearConstraints": _constraints(100)},
        {"parameters": [double("x"), double("y")], "linearConstraints": _constraints(101)},
        "experiment.linear_constraints",
        "at most 100",
    ),
    (
        "constraint-weight",
        {
            "parameters": [double("x"), double("y")],
            "linearConstraints": [lc("LESS_THAN", 1e15, ("x", 1e15), ("y", 1))],
        },
        {
            "parameters": [double("x"), double("y")],
            "linearConstraints": [lc("LESS_THAN", 1e15, ("x", 2e15), ("y", 1))],
        },
        "experiment.linear_constraints[0].terms[0].weight",
        "1e+15",
    ),
    (
        "grid-values",
        {"parameters": [double("x", 0, 1000, grid=list(range(1000)))]},
        {"parameters": [double("x", 0, 1000, grid=list(range(1001)))]},
        "experiment.parameters[0].grid",
        "at most 1000",
    ),
    (
        "grid-size",
        {"type": "EXPERIMENT_TYPE_GRID", "parameters": [integer("i", 1, 100_000)]},
        {"type": "EXPERIMENT_TYPE_GRID", "parameters": [integer("i", 0, 100_000)]},
        "experiment.parameters",
        "more than 100000",
    ),
    (
        "double-bounds-magnitude",
        {"parameters": [double("x", -(2.0**52), 2.0**52)]},
        {"parameters": [double("x", -(2.0**52), 2.0**52 + 2)]},
        "experiment.parameters[0].bounds",
        "2^52",
    ),
    (
        "int-bounds-magnitude",
        {"parameters": [integer("i", -(2**52), 2**52)]},
        {"parameters": [integer("i", -(2**52) - 2, 2**52)]},
        "experiment.parameters[0].bounds",
        "2^52",
    ),
    (
        "grid-magnitude",
        {"parameters": [_grid("x", [0, 2.0**52])]},
        {"parameters": [_grid("x", [0, 2.0**52 + 2])]},
        "experiment.parameters[0].grid",
        "2^52",
    ),
    (
        "metrics",
        {"metrics": [opt("m"), *[store(f"s{i}") for i in range(49)]]},
        {"metrics": [opt("m"), *[store(f"s{i}") for i in range(50)]]},
        "experiment.metrics",
        "between 1 and 50",
    ),
    (
        "parallel-bandwidth",
        {"parallelBandwidth": 1000},
        {"parallelBandwidth": 1001},
        "experiment.parallel_bandwidth",
        "between 1 and 1000",
    ),
    (
        "metadata-keys",
        {"metadata": _metadata(100)},
        {"metadata": _metadata(101)},
        "experiment.metadata",
        "at most 100 keys",
    ),
    (
        "metadata-key-length",
        {"metadata": {WIDE * 100: 1}},
        {"metadata": {WIDE * 101: 1}},
        f'experiment.metadata["{WIDE * 100}..."]',
        "at most 100 characters",
    ),
    (
        "metadata-string-length",
        {"metadata": {"k": WIDE * 500}},
        {"metadata": {"k": WIDE * 501}},
        'experiment.metadata["k"]',
        "at most 500 characters",
    ),
    (
        "metadata-assignments-size",
        {"parameters": [double(f"{i:03d}".ljust(100, "x")) for i in range(100)]},
        {"parameters": [double(f"{i:03d}".ljust(100, WIDE)) for i in range(100)]},
        "experiment.parameters",
        "at most 20480 bytes",
    ),
]


@pytest.mark.parametrize(
    ("at_limit", "past_limit", "field", "words"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_limit(lstub, at_limit, past_limit, field, words):
    exp = _create(lstub, experiment(**at_limit))
    request = pb.CreateSuggestionsRequest(experiment_id=exp.id, count=2)
    for s in lstub.CreateSuggestions(request).suggestions:
        check_suggestion(exp, s.assignments)
    found = _refused(lstub, experiment(**past_limit))
    assert any(f == field and words in d for f, d in found), found


def test_search_space_size(lstub):
    """The search space is capped in bytes, naming its largest element."""
    params = [double(f"g{i}", 0, 1000, grid=list(range(1000))) for i in range(40)]
    exp = experiment(parameters=params)
    while sum(p.ByteSize() for p in exp.parameters) > limits.MAX_SEARCH_SPACE_BYTES:
        del exp.parameters[-1]
    assert _create(lstub, exp).id
    exp.parameters.add().CopyFrom(exp.parameters[0])
    exp.parameters[-1].name = "over"
    exp.parameters[-1].grid.extend([1000.5])
    found = _refused(lstub, exp)
    assert found[0][0] == f"experiment.parameters[{len(exp.parameters) - 1}]", found
    assert f"at most {limits.MAX_SEARCH_SPACE_BYTES} bytes" in found[0][1]


def test_categorical_values_of_the_issue_are_refused(lstub):
    """100,000 categorical values once made one suggestion take 20 s of CPU."""
    found = _refused(lstub, experiment(parameters=_categoricals(1, 100_000)))
    assert found and found[0][0].startswith("experiment.parameters[0]"), found


def test_a_long_name_is_refused_briefly(lstub):
    """A name of 3 MB (4 MB were accepted) is refused without echoing it."""
    found = _refused(lstub, experiment(name="n" * 3_000_000))
    assert found == [("experiment.name", "a name has at most 100 characters (got 3000000)")]


def test_many_broken_rules_give_a_bounded_error(lstub):
    """Thousands of broken rules report the first few, so the status stays small."""
    params = [categorical(f"c{i}", ["a"]) for i in range(99)]
    found = _refused(lstub, experiment(parameters=params))
    assert 1 <= len(found) <= 10


def test_suggestion_metadata_times_count_is_bounded(lstub):
    exp = _create(lstub, experiment())
    meta = struct_pb2.Struct()
    meta.update(_metadata(100, 100, WIDE * 500))
    assert meta.ByteSize() * 4 <= limits.MAX_SUGGESTIONS_METADATA_BYTES < meta.ByteSize() * 5
    request = pb.CreateSuggestionsRequest(experiment_id=exp.id, count=5, metadata=meta)
    with pytest.raises(grpc.RpcError) as info:
        lstub.CreateSuggestions(request)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in violations(info.value)] == ["metadata"]
    listed = lstub.ListSuggestions(pb.ListSuggestionsRequest(experiment_id=exp.id))
    assert not listed.suggestions, "a refused call stores nothing"
    request.count = 4
    assert len(lstub.CreateSuggestions(request).suggestions) == 4


def test_page_size_is_capped_not_refused(lstub):
    exp = _create(lstub, experiment())
    lstub.CreateSuggestions(pb.CreateSuggestionsRequest(experiment_id=exp.id, count=3))
    request = pb.ListSuggestionsRequest(experiment_id=exp.id, page_size=10**9)
    assert len(lstub.ListSuggestions(request).suggestions) == 3


# ---------------------------------------------------------------- the worst cases


def _max_metadata() -> dict:
    """100 keys of 100 four-byte characters, each with a string of 500."""
    return {f"{i:03d}" + WIDE * 97: WIDE * 500 for i in range(100)}


def _worst_experiment() -> experiment_pb2.Experiment:
    """Every size at its limit: name, project, metadata, 50 metrics with long
    names, suggestions' assignments near MAX_ASSIGNMENTS_BYTES, and grids
    filling the search space up to MAX_SEARCH_SPACE_BYTES."""
    wide = [categorical(f"{i:02d}" + WIDE * 98, [WIDE * 50, WIDE * 49 + "b"]) for i in range(31)]
    metrics = [opt(WIDE * 100)] + [store(f"{i:02d}" + WIDE * 98) for i in range(49)]
    exp = experiment(
        name=WIDE * 100,
        project="p" * 100,
        parameters=wide,
        metrics=metrics,
        metadata=_max_metadata(),
    )
    space = sum(x.ByteSize() for x in [*exp.parameters, *exp.metrics])
    grid = json_format.ParseDict(
        double("g", 0, 1, grid=[k / 1000 for k in range(1000)]), experiment_pb2.Parameter()
    )
    k = 0
    while space + grid.ByteSize() + 4 <= limits.MAX_SEARCH_SPACE_BYTES:
        grid.name = f"g{k:02d}"
        exp.parameters.add().CopyFrom(grid)
        space += exp.parameters[-1].ByteSize() + 3
        k += 1
    return exp


def _worst_observation(exp: experiment_pb2.Experiment, value: float) -> observation_pb2.Observation:
    obs = observation_pb2.Observation()
    for p in exp.parameters:
        if p.categorical_values:
            obs.assignments[p.name].string_value = p.categorical_values[0]
        else:
            obs.assignments[p.name].double_value = p.grid[-1]
    for m in exp.metrics:
        obs.values.add(name=m.name, value=value, value_stddev=1.0)
    obs.metadata.update(_max_metadata())
    return obs


def _all_pages(call, request) -> list:
    """Every item of a list call, page by page, checking each page's size."""
    items, seen_tokens = [], set()
    while True:
        response = call(request)
        assert response.ByteSize() <= limits.MAX_RESPONSE_BYTES + 16
        items += list(getattr(response, response.DESCRIPTOR.fields[0].name))
        if not response.next_page_token:
            return items
        assert response.next_page_token not in seen_tokens
        seen_tokens.add(response.next_page_token)
        request.page_token = response.next_page_token


@pytest.fixture(scope="module")
def worst(lstub) -> experiment_pb2.Experiment:
    exp = _worst_experiment()
    assert sum(x.ByteSize() for x in [*exp.parameters, *exp.metrics]) > 0.97 * (
        limits.MAX_SEARCH_SPACE_BYTES
    )
    return _create(lstub, exp)


def test_worst_experiment_arrives(lstub, worst):
    obs = _worst_observation(worst, 1.0)
    lstub.CreateObservation(pb.CreateObservationRequest(experiment_id=worst.id, observation=obs))
    got = lstub.GetExperiment(pb.GetExperimentRequest(id=worst.id)).experiment
    assert got.progress.best_observation.metadata == obs.metadata
    assert got.ByteSize() > 700 * 1024, "not the worst case"
    # progress carries the best, first and last observations (the same one here)
    assert got.ByteSize() < 1400 * 1024 < limits.GRPC_MAX_MESSAGE_BYTES


def test_worst_suggestion_batch_arrives(lstub, worst):
    meta = struct_pb2.Struct()
    meta.update({f"{k:02d}": "x" * 500 for k in range(20)})
    assert 100 * meta.ByteSize() > 0.9 * limits.MAX_SUGGESTIONS_METADATA_BYTES
    assert 100 * meta.ByteSize() <= limits.MAX_SUGGESTIONS_METADATA_BYTES
    request = pb.CreateSuggestionsRequest(
        experiment_id=worst.id, count=limits.MAX_SUGGESTIONS_PER_CALL, metadata=meta
    )
    response = lstub.CreateSuggestions(request)
    assert len(response.suggestions) == 100
    assert 2.5 * MiB < response.ByteSize() < limits.GRPC_MAX_MESSAGE_BYTES
    listed = _all_pages(
        lstub.ListSuggestions, pb.ListSuggestionsRequest(experiment_id=worst.id, page_size=1000)
    )
    assert [s.id for s in listed] == [s.id for s in response.suggestions]


def test_worst_observation_pages_arrive(lstub, worst):
    made = [worst_id.id for worst_id in _observations(lstub, worst, 14)]
    listed = _all_pages(
        lstub.ListObservations, pb.ListObservationsRequest(experiment_id=worst.id, page_size=1000)
    )
    assert [o.id for o in listed][-14:] == made
    assert len({o.id for o in listed}) == len(listed)


def _observations(stub, exp, n: int) -> list:
    out = []
    for k in range(n):
        obs = _worst_observation(exp, float(k))
        request = pb.CreateObservationRequest(experiment_id=exp.id, observation=obs)
        out.append(stub.CreateObservation(request).observation)
    return out


def test_worst_experiment_pages_arrive(lstub, worst):
    project = "worst-pages"
    made = []
    for _ in range(5):
        exp = _worst_experiment()
        exp.project = project
        made.append(_create(lstub, exp).id)
        _observations(
            lstub, exp=lstub.GetExperiment(pb.GetExperimentRequest(id=made[-1])).experiment, n=1
        )
    request = pb.ListExperimentsRequest(project=project, page_size=1000)
    first = lstub.ListExperiments(request)
    assert 1 <= len(first.experiments) < 5 and first.next_page_token
    listed = _all_pages(lstub.ListExperiments, request)
    assert [e.id for e in listed] == made[::-1]


def test_long_pareto_front_is_cut_to_fit(lstub):
    exp = experiment(
        parameters=[double("x", 0, 100)],
        metrics=[opt("a"), opt("b")],
        observationBudget=100,
    )
    created = _create(lstub, exp)
    for k in range(16):
        obs = observation_pb2.Observation()
        obs.assignments["x"].double_value = float(k)
        obs.values.add(name="a", value=float(k))
        obs.values.add(name="b", value=float(-k))
        obs.metadata.update(_max_metadata())
        lstub.CreateObservation(
            pb.CreateObservationRequest(experiment_id=created.id, observation=obs)
        )
    best = lstub.GetBestAssignments(pb.GetBestAssignmentsRequest(experiment_id=created.id))
    assert 10 <= len(best.observations) < 16
    assert f"{16 - len(best.observations)} more not shown" in best.explanation
    assert best.ByteSize() <= limits.MAX_RESPONSE_BYTES + 1024


def test_server_memory_stays_under_a_gigabyte(own_server, lstub, worst):
    """Runs last in this module: the peak resident memory of everything above."""
    status = Path(f"/proc/{own_server.process.pid}/status").read_text()
    peak_kb = int(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1])
    assert peak_kb < 1024 * 1024, f"peak RSS {peak_kb} kB"


@pytest.mark.parametrize("character", ["\x00", "\x1b", "\n", "\x7f", "\x9b"])
def test_names_and_categorical_values_hold_no_control_characters(lstub, character):
    """PostgreSQL text cannot hold NUL, and names are printed by terminals (an escape
    sequence in one would drive an operator's terminal): both are refused by name."""
    found = _refused(lstub, experiment(name=f"a{character}b"))
    assert found == [
        (
            "experiment.name",
            "the experiment name may not contain control characters (U+0000-U+001F, U+007F-U+009F)",
        )
    ]
    found = _refused(lstub, experiment(parameters=[double(f"x{character}")]))
    assert [f for f, _ in found] == ["experiment.parameters[0].name"], found
    found = _refused(lstub, experiment(parameters=[categorical("c", ["a", f"b{character}"])]))
    assert [f for f, _ in found] == ["experiment.parameters[0].categorical_values"], found
    # printable names beyond ASCII stay welcome
    assert _create(lstub, experiment(name="Lernrate \u00fc\u00e9 \u2603 \U0001f600")).id
