"""Two optimized metrics, constraint metrics, stored metrics and multisolution, end to end."""

from __future__ import annotations

import math

import pytest

from optserve.v1 import service_pb2 as pb

from ..service_tests.helpers import create, double, observe, plain, suggest
from ..service_tests.test_experiment_validation import constraint, opt, store


def _front_ids(observations) -> set[str]:
    points = {o.id: (o.values[0].value, -o.values[1].value) for o in observations}
    return {
        i
        for i, p in points.items()
        if not any(q[0] >= p[0] and q[1] >= p[1] and q != p for q in points.values())
    }


def test_two_metric_experiment_returns_the_pareto_front(stub):
    exp = create(
        stub,
        parameters=[double("x"), double("y")],
        metrics=[
            opt("quality"),
            opt("cost", objective="METRIC_OBJECTIVE_MINIMIZE"),
            store("notes"),
        ],
        observationBudget=24,
    )
    for _ in range(24):
        (s,) = suggest(stub, exp.id)
        a = plain(s.assignments)
        quality = a["x"] + 0.2 * a["y"]
        cost = a["x"] ** 2 + (1 - a["y"]) ** 2
        observe(
            stub,
            exp.id,
            suggestionId=s.id,
            values=[
                {"name": "quality", "value": quality},
                {"name": "cost", "value": cost},
                {"name": "notes", "value": 7},
            ],
        )
    stored = stub.ListObservations(
        pb.ListObservationsRequest(experiment_id=exp.id, page_size=100)
    ).observations
    assert all(o.values[2].name == "notes" and o.values[2].value == 7 for o in stored)
    best = stub.GetBestAssignments(pb.GetBestAssignmentsRequest(experiment_id=exp.id)).observations
    assert len(best) >= 2
    assert {o.id for o in best} == _front_ids(stored)


def test_constraint_metric_steers_suggestions_into_the_feasible_half(stub):
    """The constraint x + y <= 1 is only known through a metric; after the initial
    design most suggestions should satisfy it (a pass count over fixed seeds)."""
    feasible_after_init, total_after_init = 0, 0
    for seed in range(3):
        exp = create(
            stub,
            parameters=[double("x"), double("y")],
            metrics=[
                opt("value"),
                constraint("load", objective="METRIC_OBJECTIVE_MINIMIZE", threshold=1.0),
            ],
            observationBudget=30,
            seed=str(seed),
        )
        for k in range(25):
            (s,) = suggest(stub, exp.id)
            a = plain(s.assignments)
            load = a["x"] + a["y"]
            value = a["x"] + a["y"] - 0.5 * (a["x"] - a["y"]) ** 2  # best outside the feasible half
            observe(
                stub,
                exp.id,
                suggestionId=s.id,
                values=[{"name": "value", "value": value}, {"name": "load", "value": load}],
            )
            if k >= 8:
                total_after_init += 1
                feasible_after_init += load <= 1.0
        (best,) = stub.GetBestAssignments(
            pb.GetBestAssignmentsRequest(experiment_id=exp.id)
        ).observations
        b = plain(best.assignments)
        assert b["x"] + b["y"] <= 1.0, "best assignments must satisfy the constraint metric"
    assert feasible_after_init >= 0.6 * total_after_init, (feasible_after_init, total_after_init)


@pytest.mark.parametrize("seed", range(3))
def test_multisolution_returns_separated_solutions(stub, seed):
    exp = create(
        stub,
        parameters=[double("x"), double("y")],
        numSolutions=3,
        observationBudget=40,
        seed=str(seed),
    )

    def value(x: float, y: float) -> float:  # three separated bumps of similar height
        peaks = [(0.15, 0.15, 1.0), (0.85, 0.2, 0.95), (0.5, 0.85, 0.9)]
        return max(h * math.exp(-((x - px) ** 2 + (y - py) ** 2) / 0.02) for px, py, h in peaks)

    for _ in range(40):
        (s,) = suggest(stub, exp.id)
        a = plain(s.assignments)
        observe(
            stub,
            exp.id,
            suggestionId=s.id,
            values=[{"name": "value", "value": value(a["x"], a["y"])}],
        )
    best = stub.GetBestAssignments(pb.GetBestAssignmentsRequest(experiment_id=exp.id)).observations
    assert len(best) == 3
    points = [(plain(o.assignments)["x"], plain(o.assignments)["y"]) for o in best]
    assert min(math.dist(p, q) for i, p in enumerate(points) for q in points[i + 1 :]) > 0.2


def test_thresholds_focus_two_metric_suggestions_on_the_region_of_interest(stub):
    """Both metrics trade off along x; thresholds keep only x in [0.4, 0.6] of
    interest, and suggestions after the initial design should mostly land there."""
    exp = create(
        stub,
        parameters=[double("x"), double("y")],
        metrics=[opt("a", threshold=0.4), opt("b", threshold=0.4)],
        observationBudget=30,
        seed="3",
    )
    inside = 0
    for k in range(30):
        (s,) = suggest(stub, exp.id)
        a = plain(s.assignments)
        va, vb = a["x"] - 0.1 * a["y"], 1 - a["x"] - 0.1 * a["y"]
        observe(
            stub,
            exp.id,
            suggestionId=s.id,
            values=[{"name": "a", "value": va}, {"name": "b", "value": vb}],
        )
        if k >= 10:
            inside += va >= 0.4 and vb >= 0.4
    assert inside >= 12, inside
    best = stub.GetBestAssignments(pb.GetBestAssignmentsRequest(experiment_id=exp.id)).observations
    assert best and all(o.values[0].value >= 0.4 and o.values[1].value >= 0.4 for o in best)
