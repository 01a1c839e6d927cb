"""The initial design: the centre of the space first, then uniform feasible draws,
not crowded on the box's faces."""

from __future__ import annotations

import numpy as np
from scipy import stats

from optserve.domain.model import (
    Bounds,
    ConstraintTerm,
    ConstraintType,
    Experiment,
    LinearConstraint,
    Metric,
    MetricValue,
    Observation,
    Parameter,
    Prior,
    PriorType,
    Suggestion,
    Transformation,
)
from optserve.domain.model import ParameterType as T
from optserve.optimizers import SuggestRequest, initial_design, models, suggest


def _design(exp: Experiment, n: int) -> list[dict]:
    observations: list[Observation] = []
    for i in range(n):
        (a,) = initial_design.suggest(SuggestRequest(exp, observations, [], 1, i))
        observations.append(Observation(str(i), exp.id, None, a, [MetricValue("v", 0.0)]))
    return [o.assignments for o in observations]


def test_the_design_of_a_box_is_not_crowded_on_its_faces():
    # Greedy maximin picks put about half of the coordinates within 0.1 of a
    # face; uniform draws put a fifth there (2 * 0.1).
    near = []
    for seed in range(6):
        exp = Experiment(
            id=f"box-{seed}",
            name="box",
            parameters=[Parameter(f"x{i}", T.DOUBLE, Bounds(0, 1)) for i in range(6)],
            metrics=[Metric("v")],
            seed=seed,
        )
        x = np.array([[a[f"x{i}"] for i in range(6)] for a in _design(exp, 8)])
        near.append(np.mean((x < 0.1) | (x > 0.9)))
    assert 0.1 < float(np.mean(near)) < 0.3


def test_two_optimized_metrics_keep_the_spread_design():
    # the first front's extent sets the reference point of hypervolume improvement
    near = []
    for seed in range(6):
        exp = Experiment(
            id=f"front-{seed}",
            name="front",
            parameters=[Parameter(f"x{i}", T.DOUBLE, Bounds(0, 1)) for i in range(6)],
            metrics=[Metric("a"), Metric("b")],
            seed=seed,
        )
        x = np.array([[a[f"x{i}"] for i in range(6)] for a in _design(exp, 8)])
        near.append(np.mean((x < 0.1) | (x > 0.9)))
    assert float(np.mean(near)) > 0.35


def test_a_small_discrete_space_is_covered_without_repeats():
    exp = Experiment(
        id="small",
        name="small",
        parameters=[Parameter("a", T.INT, Bounds(1, 3)), Parameter("b", T.INT, Bounds(1, 3))],
        metrics=[Metric("v")],
        seed=1,
    )
    points = {(a["a"], a["b"]) for a in _design(exp, 9)}
    assert len(points) == 9


def test_with_workers_in_flight_the_model_takes_over_after_the_same_observations(monkeypatch):
    """The design ends once its observations are in: the points still in flight
    then are design points already, so declaring eight workers adds none."""

    base = initial_design.initial_design_size(
        Experiment(
            id="size",
            name="size",
            parameters=[Parameter(f"x{i}", T.DOUBLE, Bounds(0, 1)) for i in range(4)],
            metrics=[Metric("v")],
        )
    )
    exp = Experiment(
        id="workers",
        name="workers",
        parameters=[Parameter(f"x{i}", T.DOUBLE, Bounds(0, 1)) for i in range(4)],
        metrics=[Metric("v")],
        parallel_bandwidth=8,
        seed=3,
    )
    assert initial_design.initial_design_size(exp) == base
    points = _design(exp, base + 7)
    done = [
        Observation(str(i), exp.id, None, a, [MetricValue("v", float(sum(a.values())))])
        for i, a in enumerate(points[:base])
    ]
    pending = [Suggestion(f"s{i}", exp.id, a) for i, a in enumerate(points[base:])]
    designed, modelled = [], []
    original, exact = initial_design.suggest, models.Models.exact
    monkeypatch.setattr(
        initial_design, "suggest", lambda request: designed.append(1) or original(request)
    )
    monkeypatch.setattr(
        models.Models, "exact", lambda self, *args: modelled.append(1) or exact(self, *args)
    )
    suggest(SuggestRequest(exp, done, pending, 1, base + 7))
    # the model's point, not a design point (nor the fallback's)
    assert designed == [] and modelled == [1]


def _mixed(exp_id: str, **extra) -> Experiment:
    return Experiment(
        id=exp_id,
        name=exp_id,
        parameters=[
            Parameter("x", T.DOUBLE, Bounds(-10, 30)),
            Parameter("lr", T.DOUBLE, Bounds(1e-4, 1e-2), transformation=Transformation.LOG),
            Parameter("n", T.INT, Bounds(1, 8)),
            Parameter("kind", T.CATEGORICAL, categorical_values=["a", "b", "c"]),
        ],
        metrics=[Metric("v")],
        seed=4,
        **extra,
    )


def test_the_first_point_is_the_centre_of_the_space():
    first, second = initial_design.suggest(SuggestRequest(_mixed("centre"), [], [], 2, 0))
    assert first["x"] == 10.0
    assert abs(first["lr"] - 1e-3) < 1e-12  # the geometric middle of a log-scaled range
    assert first["n"] in (4, 5)
    assert first["kind"] in ("a", "b", "c")
    assert second["x"] != 10.0  # the rest of the design is drawn


def test_the_centre_once_per_experiment_only():
    exp = _mixed("again")
    (first,) = initial_design.suggest(SuggestRequest(exp, [], [], 1, 0))
    # a point observed (or in flight) already: no second centre
    done = [Observation("0", exp.id, None, first, [MetricValue("v", 1.0)])]
    (after,) = initial_design.suggest(SuggestRequest(exp, done, [], 1, 1))
    (beside,) = initial_design.suggest(
        SuggestRequest(exp, [], [Suggestion("s0", exp.id, first)], 1, 1)
    )
    assert after["x"] != 10.0 and beside["x"] != 10.0


def test_a_centre_a_constraint_cuts_off_moves_to_the_polytopes_chebyshev_centre():
    exp = Experiment(
        id="corner",
        name="corner",
        parameters=[Parameter(n, T.DOUBLE, Bounds(0, 1)) for n in ("a", "b", "c")],
        linear_constraints=[
            LinearConstraint(
                ConstraintType.LESS_THAN, 0.5, [ConstraintTerm("a", 1.0), ConstraintTerm("b", 1.0)]
            )
        ],
        metrics=[Metric("v")],
        seed=1,
    )
    (first,) = initial_design.suggest(SuggestRequest(exp, [], [], 1, 0))
    # the largest disc in the triangle a + b <= 0.5 of the unit square
    radius = 0.5 / (2.0 + np.sqrt(2.0))
    assert abs(first["a"] - radius) < 1e-6 and abs(first["b"] - radius) < 1e-6
    assert first["c"] == 0.5  # outside every constraint: the middle


def test_constrained_ints_whose_middle_breaks_a_constraint_are_drawn():
    # the doubles' middle meets theirs (on its face): the doubles stay there
    exp = Experiment(
        id="ints",
        name="ints",
        parameters=[
            *(Parameter(n, T.INT, Bounds(0, 10)) for n in ("a", "b", "c")),
            *(Parameter(n, T.DOUBLE, Bounds(0, 1)) for n in ("d", "e", "f")),
        ],
        linear_constraints=[
            LinearConstraint(
                ConstraintType.GREATER_THAN,
                15.0,
                [ConstraintTerm("a", 1.0), ConstraintTerm("b", 1.0)],
            ),
            LinearConstraint(
                ConstraintType.LESS_THAN, 1.0, [ConstraintTerm("e", 1.0), ConstraintTerm("f", 1.0)]
            ),
        ],
        metrics=[Metric("v")],
        seed=2,
    )
    for seed in range(5):
        exp.seed = seed
        (first,) = initial_design.suggest(SuggestRequest(exp, [], [], 1, 0))
        assert first["a"] + first["b"] >= 15
        assert first["c"] == 5 and first["d"] == first["e"] == first["f"] == 0.5


def test_the_centre_of_a_parameter_with_a_prior_is_the_priors_median():
    exp = Experiment(
        id="prior",
        name="prior",
        parameters=[
            Parameter(
                "x", T.DOUBLE, Bounds(0, 10), prior=Prior(PriorType.NORMAL, mean=2.0, scale=1.0)
            ),
            Parameter("y", T.DOUBLE, Bounds(0, 1)),
        ],
        metrics=[Metric("v")],
        seed=3,
    )
    (first,) = initial_design.suggest(SuggestRequest(exp, [], [], 1, 0))
    median = stats.truncnorm(-2.0, 8.0, loc=2.0, scale=1.0).median()  # the prior within the bounds
    assert abs(first["x"] - median) < 1e-9 and first["y"] == 0.5


def test_two_optimized_metrics_start_without_the_centre():
    exp = Experiment(
        id="two",
        name="two",
        parameters=[Parameter(f"x{i}", T.DOUBLE, Bounds(0, 1)) for i in range(3)],
        metrics=[Metric("a"), Metric("b")],
        seed=5,
    )
    (first,) = initial_design.suggest(SuggestRequest(exp, [], [], 1, 0))
    assert first != {f"x{i}": 0.5 for i in range(3)}
