"""The Bayesian optimizer above the exact GP's size: a GP on a training subset,
batches sharing one candidate pool. Most tests lower the switch so that they
run on small histories; one runs at the real size."""

from __future__ import annotations

import numpy as np
import pytest

from optserve.domain.model import (
    Bounds,
    Conditional,
    ConstraintTerm,
    ConstraintType,
    Experiment,
    LinearConstraint,
    Metric,
    MetricValue,
    Objective,
    Observation,
    Parameter,
    ParameterType,
    Strategy,
    Suggestion,
)
from optserve.optimizers import SuggestRequest, bayesian, models, suggest
from optserve.optimizers.feasible import feasible_space
from optserve.optimizers.gp import GaussianProcess, subset

SWITCH, SIZE = 60, 40


@pytest.fixture
def small_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "EXACT_MAX_POINTS", SWITCH)
    monkeypatch.setattr(models, "SUBSET_SIZE", SIZE)
    monkeypatch.setattr(models, "SUBSET_FIT_POINTS", 30)
    monkeypatch.setattr(models, "CONSTRAINT_FIT_POINTS", 30)


def _double(name: str) -> Parameter:
    return Parameter(name, ParameterType.DOUBLE, Bounds(0, 1))


def _constrained(exp_id: str, **extra) -> Experiment:
    return Experiment(
        id=exp_id,
        name="scale",
        parameters=[
            _double("x"),
            _double("y"),
            Parameter("n", ParameterType.INT, Bounds(1, 5)),
            Parameter("c", ParameterType.CATEGORICAL, categorical_values=["a", "b", "c"]),
        ],
        linear_constraints=[
            LinearConstraint(
                ConstraintType.LESS_THAN, 1.0, [ConstraintTerm("x", 1), ConstraintTerm("y", 1)]
            )
        ],
        metrics=extra.pop("metrics", [Metric("v")]),
        seed=11,
        **extra,
    )


def _history(exp: Experiment, n: int, seed: int = 0, fail_every: int = 0) -> list[Observation]:
    rng = np.random.default_rng(seed)
    points = feasible_space(exp).draw(n, rng)
    out = []
    for i, a in enumerate(points):
        failed = bool(fail_every) and i % fail_every == 1
        values = []
        if not failed:
            base = -((a.get("x", 0.5) - 0.4) ** 2) - (a.get("y", 0.5) - 0.2) ** 2
            for m in exp.metrics:
                values.append(MetricValue(m.name, base + 0.01 * float(rng.normal())))
        out.append(Observation(str(i), exp.id, None, a, values, failed=failed))
    return out


def _feasible(exp: Experiment, points: list[dict]) -> bool:
    space = feasible_space(exp)
    return all(space.is_feasible(p) and p["x"] + p["y"] <= 1.0 for p in points)


def _distinct(points: list[dict]) -> bool:
    keys = [tuple(sorted((k, str(v)) for k, v in p.items())) for p in points]
    return len(set(keys)) == len(keys)


def test_a_batch_above_the_switch_is_feasible_and_distinct(small_switch):
    exp = _constrained("scale-batch")
    history = _history(exp, 150, fail_every=9)
    pending = [Suggestion("p", exp.id, history[3].assignments)]
    points = bayesian.suggest(SuggestRequest(exp, history, pending, 6, 150))
    assert len(points) == 6 and _feasible(exp, points) and _distinct(points)
    observed = {tuple(sorted((k, str(v)) for k, v in o.assignments.items())) for o in history}
    assert not observed & {tuple(sorted((k, str(v)) for k, v in p.items())) for p in points}


def test_the_model_never_holds_more_than_the_subset(small_switch, monkeypatch):
    sizes: list[int] = []
    original_fit, original_condition = GaussianProcess.fit, GaussianProcess.condition

    def fit(self, x, y, *args, **kwargs):
        sizes.append(len(x))
        return original_fit(self, x, y, *args, **kwargs)

    def condition(self, x, y, *args, **kwargs):
        sizes.append(len(x))
        return original_condition(self, x, y, *args, **kwargs)

    monkeypatch.setattr(GaussianProcess, "fit", fit)
    monkeypatch.setattr(GaussianProcess, "condition", condition)
    exp = _constrained(
        "scale-bounded",
        metrics=[Metric("v"), Metric("c", strategy=Strategy.CONSTRAINT, threshold=-0.3)],
    )
    history = _history(exp, 300)
    points = bayesian.suggest(SuggestRequest(exp, history, [], 4, 300))
    assert len(points) == 4 and _feasible(exp, points)
    # fits on prefixes up to the switch are exact; nothing beyond holds more than the subset
    assert sizes and max(sizes) <= SWITCH


def test_the_subset_is_used_above_the_switch_only(small_switch, monkeypatch):
    calls: list[int] = []
    original = subset.select

    def spy(x, *args, **kwargs):
        calls.append(len(x))
        return original(x, *args, **kwargs)

    monkeypatch.setattr(subset, "select", spy)
    exp = _constrained("scale-switch")
    history = _history(exp, SWITCH + 1)
    bayesian.suggest(SuggestRequest(exp, history[:SWITCH], [], 2, SWITCH))
    assert calls == []
    bayesian.suggest(SuggestRequest(exp, history, [], 2, SWITCH + 1))
    assert calls and all(n > SWITCH for n in calls)


def test_two_objectives_and_conditionals_above_the_switch(small_switch):
    exp = Experiment(
        id="scale-mo",
        name="mo",
        parameters=[
            _double("x"),
            _double("y"),
            Parameter("deep", ParameterType.DOUBLE, Bounds(0, 1), conditions={"k": ["2"]}),
        ],
        conditionals=[Conditional("k", ["1", "2"])],
        metrics=[Metric("f"), Metric("g", Objective.MINIMIZE)],
        seed=3,
    )
    history = _history(exp, 200)
    points = bayesian.suggest(SuggestRequest(exp, history, [], 5, 200))
    assert len(points) == 5 and _distinct(points)
    for p in points:
        assert ("deep" in p) == (p["k"] == "2")


def test_at_the_real_size():
    exp = _constrained("scale-real")
    history = _history(exp, models.EXACT_MAX_POINTS + 20, fail_every=25)
    points = suggest(SuggestRequest(exp, history, [], 3, len(history)))
    assert len(points) == 3 and _feasible(exp, points) and _distinct(points)
