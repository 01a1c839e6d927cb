"""Two optimized metrics, constraint and stored metrics, and num_solutions,
through the SDK against a real optserve server (see conftest.py)."""

from __future__ import annotations

import grpc
import pytest

import optserve_client as sigopt
from optserve_client import ApiError, Connection, Observation

X = dict(name="x", type="double", bounds=dict(min=0, max=1))
Y = dict(name="y", type="double", bounds=dict(min=0, max=1))


def signed(obs: Observation, metrics: list[tuple[str, str]]) -> tuple[float, ...]:
    """The optimized values of ``obs``, negated where minimized (larger is better)."""
    out = []
    for name, objective in metrics:
        value = obs.metric(name)
        assert value is not None, f"{obs} has no value for {name}"
        out.append(value if objective == "maximize" else -value)
    return tuple(out)


def dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(p >= q for p, q in zip(a, b, strict=True)) and a != b


def test_two_metrics_best_runs_are_the_pareto_front(conn: Connection) -> None:
    metrics = [("accuracy", "maximize"), ("cost", "minimize")]
    experiment = sigopt.create_experiment(
        name="two metrics",
        parameters=[X, Y],
        metrics=[
            dict(name="accuracy", objective="maximize"),
            dict(name="cost", objective="minimize"),
            dict(name="seconds", strategy="store"),
        ],
        budget=16,
        seed=4,
    )
    for run in experiment.loop():
        with run:
            x, y = run.params.x, run.params.y
            # y only hurts both metrics, so most runs are dominated.
            run.log_metric("accuracy", 1 - (x - 0.2) ** 2 - y)
            run.log_metric("cost", (x - 0.8) ** 2 + y)
            run.log_metric("seconds", 10 * x)

    runs = list(experiment.get_runs())
    assert len(runs) == 16 and not any(r.failed for r in runs)
    best = experiment.get_best_runs()
    assert 1 <= len(best) < len(runs) and best.explanation == ""
    front = {o.id: signed(o, metrics) for o in best}
    assert len(front) == len(best), "each best run appears once"
    # Non-dominated among themselves and among every run ...
    for run in runs:
        assert not any(dominates(signed(run, metrics), p) for p in front.values()), run
    # ... and every run left out is dominated by a best one: the whole front.
    for run in runs:
        if run.id not in front:
            assert any(dominates(p, signed(run, metrics)) for p in front.values()), run
    # Stored values come back on the best runs too.
    assert all(o.metric("seconds") == pytest.approx(10 * o.assignments.x) for o in best)
    assert experiment.get_best_assignments() == [o.assignments for o in best]
    # Progress has no single best observation with two optimized metrics.
    assert experiment.refresh().progress.best_observation is None


def test_two_metric_thresholds_bound_the_front(conn: Connection) -> None:
    experiment = sigopt.create_experiment(
        name="two metrics with thresholds",
        parameters=[X],
        metrics=[
            dict(name="f1", objective="maximize", threshold=0.3),
            dict(name="f2", objective="minimize", threshold=0.5),
        ],
        budget=10,
    )
    assert [m.threshold for m in experiment.metrics] == [0.3, 0.5]
    for x in (0.1, 0.4, 0.6, 0.9):
        conn.create_observation(experiment.id, assignments={"x": x}, values={"f1": x, "f2": x * x})
    best = experiment.get_best_runs()
    # 0.1 is below f1's threshold, 0.9 above f2's (0.81 > 0.5).
    assert sorted(o.assignments.x for o in best) == [0.4, 0.6]

    none_in_region = sigopt.create_experiment(
        name="two metrics, nothing in the region",
        parameters=[X],
        metrics=[dict(name="f1", threshold=5), dict(name="f2", objective="minimize")],
        budget=10,
    )
    conn.create_observation(none_in_region.id, assignments={"x": 0.5}, values={"f1": 1, "f2": 1})
    best = none_in_region.get_best_runs()
    assert list(best) == [] and "threshold" in best.explanation


def constrained(name: str, threshold: float, budget: int = 10) -> sigopt.ExperimentContext:
    return sigopt.create_experiment(
        name=name,
        parameters=[X],
        metrics=[
            dict(name="score", objective="maximize"),
            dict(name="latency", objective="minimize", strategy="constraint", threshold=threshold),
            dict(name="memory", strategy="store"),
        ],
        budget=budget,
        seed=2,
    )


def test_constraint_metric_best_run_satisfies_the_threshold(conn: Connection) -> None:
    experiment = constrained("constraint metric", threshold=0.5)
    assert [(m.strategy, m.threshold) for m in experiment.metrics] == [
        ("optimize", None),
        ("constraint", 0.5),
        ("store", None),
    ]
    for run in experiment.loop():
        with run:
            # score grows with x, but latency = x must stay <= 0.5.
            run.log_metrics({"score": run.params.x, "latency": run.params.x})
            run.log_metric("memory", 100 + run.params.x)

    runs = list(experiment.get_runs())
    feasible = [r for r in runs if r.metric("latency") <= 0.5]
    assert feasible, "no run satisfied the constraint; the test needs one"
    (best,) = experiment.get_best_runs()
    assert best.metric("latency") <= 0.5
    assert best.metric("score") == max(r.metric("score") for r in feasible)
    # The stored metric is recorded on every run, never optimized.
    assert all(r.metric("memory") == pytest.approx(100 + r.assignments.x) for r in runs)
    assert best.metric("memory") == pytest.approx(100 + best.assignments.x)
    assert experiment.refresh().progress.best_observation.id == best.id


def test_constraint_never_satisfied_gives_an_explanation(conn: Connection) -> None:
    experiment = constrained("constraint never met", threshold=-1)
    for _ in range(3):
        with experiment.create_run() as run:
            run.log_metrics({"score": run.params.x, "latency": run.params.x, "memory": 1})
    best = experiment.get_best_runs()
    assert len(best) == 0 and list(best) == []
    assert "constraint" in best.explanation, best.explanation
    assert experiment.get_best_assignments() == []
    assert conn.experiments(experiment.id).best_assignments().fetch().explanation == (
        best.explanation
    )
    assert experiment.refresh().progress.best_observation is None


def test_observation_missing_a_constraint_metric_is_invalid(conn: Connection) -> None:
    experiment = constrained("constraint metric missing", threshold=0.5)
    run = experiment.create_run()
    run.log_metric("score", 1.0)
    with pytest.raises(ApiError) as info:
        run.end()
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert any("latency" in v.description for v in info.value.field_violations), info.value
    assert "latency" in str(info.value)
    # The stored metric may be left out; the run can still be completed.
    run.log_metric("latency", 0.25)
    observation = run.end()
    assert observation.metric("latency") == 0.25 and observation.metric("memory") is None
    # A failed run needs no values at all.
    with experiment.create_run() as run:
        run.log_failure()
    assert run.observation is not None and run.observation.failed


def test_num_solutions_returns_distinct_solutions(conn: Connection) -> None:
    experiment = sigopt.create_experiment(
        name="two solutions",
        parameters=[dict(name="x", type="double", bounds=dict(min=-2, max=2))],
        metrics=[dict(name="f", objective="maximize")],
        num_solutions=2,
        budget=16,
        seed=5,
    )
    assert experiment.num_solutions == 2
    for run in experiment.loop():
        with run:
            run.log_metric("f", -((run.params.x**2 - 1) ** 2))  # maxima at -1 and 1
    best = experiment.get_best_runs()
    assert len(best) == 2 and best.explanation == ""
    first, second = best
    assert first.id != second.id and first.assignments != second.assignments
    # The first solution is the best run overall.
    assert first.value == max(r.value for r in experiment.get_runs())


def test_num_solutions_skips_near_duplicates_of_a_solution(conn: Connection) -> None:
    experiment = sigopt.create_experiment(
        name="two separated solutions",
        parameters=[dict(name="x", type="double", bounds=dict(min=-2, max=2))],
        metrics=[dict(name="f", objective="maximize")],
        num_solutions=2,
        budget=10,
    )
    for x in (-1.0, -0.95, 1.1, 0.0):
        f = -((x * x - 1) ** 2)
        conn.create_observation(experiment.id, assignments={"x": x}, values={"f": f})
    best = experiment.get_best_runs()
    # -0.95 scores better than 1.1 but is a near duplicate of -1.
    assert [o.assignments.x for o in best] == [-1.0, 1.1]


def test_invalid_metric_definitions_name_the_field(conn: Connection) -> None:
    cases = [
        (
            dict(metrics=[dict(name="a"), dict(name="b")]),
            "experiment.observation_budget",
        ),
        (
            dict(metrics=[dict(name="a"), dict(name="c", strategy="constraint")], budget=5),
            "experiment.metrics[1].threshold",
        ),
        (
            dict(metrics=[dict(name="a")], num_solutions=2),
            "experiment.observation_budget",
        ),
    ]
    for spec, field in cases:
        with pytest.raises(ApiError) as info:
            sigopt.create_experiment(name="invalid", parameters=[X], **spec)
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert field in [v.field for v in info.value.field_violations], info.value
