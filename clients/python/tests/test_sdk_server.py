"""The SDK against a real optserve server (see conftest.py), with the experiments
of SigOpt's documents (shared/seeds) as written there."""

from __future__ import annotations

import math
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import pytest

import optserve_client as sigopt
from optserve_client import ApiError, Connection

# sigopt-parameter-constraints.txt, "AI Module" (Python).
CONSTRAINED = dict(
    name="Single metric optimization with linear constraints",
    type="offline",
    project="sigopt-examples",
    parameters=[
        dict(name="alpha", type="double", bounds=dict(min=0.0, max=1.0)),
        dict(name="beta", type="double", bounds=dict(min=0.0, max=1.0)),
        dict(name="gamma", type="int", bounds=dict(min=0, max=10)),
        dict(name="theta", type="int", bounds=dict(min=0, max=10)),
    ],
    metrics=[dict(name="metric_value", objective="maximize")],
    budget=80,
    parallel_bandwidth=1,
    linear_constraints=[
        # Constraint inequality: alpha + beta <= 1
        dict(
            type="less_than",
            threshold=1,
            terms=[
                dict(name="alpha", weight=1),
                dict(name="beta", weight=1),
            ],
        ),
        # Constraint inequality: 3 * gamma - 5 * theta >= 0
        dict(
            type="greater_than",
            threshold=0,
            terms=[
                dict(name="gamma", weight=3),
                dict(name="theta", weight=-5),
            ],
        ),
    ],
)

# sigopt-conditional-experiments.txt, "Deep Learning Example: Convolutional Neural Network".
CNN = dict(
    name="Deep Learning with Conditionals",
    project="sigopt-examples",
    conditionals=[
        dict(
            name="num_conv_layers",
            values=["1", "2", "3"],
        ),
    ],
    parameters=[
        dict(
            name="layer_1_num_filters",
            conditions=dict(num_conv_layers=["1", "2", "3"]),
            type="int",
            bounds=dict(min=100, max=300),
        ),
        dict(
            name="layer_1_filter_size",
            conditions=dict(num_conv_layers=["1", "2", "3"]),
            type="int",
            bounds=dict(min=2, max=10),
        ),
        dict(
            name="layer_2_num_filters",
            conditions=dict(num_conv_layers=["2", "3"]),
            type="int",
            bounds=dict(min=100, max=300),
        ),
        dict(
            name="layer_2_filter_size",
            conditions=dict(num_conv_layers=["2", "3"]),
            type="int",
            bounds=dict(min=4, max=8),
        ),
        dict(
            name="layer_3_num_filters",
            conditions=dict(num_conv_layers="3"),
            type="int",
            bounds=dict(min=100, max=300),
        ),
        dict(
            name="layer_3_filter_size",
            conditions=dict(num_conv_layers="3"),
            type="int",
            bounds=dict(min=3, max=5),
        ),
    ],
    metrics=[dict(name="Accuracy", objective="maximize")],
    parallel_bandwidth=1,
    observation_budget=200,
)


def check_assignments(spec: dict[str, Any], assignments: dict[str, Any]) -> None:
    """Asserts that assignments honour the spec: types, bounds, categorical
    values, conditionals and their conditions, linear constraints."""
    conditionals = {c["name"]: c["values"] for c in spec.get("conditionals", [])}
    for name, values in conditionals.items():
        assert assignments[name] in values, (name, assignments)
    expected = set(conditionals)
    for p in spec["parameters"]:
        conditions = p.get("conditions") or {}
        active = all(
            assignments[c] in ([v] if isinstance(v, str) else v) for c, v in conditions.items()
        )
        if not active:
            assert p["name"] not in assignments, (p["name"], assignments)
            continue
        expected.add(p["name"])
        value = assignments[p["name"]]
        if p["type"] == "categorical":
            names = [v if isinstance(v, str) else v["name"] for v in p["categorical_values"]]
            assert value in names
            continue
        if p["type"] == "int":
            assert type(value) is int, (p["name"], value)
        else:
            assert type(value) is float and math.isfinite(value), (p["name"], value)
        assert p["bounds"]["min"] <= value <= p["bounds"]["max"], (p["name"], value)
    assert set(assignments) == expected, assignments
    for c in spec.get("linear_constraints", []):
        # exactly, no tolerance: the server guarantees it for a plain sum
        total = sum(t["weight"] * assignments[t["name"]] for t in c["terms"])
        if c["type"] == "less_than":
            assert total <= c["threshold"], (c, assignments)
        else:
            assert total >= c["threshold"], (c, assignments)


EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "parallel_workers.py"


def cnn_accuracy(params) -> float:
    layers = int(params.num_conv_layers)
    score = params.layer_1_num_filters / 300 + 1 / params.layer_1_filter_size
    if layers >= 2:
        score += params.layer_2_num_filters / 600
    if layers == 3:
        score += params["layer_3_filter_size"] / 10
    return score


def test_conditional_seed_as_written_with_create_run(conn: Connection) -> None:
    experiment = sigopt.create_experiment(**CNN)
    assert experiment.budget == 200 and experiment.conditionals[0].values == ["1", "2", "3"]
    assert experiment.parameters[4].conditions == {"num_conv_layers": ["3"]}
    seen = set()
    for _ in range(15):
        with experiment.create_run() as run:
            check_assignments(CNN, run.params)
            seen.add(run.params.num_conv_layers)
            if run.params.num_conv_layers != "3":
                with pytest.raises(AttributeError):
                    _ = run.params.layer_3_num_filters
                with pytest.raises(KeyError):
                    _ = run.params["layer_3_filter_size"]
            run.log_metric("Accuracy", cnn_accuracy(run.params))
    assert not experiment.is_finished()
    assert experiment.progress.observation_count == 15
    assert len(seen) > 1, "every suggestion had the same number of layers"


def test_conditional_seed_loop_forms(conn: Connection) -> None:
    # The same dicts, with a budget the loops can reach quickly.
    experiment = sigopt.create_experiment(**{**CNN, "observation_budget": 8})
    for run in experiment.loop():
        with run:
            check_assignments(CNN, run.params)
            run.log_metric("Accuracy", cnn_accuracy(run.params), stddev=0.01)
    assert experiment.is_finished() and experiment.progress.observation_count == 8

    spec = {k: v for k, v in CNN.items() if k != "observation_budget"}
    experiment = sigopt.get_experiment(sigopt.create_experiment(**spec, budget=6).id)
    while not experiment.is_finished():
        with experiment.create_run() as run:
            check_assignments(CNN, run.params)
            run.log_metric("Accuracy", cnn_accuracy(run.params))
    runs = list(experiment.get_runs())
    assert len(runs) == 6 and not any(r.failed for r in runs)
    best = list(experiment.get_best_runs())
    assert len(best) == 1
    assert best[0].value == max(r.value for r in runs)
    assert experiment.get_best_assignments() == [best[0].assignments]
    check_assignments(CNN, best[0].assignments)


def test_constrained_seed_is_accepted(conn: Connection) -> None:
    experiment = sigopt.create_experiment(**CONSTRAINED)
    assert experiment.budget == 80 and experiment.type == "offline"
    assert experiment.project == "sigopt-examples"
    constraints = experiment.linear_constraints
    assert [c.type for c in constraints] == ["less_than", "greater_than"]
    assert [(t.name, t.weight) for t in constraints[1].terms] == [("gamma", 3), ("theta", -5)]
    assert sigopt.get_experiment(experiment.id).data == experiment.data


def test_constrained_seed_as_written_to_its_budget(conn: Connection) -> None:
    experiment = sigopt.create_experiment(**CONSTRAINED)
    while not experiment.is_finished():
        with experiment.create_run() as run:
            check_assignments(CONSTRAINED, run.params)
            p = run.params
            run.log_metric("metric_value", p.alpha + p.beta + p.gamma - p.theta)
    assert experiment.progress.observation_count == 80
    (best,) = experiment.get_best_runs()
    check_assignments(CONSTRAINED, best.assignments)
    assert best.value == max(r.value for r in experiment.get_runs())


def test_random_constrained_loop(conn: Connection) -> None:
    experiment = sigopt.create_experiment(**{**CONSTRAINED, "type": "random", "budget": 20})
    for run in experiment.loop():
        with run:
            check_assignments(CONSTRAINED, run.params)
            p = run.params
            run.log_metric("metric_value", p.alpha + p.beta + p.gamma - p.theta)
    assert experiment.progress.observation_count == 20


def test_core_module_chains(conn: Connection) -> None:
    # sigopt-conditional-experiments.txt's conn.experiments().create(...) call,
    # then sigopt-optimization-loop.txt's loop with a reachable budget.
    experiment = conn.experiments().create(**CNN)
    assert conn.experiments(experiment.id).fetch().observation_budget == 200
    experiment = conn.experiments(experiment.id).update(observation_budget=5)
    while experiment.progress.observation_count < experiment.observation_budget:
        suggestion = conn.experiments(experiment.id).suggestions().create()
        check_assignments(CNN, suggestion.assignments)
        value = cnn_accuracy(suggestion.assignments)
        conn.experiments(experiment.id).observations().create(suggestion=suggestion.id, value=value)
        experiment = conn.experiments(experiment.id).fetch()
    best_assignments = (
        conn.experiments(experiment.id).best_assignments().fetch().data[0].assignments
    )
    check_assignments(CNN, best_assignments)
    observations = conn.experiments(experiment.id).observations().fetch()
    assert len(observations) == 5 and observations.data[0].suggestion_id


def test_failure_inside_with_is_recorded_and_reraised(conn: Connection) -> None:
    experiment = sigopt.create_experiment(
        name="failures",
        parameters=[dict(name="x", type="double", bounds=dict(min=0, max=1))],
        metrics=[dict(name="m", objective="minimize")],
        budget=10,
    )
    run = experiment.create_run()
    with pytest.raises(ZeroDivisionError), run:
        run.log_metric("m", 1.0)
        _ = 1 / 0
    assert run.observation is not None and run.observation.failed
    stored = conn.get_observation(experiment.id, run.observation.id)
    assert stored.failed and stored.values == [] and stored.suggestion_id == run.id

    with experiment.create_run() as run:
        run.log_failure()
        run.log_metadata({"reason": "out of memory"})
    assert run.observation.failed and run.observation.metadata == {"reason": "out of memory"}

    with experiment.create_run() as run:  # nothing logged: a failed observation
        pass
    assert run.observation.failed

    with experiment.create_run() as run:
        run.log_metric("m", 0.25, stddev=0.5)
        run.log_metadata("gpu", "a100")
    assert not run.observation.failed and run.observation.values[0].value_stddev == 0.5
    assert run.observation.metadata == {"gpu": "a100"}
    with pytest.raises(RuntimeError, match="already ended"):
        run.log_metric("m", 1.0)

    experiment.refresh()
    assert experiment.progress.observation_count == 4
    assert experiment.progress.failed_observation_count == 3
    assert [o.failed for o in experiment.get_runs()] == [True, True, True, False]
    assert [b.value for b in experiment.get_best_runs()] == [0.25]


def test_low_level_calls(conn: Connection) -> None:
    created = conn.create_experiment(
        name="low level",
        project="low-level-project",
        parameters=[
            dict(name="x", type="double", bounds=dict(min=-1, max=1)),
            dict(name="n", type="int", bounds=dict(min=1, max=4)),
            dict(name="c", type="categorical", categorical_values=["a", dict(name="b")]),
        ],
        metrics=[dict(name="m"), dict(name="kept", strategy="store")],
        metadata={"owner": "tests"},
    )
    assert created.metadata == {"owner": "tests"} and created.budget is None
    eid = created.id
    suggestions = conn.create_suggestions(eid, count=3, metadata={"batch": 1})
    assert len(suggestions) == 3 and all(s.state == "open" for s in suggestions)
    assert conn.get_suggestion(eid, suggestions[0].id) == suggestions[0]
    assert len(conn.list_suggestions(eid, state="open")) == 3
    conn.delete_suggestion(eid, suggestions[2].id)
    assert [s.id for s in conn.iter_suggestions(eid)] == [s.id for s in suggestions[:2]]

    obs = conn.create_observation(
        eid,
        suggestion=suggestions[0],
        values=[dict(name="m", value=1.0), dict(name="kept", value=2)],
    )
    assert obs.assignments == suggestions[0].assignments and obs.metric("kept") == 2.0
    manual = conn.create_observation(
        eid, assignments={"x": 0.5, "n": 3, "c": "b"}, values={"m": 3.0, "kept": 0.0}
    )
    assert manual.assignments == {"x": 0.5, "n": 3, "c": "b"}
    assert type(manual.assignments["n"]) is int and manual.suggestion_id is None
    updated = conn.update_observation(eid, obs.id, values={"m": 4.0, "kept": 1.0})
    assert updated.metric("m") == 4.0
    assert conn.get_best_assignments(eid).data[0].id == obs.id
    conn.delete_observation(eid, obs.id)
    assert [o.id for o in conn.iter_observations(eid, page_size=1)] == [manual.id]

    renamed = conn.update_experiment(eid, name="renamed", budget=7)
    assert renamed.name == "renamed" and renamed.observation_budget == 7
    for i in range(2):
        conn.create_experiment(
            name=f"page {i}",
            project="low-level-project",
            parameters=[dict(name="x", type="double", bounds=dict(min=0, max=1))],
            metrics=[dict(name="m")],
        )
    page = conn.list_experiments(project="low-level-project", page_size=2)
    assert len(page) == 2 and page.next_page_token
    everything = list(conn.iter_experiments(project="low-level-project", page_size=2))
    assert len(everything) == 3 and everything[-1].id == eid
    conn.delete_experiment(eid)
    with pytest.raises(ApiError) as info:
        conn.get_experiment(eid)
    assert info.value.code is grpc.StatusCode.NOT_FOUND


def test_archive(conn: Connection) -> None:
    experiment = sigopt.create_experiment(
        name="archived",
        parameters=[dict(name="x", type="double", bounds=dict(min=0, max=1))],
        metrics=[dict(name="m")],
        budget=5,
    )
    assert experiment.archive().state == "archived"
    assert experiment.is_finished()
    with pytest.raises(ApiError) as info:
        experiment.create_run()
    assert info.value.code is grpc.StatusCode.FAILED_PRECONDITION


def test_invalid_experiment_names_the_field(conn: Connection) -> None:
    with pytest.raises(ApiError) as info:
        sigopt.create_experiment(
            name="bad",
            parameters=[dict(name="x", type="double", bounds=dict(min=1, max=0))],
            metrics=[dict(name="m")],
        )
    error = info.value
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert any(v.field.endswith("parameters[0].bounds") for v in error.field_violations), error


def test_unknown_ids_are_not_found(conn: Connection) -> None:
    with pytest.raises(ApiError) as info:
        sigopt.get_experiment("999999999")
    assert info.value.code is grpc.StatusCode.NOT_FOUND
    eid = conn.create_experiment(
        name="x",
        parameters=[dict(name="x", type="double", bounds=dict(min=0, max=1))],
        metrics=[dict(name="m")],
    ).id
    with pytest.raises(ApiError) as info:
        conn.get_suggestion(eid, "999999999")
    assert info.value.code is grpc.StatusCode.NOT_FOUND


def test_server_down_is_a_prompt_api_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    with Connection(f"127.0.0.1:{port}", timeout=2) as down, pytest.raises(ApiError) as info:
        sigopt.create_experiment(
            name="x",
            parameters=[dict(name="x", type="double", bounds=dict(min=0, max=1))],
            connection=down,
        )
    assert info.value.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    assert time.monotonic() - start < 3


def test_environment_variables(server, monkeypatch) -> None:
    monkeypatch.setenv("OPTSERVE_TARGET", server.target)
    monkeypatch.setenv("OPTSERVE_TOKEN", "secret")
    sigopt.set_connection(None)
    try:
        experiment = sigopt.create_experiment(
            name="from env",
            parameters=[dict(name="x", type="double", bounds=dict(min=0, max=1))],
            metrics=[dict(name="m")],
        )
        assert sigopt.get_connection().target == server.target
        assert sigopt.get_experiment(experiment.id).name == "from env"
    finally:
        sigopt.get_connection().close()
        sigopt.set_connection(None)


def test_parallel_workers_example(server) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(EXAMPLE),
            "--target",
            server.target,
            "--workers",
            "3",
            "--budget",
            "15",
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    runs = [int(line.split(": ")[1].split()[0]) for line in lines if line.startswith("worker ")]
    assert len(runs) == 3 and 15 <= sum(runs) <= 17, result.stdout
    assert any(line.startswith("best branin") for line in lines), result.stdout


def test_grid_and_log_parameters(conn: Connection) -> None:
    spec = dict(
        name="grid",
        type="grid",
        parameters=[
            dict(name="n", type="int", grid=[1, 3, 5]),
            dict(name="lr", type="double", grid=[0.001, 0.01]),
            dict(name="act", type="categorical", categorical_values=["relu", "tanh"]),
        ],
        metrics=[dict(name="m")],
        budget=12,
    )
    experiment = sigopt.create_experiment(**spec)
    assert experiment.parameters[0].grid == [1, 3, 5]
    points = set()
    for run in experiment.loop():
        with run:
            assert type(run.params.n) is int and run.params.n in (1, 3, 5)
            assert run.params.lr in (0.001, 0.01) and run.params.act in ("relu", "tanh")
            points.add((run.params.n, run.params.lr, run.params.act))
            run.log_metric("m", run.params.n * run.params.lr)
    assert len(points) == 12

    logged = sigopt.create_experiment(
        name="log",
        parameters=[
            dict(name="lr", type="double", bounds=dict(min=1e-5, max=1), transformation="log")
        ],
        metrics=[dict(name="m", objective="minimize")],
        budget=5,
    )
    assert logged.parameters[0].transformation == "log"
    for run in logged.loop():
        with run:
            assert 1e-5 <= run.params.lr <= 1
            run.log_metric("m", run.params.lr)
